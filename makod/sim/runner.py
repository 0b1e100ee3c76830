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


def run_seed(
    seed: int,
    replicas: int = 3,
    learners: int = 0,
    safety_ms: float = 6000.0,
    liveness_ms: float = 20000.0,
    intensity: float = 1.0,
    trace: bool = False,
) -> RunResult:
    import random

    faults = Faults.from_seed(random.Random(seed * 7919 + 1), intensity)
    world = World(seed, replicas=replicas, learners=learners, faults=faults, trace_enabled=trace)
    workload = Workload(world)
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
        leaders = world.leaders()
        if len(leaders) != 1:
            return False
        leader = world.nodes[leaders[0]]
        if not leader.core.serving or leader.core.batch or leader.core.inflight:
            return False
        target = leader.core.paxos.commit
        return all(n is not None and n.core.applied_slot == target for n in world.nodes.values())

    if not world.run_until(deadline, stop=settled):
        state = {
            i: (n.core.paxos.role, n.core.applied_slot, n.core.paxos.commit) if n else None
            for i, n in world.nodes.items()
        }
        raise CheckFailed(f"seed {seed}: no progress after healing for {liveness_ms:.0f} ms: {state}")
    final = check_convergence(world)
    counts = check_history(seed, workload.history, final)
    digest = hashlib.sha256()
    for slot in sorted(world.chosen):
        digest.update(b"%d:" % slot + world.chosen[slot])
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
    )
