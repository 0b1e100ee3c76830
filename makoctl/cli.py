"""``makoctl``: the makodb command line."""

from __future__ import annotations

import click

from makod import __version__
from makoctl.cluster import cluster


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="makoctl")
def main() -> None:
    """Operate a makodb cluster: start it, watch it, fail it over, benchmark it."""


main.add_command(cluster)

try:  # benchmarks live in their own package; the CLI works without them
    from makoctl.bench import bench

    main.add_command(bench)
except ImportError:  # pragma: no cover
    pass


if __name__ == "__main__":
    main()
