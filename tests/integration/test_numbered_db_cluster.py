"""Numbered databases (SELECT n) on a real 2-shard cluster: keys of one name
stay apart in every database, transactions span shards inside a database,
SWAPDB is atomic across shards, and a database survives SIGKILL + restart."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from makod.core.slots import key_slot
from tests.integration.cluster_util import Cluster, wait_for


def _shard_of(key: str) -> int:
    return 0 if key_slot(key.encode()) < 16384 // 2 else 1


def _key_on(shard: int, prefix: str) -> str:
    i = 0
    while _shard_of(f"{prefix}{i}") != shard:
        i += 1
    return f"{prefix}{i}"


@pytest.fixture(scope="module")
def two_shards(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("dbs") / "data", shards=2, replicas=1, config={"databases": 8})
    c.start()
    yield c
    c.stop()


def _db(cluster: Cluster, db: int, name: str | None = None) -> redis.Redis:
    return cluster.client(name, db=db)


def test_same_names_stay_apart_in_every_database(two_shards):
    keys = [_key_on(0, "k"), _key_on(1, "k")]
    for db in (0, 1, 2):
        c = _db(two_shards, db)
        for key in keys:
            c.set(key, f"{key}@{db}")
    for db in (0, 1, 2):
        c = _db(two_shards, db)
        assert [c.get(key) for key in keys] == [f"{key}@{db}".encode() for key in keys]
        assert sorted(c.keys("*")) == sorted(k.encode() for k in keys)
        assert c.dbsize() == 2
        found = set()
        cursor = None
        while cursor != 0:
            cursor, batch = c.scan(cursor or 0, count=100)
            found.update(batch)
        assert found == {k.encode() for k in keys}
    # MOVE is single-shard (a name lives on one shard in every database).
    c0 = _db(two_shards, 0)
    assert c0.move(keys[1], 3) is True and c0.get(keys[1]) is None
    assert _db(two_shards, 3).get(keys[1]) == f"{keys[1]}@0".encode()
    # INFO keyspace: each node reports its own shard's keys, a line per database.
    totals: dict = {}
    for name in two_shards.names:
        for db, line in two_shards.client(name).info("keyspace").items():
            totals[db] = totals.get(db, 0) + line["keys"]
    assert totals == {"db0": 1, "db1": 2, "db2": 2, "db3": 1}
    assert c0.config_get("databases") == {"databases": "8"}
    with pytest.raises(redis.ResponseError, match="DB index is out of range"):
        c0.execute_command("SELECT", 8)
    _db(two_shards, 1).flushdb()
    assert _db(two_shards, 1).dbsize() == 0 and _db(two_shards, 2).dbsize() == 2
    c0.flushall()
    assert all(_db(two_shards, db).dbsize() == 0 for db in (0, 1, 2, 3))


def test_multi_exec_across_shards_in_db3(two_shards):
    a, b = _key_on(0, "acct"), _key_on(1, "acct")
    c = _db(two_shards, 3)
    pipe = c.pipeline(transaction=True)
    pipe.set(a, 10).set(b, 20).incrby(a, 5).get(b)
    assert pipe.execute() == [True, True, 15, b"20"]
    assert _db(two_shards, 0).get(a) is None
    # WATCH in db 3 sees a change made in db 3 only.
    with c.pipeline(transaction=True) as p:
        p.watch(a, b)
        _db(two_shards, 0).set(a, "other db")
        p.multi()
        p.incr(b)
        assert p.execute() == [21]
    with c.pipeline(transaction=True) as p:
        p.watch(a, b)
        _db(two_shards, 3).set(a, "same db")
        p.multi()
        p.incr(b)
        with pytest.raises(redis.WatchError):
            p.execute()


def test_swapdb_is_atomic_across_shards(two_shards):
    a, b = _key_on(0, "sw"), _key_on(1, "sw")
    c4, c5 = _db(two_shards, 4), _db(two_shards, 5)
    c4.mset({a: "four", b: "four"})
    c5.mset({a: "five", b: "five"})
    stop = threading.Event()
    seen: list = []

    def reader():
        r = _db(two_shards, 4)
        while not stop.is_set():
            pipe = r.pipeline(transaction=True)
            pipe.get(a).get(b)
            seen.append(tuple(pipe.execute()))

    t = threading.Thread(target=reader)
    t.start()
    try:
        for _ in range(6):
            assert c4.swapdb(4, 5) is True
    finally:
        stop.set()
        t.join()
    assert seen and all(x == y for x, y in seen), [p for p in seen if p[0] != p[1]][:3]
    assert {x for x, _ in seen} <= {b"four", b"five"}
    assert c4.get(a) == b"four" and c5.get(b) == b"five"  # an even number of swaps
    with c4.pipeline(transaction=True) as p:
        p.watch(a)
        c4.swapdb(4, 5)
        p.multi()
        p.get(a)
        with pytest.raises(redis.WatchError):
            p.execute()


def test_db2_survives_sigkill_and_restart_and_long_keys_in_db5(two_shards):
    long_key = "L" * 600
    c2, c5 = _db(two_shards, 2), _db(two_shards, 5)
    keys = [_key_on(0, "d"), _key_on(1, "d")]
    for key in keys:
        c2.set(key, "kept")
    c5.set(long_key, "long")
    assert c5.get(long_key) == b"long" and _db(two_shards, 0).get(long_key) is None
    victim = two_shards.names[0]
    other = two_shards.names[1]
    two_shards.kill(victim)
    two_shards.restart(victim)
    wait_for(lambda: _db(two_shards, 2, other).get(keys[0]) == b"kept", timeout=30,
             what="the restarted shard to serve db 2")
    c2 = _db(two_shards, 2)
    wait_for(lambda: c2.ping(), timeout=30, what="the restarted node to answer")
    assert [c2.get(k) for k in keys] == [b"kept", b"kept"]
    assert _db(two_shards, 5).get(long_key) == b"long"
    assert _db(two_shards, 0).get(keys[0]) is None


def test_swapdb_of_thousands_of_keys_takes_a_few_rounds(two_shards):
    # Each destination key lies in a range read whole: no round (and rerun) per key.
    c6 = _db(two_shards, 6)
    c6.mset({f"bulk{i}": i for i in range(3000)})  # one transaction across the shards
    started = time.monotonic()
    assert c6.swapdb(6, 7) is True
    assert time.monotonic() - started < 5
    assert c6.dbsize() == 0 and _db(two_shards, 7).dbsize() == 3000
    assert _db(two_shards, 7).get("bulk2999") == b"2999"
