"""The benches' recorder: HDR percentiles, completions per second with the
gaps, the terminal chart and the HTML report."""

from __future__ import annotations

import json

from makoctl.bench.recorder import Recorder, terminal_chart, write_report


def test_percentiles_and_timeline():
    r = Recorder(start=100.0)
    for i in range(1, 1001):  # 1..1000 ms, one per ms
        r.record(i / 1000, done_at=100.0 + (0.5 if i <= 600 else 3.2))
    r.error()
    s = r.summary()
    assert s["count"] == 1000 and s["errors"] == 1
    assert abs(s["p50_ms"] - 500) <= 1 and abs(s["p99_ms"] - 990) <= 1.5 and abs(s["p99.9_ms"] - 999) <= 1.5
    assert abs(s["max_ms"] - 1000) <= 1 and s["p90_ms"] <= s["p99_ms"] <= s["p99.9_ms"] <= s["max_ms"]
    assert r.timeline() == [(0, 600), (1, 0), (2, 0), (3, 400)]
    assert Recorder().summary() == {"count": 0, "errors": 0} and Recorder().timeline() == []


def test_chart_and_report(tmp_path):
    timeline = [(s, 0 if 3 <= s <= 4 else 500) for s in range(10)]
    text = terminal_chart(timeline, "writes/s", [(3.0, "kill s0r0")])
    assert "writes/s" in text and "\x1b" not in text and len(text.splitlines()) >= 10
    paths = write_report(str(tmp_path / "r"), "failover", {"lost_writes": 0}, timeline, [(3.0, "kill s0r0")])
    data = json.loads(open(paths[0]).read())
    assert data["results"] == {"lost_writes": 0} and data["timeline"][3] == [3, 0]
    page = open(paths[1]).read()
    assert "<svg" in page and "kill s0r0" in page and "lost_writes" in page


def test_tpcc_type_stats_survive_pickling_across_driver_processes():
    import pickle

    from makoctl.bench.tpcc.common import TypeStats

    a = TypeStats(commits=3)
    for ms in (5, 10, 50):
        a.record(ms / 1000)
    b = pickle.loads(pickle.dumps(a))  # what a driver process sends back
    b.merge(a)
    s = b.summary(1.0)
    assert b.commits == 6 and b.hist.get_total_count() == 6
    assert abs(s["p50_ms"] - 10) < 0.1 and abs(s["max_ms"] - 50) < 0.1
