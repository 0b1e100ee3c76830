"""The one ready loop: what makod and the simulator both run around a node core.

The core decides; the driver does what it is told, in the order the rules
require (DESIGN.md, "pure cores, thin drivers"):

1. take a ``ready()`` batch from the core;
2. a leader's Accepts may leave at once (it counts its own vote only once its
   copy is synced); everything else in the batch waits;
3. persist the batch's promise and log entries (group commit: every batch
   waiting goes into one synced write; at most ``max_persist_groups`` writes
   in flight, one syncing and the next queued behind it);
4. once a batch and every earlier one are durable: send its messages, hand
   its results and releases to the clients, and ``advance()`` the core.

Besides the loop: checkpoints written in parts small enough not to stall the
loop, log compaction below a checkpoint that is on disk, and snapshots sent
to and installed from peers.

The world reaches the driver only through ports, so the simulator runs this
very code with fake ones:

* ``Clock``: ``mono_ms()`` (timers and leases; never goes back) and
  ``wall_ms()`` (key expiry; may step);
* ``Net``: ``send(node, message)``;
* ``Disk``: the replica's store plus two ordered queues of write jobs,
  ``submit_log`` (promises, log entries, compaction) and ``submit_state``
  (checkpoints, snapshot installs). A job is durable when its ``done``
  callback runs; a crash loses whatever job has not finished.
  ``stream_snapshot`` reads a consistent snapshot off the loop;
* ``Host``: where client results go, and how the host wants to be woken.
"""

from __future__ import annotations

import random
import re
from collections import deque
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Iterable, Protocol

from makod.core.messages import Message, SnapshotChunk, ballot_node, ballot_round
from makod.core.node import NodeCore, NodeOutput
from makod.core.paxos import LEADER
from makod.core.replica import first_request_id
from makod.core.snapshots import SNAPSHOT_CHUNK_BYTES, SnapshotReceiver, snapshot_messages
from makod.storage.base import encode_for_checkpoint

# "replica N" in a core's role reason: the host names it.
_REPLICA_ID = re.compile(r"replica (\d+)")


class Clock(Protocol):
    def mono_ms(self) -> float: ...

    def wall_ms(self) -> int: ...


class Net(Protocol):
    def send(self, node: int, msg: Message) -> None: ...


class Disk(Protocol):
    store: Any  # makod.storage.base.ReplicaStore

    def submit_log(self, job: Callable[[], None], done: Callable[[], None]) -> None: ...

    def submit_state(self, job: Callable[[], None], done: Callable[[], None]) -> None: ...

    def stream_snapshot(self, produce: Callable[[], Iterable[Message]], each: Callable[[Message], None]) -> None: ...


class Host(Protocol):
    def on_result(self, rid: int, result: Any, released: bool) -> None:
        """A request's result; ``released`` False: hold it until on_release(rid)."""

    def on_release(self, rid: int) -> None: ...

    def on_keyspace_events(self, events: list[tuple]) -> None:
        """Keyspace notifications of released transactions: (db, class, event, key)."""

    def schedule_pump(self) -> None:
        """Call ``Driver.pump`` soon (the host's next loop iteration)."""

    def on_event(self, kind: str, detail: str) -> None:
        """Something an operator wants in the log: a role change, a snapshot."""

    def schedule_wakeup(self, delay_ms: float) -> None:
        """Call ``Driver.wake`` in about ``delay_ms`` (sooner than the next tick)."""

    def on_chosen(self, slot: int, value: bytes) -> None:
        """A slot this replica learned is chosen (the simulator checks that no
        slot is ever chosen with two values)."""


@dataclass
class DriverConfig:
    checkpoint_interval_ms: float = 5_000.0
    # Records encoded and written per part of a checkpoint (one part per tick).
    checkpoint_chunk_keys: int = 4_000
    # Checkpoint early once this many keys changed (bounds the replay after a crash).
    checkpoint_dirty_keys: int = 200_000
    log_retain_slots: int = 20_000
    # The retained log is bounded in bytes too (big values would otherwise
    # keep log_retain_slots of them), and that many new log bytes bring a
    # checkpoint forward so the log can be compacted.
    log_retain_bytes: int = 64 * 1024 * 1024
    max_persist_groups: int = 2
    # One pump works at most this long by the clock, then yields back to the
    # host's loop (heartbeats, acknowledgements, clients) and goes on next time:
    # a follower catching up must still answer its leader promptly. A fake
    # clock does not move during a pump, so the simulator never yields.
    pump_budget_ms: float = 20.0


class Driver:
    def __init__(
        self,
        core: NodeCore,
        clock: Clock,
        net: Net,
        disk: Disk,
        host: Host,
        config: DriverConfig,
        *,
        compacted_upto: int,
        rng: random.Random,
    ) -> None:
        self.core = core
        self.clock = clock
        self.net = net
        self.disk = disk
        self.store = disk.store
        self.host = host
        self.cfg = config
        self.compacted_upto = compacted_upto  # the log holds nothing at or below this
        self.next_rid = first_request_id(rng)
        # Ready batches in the order the core produced them: [output, durable].
        self.readies: deque[list] = deque()
        self.unsynced: list[list] = []
        self.persisting = 0  # log writes handed to the disk, not yet durable
        self.checkpoint_parts: tuple[Any, int] | None = None  # (Checkpoint, next key index)
        self.last_checkpoint_ms = clock.mono_ms()
        self.last_checkpoint_slot = core.applied_slot
        self.last_checkpoint_marks: list | None = None
        self.installing_snapshot = False
        self.snapshots = SnapshotReceiver()
        self.last_role: tuple[str, int] | None = None
        self.role_changes = 0  # for /metrics
        self.elections = 0  # campaigns this replica started
        self._in_loop = False  # pump or completion running: no re-entry
        self._again = False
        # Figures for INFO and MAKO STATUS.
        self.persist_groups = 0
        self.persist_entries = 0
        self.log_bytes_since_checkpoint = 0
        self.checkpoints = 0

    # -- inputs ----------------------------------------------------------------------------
    def tick(self) -> None:
        self.core.tick(self.clock.mono_ms(), self.clock.wall_ms())
        self._note_role()
        self.maybe_checkpoint()
        self.pump()

    def wake(self) -> None:
        self.core.wake(self.clock.mono_ms(), self.clock.wall_ms())
        self.pump()

    def receive(self, msg: Message) -> None:
        """A peer's message. The host pumps afterwards (at once, or once per loop
        iteration so that everything that arrived together shares one sync)."""
        self.core.observe_time(self.clock.mono_ms(), self.clock.wall_ms())
        if type(msg) is SnapshotChunk:
            self._on_snapshot_chunk(msg)
        else:
            self.core.step(msg)

    def submit(self, request: Any) -> tuple[int, tuple[Any, bool] | None]:
        """A client's request: (rid, answer). ``answer`` is (result, released) when
        it ran at once; otherwise the result comes later through the host."""
        self.next_rid += 1
        rid = self.next_rid
        self.core.observe_time(self.clock.mono_ms(), self.clock.wall_ms())
        return rid, self.core.submit(rid, request)

    def fast_read(self, db: int, argv: list[bytes], spec: Any) -> tuple[Any, bool] | None:
        """A one-key read answered at once (NodeCore.fast_read), or None: submit it."""
        self.core.observe_time(self.clock.mono_ms(), self.clock.wall_ms())
        return self.core.fast_read(db, argv, spec)

    # -- the ready loop ----------------------------------------------------------------------
    def pump(self) -> None:
        if self._in_loop:
            # Called back from inside the loop (a host delivering a result whose
            # client sent another request at once): the loop running already
            # picks the new work up; a nested one would deliver out of order.
            self._again = True
            return
        self._in_loop = True
        try:
            while True:
                self._again = False
                self._pump_once()
                if not self._again:
                    break
        finally:
            self._in_loop = False
        wakeup = self.core.wakeup_in_ms()
        if wakeup is not None:
            self.host.schedule_wakeup(wakeup)

    def _pump_once(self) -> None:
        core = self.core
        send = self.net.send
        deadline = self.clock.mono_ms() + self.cfg.pump_budget_ms
        while core.has_ready:
            if self.clock.mono_ms() > deadline:
                self.host.schedule_pump()
                break
            out = core.ready()
            for slot, value in out.paxos.committed:
                self.host.on_chosen(slot, value)
            for peer in out.paxos.snapshot_to:
                self._send_snapshot(peer)
            if out.must_persist():
                for dest, msg in out.take_early_messages():
                    send(dest, msg)
                entry = [out, False]
                self.readies.append(entry)
                self.unsynced.append(entry)
            else:
                self.readies.append([out, True])
        self._note_role()
        self._start_persist()
        self._complete_readies()

    def _start_persist(self) -> None:
        if self.persisting >= self.cfg.max_persist_groups or not self.unsynced:
            return
        batch, self.unsynced = self.unsynced, []
        promised = None
        entries: list = []
        for entry in batch:
            pready = entry[0].paxos
            if pready.promised is not None:
                promised = pready.promised
            entries.extend(pready.entries)
        self.persisting += 1
        self.persist_groups += 1
        self.persist_entries += len(entries)
        for entry in entries:
            self.log_bytes_since_checkpoint += len(entry[2])
        self.disk.submit_log(self.store.persist_job(promised, entries), partial(self._persisted, batch))

    def _persisted(self, batch: list) -> None:
        for entry in batch:
            entry[1] = True
        self.persisting -= 1
        self._start_persist()
        if self._in_loop:
            self._again = True
            return
        self._in_loop = True
        try:
            self._complete_readies()
        finally:
            self._in_loop = False

    def _complete_readies(self) -> None:
        """Send, deliver and advance every durable batch at the head, in order."""
        readies = self.readies
        send = self.net.send
        host = self.host
        while readies and readies[0][1]:
            out: NodeOutput = readies.popleft()[0]
            for dest, msg in out.messages:
                send(dest, msg)
            for rid, result, released in out.results:
                host.on_result(rid, result, released)
            for rid in out.releases:
                host.on_release(rid)
            if out.events:
                host.on_keyspace_events(out.events)
            self.core.advance(out)
        if self.core.has_ready:
            host.schedule_pump()

    def _note_role(self) -> None:
        paxos = self.core.paxos
        role = (paxos.role, paxos.promised)
        if role != self.last_role:
            reason = paxos.role_reason
            paxos.role_reason = ""
            self.role_changes += 1
            if role[0] == "candidate":
                self.elections += 1
            name = getattr(self.host, "node_name", str)
            leader = paxos.known_leader()
            ballot = f"{ballot_round(role[1])}/{name(ballot_node(role[1]))}" if role[1] else "0"
            line = f"{role[0]} (ballot {ballot}, leader {'none' if leader is None else name(leader)})"
            if reason:
                line += ": " + _REPLICA_ID.sub(lambda m: name(int(m.group(1))), reason)
            self.host.on_event("role", line)
            self.last_role = role

    @property
    def idle(self) -> bool:
        """Nothing waiting for the disk (the host may stop)."""
        return not (self.readies or self.unsynced or self.persisting or self.checkpoint_parts)

    # -- checkpoints ---------------------------------------------------------------------------
    def maybe_checkpoint(self, force: bool = False) -> None:
        """Persist committed state in parts small enough not to stall the loop.

        A checkpoint taken at applied slot A is written ``checkpoint_chunk_keys``
        records per call; each record is read (committed, possibly newer than
        A: see durability.Checkpoint) and encoded when its part is written.
        Only the last part records A and lets the log be compacted below it,
        so a crash midway replays from the previous checkpoint.
        """
        if self.installing_snapshot:
            return  # the snapshot replaces the state; a checkpoint now would write older state over it
        if self.checkpoint_parts is None:
            now = self.clock.mono_ms()
            due = (now - self.last_checkpoint_ms >= self.cfg.checkpoint_interval_ms
                   or self.log_bytes_since_checkpoint >= self.cfg.log_retain_bytes // 2)
            if not (force or due or self.core.tracker.pending >= self.cfg.checkpoint_dirty_keys):
                return
            ckpt = self.core.checkpoint()
            if ckpt is None:
                return
            self.last_checkpoint_ms = now
            self.log_bytes_since_checkpoint = 0
            changed = (
                ckpt.keys or ckpt.flush or ckpt.records_put or ckpt.records_del
                or ckpt.applied_slot > self.last_checkpoint_slot or ckpt.marks != self.last_checkpoint_marks
            )
            if not (changed or force):
                return
            self.last_checkpoint_marks = ckpt.marks
            self.checkpoint_parts = (ckpt, 0)
        ckpt, pos = self.checkpoint_parts
        value_of = ckpt.value_of
        chunk_keys = self.cfg.checkpoint_chunk_keys
        while True:
            chunk = ckpt.keys[pos : pos + chunk_keys]
            first = pos == 0
            pos += len(chunk)
            last = pos >= len(ckpt.keys)
            encoded = [(key, None if rec is None else encode_for_checkpoint(rec)) for key in chunk for rec in (value_of(key),)]
            job = self.store.checkpoint_chunk_job(encoded, ckpt.flush and first, ckpt if last else None)
            if last:
                self.disk.submit_state(job, partial(self._checkpointed, ckpt.applied_slot))
                self.checkpoint_parts = None
                self.checkpoints += 1
                self.last_checkpoint_slot = ckpt.applied_slot
                return
            self.disk.submit_state(job, _nothing)
            self.checkpoint_parts = (ckpt, pos)
            if not force:
                return  # the rest on the next calls

    def _checkpointed(self, applied_slot: int) -> None:
        """A whole checkpoint is on disk: compact the log below it (keeping some slots
        for lagging followers)."""
        upto = self._retain_floor(applied_slot)
        if upto > self.compacted_upto and upto <= self.core.paxos.handed:
            # The core forgets the entries now; the disk follows, in order.
            self.core.paxos.compacted(upto)
            self.compacted_upto = upto
            self.disk.submit_log(partial(self.store.compact, upto), _nothing)

    def _retain_floor(self, applied_slot: int) -> int:
        """The highest slot the log may drop: keep at most log_retain_slots slots
        and log_retain_bytes bytes below the checkpoint."""
        floor = applied_slot - self.cfg.log_retain_slots
        budget = self.cfg.log_retain_bytes
        log = self.core.paxos.log
        for slot in range(applied_slot, max(floor, self.compacted_upto), -1):
            entry = log.get(slot)
            if entry is not None:
                budget -= len(entry[1])
                if budget < 0:
                    return slot
        return floor

    # -- snapshots -------------------------------------------------------------------------------
    def _send_snapshot(self, peer: int) -> None:
        """Stream our last checkpoint to ``peer``, read off the loop (one consistent read)."""
        shard, me, store = self.core.shard, self.core.id, self.store
        self.host.on_event("snapshot", f"sending a snapshot to node {peer}")
        self.disk.stream_snapshot(
            lambda: snapshot_messages(shard, me, store.snapshot_chunks(SNAPSHOT_CHUNK_BYTES), SNAPSHOT_CHUNK_BYTES),
            partial(self.net.send, peer),
        )

    def _on_snapshot_chunk(self, msg: SnapshotChunk) -> None:
        got = self.snapshots.receive(msg, self.core.applied_slot)
        if got is None or self.core.paxos.role == LEADER or self.installing_snapshot:
            return
        applied, clock, chunks, meta = got
        self.installing_snapshot = True
        # A checkpoint still being written in parts holds older state: drop it.
        # Parts already queued land before the snapshot, which overwrites them.
        self.checkpoint_parts = None
        store = self.store

        def install() -> None:
            store.install_snapshot(applied, clock, chunks, meta)

        def installed() -> None:
            self.installing_snapshot = False
            loaded = store.load()
            if self.core.install_snapshot(applied, clock, loaded.keyspace, loaded.marks, loaded.records):
                self.compacted_upto = max(self.compacted_upto, applied)
                self.last_checkpoint_slot = max(self.last_checkpoint_slot, applied)
                self.host.on_event("snapshot", f"installed a snapshot at slot {applied} ({len(loaded.keyspace)} keys)")
            else:
                # We got past the snapshot meanwhile: the disk now holds older
                # state than memory, so the next checkpoint rewrites all of it.
                self.core.tracker.mark_all_dirty()
            self.host.schedule_pump()

        self.disk.submit_state(install, installed)


def _nothing() -> None:
    pass
