"""Lists, sets, sorted sets, geo, SORT, streams, bitmaps and HyperLogLogs on real makod processes:
atomic across shards, kept through a leader's SIGKILL and a restart from LMDB."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from makod.core.slots import key_slot
from tests.integration.cluster_util import Cluster, wait_for


def _shard_of(key: str, shards: int = 2) -> int:
    return 0 if key_slot(key.encode()) < 16384 // shards else 1


def _key_on(shard: int, prefix: str) -> str:
    i = 0
    while _shard_of(f"{prefix}{i}") != shard:
        i += 1
    return f"{prefix}{i}"


def _no_retry(cluster: Cluster, name: str | None = None) -> redis.Redis:
    # redis-py retries failed commands on its own: a check for lost or duplicated
    # writes must see every failure.
    return cluster.client(name, retry=Retry(NoBackoff(), 0), socket_timeout=10)


def test_every_type_in_one_transaction_across_shards(two_by_three):
    c = two_by_three.client()
    l0, l1 = _key_on(0, "list"), _key_on(1, "list")
    s0, s1 = _key_on(0, "set"), _key_on(1, "set")
    z0, z1 = _key_on(0, "zset"), _key_on(1, "zset")
    b0, h1 = _key_on(0, "bits"), _key_on(1, "hll")
    pipe = c.pipeline(transaction=True)
    pipe.rpush(l0, "a", "b", "c").lpush(l1, "x")
    pipe.sadd(s0, "m1", "m2").sadd(s1, "m2", "m3")
    pipe.zadd(z0, {"p": 1, "q": 2}).zadd(z1, {"q": 5, "r": 7})
    pipe.setbit(b0, 7, 1).pfadd(h1, "u1", "u2", "u3")
    assert pipe.execute() == [3, 1, 2, 2, 2, 2, 0, 1]
    # Multi-key commands whose keys live on two shards are distributed transactions.
    assert c.lmove(l0, l1, "LEFT", "RIGHT") == b"a"
    assert c.lrange(l0, 0, -1) == [b"b", b"c"] and c.lrange(l1, 0, -1) == [b"x", b"a"]
    assert c.sunionstore(s0, [s0, s1]) == 3
    assert c.smembers(s0) == {b"m1", b"m2", b"m3"}
    assert c.smove(s1, s0, "m3") is True and c.smembers(s1) == {b"m2"}
    assert c.zunionstore(z0, [z0, z1]) == 3
    assert c.zrange(z0, 0, -1, withscores=True) == [(b"p", 1.0), (b"q", 7.0), (b"r", 7.0)]
    assert c.pfcount(h1) == 3
    assert c.getbit(b0, 7) == 1
    # Geo: a search on one shard stored on the other.
    g0, g1 = _key_on(0, "geo"), _key_on(1, "geo")
    assert c.geoadd(g0, [13.361389, 38.115556, "Palermo", 15.087269, 37.502669, "Catania"]) == 2
    assert c.geosearchstore(g1, g0, longitude=15, latitude=37, radius=200, unit="km") == 2
    assert c.geodist(g1, "Palermo", "Catania", unit="km") == pytest.approx(166.2742, abs=1e-3)
    # Streams: two XADDs in one MULTI across shards, then one XREADGROUP over both
    # streams (a write on two shards: it moves each group's last delivered ID).
    x0, x1 = _key_on(0, "stream"), _key_on(1, "stream")
    pipe = c.pipeline(transaction=True)
    pipe.xadd(x0, {"f": "a"}, id="1-1").xadd(x1, {"f": "b"}, id="2-1")
    pipe.xgroup_create(x0, "g", id="0").xgroup_create(x1, "g", id="0")
    assert pipe.execute() == [b"1-1", b"2-1", True, True]
    got = c.xreadgroup("g", "alice", {x0: ">", x1: ">"})
    assert sorted(got) == [[x0.encode(), [(b"1-1", {b"f": b"a"})]], [x1.encode(), [(b"2-1", {b"f": b"b"})]]]
    assert c.xreadgroup("g", "bob", {x0: ">", x1: ">"}) == []
    assert c.xpending(x1, "g")["pending"] == 1 and c.xack(x1, "g", "2-1") == 1
    # SORT whose BY and GET patterns name keys on both shards, stored on a third key.
    n0, out1 = _key_on(0, "nums"), _key_on(1, "sorted")
    c.rpush(n0, "1", "2", "3", "4")
    for i, weight in zip("1234", "4132"):
        c.set(f"w_{i}", weight)
        c.set(f"o_{i}", f"obj{i}")
    assert {_shard_of(f"w_{i}") for i in "1234"} == {0, 1}
    assert c.sort(n0, by="w_*", get=["#", "o_*"]) == [b"2", b"obj2", b"4", b"obj4", b"3", b"obj3", b"1", b"obj1"]
    assert c.sort(n0, by="w_*", get="o_*", store=out1) == 4
    assert c.lrange(out1, 0, -1) == [b"obj2", b"obj4", b"obj3", b"obj1"]
    # WATCH on a list: a change by another client voids the EXEC.
    with c.pipeline(transaction=True) as p:
        p.watch(l0, l1)
        other = two_by_three.client()
        other.rpush(l0, "z")
        p.multi()
        p.lpop(l1)
        with pytest.raises(redis.WatchError):
            p.execute()
    assert c.lrange(l1, 0, -1) == [b"x", b"a"]
    # WRONGTYPE inside a cross-shard MULTI answers for that command only.
    pipe = c.pipeline(transaction=True)
    pipe.lpush(s0, "oops").sadd(s1, "ok")
    results = pipe.execute(raise_on_error=False)
    assert isinstance(results[0], redis.ResponseError) and "Operation against a key" in str(results[0])
    assert results[1] == 1


def test_every_type_survives_the_leaders_sigkill_and_a_restart(two_by_three):
    cluster = two_by_three
    c = cluster.client()
    keys = {shard: {t: _key_on(shard, f"{t}-k") for t in ("l", "s", "z", "h", "b", "p", "x", "g", "d")} for shard in (0, 1)}
    db5 = cluster.client(db=5)
    for shard, k in keys.items():
        c.rpush(k["l"], *[f"e{i}" for i in range(50)])
        c.sadd(k["s"], *[f"m{i}" for i in range(40)])
        c.zadd(k["z"], {f"z{i}": i / 4 for i in range(30)})
        c.hset(k["h"], mapping={f"f{i}": i for i in range(20)})
        c.setbit(k["b"], 1000 + shard, 1)
        c.pfadd(k["p"], *[f"u{i}" for i in range(500)])
        c.lpop(k["l"], 5)
        c.srem(k["s"], "m0", "m1")
        c.zincrby(k["z"], 100, "z3")
        for i in range(1, 21):
            c.xadd(k["x"], {"n": i}, id=f"{i}-0")
        c.xgroup_create(k["x"], "g", id="0")
        c.xreadgroup("g", "c1", {k["x"]: ">"}, count=7)
        c.xdel(k["x"], "3-0")
        c.geoadd(k["g"], [13.361389, 38.115556, "Palermo", 15.087269, 37.502669, "Catania"])
        db5.set(k["d"], f"in-db5-{shard}")
        db5.rpush(k["l"], "db5-list")

    def expected(shard: int) -> list:
        k = keys[shard]
        return [
            c.geosearch(k["g"], longitude=15, latitude=37, radius=200, unit="km", withdist=True, sort="ASC"),
            db5.get(k["d"]), db5.lrange(k["l"], 0, -1), c.exists(k["d"]),
            c.lrange(k["l"], 0, -1), c.smembers(k["s"]), c.zrange(k["z"], 0, -1, withscores=True),
            c.hgetall(k["h"]), c.get(k["b"]), c.pfcount(k["p"]),
            c.xrange(k["x"]), c.xpending(k["x"], "g"),
        ]

    before = {shard: expected(shard) for shard in (0, 1)}
    assert [m for m, _d in before[0][0]] == [b"Catania", b"Palermo"]
    assert before[1][1:4] == [b"in-db5-1", [b"db5-list"], 0]
    before_types = before[0][4:]
    assert before_types[0][0] == b"e5" and len(before_types[1]) == 38 and before_types[2][-1] == (b"z3", 100.75)
    assert len(before_types[6]) == 19 and before_types[7]["pending"] == 7
    leader = cluster.leader(0)
    cluster.kill(leader)
    survivor = next(n for n in cluster.names if n != leader)
    c = cluster.client(survivor)
    db5 = cluster.client(survivor, db=5)
    wait_for(lambda: cluster.leader(0) != leader, timeout=30, what="a new leader of shard 0")
    assert {shard: expected(shard) for shard in (0, 1)} == before
    cluster.restart(leader)
    # The restarted replica rebuilt its state from LMDB and the log, and rejoined.
    c = cluster.client(leader)
    db5 = cluster.client(leader, db=5)
    wait_for(lambda: _answers(c), timeout=30, what="the restarted node to answer")
    assert {shard: expected(shard) for shard in (0, 1)} == before


def _answers(c: redis.Redis) -> bool:
    try:
        return c.ping()
    except redis.RedisError:
        return False


def test_a_queue_loses_and_duplicates_nothing_through_sigkill(fresh_single):
    cluster = fresh_single
    pushed: list[bytes] = []
    popped: list[bytes] = []
    stop = threading.Event()

    def producer(worker: int) -> None:
        client = _no_retry(cluster)
        i = 0
        while not stop.is_set():
            value = f"job-{worker}-{i}".encode()
            try:
                client.rpush("queue", value)
            except redis.RedisError:
                return
            pushed.append(value)  # acknowledged
            i += 1

    def consumer() -> None:
        client = _no_retry(cluster)
        while not stop.is_set():
            try:
                got = client.lmove("queue", "done", "LEFT", "RIGHT")
            except redis.RedisError:
                return
            if got is not None:
                popped.append(got)

    threads = [threading.Thread(target=producer, args=(w,)) for w in range(3)]
    threads.append(threading.Thread(target=consumer))
    for t in threads:
        t.start()
    wait_for(lambda: len(pushed) >= 1500 and len(popped) >= 200, timeout=60, what="1500 pushes and 200 moves")
    name = cluster.names[0]
    cluster.kill(name)  # SIGKILL mid-stream
    stop.set()
    for t in threads:
        t.join(timeout=15)
    cluster.restart(name)
    c = cluster.client()
    queue, done = c.lrange("queue", 0, -1), c.lrange("done", 0, -1)
    everything = Counter(queue + done)
    assert not [v for v, n in everything.items() if n > 1], "a value is in the lists twice"
    lost = [v for v in pushed if v not in everything]
    assert not lost, f"{len(lost)} acknowledged pushes lost, e.g. {lost[:3]}"
    assert set(popped) <= set(done), "an acknowledged LMOVE is not in its destination"
    # Each producer's values keep their order (one connection, one after another).
    for w in range(3):
        mine = [v for v in done + queue if v.startswith(b"job-%d-" % w)]
        assert mine == sorted(mine, key=lambda v: int(v.rsplit(b"-", 1)[1]))


def _later(delay_s: float, fn) -> threading.Thread:
    def run() -> None:
        import time

        time.sleep(delay_s)
        fn()

    t = threading.Thread(target=run)
    t.start()
    return t


def test_blocking_pops_wait_for_a_push_time_out_and_can_be_unblocked(two_by_three):
    import time

    cluster = two_by_three
    waiter = cluster.client(cluster.names[1], socket_timeout=30)
    other = cluster.client(cluster.names[4])
    q = _key_on(0, "bq")
    # A push from a client of another node wakes the waiter.
    t = _later(0.4, lambda: other.rpush(q, "job-1"))
    start = time.monotonic()
    assert waiter.blpop([q], timeout=10) == (q.encode(), b"job-1")
    assert 0.3 < time.monotonic() - start < 5
    t.join()
    # Nothing comes: the timeout's null, after the timeout.
    start = time.monotonic()
    assert waiter.brpop([q], timeout=0.3) is None
    assert time.monotonic() - start >= 0.29
    # A cross-shard BLMOVE: blocked on shard 0's list, moving into shard 1's.
    dst = _key_on(1, "bdst")
    t = _later(0.3, lambda: other.lpush(q, "job-2"))
    assert waiter.blmove(q, dst, 10, "LEFT", "RIGHT") == b"job-2"
    t.join()
    assert other.lrange(dst, 0, -1) == [b"job-2"] and other.llen(q) == 0
    # Sorted sets too.
    z = _key_on(1, "bz")
    t = _later(0.3, lambda: other.zadd(z, {"m": 3}))
    assert waiter.bzpopmin([z], timeout=10) == (z.encode(), b"m", 3.0)
    t.join()
    # CLIENT UNBLOCK (on the waiter's node: client ids are per node, as in
    # Redis Cluster) answers a waiter at once: its timeout reply, or an error.
    my_id = waiter.client_id()
    other = cluster.client(cluster.names[1])
    t = _later(0.3, lambda: other.execute_command("CLIENT", "UNBLOCK", my_id))
    assert waiter.blpop([q], timeout=0) is None
    t.join()
    assert other.execute_command("CLIENT", "UNBLOCK", my_id) == 0  # not blocked now
    t = _later(0.3, lambda: other.execute_command("CLIENT", "UNBLOCK", my_id, "ERROR"))
    with pytest.raises(redis.ResponseError, match="UNBLOCKED"):
        waiter.blpop([q], timeout=0)
    t.join()
    # Inside MULTI a blocking pop answers at once.
    pipe = waiter.pipeline(transaction=True)
    pipe.blpop([q], timeout=0)
    assert pipe.execute() == [None]


def test_clients_blocked_on_one_node_are_served_in_the_order_they_blocked(two_by_three):
    """Five BLPOPs on one node, each sent once the one before is parked;
    one RPUSH of five elements from another node: the oldest waiter gets
    the first element, and so on (Redis's first come, first served)."""
    import time

    cluster = two_by_three
    q = _key_on(0, "fifo")
    node = cluster.names[1]
    watcher = cluster.client(node)
    results: dict[int, object] = {}
    threads = []
    for i in range(5):
        c = cluster.client(node, socket_timeout=30, client_name=f"fifo-waiter-{i}")

        def pop(i: int = i, c: redis.Redis = c) -> None:
            results[i] = c.blpop([q], timeout=20)

        t = threading.Thread(target=pop)
        t.start()
        threads.append(t)
        wait_for(
            lambda i=i: any(
                cl.get("name") == f"fifo-waiter-{i}" and cl.get("cmd") == "blpop" for cl in watcher.client_list()
            ),
            timeout=10,
            what=f"waiter {i} blocked",
        )
        time.sleep(0.013)  # different phases for retries that back off per client
    time.sleep(0.1)
    cluster.client(cluster.names[4]).rpush(q, *[f"e{i}" for i in range(5)])
    for t in threads:
        t.join(timeout=25)
    assert results == {i: (q.encode(), f"e{i}".encode()) for i in range(5)}


def test_sort_by_keys_on_other_shards_fetches_them_in_one_round(two_by_three):
    # Keys named by data (SORT's BY/GET) are fetched all at once: fetched one
    # by one, each costing a round and a rerun of the whole sort, 10,000 of
    # them took about a minute of the node's CPU (quadratic).
    c = _no_retry(two_by_three)
    n = 10_000
    nums = _key_on(0, "many")
    c.rpush(nums, *range(n))
    c.mset({f"wt_{i}": n - i for i in range(n)})
    c.mset({f"ob_{i}": f"o{i}" for i in range(n)})
    assert {_shard_of(f"wt_{i}") for i in range(10)} == {0, 1}
    assert c.sort(nums, by="wt_*", start=0, num=3, get=["#", "ob_*"]) == [b"9999", b"o9999", b"9998", b"o9998",
                                                                       b"9997", b"o9997"]
