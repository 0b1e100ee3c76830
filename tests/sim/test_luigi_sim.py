"""Luigi (protocol: luigi) in the simulator: the same invariants as Mako's
(strict serializability of lists, linearizable registers, exact counters,
no acknowledged write lost, replicas converge), plus the sequencer's own
assertion that conflicting transactions start in timestamp order, on
2-3 shards, 3 and 5 replicas, under faults and across a simulated WAN.
The sweep (test_sweep.py) runs Luigi on a third of its multi-shard seeds.
"""

from __future__ import annotations

import pytest

from makod.sim.runner import run_seed


@pytest.mark.parametrize("profile", ["default", "harsh"])
def test_two_shards(profile):
    for seed in range(70_000, 70_003):
        run_seed(seed, shards=2, protocol="luigi", profile=profile)


def test_three_shards_five_replicas_preferred_leaders():
    for seed in range(71_000, 71_003):
        run_seed(seed, shards=3, replicas=5, protocol="luigi", preferred_leaders=True, profile="harsh")


def test_across_a_wan_with_skewed_clocks():
    for seed in range(72_000, 72_003):
        run_seed(seed, shards=2, protocol="luigi", geo=True)


def test_no_transaction_aborts_on_a_conflict():
    """Under contention (a few hot keys, transactions on both shards) and the
    calm profile, Mako aborts and retries some transactions; Luigi orders
    them instead: no TRYAGAIN at all, and every kind of transaction commits."""
    kinds: dict[str, int] = {}
    for seed in range(73_000, 73_003):
        result = run_seed(seed, shards=2, protocol="luigi", profile="calm", txn_ratio=0.6)
        for op in result.history:
            if op.ok is False:
                assert not str(op.result).startswith("ErrorReply('TRYAGAIN"), op.result
                assert "luigi" not in str(op.result), op.result  # the workload declares every key
            elif op.ok:
                kinds[op.kind] = kinds.get(op.kind, 0) + 1
    assert kinds.get("txn", 0) > 500 and kinds.get("proc", 0) > 50 and kinds.get("watch", 0) > 20, kinds
