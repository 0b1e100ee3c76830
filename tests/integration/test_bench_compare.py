"""``makoctl bench compare`` end to end: two protocols on a 1x1 cluster, one short cell each."""

from __future__ import annotations

import json
import time

from tests.integration.cluster_util import free_port_block, makoctl


def test_compare_quick_json(tmp_path) -> None:
    chart = tmp_path / "compare.svg"
    t0 = time.monotonic()
    proc = makoctl(
        "bench", "compare", "--quick", "--protocols", "mako,2pc-paxos", "--workloads", "micro",
        "--clusters", "1x1", "--delays-ms", "0", "--duration-s", "2", "--json",
        "--base-port", str(free_port_block(1)), "--chart", str(chart), check=False, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - t0 < 40
    out = json.loads(proc.stdout)
    assert out["benchmark"] == "compare" and out["failed_cells"] == 0
    rows = {r["protocol"]: r for r in out["rows"]}
    assert sorted(rows) == ["2pc-paxos", "mako"] and len(out["rows"]) == 2
    for r in rows.values():
        assert r["cluster"] == "1x1" and r["workload"] == "micro" and r["rtt_ms"] == 0
        assert r["error"] is None and r["tps"] > 0
        single = r["types"]["single_shard"]
        assert single["commits"] > 0 and single["latency_us_p50"] <= single["latency_us_p99"]
        assert r["luigi_bumped_pct"] is None  # not luigi
    assert rows["2pc-paxos"]["tps_vs_2pc_paxos"] == 1.0
    svg = chart.read_text()
    assert svg.startswith("<svg") and "polyline" not in svg and svg.count("<circle") == 6  # 1 RTT: points only


def test_compare_bad_options() -> None:
    for args, name in ((["--protocols", "paxos"], "--protocols"), (["--clusters", "2y3"], "--clusters"),
                       (["--workloads", "ycsb"], "--workloads"), (["--delays-ms", "-1"], "--delays-ms")):
        proc = makoctl("bench", "compare", *args, check=False)
        assert proc.returncode == 2 and name in proc.stderr, proc.stderr
