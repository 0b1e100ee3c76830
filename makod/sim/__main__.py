"""``python -m makod.sim``: run the deterministic simulator over many seeds.

    python -m makod.sim --seeds 1000                     # seeds 0..999, one shard, default faults
    python -m makod.sim --sweep --seeds 2000 --jobs 2    # every core and shape, every profile
    python -m makod.sim --seed 4242 --profile harsh --shards 2 --trace   # replay one case
    python -m makod.sim --sweep --plant epoch-gap --seeds 200            # does the sweep catch it?
    python -m makod.sim --sweep --geo --profile harsh --seeds 200        # across a WAN (sim/geo.py)

A failing case prints the exact command that replays it.
"""

from __future__ import annotations

import os
import sys
import time

import click

from makod.sim.faults import PROFILES
from makod.sim.planted import BUGS, planted
from makod.sim.runner import run_seed
from makod.sim.sweep import CaseResult, sweep


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--seeds", default=100, show_default=True, help="How many seeds to run.")
@click.option("--first", default=0, show_default=True, help="First seed.")
@click.option("--seed", "one_seed", type=int, default=None, help="Run just this seed (replay).")
@click.option("--profile", type=click.Choice([*PROFILES, "all"]), default="default", show_default=True,
              help="How hostile the world is ('all': each seed under every profile).")
@click.option("--sweep", "sweep_shapes", is_flag=True,
              help="Draw each seed's cluster shape and protocol from the seed (covers every core).")
@click.option("--jobs", default=1, show_default=True, help="Worker processes.")
@click.option("--replicas", default=3, show_default=True)
@click.option("--learners", default=0, show_default=True)
@click.option("--shards", default=1, show_default=True)
@click.option("--protocol", type=click.Choice(["mako", "2pc-paxos", "luigi"]), default="mako", show_default=True)
@click.option("--ack", type=click.Choice(["durable", "speculative"]), default="durable", show_default=True)
@click.option("--preferred-leaders", is_flag=True, help="Each shard's first replica is its preferred leader.")
@click.option("--proc-ratio", type=float, default=None, help="Weight of stored-procedure transactions.")
@click.option("--txn-ratio", type=float, default=None, help="Weight of MULTI/EXEC transactions.")
@click.option("--safety-ms", default=6000.0, show_default=True, help="Simulated time with faults.")
@click.option("--plant", type=click.Choice(sorted(BUGS)), default=None, help="Put back a fixed bug (see planted.py).")
@click.option("--geo", is_flag=True,
              help="Put replicas in 2-3 datacenters 5-50 ms apart, with jitter (drawn from the seed).")
@click.option("--max-txn-bytes", type=click.IntRange(min=64), default=None,
              help="The replicas' bound on a transaction's bytes (small: slots split, big transactions refused).")
@click.option("--membership", is_flag=True,
              help="Add, promote and remove replicas under the faults (one change at a time per shard).")
@click.option("--reshard", is_flag=True,
              help="Move slots between shards under the faults (one move at a time; not luigi). "
                   "Some runs add a shard first (one shard: always).")
@click.option("--trace", is_flag=True, help="Print the event trace (with --seed).")
def main(seeds: int, first: int, one_seed: int | None, profile: str, sweep_shapes: bool, jobs: int,
         replicas: int, learners: int, shards: int, protocol: str, ack: str, preferred_leaders: bool,
         proc_ratio: float | None, txn_ratio: float | None, safety_ms: float, plant: str | None, geo: bool,
         max_txn_bytes: int | None, membership: bool, reshard: bool, trace: bool) -> None:
    """Run simulated clusters under faults and check every safety invariant."""
    shape = None if sweep_shapes else dict(
        replicas=replicas, learners=learners, shards=shards, protocol=protocol, ack=ack,
        preferred_leaders=preferred_leaders, proc_ratio=proc_ratio, txn_ratio=txn_ratio, safety_ms=safety_ms,
        geo=geo, max_txn_bytes=max_txn_bytes, membership=membership, reshard=reshard,
    )
    profiles = list(PROFILES) if profile == "all" else [profile]
    if one_seed is not None:
        params = dict(shape) if shape is not None else {}
        if shape is None:
            from makod.sim.runner import shape_for

            params = dict(shape_for(one_seed), geo=geo, max_txn_bytes=max_txn_bytes, membership=membership,
                          reshard=reshard)
        with planted(plant):
            for prof in profiles:
                result = run_seed(one_seed, profile=prof, trace=trace, **params)
                for line in result.trace:
                    click.echo(line)
                click.echo(
                    f"seed {one_seed} ({prof}): ok, {result.ops} ops ({result.acked} acked), "
                    f"{result.chosen_slots} slots, {result.stats}, fingerprint {result.fingerprint}\n"
                    f"  shape: {params}\n  faults: {result.faults}\n  workload: {result.workload}"
                )
        return
    started = time.monotonic()
    counts = {"ok": 0, "failed": 0, "ops": 0}

    def report(result: CaseResult) -> None:
        if result.ok:
            counts["ok"] += 1
            counts["ops"] += result.ops
        else:
            counts["failed"] += 1
            click.echo(f"FAILED seed {result.seed} ({result.profile}): {result.error}\n"
                       f"  replay: {result.replay}", err=True)
        done = counts["ok"] + counts["failed"]
        if done % 100 == 0:
            click.echo(f"{done} cases, {counts['failed']} failed ({time.monotonic() - started:.0f}s)")

    sweep(first, seeds, profiles, jobs=jobs, shape=shape, plant=plant, on_result=report, geo=geo,
          max_txn_bytes=max_txn_bytes, membership=membership, reshard=reshard)
    click.echo(
        f"{counts['ok'] + counts['failed']} cases (seeds {first}..{first + seeds - 1}, profiles "
        f"{', '.join(profiles)}): {counts['failed']} failed, {counts['ops']} operations, "
        f"{time.monotonic() - started:.1f}s"
    )
    sys.exit(1 if counts["failed"] else 0)


# Python randomizes the hash of bytes and str per process, and a few of the
# cores' sets of keys are iterated in hash order: the same seed then runs
# differently under another hash seed (measured: 800 harsh seeds, 109,308 vs
# 109,287 operations). Every run of this command uses one hash seed, so a
# failing seed replays exactly.
HASH_SEED = "0"

if __name__ == "__main__":
    if os.environ.get("PYTHONHASHSEED") != HASH_SEED:
        os.environ["PYTHONHASHSEED"] = HASH_SEED
        os.execv(sys.executable, [sys.executable, "-m", "makod.sim", *sys.argv[1:]])
    main()
