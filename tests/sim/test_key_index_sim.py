"""Indexes made a slice per tick (kv/key_indexes.py) under faults: with the
thresholds shrunk so that every keyspace past two keys makes its index in
slices of three, procedures' range scans and slot moves wait for them while
writes, rollbacks, restarts and snapshot installs go on, and the runner's
checks still hold (agreement, convergence, no acknowledged write lost,
serializable histories, scans included)."""

from __future__ import annotations

import pytest

from makod.kv.key_indexes import KeyIndexes
from makod.sim.runner import run_seed


def _shrunk(monkeypatch) -> dict:
    """Every keyspace past two keys makes its indexes three keys a slice.
    Counts what was made in slices and what ran into an index not ready."""
    seen = {"built": 0, "refused": 0, "made_at_once_big": 0}
    step, ready, now = KeyIndexes.build_step, KeyIndexes.ready, KeyIndexes._now

    def counting_step(self):
        done = step(self)
        seen["built"] += done
        return done

    def counting_ready(self, which):
        ok = ready(self, which)
        seen["refused"] += not ok
        return ok

    def watched_now(self, which):
        # Made (or finished) at once on a keyspace big enough to be made in
        # slices: what no caller may do any more.
        if which in self.building or (getattr(self, which) is None and len(self.data) > self.build_at_once_keys):
            seen["made_at_once_big"] += 1
        return now(self, which)

    monkeypatch.setattr(KeyIndexes, "build_at_once_keys", 2)
    monkeypatch.setattr(KeyIndexes, "build_keys_per_step", 3)
    monkeypatch.setattr(KeyIndexes, "build_step", counting_step)
    monkeypatch.setattr(KeyIndexes, "ready", counting_ready)
    monkeypatch.setattr(KeyIndexes, "_now", watched_now)
    return seen


# One shard: a procedure's range scans run on the shard's own keyspace.
@pytest.mark.parametrize("shape", [dict(), dict(replicas=5, preferred_leaders=True), dict(protocol="luigi")],
                         ids=["1x3", "1x5-preferred", "1x3-luigi"])
def test_indexes_made_in_slices_under_faults(monkeypatch, shape):
    seen = _shrunk(monkeypatch)
    ops = 0
    for seed, profile in [(0, "harsh"), (1, "harsh"), (2, "default"), (3, "harsh")]:
        result = run_seed(seed, proc_ratio=0.4, profile=profile, **shape)
        ops += result.ops
    assert ops > 0
    assert seen["built"] > 0, "no index was made in slices: the test exercised nothing"
    assert seen["made_at_once_big"] == 0


# Several shards: most range scans reach other shards as participants' range
# reads and validations, which refuse ("indexing") while the index is made,
# and the coordinator retries; slot moves' EXPORT and DROP wait for it.
@pytest.mark.parametrize("shape", [dict(shards=3), dict(shards=2, reshard=True), dict(shards=3, protocol="luigi")],
                         ids=["3x3", "2x3-reshard", "3x3-luigi"])
def test_cross_shard_range_reads_wait_for_indexes(monkeypatch, shape):
    seen = _shrunk(monkeypatch)
    ops = 0
    for seed, profile in [(0, "harsh"), (1, "harsh"), (2, "default")]:
        result = run_seed(seed, proc_ratio=0.4, profile=profile, **shape)
        ops += result.ops
    assert ops > 0
    assert seen["built"] > 0 and seen["refused"] > 0, seen
    assert seen["made_at_once_big"] == 0, "an index of a big keyspace was made at once, stopping its node"
