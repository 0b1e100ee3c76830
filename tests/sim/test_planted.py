"""The simulator finds this class of bug by itself.

Each of the eight safety bugs of the issue "Safety under faults" (and
Luigi's two, and client-side caching's two) can be put back with a switch
(makod/sim/planted.py). Here, for each, the sweep (every profile, from
seed 0 on; shapes drawn from the seeds, or the shape the bug needs where a
PlantedBug names one) must find a failure within a bounded number of seeds:
not on a seed tuned for it, but on whatever the sweep runs first. Measured
on the current code, each is caught within 10 seeds (BOUND gives room); the
long sweep in docs/TESTING.md runs the same cases without a plant and finds
nothing.
"""

from __future__ import annotations

import pytest

from makod.sim.planted import BUGS
from makod.sim.sweep import sweep

BOUND = 150  # seeds, each under the three profiles


@pytest.mark.parametrize("bug", sorted(b for b in BUGS if BUGS[b].swept))
def test_the_sweep_catches_the_planted_bug(bug):
    results = sweep(0, BOUND, BUGS[bug].profiles, jobs=2, shape=BUGS[bug].shape, plant=bug,
                    stop_at_first_failure=True)
    failures = [r for r in results if not r.ok]
    assert failures, f"{bug} ({BUGS[bug].what}) survived {len(results)} cases"
    first = failures[0]
    print(f"{bug}: caught by seed {first.seed} ({first.profile}) after {len(results)} cases: {first.error[:200]}")
