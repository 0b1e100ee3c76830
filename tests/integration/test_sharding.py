"""Sharded clusters of real makod processes: keys spread over shards, commands
and transactions spanning them stay atomic, any node answers for any key."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
import redis

from makod.core.slots import key_slot
from tests.integration.cluster_util import Cluster


def shard_of(key: str, shards: int = 2) -> int:
    return 0 if key_slot(key.encode()) < 16384 // shards else 1


def keys_on(shard: int, count: int, prefix: str = "k") -> list[str]:
    out, i = [], 0
    while len(out) < count:
        key = f"{prefix}{i}"
        if shard_of(key) == shard:
            out.append(key)
        i += 1
    return out


@pytest.fixture(scope="module")
def duo(tmp_path_factory):
    """2 shards x 1 replica: the cheapest cluster where keys live on different shards."""
    c = Cluster(tmp_path_factory.mktemp("duo") / "data", shards=2, replicas=1)
    c.start()
    yield c
    c.stop()


def test_any_node_answers_for_any_key(duo):
    a, b = keys_on(0, 1)[0], keys_on(1, 1)[0]
    for name in duo.names:
        c = duo.client(name)
        assert c.set(a, name) and c.set(b, name)
        assert c.get(a) == name.encode() and c.get(b) == name.encode()


def test_multi_key_commands_span_shards(duo):
    c = duo.client(decode_responses=True)
    c.flushall()
    left, right = keys_on(0, 3, "m"), keys_on(1, 3, "m")
    pairs = {k: f"v-{k}" for k in left + right}
    assert c.mset(pairs)
    assert c.mget(list(pairs)) == list(pairs.values())
    assert c.exists(*pairs) == 6
    assert c.rename(left[0], right[0] + "-renamed")
    assert c.get(left[0]) is None and c.get(right[0] + "-renamed") == pairs[left[0]]
    assert c.delete(left[1], right[1], "missing") == 2
    assert c.dbsize() == 4
    assert sorted(c.keys("m*")) == sorted([left[2], right[2], right[0], right[0] + "-renamed"])
    assert c.msetnx({left[2]: "x", "fresh": "y"}) is False and c.get("fresh") is None
    assert set(c.scan_iter(count=1)) == set(c.keys("*"))
    assert c.flushall() and c.dbsize() == 0


def test_mset_is_atomic_across_shards(duo):
    """Writers set a pair on two shards to the same value; no reader ever sees them differ."""
    a, b = keys_on(0, 1, "pair")[0], keys_on(1, 1, "pair")[0]
    c = duo.client()
    c.mset({a: 0, b: 0})
    stop = threading.Event()
    torn: list = []

    def writer(n: int) -> None:
        w = duo.client()
        for i in range(n, 400, 2):
            w.mset({a: i, b: i})

    def reader() -> None:
        r = duo.client()
        while not stop.is_set():
            x, y = r.mget(a, b)
            if x != y:
                torn.append((x, y))

    readers = [threading.Thread(target=reader) for _ in range(2)]
    writers = [threading.Thread(target=writer, args=(n,)) for n in range(2)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join(timeout=120)
    stop.set()
    for t in readers:
        t.join(timeout=30)
    assert not torn, f"MGET saw a half-applied MSET: {torn[:3]}"


def test_multi_exec_and_watch_across_shards(duo):
    x, y = keys_on(0, 1, "tx")[0], keys_on(1, 1, "tx")[0]
    a, b = duo.client(decode_responses=True), duo.client(decode_responses=True)
    a.mset({x: 10, y: 20})
    with a.pipeline() as pipe:
        pipe.watch(x, y)
        vx, vy = int(pipe.get(x)), int(pipe.get(y))
        pipe.multi()
        pipe.set(x, vx - 5)
        pipe.set(y, vy + 5)
        pipe.get(x)
        assert pipe.execute() == [True, True, "5"]
    assert a.mget(x, y) == ["5", "25"]
    with a.pipeline() as pipe:
        pipe.watch(x, y)
        pipe.get(y)
        b.incr(y)  # a write on the other shard than the first watched key
        pipe.multi()
        pipe.set(x, 0)
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert a.mget(x, y) == ["5", "26"]
    # Keyspace-wide commands cannot join a cross-shard transaction: that entry errs, the rest runs.
    with a.pipeline() as pipe:
        pipe.set(x, 1)
        pipe.set(y, 1)
        pipe.dbsize()
        out = pipe.execute(raise_on_error=False)
    assert out[0] is True and out[1] is True and isinstance(out[2], redis.ResponseError)


def test_stored_procedures_span_shards(duo):
    from makod.client import MakoClient, ProcedureAborted

    names = [f"user{i}" for i in range(20)]
    alice = next(n for n in names if shard_of(f"acct:{n}") == 0)
    bob = next(n for n in names if shard_of(f"acct:{n}") == 1)
    with MakoClient(port=duo.port()) as client:
        assert client.call("bank.open", {"accounts": {alice: 100, bob: 0}}) == 2
        assert client.call("bank.transfer", {"from": alice, "to": bob, "amount": 30}) == [70, 30]
        with pytest.raises(ProcedureAborted, match="insufficient funds"):
            client.call("bank.transfer", {"from": bob, "to": alice, "amount": 31})
        assert client.call("bank.total") == 100


def test_default_cluster_is_two_shards_of_three(tmp_path):
    """`makoctl cluster start` with no options, as the README says."""
    env = {**os.environ, "COLUMNS": "160"}
    cmd = [sys.executable, "-m", "makoctl.cli", "cluster"]
    proc = subprocess.run([*cmd, "start", "--json"], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
    try:
        assert proc.returncode == 0, proc.stderr
        import json

        nodes = json.loads(proc.stdout)["nodes"]
        assert len(nodes) == 6 and sorted({n["shard"] for n in nodes}) == [0, 1]
        assert sorted(n["resp_port"] for n in nodes)[0] == 7379
        assert sum(n["role"] == "leader" for n in nodes) == 2
        assert redis.Redis(port=7379).set("hello", "world")
        assert redis.Redis(port=7384).get("hello") == b"world"
    finally:
        subprocess.run([*cmd, "stop"], cwd=tmp_path, capture_output=True, timeout=60)
        assert (tmp_path / "mako-data" / "cluster.yaml").exists()
