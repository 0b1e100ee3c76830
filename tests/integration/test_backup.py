"""makoctl cluster backup / restore: a backup taken while transfers run
across shards restores to a cluster whose accounts still sum to the total
(no transaction half in it), with every data type, expiries and numbered
databases."""

from __future__ import annotations

import json
import random
import threading
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from makod.core.slots import key_slot
from tests.integration.cluster_util import Cluster, free_port_block, makoctl

ACCOUNTS = [f"acct:{i}" for i in range(24)]
INITIAL = 1000


def test_backup_under_load_restores_a_consistent_cluster(tmp_path):
    assert len({key_slot(a.encode()) < 8192 for a in ACCOUNTS}) == 2, "accounts on both shards"
    src = Cluster(str(tmp_path / "src"), shards=2, replicas=1)
    src.start()
    restored = Cluster(str(tmp_path / "dst"))
    try:
        c = src.client()
        c.mset({a: INITIAL for a in ACCOUNTS})
        # Filler, so the dump takes a while: without the cut's pause, transfers
        # would land between the reads of two accounts (this test then fails).
        for i in range(0, 3000, 500):
            c.mset({f"fill:{j}": j for j in range(i, i + 500)})
        c.rpush("queue", *[f"job{i}" for i in range(50)])
        c.hset("user:1", mapping={"name": "ada", "visits": 3})
        c.zadd("board", {"a": 1.5, "b": 2.25})
        c.xadd("events", {"k": "v"}, id="5-1")
        c.set("session", "s", ex=3600)
        c.set("gone-soon", "x", px=1)
        redis.Redis(port=src.port(), db=3).set("in-db3", "yes")
        stop = threading.Event()
        transfers = [0]

        def transfer(seed: int) -> None:
            rng = random.Random(seed)
            client = src.client(retry=Retry(NoBackoff(), 0), socket_timeout=20)
            while not stop.is_set():
                a, b = rng.sample(ACCOUNTS, 2)
                try:
                    with client.pipeline() as p:
                        p.watch(a, b)
                        x, y = int(p.get(a)), int(p.get(b))
                        p.multi()
                        p.set(a, x - 7)
                        p.set(b, y + 7)
                        p.execute()
                        transfers[0] += 1
                except (redis.WatchError, redis.ResponseError):
                    pass

        workers = [threading.Thread(target=transfer, args=(i,)) for i in range(4)]
        for w in workers:
            w.start()
        time.sleep(0.5)
        proc = makoctl("cluster", "backup", str(tmp_path / "bk"), "--data-dir", src.data_dir, "--json")
        during = transfers[0]
        time.sleep(0.3)
        stop.set()
        for w in workers:
            w.join(30)
        assert transfers[0] > during > 0, "transfers ran before, during and after the backup"
        manifest = json.loads(proc.stdout)
        assert manifest["keys"]["0"] == len(ACCOUNTS) + 3000 + 5 and manifest["keys"]["3"] == 1
        assert {c["shard"] for c in manifest["cut"]} == {0, 1}
        # A second backup into the same directory is refused.
        again = makoctl("cluster", "backup", str(tmp_path / "bk"), "--data-dir", src.data_dir, check=False)
        assert again.returncode == 1 and "already holds a backup" in again.stderr
        assert c.set("after", "backup"), "writes resumed"

        base = free_port_block(2)
        makoctl("cluster", "restore", str(tmp_path / "bk"), "--data-dir", restored.data_dir, "--base-port", str(base))
        r = redis.Redis(port=base, decode_responses=True)
        balances = [int(v) for v in r.mget(ACCOUNTS)]
        assert sum(balances) == INITIAL * len(ACCOUNTS), balances
        assert r.lrange("queue", 0, -1) == [f"job{i}" for i in range(50)]
        assert r.hgetall("user:1") == {"name": "ada", "visits": "3"}
        assert r.zrange("board", 0, -1, withscores=True) == [("a", 1.5), ("b", 2.25)]
        assert r.xrange("events") == [("5-1", {"k": "v"})]
        assert 3000 < r.ttl("session") <= 3600
        assert r.exists("gone-soon", "after") == 0
        assert redis.Redis(port=base, db=3).get("in-db3") == b"yes"
        # Restoring into a data dir that holds a cluster is refused.
        proc = makoctl("cluster", "restore", str(tmp_path / "bk"), "--data-dir", restored.data_dir, check=False)
        assert proc.returncode == 2 and "already holds a cluster" in proc.stderr
    finally:
        restored.stop()
        src.stop()


def test_collections_bigger_than_one_transaction_restore_in_parts(tmp_path):
    # With max_txn_bytes 64 KiB, collections grown by small writes reach
    # ~300 KB: one RESTORE of them would be refused, so restore sends parts.
    limit = 64 * 1024
    src = Cluster(str(tmp_path / "src"), config={"max_txn_bytes": limit})
    src.start()
    restored = Cluster(str(tmp_path / "dst"))
    try:
        c = src.client(decode_responses=True)
        fields = {f"f{i}": "v" * 1000 + str(i) for i in range(300)}
        members = [f"m{i:05d}-" + "x" * 100 for i in range(3000)]
        names = list(fields)
        for i in range(0, 300, 20):
            c.hset("big:hash", mapping={k: fields[k] for k in names[i:i + 20]})
        for i in range(0, 3000, 200):
            c.sadd("big:set", *members[i:i + 200])
            c.zadd("big:zset", {m: j + 0.5 for j, m in enumerate(members[i:i + 200], start=i)})
            c.rpush("big:list", *members[i:i + 200])
        c.pexpire("big:list", 3_600_000)
        c.set("small", "s")
        assert len(c.dump("big:hash") or b"") > limit  # too big for one RESTORE here
        makoctl("cluster", "backup", str(tmp_path / "bk"), "--data-dir", src.data_dir)
        base = free_port_block(1)
        proc = makoctl("cluster", "restore", str(tmp_path / "bk"), "--data-dir", restored.data_dir,
                       "--base-port", str(base))
        assert "restored 5 key(s)" in proc.stdout
        r = redis.Redis(port=base, decode_responses=True)
        assert r.config_get("max-txn-bytes") == {"max-txn-bytes": str(limit)}
        assert r.hgetall("big:hash") == fields
        assert r.smembers("big:set") == set(members)
        assert r.zrange("big:zset", 0, -1, withscores=True) == [(m, j + 0.5) for j, m in enumerate(members)]
        assert r.lrange("big:list", 0, -1) == members
        assert 3000 < r.ttl("big:list") <= 3600 and r.ttl("big:hash") == -1
        assert r.get("small") == "s"
    finally:
        restored.stop()
        src.stop()
