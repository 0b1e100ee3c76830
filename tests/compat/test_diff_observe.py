"""INFO commandstats/errorstats/latencystats/keyspace hits, SLOWLOG and
LATENCY against redis-server: the same commands on both, the same counts,
shapes and texts (times differ, so they are compared by form)."""

from __future__ import annotations

import re

import pytest
import redis

from tests.compat import test_differential
from tests.integration.cluster_util import Cluster

real = test_differential.real  # the redis-server fixture


@pytest.fixture(scope="module")
def mako(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("observe-diff") / "data")
    try:
        c.start()
        yield redis.Redis(port=c.port(), protocol=2)
    finally:
        c.stop()


def _raw(port: int, protocol: int = 2) -> redis.Redis:
    c = redis.Redis(port=port, protocol=protocol)
    c.response_callbacks.clear()  # raw replies: INFO as text, not a dict
    return c


def _both(real_client, mako_client):
    ours = _raw(mako_client.connection_pool.connection_kwargs["port"])
    theirs = _raw(real_client.connection_pool.connection_kwargs["port"])
    for c in (ours, theirs):
        c.execute_command("FLUSHALL")
        c.execute_command("CONFIG", "SET", "slowlog-log-slower-than", "10000")
        c.execute_command("CONFIG", "RESETSTAT")
        c.execute_command("SLOWLOG", "RESET")
    return ours, theirs


def _run(c: redis.Redis, *argv) -> object:
    try:
        return c.execute_command(*argv)
    except redis.ResponseError as exc:
        return f"error: {exc}"


SCRIPT = [
    ("SET", "a", "1"), ("GET", "a"), ("GET", "nope"), ("MGET", "a", "nope", "x"), ("INCR", "a"),
    ("LPUSH", "a", "x"), ("GET",), ("NOSUCHCOMMAND",), ("HGET", "a", "f"), ("EXISTS", "a", "b"),
    ("SET", "a", "v", "BADOPT"), ("STRLEN", "a"), ("TYPE", "nope"),
]


def _stats_lines(c: redis.Redis, section: str) -> dict[str, str]:
    text = c.execute_command("INFO", section).decode()
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def test_counts_match_redis(real, mako):
    ours, theirs = _both(real, mako)
    for argv in SCRIPT:
        assert _run(ours, *argv) == _run(theirs, *argv), argv
    for section in ("commandstats", "errorstats"):
        a, b = _stats_lines(ours, section), _stats_lines(theirs, section)
        # makoctl's and redis-py's own commands (CLIENT SETINFO, MAKO STATUS, CONFIG...) aside.
        script_cmds = {f"cmdstat_{argv[0].lower()}" for argv in SCRIPT}
        pick = (lambda d: {k: re.sub(r"usec=\d+,usec_per_call=[\d.]+,", "", v) for k, v in d.items()
                           if k in script_cmds}) if section == "commandstats" else (lambda d: d)
        assert pick(a) == pick(b), section
    stats_ours, stats_theirs = _stats_lines(ours, "stats"), _stats_lines(theirs, "stats")
    for field in ("keyspace_hits", "keyspace_misses", "total_error_replies"):
        assert stats_ours[field] == stats_theirs[field], field


def test_latencystats_have_redis_form(real, mako):
    ours, theirs = _both(real, mako)
    for c in (ours, theirs):
        for _ in range(5):
            c.execute_command("SET", "k", "v")
    pattern = re.compile(r"p50=\d+\.\d{3},p99=\d+\.\d{3},p99\.9=\d+\.\d{3}")
    for c in (ours, theirs):
        assert pattern.fullmatch(_stats_lines(c, "latencystats")["latency_percentiles_usec_set"])
    ours.execute_command("CONFIG", "SET", "latency-tracking-info-percentiles", "50 90")
    assert re.fullmatch(r"p50=\d+\.\d{3},p90=\d+\.\d{3}", _stats_lines(ours, "latencystats")["latency_percentiles_usec_set"])
    ours.execute_command("CONFIG", "SET", "latency-tracking-info-percentiles", "50 99 99.9")
    for c in (ours, theirs):
        c.execute_command("CONFIG", "RESETSTAT")
        assert "latency_percentiles_usec_set" not in _stats_lines(c, "latencystats")


def test_slowlog_entries_truncate_as_redis_does(real, mako):
    ours, theirs = _both(real, mako)
    argv = ["RPUSH", "long"] + [f"v{i}" for i in range(38)] + ["x" * 200]
    for c in (ours, theirs):
        c.execute_command("CONFIG", "SET", "slowlog-log-slower-than", "0")
        c.execute_command(*argv)
        c.execute_command("CONFIG", "SET", "slowlog-log-slower-than", "-1")
    got = {}
    for name, c in (("ours", ours), ("theirs", theirs)):
        entries = c.execute_command("SLOWLOG", "GET", "-1")
        rpush = next(e for e in entries if e[3][0] == b"RPUSH")
        assert len(rpush) == 6 and isinstance(rpush[0], int) and isinstance(rpush[2], int)
        got[name] = rpush[3]
        assert c.execute_command("SLOWLOG", "LEN") == len(entries)
    assert got["ours"] == got["theirs"]
    assert got["ours"][-1] == b"... (10 more arguments)" and len(got["ours"]) == 32
    for bad in ("abc", "-2"):
        assert _run(ours, "SLOWLOG", "GET", bad) == _run(theirs, "SLOWLOG", "GET", bad)
    for c in (ours, theirs):
        assert c.execute_command("SLOWLOG", "RESET") == b"OK"
        assert c.execute_command("SLOWLOG", "LEN") == 0
    assert _run(ours, "SLOWLOG", "HELP") == _run(theirs, "SLOWLOG", "HELP")
    assert _run(ours, "SLOWLOG", "NOPE") == _run(theirs, "SLOWLOG", "NOPE")


def test_slowlog_long_args_are_cut_at_128_bytes(real, mako):
    ours, theirs = _both(real, mako)
    for c in (ours, theirs):
        c.execute_command("CONFIG", "SET", "slowlog-log-slower-than", "0")
        c.execute_command("SET", "k" * 10, "y" * 300)
        c.execute_command("CONFIG", "SET", "slowlog-log-slower-than", "10000")
    entry = [next(e for e in c.execute_command("SLOWLOG", "GET") if e[3][0] == b"SET")[3] for c in (ours, theirs)]
    assert entry[0] == entry[1] and entry[0][2].endswith(b"... (172 more bytes)")


def test_latency_commands_answer_as_redis(real, mako):
    ours, theirs = _both(real, mako)
    for c in (ours, theirs):
        c.execute_command("SET", "h", "1")
        c.execute_command("GET", "h")
    assert _run(ours, "LATENCY", "DOCTOR") == _run(theirs, "LATENCY", "DOCTOR")
    assert _run(ours, "LATENCY", "LATEST") == _run(theirs, "LATENCY", "LATEST") == []
    assert _run(ours, "LATENCY", "HISTORY", "command") == _run(theirs, "LATENCY", "HISTORY", "command") == []
    assert _run(ours, "LATENCY", "RESET") == _run(theirs, "LATENCY", "RESET") == 0
    assert _run(ours, "LATENCY", "HELP") == _run(theirs, "LATENCY", "HELP")
    three = [_raw(c.connection_pool.connection_kwargs["port"], 3) for c in (ours, theirs)]
    shapes = []
    for c in three:
        hist = c.execute_command("LATENCY", "HISTOGRAM", "set", "get", "nosuch")
        assert set(hist) == {b"set", b"get"}
        entry = hist[b"get"]
        assert entry[b"calls"] == 1 and sum(1 for _ in entry[b"histogram_usec"]) >= 1
        assert all(b & (b - 1) == 0 for b in entry[b"histogram_usec"]), "power-of-two buckets"
        shapes.append({k: sorted(v) for k, v in hist.items()} and sorted(hist))
    assert shapes[0] == shapes[1]


def test_latency_monitor_records_a_slow_command(mako):
    c = _raw(mako.connection_pool.connection_kwargs["port"])
    c.execute_command("LATENCY", "RESET")
    c.execute_command("CONFIG", "SET", "latency-monitor-threshold", "5")
    try:
        c.execute_command("EVAL", "local i = 0 while i < 2000000 do i = i + 1 end return i", 0)
    finally:
        c.execute_command("CONFIG", "SET", "latency-monitor-threshold", "0")
    (latest,) = c.execute_command("LATENCY", "LATEST")
    assert latest[0] == b"command" and latest[2] >= 5 and latest[3] >= latest[2]
    assert c.execute_command("LATENCY", "HISTORY", "command")[-1][1] == latest[2]
    assert b"command: 1 latency spikes" in c.execute_command("LATENCY", "DOCTOR")
    graph = c.execute_command("LATENCY", "GRAPH", "command")
    assert graph.startswith(b"command - high ") and b"-" * 80 in graph
    with pytest.raises(redis.ResponseError, match="No samples available for event 'nosuch'"):
        c.execute_command("LATENCY", "GRAPH", "nosuch")
    assert c.execute_command("LATENCY", "RESET", "command") == 1


def _monitor_tail(port: int, argv: list[bytes]) -> bytes:
    """What a MONITOR client of ``port`` sees for ``argv``, after the ``]``."""
    import socket

    mon = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        mon.sendall(b"MONITOR\r\n")
        assert mon.recv(5) == b"+OK\r\n"
        raw = _raw(port)
        raw.execute_command(*argv)
        data = b""
        want = b'] "' + argv[0] + b'"'
        while want not in data or not data.split(want, 1)[1].count(b"\r\n"):
            data += mon.recv(4096)  # (a client's own CLIENT SETINFO may come first)
        line = next(line for line in data.split(b"\r\n") if want in line)
        assert re.fullmatch(rb"\+\d+\.\d{6} \[0 127\.0\.0\.1:\d+\] .*", line, re.S), line
        return line.split(b"] ", 1)[1]
    finally:
        mon.close()


def test_monitor_lines_quote_arguments_as_redis(real, mako):
    ours, theirs = _both(real, mako)
    argv = [b"SET", b'q"uo\\te', b"line\nbreak\ttab\x00\x7f\xffend"]
    assert _monitor_tail(ours.connection_pool.connection_kwargs["port"], argv) == \
        _monitor_tail(theirs.connection_pool.connection_kwargs["port"], argv)


def test_memory_usage_and_role(real, mako):
    ours, theirs = _both(real, mako)
    for c in (ours, theirs):
        c.execute_command("SET", "k", "v")
        c.execute_command("RPUSH", "l", *[f"e{i}" for i in range(100)])
    for argv in (["MEMORY", "USAGE", "nope"], ["MEMORY", "USAGE", "k", "SAMPLES", "x"], ["MEMORY", "USAGE", "k", "foo"],
                 ["MEMORY", "USAGE"]):
        assert _run(ours, *argv) == _run(theirs, *argv), argv
    small, big = _run(ours, "MEMORY", "USAGE", "k"), _run(ours, "MEMORY", "USAGE", "l", "SAMPLES", "0")
    assert isinstance(small, int) and 40 < small < 200 and big > small + 300
    role = _run(ours, "ROLE")
    assert role == [b"master", role[1], []] and isinstance(role[1], int)


def test_config_set_several_at_once_all_or_nothing(real, mako):
    ours, theirs = _both(real, mako)
    for argv in (["CONFIG", "SET", "a", "b", "c"], ["CONFIG", "SET", "timeout", "5", "timeout", "6"],
                 ["CONFIG", "SET", "loglevel", "loud"], ["CONFIG", "SET", "timeout", "-1"],
                 ["CONFIG", "SET", "client-query-buffer-limit", "10"],
                 ["CONFIG", "SET", "client-output-buffer-limit", "normal 1 2"],
                 ["CONFIG", "SET", "client-output-buffer-limit", "foo 1 2 3"],
                 ["CONFIG", "SET", "timeout", "7", "loglevel", "loud"], ["CONFIG", "GET", "timeout"],
                 ["CONFIG", "SET", "timeout", "9", "loglevel", "warning"], ["CONFIG", "GET", "timeout"],
                 ["CONFIG", "GET", "loglevel"], ["CONFIG", "SET", "loglevel", "notice", "timeout", "0"]):
        assert _run(ours, *argv) == _run(theirs, *argv), argv
    assert _run(ours, "CONFIG", "SET", "client-output-buffer-limit", "pubsub 1mb 2mb 3") == b"OK"
    got = _run(ours, "CONFIG", "GET", "client-output-buffer-limit")[1]
    assert b"pubsub 1048576 2097152 3" in got
    assert _run(ours, "CONFIG", "SET", "client-output-buffer-limit", "pubsub 32mb 8mb 60") == b"OK"
