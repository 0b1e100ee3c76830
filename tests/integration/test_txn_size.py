"""max_txn_bytes on a real 2x3 cluster: what one transaction writes, reads
from another shard, or sends between nodes is bounded, and past the bound the
client gets a clear error and nothing is written.

Before the bound, a 64 MB SET deposed its leader (the client got CLUSTERDOWN
"outcome unknown" for a write that then showed up) and SETBIT at offset 2^32-1
made a 512 MB slot that peers refused as a frame, so it never replicated.
"""

from __future__ import annotations

import threading

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from makod.config import ConfigError, default_config_dict, parse_config

LIMIT = 1 << 20
KB = 1024
# Slots of the 2-shard layout: shard 0 holds 0..8191, shard 1 8192..16383.
S0 = [b"b", b"c", b"{b}2", b"{b}3"]  # CLUSTER KEYSLOT: 3300, 7365 (shard 0)
S1 = [b"a", b"d", b"{a}0"]  # 15495, 11298, 15495 (shard 1)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from tests.integration.cluster_util import Cluster

    c = Cluster(tmp_path_factory.mktemp("txn_size") / "data", shards=2, replicas=3,
                config={"max_txn_bytes": LIMIT})
    try:
        c.start()
        yield c
    finally:
        c.stop()


def _client(cluster, shard: int) -> redis.Redis:
    # No retries: a refused write must be seen once, as the client sent it.
    return cluster.client(cluster.leader(shard), retry=Retry(NoBackoff(), 0))


def _refused(call, *fragments: str) -> str:
    with pytest.raises(redis.ResponseError) as info:
        call()
    text = str(info.value)
    for fragment in fragments:
        assert fragment in text, text
    return text


def test_the_layout_puts_the_keys_where_the_tests_assume(cluster):
    c = _client(cluster, 0)
    for key in S0:
        assert c.execute_command("CLUSTER", "KEYSLOT", key) < 8192
    for key in S1:
        assert c.execute_command("CLUSTER", "KEYSLOT", key) >= 8192


def test_writes_past_the_bound_are_refused_and_leave_nothing(cluster):
    c = _client(cluster, 0)
    assert c.config_get("max-txn-bytes") == {"max-txn-bytes": str(LIMIT)}
    _refused(lambda: c.config_set("max-txn-bytes", "1"), "max-txn-bytes")
    _refused(lambda: c.set(b"b", b"x" * (LIMIT + 1)), "transaction too large: it writes",
             f"the limit is {LIMIT} (max-txn-bytes)")
    assert c.get(b"b") is None
    assert c.set(b"b", b"y" * (900 * KB))
    # Commands whose small arguments make a big value: the log carries the value.
    _refused(lambda: c.setrange(b"b", 2_000_000, b"x"), "transaction too large")
    _refused(lambda: c.append(b"b", b"z" * (200 * KB)), "transaction too large")
    _refused(lambda: c.setbit(b"bits", 4294967295, 1), "transaction too large: it writes 536870")
    assert c.strlen(b"b") == 900 * KB and c.exists(b"bits") == 0
    # A MULTI on one shard whose writes add up past the bound: EXEC fails whole.
    pipe = c.pipeline(transaction=True)
    pipe.set(b"c", b"1" * (600 * KB)).set(b"{b}2", b"2" * (600 * KB))
    _refused(pipe.execute, "transaction too large")
    assert c.exists(b"c", b"{b}2") == 0
    # Across shards: every shard's writes count (the coordinator logs them all).
    _refused(lambda: c.mset({b"c": b"1" * (600 * KB), b"a": b"2" * (600 * KB)}), "transaction too large: it writes")
    assert c.exists(b"c") == 0 and _client(cluster, 1).exists(b"a") == 0


def test_reads_and_forwards_past_the_bound_are_refused(cluster):
    c0, c1 = _client(cluster, 0), _client(cluster, 1)
    value = b"r" * (600 * KB)
    assert c1.set(b"a", value) and c1.set(b"d", value)  # one MSET would write too much
    assert c0.set(b"{b}3", b"small")
    # A cross-shard read gathering 1.2 MB from shard 1.
    _refused(lambda: c0.mget([b"{b}3", b"a", b"d"]), "transaction too large: it reads", "from shard 1")
    # Shard 1's keys through a shard 0 node: forwarded, and the reply bounded
    # (at 8x the bound: a reply is only read back).
    assert c0.get(b"a") == value and c0.mget([b"a", b"d"]) == [value, value]
    big = [b"{a}%d" % i for i in range(10)]
    for key in big:
        assert c1.set(key, key * (900 * KB // len(key)))
    _refused(lambda: c0.mget(big), "reply too large", f"limit {8 * LIMIT}", "send it there directly")
    assert len(c1.mget(big)) == 10  # at the leader itself
    # A request too big to forward is refused where it arrived.
    _refused(lambda: c0.set(b"a", b"q" * (LIMIT + 1)), "request too large", "shard 1's leader")
    assert c1.get(b"a") == value


def test_concurrent_writes_that_cannot_share_a_slot_all_land(cluster):
    # Eight 300 KB SETs at once: a slot may hold three of them, so the leader
    # splits its batch by bytes. Every acknowledged value must read back.
    c = _client(cluster, 0)
    keys = [b"{b}w%d" % i for i in range(8)]
    errors: list[Exception] = []

    def write(i: int) -> None:
        try:
            assert cluster.client(cluster.leader(0), retry=Retry(NoBackoff(), 0)).set(keys[i], bytes([65 + i]) * (300 * KB))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert c.mget(keys) == [bytes([65 + i]) * (300 * KB) for i in range(8)]
    assert c.set(b"c", b"still serving") and c.get(b"c") == b"still serving"


def test_the_config_bounds_the_bound():
    data = default_config_dict(1, 1, 7000)
    data["max_txn_bytes"] = 64 << 20
    assert parse_config(data, "c.yaml").max_txn_bytes == 64 << 20
    for bad in (0, 512, (64 << 20) + 1, "16mb", True):
        data["max_txn_bytes"] = bad
        with pytest.raises(ConfigError, match="c.yaml.*max_txn_bytes"):
            parse_config(data, "c.yaml")
