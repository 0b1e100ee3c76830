"""A bank workload for tests that change a running cluster (reshard, add a
shard, change replicas): MULTI/EXEC transfers between accounts, each
journaled in the same transaction, and INCR/GET counters, from threads
with redis-py's retries off (a retried EXEC could apply a transfer twice
unseen). The checks: no acknowledged transfer lost or applied twice,
balances equal to the journal's replay, no counter read going back."""

from __future__ import annotations

import random
import threading
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.integration.cluster_util import wait_for


def client(port: int) -> redis.Redis:
    return redis.Redis(port=port, socket_timeout=10, retry=Retry(NoBackoff(), 0))


def replay_journal(c: redis.Redis, workers: int, acked: list[str], accounts: list[str],
                   initial: int) -> dict[str, int]:
    """The balances the journal says, after checking that every acknowledged
    transfer is in it exactly once. ``c`` decodes responses."""
    journal: dict[str, tuple[str, str]] = {}
    for worker in range(workers):
        for entry in c.lrange(f"journal:{worker}", 0, -1):
            tid, src, dst = entry.split(":")
            assert tid not in journal, f"transfer {tid} applied twice"
            journal[tid] = (src, dst)
    assert not [tid for tid in acked if tid not in journal], "acknowledged transfers lost"
    expected = {a: initial for a in accounts}
    for src, dst in journal.values():
        expected[src] -= 1
        expected[dst] += 1
    return expected


class BankLoad:
    def __init__(self, ports: list[int], accounts: list[str], counters: list[str], workers: int = 3,
                 initial: int = 100) -> None:
        self.ports = ports  # the test may add ports while it runs
        self.accounts, self.counters, self.workers, self.initial = accounts, counters, workers, initial
        self.acked: list[str] = []
        self.counted = {k: 0 for k in counters}  # the highest INCR result acknowledged
        self.stale: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._transfer, args=(w,), daemon=True) for w in range(workers)]
        if counters:
            self._threads.append(threading.Thread(target=self._count, daemon=True))

    def start(self) -> "BankLoad":
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)

    def wait_more(self, n: int, what: str, timeout: float = 60) -> None:
        before = len(self.acked)
        wait_for(lambda: len(self.acked) >= before + n, timeout=timeout, what=what)

    def _transfer(self, worker: int) -> None:
        rng = random.Random(worker)
        conn = None
        n = 0
        while not self._stop.is_set():
            if conn is None:
                conn = client(rng.choice(self.ports))
            src, dst = rng.sample(self.accounts, 2)
            tid = f"{worker}-{n}"
            n += 1  # outcome unknown on error: never reused, never counted
            try:
                pipe = conn.pipeline(transaction=True)
                pipe.decrby(src, 1).incrby(dst, 1).rpush(f"journal:{worker}", f"{tid}:{src}:{dst}")
                pipe.execute()
                self.acked.append(tid)
            except redis.RedisError:
                conn.close()
                conn = None
                time.sleep(0.05)

    def _count(self) -> None:
        rng = random.Random(99)
        conn = None
        while not self._stop.is_set():
            if conn is None:
                conn = client(rng.choice(self.ports))
            key = rng.choice(self.counters)
            try:
                if rng.random() < 0.5:
                    self.counted[key] = max(self.counted[key], conn.incr(key))
                else:
                    floor = self.counted[key]
                    value = int(conn.get(key) or 0)
                    if value < floor:
                        self.stale.append(f"{key} read {value} after {floor} was acknowledged")
            except redis.RedisError:
                conn.close()
                conn = None
                time.sleep(0.05)

    def check(self, c: redis.Redis) -> dict[str, int]:
        """Every check on what ``c`` (decoding responses) reads; the balances."""
        assert not self.stale, self.stale[:5]
        expected = replay_journal(c, self.workers, self.acked, self.accounts, self.initial)
        assert dict(zip(self.accounts, map(int, c.mget(self.accounts)))) == expected
        for key, floor in self.counted.items():
            assert int(c.get(key) or 0) >= floor
        return expected
