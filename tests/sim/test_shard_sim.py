"""The deterministic simulator over many seeds: one shard, faults, full checks.

Each seed draws its own faults (loss, duplication, reordering, partitions,
crashes that keep only what reached the disk, pauses); every run checks that
no slot is chosen twice (after every applied slot), then heals the world and
checks convergence, that no acknowledged write was lost or applied twice,
and that the history is linearizable. A failing seed replays exactly with
``python -m makod.sim --seed N --trace``.
"""

from __future__ import annotations

import os

import pytest

from makod.sim.runner import run_seed

SEEDS = int(os.environ.get("MAKO_SIM_SEEDS", "100"))


@pytest.mark.parametrize("block", range(10))
def test_three_replicas_many_seeds(block):
    per_block = SEEDS // 10
    for seed in range(block * per_block, (block + 1) * per_block):
        run_seed(seed)


def test_five_replicas():
    for seed in range(10_000, 10_010):
        run_seed(seed, replicas=5)


def test_with_a_learner():
    for seed in range(20_000, 20_010):
        run_seed(seed, replicas=3, learners=1)


def test_single_replica():
    for seed in range(30_000, 30_005):
        run_seed(seed, replicas=1)


def test_a_seed_replays_exactly():
    first = run_seed(77, trace=True)
    second = run_seed(77, trace=True)
    assert first.fingerprint == second.fingerprint
    assert first.trace == second.trace
    assert first.ops > 50 and first.acked > 10  # the run did real work


def test_faults_really_happen():
    """Across seeds the simulator crashes, partitions, pauses, drops and duplicates."""
    totals = {"crashes": 0, "partitions": 0, "pauses": 0, "dropped": 0, "duplicated": 0}
    for seed in range(20):
        stats = run_seed(seed).stats
        for key in totals:
            totals[key] += stats[key]
    assert all(v > 0 for v in totals.values()), totals


def test_the_checker_catches_stale_reads(monkeypatch):
    """Proof the checks can fail: a leader with no lease and no check-quorum serves stale reads."""
    import makod.core.paxos as paxos

    monkeypatch.setattr(paxos.Paxos, "lease_valid", lambda self: self.role == paxos.LEADER)
    monkeypatch.setattr(paxos.Paxos, "_quorum_alive", lambda self: True)
    with pytest.raises(AssertionError, match="cycle|stale read|leaseholders|overwrote|prefix|lost"):
        for seed in range(0, 80):
            run_seed(seed)


def test_the_checker_catches_unpersisted_promises(monkeypatch):
    """Proof the checks can fail: an acceptor that forgets its promise on restart breaks Paxos."""
    from makod.storage.memory_store import MemoryStore

    original = MemoryStore.persist
    monkeypatch.setattr(
        MemoryStore, "persist", lambda self, promised, entries: original(self, None, entries) if entries else None
    )
    # Forgetting promises breaks Paxos; here the shard wedges (two leaders'
    # entries disagree and replicas stop agreeing on what to apply).
    with pytest.raises(AssertionError, match="chosen twice|lost|applied twice|differs|no progress|again|before its epoch entry|went back|closes epoch"):
        for seed in range(0, 80):
            run_seed(seed)


def test_the_checker_catches_early_acknowledgement():
    """Proof the checks can fail: replying before the write is replicated
    (``ack: speculative``) loses acknowledged writes when a leader fails."""
    with pytest.raises(AssertionError, match="lost"):
        for seed in range(0, 60):
            run_seed(seed, ack="speculative")
