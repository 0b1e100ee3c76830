"""protocol: luigi on real processes: 2 shards x 3 replicas on loopback.

Cross-shard MULTI/EXEC under contention (abort-free: every transaction
commits, and the counters add up exactly), WATCH checked at the agreed
timestamp, stored procedures with and without footprints, and what the
leaders report (INFO's luigi fields).
"""

from __future__ import annotations

import threading

import msgpack
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from makod.core.slots import key_slot
from tests.integration.cluster_util import Cluster, wait_for


def _keys_on_both_shards(prefix: str, n: int) -> list[str]:
    """n keys per shard (slots below 8192 are shard 0's on 2 shards)."""
    out: dict[int, list[str]] = {0: [], 1: []}
    i = 0
    while min(len(v) for v in out.values()) < n:
        key = f"{prefix}{i}"
        shard = 0 if key_slot(key.encode()) < 8192 else 1
        if len(out[shard]) < n:
            out[shard].append(key)
        i += 1
    return out[0] + out[1]


# A procedure that declares one footprint and touches a key outside it.
SNEAKY = """
from makod.core.procedures import procedure


@procedure("luigi.sneaky", footprint=lambda a: list(a["declared"]))
def sneaky(tx, a):
    for key in a["declared"]:
        tx.put(key, 1)
    tx.put(a["other"], 1)
    return 0


@procedure("luigi.writes_a_read", footprint=lambda a: {"reads": list(a["keys"]), "writes": []})
def writes_a_read(tx, a):
    for key in a["keys"]:
        tx.put(key, 1)
    return 0
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("luigi") / "d"
    data_dir.mkdir()
    (data_dir / "luigiprocs.py").write_text(SNEAKY)  # beside the cluster.yaml makod reads
    c = Cluster(data_dir, shards=2, replicas=3, config={"protocol": "luigi", "procedure_modules": ["luigiprocs"]})
    c.start()
    try:
        # Leaders move to their preferred replicas (dc0) soon after a start:
        # wait, so the tests below do not race a handover.
        for shard in (0, 1):
            wait_for(lambda: c.leader(shard) == f"s{shard}r0", timeout=30, what=f"shard {shard}'s preferred leader")
        yield c
    finally:
        c.stop()


def _client(cluster: Cluster, name: str | None = None) -> redis.Redis:
    # No silent retries: a lost or duplicated increment must show.
    return cluster.client(name, retry=Retry(NoBackoff(), 0), socket_timeout=20)


def test_contended_cross_shard_increments_all_commit(cluster: Cluster) -> None:
    keys = _keys_on_both_shards("ctr", 2)
    workers, per_worker = 6, 25
    errors: list = []

    def work(w: int) -> None:
        c = _client(cluster, cluster.names[w % len(cluster.names)])
        try:
            for _ in range(per_worker):
                p = c.pipeline(transaction=True)
                for key in keys:
                    p.incr(key)
                try:
                    p.execute()
                except redis.RedisError as exc:
                    errors.append(str(exc))
        finally:
            c.close()

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []  # no conflict aborts under Luigi: every transaction committed
    c = _client(cluster)
    assert [int(v) for v in c.mget(keys)] == [workers * per_worker] * len(keys)
    info = c.info("luigi")
    assert info["luigi_txns"] > 0
    assert {"luigi_bumped", "luigi_repositioned"} <= set(info)


def test_watch_is_checked_at_the_agreed_timestamp(cluster: Cluster) -> None:
    a, b = _keys_on_both_shards("w", 1)
    c = _client(cluster)
    other = _client(cluster, cluster.names[-1])
    c.mset({a: "1", b: "1"})
    with c.pipeline() as p:
        p.watch(a, b)
        p.multi()
        p.set(a, "2")
        p.set(b, "2")
        assert p.execute() == [True, True]
    with c.pipeline() as p:
        p.watch(a, b)
        other.set(b, "changed")
        p.multi()
        p.set(a, "3")
        p.set(b, "3")
        with pytest.raises(redis.WatchError):
            p.execute()
    assert c.mget(a, b) == [b"2", b"changed"]


def test_procedures_need_footprints(cluster: Cluster) -> None:
    c = _client(cluster)
    keys = [k.encode() for k in _keys_on_both_shards("m", 2)]

    def call(name: str, args: dict):
        return msgpack.unpackb(c.execute_command("MAKO", "CALL", name, msgpack.packb(args)))

    # Cross-shard (keys on both shards) and single-shard, with footprints.
    for _ in range(2):
        assert call("micro.txn", {"r": keys[:1], "w": keys[1:]}) == 0  # keys[0] is never written
    assert call("micro.txn", {"r": keys[1:], "w": []}) == 2 * 3
    assert call("micro.txn", {"r": keys[1:2], "w": []}) == 2
    with pytest.raises(redis.ResponseError, match="protocol luigi needs a transaction's keys before it runs: "
                                                   "procedure 'bank.transfer' declares no footprint"):
        c.execute_command("MAKO", "CALL", "bank.transfer", msgpack.packb({"from": "a", "to": "b", "amount": 1}))


def test_a_key_outside_the_footprint_is_refused_and_nothing_is_written(cluster: Cluster) -> None:
    c = _client(cluster)
    a, b = _keys_on_both_shards("fp", 1)
    cases = [
        ({"declared": [b"{t}a"], "other": b"{t}b"}, "{t}b"),  # one shard: run at its leader
        ({"declared": [a.encode(), b.encode()], "other": b"{t}c"}, "{t}c"),  # two shards: coordinated
    ]
    for args, outside in cases:
        with pytest.raises(redis.ResponseError, match=r"touched a key outside its declared footprint \(" + outside):
            c.execute_command("MAKO", "CALL", "luigi.sneaky", msgpack.packb(args))
        assert c.exists(*args["declared"], args["other"]) == 0
    # Declared read, then written: refused too (it ran beside other readers).
    for keys in ([b"{t}r"], [a.encode(), b.encode()]):
        with pytest.raises(redis.ResponseError, match="outside its declared footprint"):
            c.execute_command("MAKO", "CALL", "luigi.writes_a_read", msgpack.packb({"keys": keys}))
        assert c.exists(*keys) == 0


def test_sort_by_pattern_is_refused_with_a_clear_error(cluster: Cluster) -> None:
    c = _client(cluster)
    c.rpush("{s}list", 3, 1, 2)
    assert c.sort("{s}list") == [b"1", b"2", b"3"]
    with pytest.raises(redis.ResponseError, match="SORT may touch keys it does not name"):
        c.sort("{s}list", by="w_*")


def test_a_script_is_ordered_by_its_keys_and_may_touch_no_other(cluster: Cluster) -> None:
    """Under Luigi a script's footprint is its KEYS (what Redis asks scripts
    to declare); a key it did not declare is refused, and nothing is written."""
    c = _client(cluster)
    a, b = _keys_on_both_shards("sc", 1)
    move = ("redis.call('SET', KEYS[1], ARGV[1]); redis.call('SET', KEYS[2], ARGV[1]); "
            "return redis.call('MGET', KEYS[1], KEYS[2])")
    assert c.eval(move, 2, a, b, "v") == [b"v", b"v"]
    assert c.eval_ro("return redis.call('GET', KEYS[1])", 1, b) == b"v"
    for keys in ([a], [a, b]):
        with pytest.raises(redis.ResponseError, match="outside its declared footprint"):
            c.eval("redis.call('SET', KEYS[1], 'w'); return redis.call('SET', 'undeclared', 'w')", len(keys), *keys)
        assert c.get(a) == b"v" and c.exists("undeclared") == 0
