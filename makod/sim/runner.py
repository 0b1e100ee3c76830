"""One simulated run: a safety phase with faults, then a liveness phase without.

``run_seed(seed)`` returns a summary or raises with the seed in the message;
``python -m makod.sim`` runs many seeds and prints the failing ones, each with
the command that replays it exactly. ``shape_for(seed)`` draws a whole
cluster shape (shards, replicas, learners, preferred leaders, protocol) from
a seed, which is how a sweep covers every core.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

from makod.sim import logcheck
from makod.sim.checker import CheckFailed, check_convergence, check_history
from makod.sim.tracking_check import TrackingCheckFailed, check_invalidations
from makod.sim.faults import Faults
from makod.sim.geo import draw_wan
from makod.sim.workload import QUEUE_KINDS, Mix, Workload
from makod.kv.hashslot import key_slot
from makod.sim.world import World, layout


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
    workload: str = ""


# What run_seed does when a parameter is not given (the replay command prints the rest).
DEFAULTS = dict(
    replicas=3, learners=0, shards=1, protocol="mako", ack="durable", preferred_leaders=False,
    profile="default", txn_ratio=None, proc_ratio=None, safety_ms=6000.0, plant=None, geo=False,
    max_txn_bytes=None, membership=False, reshard=False,
)


CALM_THINK_MS = 40.0
# With ``membership``: mean time between membership steps (add, promote,
# remove; reconfig.py), so a 6 s run goes through several whole cycles.
MEMBERSHIP_EVERY_MS = 300.0
# With ``reshard``: mean time between starting slot moves (one at a time;
# reshard.py), so a 6 s run moves slots back and forth a dozen times.
RESHARD_EVERY_MS = 250.0


def shape_for(seed: int) -> dict:
    """A cluster shape drawn from the seed alone: a sweep over seeds covers every
    core (one shard's Paxos, Mako across 2-3 shards, the 2PC baseline, Luigi), 3 or 5
    voters, learners, and preferred leaders on and off."""
    rng = random.Random(seed * 104729 + 17)
    shards = rng.choice([1, 2, 2, 3])
    shape = dict(
        shards=shards,
        replicas=rng.choice([3, 3, 5]),
        learners=rng.choice([0, 0, 1]),
        preferred_leaders=rng.random() < 0.5,
        protocol="2pc-paxos" if shards > 1 and rng.random() < 0.2 else "mako",
    )
    # Luigi takes a third of the multi-shard Mako seeds, drawn from a stream
    # of its own so that every other seed replays as it did before Luigi
    # (salted so that the pinned cases of tests/sim/test_sweep.py stay Mako).
    if shape["protocol"] == "mako" and shards > 1 and random.Random(seed * 7349 + 12).random() < 1 / 3:
        shape["protocol"] = "luigi"
    return shape


def workload_for(seed: int, world: World, shards: int, txn_ratio: float | None, proc_ratio: float | None,
                 think_ms: float = 5.0) -> Workload:
    """Size and mix drawn from the seed: a few hot keys or hundreds, 4-12 clients,
    and now and then a registers-only run with FLUSHDB in it."""
    rng = random.Random(seed * 7907 + 3)
    clients = rng.choice([4, 8, 12])
    keys = rng.choice([4 * shards, 40, 200])
    register_keys = rng.choice([4, 16, 64])
    # Clients that give up sooner try again sooner (on another replica): more
    # operations under faults, and more whose outcome is unknown.
    timeout_ms = rng.choice([300.0, 1000.0, 2500.0])
    mix = Mix()
    if seed % 3 != 2:
        # Queues and bags (lists, sets, sorted sets) run on every third seed only, chosen without drawing
        # from the seed's random stream: the other seeds replay exactly as
        # they did before queues existed (the regression seeds of
        # tests/sim/test_sweep.py, the planted bugs' first catching seeds).
        for kind in QUEUE_KINDS:
            setattr(mix, kind, 0.0)
    flush_mode = rng.random() < 0.15
    if flush_mode and txn_ratio is None and proc_ratio is None:
        # FLUSHDB would erase the lists, queues and counter their checks rely on.
        mix = Mix(append=0, get=0, incr=0, txn=0, proc=0, watch=0, rset=0.4, rdel=0.15, rget=0.25, rtxn=0.15,
                  flush=0.02, **dict.fromkeys(QUEUE_KINDS, 0.0))
    if txn_ratio is not None:
        mix.txn = txn_ratio
    if proc_ratio is not None:
        mix.proc = proc_ratio
    return Workload(world, clients=clients, keys=keys, register_keys=register_keys, mix=mix, timeout_ms=timeout_ms,
                    think_ms=think_ms)


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
    profile: str = "default",
    trace: bool = False,
    geo: bool = False,
    max_txn_bytes: int | None = None,
    membership: bool = False,
    reshard: bool = False,
) -> RunResult:
    faults = Faults.from_seed(random.Random(seed * 7919 + 1), intensity, profile)
    # The WAN layout has its own stream: --geo leaves the seed's faults as they were.
    wan = draw_wan(random.Random(seed * 6271 + 5), layout(shards, replicas, learners)) if geo else None
    world = World(
        seed, replicas=replicas, learners=learners, shards=shards, faults=faults, trace_enabled=trace,
        protocol=protocol, ack=ack, preferred_leaders=preferred_leaders, wan=wan, max_txn_bytes=max_txn_bytes,
        membership_every_ms=MEMBERSHIP_EVERY_MS if membership else 0.0,
        reshard_every_ms=RESHARD_EVERY_MS if reshard and protocol != "luigi" else 0.0,
    )
    # Clients think longer on a calm network: with no faults to slow them
    # they would run 3-7K operations a case, four fifths of a sweep's time,
    # for little the first thousand did not already cover.
    think_ms = CALM_THINK_MS if profile == "calm" else 5.0
    workload = workload_for(seed, world, shards, txn_ratio, proc_ratio, think_ms)
    world.resharder.hot_slots = sorted({key_slot(k) for k in workload.all_keys()})
    workload.start()
    world.start_faults(until_ms=safety_ms)
    world.run_until(safety_ms)

    # Liveness: heal, restart everyone, let in-flight work finish, stop new work.
    world.heal_all()
    workload.stop()
    deadline = safety_ms + liveness_ms

    def settled() -> bool:
        if not workload.idle or not world.resharder.idle:
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
        moving = world.resharder.describe()
        raise CheckFailed(f"seed {seed}: no progress after healing for {liveness_ms:.0f} ms: {state}"
                          + (f"; {moving}" if moving else ""))
    final = check_convergence(world)
    moves = world.resharder.check() if world.reshard_every_ms else {}
    logcheck.check_abort_answers(seed, world)
    counts = check_history(seed, workload.history, final)
    try:
        counts["invalidated_keys"] = check_invalidations(seed, world, workload.history, final)
    except TrackingCheckFailed as exc:
        raise CheckFailed(str(exc)) from None
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
        stats=dict(world.stats, **({f"membership_{k}": v for k, v in world.reconfig.stats.items()}
                                   if membership else {}), **{f"reshard_{k}": v for k, v in moves.items()}),
        fingerprint=digest.hexdigest()[:16],
        faults=faults.describe() + (f"; wan: {wan.describe()}" if wan is not None else ""),
        trace=world.trace_lines,
        history=workload.history,
        workload=f"{workload.clients} clients, {len(workload.keys)} list keys, "
        f"{len(workload.register_keys)} registers, mix {vars(workload.mix)}",
    )


def replay_command(seed: int, params: dict) -> str:
    """The exact command that reruns one seed with the same settings."""
    flags = ""
    for name, value in params.items():
        if name not in DEFAULTS or value == DEFAULTS[name]:
            continue
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            flags += f" {flag}" if value else ""
        else:
            flags += f" {flag} {value}"
    return f"python -m makod.sim --seed {seed}{flags} --trace"
