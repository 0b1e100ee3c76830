"""A bounded sweep over every profile, as CI runs it: seeds 0..SEEDS-1, each
under calm, default and harsh faults, with its cluster shape (1-3 shards, 3
or 5 voters, learners, preferred leaders, Mako or 2PC-over-Paxos) drawn from
the seed. Any failure names the command that replays it. The long sweep
(docs/TESTING.md) is the same with far more seeds."""

from __future__ import annotations

import os

from makod.sim.faults import PROFILES
from makod.sim.sweep import sweep

SEEDS = int(os.environ.get("MAKO_SWEEP_SEEDS", "40"))
FIRST = int(os.environ.get("MAKO_SWEEP_FIRST", "1000"))


def test_bounded_sweep_over_every_profile():
    results = sweep(FIRST, SEEDS, PROFILES, jobs=2)
    failures = [f"seed {r.seed} ({r.profile}): {r.error[:300]}\n  replay: {r.replay}" for r in results if not r.ok]
    assert not failures, "\n".join(failures)
    shapes = {(r.params["shards"], r.params["replicas"], r.params["protocol"]) for r in results}
    assert len(results) == SEEDS * len(PROFILES)
    assert {s for s, _, _ in shapes} == {1, 2, 3} and {p for _, _, p in shapes} == {"mako", "2pc-paxos"}
    assert sum(r.ops for r in results) > 50_000  # the cases did real work
