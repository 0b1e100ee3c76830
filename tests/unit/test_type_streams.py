"""Streams through the RESP session: a blocked XREAD ... $ is served by a later XADD.

The session retries a blocked command by running it again; ``$`` must keep
meaning "after the last ID when I first blocked" (the handler hands the
session a concrete argv to retry, Blocked.argv), or a retry would always
wait for entries after the newest one and never be served.
"""

from __future__ import annotations

from typing import Any

from makod.kv.errors import CommandError
from makod.kv.table import TABLE, resolve
from resp.replies import ErrorReply
from resp.session import Session
from tests.unit.harness import Harness


class _Host:
    """A session host on one Harness keyspace; timers fire when the test says."""

    requirepass = None
    proto_max_bulk_len = 512 * 1024 * 1024

    def __init__(self) -> None:
        self.h = Harness()
        self.timers: list = []

    def now_ms(self) -> int:
        return self.h.now_ms

    def submit(self, session: Any, token: int, request: Any) -> tuple[Any, bool]:
        argv = request.commands[0]
        ctx = self.h.context()
        ctx.may_block = True
        try:
            reply = resolve(TABLE, argv).handler(ctx, argv)
        except CommandError as exc:
            reply = ErrorReply(exc.text)
        ctx.finish()
        return reply, True

    def call_later(self, delay_ms: int, session: Any, fn) -> None:
        self.timers.append(fn)

    def tick(self, ms: int = 10) -> None:
        self.h.advance(ms)
        timers, self.timers = self.timers, []
        for fn in timers:
            fn()


def _cmd(*parts: bytes) -> bytes:
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


def test_blocked_xread_dollar_is_served_by_a_later_xadd() -> None:
    host = _Host()
    host.h.run("XADD", "s", "1-0", "f", "old")
    session = Session(host, 1)
    session.feed(_cmd(b"XREAD", b"BLOCK", b"0", b"STREAMS", b"s", b"$"))
    assert session.take_output() == b""
    host.tick()
    assert session.take_output() == b"" and host.timers, "still waiting, and will retry"
    host.h.run("XADD", "s", "2-0", "f", "new")
    host.tick()
    assert session.take_output() == (
        b"*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n2-0\r\n*2\r\n$1\r\nf\r\n$3\r\nnew\r\n"
    )
    # Served: the next command runs at once.
    session.feed(_cmd(b"XLEN", b"s"))
    assert session.take_output() == b":2\r\n"


def test_blocked_xread_times_out_with_a_null_array() -> None:
    host = _Host()
    session = Session(host, 1)
    session.feed(_cmd(b"XREAD", b"BLOCK", b"50", b"STREAMS", b"nope", b"$"))
    assert session.take_output() == b""
    for _ in range(10):
        host.tick(10)
    assert session.take_output() == b"*-1\r\n"


def test_blocked_xreadgroup_is_served_by_a_later_xadd() -> None:
    host = _Host()
    host.h.run("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
    session = Session(host, 1)
    session.feed(_cmd(b"XREADGROUP", b"GROUP", b"g", b"c", b"BLOCK", b"0", b"STREAMS", b"s", b">"))
    host.tick()
    assert session.take_output() == b""
    host.h.run("XADD", "s", "3-0", "f", "v")
    host.tick()
    assert session.take_output().startswith(b"*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n3-0\r\n")
    assert host.h.run("XPENDING", "s", "g")[0] == 1


def test_a_stream_emptied_by_xdel_or_xtrim_stays() -> None:
    h = Harness()
    h.run("XADD", "s", "1-0", "f", "v")
    assert h.run("XDEL", "s", "1-0") == 1
    assert h.run("EXISTS", "s") == 1 and h.run("XLEN", "s") == 0
    h.run("XADD", "s", "2-0", "f", "v")
    assert h.run("XTRIM", "s", "MAXLEN", "0") == 1
    assert h.run("TYPE", "s").text == "stream"
    assert h.run("XADD", "s", "2-0", "f", "v") == ErrorReply(
        "ERR The ID specified in XADD is equal or smaller than the target stream top item"
    )


def test_xread_answers_a_map_in_resp3_and_pairs_in_resp2() -> None:
    # redis-py 8 speaks RESP3 and reads XREAD's reply as a map.
    h = Harness()
    h.run("XADD", "s", "1-0", "f", "v")
    h.run("XGROUP", "CREATE", "s", "g", "0")
    entry = b"*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n"
    assert h.wire("XREAD", "STREAMS", "s", "0", proto=3) == b"%1\r\n$1\r\ns\r\n" + entry
    assert h.wire("XREAD", "STREAMS", "s", "0", proto=2) == b"*1\r\n*2\r\n$1\r\ns\r\n" + entry
    assert h.wire("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">", proto=3) == b"%1\r\n$1\r\ns\r\n" + entry
    assert h.wire("XREAD", "STREAMS", "s", "1-0", proto=3) == b"_\r\n"


def test_a_blocked_read_served_later_answers_at_most_1000_entries() -> None:
    host = _Host()
    host.h.run("XADD", "s", "1-0", "f", "v")
    session = Session(host, 1)
    session.feed(_cmd(b"XREAD", b"BLOCK", b"0", b"STREAMS", b"s", b"1-0"))
    host.tick()
    for i in range(2, 1100):
        host.h.run("XADD", "s", f"{i}-0", "f", "v")
    host.tick()
    out = session.take_output()
    assert out.startswith(b"*1\r\n*2\r\n$1\r\ns\r\n*1000\r\n")


def test_xread_keys_follow_streams() -> None:
    from makod.kv.types.streams_read import read_keys

    assert read_keys([b"XREAD", b"COUNT", b"STREAMS", b"STREAMS", b"a", b"b", b"0", b"0"]) == [b"a", b"b"]
    assert read_keys([b"XREADGROUP", b"GROUP", b"STREAMS", b"c", b"BLOCK", b"0", b"STREAMS", b"k", b">"]) == [b"k"]
    assert read_keys([b"XREAD", b"STREAMS", b"a", b"b", b"0"]) == [b"a"]
    assert read_keys([b"XREAD", b"COUNT"]) == []
