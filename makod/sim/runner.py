"""One simulated run: a safety phase with faults, then a liveness phase without.

``run_seed(seed)`` returns a summary or raises with the seed in the message;
``python -m makod.sim`` runs many seeds and prints the failing ones, each of
which replays exactly with ``--seed N``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from makod.sim.checker import CheckFailed, check_convergence, check_history
from makod.sim.faults import Faults
from makod.sim.workload import Workload
from makod.sim.world import World


@dataclass
class RunResult:
    seed: int
    ops: int
    acked: int
    chosen_slots: int
    stats: dict
    fingerprint: str
    faults: str
    trace: list[str] = field(default_factory=list)
    history: list = field(default_factory=list, repr=False)  # the workload's ops


def run_seed(
    seed: int,
    replicas: int = 3,
    learners: int = 0,
    shards: int = 1,
    txn_ratio: float | None = None,
    proc_ratio: float | None = None,
    protocol: str = "mako",
    ack: str = "durable",
    preferred_leaders: bool = False,
    safety_ms: float = 6000.0,
    liveness_ms: float = 20000.0,
    intensity: float = 1.0,
    trace: bool = False,
) -> RunResult:
    import random

    faults = Faults.from_seed(random.Random(seed * 7919 + 1), intensity)
    world = World(
        seed, replicas=replicas, learners=learners, shards=shards, faults=faults, trace_enabled=trace,
        protocol=protocol, ack=ack, preferred_leaders=preferred_leaders,
    )
    workload = Workload(
        world,
        keys=4 * shards,
        txn_ratio=(0.4 if shards > 1 else 0.15) if txn_ratio is None else txn_ratio,
        # One-shard runs keep the Paxos-focused mix by default (their fault
        # schedules are what the planted-bug tests were tuned on); pass
        # proc_ratio to run procedures on one shard too.
        proc_ratio=(0.15 if shards > 1 else 0.0) if proc_ratio is None else proc_ratio,
    )
    workload.start()
    world.start_faults(until_ms=safety_ms)
    world.run_until(safety_ms)

    # Liveness: heal, restart everyone, let in-flight work finish, stop new work.
    world.heal_all()
    workload.stop()
    deadline = safety_ms + liveness_ms

    def settled() -> bool:
        if not workload.idle:
            return False
        for shard in range(world.num_shards):
            leaders = world.leaders(shard)
            if len(leaders) != 1:
                return False
            leader = world.nodes[leaders[0]].core.replica
            if not leader.serving or leader.batch or leader.inflight or leader.prepared:
                return False
            target = leader.paxos.commit
            if leader.applied_slot != target:
                return False
            for n in world.nodes.values():
                if n is None:
                    return False
                if n.shard == shard and n.core.applied_slot != target:
                    return False
        return True

    if not world.run_until(deadline, stop=settled):
        state = {
            i: (n.core.paxos.role, n.core.applied_slot, n.core.paxos.commit, len(n.core.replica.unresolved)) if n else None
            for i, n in world.nodes.items()
        }
        raise CheckFailed(f"seed {seed}: no progress after healing for {liveness_ms:.0f} ms: {state}")
    final = check_convergence(world)
    counts = check_history(seed, workload.history, final)
    digest = hashlib.sha256()
    for shard, slot in sorted(world.chosen):
        digest.update(b"%d:%d:" % (shard, slot) + world.chosen[(shard, slot)])
    for op in workload.history:
        digest.update(repr((op.op_id, op.kind, op.key, op.node, op.invoke_ms, op.complete_ms, op.ok, op.result)).encode())
    return RunResult(
        seed=seed,
        ops=len(workload.history),
        acked=counts["acked"],
        chosen_slots=len(world.chosen),
        stats=dict(world.stats),
        fingerprint=digest.hexdigest()[:16],
        faults=faults.describe(),
        trace=world.trace_lines,
        history=workload.history,
    )
