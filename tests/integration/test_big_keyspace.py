"""A node restarted with more keys than it indexes at once (kv/key_indexes.py:
50,000) makes its SCAN and range indexes a slice per tick: the first SCAN,
RANDOMKEY and procedure range scan after the restart wait for it and then
see every key, while GETs go on being answered."""

from __future__ import annotations

import time
import urllib.request

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


def _serving(c: redis.Redis, key: str = "big:000000") -> bool:
    try:
        return c.get(key) == b"0"
    except redis.RedisError:
        return False


def _after_start(log: str) -> str:
    """The log since the restart began serving (loading the keys may stall it first)."""
    return log.rsplit("serving RESP", 1)[-1]


def _tag_on_shard(shard: int, shards: int) -> str:
    """A hash tag whose keys live on ``shard`` (slots split evenly, in order)."""
    from makod.kv.hashslot import NUM_SLOTS, key_slot

    per = NUM_SLOTS // shards
    return next(f"t{i}" for i in range(10_000) if key_slot(f"{{t{i}}}".encode()) // per == shard)


def test_cross_shard_range_read_after_a_restart_waits_instead_of_stalling_the_participant(make_cluster):
    """Shard 0 holds many keys; after its restart, a range scan coordinated by
    shard 1 reaches it as a participant's range read. Shard 0 refuses it while
    its index is made a slice per tick (the coordinator retries, then answers
    TRYAGAIN) instead of making the index at once and stopping its loop."""
    cluster = make_cluster(shards=2, replicas=1)
    s0, s1 = cluster.leader(0), cluster.leader(1)
    c0 = cluster.client(s0, retry=Retry(NoBackoff(), 0))
    c1 = cluster.client(s1, retry=Retry(NoBackoff(), 0))
    tag = _tag_on_shard(0, 2)
    count = 3 * KEYS  # about 0.8 s to index at once on this machine: a stall the log shows
    set_many(c0, "{" + tag + "}big:%06d", count)
    # Accounts on both shards: bank.total scans the range "acct:" on each.
    c1.execute_command("MAKO", "CALL", "bank.open", msgpack.packb({"accounts": {f"a{i}": i for i in range(40)}}))
    cluster.kill(s0)
    cluster.restart(s0)
    wait_for(lambda: _serving(c0, "{" + tag + "}big:000000"), timeout=60, what="the restarted node serving")
    answers: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            total = msgpack.unpackb(c1.execute_command("MAKO", "CALL", "bank.total", msgpack.packb({})))
        except redis.ResponseError as exc:
            answers.append(str(exc))
            assert str(exc).startswith("TRYAGAIN"), exc
            continue
        assert total == sum(range(40)), total
        break
    else:
        raise AssertionError(f"no total within 60 s: {answers[-3:]}")
    assert c0.dbsize() == count + _accounts_on(c0)
    assert "event loop stalled" not in _after_start(cluster.log(s0))
    # The first read found no index and was refused (the refusal starts its
    # making): the coordinator counts that abort by its cause.
    assert _indexing_aborts(cluster.ports[s1] + 30000) >= 1


def _indexing_aborts(metrics_port: int) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return sum(sample.value for family in text_string_to_metric_families(text) if family.name == "makod_txn_dist_aborts"
               for sample in family.samples if sample.labels.get("cause") == "indexing")


def _accounts_on(c: redis.Redis) -> int:
    return sum(1 for _ in c.scan_iter(match="acct:*", count=1000))
