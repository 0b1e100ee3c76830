"""The simulated world: one clock, one network, one disk per replica, one seed.

Events sit in a heap ordered by (time, sequence number), so equal times keep
insertion order and a seed replays exactly. The world injects faults (loss,
duplication, delay spikes that reorder, partitions both ways and one way,
crashes that keep only what reached the disk, pauses, leadership handovers,
clocks that drift and step), adds the WAN's delays between datacenters when
given one (geo.py), and checks after every chosen slot that no slot ever has
two values.
"""

from __future__ import annotations

import heapq
import random
from typing import Callable

from makod.core.membership import CONFIG_TAG
from makod.core.messages import Message, Promise
from makod.core.paxos import LEADER, PaxosConfig
from makod.core.replica import ReplicaConfig
from makod.driver import DriverConfig
from makod.core.txn_messages import TxnDecision
from makod.sim import logcheck, nemesis
from makod.sim.faults import Faults
from makod.sim.geo import Wan
from makod.sim.node import SimNode
from makod.sim.reconfig import Reconfig
from makod.sim.reshard import Resharder
from makod.storage.memory_store import MemoryStore

WALL_BASE_MS = 1_800_000_000_000  # the simulated wall clock starts in 2027
# Adding a shard: the share of running replicas the news reaches late (a
# node slow to answer makoctl's MAKO TOPOLOGY RELOAD), and how late at most.
LATE_RELOAD_SHARE = 0.3
LATE_RELOAD_MS = 2000.0


class SafetyViolation(AssertionError):
    pass


def layout(shards: int, replicas: int, learners: int) -> list[tuple[list[int], list[int]]]:
    """Each shard's (voters, learners) node ids: shard by shard, voters first."""
    per_shard = replicas + learners
    return [
        (list(range(s * per_shard, s * per_shard + replicas)),
         list(range(s * per_shard + replicas, (s + 1) * per_shard)))
        for s in range(shards)
    ]


class World:
    def __init__(
        self,
        seed: int,
        replicas: int = 3,
        learners: int = 0,
        shards: int = 1,
        protocol: str = "mako",
        ack: str = "durable",
        preferred_leaders: bool = False,
        faults: Faults | None = None,
        election_timeout_ms: int = 300,
        heartbeat_ms: int = 50,
        tick_ms: float = 10.0,
        log_retain_slots: int | None = None,
        checkpoint_every_ms: float | None = None,
        trace_enabled: bool = False,
        wan: Wan | None = None,
        max_txn_bytes: int | None = None,
        membership_every_ms: float = 0.0,
        reshard_every_ms: float = 0.0,
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.faults = faults if faults is not None else Faults.from_seed(self.rng)
        self.now = 0.0
        self.tick_ms = tick_ms
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0
        self.members = layout(shards, replicas, learners)
        # Membership changes (reconfig.py): each shard's first membership,
        # which a replica with no checkpoint starts from; how often to change
        # one (0: never); replicas added and removed so far.
        self.initial_members = [(list(v), list(l)) for v, l in self.members]
        self.membership_every_ms = membership_every_ms
        self.reconfig = Reconfig(self, replicas)
        # Datacenters and the delays between them (geo.py); None: one LAN.
        self.wan = wan
        self.shard_of_node = {n: s for s, (v, l) in enumerate(self.members) for n in v + l}
        self.ids = sorted(self.shard_of_node)
        self.num_shards = shards
        per = 16384 // shards
        self.slot_ranges = [
            [(s * per, 16383 if s == shards - 1 else (s + 1) * per - 1)] for s in range(shards)
        ]
        # Slot moves (reshard.py): how often to start one (0: never).
        self.reshard_every_ms = reshard_every_ms
        self.resharder = Resharder(self)
        self.paxos_config = PaxosConfig(election_timeout_ms=election_timeout_ms, heartbeat_ms=heartbeat_ms)
        self.replica_config = ReplicaConfig(
            queue_timeout_ms=2000, forward_timeout_ms=3000, protocol=protocol, ack=ack,
            orphan_query_ms=self.faults.orphan_query_ms,
        )
        if max_txn_bytes is not None:
            self.replica_config.max_txn_bytes = max_txn_bytes
        # Small checkpoint parts, so crashes land in the middle of checkpoints.
        self.driver_config = DriverConfig(
            checkpoint_interval_ms=checkpoint_every_ms or self.faults.checkpoint_every_ms,
            checkpoint_chunk_keys=8,
            log_retain_slots=log_retain_slots or self.faults.log_retain_slots,
        )
        self.disks = {i: MemoryStore() for i in self.ids}
        self.nodes: dict[int, SimNode | None] = {}
        self.generation = {i: 0 for i in self.ids}  # bumps on crash: stale events are ignored
        self.partition: list[set[int]] | None = None
        self.blocked: set[tuple[int, int]] = set()  # one-way cuts: (src, dst)
        self.lossy: dict[int, tuple[float, float]] = {}  # node -> (until, share of its messages lost)
        # Fault patterns that wait for a message: each returns True to drop it.
        self.send_hooks: list[Callable[[int, int, Message], bool]] = []
        # Each replica's clocks (faults.py, "Clocks"): rate and offsets.
        f = self.faults
        self.clock_rate = {i: 1.0 + f.clock_rate_error * (2 * self.rng.random() - 1) for i in self.ids}
        self.clock_offset = {i: f.clock_offset_ms * self.rng.random() for i in self.ids}
        self.wall_offset = {i: f.clock_offset_ms * (2 * self.rng.random() - 1) for i in self.ids}
        self.chosen: dict[int, bytes] = {}
        # The world's own reading of each shard's chosen log (logcheck.py), and
        # every "abort" a replica answered to a participant's question.
        self.logs = {s: logcheck.ShardLog(seed, s, shards) for s in range(shards)}
        self.abort_answers: list[tuple[tuple, int, float]] = []
        self.trace_enabled = trace_enabled
        self.trace_lines: list[str] = []
        self.stats = {
            "sent": 0, "dropped": 0, "duplicated": 0, "crashes": 0, "partitions": 0, "pauses": 0,
            "handovers": 0, "wall_steps": 0,
        }
        self.faults_on = True
        # Client-side caching (tracking_check.py): when each key last had an
        # invalidation emitted, and when the last "drop everything" was.
        self.invalidated_ms: dict[bytes, float] = {}
        self.invalidated_all_ms = float("-inf")
        # Each shard's first voter is preferred (as in a real config's leader_datacenter).
        self.preferred = {s: v[0] for s, (v, _l) in enumerate(self.members)} if preferred_leaders else {}
        for i in self.ids:
            self._boot(i)

    # -- time and events -------------------------------------------------------------------
    def wall_ms(self) -> float:
        return WALL_BASE_MS + self.now

    def node_mono_ms(self, node_id: int) -> float:
        """The replica's monotonic clock: its own rate and offset, never back."""
        return self.clock_offset[node_id] + self.clock_rate[node_id] * self.now

    def node_wall_ms(self, node_id: int) -> int:
        """The replica's wall clock: its own rate and offset, plus the steps it took."""
        return int(WALL_BASE_MS + self.wall_offset[node_id] + self.clock_rate[node_id] * self.now)

    def at(self, delay_ms: float, fn: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._events, (self.now + delay_ms, self._seq, fn))

    def run_until(self, t_ms: float, stop: Callable[[], bool] | None = None) -> bool:
        """Run events up to time ``t_ms``; True if ``stop()`` became true first."""
        events = self._events
        while events and events[0][0] <= t_ms:
            when, _, fn = heapq.heappop(events)
            self.now = when
            fn()
            if stop is not None and stop():
                return True
        self.now = max(self.now, t_ms)
        return False

    def trace(self, line: str) -> None:
        if self.trace_enabled:
            self.trace_lines.append(f"{self.now:10.1f} {line}")

    # -- replicas ---------------------------------------------------------------------------
    def _boot(self, node_id: int) -> None:
        node = SimNode(
            self,
            node_id,
            self.shard_of_node[node_id],
            self._topology(),
            self.slot_ranges,
            self.disks[node_id],
            random.Random(self.rng.random()),
            self.paxos_config,
            self.replica_config,
            self.driver_config,
            self.preferred.get(self.shard_of_node[node_id]),
            self.initial_members[self.shard_of_node[node_id]],
        )
        self.nodes[node_id] = node
        gen = self.generation[node_id]
        # Replicas do not tick in lockstep: each starts at its own phase.
        self.at(self.rng.random() * self.tick_ms, lambda: self._tick(node_id, gen))

    def _tick(self, node_id: int, gen: int) -> None:
        if self.generation[node_id] != gen:
            return
        node = self.nodes[node_id]
        if node is not None:
            if self.now >= node.paused_until:
                node.tick()
                self.check_leases(node.shard)
            self.at(self.tick_ms, lambda: self._tick(node_id, gen))

    def crash(self, node_id: int) -> None:
        """Lose the replica's memory. A disk write in progress may land or not
        (the data reached the disk, but the process never learned it did)."""
        node = self.nodes.get(node_id)
        if node is None:
            return
        self.trace(f"n{node_id} CRASH")
        self.stats["crashes"] += 1
        for job in node.sim_disk.in_flight():
            if self.rng.random() < self.faults.land_on_crash_rate:
                job()
        self.nodes[node_id] = None
        self.generation[node_id] += 1

    def restart(self, node_id: int) -> None:
        if self.nodes.get(node_id) is not None or node_id in self.reconfig.removed:
            return
        self.trace(f"n{node_id} RESTART")
        self._boot(node_id)

    def add_node(self, shard: int) -> int:
        """Boot a new replica for ``shard`` (an empty disk, a fresh id) and tell
        every node of it; it joins the shard once a CONFIG entry names it."""
        node_id = max(self.shard_of_node) + 1
        self.shard_of_node[node_id] = shard
        self.ids.append(node_id)
        self.disks[node_id] = MemoryStore()
        self.generation[node_id] = 0
        f = self.faults
        self.clock_rate[node_id] = 1.0 + f.clock_rate_error * (2 * self.rng.random() - 1)
        self.clock_offset[node_id] = f.clock_offset_ms * self.rng.random()
        self.wall_offset[node_id] = f.clock_offset_ms * (2 * self.rng.random() - 1)
        if self.wan is not None:
            self.wan.datacenter[node_id] = self.wan.datacenter[self.initial_members[shard][0][0]]
        voters, learners = self.members[shard]
        self.members[shard] = (voters, learners + [node_id])
        self.trace(f"n{node_id} BOOT for shard {shard}")
        self.push_topology()
        self._boot(node_id)
        return node_id

    def add_shard(self) -> int:
        """Boot a new shard (as many voters as shard 0 started with, empty
        disks, fresh ids) that owns no slot, and tell every node of it, as
        makoctl cluster add-shard does; a replica that restarts later boots
        with it in its topology, as from the rewritten config file."""
        shard = self.num_shards
        count = len(self.initial_members[0][0])
        first = max(self.shard_of_node) + 1
        ids = list(range(first, first + count))
        f = self.faults
        for k, node_id in enumerate(ids):
            self.shard_of_node[node_id] = shard
            self.ids.append(node_id)
            self.disks[node_id] = MemoryStore()
            self.generation[node_id] = 0
            self.clock_rate[node_id] = 1.0 + f.clock_rate_error * (2 * self.rng.random() - 1)
            self.clock_offset[node_id] = f.clock_offset_ms * self.rng.random()
            self.wall_offset[node_id] = f.clock_offset_ms * (2 * self.rng.random() - 1)
            if self.wan is not None:
                # The k-th voter beside shard 0's k-th, as the first shards were placed.
                self.wan.datacenter[node_id] = self.wan.datacenter[self.initial_members[0][0][k % count]]
        self.members.append((list(ids), []))
        self.initial_members.append((list(ids), []))
        self.slot_ranges.append([])
        self.logs[shard] = logcheck.ShardLog(self.seed, shard, shard + 1)
        if self.preferred:
            self.preferred[shard] = ids[0]
        self.num_shards += 1
        self.trace(f"SHARD {shard} added: nodes {ids}")
        for node_id, node in list(self.nodes.items()):
            if node is None:
                continue  # it boots with the new topology
            if self.rng.random() < LATE_RELOAD_SHARE:
                gen = self.generation[node_id]
                self.at(self.rng.random() * LATE_RELOAD_MS, lambda n=node_id, g=gen: self._late_reload(n, g))
            else:
                node.core.set_members(self._topology())
        for node_id in ids:
            self._boot(node_id)
        return shard

    def _late_reload(self, node_id: int, gen: int) -> None:
        node = self.nodes.get(node_id)
        if node is not None and self.generation[node_id] == gen:
            self.trace(f"n{node_id} RELOAD (late): {self.num_shards} shards")
            node.core.set_members(self._topology())

    def knows_every_shard(self) -> bool:
        """Every running replica has heard of every shard (makoctl add-shard
        waits for this before moving slots to a new one)."""
        return all(node is None or node.core.num_shards == self.num_shards for node in self.nodes.values())

    def _topology(self) -> list[tuple[list[int], list[int]]]:
        # A copy: a node knows the topology it was told, not the world's as it changes.
        return [(list(v), list(l)) for v, l in self.members]

    def retire_node(self, node_id: int) -> None:
        """Stop a removed replica for good (its disk stays, unread)."""
        self.crash(node_id)
        self.nodes.pop(node_id, None)
        if node_id in self.ids:
            self.ids.remove(node_id)
        shard = self.shard_of_node[node_id]
        voters, learners = self.members[shard]
        self.members[shard] = ([v for v in voters if v != node_id], [n for n in learners if n != node_id])
        self.trace(f"n{node_id} RETIRED from shard {shard}")
        self.push_topology()

    def push_topology(self) -> None:
        for node in self.nodes.values():
            if node is not None:
                node.core.set_members(self._topology())

    def pause(self, node_id: int, length_ms: float) -> None:
        node = self.nodes.get(node_id)
        if node is not None:
            self.trace(f"n{node_id} PAUSE {length_ms:.0f}ms")
            self.stats["pauses"] += 1
            node.paused_until = self.now + length_ms

    def leaders(self, shard: int | None = None) -> list[int]:
        return [
            i for i, n in self.nodes.items()
            if n is not None and n.core.paxos.role == LEADER and (shard is None or n.shard == shard)
        ]

    def alive(self) -> list[int]:
        return [i for i, n in self.nodes.items() if n is not None]

    # -- disk --------------------------------------------------------------------------------
    def schedule_disk(self, node: SimNode, land: Callable[[], None]) -> None:
        """Run ``land`` when the disk write finishes, unless the node crashed first."""
        f = self.faults
        latency = f.disk_latency_ms_min + self.rng.random() * (f.disk_latency_ms_max - f.disk_latency_ms_min)
        gen = self.generation[node.id]

        def done() -> None:
            if self.generation[node.id] == gen and self.nodes.get(node.id) is node:
                if self.now < node.paused_until:
                    self.at(node.paused_until - self.now, done)
                    return
                land()

        self.at(latency, done)

    # -- network -------------------------------------------------------------------------------
    def connected(self, a: int, b: int) -> bool:
        """Can a message from ``a`` reach ``b`` now?"""
        if (a, b) in self.blocked:
            return False
        if self.partition is None:
            return True
        return any(a in group and b in group for group in self.partition)

    def send(self, src: int, dst: int, msg: Message) -> None:
        self.stats["sent"] += 1
        if type(msg) is TxnDecision and msg.outcome == "abort":
            self.abort_answers.append((msg.txn, src, self.now))
        if self.send_hooks and self.faults_on and any(hook(src, dst, msg) for hook in list(self.send_hooks)):
            self.stats["dropped"] += 1
            return
        f = self.faults
        if not self.faults_on:
            # The WAN is no fault: it stays when the faults stop.
            self._deliver_later(src, dst, msg, f.delay_ms_min + self._wan_delay_ms(src, dst))
            return
        if type(msg) is Promise and msg.ok and self.rng.random() < f.crash_after_promise_rate:
            self.at(self.rng.random() * 5, lambda: self.crash(src))
            self.at(10 + self.rng.random() * 20, lambda: self.restart(src))
        if self.rng.random() < f.drop_rate:
            self.stats["dropped"] += 1
            return
        lossy = self.lossy.get(src)
        if lossy is not None and self.now < lossy[0] and self.rng.random() < lossy[1]:
            self.stats["dropped"] += 1
            return
        copies = 2 if self.rng.random() < f.duplicate_rate else 1
        if copies == 2:
            self.stats["duplicated"] += 1
        for copy in range(copies):
            delay = f.delay_ms_min + self.rng.random() * (f.delay_ms_max - f.delay_ms_min)
            if self.rng.random() < f.delay_spike_rate:
                delay += self.rng.random() * f.delay_spike_ms
            if copy and self.rng.random() < f.late_duplicate_share:
                # A copy that turns up seconds later, after restarts and elections.
                delay += 1000 + self.rng.random() * 5000
            self._deliver_later(src, dst, msg, delay + self._wan_delay_ms(src, dst))

    def _wan_delay_ms(self, src: int, dst: int) -> float:
        # Drawn last, and only with a WAN: runs without one keep their random stream.
        return self.wan.delay_ms(src, dst, self.rng) if self.wan is not None else 0.0

    def _deliver_later(self, src: int, dst: int, msg: Message, delay: float) -> None:
        def deliver() -> None:
            node = self.nodes.get(dst)
            if node is None or not self.connected(src, dst):
                return
            if self.now < node.paused_until:
                # A paused process does not read its socket; the message waits.
                self.at(node.paused_until - self.now, deliver)
                return
            node.receive(msg)

        self.at(delay, deliver)

    # -- invariants -----------------------------------------------------------------------------
    def check_leases(self, shard: int) -> None:
        """At most one replica of a shard may serve, or answer cross-shard reads, at
        any moment: two would let one of them answer with stale data. Each judges
        by its own clock, read now (as a request arriving now would)."""
        serving: list[int] = []
        answering: list[int] = []
        for i, node in self.nodes.items():
            if node is None or node.shard != shard:
                continue
            if node is None or self.now < node.paused_until:
                continue
            core = node.core
            core.observe_time(self.node_mono_ms(i), self.node_wall_ms(i))
            if core.replica.can_serve():
                serving.append(i)
            if core.replica.can_answer_reads():
                answering.append(i)
        if len(serving) > 1 or len(answering) > 1:
            raise SafetyViolation(
                f"seed {self.seed}: shard {shard} has two leaseholders at {self.now:.1f} ms: "
                f"serving {serving}, answering reads {answering}"
            )

    def observe_chosen(self, node_id: int, slot: int, value: bytes) -> None:
        """Called whenever a replica learns a slot is chosen: no slot ever gets two values."""
        key = (self.shard_of_node[node_id], slot)
        known = self.chosen.get(key)
        if known is None:
            self.chosen[key] = value
            self.logs[key[0]].read(slot, value)
            if value[:1] == CONFIG_TAG:
                self.reconfig.chosen(key[0], slot, value)
        elif known != value:
            raise SafetyViolation(
                f"seed {self.seed}: shard {key[0]} slot {slot} chosen twice with different values "
                f"(replica n{node_id} applied {value[:40]!r}, earlier {known[:40]!r})"
            )

    # -- fault schedule -----------------------------------------------------------------------------
    def start_faults(self, until_ms: float) -> None:
        f = self.faults
        if f.partition_every_ms:
            self._schedule(f.partition_every_ms, until_ms, self._partition_event)
        if f.crash_every_ms:
            self._schedule(f.crash_every_ms, until_ms, self._crash_event)
        if f.pause_every_ms:
            self._schedule(f.pause_every_ms, until_ms, self._pause_event)
        if f.handover_every_ms:
            self._schedule(f.handover_every_ms, until_ms, self._handover_event)
        if f.wall_step_every_ms:
            self._schedule(f.wall_step_every_ms, until_ms, self._wall_step_event)
        if f.nemesis_every_ms:
            self._schedule(f.nemesis_every_ms, until_ms, lambda _until: nemesis.run_pattern(self))
        if self.membership_every_ms:
            self._schedule(self.membership_every_ms, until_ms, lambda _until: self.reconfig.step())
        if self.reshard_every_ms:
            self._schedule(self.reshard_every_ms, until_ms, lambda _until: self.resharder.step())

    def _schedule(self, mean_ms: float, until_ms: float, fn: Callable[[float], None]) -> None:
        delay = self.rng.expovariate(1.0 / mean_ms)
        if self.now + delay < until_ms:
            def fire() -> None:
                if self.faults_on:
                    fn(until_ms)
                    self._schedule(mean_ms, until_ms, fn)

            self.at(delay, fire)

    def _partition_event(self, until_ms: float) -> None:
        ids = list(self.ids)
        self.rng.shuffle(ids)
        cut = self.rng.randrange(1, len(ids)) if len(ids) > 1 else 1
        side_a, side_b = set(ids[:cut]), set(ids[cut:])
        self.stats["partitions"] += 1
        length = self.rng.random() * self.faults.partition_length_ms * 2
        kind = self.rng.random()
        if kind >= 1.0 - self.faults.link_cut_share and self._cut_one_link(ids, length):
            return
        if kind < self.faults.one_way_share:
            # One direction only: A hears B, B never hears A.
            cut_links = {(a, b) for a in side_a for b in side_b}
            self.blocked |= cut_links
            self.trace(f"ONE-WAY CUT {sorted(side_a)} -> {sorted(side_b)}")

            def heal_one_way() -> None:
                self.blocked -= cut_links
                self.trace(f"HEAL ONE-WAY {sorted(side_a)} -> {sorted(side_b)}")

            self.at(length, heal_one_way)
            return
        self.partition = [side_a, side_b]
        self.trace(f"PARTITION {sorted(side_a)} | {sorted(side_b)}")

        def heal() -> None:
            self.partition = None
            self.trace("HEAL")

        self.at(length, heal)

    def _cut_one_link(self, ids: list[int], length: float) -> bool:
        """Cut the link between ``ids[0]`` and the next replica of its shard in
        ``ids`` (both ways), leaving every other link up. False: no such pair."""
        a = ids[0]
        b = next((n for n in ids[1:] if self.shard_of_node[n] == self.shard_of_node[a]), None)
        if b is None:
            return False
        links = {(a, b), (b, a)} - self.blocked
        self.blocked |= links
        self.trace(f"LINK CUT {a} <-> {b}")

        def heal_link() -> None:
            self.blocked -= links
            self.trace(f"HEAL LINK {a} <-> {b}")

        self.at(length, heal_link)
        return True

    def _crash_event(self, until_ms: float) -> None:
        alive = self.alive()
        if not alive:
            return
        leaders = self.leaders()
        busy = [i for i in alive if self.nodes[i].sim_disk.in_flight()]
        roll = self.rng.random()
        if busy and roll < self.faults.crash_busy_bias:
            victim = self.rng.choice(busy)  # mid-write: a checkpoint part, a snapshot, a log group
        elif leaders and self.rng.random() < self.faults.crash_leader_bias:
            victim = self.rng.choice(leaders)
        else:
            victim = self.rng.choice(alive)
        self.crash(victim)
        delay = self.rng.random() * self.faults.restart_after_ms * 2
        self.at(delay, lambda: self.restart(victim))

    def _pause_event(self, until_ms: float) -> None:
        alive = self.alive()
        if not alive:
            return
        leaders = self.leaders()
        if leaders and self.rng.random() < self.faults.pause_leader_bias:
            victim = self.rng.choice(leaders)
        else:
            victim = self.rng.choice(alive)
        self.pause(victim, self.rng.random() * self.faults.pause_length_ms * 2)

    def _handover_event(self, until_ms: float) -> None:
        """An operator moves a shard's leadership (makoctl cluster failover)."""
        leaders = [i for i in self.leaders() if self.now >= self.nodes[i].paused_until]
        if not leaders:
            return
        leader = self.rng.choice(leaders)
        node = self.nodes[leader]
        voters = [v for v in self.members[node.shard][0] if v != leader]
        if not voters:
            return
        target = self.rng.choice(voters)
        if node.core.paxos.transfer_leadership(target):
            self.stats["handovers"] += 1
            self.trace(f"n{leader} HANDOVER -> n{target}")
            node.pump()

    def _wall_step_event(self, until_ms: float) -> None:
        """A replica's wall clock jumps (an NTP step), backwards or forwards."""
        victim = self.rng.choice(self.ids)
        step = self.faults.wall_step_ms * (2 * self.rng.random() - 1)
        self.wall_offset[victim] += step
        self.stats["wall_steps"] += 1
        self.trace(f"n{victim} WALL CLOCK STEP {step:+.0f}ms")

    def heal_all(self) -> None:
        """End of the safety phase: no more faults, everyone back."""
        self.faults_on = False
        self.partition = None
        self.blocked = set()
        self.lossy = {}
        self.send_hooks = []
        self.reconfig.heal()
        self.resharder.heal()
        for i in self.ids:
            self.restart(i)
            node = self.nodes[i]
            if node is not None:
                node.paused_until = -1.0
