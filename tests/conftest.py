"""Hypothesis profiles. Locally every run draws new examples (that is how the
random differential tests keep finding things); CI loads the ``ci`` profile
(`.ci/run` sets HYPOTHESIS_PROFILE=ci), which draws the same examples every
run, so a landing is not decided by which examples a run happened to draw."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


# The files that take longest, longest first (seconds in a full run on
# 2026-11-27, `pytest --durations=0`, summed per file). pyproject runs
# xdist with --dist loadfile and --no-loadscope-reorder, so files go to the
# two workers in collection order: long files first, then the rest, keeps
# one worker from running a long file alone at the end (xdist's own order,
# by number of tests, put the few-test, long files last).
SLOW_FIRST = [
    "tests/sim/test_planted.py",
    "tests/integration/test_bank.py",
    "tests/integration/test_tpcc.py",
    "tests/integration/test_replication.py",
    "tests/sim/test_shard_sim.py",
    "tests/integration/test_cli_ops.py",
    "tests/integration/test_nemesis.py",
    "tests/hardening/test_disk_damage.py",
    "tests/sim/test_mako_sim.py",
    "tests/hardening/test_replay_every_entry.py",
    "tests/unit/test_tpcc_procs.py",
    "tests/integration/test_backup.py",
    "tests/sim/test_reshard_sim.py",
    "tests/integration/test_reshard.py",
    "tests/integration/test_add_shard.py",
    "tests/sim/test_sweep.py",
    "tests/integration/test_big_transactions.py",
    "tests/hardening/test_query_of_death.py",
]


def pytest_collection_modifyitems(config, items):
    rank = {path: i for i, path in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))
