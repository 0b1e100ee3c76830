"""Pub/sub on a real cluster (2 shards x 2 replicas, one for the module):
messages published on any node reach subscribers on every node; sharded
messages reach the owning shard's replicas; subscribed mode and RESP3 pushes
behave as Redis 7.0's; a subscriber that never reads is disconnected by the
pubsub output-buffer class while the node keeps serving.
"""

from __future__ import annotations

import socket
import time

import hiredis
import pytest
import redis

from makod.kv.hashslot import key_slot
from tests.integration.cluster_util import Cluster

# Small enough that a subscriber that never reads trips it quickly, big
# enough for the 1 MB messages a reading subscriber gets.
PUBSUB_HARD_LIMIT = 3 << 20


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("pubsub") / "data", shards=2, replicas=2,
                config={"client_output_buffer_limit": {"pubsub": [PUBSUB_HARD_LIMIT, 0, 0]}})
    try:
        c.start()
        yield c
    finally:
        c.stop()


def _node(cluster: Cluster, shard: int, replica: int) -> str:
    return next(n for n in cluster.names if n == f"s{shard}r{replica}")


def _shard_of(cluster: Cluster, channel: bytes) -> int:
    # The default layout (makod/config.py default_config_dict) splits the
    # 16384 slots evenly, in shard order.
    return key_slot(channel) // (16384 // cluster.shards)


def _channel_in_shard(cluster: Cluster, shard: int, prefix: str) -> bytes:
    for i in range(10_000):
        ch = f"{prefix}{i}".encode()
        if _shard_of(cluster, ch) == shard:
            return ch
    raise AssertionError("no channel found")


class Raw:
    """A raw RESP connection: send bytes, read whole replies with a deadline."""

    def __init__(self, port: int, rcvbuf: int | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect(("127.0.0.1", port))
        self.reader = hiredis.Reader()

    def send(self, *argv: bytes | str) -> None:
        parts = [a.encode() if isinstance(a, str) else a for a in argv]
        self.sock.sendall(b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts))

    def read(self, n: int = 1, timeout: float = 5.0) -> list:
        out: list = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            reply = self.reader.gets()
            if reply is not False:
                out.append(reply)
                continue
            left = deadline - time.monotonic()
            assert left > 0, f"timed out waiting for {n} replies, got {out!r}"
            self.sock.settimeout(left)
            data = self.sock.recv(1 << 20)
            assert data, "connection closed"
            self.reader.feed(data)
        return out

    def call(self, *argv: bytes | str, n: int = 1) -> list:
        self.send(*argv)
        return self.read(n)

    def close(self) -> None:
        self.sock.close()


def _get(p: redis.client.PubSub, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = p.get_message(timeout=max(0.01, deadline - time.monotonic()))
        if msg is not None:
            return msg
    raise AssertionError("no message")


def _wait_numsub(client: redis.Redis, channel: bytes, want: int, shard: bool = False) -> None:
    """Subscriptions are local and immediate, but the subscriber's confirmation
    may still be in flight when the test publishes: wait for it."""
    deadline = time.monotonic() + 5
    sub = "SHARDNUMSUB" if shard else "NUMSUB"
    while client.execute_command("PUBSUB", sub, channel)[1] != want:
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_publish_reaches_every_node_in_order(cluster: Cluster) -> None:
    sub_node, pub_node = _node(cluster, 0, 0), _node(cluster, 1, 1)
    subs = [cluster.client(n) for n in cluster.names]
    pubsubs = [c.pubsub() for c in subs]
    for p in pubsubs:
        p.subscribe("news")
        assert _get(p)["type"] == "subscribe"
    publisher = cluster.client(pub_node)
    # PUBLISH answers the receivers on the node that got it (Redis Cluster's too).
    assert publisher.publish("news", "m0") == 1
    for i in range(1, 20):
        publisher.publish("news", f"m{i}")
    for p in pubsubs:
        got = [_get(p) for _ in range(20)]
        assert [(m["type"], m["channel"], m["data"]) for m in got] == [
            ("message", b"news", f"m{i}".encode()) for i in range(20)]
    sub = cluster.client(sub_node)
    assert sub.execute_command("PUBSUB", "NUMSUB", "news", "nope") == [b"news", 1, b"nope", 0]
    assert b"news" in sub.execute_command("PUBSUB", "CHANNELS")
    assert sub.execute_command("PUBSUB", "CHANNELS", "ne*") == [b"news"]
    info = sub.info("stats")
    assert info["pubsub_channels"] >= 1
    for p in pubsubs:
        p.close()


def test_patterns_numpat_and_unsubscribe_all(cluster: Cluster) -> None:
    a, b = _node(cluster, 0, 1), _node(cluster, 1, 0)
    client = cluster.client(a)
    p = client.pubsub()
    p.psubscribe("ev.*", "ev.[xy]")
    assert _get(p)["data"] == 1 and _get(p)["data"] == 2
    p.subscribe("plain")
    assert _get(p) == {"type": "subscribe", "pattern": None, "channel": b"plain", "data": 3}
    assert client.execute_command("PUBSUB", "NUMPAT") == 2
    assert cluster.client(b).publish("ev.x", "hi") == 0  # nobody on b
    got = sorted((_get(p)["pattern"] for _ in range(2)))
    assert got == [b"ev.*", b"ev.[xy]"]
    cluster.client(b).publish("ev.zz", "z")
    m = _get(p)
    assert (m["type"], m["pattern"], m["channel"], m["data"]) == ("pmessage", b"ev.*", b"ev.zz", b"z")
    # Unsubscribe from everything, with the counts Redis gives.
    p.punsubscribe()
    assert [_get(p)["data"] for _ in range(2)] == [2, 1]
    p.unsubscribe()
    assert _get(p) == {"type": "unsubscribe", "pattern": None, "channel": b"plain", "data": 0}
    assert client.execute_command("PUBSUB", "NUMPAT") == 0
    p.close()
    # With no subscriptions: one reply, a nil channel and 0.
    raw = Raw(cluster.port(a))
    assert raw.call("UNSUBSCRIBE") == [[b"unsubscribe", None, 0]]
    assert raw.call("PUNSUBSCRIBE") == [[b"punsubscribe", None, 0]]
    raw.close()


def test_subscribed_mode_resp2(cluster: Cluster) -> None:
    raw = Raw(cluster.port(_node(cluster, 0, 0)))
    assert raw.call("SUBSCRIBE", "a", "b", n=2) == [[b"subscribe", b"a", 1], [b"subscribe", b"b", 2]]
    assert raw.call("PING") == [[b"pong", b""]]
    assert raw.call("PING", "x") == [[b"pong", b"x"]]
    err = raw.call("GET", "k")[0]
    assert isinstance(err, hiredis.ReplyError)
    assert str(err) == ("ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / "
                        "RESET are allowed in this context")
    assert str(raw.call("PUBSUB", "NUMSUB")[0]).startswith("ERR Can't execute 'pubsub|numsub'")
    # RESET drops the subscriptions and the mode.
    assert raw.call("RESET") == [b"RESET"]
    assert raw.call("PING") == [b"PONG"]
    assert cluster.client(_node(cluster, 0, 0)).execute_command("PUBSUB", "NUMSUB", "a") == [b"a", 0]
    # Closing the connection drops them too.
    raw.call("SUBSCRIBE", "gone")
    raw.close()
    client = cluster.client(_node(cluster, 0, 0))
    deadline = time.monotonic() + 5
    while client.execute_command("PUBSUB", "NUMSUB", "gone") != [b"gone", 0]:
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_resp3_pushes_with_other_commands(cluster: Cluster) -> None:
    node, other = _node(cluster, 1, 1), _node(cluster, 0, 0)
    raw = Raw(cluster.port(node))
    raw.call("HELLO", "3")
    assert raw.call("SUBSCRIBE", "r3") == [[b"subscribe", b"r3", 1]]
    assert raw.call("SET", "r3key", "v") == [b"OK"]  # any command, in RESP3
    assert raw.call("PING") == [b"PONG"]
    cluster.client(other).publish("r3", "pushed")
    assert raw.read() == [[b"message", b"r3", b"pushed"]]
    # Publishing to its own channel: the push comes before PUBLISH's reply, as in Redis.
    assert raw.call("PUBLISH", "r3", "self", n=2) == [[b"message", b"r3", b"self"], 1]
    # A reply still pending (GET forwarded to another shard's leader) stays ahead of later messages.
    key = next(f"k{i}" for i in range(1000) if _shard_of(cluster, f"k{i}".encode()) != 1)
    raw.send("GET", key)
    cluster.client(other).publish("r3", "after")
    assert raw.read(2) == [None, [b"message", b"r3", b"after"]]
    raw.close()

    # redis-py's own RESP3 pub/sub.
    client = cluster.client(node, protocol=3)
    p = client.pubsub()
    p.subscribe("r3b")
    assert _get(p)["type"] == "subscribe"
    cluster.client(other).publish("r3b", b"\x00bin")
    m = _get(p)
    assert (m["type"], m["data"]) == ("message", b"\x00bin")
    p.close()


def test_sharded_pubsub(cluster: Cluster) -> None:
    ch0 = _channel_in_shard(cluster, 0, "sh")
    replica0 = next(n for n in (_node(cluster, 0, 0), _node(cluster, 0, 1)) if n != cluster.leader(0))
    subscriber = cluster.client(replica0)
    p = subscriber.pubsub()
    p.ssubscribe(ch0)
    assert _get(p) == {"type": "ssubscribe", "pattern": None, "channel": ch0, "data": 1}
    assert subscriber.execute_command("PUBSUB", "SHARDNUMSUB", ch0) == [ch0, 1]
    assert subscriber.execute_command("PUBSUB", "SHARDCHANNELS") == [ch0]
    # Through the owning shard's leader: delivered to the replica's subscriber.
    assert cluster.client(cluster.leader(0)).execute_command("SPUBLISH", ch0, "one") == 0
    assert _get(p) == {"type": "smessage", "pattern": None, "channel": ch0, "data": b"one"}
    # Through the replica itself: counted there.
    assert subscriber.execute_command("SPUBLISH", ch0, "two") == 1
    assert _get(p)["data"] == b"two"
    # Through a node of the other shard: forwarded, answered 0.
    assert cluster.client(_node(cluster, 1, 1)).execute_command("SPUBLISH", ch0, "three") == 0
    assert _get(p)["data"] == b"three"
    # Plain PUBLISH on the same name does not reach shard subscribers, nor SPUBLISH plain ones.
    cluster.client(_node(cluster, 1, 0)).publish(ch0, "plain")
    assert p.get_message(timeout=0.2) is None
    p.close()

    # SSUBSCRIBE on the other shard: MOVED to the owner's leader; CROSSSLOT across slots.
    raw = Raw(cluster.port(_node(cluster, 1, 0)))
    err = raw.call("SSUBSCRIBE", ch0)[0]
    leader = cluster.leader(0)
    assert str(err) == f"MOVED {key_slot(ch0)} 127.0.0.1:{cluster.port(leader)}"
    ch1 = _channel_in_shard(cluster, 1, "sh")
    other1 = next(f"x{i}".encode() for i in range(1000) if key_slot(f"x{i}".encode()) != key_slot(ch1))
    assert str(raw.call("SSUBSCRIBE", ch1, other1)[0]) == "CROSSSLOT Keys in request don't hash to the same slot"
    assert raw.call("SSUBSCRIBE", b"{" + ch1 + b"}a", b"{" + ch1 + b"}b", n=2)[1] == [
        b"ssubscribe", b"{" + ch1 + b"}b", 2]
    raw.close()


def test_sharded_with_redis_cluster_client(cluster: Cluster) -> None:
    rc = redis.RedisCluster(host="127.0.0.1", port=cluster.port(), socket_timeout=5)
    try:
        ch = _channel_in_shard(cluster, 1, "rc")
        p = rc.pubsub()
        p.ssubscribe(ch)
        m = p.get_sharded_message(timeout=5)
        assert m["type"] == "ssubscribe"
        rc.spublish(ch, "via-cluster-client")
        deadline = time.monotonic() + 5
        while True:
            m = p.get_sharded_message(timeout=1)
            if m is not None:
                break
            assert time.monotonic() < deadline
        assert (m["type"], m["data"]) == ("smessage", b"via-cluster-client")
        p.close()
    finally:
        rc.close()


def test_binary_safe_empty_and_large(cluster: Cluster) -> None:
    sub_node, pub_node = _node(cluster, 1, 0), _node(cluster, 0, 1)
    channel = b"\x00bin\r\n\xff"
    p = cluster.client(sub_node).pubsub()
    p.subscribe(channel)
    _get(p)
    big = bytes(range(256)) * 4096  # 1 MB
    publisher = cluster.client(pub_node)
    publisher.publish(channel, b"")
    publisher.publish(channel, big)
    publisher.publish(channel, b"end")
    assert [_get(p)["data"] for _ in range(3)] == [b"", big, b"end"]
    p.close()


def test_slow_subscriber_is_disconnected(cluster: Cluster) -> None:
    node = _node(cluster, 0, 1)
    client = cluster.client(node)
    before = client.info("stats")["client_output_buffer_limit_disconnections"]
    slow = Raw(cluster.port(node), rcvbuf=4096)
    slow.call("SUBSCRIBE", "firehose")
    chunk = b"x" * (256 << 10)
    deadline = time.monotonic() + 10
    sent = 0
    while client.info("stats")["client_output_buffer_limit_disconnections"] == before:
        assert time.monotonic() < deadline, f"not disconnected after {sent} messages"
        for _ in range(8):
            client.publish("firehose", chunk)
            sent += 1
    assert client.execute_command("PUBSUB", "NUMSUB", "firehose") == [b"firehose", 0]
    assert client.ping()
    assert client.set("after-slow", "1") and client.get("after-slow") == b"1"
    slow.close()


def test_acl_channel_permissions(cluster: Cluster) -> None:
    node = _node(cluster, 1, 1)
    admin = cluster.client(node)
    admin.execute_command("ACL", "SETUSER", "psuser", "on", ">pw", "~*", "+@all", "resetchannels", "&news*")
    raw = Raw(cluster.port(node))
    raw.call("AUTH", "psuser", "pw")
    for argv in (("SUBSCRIBE", "other"), ("PUBLISH", "other", "x"), ("PSUBSCRIBE", "ne*"), ("SSUBSCRIBE", "other")):
        assert str(raw.call(*argv)[0]) == "NOPERM No permissions to access a channel", argv
    assert raw.call("PSUBSCRIBE", "news*") == [[b"psubscribe", b"news*", 1]]  # a pattern must equal an allowed one
    assert raw.call("SUBSCRIBE", "news1") == [[b"subscribe", b"news1", 2]]
    raw.close()
    admin.execute_command("ACL", "DELUSER", "psuser")
