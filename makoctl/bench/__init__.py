"""``makoctl bench ...``: benchmarks. Each module contributes one subcommand."""

from __future__ import annotations

import importlib

import click


@click.group()
def bench() -> None:
    """Measure makodb: RESP throughput, failover time, TPC-C, a micro-benchmark, protocols side by side, profiles."""


# (module, attribute): each attribute is a click command added to the group.
_SUBCOMMANDS = [
    ("makoctl.bench.resp_bench", "resp"),
    ("makoctl.bench.failover_bench", "failover"),
    ("makoctl.bench.tpcc", "tpcc"),
    ("makoctl.bench.micro", "micro"),
    ("makoctl.bench.compare", "compare"),
    ("makoctl.bench.profile_bench", "profile"),
]

for _module, _attr in _SUBCOMMANDS:
    try:
        bench.add_command(getattr(importlib.import_module(_module), _attr))
    except ModuleNotFoundError as exc:  # a benchmark not written yet
        if exc.name != _module:
            raise
