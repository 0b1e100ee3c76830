"""Lua scripts and functions on real makod processes (2 shards x 3 replicas):
one script is one transaction across shards, through a leader's SIGKILL;
functions are replicated to every shard and survive restarts; a busy script
makes others wait with -BUSY until SCRIPT KILL, which undoes its writes."""

from __future__ import annotations

import random
import subprocess
import threading
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from makod.core.slots import key_slot
from tests.integration.cluster_util import Cluster, wait_for

TRANSFER = """
local src, dst, journal = KEYS[1], KEYS[2], KEYS[3]
local amount = tonumber(ARGV[1])
local balance = tonumber(redis.call('GET', src))
if balance < amount then return 0 end
redis.call('DECRBY', src, amount)
redis.call('INCRBY', dst, amount)
redis.call('APPEND', journal, ARGV[2])
return 1
"""

LIBRARY = """#!lua name=bank
redis.register_function('move', function(keys, args)
  local n = tonumber(args[1])
  redis.call('DECRBY', keys[1], n)
  return redis.call('INCRBY', keys[2], n)
end)
redis.register_function{function_name='total', callback=function(keys)
  local sum = 0
  for _, k in ipairs(keys) do sum = sum + tonumber(redis.call('GET', k) or '0') end
  return sum
end, flags={'no-writes'}}
"""


def _shard_of(key: str) -> int:
    return 0 if key_slot(key.encode()) < 8192 else 1


def _key_on(shard: int, prefix: str) -> str:
    i = 0
    while _shard_of(f"{prefix}{i}") != shard:
        i += 1
    return f"{prefix}{i}"


def _no_retry(cluster: Cluster, name: str | None = None, timeout: float = 10) -> redis.Redis:
    # redis-py retries failed commands on its own: a check for lost or
    # duplicated writes must see every failure.
    return cluster.client(name, retry=Retry(NoBackoff(), 0), socket_timeout=timeout, decode_responses=True)


def _library_names(c: redis.Redis) -> list[str]:
    return [dict(zip(lib[::2], lib[1::2]))["library_name"] for lib in c.function_list()]


def test_a_script_moves_money_across_shards_through_a_leaders_sigkill(two_by_three):
    cluster = two_by_three
    a, b = _key_on(0, "sacct"), _key_on(1, "sacct")
    c = _no_retry(cluster)
    c.mset({a: 1000, b: 1000})
    acked: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def worker(w: int) -> None:
        rng = random.Random(w)
        n = 0
        while not stop.is_set():
            client = _no_retry(cluster, rng.choice(cluster.names), timeout=5)
            src, dst = (a, b) if rng.random() < 0.5 else (b, a)
            tid = f"{w}-{n}"
            n += 1
            try:
                if client.eval(TRANSFER, 3, src, dst, f"sjournal:{{{w}}}", rng.randint(1, 20), f"{tid}:{src}:,") == 1:
                    with lock:
                        acked.append(tid)
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
                time.sleep(0.05)
            finally:
                client.close()

    threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(3)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(acked) >= 20, timeout=60, what="script transfers before the kill")
        leader = cluster.leader(0)
        cluster.kill(leader)
        before = len(acked)
        wait_for(lambda: len(acked) >= before + 20, timeout=60, what=f"script transfers after killing {leader}")
        cluster.restart(leader)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    c = _no_retry(cluster, timeout=30)
    journal: dict[str, str] = {}
    for w in range(3):
        for entry in (c.get(f"sjournal:{{{w}}}") or "").split(","):
            if entry:
                tid, src, _ = entry.split(":")
                assert tid not in journal, f"script transfer {tid} applied twice"
                journal[tid] = src
    missing = [tid for tid in acked if tid not in journal]
    assert not missing, f"acknowledged script transfers lost: {missing[:5]}"
    assert int(c.get(a)) + int(c.get(b)) == 2000


def test_functions_reach_every_shard_and_survive_restarts_and_flushall(two_by_three):
    cluster = two_by_three
    x, y = _key_on(0, "fx"), _key_on(1, "fy")
    first = _no_retry(cluster, cluster.names[0])
    first.function_flush()
    assert first.function_load(LIBRARY) == "bank"
    with pytest.raises(redis.ResponseError, match="Library 'bank' already exists"):
        first.function_load(LIBRARY)
    first.mset({x: 100, y: 5})
    for name in cluster.names:  # every node, of either shard, calls it
        c = _no_retry(cluster, name)
        assert c.fcall("move", 2, x, y, 1) == 5 + cluster.names.index(name) + 1
        assert c.fcall_ro("total", 2, x, y) == 105
    with pytest.raises(redis.ResponseError, match="write flag"):
        first.fcall_ro("move", 2, x, y, 1)
    first.flushall()
    assert _library_names(first) == ["bank"]
    assert first.fcall_ro("total", 2, x, y) == 0
    # A follower of shard 1, SIGKILLed and restarted, still has the library (from its LMDB log).
    follower = next(n for n in cluster.names if n.startswith("s1") and n != cluster.leader(1))
    cluster.kill(follower)
    cluster.restart(follower)
    wait_for(lambda: _no_retry(cluster, follower).ping(), timeout=30, what="the restarted follower")
    assert _library_names(_no_retry(cluster, follower)) == ["bank"]
    dump = first.function_dump()
    first.function_flush()
    assert _library_names(first) == []
    first.function_restore(dump)
    assert first.fcall("move", 2, y, x, 3) == 3  # the keys went with FLUSHALL; the library came back


def test_evalsha_runs_where_the_client_loaded_it_whatever_shard_its_keys_are_on(two_by_three):
    cluster = two_by_three
    name = cluster.names[0]
    c = _no_retry(cluster, name)
    k1, k2 = _key_on(0, "ek"), _key_on(1, "ek")
    sha = c.script_load("redis.call('SET', KEYS[1], ARGV[1]); redis.call('SET', KEYS[2], ARGV[1]); "
                        "return redis.call('MGET', KEYS[1], KEYS[2])")
    assert c.evalsha(sha, 2, k1, k2, "v") == ["v", "v"]
    assert c.script_exists(sha, "0" * 40) == [True, False]
    # The script cache is the node's, as in Redis Cluster.
    other = _no_retry(cluster, cluster.names[-1])
    with pytest.raises(redis.exceptions.NoScriptError):
        other.evalsha(sha, 2, k1, k2, "w")
    out = subprocess.run(["redis-cli", "--no-raw", "-p", str(cluster.port(name)), "EVAL",
                          "return {1, 'two', {3.9, false}, redis.call('GET', KEYS[1])}", "1", k1],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:4] == ["1) (integer) 1", '2) "two"', "3) 1) (integer) 3", "   2) (nil)"]


def test_a_busy_script_gets_others_busy_and_script_kill_undoes_its_writes(two_by_three):
    cluster = two_by_three
    key = _key_on(0, "busy")
    shard0 = [n for n in cluster.names if n.startswith("s0")]
    _no_retry(cluster).delete(key)
    for name in shard0:  # whichever replica leads when the script arrives runs it
        _no_retry(cluster, name).config_set("busy-reply-threshold", 100)
    result: list = []

    def run() -> None:
        c = _no_retry(cluster, shard0[0], timeout=30)
        try:
            result.append(c.eval("redis.call('SET', KEYS[1], 'partial') while true do end", 1, key))
        except redis.ResponseError as exc:
            result.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    busy_node: list[str] = []
    try:
        def busy() -> bool:
            # A new connection to the node running the script is answered by
            # its busy responder; the others forward to it and wait.
            for name in shard0:
                try:
                    _no_retry(cluster, name, timeout=0.3).get("anything")
                except redis.ResponseError as exc:
                    if "busy running a script" in str(exc):
                        busy_node.append(name)
                        return True
                except redis.TimeoutError:
                    pass
            return False

        wait_for(busy, timeout=15, what="-BUSY while the script runs")
        # An operator's new connection gets through (the busy responder accepts it).
        killed = subprocess.run(["redis-cli", "-p", str(cluster.port(busy_node[0])), "SCRIPT", "KILL"],
                                capture_output=True, text=True, timeout=10)
        assert killed.stdout.strip() == "OK", killed
    finally:
        t.join(timeout=20)
        if t.is_alive() and busy_node:  # never leave the shared cluster's node spinning
            cluster.kill(busy_node[0])
            cluster.restart(busy_node[0])
    assert result and isinstance(result[0], redis.ResponseError), result
    assert "Script killed by user" in str(result[0])
    for name in shard0:
        wait_for(lambda: _no_retry(cluster, name).config_set("busy-reply-threshold", 5000), timeout=30,
                 what=f"{name} to serve again")
    assert _no_retry(cluster).get(key) is None  # its write was undone
