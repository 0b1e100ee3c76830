"""Membership changes under faults (makod/sim/reconfig.py): replicas added as
learners, promoted once caught up and removed, one change at a time per
shard, while crashes, partitions, pauses and delay spikes go on. Every
invariant the runner checks holds across the changes (one value per slot,
one leaseholder, convergence with the new replicas included, no
acknowledged write lost, serializable histories), and a seed replays
exactly."""

from __future__ import annotations

import pytest

from makod.sim.runner import run_seed

CASES = [
    dict(shards=1, protocol="mako"),
    dict(shards=2, protocol="mako", preferred_leaders=True),
    dict(shards=2, protocol="2pc-paxos"),
    dict(shards=2, protocol="luigi"),
]


@pytest.mark.parametrize("shape", CASES, ids=lambda s: f"{s['shards']}x3-{s['protocol']}")
def test_replicas_come_and_go_under_faults(shape):
    totals = {"membership_added": 0, "membership_promoted": 0, "membership_removed": 0}
    for seed, profile in [(1, "default"), (2, "harsh"), (3, "harsh")]:
        result = run_seed(seed, profile=profile, membership=True, **shape)
        for key in totals:
            totals[key] += result.stats[key]
    # The changes really happened: replicas joined, became voters, and others left.
    assert all(count > 0 for count in totals.values()), totals


def test_a_membership_seed_replays_exactly():
    first = run_seed(7, shards=2, profile="harsh", membership=True)
    again = run_seed(7, shards=2, profile="harsh", membership=True)
    assert first.fingerprint == again.fingerprint
    assert first.stats == again.stats
