"""Luigi at one node (luigi.py says how the protocol goes): its shard's
timestamp order while it leads (luigi_seq.Sequencer), single-shard
transactions admitted through it, starting multi-shard ones when their turn
comes, the one-way delay estimates a coordinator stamps with, and messages
to itself (a coordinator is also a leader of its own shard)."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from makod.core.luigi import FootprintError, request_footprints
from makod.core.luigi_messages import LuigiAgreed, LuigiDispatch, LuigiProposed, LuigiReady
from makod.core.luigi_seq import Entry, Footprint, Sequencer
from makod.core.node_participant import READS_TOO_LARGE, items_bytes
from makod.core.owd import OwdEstimator
from makod.kv import errors
from makod.kv.requests import WatchRequest

if TYPE_CHECKING:
    from makod.core.node import NodeCore


class LuigiLeader:
    """One node's side of Luigi: its shard's timestamp order while it leads,
    the one-way delay estimates, and messages to itself (a coordinator is
    also a leader of its own shard)."""

    def __init__(self, node: "NodeCore") -> None:
        self.node = node
        self.seq = Sequencer()
        self.owd = OwdEstimator()
        self.loopback: deque[Any] = deque()
        self.local_seq = 0
        node.replica.prepared_done = self._prepared_done
        node.replica.may_expire = self._may_expire

    def wall_us(self) -> int:
        return int(self.node.replica.wall_ms) * 1000

    def send(self, dest: int, msg: Any) -> None:
        if dest == self.node.id:
            self.loopback.append(msg)
        else:
            self.node.send(dest, msg)

    def drain_loopback(self) -> None:
        node = self.node
        for _ in range(10_000):  # bounded: each step may queue more
            if not self.loopback:
                return
            msg = self.loopback.popleft()
            if type(msg) in (LuigiProposed, LuigiReady):
                node.coord.handle(msg)
            else:
                self.step(msg)

    # -- role changes ---------------------------------------------------------------------------
    def reset(self) -> None:
        """We lead no more (or lead anew): nothing queued here survives.
        Locals queued wait for a leader again; remote coordinators time out
        and retry elsewhere. A new order starts above the wall clock."""
        node = self.node
        for entry in self.seq.entries.values():
            if entry.payload is not None:
                token, request, since, _trap = entry.payload
                node._wait(token, request, since)
        self.seq = Sequencer(floor_us=self.wall_us())

    # -- messages from coordinators ---------------------------------------------------------------
    def step(self, msg: Any) -> None:
        t = type(msg)
        if t is LuigiDispatch:
            self._on_dispatch(msg)
        elif t is LuigiAgreed:
            self._on_agreed(msg)

    def _serving(self) -> bool:
        replica = self.node.replica
        return replica.can_answer_reads()

    def _on_dispatch(self, msg: LuigiDispatch) -> None:
        node = self.node
        now_us = self.wall_us()
        reason = ""
        t = None
        if not self._serving():
            reason = "not leader"
        elif msg.txn in node.replica.recent_outcomes:
            reason = "already " + node.replica.recent_outcomes[msg.txn]
        else:
            t = self.seq.propose(msg.txn, msg.t, Footprint.from_wire(msg.footprint), node.mono_ms)
            if t is None:
                reason = "queue full"
        owd_us = now_us - msg.sent_us
        self.send(msg.src, LuigiProposed(node.shard, node.id, msg.txn, t is not None, t or 0, owd_us, reason))

    def _on_agreed(self, msg: LuigiAgreed) -> None:
        node = self.node
        if not self.seq.agree(msg.txn, msg.t):
            self.send(msg.src, LuigiReady(node.shard, node.id, msg.txn, False, node.replica.epoch, 0, [],
                                          "unknown transaction"))
            return
        self.poll()

    # -- starting ---------------------------------------------------------------------------------
    def poll(self) -> None:
        """Start whatever may start now."""
        seq = self.seq
        if not seq.entries:
            return
        for entry in seq.startable(self.wall_us(), self.node.mono_ms):
            seq.start(entry)
            if entry.payload is not None:
                seq.finish(entry.txn)
                token, request, since, trap = entry.payload
                self.node._run_admitted(token, request, since, trap, entry.fp)
            else:
                self._start_remote(entry)

    def _start_remote(self, entry: Entry) -> None:
        node = self.node
        replica = node.replica
        coordinator = entry.txn[0]
        if not self._serving():
            self.seq.finish(entry.txn)
            self.send(coordinator, LuigiReady(node.shard, node.id, entry.txn, False, replica.epoch, 0, [],
                                              "not leader"))
            return
        fp = entry.fp
        ok, clock, reason = replica.prepare(entry.txn, sorted(fp.writes))
        if not ok:
            self.seq.finish(entry.txn)
            self.send(coordinator, LuigiReady(node.shard, node.id, entry.txn, False, replica.epoch, 0, [],
                                              reason))
            return
        items = replica.read_items(sorted(fp.reads | fp.writes))
        size = items_bytes(items)
        if size > node.cfg.max_txn_bytes:
            # As a Mako read (node_participant.py): the coordinator fails it.
            self.seq.finish(entry.txn)  # first: abort_prepared's callback would poll again, mid-poll
            replica.abort_prepared(entry.txn)
            self.send(coordinator, LuigiReady(node.shard, node.id, entry.txn, False, replica.epoch, 0, [],
                                              READS_TOO_LARGE + str(size)))
            return
        self.send(coordinator, LuigiReady(node.shard, node.id, entry.txn, True, replica.epoch, clock, items, ""))

    def due_in_ms(self) -> float | None:
        """How soon an agreed entry's timestamp comes due on our clock (None:
        none waits for the clock): the host wakes us then rather than at the
        next tick, since a due entry holds up everything conflicting."""
        if not self.seq.entries:
            return None
        wall_us = self.wall_us()
        clock = self.seq.clock_us(wall_us)
        first = min((e.t for e in self.seq.entries.values() if e.agreed and not e.started and e.t > clock), default=None)
        if first is None:
            return None
        # The wall clock counts whole milliseconds: nothing comes due before
        # it reaches the millisecond holding ``first``. Waking sooner finds
        # the clock unchanged and asks again (a wake every microsecond).
        return float(-(-first // 1000) - wall_us // 1000)

    def _prepared_done(self, txn: tuple) -> None:
        if self.seq.finish(txn) is not None:
            self.poll()

    def tick(self) -> None:
        node = self.node
        for entry in self.seq.expire(node.mono_ms, 2 * node.cfg.txn_timeout_ms):
            del entry  # its coordinator went quiet: it started nothing here
        self.poll()

    # -- single-shard transactions ------------------------------------------------------------------
    def admit(self, token: Any, request: Any, since: float, trap_remote: bool) -> Footprint | None:
        """May this single-shard request run here now? Its footprint if so;
        None if it was queued for its turn or answered an error."""
        node = self.node
        try:
            fps = request_footprints(node, request)
        except FootprintError as exc:
            node.deliver_error(token, errors.LUIGI_NO_FOOTPRINT.format(exc))
            return None
        fp = fps.get(node.shard) or Footprint()
        if len(fps) > 1 or (fps and node.shard not in fps):
            node.deliver_error(token, errors.LUIGI_OUTSIDE_FOOTPRINT.format("another shard"))
            return None
        if self.seq.try_local(fp, self.wall_us()) is not None:
            return fp
        self.local_seq += 1
        if not self.seq.enqueue_local((-1, -1, self.local_seq), fp, self.wall_us(), node.mono_ms,
                                      (token, request, since, trap_remote)):
            node.deliver_error(token, errors.LUIGI_QUEUE_FULL.format(node.shard))
        return None

    def runs_procedure(self, request: Any) -> bool:
        if type(request) is WatchRequest:
            return False
        lookup = self.node.lookup
        for argv in request.commands:
            spec = lookup(argv)
            if "movablekeys" in spec.flags and (spec.key_finder is None or spec.keys_declared):
                return True  # it may touch keys beyond what it names: trap them
        return False

    def classify(self, request: Any) -> tuple[str, int]:
        """Where a procedure runs: at its one shard's leader, or coordinated.
        (A footprint that cannot be had is reported where it runs.)"""
        node = self.node
        try:
            shards = sorted(request_footprints(node, request))
        except FootprintError:
            return "single", node.shard
        if len(shards) <= 1:
            return "single", shards[0] if shards else node.shard
        return "multi", -1

    def _may_expire(self, key: bytes) -> bool:
        return self.seq.try_local(Footprint(writes=(key,)), self.wall_us()) is not None

    def stats(self) -> dict[str, int]:
        return self.seq.stats()


def covers_owns(node: "NodeCore", fp: Footprint):
    """The ``owns`` test of a single-shard run under Luigi: our shard's keys
    inside the footprint; anything else ends the run (NeedRemote)."""
    shard_of, shard = node.slots.shard_of, node.shard
    return lambda key: shard_of(key) == shard and fp.covers(key)
