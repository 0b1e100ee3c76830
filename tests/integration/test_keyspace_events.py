"""Keyspace notifications on real makod processes (the shared 2x3 cluster):
a subscriber on any node gets the events of writes made through any other,
for both shards, once the transaction committed; a transaction that did not
commit (WATCH failed) raises none; scripts' commands raise their own."""

from __future__ import annotations

import pytest

from makod.core.slots import key_slot
from tests.integration.cluster_util import wait_for


def _key_on(shard: int, prefix: str) -> str:
    i = 0
    while (key_slot(f"{prefix}{i}".encode()) >= 8192) != bool(shard):
        i += 1
    return f"{prefix}{i}"


@pytest.fixture
def events_on(two_by_three):
    cluster = two_by_three
    for name in cluster.names:
        cluster.client(name).config_set("notify-keyspace-events", "KEA")
    yield cluster
    for name in cluster.names:
        cluster.client(name).config_set("notify-keyspace-events", "")


def test_events_of_writes_anywhere_reach_a_subscriber_anywhere(events_on):
    cluster = events_on
    a, b = _key_on(0, "ev"), _key_on(1, "ev")
    assert cluster.client(cluster.names[0]).config_get("notify-keyspace-events") == {
        "notify-keyspace-events": "AKE"}
    sub = cluster.client(cluster.names[-1]).pubsub()
    sub.psubscribe("__keyevent@0__:*")
    wait_for(lambda: (sub.get_message(timeout=0.2) or {}).get("type") == "psubscribe", timeout=10,
             what="the subscription")
    writer = cluster.client(cluster.names[1])
    writer.set(a, "1")
    pipe = writer.pipeline(transaction=True)
    pipe.incr(a).rpush(b, "x").lpop(b)
    pipe.execute()
    # A transaction that does not commit raises nothing.
    with writer.pipeline(transaction=True) as p:
        p.watch(a)
        cluster.client(cluster.names[2]).set(a, "5")  # raises "set" on a
        p.multi()
        p.set(a, "never")
        with pytest.raises(Exception):
            p.execute()
    writer.eval("redis.call('HSET', KEYS[1], 'f', 'v'); redis.call('DEL', KEYS[2])", 2, b, a)
    got: list[tuple[bytes, bytes]] = []

    def collected() -> bool:
        msg = sub.get_message(timeout=0.2)
        if msg is not None and msg["type"] == "pmessage":
            got.append((msg["channel"].split(b":", 1)[1], msg["data"]))
        return len(got) >= 8

    wait_for(collected, timeout=15, what=f"8 events (got {got})")
    sub.close()
    # Per key, events come in the order the writes committed; across the two
    # shards' leaders the interleaving is not defined (as across Redis Cluster nodes).
    on_a = [e for e in got if e[1] == a.encode()]
    on_b = [e for e in got if e[1] == b.encode()]
    assert on_a == [(b"set", a.encode()), (b"incrby", a.encode()), (b"set", a.encode()), (b"del", a.encode())]
    assert on_b == [(b"rpush", b.encode()), (b"lpop", b.encode()), (b"del", b.encode()), (b"hset", b.encode())]
