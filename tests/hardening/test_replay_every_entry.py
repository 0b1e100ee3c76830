"""Replaying the log after a crash, with every kind of write in it: all replicas of
a 1x3 shard are SIGKILLed and restarted, once replaying only from the log (no
checkpoint since the writes) and once from frequent checkpoints; what they
serve afterwards is exactly what was acknowledged."""

from __future__ import annotations

import pytest
import redis

from tests.integration.cluster_util import wait_for


def _every_kind_of_write(c: redis.Redis) -> None:
    c.set("s", "v")
    c.setnx("nx", "1")
    c.setex("ex", 3600, "e")
    c.psetex("pex", 3_600_000, "p")
    c.getset("gs", "new")
    c.set("gd", "x")
    c.getdel("gd")
    c.set("gx", "y")
    c.getex("gx", ex=7200)
    c.mset({"m1": "1", "m2": "2"})
    c.msetnx({"mnx1": "a", "mnx2": "b"})
    c.append("ap", "abc")
    c.append("ap", "def")
    c.setrange("sr", 5, "xyz")
    c.incr("i")
    c.decr("d")
    c.incrby("ib", 40)
    c.decrby("db", 2)
    c.incrbyfloat("f", 1.5)
    c.hset("h", mapping={"a": "1", "b": "2", "c": "3"})
    c.hmset("hm", {"x": "1"})
    c.hsetnx("h", "d", "4")
    c.hdel("h", "b")
    c.hincrby("h", "a", 10)
    c.hincrbyfloat("h", "c", 0.5)
    c.set("del-me", "x")
    c.delete("del-me")
    c.set("unlink-me", "x")
    c.unlink("unlink-me")
    c.set("ren", "r")
    c.rename("ren", "renamed")
    c.set("rnx", "r")
    c.renamenx("rnx", "rnx2")
    c.set("exp", "x")
    c.expire("exp", 3600)
    c.pexpire("pexp", 10)  # no such key: nothing
    c.set("expat", "x")
    c.expireat("expat", 4_000_000_000)
    c.set("pexpat", "x")
    c.pexpireat("pexpat", 4_000_000_000_000)
    c.set("pers", "x", ex=100)
    c.persist("pers")
    c.set("gone-soon", "x", px=1)
    with c.pipeline(transaction=True) as p:
        p.set("tx1", "a").hset("txh", "f", "v").incr("txi").delete("s2")
        p.execute()
    c.set("before-flush", "x")
    c.flushdb()
    # Everything again after the FLUSHDB, so the replay crosses it.
    c.set("after-flush", "1")
    c.hset("h2", "k", "v")


def _digest(c: redis.Redis) -> dict:
    out = {}
    for key in sorted(c.keys("*")):
        kind = c.type(key)
        value = c.hgetall(key) if kind == b"hash" else c.get(key)
        ttl = c.ttl(key)
        out[key] = (kind, value, "ttl" if ttl > 0 else ttl)
    return out


@pytest.mark.parametrize("checkpoint_ms", [3_600_000, 50], ids=["log-only", "checkpoints"])
def test_every_kind_of_entry_replays_after_all_replicas_crash(make_cluster, checkpoint_ms):
    cluster = make_cluster(replicas=3, config={"checkpoint_interval_ms": checkpoint_ms})
    c = cluster.client(cluster.leader())
    _every_kind_of_write(c)
    c.set("late", "1")
    c.hset("late-h", mapping={"a": "1"})
    c.incrbyfloat("late-f", 2.25)
    before = _digest(c)
    assert before[b"after-flush"][1] == b"1" and b"s" not in before
    wait_for(lambda: all(_digest(cluster.client(n)) == before for n in cluster.names), timeout=20,
             what="every replica applied everything")
    for name in cluster.names:
        cluster.kill(name)
    for name in cluster.names:
        cluster.restart(name)
    c = cluster.client(cluster.leader(timeout=30))
    assert _digest(c) == before
    for name in cluster.names:
        assert "Traceback" not in cluster.log(name)
        info = cluster.client(name).info("persistence")
        assert info["apply_errors"] == 0
