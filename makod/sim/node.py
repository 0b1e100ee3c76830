"""A simulated makod: the real node core and the real driver (makod/driver.py)
behind fake ports.

* ``SimClock``: this node's own clocks, read off the world's true time with
  the node's offset and rate (and, for the wall clock, its steps);
* ``SimNet``: sends through the world's network (loss, delay, partitions);
* ``SimDisk``: the node's MemoryStore (what survives a crash) and two
  ordered job queues with simulated latency, like the two writer threads. A
  job lands when its latency has passed; a crash loses the jobs not landed.
"""

from __future__ import annotations

import random
from collections import deque
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Iterable

from makod.core.messages import Message
from makod.core.node import NodeCore
from makod.core.paxos import PaxosConfig
from makod.core.replica import ReplicaConfig
from makod.driver import Driver, DriverConfig
from makod.storage.memory_store import MemoryStore
import makod.procs  # noqa: F401  (registers the built-in stored procedures)
import makod.commands  # noqa: F401  (registers every command in TABLE)
from makod.kv import glob
from makod.kv.notify import TRACKING_CLASS
from makod.kv.table import TABLE, resolve

if TYPE_CHECKING:
    from makod.sim.world import World


class SimClock:
    def __init__(self, world: "World", node_id: int) -> None:
        self.world = world
        self.node_id = node_id

    def mono_ms(self) -> float:
        return self.world.node_mono_ms(self.node_id)

    def wall_ms(self) -> int:
        return self.world.node_wall_ms(self.node_id)


class SimNet:
    def __init__(self, world: "World", node_id: int) -> None:
        self.world = world
        self.node_id = node_id

    def send(self, node: int, msg: Message) -> None:
        self.world.send(self.node_id, node, msg)


class SimDisk:
    """Two FIFO job queues (log, state) over the node's MemoryStore.

    Each queue runs one job at a time, like a writer thread; a job's effect
    reaches the store when its simulated latency has passed, then ``done``
    runs. A crash (a new generation) drops every job that had not landed.
    """

    def __init__(self, world: "World", node: "SimNode", store: MemoryStore) -> None:
        self.world = world
        self.node = node
        self.store = store
        self.queues: dict[str, deque] = {"log": deque(), "state": deque()}
        self.busy = {"log": False, "state": False}

    def submit_log(self, job: Callable[[], None], done: Callable[[], None]) -> None:
        self._submit("log", job, done)

    def submit_state(self, job: Callable[[], None], done: Callable[[], None]) -> None:
        self._submit("state", job, done)

    def _submit(self, queue: str, job: Callable[[], None], done: Callable[[], None]) -> None:
        self.queues[queue].append((job, done))
        self._next(queue)

    def _next(self, queue: str) -> None:
        if self.busy[queue] or not self.queues[queue]:
            return
        self.busy[queue] = True
        job, done = self.queues[queue][0]
        self.world.schedule_disk(self.node, partial(self._landed, queue, job, done))

    def _landed(self, queue: str, job: Callable[[], None], done: Callable[[], None]) -> None:
        self.queues[queue].popleft()
        job()
        self.busy[queue] = False
        done()
        self._next(queue)
        self.node.pump()

    def in_flight(self) -> list[Callable[[], None]]:
        """Jobs handed to the disk and not landed (a crash may still land the head of each queue)."""
        return [q[0][0] for q in self.queues.values() if q]

    def stream_snapshot(self, produce: Callable[[], Iterable[Message]], each: Callable[[Message], None]) -> None:
        for msg in produce():
            each(msg)


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
        driver_config: DriverConfig,
        preferred_leader: int | None = None,
        initial_members: tuple[list[int], list[int]] | None = None,
    ) -> None:
        self.world = world
        self.id = node_id
        self.shard = shard
        self.disk = disk
        self.wakeup_due: float | None = None  # world time (schedule_wakeup)
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
            initial_members=initial_members,
        )
        # Every node reports the keys writes change, as when a client tracks
        # keys somewhere in the cluster (tracking_check.py checks them).
        self.core.set_track_writes(True)
        self.sim_disk = SimDisk(world, self, disk)
        self.driver = Driver(
            self.core, SimClock(world, node_id), SimNet(world, node_id), self.sim_disk, self, driver_config,
            compacted_upto=min(loaded.log, default=loaded.applied_slot + 1) - 1, rng=rng,
        )
        self.pending: dict[int, Any] = {}  # rid -> client callback
        self.held: dict[int, Any] = {}  # rid -> executed result awaiting release
        self.paused_until = -1.0

    # -- inputs from the world ------------------------------------------------------------
    def tick(self) -> None:
        self.driver.tick()

    def receive(self, msg: Message) -> None:
        self.driver.receive(msg)
        self.pump()

    def submit(self, request: Any, callback) -> None:
        """A client's request; ``callback(result)`` runs when the reply is released."""
        rid, answer = self.driver.submit(request)
        if answer is not None and answer[1]:
            callback(answer[0])
        else:
            self.pending[rid] = callback
            if answer is not None:
                self.held[rid] = answer[0]
        self.pump()

    def pump(self) -> None:
        self.driver.pump()

    # -- the driver's host side --------------------------------------------------------------
    def on_result(self, rid: int, result: Any, released: bool) -> None:
        if released:
            self.held.pop(rid, None)
            callback = self.pending.pop(rid, None)
            if callback is not None:
                callback(result)
        else:
            self.held[rid] = result

    def on_release(self, rid: int) -> None:
        callback = self.pending.pop(rid, None)
        result = self.held.pop(rid)
        if callback is not None:
            callback(result)

    def on_keyspace_events(self, events: list[tuple]) -> None:
        """Keyspace notifications stay off here; what client-side caching
        would invalidate is noted for tracking_check.py."""
        world = self.world
        for event in events:
            if event[1] == TRACKING_CLASS:
                if event[2] == "flush":
                    world.invalidated_all_ms = world.now
                else:
                    world.invalidated_ms[event[3]] = world.now

    def schedule_pump(self) -> None:
        self.world.at(0, self._pump_if_alive)

    def schedule_wakeup(self, delay_ms: float) -> None:
        due = self.world.now + delay_ms
        if self.wakeup_due is not None and self.wakeup_due <= due:
            return
        self.wakeup_due = due
        self.world.at(delay_ms, self._wake_if_alive)

    def _wake_if_alive(self) -> None:
        if self.wakeup_due is not None and self.world.now < self.wakeup_due:
            return  # superseded by a sooner one
        self.wakeup_due = None
        if self.world.nodes.get(self.id) is self:
            self.driver.wake()

    def _pump_if_alive(self) -> None:
        if self.world.nodes.get(self.id) is self:
            self.pump()

    def on_event(self, kind: str, detail: str) -> None:
        self.world.trace(f"n{self.id} {kind}: {detail}")

    def on_chosen(self, slot: int, value: bytes) -> None:
        self.world.observe_chosen(self.id, slot, value)
