"""``makoctl bench micro`` against a real makod (1 shard x 1 replica)."""

from __future__ import annotations

import json

from tests.integration.cluster_util import makoctl


def test_micro_end_to_end() -> None:
    proc = makoctl(
        "bench", "micro", "--shards", "1", "--replicas", "1", "--keys", "2000", "--read-ratio", "0.8",
        "--ops-per-txn", "6", "--zipf", "0.9", "--clients", "4", "--duration", "2", "--warmup", "0.5",
        "--check", "--json", "--seed", "3", check=False, timeout=90,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["benchmark"] == "micro" and out["tps"] > 0 and out["ops_per_s"] > out["tps"]
    single = out["transactions"]["single_shard"]
    assert single["commits"] > 0 and single["p50_ms"] <= single["p99_ms"]
    assert out["transactions"]["cross_shard"]["commits"] == 0  # one shard
    assert out["cross_shard"] == 0.0, "the --cross-shard parameter, not the type's figures"
    assert single["p99_ms"] <= single["p99.9_ms"] <= single["max_ms"]
    assert 75 <= out["measured"]["read_pct"] <= 85
    assert out["consistency"] == {"counters": "pass"}


def test_micro_bad_options() -> None:
    for args, name in ((["--read-ratio", "1.5"], "--read-ratio"), (["--zipf", "2"], "--zipf"),
                       (["--ops-per-txn", "0"], "--ops-per-txn"), (["--keys", "0"], "--keys")):
        proc = makoctl("bench", "micro", *args, check=False)
        assert proc.returncode == 2 and name in proc.stderr, proc.stderr
