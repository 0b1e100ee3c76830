"""Redis Cluster clients against a real 2-shard x 3-replica cluster: redis-py's
RedisCluster, redis-cli -c and redis-cli --cluster check, and the CLUSTER
topology following a SIGKILLed leader. Three replicas per shard, so a shard
keeps a majority (and elects a new leader) when one is killed."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import redis
from redis.cluster import RedisCluster

from makod.kv.hashslot import key_slot
from tests.integration.cluster_util import Cluster, wait_for

SHARD_SLOTS = {0: ["0", "8191"], 1: ["8192", "16383"]}


@pytest.fixture(scope="module")
def six(two_by_three):
    """The session's shared 2x3 cluster (tests/integration/conftest.py)."""
    return two_by_three


def key_on(shard: int, prefix: str) -> str:
    i = 0
    while (key_slot(f"{prefix}{i}".encode()) >= 8192) != bool(shard):
        i += 1
    return f"{prefix}{i}"


def masters_seen_by(c: Cluster, name: str) -> dict[int, int]:
    """shard -> the master's port, from CLUSTER NODES as redis-py parses it."""
    nodes = c.client(name).execute_command("CLUSTER NODES")
    out = {}
    for addr, node in nodes.items():
        if "master" in node["flags"]:
            for shard, bounds in SHARD_SLOTS.items():
                if bounds in node["slots"]:
                    out[shard] = int(addr.rsplit(":", 1)[1])
    return out


def leader_ports(c: Cluster) -> dict[int, int]:
    return {shard: c.port(c.leader(shard)) for shard in (0, 1)}


def test_redis_py_cluster_client(six):
    leaders = settled_leaders(six)
    rc = RedisCluster(host="127.0.0.1", port=six.port(six.names[-1]), socket_timeout=15)
    try:
        assert {n.port for n in rc.get_primaries()} == set(leaders.values())
        keys = [key_on(0, "a"), key_on(1, "b")]
        for k in keys:
            assert rc.set(k, k) and rc.get(k) == k.encode()
            assert rc.keyslot(k) == rc.cluster_keyslot(k) == key_slot(k.encode())
        pipe = rc.pipeline()
        for k in keys:
            pipe.incr(k + ":n").incr(k + ":n")
        assert pipe.execute() == [1, 2, 1, 2]
        assert rc.mget_nonatomic(keys) == [k.encode() for k in keys]
    finally:
        rc.close()


def settled_leaders(c: Cluster) -> dict[int, int]:
    """The shard leaders, once every node's CLUSTER NODES names them (right
    after a start, a preferred leader may still be taking over)."""
    def agreed() -> dict[int, int] | None:
        leaders = leader_ports(c)
        return leaders if all(masters_seen_by(c, n) == leaders for n in c.names) else None

    return wait_for(agreed, timeout=10, what="every node to name the shard leaders as masters")


def test_topology_replies_name_each_leader(six):
    leaders = settled_leaders(six)
    r = six.client(six.names[0])
    slots = sorted(r.execute_command("CLUSTER SLOTS"), key=lambda e: e[0])
    assert [(e[0], e[1], e[2][1]) for e in slots] == [(0, 8191, leaders[0]), (8192, 16383, leaders[1])]
    assert all(len(e) == 2 + 3 for e in slots)  # the master and its two replicas
    for shard in six.client(six.names[0], protocol=3).execute_command("CLUSTER SHARDS"):
        masters = [n for n in shard[b"nodes"] if n[b"role"] == b"master"]
        assert len(shard[b"nodes"]) == 3 and len(masters) == 1
        lo = shard[b"slots"][0]
        assert masters[0][b"port"] == leaders[0 if lo == 0 else 1]
    # Node ids are the same on every node: each MYID is listed by the others.
    ids = {r.execute_command("CLUSTER MYID") for r in map(six.client, six.names)}
    assert ids == {n["node_id"].encode() for n in six.client(six.names[-1]).execute_command("CLUSTER NODES").values()}
    info = r.execute_command("CLUSTER INFO")
    assert info["cluster_state"] == "ok" and info["cluster_size"] == "2" and info["cluster_known_nodes"] == "6"
    assert r.info("cluster")["cluster_enabled"] == 1


def test_resp3_replies(six):
    r = six.client(six.names[1], protocol=3)
    assert len(r.execute_command("CLUSTER SLOTS")) == 2
    assert r.execute_command("CLUSTER KEYSLOT", "foo") == 12182
    assert r.execute_command("CLUSTER INFO")["cluster_slots_ok"] == "16384"


def test_keys_in_slot_answer_for_the_nodes_own_shard(six):
    key = key_on(1, "slotted")
    six.client().set(key, "v")
    slot = key_slot(key.encode())
    by_shard = {shard: six.client(six.leader(shard)) for shard in (0, 1)}
    assert by_shard[1].execute_command("CLUSTER COUNTKEYSINSLOT", slot) == 1
    assert by_shard[1].execute_command("CLUSTER GETKEYSINSLOT", slot, 10) == [key]  # redis-py decodes
    # Another shard's slot: what Redis answers for a slot the node does not hold.
    assert by_shard[0].execute_command("CLUSTER COUNTKEYSINSLOT", slot) == 0
    with pytest.raises(redis.ResponseError, match="unknown subcommand 'BOGUS'. Try CLUSTER HELP."):
        by_shard[0].execute_command("CLUSTER BOGUS")


def test_redis_cli(six):
    # redis-cli is part of the setup (.ci/run installs redis-tools): its
    # absence must fail here, not skip.
    assert shutil.which("redis-cli"), "redis-cli is not installed (apt-get install redis-tools)"
    port = str(six.port(six.names[0]))
    key = key_on(1, "cli")  # on the other shard: redis-cli -c follows the topology
    run = lambda *args: subprocess.run(["redis-cli", *args], capture_output=True, text=True, timeout=30)  # noqa: E731
    assert run("-c", "-p", port, "set", key, "v").stdout.strip() == "OK"
    assert run("-c", "-p", port, "get", key).stdout.strip() == "v"
    check = run("--cluster", "check", f"127.0.0.1:{port}")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "All 16384 slots covered" in check.stdout and "All nodes agree" in check.stdout


def test_new_leader_becomes_master_after_a_kill(six):
    """Last in the module: it kills a node (and restarts it: the cluster is shared)."""
    old = six.leader(0)
    six.kill(old)
    try:
        _check_new_master(six, old)
    finally:
        six.restart(old)
        wait_for(lambda: six.client(old, socket_timeout=2).ping(), timeout=30, what=f"{old} back")


def _check_new_master(six: Cluster, old: str) -> None:
    watcher = next(n for n in six.names if n.startswith("s1"))

    def new_master() -> int | None:
        port = masters_seen_by(six, watcher).get(0)
        return port if port is not None and port != six.port(old) else None

    port = wait_for(new_master, timeout=10, what="a new master for shard 0")
    wait_for(lambda: port == six.port(six.leader(0)), timeout=5, what="that master to be shard 0's leader")
    rc = RedisCluster(host="127.0.0.1", port=six.port(watcher), socket_timeout=15)
    try:
        key = key_on(0, "after")
        assert rc.set(key, "v") and rc.get(key) == b"v"
    finally:
        rc.close()
