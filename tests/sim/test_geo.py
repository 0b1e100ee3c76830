"""A few seeds across a simulated WAN (``--geo``, makod/sim/geo.py): every
check still holds with 5-50 ms between datacenters, and a geo seed replays
exactly. The long geo sweep is in docs/TESTING.md."""

from __future__ import annotations

from makod.sim.runner import replay_command, run_seed
from makod.sim.sweep import sweep


def test_a_short_geo_sweep_passes():
    results = sweep(2000, 8, ("default", "harsh"), jobs=2, geo=True)
    failures = [f"seed {r.seed} ({r.profile}): {r.error[:300]}\n  replay: {r.replay}" for r in results if not r.ok]
    assert not failures, "\n".join(failures)
    assert all("--geo" in r.replay for r in results)
    assert sum(r.ops for r in results) > 1000


def test_a_geo_seed_replays_exactly_and_differs_from_the_lan():
    shape = dict(shards=2, profile="harsh", safety_ms=2000.0)
    first, again = run_seed(7, geo=True, **shape), run_seed(7, geo=True, **shape)
    assert first.fingerprint == again.fingerprint
    assert "wan: LinkModel" in first.faults
    assert run_seed(7, **shape).fingerprint != first.fingerprint
    assert replay_command(7, dict(shape, geo=True)).endswith("--geo --trace")
