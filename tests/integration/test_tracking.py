"""Client-side caching across a cluster: a client tracking keys on one node
hears of every change made through any node (single-shard writes, cross-shard
MULTI/EXEC, expiry), redis-py's own client-side cache never stays stale, a
RESP2 client gets them through REDIRECT, and a peer that restarts makes the
tracking clients drop their whole cache rather than miss a change."""

from __future__ import annotations

import json
import socket
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.integration.cluster_util import wait_for
from tests.integration.nemesis_util import keys_on_shards


class PushReader:
    """A raw RESP3 connection: replies and the pushes that came with them."""

    def __init__(self, port: int, resp3: bool = True) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""
        self.pushes: list = []
        if resp3:
            self.call("HELLO", "3")

    def call(self, *args: str | bytes) -> object:
        parts = [a if isinstance(a, bytes) else str(a).encode() for a in args]
        self.sock.sendall(b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts))
        while True:
            item = self._item()
            if isinstance(item, tuple) and item[0] == "push":
                self.pushes.append(item[1])
                continue
            return item

    def drain(self, wait_s: float = 0.0) -> list:
        """Pushes that arrived without a command (waits up to ``wait_s`` for the first)."""
        self.sock.settimeout(wait_s or 0.01)
        try:
            while True:
                item = self._item()
                self.pushes.append(item[1] if isinstance(item, tuple) else item)
                self.sock.settimeout(0.05)
        except (socket.timeout, BlockingIOError):
            pass
        finally:
            self.sock.settimeout(5)
        out, self.pushes = self.pushes, []
        return out

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _item(self) -> object:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind in (b"+", b"-"):
            return rest
        if kind == b":":
            return int(rest)
        if kind == b"_":
            return None
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self.buf += self.sock.recv(65536)
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data
        if kind in (b"*", b">", b"~", b"%"):
            n = int(rest)
            if n < 0:
                return None
            items = [self._item() for _ in range(n * (2 if kind == b"%" else 1))]
            return ("push", items) if kind == b">" else items
        raise AssertionError(f"unexpected {line!r}")

    def close(self) -> None:
        self.sock.close()


def _in_contact(port: int, peers: int = 1) -> None:
    """Wait until the node has heard from its peers since a client began
    tracking (before, a read's key may meet a null "drop everything")."""
    def heard() -> bool:
        return json.loads(_client(port).execute_command("MAKO", "STATUS"))["tracking"]["heard_peers"] == peers
    wait_for(heard, timeout=10, what="the node's first contact with its peer")


def _client(port: int, **kw) -> redis.Redis:
    return redis.Redis(port=port, retry=Retry(NoBackoff(), 0), socket_timeout=10, **kw)


def _invalidated(pushes: list) -> set:
    keys = set()
    for p in pushes:
        assert p[0] == b"invalidate", p
        keys.update(p[1] if p[1] is not None else [None])
    return keys


@pytest.fixture
def pair(make_cluster):
    return make_cluster(shards=2, replicas=1)


def test_changes_through_any_node_reach_a_tracking_client(pair):
    a, b = pair.port("s0r0"), pair.port("s1r0")
    k0, k1 = keys_on_shards("trk", 1)  # one key on each shard
    writer = _client(b)
    writer.mset({k0: "0", k1: "0"})
    reader = PushReader(a)
    assert reader.call("CLIENT", "TRACKING", "ON") == b"OK"
    _in_contact(a)
    assert reader.call("MGET", k0, k1) == [b"0", b"0"]
    assert reader.drain(0.3) == []
    writer.set(k1, "1")  # one shard, through the other node
    assert wait_for(lambda: _invalidated(reader.drain(0.2)) == {k1}, timeout=5, what="k1's invalidation")
    writer.set(k1, "2")  # no longer tracked until read again
    assert reader.drain(0.3) == []
    assert reader.call("GET", k0) == b"0" and reader.call("GET", k1) == b"2"
    with writer.pipeline(transaction=True) as p:  # a cross-shard MULTI/EXEC: the coordinator's path
        p.set(k0, "3").set(k1, "3").execute()
    assert wait_for(lambda: _invalidated(reader.drain(0.2)) == {k0, k1} or None, timeout=5, what="both keys")
    reader.call("GET", k0)
    writer.pexpire(k0, 1)  # expired and deleted by the leader's active expiry
    assert wait_for(lambda: k0 in _invalidated(reader.drain(0.2)), timeout=5, what="the expiry's invalidation")
    assert reader.call("CLIENT", "TRACKINGINFO")[1] == [b"on"]
    reader.close()


def test_redis_py_client_side_cache_is_never_stale_after_a_write_returns(pair, monkeypatch):
    import redis.connection as rc
    from redis.cache import CacheConfig

    # redis-py enables its cache only for servers that say 7.4+; makod says 7.2.0.
    monkeypatch.setattr(rc.CacheProxyConnection, "MIN_ALLOWED_VERSION", "7.2.0")
    a, b = pair.port("s0r0"), pair.port("s1r0")
    keys = keys_on_shards("cache", 3)
    cached = _client(a, protocol=3, cache_config=CacheConfig())
    writer = _client(b)
    cached.ping()
    _in_contact(a)
    for k in keys:
        writer.set(k, "0")
        assert cached.get(k) == b"0"
    assert cached.get_cache().size == len(keys)
    worst_s = 0.0
    for i in range(1, 31):
        k = keys[i % len(keys)]
        cached.get(k)  # cached (again)
        writer.set(k, str(i))
        t0 = time.monotonic()
        wait_for(lambda: cached.get(k) == str(i).encode(), timeout=5, interval=0.002,
                 what=f"the cached client to see write {i} of {k!r}")
        worst_s = max(worst_s, time.monotonic() - t0)
    assert worst_s < 5


def test_redirect_to_a_resp2_subscriber_and_a_broken_redirect(pair):
    a, b = pair.port("s0r0"), pair.port("s1r0")
    (k,) = keys_on_shards("redir", 1)[1:]
    _client(b).set(k, "v")
    sub = PushReader(a, resp3=False)
    sub_id = sub.call("CLIENT", "ID")
    assert sub.call("SUBSCRIBE", "__redis__:invalidate") == [b"subscribe", b"__redis__:invalidate", 1]
    tracker = PushReader(a, resp3=False)
    assert tracker.call("CLIENT", "TRACKING", "ON", "REDIRECT", str(sub_id)) == b"OK"
    assert tracker.call("CLIENT", "GETREDIR") == sub_id
    info = tracker.call("CLIENT", "INFO")
    assert b" flags=t " in info and b" redir=%d " % sub_id in info, info
    _in_contact(a)
    assert tracker.call("GET", k) == b"v"
    assert sub.drain(0.3) == []
    _client(b).set(k, "w")

    def got() -> bool:
        msgs = sub.drain(0.2)
        return [b"message", b"__redis__:invalidate", [k]] in msgs
    assert wait_for(got, timeout=5, what="the message on __redis__:invalidate")
    sub.close()
    assert tracker.call("GET", k) == b"w"
    _client(b).set(k, "x")
    wait_for(lambda: b"broken_redirect" in tracker.call("CLIENT", "TRACKINGINFO")[1], timeout=5,
             what="the redirect marked broken")
    assert b" flags=tR " in tracker.call("CLIENT", "INFO")
    tracker.close()


def test_a_peer_that_restarts_makes_tracking_clients_drop_everything(pair):
    a = pair.port("s0r0")
    (k0,) = keys_on_shards("restart", 1)[:1]
    reader = PushReader(a)
    reader.call("CLIENT", "TRACKING", "ON")
    _in_contact(a)
    reader.call("GET", k0)
    assert reader.drain(0.3) == []
    # The peer forgets that this node tracks: changes made through it in
    # the meantime may be lost, so the client must drop its cache.
    pair.kill("s1r0")
    pair.restart("s1r0")
    assert wait_for(lambda: None in _invalidated(reader.drain(0.2)), timeout=10, what="a null invalidation")
    info = _client(a).info("stats")
    assert info["tracking_flushes"] >= 1
    reader.call("GET", k0)
    _client(pair.port("s1r0")).set(k0, "after")
    assert wait_for(lambda: k0 in _invalidated(reader.drain(0.2)), timeout=5, what="invalidations again")
    reader.close()


def test_a_new_leader_makes_tracking_clients_drop_everything(make_cluster):
    # A deposed leader drops the events of the writes it held, which may
    # still be applied by its successor: caches go cold on a leader change.
    cluster = make_cluster(shards=1, replicas=3)
    leader = cluster.leader()
    follower = [n for n in cluster.names if n != leader][0]
    _client(cluster.port(leader)).set("k", "v")
    reader = PushReader(cluster.port(follower))
    reader.call("CLIENT", "TRACKING", "ON")
    _in_contact(cluster.port(follower), peers=2)
    assert reader.call("GET", "k") == b"v"
    assert reader.drain(0.3) == []
    cluster.kill(leader)
    assert wait_for(lambda: None in _invalidated(reader.drain(0.2)), timeout=20, what="a null invalidation")
    reader.close()
