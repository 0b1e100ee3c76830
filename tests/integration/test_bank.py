"""Cross-shard bank transfers (WATCH/GET/MULTI/SET/EXEC) while shard leaders
are SIGKILLed and restarted, on 2 shards x 3 replicas of real processes,
under Mako and under Luigi.

Invariants checked:
* every MULTI/EXEC snapshot of all balances sums to the total;
* every acknowledged transfer survives: each transfer appends its id to a
  journal in the same transaction, and at the end the balances are exactly
  the initial ones plus the transfers in the journal, and the journal holds
  every acknowledged transfer.
"""

from __future__ import annotations

import random
import threading
import time

import pytest
import redis

from makod.core.slots import key_slot
from tests.integration.cluster_util import Cluster, wait_for

ACCOUNTS = [f"acct{i}" for i in range(8)]
INITIAL = 1000
RETRYABLE = (redis.ConnectionError, redis.TimeoutError, redis.ResponseError)


@pytest.mark.parametrize("protocol", ["mako", "luigi"])
def test_transfers_survive_leader_kills(tmp_path, protocol):
    shards = {0 if key_slot(a.encode()) < 8192 else 1 for a in ACCOUNTS}
    assert shards == {0, 1}  # the accounts really span both shards
    config = None if protocol == "mako" else {"protocol": protocol}
    cluster = Cluster(tmp_path / "d", shards=2, replicas=3, config=config)
    cluster.start()
    try:
        _run(cluster)
    finally:
        cluster.stop()


def _run(cluster: Cluster) -> None:
    c = cluster.client(decode_responses=True, socket_timeout=20)
    c.mset({a: INITIAL for a in ACCOUNTS})
    total = INITIAL * len(ACCOUNTS)
    acked: list[tuple[str, str, str, int]] = []
    lock = threading.Lock()
    stop = threading.Event()
    bad_snapshots: list = []
    snapshots = [0]

    def transferer(worker: int) -> None:
        rng = random.Random(worker)
        names = cluster.names
        n = 0
        while not stop.is_set():
            client = cluster.client(rng.choice(names), decode_responses=True, socket_timeout=5)
            src, dst = rng.sample(ACCOUNTS, 2)
            amount = rng.randint(1, 50)
            tid = f"{worker}-{n}"
            n += 1
            try:
                with client.pipeline() as pipe:
                    pipe.watch(src, dst)
                    balance = int(pipe.get(src))
                    other = int(pipe.get(dst))
                    if balance < amount:
                        continue
                    pipe.multi()
                    pipe.set(src, balance - amount)
                    pipe.set(dst, other + amount)
                    pipe.append(f"journal:{worker}", f"{tid}:{src}:{dst}:{amount},")
                    pipe.execute()
                with lock:
                    acked.append((tid, src, dst, amount))
            except redis.WatchError:
                pass
            except RETRYABLE:
                time.sleep(0.05)
            finally:
                client.close()

    def auditor() -> None:
        while not stop.is_set():
            client = cluster.client(random.choice(cluster.names), decode_responses=True, socket_timeout=5)
            try:
                with client.pipeline() as pipe:
                    for a in ACCOUNTS:
                        pipe.get(a)
                    values = pipe.execute()
                s = sum(int(v) for v in values)
                snapshots[0] += 1
                if s != total:
                    bad_snapshots.append(values)
            except RETRYABLE:
                time.sleep(0.05)
            finally:
                client.close()

    threads = [threading.Thread(target=transferer, args=(w,), daemon=True) for w in range(4)]
    threads.append(threading.Thread(target=auditor, daemon=True))
    for t in threads:
        t.start()
    wait_for(lambda: len(acked) >= 40, timeout=90, what="transfers before the first kill")
    for shard in (0, 1):
        leader = cluster.leader(shard)
        cluster.kill(leader)
        before = len(acked)
        wait_for(lambda: len(acked) >= before + 20, timeout=90, what=f"transfers after killing {leader}")
        cluster.restart(leader)
    wait_for(lambda: len(acked) >= 150, timeout=120, what="150 acknowledged transfers")
    stop.set()
    for t in threads:
        t.join(timeout=30)

    assert snapshots[0] > 10, "the auditor never got a snapshot"
    assert not bad_snapshots, f"{len(bad_snapshots)} snapshots did not sum to {total}: {bad_snapshots[:2]}"
    c = cluster.client(decode_responses=True, socket_timeout=30)
    journal: dict[str, tuple[str, str, int]] = {}
    for worker in range(4):
        for entry in (c.get(f"journal:{worker}") or "").split(","):
            if entry:
                tid, src, dst, amount = entry.split(":")
                assert tid not in journal, f"transfer {tid} applied twice"
                journal[tid] = (src, dst, int(amount))
    missing = [tid for tid, *_ in acked if tid not in journal]
    assert not missing, f"acknowledged transfers lost: {missing[:5]}"
    expected = {a: INITIAL for a in ACCOUNTS}
    for src, dst, amount in journal.values():
        expected[src] -= amount
        expected[dst] += amount
    assert dict(zip(ACCOUNTS, map(int, c.mget(ACCOUNTS)))) == expected
