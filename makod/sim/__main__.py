"""``python -m makod.sim``: run the deterministic simulator over many seeds.

    python -m makod.sim --seeds 1000            # seeds 0..999
    python -m makod.sim --seed 4242 --trace     # replay one seed, print its trace
    python -m makod.sim --forever               # keep going until a seed fails
"""

from __future__ import annotations

import itertools
import sys
import time

import click

from makod.sim.runner import run_seed


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--seeds", default=100, show_default=True, help="How many seeds to run.")
@click.option("--first", default=0, show_default=True, help="First seed.")
@click.option("--seed", "one_seed", type=int, default=None, help="Run just this seed (replay).")
@click.option("--forever", is_flag=True, help="Run seeds until one fails.")
@click.option("--replicas", default=3, show_default=True)
@click.option("--learners", default=0, show_default=True)
@click.option("--shards", default=1, show_default=True)
@click.option("--protocol", type=click.Choice(["mako", "2pc-paxos"]), default="mako", show_default=True)
@click.option("--ack", type=click.Choice(["durable", "speculative"]), default="durable", show_default=True)
@click.option("--proc-ratio", type=float, default=None,
              help="Share of stored-procedure transactions [default: 0.15 with several shards, 0 with one].")
@click.option("--safety-ms", default=6000.0, show_default=True, help="Simulated time with faults.")
@click.option("--trace", is_flag=True, help="Print the event trace (with --seed).")
def main(seeds: int, first: int, one_seed: int | None, forever: bool, replicas: int, learners: int,
         shards: int, protocol: str, ack: str, proc_ratio: float | None, safety_ms: float, trace: bool) -> None:
    """Run simulated shards under faults and check every safety invariant."""
    params = dict(replicas=replicas, learners=learners, shards=shards, protocol=protocol, ack=ack,
                  proc_ratio=proc_ratio, safety_ms=safety_ms)
    if one_seed is not None:
        result = run_seed(one_seed, trace=trace, **params)
        for line in result.trace:
            click.echo(line)
        click.echo(
            f"seed {one_seed}: ok, {result.ops} ops ({result.acked} acked appends), "
            f"{result.chosen_slots} slots, {result.stats}, fingerprint {result.fingerprint}\n  faults: {result.faults}"
        )
        return
    seq = itertools.count(first) if forever else range(first, first + seeds)
    started = time.monotonic()
    n = 0
    for seed in seq:
        try:
            run_seed(seed, **params)
        except AssertionError as exc:
            click.echo(f"FAILED seed {seed}: {exc}\nreplay: {_replay_command(seed, params)}", err=True)
            sys.exit(1)
        n += 1
        if n % 50 == 0:
            click.echo(f"{n} seeds ok ({time.monotonic() - started:.0f}s)")
    click.echo(f"all {n} seeds ok in {time.monotonic() - started:.1f}s")


def _replay_command(seed: int, params: dict) -> str:
    """The exact command that reruns one failed seed with the same settings."""
    defaults = dict(replicas=3, learners=0, shards=1, protocol="mako", ack="durable", proc_ratio=None, safety_ms=6000.0)
    flags = "".join(
        f" --{name.replace('_', '-')} {value}" for name, value in params.items() if value != defaults[name]
    )
    return f"python -m makod.sim --seed {seed}{flags} --trace"


if __name__ == "__main__":
    main()
