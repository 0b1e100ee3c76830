"""Pub/sub byte for byte: the same raw RESP exchanges against redis-server and
a one-node makod, comparing the bytes each answers.

Each step sends raw bytes and reads exactly ``n`` whole replies (parsed with
hiredis to know where they end, compared as bytes). Steps marked ``None``
are sent and read but not compared (HELLO's reply names the server's version
and client id). Messages are published from a second connection, so the
scripts also check the message frames.
"""

from __future__ import annotations

import socket
import time

import hiredis
import pytest

from tests.compat import test_differential
from tests.integration.cluster_util import Cluster


real = test_differential.real  # the redis-server fixture


@pytest.fixture(scope="module")
def mako(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("pubsub-diff") / "data")
    try:
        c.start()
        yield c.port()
    finally:
        c.stop()


def _cmd(*argv: str | bytes) -> bytes:
    parts = [a.encode() if isinstance(a, str) else a for a in argv]
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


class Conn:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.reader = hiredis.Reader()
        self.buf = b""

    def exchange(self, data: bytes, n: int, timeout: float = 5.0) -> bytes:
        if data:
            self.sock.sendall(data)
        got = 0
        raw = b""
        deadline = time.monotonic() + timeout
        while got < n:
            # Count whole replies in what arrived; keep the raw bytes.
            while got < n and self.reader.gets() is not False:
                got += 1
            if got >= n:
                break
            left = deadline - time.monotonic()
            assert left > 0, f"timed out after {got}/{n} replies: {raw!r}"
            self.sock.settimeout(left)
            chunk = self.sock.recv(1 << 16)
            assert chunk, "connection closed"
            raw += chunk
            self.reader.feed(chunk)
        return raw

    def close(self) -> None:
        self.sock.close()


# (name, steps); a step is (conn, bytes, replies expected, compare?); conn 0
# is the client under test, conn 1 a second client (the publisher).
SCRIPTS: dict[str, list[tuple[int, bytes, int, bool]]] = {
    "subscribe_two_and_messages": [
        (0, _cmd("SUBSCRIBE", "a", "b"), 2, True),
        (1, _cmd("PUBLISH", "a", "hello"), 1, True),
        (0, b"", 1, True),
        (1, _cmd("PUBLISH", "b", ""), 1, True),
        (0, b"", 1, True),
        (1, _cmd("PUBSUB", "NUMSUB", "a", "b", "c"), 1, True),
        (0, _cmd("UNSUBSCRIBE", "a"), 1, True),
        (0, _cmd("UNSUBSCRIBE", "b", "zz"), 2, True),
        (0, _cmd("PING"), 1, True),
    ],
    "psubscribe": [
        (0, _cmd("PSUBSCRIBE", "n*", "x?"), 2, True),
        (0, _cmd("SUBSCRIBE", "news"), 1, True),
        (1, _cmd("PUBLISH", "news", "m"), 1, True),
        (0, b"", 2, True),
        (1, _cmd("PUBSUB", "NUMPAT"), 1, True),
        (0, _cmd("PUNSUBSCRIBE", "n*"), 1, True),
        (0, _cmd("PUNSUBSCRIBE"), 1, True),
        (0, _cmd("UNSUBSCRIBE"), 1, True),
    ],
    "unsubscribe_with_none": [
        (0, _cmd("UNSUBSCRIBE"), 1, True),
        (0, _cmd("PUNSUBSCRIBE"), 1, True),
        (0, _cmd("SUNSUBSCRIBE"), 1, True),
        (0, _cmd("UNSUBSCRIBE", "never"), 1, True),
        (0, _cmd("PING"), 1, True),
    ],
    "subscribed_mode_errors_resp2": [
        (0, _cmd("SUBSCRIBE", "c"), 1, True),
        (0, _cmd("GET", "k"), 1, True),
        (0, _cmd("PUBLISH", "c", "x"), 1, True),
        (0, _cmd("PUBSUB", "NUMSUB", "c"), 1, True),
        (0, _cmd("MULTI"), 1, True),
        (0, _cmd("PING"), 1, True),
        (0, _cmd("PING", "hi"), 1, True),
        (0, _cmd("SSUBSCRIBE", "s"), 1, True),
        (0, _cmd("SUNSUBSCRIBE", "s"), 1, True),
        (0, _cmd("RESET"), 1, True),
        (0, _cmd("PING"), 1, True),
        (1, _cmd("PUBSUB", "NUMSUB", "c"), 1, True),
    ],
    "ping_resp3": [
        (0, _cmd("HELLO", "3"), 1, False),
        (0, _cmd("SUBSCRIBE", "c3"), 1, True),
        (0, _cmd("PING"), 1, True),
        (0, _cmd("PING", "x"), 1, True),
        (0, _cmd("GET", "nokey-pubsub"), 1, True),
        (1, _cmd("PUBLISH", "c3", "pushed"), 1, True),
        (0, b"", 1, True),
        (0, _cmd("PUBLISH", "c3", "self"), 2, True),
        (0, _cmd("UNSUBSCRIBE"), 1, True),
        (0, _cmd("UNSUBSCRIBE"), 1, True),
    ],
    "sharded_single_node": [
        (0, _cmd("SSUBSCRIBE", "{t}a", "{t}b"), 2, True),
        (1, _cmd("SPUBLISH", "{t}a", "m"), 1, True),
        (0, b"", 1, True),
        (1, _cmd("PUBSUB", "SHARDNUMSUB", "{t}a", "{t}c"), 1, True),
        (1, _cmd("PUBSUB", "SHARDNUMSUB"), 1, True),
        (0, _cmd("SUNSUBSCRIBE", "{t}a", "{t}b"), 2, True),
    ],
    "pubsub_none_and_arity": [
        (0, _cmd("PUBSUB", "NUMSUB"), 1, True),
        (0, _cmd("PUBSUB", "NUMSUB", "none"), 1, True),
        (0, _cmd("PUBSUB", "CHANNELS", "zzz-none*"), 1, True),
        (0, _cmd("PUBSUB", "CHANNELS", "a", "b"), 1, True),
        (0, _cmd("PUBSUB", "NUMPAT", "x"), 1, True),
        (0, _cmd("PUBSUB"), 1, True),
        (0, _cmd("PUBSUB", "nope"), 1, True),
        (0, _cmd("PUBSUB", "HELP"), 1, True),
        (0, _cmd("SUBSCRIBE"), 1, True),
        (0, _cmd("PSUBSCRIBE"), 1, True),
        (0, _cmd("SSUBSCRIBE"), 1, True),
        (0, _cmd("PUBLISH", "a"), 1, True),
        (0, _cmd("PUBLISH", "a", "b", "c"), 1, True),
        (0, _cmd("SPUBLISH", "a"), 1, True),
        (0, _cmd("PUBLISH", "nobody-listens", "x"), 1, True),
    ],
    "subscribe_in_multi": [
        (0, _cmd("MULTI"), 1, True),
        (0, _cmd("SUBSCRIBE", "m1"), 1, True),
        (0, _cmd("EXEC"), 1, True),
        (0, _cmd("GET", "k"), 1, True),
        (0, _cmd("UNSUBSCRIBE", "m1"), 1, True),
    ],
}


def _run(port: int, steps: list) -> list[bytes]:
    conns = [Conn(port), Conn(port)]
    try:
        return [conns[c].exchange(data, n) for c, data, n, _ in steps]
    finally:
        for conn in conns:
            conn.close()


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_same_bytes(name: str, real, mako) -> None:
    steps = SCRIPTS[name]
    redis_port = real.connection_pool.connection_kwargs["port"]
    want = _run(redis_port, steps)
    got = _run(mako, steps)
    for i, (step, w, g) in enumerate(zip(steps, want, got)):
        if step[3]:
            assert g == w, f"step {i} {step[1]!r}: redis {w!r}, makod {g!r}"
