"""makoctl bench failover end to end: a leader killed under writes, nothing
acknowledged lost, latency percentiles, and the report with the kill marked."""

from __future__ import annotations

import json

from tests.integration.cluster_util import free_port_block, makoctl


def test_bench_failover_reports_latency_and_charts_the_kill(tmp_path):
    base = free_port_block(3)
    proc = makoctl("bench", "failover", "--rounds", "1", "--writers-per-node", "1", "--base-port", str(base),
                   "--report", str(tmp_path / "rep"), "--json", timeout=180)
    report = json.loads(proc.stdout)
    assert report["lost_writes"] == 0 and report["acknowledged_writes"] > 0
    lat = report["write_latency"]
    assert lat["count"] == report["acknowledged_writes"]
    assert lat["p50_ms"] <= lat["p99_ms"] <= lat["p99.9_ms"] <= lat["max_ms"]
    saved = json.loads((tmp_path / "rep" / "failover.json").read_text())
    assert len(saved["marks"]) == 1 and saved["marks"][0][1].startswith("kill s0r")
    assert "<svg" in (tmp_path / "rep" / "failover.html").read_text()
