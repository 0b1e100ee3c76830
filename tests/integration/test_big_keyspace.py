"""A node restarted with more keys than it indexes at once (kv/key_indexes.py:
50,000) makes its SCAN and range indexes a slice per tick: the first SCAN,
RANDOMKEY and procedure range scan after the restart wait for it and then
see every key, while GETs go on being answered."""

from __future__ import annotations

import time

import msgpack
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from makod.kv.key_indexes import KeyIndexes
from tests.integration.cluster_util import set_many, wait_for

KEYS = KeyIndexes.build_at_once_keys + 15_000


def test_first_scan_after_a_restart_waits_for_its_index_and_sees_every_key(fresh_single):
    c = fresh_single.client(retry=Retry(NoBackoff(), 0))
    set_many(c, "big:%06d", KEYS)
    c.execute_command("MAKO", "CALL", "bank.open", msgpack.packb({"accounts": {f"a{i}": i for i in range(5)}}))
    name = fresh_single.names[0]
    fresh_single.kill(name)  # SIGKILL: the restart loads the keys, no index
    fresh_single.restart(name)
    wait_for(lambda: _serving(c), timeout=60, what="the restarted node serving")
    started = time.monotonic()
    seen: set[bytes] = set()
    cursor = None
    while cursor != 0:
        cursor, keys = c.scan(cursor or 0, count=1000)
        seen.update(keys)
    assert len(seen) == c.dbsize() == KEYS + 5
    assert {f"big:{i:06d}".encode() for i in (0, KEYS // 2, KEYS - 1)} <= seen
    assert c.randomkey() in seen
    total = msgpack.unpackb(c.execute_command("MAKO", "CALL", "bank.total", msgpack.packb({})))
    assert total == sum(range(5)), total  # a range scan over the accounts
    took = time.monotonic() - started
    assert took < 30, took
    # No slice stopped the loop for long: makod logs any tick that came 250 ms late.
    assert "event loop stalled" not in _after_start(fresh_single.log(name))


def _serving(c: redis.Redis) -> bool:
    try:
        return c.get("big:000000") == b"0"
    except redis.RedisError:
        return False


def _after_start(log: str) -> str:
    """The log since the restart began serving (loading the keys may stall it first)."""
    return log.rsplit("serving RESP", 1)[-1]
