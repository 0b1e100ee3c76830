"""One replica of one shard: execution on the leader, Multi-Paxos, apply, release.

Pure: the driver feeds ``tick(mono_ms, wall_ms)``, peer messages through
``step``, client requests through ``submit``, and after each input drains
``ready()``: it persists what the Paxos part asks, sends the messages, hands
out results and releases, then calls ``advance``.

Life of a write on the leader: ``submit`` runs the commands against the
keyspace at once (a single-shard transaction needs no locks: nothing else
runs in between), so later commands see it; its ops join the open batch;
``ready`` proposes the batch as one Paxos slot (at most
``max_inflight_batches`` in flight, so batches grow under load); once the slot
is chosen the shard's watermark moves past the batch and every reply whose
dependency vector is now covered is released. A reply that read a value not
yet replicated waits the same way, so no client ever sees a write that a
failover could lose.

A deposed leader undoes its speculative writes in reverse order and answers
their clients with an error; followers forward clients' requests to the
leader.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from makod.core.context import DirectContext, vec_max
from makod.core.durability import Checkpoint, CheckpointTracker
from makod.core.entries import (
    ENTRY_BATCH,
    ENTRY_EPOCH,
    decode_entry,
    encode_batch,
    encode_epoch,
    pack_value,
    unpack_value,
)
from makod.core.keyspace import Keyspace
from makod.core.messages import Message
from makod.core.paxos import LEADER, Paxos, PaxosConfig, Ready
from makod.core.procedures import Abort
from makod.core.records import OP_FLUSH
from makod.core.release import ReleaseQueue, covers
from makod.core.requests import (
    ForwardReply,
    ForwardRequest,
    TxnRequest,
    WatchRequest,
    request_from_wire,
)
from resp import errors
from resp.errors import CommandError
from resp.replies import NULL_ARRAY, ErrorReply

EPOCH_SHIFT = 32
FORWARD_DEDUP_WINDOW = 65_536
FORWARD_SOURCES_MAX = 1024  # (origin, incarnation) pairs remembered


def first_request_id(rng: random.Random) -> int:
    """Where a driver starts numbering requests: a fresh incarnation in the high bits."""
    return rng.getrandbits(31) << 32  # version = epoch << 32 | counter: versions never repeat across leaders


@dataclass
class ReplicaConfig:
    max_batch_txns: int = 2048
    max_batch_ops: int = 16384
    max_inflight_batches: int = 4
    max_queued_requests: int = 10_000
    max_held_replies: int = 100_000
    queue_timeout_ms: int = 5_000
    forward_timeout_ms: int = 10_000
    active_expire_keys_per_tick: int = 200
    proto_max_bulk_len: int = 512 * 1024 * 1024


@dataclass
class ReplicaOutput:
    paxos: Ready
    messages: list[tuple[int, Message]]
    results: list[tuple[int, Any, bool]] = field(default_factory=list)  # (rid, result, released)
    releases: list[int] = field(default_factory=list)

    def empty(self) -> bool:
        return self.paxos.empty() and not (self.messages or self.results or self.releases)


class Txn:
    """An installed transaction whose slot is not yet chosen (leader only)."""

    __slots__ = ("version", "deps", "ops", "undo", "keys", "has_flush")

    def __init__(self, version: int, deps: tuple, ops: list, undo: list, keys: set, has_flush: bool) -> None:
        self.version = version
        self.deps = deps
        self.ops = ops
        self.undo = undo
        self.keys = keys
        self.has_flush = has_flush


class ReplicaCore:
    def __init__(
        self,
        shard: int,
        node_id: int,
        num_shards: int,
        voters: list[int],
        learners: list[int],
        *,
        rng: random.Random,
        config: ReplicaConfig | None = None,
        paxos_config: PaxosConfig | None = None,
        keyspace: Keyspace | None = None,
        applied_slot: int = 0,
        clock: int = 0,
        promised: int = 0,
        log: dict[int, tuple[int, bytes]] | None = None,
        handlers: Callable[[list[bytes]], Any] | None = None,
        matcher_factory: Callable[[bytes], Callable[[bytes], bool]] | None = None,
    ) -> None:
        self.shard = shard
        self.id = node_id
        self.num_shards = num_shards
        self.cfg = config or ReplicaConfig()
        self.rng = rng
        self.ks = keyspace if keyspace is not None else Keyspace()
        self.lookup = handlers
        self.matcher_factory = matcher_factory
        self.paxos = Paxos(
            shard,
            node_id,
            voters,
            learners,
            paxos_config or PaxosConfig(),
            random.Random(rng.random()),
            promised=promised,
            log=log,
            chosen_upto=applied_slot,
        )
        self.tracker = CheckpointTracker(self.ks)
        self.applied_slot = applied_slot
        self.applied_clock = clock  # highest version applied as chosen
        self.clock = clock  # highest version installed (>= applied_clock on a leader)
        self.mono_ms = 0.0
        self.wall_ms = 0

        self.zero = tuple(0 for _ in range(num_shards))
        self.watermark = [0] * num_shards

        # Leader state.
        self.was_leader = False
        self.epoch = 0
        self.epoch_slot: int | None = None  # our epoch entry; serve once applied
        self.serving = False
        self.batch: list[Txn] = []
        self.batch_ops = 0
        self.inflight: dict[int, list[Txn]] = {}
        self.releases = ReleaseQueue(shard, self.cfg.max_held_replies)
        self.held_results: dict[Any, Any] = {}  # token -> result, for forwarded requests

        # Requests waiting for a leader that can serve them: (token, request, since).
        self.queue: deque[tuple[Any, Any, float]] = deque()
        self.forwards_seen: dict[tuple[int, int], tuple[int, set[int]]] = {}
        # Follower: requests handed to the leader, rid -> (leader, request, since).
        self.forwarded: dict[int, tuple[int, Any, float]] = {}

        self._out_messages: list[tuple[int, Message]] = []
        self._out_results: list[tuple[int, Any, bool]] = []
        self._out_releases: list[int] = []

    # -- inputs ------------------------------------------------------------------------
    def tick(self, mono_ms: float, wall_ms: int) -> None:
        self.mono_ms = mono_ms
        self.wall_ms = wall_ms
        self.paxos.tick(mono_ms)
        self._after_paxos()
        if self.serving:
            self._active_expire()
        self._drain_queue()
        self._expire_forwards()

    def observe_time(self, mono_ms: float, wall_ms: int) -> None:
        """Refresh the clock without running timers.

        Drivers call this before every input: after a long pause (a GC, a
        stopped VM) a request may be handled before the next tick, and the
        lease must be judged by the time now, not the time of the last tick.
        """
        if mono_ms > self.paxos.now:
            self.paxos.now = mono_ms
            self.mono_ms = mono_ms
        if wall_ms > self.wall_ms:
            self.wall_ms = wall_ms

    def step(self, msg: Message) -> None:
        t = type(msg)
        if t is ForwardRequest:
            self._on_forward_request(msg)  # type: ignore[arg-type]
        elif t is ForwardReply:
            self._on_forward_reply(msg)  # type: ignore[arg-type]
        else:
            self.paxos.step(msg)
            self._after_paxos()

    def submit(self, rid: int, request: Any) -> tuple[Any, bool] | None:
        """Run a client's request now if this replica can; else queue or forward it.

        Returns (result, released) when it ran now; otherwise the answer comes
        later through ``ready().results``. A result that is not yet released
        is followed by the rid in ``ready().releases``.
        """
        if self._can_serve():
            return self._run_local(rid, request)
        self._enqueue(rid, request)
        return None

    # -- outputs -------------------------------------------------------------------------
    def ready(self) -> ReplicaOutput:
        self._maybe_propose()
        pready = self.paxos.ready()
        for slot, value in pready.committed:
            self._apply_chosen(slot, value)
        self._after_paxos()
        self._release()
        out = ReplicaOutput(
            paxos=pready,
            messages=pready.messages + self._out_messages,
            results=self._out_results,
            releases=self._out_releases,
        )
        self._out_messages = []
        self._out_results = []
        self._out_releases = []
        return out

    def advance(self, out: ReplicaOutput) -> None:
        self.paxos.advance(out.paxos)

    @property
    def has_ready(self) -> bool:
        return bool(
            self.paxos.has_ready
            or self._out_messages
            or self._out_results
            or self._out_releases
            or (self._may_propose() and len(self.inflight) < self.cfg.max_inflight_batches)
        )

    def _may_propose(self) -> bool:
        return bool(self.batch) and self.serving and self.paxos.transfer_target is None

    def install_snapshot(self, applied_slot: int, clock: int, keyspace: Keyspace) -> bool:
        """Replace this follower's state with a leader's snapshot taken at ``applied_slot``."""
        if applied_slot <= self.applied_slot or self.paxos.role == LEADER:
            return False
        self.ks = keyspace
        self.tracker = CheckpointTracker(keyspace)
        self.applied_slot = applied_slot
        self.applied_clock = clock
        self.clock = max(self.clock, clock)
        self.watermark[self.shard] = max(self.watermark[self.shard], clock)
        self.paxos.snapshot_installed(applied_slot)
        return True

    def checkpoint(self) -> Checkpoint | None:
        return self.tracker.take(self.applied_slot, self.applied_clock)

    # -- leadership ------------------------------------------------------------------------
    def _after_paxos(self) -> None:
        is_leader = self.paxos.role == LEADER
        if is_leader and not self.was_leader:
            self._on_elected()
        elif self.was_leader and not is_leader:
            self._on_deposed()
        self.was_leader = is_leader
        if is_leader and not self.serving and self.epoch_slot is not None and self.applied_slot >= self.epoch_slot:
            self.serving = True
            self.clock = max(self.clock, self.applied_clock, self.epoch << EPOCH_SHIFT)
            self._advance_watermark()
            self._drain_queue()
        self._check()

    def _on_elected(self) -> None:
        self.epoch = self.paxos.promised
        self.serving = False
        slot = self.paxos.propose(encode_epoch(self.epoch))
        assert slot is not None
        self.epoch_slot = slot

    def _on_deposed(self) -> None:
        """Undo every speculative write, newest first, and answer their clients."""
        for txn in reversed(self.batch):
            self.ks.rollback(txn.undo)
        for slot in sorted(self.inflight, reverse=True):
            for txn in reversed(self.inflight[slot]):
                self.ks.rollback(txn.undo)
        self.batch = []
        self.batch_ops = 0
        self.inflight = {}
        self.tracker.rolled_back_all()
        self.clock = self.applied_clock
        self.serving = False
        self.epoch_slot = None
        for token in self.releases.drain():
            self._finish(token, ErrorReply(errors.CLUSTERDOWN_UNKNOWN_OUTCOME.format(self.shard)))

    def _can_serve(self) -> bool:
        return self.serving and self.paxos.lease_valid()

    def _check(self) -> None:
        assert self.applied_slot <= self.paxos.commit
        assert self.applied_clock <= self.clock or not self.serving
        if self.serving:
            assert self.paxos.role == LEADER

    # -- execution on the leader ------------------------------------------------------------
    def _run_local(self, token: Any, request: Any) -> tuple[Any, bool]:
        if type(request) is WatchRequest:
            result, deps = self._execute_watch(request)
            # WATCH's answer carries versions only, never data: release it now.
            return result, True
        result, deps = self._execute_txn(request)
        if covers(self.watermark, deps):
            return result, True
        self.releases.add(deps, token)
        if type(token) is tuple:
            self.held_results[token] = result
        return result, False

    def _new_context(self) -> DirectContext:
        version = self.clock + 1
        own = list(self.zero)
        own[self.shard] = version
        all_deps = list(self.zero)
        all_deps[self.shard] = self.clock
        return DirectContext(
            self.ks,
            version,
            tuple(own),
            tuple(all_deps),
            self.wall_ms,
            self.rng,
            self.matcher_factory,
            self.tracker.before_write,
        )

    def _execute_txn(self, request: TxnRequest) -> tuple[Any, tuple[int, ...]]:
        ctx = self._new_context()
        ctx.proto_max_bulk_len = self.cfg.proto_max_bulk_len  # type: ignore[misc]
        try:
            if request.watches:
                for key, version in request.watches:
                    if ctx.version_of(key) != version:
                        self._install(ctx)
                        return NULL_ARRAY, ctx.finish()
            replies = []
            for argv in request.commands:
                spec = self.lookup(argv)
                try:
                    replies.append(spec.handler(ctx, argv))
                except CommandError as exc:
                    replies.append(ErrorReply(exc.text))
        except Abort as exc:
            # A stored procedure gave up: none of its writes happened.
            self.ks.rollback(ctx.undo)
            self.tracker.aborted(ctx.captured)
            return ErrorReply(f"ABORT {exc.reason}"), ctx.deps
        except Exception:
            # A bug in a handler must not leave half a transaction behind.
            self.ks.rollback(ctx.undo)
            self.tracker.aborted(ctx.captured)
            raise
        self._install(ctx)
        deps = ctx.finish()
        return (replies if request.multi else replies[0]), deps

    def _execute_watch(self, request: WatchRequest) -> tuple[list[int], tuple[int, ...]]:
        ctx = self._new_context()
        versions = [ctx.version_of(key) for key in request.keys]
        self._install(ctx)
        return versions, ctx.finish()

    def _install(self, ctx: DirectContext) -> None:
        if not ctx.ops:
            return
        deps = ctx.finish()
        txn = Txn(ctx.version, deps, ctx.ops, ctx.undo, ctx.written, ctx.has_flush)
        self.clock = ctx.version
        self.batch.append(txn)
        self.batch_ops += len(ctx.ops)
        self.tracker.installed(txn.keys, txn.has_flush)

    def _active_expire(self) -> None:
        keys = self.ks.expired_keys(self.wall_ms, self.cfg.active_expire_keys_per_tick)
        if not keys:
            return
        ctx = self._new_context()
        for key in keys:
            ctx.get(key)  # reads as expired: the context deletes it through an op
        self._install(ctx)

    def _maybe_propose(self) -> None:
        while self._may_propose() and (
            len(self.inflight) < self.cfg.max_inflight_batches
            or len(self.batch) >= self.cfg.max_batch_txns
            or self.batch_ops >= self.cfg.max_batch_ops
        ):
            batch = self.batch[: self.cfg.max_batch_txns]
            self.batch = self.batch[self.cfg.max_batch_txns :]
            self.batch_ops = sum(len(t.ops) for t in self.batch)
            own = self.shard
            txns = [
                (t.version, None if _only_own(t.deps, own) else list(t.deps), t.ops) for t in batch
            ]
            # Single-shard transactions install in clock order, so everything
            # at or below the last version is in this slot or earlier.
            value = encode_batch(self.epoch, batch[-1].version, txns)
            slot = self.paxos.propose(value)
            if slot is None:
                # Leadership is being handed over; keep the batch for now.
                self.batch = batch + self.batch
                self.batch_ops = sum(len(t.ops) for t in self.batch)
                return
            self.inflight[slot] = batch

    # -- applying chosen slots ------------------------------------------------------------------
    def _apply_chosen(self, slot: int, value: bytes) -> None:
        assert slot == self.applied_slot + 1, (slot, self.applied_slot)
        own = self.inflight.pop(slot, None)
        if own is not None:
            for txn in own:
                self.tracker.committed_own(txn.version, txn.keys, txn.ops, txn.has_flush)
                txn.undo = []
                if txn.version > self.applied_clock:
                    self.applied_clock = txn.version
            self._advance_watermark()
        else:
            entry = decode_entry(value)
            if entry is not None and entry[0] == ENTRY_BATCH:
                self._apply_batch(entry)
            elif entry is not None:
                assert entry[0] == ENTRY_EPOCH, entry[0]
        self.applied_slot = slot

    def _apply_batch(self, entry: list) -> None:
        _, _epoch, _watermark, txns = entry
        ks = self.ks
        for version, _deps, ops in txns:
            keys: set[bytes] = set()
            has_flush = False
            for op in ops:
                op = tuple(op)
                if op[0] == OP_FLUSH:
                    has_flush = True
                else:
                    keys.add(op[1])
                ks.apply(op, version, None)
            self.tracker.applied(keys, has_flush)
            if version > self.applied_clock:
                self.applied_clock = version
        if not self.serving:
            self.clock = max(self.clock, self.applied_clock)
        self.watermark[self.shard] = max(self.watermark[self.shard], self.applied_clock)

    def _advance_watermark(self) -> None:
        """This shard's watermark: every version at or below it is chosen.

        Single-shard transactions install in version order, so that is one
        below the oldest installed-but-unchosen version, or the clock itself
        when nothing is in flight (a new epoch's clock jumps ahead with
        nothing below it pending).
        """
        if self.inflight:
            w = self.inflight[min(self.inflight)][0].version - 1
        elif self.batch:
            w = self.batch[0].version - 1
        elif self.serving:
            w = self.clock
        else:
            w = self.applied_clock
        if w > self.watermark[self.shard]:
            self.watermark[self.shard] = w

    def _release(self) -> None:
        for token in self.releases.released(self.watermark):
            if type(token) is tuple:
                self._finish(token, self.held_results.pop(token))
            else:
                self._out_releases.append(token)

    def _finish(self, token: Any, result: Any) -> None:
        """Deliver a final result (already released) to a local or remote client."""
        if type(token) is tuple:
            origin, rid = token
            self.held_results.pop(token, None)
            self._out_messages.append(
                (origin, ForwardReply(self.shard, self.id, rid, pack_value(result)))
            )
        else:
            self._out_results.append((token, result, True))

    # -- waiting and forwarding ----------------------------------------------------------------
    def _enqueue(self, token: Any, request: Any) -> None:
        if len(self.queue) >= self.cfg.max_queued_requests:
            self._finish(token, ErrorReply(errors.CLUSTERDOWN_NO_LEADER.format(self.shard)))
            return
        self.queue.append((token, request, self.mono_ms))
        self._drain_queue()

    def _drain_queue(self) -> None:
        queue = self.queue
        while queue:
            token, request, since = queue[0]
            if self._can_serve():
                queue.popleft()
                try:
                    result, released = self._run_local(token, request)
                except Exception as exc:  # a handler bug: answer, keep serving
                    self._finish(token, ErrorReply(f"ERR internal error: {type(exc).__name__}"))
                    continue
                if released:
                    self._finish(token, result)
                elif type(token) is not tuple:
                    self._out_results.append((token, result, False))
                continue
            leader = self.paxos.known_leader()
            if type(token) is tuple and self.paxos.role != LEADER:
                # Forwarded to us, but we lost the role before running it:
                # nothing ran, so the origin may route it to the new leader.
                queue.popleft()
                self._out_messages.append((token[0], ForwardReply(self.shard, self.id, token[1], b"")))
                continue
            if leader is not None and leader != self.id and type(token) is not tuple:
                queue.popleft()
                self.forwarded[token] = (leader, request, self.mono_ms)
                self._out_messages.append(
                    (leader, ForwardRequest(self.shard, self.id, token, request.to_wire()))
                )
                continue
            if self.mono_ms - since >= self.cfg.queue_timeout_ms:
                queue.popleft()
                self._finish(token, ErrorReply(errors.CLUSTERDOWN_NO_LEADER.format(self.shard)))
                continue
            break

    def _first_time(self, origin: int, rid: int) -> bool:
        """Exactly once: the network may deliver a forwarded request twice.

        Request ids are ``incarnation << 32 | counter`` (drivers pick a random
        incarnation at start, so a restarted replica never reuses an id). Per
        (origin, incarnation), remember the counters seen within a window
        below the highest; anything older is a very late duplicate.
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
        self.forwards_seen[source] = (top, seen)  # re-inserted: most recent last
        if len(self.forwards_seen) > FORWARD_SOURCES_MAX:
            del self.forwards_seen[next(iter(self.forwards_seen))]
        return True

    def _on_forward_request(self, msg: ForwardRequest) -> None:
        token = (msg.src, msg.rid)
        if not self._first_time(msg.src, msg.rid):
            return
        if self.paxos.role != LEADER:
            # Not executed: the follower may send it to the real leader.
            self._out_messages.append((msg.src, ForwardReply(self.shard, self.id, msg.rid, b"")))
            return
        request = request_from_wire(msg.request)
        if self._can_serve():
            try:
                result, released = self._run_local(token, request)
            except Exception as exc:
                self._finish(token, ErrorReply(f"ERR internal error: {type(exc).__name__}"))
                return
            if released:
                self._finish(token, result)
        else:
            self._enqueue(token, request)

    def _on_forward_reply(self, msg: ForwardReply) -> None:
        pending = self.forwarded.pop(msg.rid, None)
        if pending is None:
            return
        if not msg.result:
            # The replica we asked was not the leader and ran nothing: try again.
            self.queue.appendleft((msg.rid, pending[1], pending[2]))
            self._drain_queue()
            return
        self._out_results.append((msg.rid, unpack_value(msg.result), True))

    def _expire_forwards(self) -> None:
        if not self.forwarded:
            return
        leader = self.paxos.known_leader()
        for rid, (sent_to, _request, since) in list(self.forwarded.items()):
            if leader is not None and leader != sent_to:
                # The leader we asked lost its role; it may or may not have run it.
                del self.forwarded[rid]
                self._finish(rid, ErrorReply(errors.CLUSTERDOWN_UNKNOWN_OUTCOME.format(self.shard)))
            elif self.mono_ms - since >= self.cfg.forward_timeout_ms:
                del self.forwarded[rid]
                self._finish(
                    rid, ErrorReply(errors.TIMEOUT.format(self.shard, self.cfg.forward_timeout_ms))
                )

    # -- status ------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        p = self.paxos
        info = {
            "shard": self.shard,
            "role": p.role,
            "ballot": p.promised,
            "epoch": self.epoch if self.serving else None,
            "leader": p.known_leader(),
            "last_index": p.last_slot,
            "commit_index": p.commit,
            "applied_index": self.applied_slot,
            "first_index": p.first_slot,
            "serving": self.serving,
            "lease_valid": p.lease_valid(),
            "clock": self.clock,
            "watermark": list(self.watermark),
            "keys": len(self.ks),
            "expires": self.ks.expires_count,
            "inflight_batches": len(self.inflight),
            "queued_requests": len(self.queue),
            "held_replies": len(self.releases),
        }
        if p.role == LEADER:
            info["follower_match"] = {str(k): v for k, v in p.match.items()}
        return info


def _only_own(deps: tuple[int, ...], own: int) -> bool:
    for i, d in enumerate(deps):
        if i != own and d:
            return False
    return True
