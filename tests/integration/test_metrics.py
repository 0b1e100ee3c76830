"""Each node's Prometheus endpoint: GET /metrics parses, counts what ran,
and bad requests get HTTP errors, never a dead node."""

from __future__ import annotations

import asyncio
import socket
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from makod.net.metrics_http import MetricsServer


def _metrics_port(cluster, name: str) -> int:
    return cluster.ports[name] + 30000


def _scrape(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = resp.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_metrics_count_commands_and_show_paxos(fresh_single):
    name = fresh_single.names[0]
    port = _metrics_port(fresh_single, name)
    before = _scrape(port)
    c = fresh_single.client()
    for i in range(7):
        c.set(f"m{i}", i)
    c.get("m1")
    c.get("absent")
    after = _scrape(port)
    labels = (("cmd", "set"), ("node", name), ("shard", "0"))
    assert after[("makod_commands_total", labels)] - before.get(("makod_commands_total", labels), 0) == 7
    assert after[("makod_command_duration_seconds_count", labels)] >= 7
    buckets = sorted((float(dict(k[1])["le"]), v) for k, v in after.items()
                     if k[0] == "makod_command_duration_seconds_bucket" and dict(k[1])["cmd"] == "set")
    assert [v for _le, v in buckets] == sorted(v for _le, v in buckets), "cumulative buckets"
    node = (("node", name), ("shard", "0"))
    assert after[("makod_keyspace_hits_total", node)] >= 1 and after[("makod_keyspace_misses_total", node)] >= 1
    assert after[("makod_paxos_role", (("node", name), ("role", "leader"), ("shard", "0")))] == 1
    assert after[("makod_paxos_commit_index", node)] >= 7
    assert after[("makod_log_writes_total", node)] >= 1


def test_bad_requests_get_http_errors(fresh_single):
    port = _metrics_port(fresh_single, fresh_single.names[0])
    for path, code in (("/", 404), ("/metricsx", 404)):
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5)
        assert info.value.code == code
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", method="POST", data=b"x")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=5)
    assert info.value.code == 405
    for junk in (b"GARBAGE\r\n\r\n", b"GET /metrics\r\n\r\n", b"x" * 20000):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(junk)
            s.shutdown(socket.SHUT_WR)
            reply = s.recv(100)
            assert reply == b"" or reply.startswith((b"HTTP/1.1 400", b"HTTP/1.1 431")), reply
    assert fresh_single.client().ping()
    _scrape(port)


def test_a_busy_metrics_port_is_logged_not_fatal(caplog):
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]

    async def main() -> bool:
        server = MetricsServer(lambda: b"")
        ok = await server.start("127.0.0.1", port)
        await server.close()
        return ok

    try:
        assert asyncio.run(main()) is False
    finally:
        blocker.close()
    assert "metrics endpoint not started" in caplog.text


def test_a_taken_metrics_port_costs_the_endpoint_not_the_node(tmp_path):
    # Metrics ports sit in Linux's ephemeral range: a client's source port
    # may hold one for a moment. The node still serves RESP, and says why
    # /metrics is missing.
    import yaml

    from makod.config import default_config_dict
    from tests.integration.cluster_util import Cluster, free_port_block, makoctl

    base = free_port_block(1)
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    taken = holder.getsockname()[1]
    data = default_config_dict(1, 1, base)
    data["shards"][0]["replicas"][0]["metrics_port"] = taken
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(data))
    cluster = Cluster(tmp_path / "data")
    try:
        makoctl("cluster", "start", "--data-dir", cluster.data_dir, "--config", str(path), "--timeout", "60",
                timeout=90)
        import redis

        with redis.Redis(port=base, socket_timeout=5) as c:
            assert c.set("k", "v") and c.get("k") == b"v"
        assert f"metrics endpoint not started on 127.0.0.1:{taken}" in cluster.log("s0r0")
    finally:
        holder.close()
        cluster.stop()
