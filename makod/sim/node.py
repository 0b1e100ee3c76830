"""A simulated makod: the real ReplicaCore behind a driver that obeys the same rules.

The driver here does what makod/server.py does, with the world's fake clock,
network and disk: a ready batch that must be persisted waits for its (slow,
simulated) disk write; its messages, results and advance() follow only once
it and every earlier batch are durable; a leader's Accepts go out early;
writes waiting for the disk are lost if the replica crashes first.
"""

from __future__ import annotations

import random
from collections import deque
from functools import partial
from typing import TYPE_CHECKING, Any

from makod.core.messages import Message, SnapshotChunk
from makod.core.paxos import PaxosConfig
from makod.core.node import NodeCore
from makod.core.replica import ReplicaConfig, first_request_id
from makod.core.snapshots import SNAPSHOT_CHUNK_BYTES, SnapshotReceiver, snapshot_messages
from makod.storage.memory_store import MemoryStore
import makod.procs  # noqa: F401  (registers the built-in stored procedures)
import resp.commands  # noqa: F401  (registers every command in TABLE)
from resp import glob
from resp.table import TABLE, resolve

if TYPE_CHECKING:
    from makod.sim.world import World


class SimNode:
    def __init__(
        self,
        world: "World",
        node_id: int,
        shard: int,
        members: list[tuple[list[int], list[int]]],
        slot_ranges: list[list[tuple[int, int]]],
        disk: MemoryStore,
        rng: random.Random,
        paxos_config: PaxosConfig,
        replica_config: ReplicaConfig,
        log_retain_slots: int,
        checkpoint_every_ms: float,
        preferred_leader: int | None = None,
    ) -> None:
        self.world = world
        self.id = node_id
        self.shard = shard
        self.disk = disk
        self.log_retain_slots = log_retain_slots
        self.checkpoint_every_ms = checkpoint_every_ms
        loaded = disk.load()
        self.core = NodeCore(
            node_id,
            shard,
            members,
            slot_ranges,
            rng=rng,
            loaded=loaded,
            handlers=partial(resolve, TABLE),
            matcher_factory=glob.compile_matcher,
            config=replica_config,
            paxos_config=paxos_config,
            preferred_leader=preferred_leader,
        )
        self.compacted_upto = loaded.applied_slot
        self.last_checkpoint_ms = world.now
        self.readies: deque[list] = deque()
        self.persist_queue: deque[list] = deque()  # FIFO disk writes, one at a time
        self.persisting = False
        self.pending: dict[int, Any] = {}  # rid -> client callback
        self.held: dict[int, Any] = {}  # rid -> executed result awaiting release
        self.next_rid = first_request_id(rng)
        self.snapshots = SnapshotReceiver()
        self.alive = True
        self.last_role = "boot"
        self.paused_until = -1.0

    # -- inputs from the world ------------------------------------------------------------
    def tick(self) -> None:
        self.core.tick(self.world.now, int(self.world.wall_ms()))
        if self.world.now - self.last_checkpoint_ms >= self.checkpoint_every_ms:
            self.checkpoint()
        self.pump()

    def receive(self, msg: Message) -> None:
        self.core.observe_time(self.world.now, int(self.world.wall_ms()))
        if type(msg) is SnapshotChunk:
            got = self.snapshots.receive(msg, self.core.applied_slot)
            if got is not None:
                applied, clock, chunks = got
                if self.core.paxos.role != "leader" and applied > self.core.applied_slot:
                    self.disk.install_snapshot(applied, clock, chunks)
                    loaded = self.disk.load()
                    self.core.install_snapshot(applied, clock, loaded.keyspace)
                    self.compacted_upto = max(self.compacted_upto, applied)
                    self.world.trace(f"n{self.id} installed snapshot at {applied}")
        else:
            self.core.step(msg)
        self.pump()

    def submit(self, request: Any, callback) -> None:
        """A client's request; ``callback(result)`` runs when the reply is released."""
        self.next_rid += 1
        rid = self.next_rid
        self.core.observe_time(self.world.now, int(self.world.wall_ms()))
        answer = self.core.submit(rid, request)
        if answer is not None and answer[1]:
            callback(answer[0])
        else:
            self.pending[rid] = callback
            if answer is not None:
                self.held[rid] = answer[0]
        self.pump()

    # -- the driver rules ------------------------------------------------------------------
    def pump(self) -> None:
        core = self.core
        role = core.paxos.role
        if role != self.last_role:
            self.world.trace(f"n{self.id} {self.last_role} -> {role} (ballot {core.paxos.promised})")
            self.last_role = role
        while core.has_ready:
            out = core.ready()
            for slot, value in out.paxos.committed:
                self.world.observe_chosen(self.id, slot, value)
            for peer in out.paxos.snapshot_to:
                for msg in snapshot_messages(self.shard, self.id, self.disk.snapshot_chunks(SNAPSHOT_CHUNK_BYTES)):
                    self.world.send(self.id, peer, msg)
            if out.must_persist():
                for dest, msg in out.take_early_messages():
                    self.world.send(self.id, dest, msg)
                entry = [out, False]
                self.readies.append(entry)
                self.persist_queue.append(entry)
            else:
                self.readies.append([out, True])
        self._start_persist()
        self._complete()

    def _start_persist(self) -> None:
        if self.persisting or not self.persist_queue:
            return
        batch = list(self.persist_queue)
        self.persist_queue.clear()
        self.persisting = True
        self.world.schedule_disk(self, batch)

    def disk_done(self, batch: list) -> None:
        """The simulated disk finished the group write (only if we did not crash first)."""
        promised = None
        entries: list = []
        for entry in batch:
            pready = entry[0].paxos
            if pready.promised is not None:
                promised = pready.promised
            entries.extend(pready.entries)
        self.disk.persist(promised, entries)
        for entry in batch:
            entry[1] = True
        self.persisting = False
        self._start_persist()
        self._complete()
        self.pump()

    def _complete(self) -> None:
        while self.readies and self.readies[0][1]:
            out = self.readies.popleft()[0]
            for dest, msg in out.messages:
                self.world.send(self.id, dest, msg)
            for rid, result, released in out.results:
                if released:
                    self.held.pop(rid, None)
                    callback = self.pending.pop(rid, None)
                    if callback is not None:
                        callback(result)
                else:
                    self.held[rid] = result
            for rid in out.releases:
                callback = self.pending.pop(rid, None)
                result = self.held.pop(rid)
                if callback is not None:
                    callback(result)
            self.core.advance(out)

    def checkpoint(self) -> None:
        self.last_checkpoint_ms = self.world.now
        ckpt = self.core.checkpoint()
        if ckpt is None:
            return
        self.disk.checkpoint(ckpt)
        upto = ckpt.applied_slot - self.log_retain_slots
        if upto > self.compacted_upto:
            self.core.paxos.compacted(upto)
            self.disk.compact(upto)
            self.compacted_upto = upto

