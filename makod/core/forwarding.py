"""Forwarding requests to the leader that must run them, exactly once
(a mixin of NodeCore, which holds the state: ``forwarded``, ``forwards_seen``,
``led_ballots``, ``boot_promised``).

A follower (or a node of another shard) forwards a request to the leader it
knows, naming the ballot under which it believes that leader leads. A leader
runs a forwarded request only under that very ballot, deduplicated in
memory; after a restart or a change of leadership, a late or duplicated copy
is answered "outcome unknown" (if this process may have run it before) or
bounced as "nothing ran" (if it cannot have), never run again
(docs/ARCHITECTURE.md, "Forwarded requests").
"""

from __future__ import annotations

from typing import Any, Callable

from makod.codec import pack
from makod.core.context import DependencyInDoubt, KeyLocked, NeedRemote, SlotsMoving
from makod.core.entries import pack_value, unpack_value
from makod.core.messages import ballot_node
from makod.core.paxos import LEADER
from makod.core.requests import ForwardReply, ForwardRequest, WatchRequest, request_from_wire
from makod.kv import dbs, errors
from makod.kv.replies import ErrorReply

FORWARD_DEDUP_WINDOW = 65_536
FORWARD_SOURCES_MAX = 1024
# A forwarded reply is only read back: it may be bigger than what one
# transaction writes (KEYS * over a million keys is ~30 MB, as big in Redis),
# within one peer frame (256 MB, net/peers.py).
MAX_FORWARD_REPLY_BYTES = 192 * 1024 * 1024


def forward_reply_limit(max_txn_bytes: int) -> int:
    """The most a forwarded reply (or a fan-out's part) may encode to."""
    return min(8 * max_txn_bytes, MAX_FORWARD_REPLY_BYTES)


class PendingForward:
    __slots__ = ("target", "request", "since", "on_reply", "moved_ms")

    def __init__(self, target: int, request: Any, since: float, on_reply: Callable[[Any], None] | None) -> None:
        self.target = target
        self.request = request
        self.since = since
        self.on_reply = on_reply
        # When we first knew another leader for the target's shard (None: not yet).
        self.moved_ms: float | None = None


class Forwarding:
    """Methods only; NodeCore holds the state and the rest of the node."""

    def _send_to_shard(self, token: Any, request: Any, shard: int) -> None:
        target = self.leader_of(shard)
        if type(token) is tuple:
            # Forwarded to us, but not ours to run: nothing ran, so the origin
            # may route it again with fresher knowledge of who leads (and may
            # send it to us again: forget that we saw it).
            origin, rid = token
            self._forget_forward(origin, rid)
            moved = self.slots.handed_away() + self._key_hints(request)
            self.send(origin, ForwardReply(self.shard, self.id, rid, b"", moved or None))
            return None
        if target is None or target == self.id:
            self._wait(token, request)
            return None
        self.forward(target, request, token, shard)
        return None

    def _key_hints(self, request: Any) -> list[list[int]]:
        """[slot, slot, shard] for the slots of a request we bounce, as we see
        them: the origin sent it here by a hint we do not share (a stale
        config, say), and without ours it would send it here again."""
        if type(request) is WatchRequest:
            keys = [dbs.encode(request.db, k) for k in request.keys]
        else:
            keys = []
            for i, argv in enumerate(request.commands):
                spec = self.lookup(argv)
                if spec.scope != "keyspace" and "movablekeys" not in spec.flags:
                    keys.extend(dbs.encode(request.db_of(i), k) for k in spec.keys(argv))
        return [[slot, slot, shard] for slot, shard in self.slots.hints(keys[:64]) if 0 <= shard != self.shard]

    def forward(self, target: int, request: Any, token: Any, shard: int) -> None:
        wire = request.to_wire()
        size = len(pack(wire))
        if size > self.cfg.max_txn_bytes:
            # One peer frame, decoded in one go by a leader that serves a whole
            # shard: a 64 MB request stalled one past its election timeout.
            self.deliver_error(token, errors.REQUEST_TOO_LARGE_TO_FORWARD.format(size, self.cfg.max_txn_bytes, shard))
            return
        if callable(token):
            self.next_internal += 1
            rid = self.next_internal
            self.forwarded[rid] = PendingForward(target, request, self.mono_ms, token)
        else:
            rid = token
            self.forwarded[rid] = PendingForward(target, request, self.mono_ms, None)
        self.send(target, ForwardRequest(shard, self.id, rid, wire, self.leader_ballot(shard)))

    def _first_time(self, origin: int, rid: int) -> bool:
        """Exactly once: the network may deliver a forwarded request twice.

        Request ids are ``incarnation << 32 | counter``; per (origin,
        incarnation) we remember the counters seen within a window below the
        highest, and treat anything older as a very late duplicate.
        """
        source = (origin, rid >> 32)
        counter = rid & 0xFFFFFFFF
        top, seen = self.forwards_seen.pop(source, (0, set()))
        if counter in seen or counter <= top - FORWARD_DEDUP_WINDOW:
            self.forwards_seen[source] = (top, seen)
            return False
        seen.add(counter)
        if counter > top:
            top = counter
            if len(seen) > 2 * FORWARD_DEDUP_WINDOW:
                seen = {c for c in seen if c > top - FORWARD_DEDUP_WINDOW}
        self.forwards_seen[source] = (top, seen)
        if len(self.forwards_seen) > FORWARD_SOURCES_MAX:
            del self.forwards_seen[next(iter(self.forwards_seen))]
        return True

    def _seen_forward(self, origin: int, rid: int) -> bool:
        top, seen = self.forwards_seen.get((origin, rid >> 32), (0, ()))
        counter = rid & 0xFFFFFFFF
        return counter in seen or counter <= top - FORWARD_DEDUP_WINDOW

    def _forget_forward(self, origin: int, rid: int) -> None:
        entry = self.forwards_seen.get((origin, rid >> 32))
        if entry is not None:
            entry[1].discard(rid & 0xFFFFFFFF)

    def _on_forward_request(self, msg: ForwardRequest) -> None:
        paxos = self.paxos
        if paxos.role == LEADER and msg.ballot == paxos.promised:
            if not self._first_time(msg.src, msg.rid):
                return  # a duplicate: the first copy answers
            token = (msg.src, msg.rid)
            try:
                answer = self._route(token, request_from_wire(msg.request))
            except (KeyLocked, NeedRemote, SlotsMoving, DependencyInDoubt, AssertionError):
                raise  # the protocol's own signals escaping here are bugs of the core
            except Exception as exc:  # a command handler's bug: fail the request, keep serving
                self.deliver_error(token, errors.INTERNAL_ERROR.format(type(exc).__name__, exc))
                return
            assert answer is None  # tuple tokens always answer through messages
            return
        if msg.ballot in self.led_ballots:
            # We led that ballot in this process: our memory says whether it ran.
            if self._seen_forward(msg.src, msg.rid):
                return  # it ran (or is running): that copy answers, or answered
        elif ballot_node(msg.ballot) == self.id and msg.ballot <= self.boot_promised:
            # An earlier incarnation of this process may have led that ballot
            # and run the request: nobody can tell any more.
            error = ErrorReply(errors.CLUSTERDOWN_UNKNOWN_OUTCOME.format(self.shard))
            self.send(msg.src, ForwardReply(self.shard, self.id, msg.rid, pack_value(error)))
            return
        # Not run under that ballot, and never will be: route it again.
        self.send(msg.src, ForwardReply(self.shard, self.id, msg.rid, b""))

    def _on_forward_reply(self, msg: ForwardReply) -> None:
        pending = self.forwarded.pop(msg.rid, None)
        if pending is None:
            return
        if msg.moved:
            for lo, hi, shard in msg.moved:
                self.slots.learn(lo, hi, shard)
        if not msg.result:
            # Whoever we asked ran nothing: route it again at the next tick,
            # when we may know better who leads (no ping-pong meanwhile).
            token = pending.on_reply if pending.on_reply is not None else msg.rid
            self._wait(token, pending.request, pending.since)
            return
        result = unpack_value(msg.result)
        if pending.on_reply is not None:
            pending.on_reply(result)
        else:
            self._results.append((msg.rid, result, True))

    def _expire_forwards(self) -> None:
        if not self.forwarded:
            return
        now = self.mono_ms
        for rid, fwd in list(self.forwarded.items()):
            shard = self._target_shard(fwd.target)
            leader = self.leader_of(shard)
            if fwd.moved_ms is None and leader is not None and leader != fwd.target:
                # Leadership moved while the request was away. The old leader,
                # if alive, still answers: with the reply (a handover waits
                # until it has released every reply), or with "nothing ran"
                # (then we route again). Only if it stays silent for an
                # election timeout is the outcome unknown to us.
                fwd.moved_ms = now
            moved_ms = fwd.moved_ms
            if moved_ms is not None and leader != fwd.target and now - moved_ms >= self.paxos.cfg.election_timeout_ms:
                del self.forwarded[rid]
                self._forward_failed(rid, fwd, errors.CLUSTERDOWN_UNKNOWN_OUTCOME.format(shard))
            elif now - fwd.since >= self.cfg.forward_timeout_ms:
                del self.forwarded[rid]
                self._forward_failed(rid, fwd, errors.TIMEOUT.format(shard, self.cfg.forward_timeout_ms))

    def _forward_failed(self, rid: int, fwd: PendingForward, text: str) -> None:
        if fwd.on_reply is not None:
            fwd.on_reply(ErrorReply(text))
        else:
            self._results.append((rid, ErrorReply(text), True))

    def _target_shard(self, node: int) -> int:
        for shard, (voters, learners) in enumerate(self.members):
            if node in voters or node in learners:
                return shard
        return self.former_shards.get(node, self.shard)
