"""``makoctl bench tpcc`` against real makod processes (1 shard x 1 replica, ITEM scaled to 1,000).

* an ephemeral cluster, end to end: load, check, run, check, JSON;
* two warehouses on a running cluster: the measured mix and remote shares
  match the spec's, every condition holds;
* one corrupted row (through a raw MAKO CALL) fails the named condition,
  warehouse and district.
"""

from __future__ import annotations

import json
import os

import msgpack
import pytest

from makod.config import load_config_file
from makod.core.slots import SlotMap
from makod.procs.tpcc_schema import k_dy, warehouse_prefix
from tests.integration.cluster_util import Cluster, makoctl

ITEMS = "1000"
TYPES = ["new_order", "payment", "order_status", "delivery", "stock_level"]


def run_json(*args: str, expect: int = 0, timeout: float = 120) -> tuple[dict, str]:
    proc = makoctl(*args, "--json", check=False, timeout=timeout)
    assert proc.returncode == expect, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return json.loads(proc.stdout), proc.stderr


def test_ephemeral_cluster_end_to_end() -> None:
    out, _ = run_json(
        "bench", "tpcc", "--shards", "1", "--replicas", "1", "--warehouses", "1", "--items", ITEMS,
        "--duration", "5", "--warmup", "1", "--check", "--seed", "1",
    )
    assert out["tps"] > 0 and out["tpmc"] > 0
    assert out["cluster"] == {"shards": 1, "replicas": 1, "protocol": "mako", "ack": "durable", "ephemeral": True}
    for t in TYPES:
        figures = out["transactions"][t]
        assert figures["commits"] > 0, t
        for key in ("aborts", "retries", "rollbacks", "p50_ms", "p90_ms", "p99_ms"):
            assert key in figures
        assert figures["p50_ms"] <= figures["p90_ms"] <= figures["p99_ms"]
        assert out[t] == figures
    assert out["tpmc"] == pytest.approx(
        (out["transactions"]["new_order"]["commits"] + out["transactions"]["new_order"]["rollbacks"])
        * 60 / out["duration_s"], rel=0.01)
    assert out["consistency_after_load"] == {str(c): "pass" for c in range(1, 13)}
    assert out["consistency"] == {str(c): "pass" for c in range(1, 13)}
    assert out["violations"] == []
    assert out["load"]["rows"] > 400_000 and not out["load"]["reused"]


@pytest.fixture(scope="module")
def two_warehouses(tmp_path_factory):
    """A running 1x1 cluster loaded with 2 warehouses and run once with --check."""
    c = Cluster(tmp_path_factory.mktemp("tpcc") / "data")
    c.start()
    try:
        out, _ = run_json(
            "bench", "tpcc", "--data-dir", c.data_dir, "--warehouses", "2", "--items", ITEMS,
            "--duration", "5", "--warmup", "0", "--clients", "20", "--check", "--seed", "2",
        )
        yield c, out
    finally:
        c.stop()


def test_two_warehouses_mix_and_remote_shares(two_warehouses) -> None:
    _, out = two_warehouses
    assert out["consistency"] == {str(c): "pass" for c in range(1, 13)}, out["violations"]
    tx = out["transactions"]
    total = sum(tx[t]["commits"] + tx[t]["rollbacks"] for t in TYPES)
    assert total > 1000
    for t, want, tol in (("new_order", 45, 2), ("payment", 43, 2), ("order_status", 4, 1), ("delivery", 4, 1),
                         ("stock_level", 4, 1)):
        assert abs(tx[t]["mix_pct"] - want) <= tol, (t, tx[t]["mix_pct"])
        assert tx[t]["mix_target_pct"] == want
    remote = out["remote"]
    assert 0.5 <= remote["order_lines_pct"] <= 1.5, remote
    assert 11 <= remote["payments_pct"] <= 19, remote
    assert 55 <= remote["by_last_name_pct"] <= 65, remote
    assert 0.3 <= remote["rollback_pct"] <= 2.0, remote
    # the same shares as the database itself records them (S_REMOTE_CNT / S_ORDER_CNT, HISTORY rows)
    db = out["database"]
    assert 0.5 <= db["remote_order_lines_pct"] <= 1.5, db
    assert 11 <= db["remote_payments_pct"] <= 19, db


def test_corrupted_row_fails_the_named_condition(two_warehouses) -> None:
    cluster, _ = two_warehouses
    cfg = load_config_file(os.path.join(cluster.data_dir, "cluster.yaml"))
    p = warehouse_prefix(SlotMap([s.slots for s in cfg.shards]), 2, 2)
    key = k_dy(p, 3)
    r = cluster.client()
    [d_ytd] = msgpack.unpackb(r.execute_command("MAKO", "CALL", "tpcc.get", msgpack.packb({"keys": [key]})))
    r.execute_command("MAKO", "CALL", "tpcc.load", msgpack.packb({"rows": [[key, d_ytd + 1]]}))
    out, stderr = run_json("bench", "tpcc", "--data-dir", cluster.data_dir, "--check-only", expect=1)
    assert out["consistency"]["9"] == "fail" and out["consistency"]["1"] == "fail"
    assert all(out["consistency"][str(c)] == "pass" for c in range(2, 13) if c not in (9, 11))
    assert {(v["condition"], v["w"], v["d"]) for v in out["violations"]} == {(1, 2, None), (9, 2, 3)}
    assert "consistency condition 9" in stderr and "warehouse 2 district 3" in stderr
    r.execute_command("MAKO", "CALL", "tpcc.load", msgpack.packb({"rows": [[key, d_ytd]]}))


def test_bad_options_are_usage_errors(tmp_path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("cluster: x\nshards: [{id: 0, slots: 0-16383, replicas: [{name: a, resp_port: 1}]}]\n")
    proc = makoctl("bench", "tpcc", "--config", str(cfg), "--shards", "2", check=False)
    assert proc.returncode == 2 and "--shards" in proc.stderr
    proc = makoctl("bench", "tpcc", "--warehouses", "0", check=False)
    assert proc.returncode == 2 and "--warehouses" in proc.stderr
    proc = makoctl("bench", "tpcc", "--protocol", "tiga", check=False)
    assert proc.returncode == 2 and "--protocol" in proc.stderr
    proc = makoctl("bench", "tpcc", "--data-dir", str(tmp_path / "nothing"), check=False)
    assert proc.returncode == 1 and "no cluster" in proc.stderr
