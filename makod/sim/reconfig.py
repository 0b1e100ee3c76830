"""Membership changes under faults (docs/MEMBERSHIP.md, "Verification").

An operator that keeps changing each shard's replicas while every other
fault keeps running: it boots a new replica (a fresh id, an empty disk),
adds it as a learner, promotes it to voter once it has caught up, then
removes another voter (never the leader: a leader hands over first, which
the handover faults already do), stops it for good (0-200 ms after the
removal is chosen, now and then 1-3 s), and starts again. One
change at a time per shard, each through the shard's serving leader
(ReplicaCore.change_membership), exactly as ``makoctl cluster add-replica``
and ``remove-replica`` drive a real cluster.

What it checks is what the world already checks, now across changes: one
value per slot, one leaseholder per shard (replicas added included),
replicas converge (new ones included, removed ones gone), no acknowledged
write lost, serializable histories.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from makod.core.membership import Membership, decode_config

if TYPE_CHECKING:
    from makod.sim.world import World

MAX_NODE_ID = 250  # node ids stay below 256 (ballots); leave room


class Reconfig:
    def __init__(self, world: "World", voters: int) -> None:
        self.world = world
        self.voters = voters  # a shard grows to voters + 1 for a while, then shrinks back
        self.added: set[int] = set()
        self.removed: set[int] = set()
        self.leaving: dict[int, tuple[int, int, bytes]] = {}  # node -> (shard, slot, value) of its removal
        self.retire_at: dict[int, float] = {}  # node -> when the operator stops it (its removal chosen)
        self.newest: dict[int, tuple[int, Membership]] = {}  # shard -> (slot, membership) chosen last
        self.quiet = False
        self.stats = {"proposed": 0, "refused": 0, "added": 0, "promoted": 0, "removed": 0}

    # -- the world tells us ------------------------------------------------------------------
    def chosen(self, shard: int, slot: int, value: bytes) -> None:
        """A CONFIG entry was chosen (World.observe_chosen)."""
        change = decode_config(value)
        if change is None:
            return
        known = self.newest.get(shard)
        if known is not None and slot <= known[0]:
            return
        # Chosen slots are first seen in slot order: apply them in that order.
        before = known[1] if known is not None else Membership.of(*self.world.initial_members[shard])
        members = change.applied_to(before)
        self.newest[shard] = (slot, members)
        world = self.world
        listed = world.members[shard][0] + world.members[shard][1]
        others = [n for n in listed if n not in members.nodes and n not in self.removed]
        world.members[shard] = (list(members.voters), list(members.learners) + others)
        world.push_topology()
        world.trace(f"MEMBERSHIP shard {shard} slot {slot}: voters {list(members.voters)} "
                    f"learners {list(members.learners)}"
                    + ("" if change.prev == before else " (a no-op: built on another membership)"))
        self.world.at(0, self._settle_removals)

    def heal(self) -> None:
        """The faults stop: no new changes, but finish what is under way (a
        replica booted whose addition was lost is added, so it converges)."""
        self.quiet = True
        if self.added or self.leaving:
            self.world.at(0, self._quiet_step)

    # -- steps ---------------------------------------------------------------------------------
    def step(self) -> None:
        world = self.world
        shard = world.rng.randrange(world.num_shards)
        self._change(shard, grow=True)

    def _quiet_step(self) -> None:
        for shard in range(self.world.num_shards):
            self._change(shard, grow=False)
        if any(self._outsiders(s) for s in range(self.world.num_shards)) or self.leaving:
            self.world.at(100, self._quiet_step)

    def _change(self, shard: int, grow: bool) -> None:
        world = self.world
        self._settle_removals()
        leader = self._serving_leader(shard)
        if leader is None or any(s == shard and n not in self.retire_at for n, (s, _slot, _v) in self.leaving.items()):
            return  # a removal not chosen yet
        paxos = leader.core.paxos
        if paxos.configs:
            return  # the previous change is not chosen yet
        base = paxos.base
        outsiders = self._outsiders(shard, base)
        victim = None
        if outsiders:
            kind, new = "add", Membership.of(base.voters, base.learners + (outsiders[0],))
        elif not grow:
            return
        else:
            joining = [n for n in base.learners if n in self.added]
            caught_up = [n for n in joining if paxos.match.get(n, 0) >= paxos.commit]
            if joining and not caught_up:
                return  # a learner still catching up (from a snapshot, often)
            if caught_up:
                n = caught_up[0]
                kind = "promote"
                new = Membership.of(base.voters + (n,), [m for m in base.learners if m != n])
            elif len(base.voters) > self.voters:
                victim = world.rng.choice([v for v in base.voters if v != leader.id])
                kind = "remove"
                new = Membership.of([v for v in base.voters if v != victim], base.learners)
            elif max(world.shard_of_node) < MAX_NODE_ID:
                n = world.add_node(shard)
                self.added.add(n)
                kind = "add"
                new = Membership.of(base.voters, base.learners + (n,))
            else:
                return
        why = leader.core.replica.change_membership(new)
        if why is not None:
            self.stats["refused"] += 1
            world.trace(f"n{leader.id} MEMBERSHIP {kind} refused: {why}")
            return
        self.stats["proposed"] += 1
        self.stats[{"add": "added", "promote": "promoted", "remove": "removed"}[kind]] += 1
        slot = paxos.last_slot
        world.trace(f"n{leader.id} MEMBERSHIP {kind} at slot {slot}: voters {list(new.voters)} "
                    f"learners {list(new.learners)}")
        if victim is not None:
            self.leaving[victim] = (shard, slot, paxos.log[slot][1])
        leader.pump()

    def _serving_leader(self, shard: int):
        world = self.world
        for i in world.leaders(shard):
            node = world.nodes[i]
            if node.core.replica.serving and world.now >= node.paused_until:
                return node
        return None

    def _outsiders(self, shard: int, base: Membership | None = None) -> list[int]:
        """Replicas booted for this shard that its membership does not name."""
        if base is None:
            known = self.newest.get(shard)
            base = known[1] if known is not None else Membership.of(*self.world.initial_members[shard])
        return sorted(n for n in self.added
                      if self.world.shard_of_node[n] == shard and n not in base.nodes
                      and n not in self.removed and n not in self.leaving)

    def _settle_removals(self) -> None:
        """A removal chosen: stop the replica for good, a little later (the
        operator stops it 0-200 ms after, now and then only 1-3 s after:
        meanwhile it runs on its old view, and may campaign or answer, which
        elections must not count where the chain of memberships says not to).
        One whose slot chose something else was not removed: it stays."""
        world = self.world
        for node, (shard, slot, value) in list(self.leaving.items()):
            chosen = world.chosen.get((shard, slot))
            if chosen is None:
                continue
            newest = self.newest.get(shard)
            if chosen != value or (newest is not None and node in newest[1].nodes):
                del self.leaving[node]  # not removed (another value, or a no-op change): it stays
                continue
            due = self.retire_at.get(node)
            if due is None:
                rng = world.rng
                delay = rng.random() * 200 if rng.random() < 0.7 else 1000 + rng.random() * 2000
                self.retire_at[node] = world.now + delay
                world.at(delay, self._settle_removals)
            elif world.now >= due:
                del self.leaving[node]
                del self.retire_at[node]
                world.retire_node(node)
                self.removed.add(node)
