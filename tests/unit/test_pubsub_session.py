"""Pub/sub in one process: a session and the real hub (makod/net/pubsub_sync.py)
behind a host whose data requests answer when the test says, so where a
message lands among replies is checked exactly; peer messages are recorded."""

from __future__ import annotations

import importlib
from typing import Any

from makod.kv import glob
from makod.kv.hashslot import key_slot
from makod.net.pubsub_sync import GLOBAL, SHARDED, PubsubHub, PubsubPublish
from resp.session import Session

importlib.import_module("makod.commands")  # registers every command


class _Host:
    requirepass = None
    proto_max_bulk_len = 512 * 1024 * 1024

    def __init__(self, shard: int = 0) -> None:
        self.sent: list[tuple[int, Any]] = []
        self.woken: list[Any] = []
        self.waiting: list[tuple[Any, int]] = []
        # Two shards (slots split in half), two replicas each: node ids 1,2 and 3,4.
        self.pubsub = PubsubHub(
            1 if shard == 0 else 3, shard, [[1, 2], [3, 4]], lambda n, m: self.sent.append((n, m)),
            self.woken.extend, lambda slot: slot // 8192, lambda s, tls: f"127.0.0.1:{7000 + s}",
            glob.compile_matcher)

    def now_ms(self) -> int:
        return 0

    def submit(self, session: Any, token: int, request: Any) -> None:
        self.waiting.append((session, token))  # answered by the test
        return None


def _cmd(*argv: str) -> bytes:
    return b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a.encode()) for a in argv)


def test_message_waits_behind_an_earlier_pending_reply() -> None:
    host = _Host()
    s = Session(host, 1)
    s.feed(_cmd("HELLO", "3") + _cmd("SUBSCRIBE", "c"))
    s.take_output()
    s.feed(_cmd("GET", "k") + _cmd("PING"))  # GET waits on the host; PING waits behind it
    host.pubsub.publish_local_and_broadcast(b"c", b"m")
    assert s.take_output() == b""
    assert s.held_bytes > 0
    sess, token = host.waiting.pop()
    s.on_result(token, b"v", True)
    assert s.take_output() == b"$1\r\nv\r\n+PONG\r\n>3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n"
    assert s.held_bytes == 0
    # Sent once to every other node, all shards.
    assert [(n, type(m), m.kind) for n, m in host.sent] == [(2, PubsubPublish, GLOBAL), (3, PubsubPublish, GLOBAL),
                                                             (4, PubsubPublish, GLOBAL)]


def test_self_publish_in_a_pipeline() -> None:
    host = _Host()
    s = Session(host, 1)
    s.feed(_cmd("HELLO", "3") + _cmd("SUBSCRIBE", "c"))
    s.take_output()
    s.feed(_cmd("PUBLISH", "c", "me") + _cmd("PING"))
    assert s.take_output() == b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nme\r\n:1\r\n+PONG\r\n"


def test_messages_keep_their_order_while_held() -> None:
    host = _Host()
    s = Session(host, 1)
    s.feed(_cmd("HELLO", "3") + _cmd("SUBSCRIBE", "c"))
    s.take_output()
    s.feed(_cmd("GET", "k") + _cmd("PING"))
    host.pubsub.publish_local(b"c", b"1")
    s.feed(_cmd("ECHO", "e"))
    host.pubsub.publish_local(b"c", b"2")
    sess, token = host.waiting.pop()
    s.on_result(token, None, True)
    msg = b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\n%s\r\n"
    assert s.take_output() == b"_\r\n+PONG\r\n" + msg % b"1" + b"$1\r\ne\r\n" + msg % b"2"
    assert s.held_bytes == 0


def test_message_then_reply_when_nothing_pending() -> None:
    host = _Host()
    s = Session(host, 1)
    s.feed(_cmd("SUBSCRIBE", "c"))
    s.take_output()
    host.pubsub.on_message(PubsubPublish(3, GLOBAL, b"c", b"x"))
    assert s.take_output() == b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nx\r\n"
    assert host.woken == [s]
    assert s.is_pubsub


def test_spublish_routes_by_slot() -> None:
    host = _Host(shard=0)
    mine = next(f"c{i}".encode() for i in range(1000) if key_slot(f"c{i}".encode()) < 8192)
    theirs = next(f"c{i}".encode() for i in range(1000) if key_slot(f"c{i}".encode()) >= 8192)
    assert host.pubsub.spublish(mine, b"m") == 0
    assert [(n, m.kind) for n, m in host.sent] == [(2, SHARDED)]
    host.sent.clear()
    assert host.pubsub.spublish(theirs, b"m") == 0
    assert [n for n, _ in host.sent] == [3, 4]
    s = Session(host, 1)
    s.feed(_cmd("SSUBSCRIBE", theirs.decode()))
    assert s.take_output() == b"-MOVED %d 127.0.0.1:7001\r\n" % key_slot(theirs)
    # A sharded message of another shard's channel is not delivered here.
    host.pubsub.on_message(PubsubPublish(3, SHARDED, theirs, b"m"))
    assert not host.woken


def test_reset_and_drop_forget_subscriptions() -> None:
    host = _Host()
    s = Session(host, 1)
    s.feed(_cmd("SUBSCRIBE", "a") + _cmd("PSUBSCRIBE", "p*") + _cmd("RESET"))
    assert host.pubsub.channels == {} and host.pubsub.patterns == {}
    assert not s.is_pubsub
    s.feed(_cmd("SUBSCRIBE", "a"))
    s.closing = True
    s.drop_subscriptions()
    assert host.pubsub.channels == {}


def test_blocked_client_gets_messages_before_its_reply() -> None:
    """RESP3 client parked on BLPOP: Redis pushes messages meanwhile."""
    from makod.kv.replies import Blocked

    host = _Host()
    host.call_later = lambda delay, session, fn: None  # the retry never fires here
    s = Session(host, 1)
    s.feed(_cmd("HELLO", "3") + _cmd("SUBSCRIBE", "c"))
    s.take_output()
    s.feed(_cmd("BLPOP", "l", "0") + _cmd("PING"))
    sess, token = host.waiting.pop()
    blocked = Blocked.__new__(Blocked)
    blocked.timeout_ms, blocked.reply, blocked.argv = 0, None, None
    s.on_result(token, blocked, True)
    assert s.blocked_on is not None
    host.pubsub.publish_local(b"c", b"x")
    assert s.take_output() == b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nx\r\n"
    assert s.held_bytes == 0
