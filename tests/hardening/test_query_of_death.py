"""Keys Redis accepts but LMDB cannot hold as keys (empty, past 511 bytes) on a 1x3 shard:
written, checkpointed, replayed after SIGKILL, and served after every node restarts."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.integration.cluster_util import makoctl, wait_for

KEYS = {
    b"": b"empty-key",
    b"k" * 511: b"lmdb-max",
    b"k" * 512: b"just-past",
    b"x" * 600: b"six-hundred",
    b"\x00\xff" * 5000: b"ten-kb-binary",
    b"y" * 1_000_000: b"one-megabyte-key",
}


def _client(cluster, name=None) -> redis.Redis:
    return cluster.client(name, retry=Retry(NoBackoff(), 0), socket_timeout=20)


def _check_all(c: redis.Redis) -> None:
    for key, value in KEYS.items():
        assert c.get(key) == value, f"key of {len(key)} bytes"
    assert c.hgetall(b"h" * 700) == {b"f": b"1"}
    assert c.exists(b"gone" * 200) == 0
    assert c.dbsize() == len(KEYS) + 1
    assert set(c.keys(b"*")) == set(KEYS) | {b"h" * 700}
    assert set(c.scan_iter(count=2)) == set(KEYS) | {b"h" * 700}


def test_huge_and_empty_keys_survive_checkpoints_crashes_and_restarts(make_cluster):
    cluster = make_cluster(replicas=3, config={"checkpoint_interval_ms": 50})
    c = _client(cluster, cluster.leader())
    for key, value in KEYS.items():
        assert c.set(key, value) is True
    c.hset(b"h" * 700, b"f", b"1")
    c.set(b"gone" * 200, b"x")
    assert c.delete(b"gone" * 200) == 1
    _check_all(c)
    # Let every replica checkpoint them (50 ms interval), then crash all three:
    # the restart loads the checkpoint and replays the log above it.
    wait_for(lambda: all(_client(cluster, n).dbsize() == len(KEYS) + 1 for n in cluster.names), timeout=20,
             what="every replica applied the writes")
    import time

    time.sleep(0.5)
    for name in cluster.names:
        cluster.kill(name)
    for name in cluster.names:
        cluster.restart(name)
    wait_for(lambda: cluster.leader(), timeout=30, what="a leader after the restart")
    _check_all(_client(cluster, cluster.leader()))
    # A clean stop (final checkpoint) and start.
    makoctl("cluster", "stop", "--data-dir", cluster.data_dir)
    makoctl("cluster", "start", "--data-dir", cluster.data_dir)
    c = _client(cluster, cluster.leader())
    _check_all(c)
    # Every node is up and says so.
    for name in cluster.names:
        assert _client(cluster, name).ping() is True
        assert "Traceback" not in cluster.log(name)
