"""A replicated shard (1 x 3) of real makod processes: forwarding, failover, catch-up."""

from __future__ import annotations

import re
import threading
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.integration.cluster_util import Cluster, makoctl, wait_for

RETRYABLE = (redis.ConnectionError, redis.TimeoutError, redis.ResponseError)


@pytest.fixture
def trio(tmp_path):
    c = Cluster(tmp_path / "d", shards=1, replicas=3)
    c.start()
    yield c
    c.stop()


def digests(cluster: Cluster, names: list[str]) -> dict[str, str]:
    out = {}
    for name in names:
        with cluster.client(name, socket_timeout=5) as c:
            out[name] = c.execute_command("MAKO", "DIGEST").decode()
    return out


def wait_converged(cluster: Cluster, names: list[str], timeout: float = 30) -> dict[str, str]:
    def same():
        d = digests(cluster, names)
        return d if len(set(d.values())) == 1 else None

    return wait_for(same, timeout=timeout, what="replicas to converge")


def test_any_replica_serves_reads_and_writes(trio):
    for i, name in enumerate(trio.names):
        assert trio.client(name).set(f"via-{name}", i)
    for name in trio.names:
        c = trio.client(name)
        assert [c.get(f"via-{n}") for n in trio.names] == [b"0", b"1", b"2"]
    wait_converged(trio, trio.names)


def test_status_shows_replication_fields(trio):
    nodes = trio.status()["nodes"]
    assert sorted(n["role"] for n in nodes) == ["follower", "follower", "leader"]
    for n in nodes:
        for field in ("ballot", "last_index", "commit_index", "applied_index", "lag", "leader", "host", "resp_port"):
            assert field in n, field
    leaders = {n["leader"] for n in nodes}
    assert len(leaders) == 1


class Writers:
    """Threads writing unique keys through every replica; records what was acknowledged."""

    def __init__(self, cluster: Cluster, per_replica: int = 2, no_retry: bool = False) -> None:
        self.cluster = cluster
        # redis-py resends a command on a dropped connection by itself: a test
        # that counts every failure must see each one.
        self.client_options = {"retry": Retry(NoBackoff(), 0)} if no_retry else {}
        self.acked: dict[str, str] = {}
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.last_ok = time.monotonic()
        self.threads = [
            threading.Thread(target=self._run, args=(name, w), daemon=True)
            for name in cluster.names
            for w in range(per_replica)
        ]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def _run(self, name: str, worker: int) -> None:
        client = self.cluster.client(name, socket_timeout=10 if self.client_options else 3, socket_connect_timeout=1,
                                     **self.client_options)
        i = 0
        while not self.stop.is_set():
            key, value = f"{name}:{worker}:{i}", f"v{i}"
            i += 1
            try:
                if client.set(key, value):
                    with self.lock:
                        self.acked[key] = value
                        self.last_ok = time.monotonic()
            except RETRYABLE as exc:
                self.errors.append(type(exc).__name__ + ": " + str(exc)[:80])
                time.sleep(0.02)

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=15)


def test_leader_sigkill_under_load_loses_nothing(trio):
    writers = Writers(trio)
    writers.start()
    wait_for(lambda: len(writers.acked) > 300, timeout=60, what="writes before the crash")
    old = trio.leader()
    killed_at = time.monotonic()
    trio.kill(old)
    before = len(writers.acked)
    wait_for(lambda: len(writers.acked) > before + 200, timeout=30, what="writes after the crash")
    recovered_after = writers.last_ok - killed_at
    new = trio.leader()
    assert new != old
    writers.finish()
    # Every acknowledged write is readable from the new leader.
    c = trio.client(new)
    keys = list(writers.acked)
    values = c.mget(keys)
    lost = [k for k, v in zip(keys, values) if v is None or v.decode() != writers.acked[k]]
    assert not lost, f"{len(lost)} acknowledged writes lost, e.g. {lost[:3]}"
    # The old leader comes back and converges (as the shard's preferred
    # replica it may well get leadership back once it has caught up).
    trio.restart(old)
    wait_for(lambda: any(n["name"] == old and n["role"] in ("follower", "leader") for n in trio.status()["nodes"]),
             timeout=20, what="old leader rejoining")
    wait_converged(trio, trio.names)
    print(f"writes resumed {recovered_after:.2f}s after SIGKILL of the leader")


def test_killing_a_follower_keeps_the_shard_serving(trio):
    leader = trio.leader()
    follower = next(n for n in trio.names if n != leader)
    trio.kill(follower)
    c = trio.client(leader)
    for i in range(100):
        assert c.set(f"f{i}", i)
    trio.restart(follower)
    wait_converged(trio, trio.names)
    assert trio.client(follower).get("f99") == b"99"


def test_losing_a_majority_stalls_writes_then_resumes(trio):
    leader = trio.leader()
    survivor = leader
    others = [n for n in trio.names if n != leader]
    c = trio.client(survivor, socket_timeout=15)
    assert c.set("before", 1)
    for name in others:
        trio.kill(name)
    # No quorum: writes and reads fail with a clear error, never a wrong answer.
    with pytest.raises(redis.RedisError) as info:
        c.set("during", 1)
    # redis-py turns the CLUSTERDOWN prefix into ClusterDownError.
    assert isinstance(info.value, (redis.exceptions.ClusterDownError, redis.TimeoutError)), info.value
    with pytest.raises(redis.RedisError):
        c.get("before")
    trio.restart(others[0])
    wait_for(lambda: trio.client(survivor, socket_timeout=5).set("after", 1), timeout=30, what="writes to resume")
    assert trio.client(survivor).get("before") == b"1"
    trio.restart(others[1])
    wait_converged(trio, trio.names)


def test_graceful_failover_moves_leadership(trio):
    old = trio.leader()
    target = next(n for n in trio.names if n != old)
    trio.client(old).set("k", "v")
    proc = makoctl("cluster", "failover", "--shard", "0", "--to", target, "--data-dir", trio.data_dir)
    # makoctl returns once the target leads and serves. (Asking the cluster
    # again would race the preferred replica taking leadership back, which
    # it does after the target has led for two election timeouts.)
    assert f"leadership moved {old} -> {target}" in proc.stdout
    assert trio.client(old).get("k") == b"v"  # forwarded to whoever leads
    # With no --to, leadership leaves whoever leads at that moment.
    proc = makoctl("cluster", "failover", "--shard", "0", "--data-dir", trio.data_dir)
    moved = re.search(r"leadership moved (\S+) -> (\S+) in", proc.stdout)
    assert moved is not None and moved.group(1) != moved.group(2), proc.stdout


def test_graceful_failovers_under_load_fail_no_write(trio):
    """A handover waits until the leader has released every reply, and the
    nodes that forwarded writes to it wait for its answers: writers through
    every replica see no error at all, however often leadership moves."""
    writers = Writers(trio, no_retry=True)
    writers.start()
    try:
        wait_for(lambda: len(writers.acked) > 100, timeout=60, what="writes before the handovers")
        # Each target in turn; the preferred replica (the first) also takes
        # leadership back by itself between them, another handover.
        for target in trio.names[1:] + trio.names[:1]:
            proc = makoctl("cluster", "failover", "--shard", "0", "--to", target, "--data-dir", trio.data_dir)
            assert re.search(rf"leadership moved \S+ -> {target}|{target} already leads", proc.stdout), proc.stdout
            before = len(writers.acked)
            wait_for(lambda: len(writers.acked) > before + 50, timeout=30, what="writes after the handover")
    finally:
        writers.finish()
    assert not writers.errors, f"{len(writers.errors)} writes failed across graceful handovers: {writers.errors[:5]}"
    keys = list(writers.acked)
    values = trio.client(trio.leader()).mget(keys)
    lost = [k for k, v in zip(keys, values) if v is None or v.decode() != writers.acked[k]]
    assert not lost, f"{len(lost)} acknowledged writes lost, e.g. {lost[:3]}"


def test_a_replica_behind_the_log_catches_up_by_snapshot(tmp_path):
    c = Cluster(tmp_path / "d", shards=1, replicas=3,
                config={"log_retain_slots": 16, "checkpoint_interval_ms": 50})
    c.start()
    try:
        leader = c.leader()
        follower = next(n for n in c.names if n != leader)
        c.kill(follower)
        cl = c.client(leader)
        # A 3 MB record: over a snapshot chunk (1 MB), it travels in pieces.
        cl.hset("snap:big", mapping={f"f{j}": str(j) * 500_000 for j in range(6)})
        for i in range(400):
            cl.set(f"snap:{i}", "x" * 100)  # one slot each: far past the retained log
        time.sleep(0.3)  # a checkpoint and compaction happen
        c.restart(follower)
        wait_converged(c, c.names, timeout=30)
        assert "installed a snapshot" in c.log(follower)
        assert c.client(follower).execute_command("MAKO", "DIGEST") == cl.execute_command("MAKO", "DIGEST")
    finally:
        c.stop()
