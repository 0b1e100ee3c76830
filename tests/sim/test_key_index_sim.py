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


# One shard: a procedure's range scans run on the shard's own keyspace. (With
# more, most scans reach other shards as participants' range reads, which make
# a missing index at once: see the module's text in kv/key_indexes.py.)
@pytest.mark.parametrize("shape", [dict(), dict(replicas=5, preferred_leaders=True), dict(protocol="luigi")],
                         ids=["1x3", "1x5-preferred", "1x3-luigi"])
def test_indexes_made_in_slices_under_faults(monkeypatch, shape):
    built = [0]
    step = KeyIndexes.build_step

    def counting_step(self):
        done = step(self)
        built[0] += done
        return done

    monkeypatch.setattr(KeyIndexes, "build_at_once_keys", 2)
    monkeypatch.setattr(KeyIndexes, "build_keys_per_step", 3)
    monkeypatch.setattr(KeyIndexes, "build_step", counting_step)
    ops = 0
    for seed, profile in [(0, "harsh"), (1, "harsh"), (2, "default"), (3, "harsh")]:
        result = run_seed(seed, proc_ratio=0.4, profile=profile, **shape)
        ops += result.ops
    assert ops > 0
    assert built[0] > 0, "no index was made in slices: the test exercised nothing"
