"""``makoctl bench tpcc``: TPC-C against makodb (see docs/TPCC.md).

Modules: ``gen`` (random inputs, NURand), ``load`` (initial population),
``driver`` (closed-loop terminals), ``check`` (consistency conditions),
``common`` (cluster handling, stats and tables shared with ``bench micro``),
``cli`` (the click command).
"""

from makoctl.bench.tpcc.cli import tpcc

__all__ = ["tpcc"]
