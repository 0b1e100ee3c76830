"""Command statistics with the host's clocks passed in: SLOWLOG entries and
LATENCY samples carry the time the host says, one latency sample per second."""

from __future__ import annotations

from resp.cmdstats import CommandStats


def test_entries_are_stamped_with_the_hosts_time():
    now = [1_000.5]
    stats = CommandStats(lambda: now[0], lambda: 0)
    stats.slowlog_log_slower_than_us = 100
    stats.latency_monitor_threshold_ms = 5
    stats.record("get", 50, False, [b"GET", b"k"])  # fast: not logged
    stats.record("set", 7_000, False, [b"SET", b"k", b"v" * 200])
    (entry,) = stats.slowlog
    assert entry[1] == 1000 and entry[2] == 7_000 and entry[3][2].endswith(b"... (72 more bytes)")
    stats.record("set", 9_000, False, None)  # same second: the max is kept
    now[0] = 1_003.0
    stats.record("set", 6_000, False, None)
    assert list(stats.latency_events["command"]) == [(1000, 9), (1003, 6)]
    assert stats.latency_max["command"] == 9
