"""Differential tests (against redis-server 7.0) for streams: entries, consumer groups, XINFO.

Replies must match byte for byte once what depends on the clock is set
aside: auto-generated IDs (``*``) compare by shape, idle times, absolute
times (delivery times, seen-times: any integer past 10**12) and IDs made
from the clock (13-digit milliseconds) by kind, and XINFO's radix-tree-*
fields (Redis's storage, see streams_info.py) not at all. Approximate trimming (``~``) is only compared where Redis trims
whole nodes the same way exact trimming would (streams.py says why).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.compat.test_differential import B, Err, real, run_ours, run_real  # noqa: F401
from tests.unit.harness import Harness

_ID = re.compile(rb"[0-9]+-[0-9]+")
_RADIX = {b"radix-tree-keys", b"radix-tree-nodes"}
# An ID made by ``*`` from the wall clock (13-digit milliseconds): the two
# servers may stamp it a millisecond apart.
_CLOCK_ID = re.compile(rb"[0-9]{13}-[0-9]+")


def _times(reply: Any) -> Any:
    if isinstance(reply, list):
        return [_times(x) for x in reply]
    if isinstance(reply, int) and reply >= 10**12:
        return "T"
    if isinstance(reply, bytes) and _CLOCK_ID.fullmatch(reply):
        return "clock-id"
    return reply


def _pairs(flat: list, fix) -> list:
    out = list(flat)
    for i in range(0, len(out) - 1, 2):
        out[i + 1] = fix(out[i], out[i + 1])
    return out


def _normalise(args: list[bytes], reply: Any) -> Any:
    if isinstance(reply, Err):
        return reply
    name = args[0].upper()
    sub = args[1].upper() if len(args) > 1 else b""
    if name == b"XADD" and b"*" in args and isinstance(reply, bytes):
        return ("id", bool(_ID.fullmatch(reply)))
    if name == b"XPENDING" and len(args) > 3 and isinstance(reply, list):
        return [[e[0], e[1], "idle", e[3]] if e[2] < 10**12 else _times(e) for e in reply]
    if name == b"XINFO" and sub == b"CONSUMERS" and isinstance(reply, list):
        return [_pairs(c, lambda k, v: "idle" if k == b"idle" else v) for c in reply]
    if name == b"XINFO" and sub == b"STREAM" and isinstance(reply, list):
        return _times(_pairs(reply, lambda k, v: "radix" if k in _RADIX else v))
    return _times(reply)


def check(real_client: Any, h: Harness, script: list[list[bytes]]) -> None:  # noqa: F811
    run_real(real_client, [b"FLUSHALL"])
    for number, args in enumerate(script):
        theirs = _normalise(args, run_real(real_client, args))
        ours = _normalise(args, run_ours(h, args))
        assert theirs == ours, (
            f"step {number}: {args!r}\n  redis: {theirs!r}\n  ours:  {ours!r}\n  script: {script[: number + 1]!r}"
        )


SCRIPTS = {
    "xadd_ids": [
        B("XADD", "s", "1-1", "f", "v"), B("XADD", "s", "1-1", "f", "v"), B("XADD", "s", "1-0", "f", "v"),
        B("XADD", "s", "1-*", "f", "v"), B("XADD", "s", "2-*", "f", "v"), B("XADD", "s", "2", "a", "b", "c", "d"),
        B("XADD", "s", "*", "f", "v"), B("XADD", "n", "0-0", "f", "v"), B("XADD", "n", "0", "f", "v"), B("EXISTS", "n"),
        B("XADD", "n", "0-*", "f", "v"), B("XADD", "s", "abc", "f", "v"), B("XADD", "s", "1-x", "f", "v"),
        B("XADD", "s", "-", "f", "v"), B("XADD", "s", "+", "f", "v"), B("XADD", "s", "-1", "f", "v"),
        B("XADD", "s", "1-1", "f"), B("XADD", "s", "*", "f", "v", "g"), B("XADD", "s", "*"), B("XADD", "s", "MAXLEN", 5),
        B("XADD", "s", "99999999999999999999-1", "f", "v"), B("XADD", "s", "18446744073709551615-0", "f", "v"),
        B("XADD", "s", "18446744073709551615-*", "f", "v"), B("XADD", "s", "18446744073709551615-18446744073709551615", "f", "v"),
        B("XADD", "s", "*", "f", "v"), B("XADD", "nomk", "NOMKSTREAM", "*", "f", "v"), B("EXISTS", "nomk"),
        B("XADD", "n", "NOMKSTREAM", "5-5", "f", "v"), B("XLEN", "n"), B("XLEN", "nope"), B("SET", "str", "x"),
        B("XADD", "str", "*", "f", "v"), B("XLEN", "str"), B("XRANGE", "str", "-", "+"), B("TYPE", "n"),
        B("OBJECT", "ENCODING", "n"), B("XADD", "n", "007-1", "f", "v"), B("XADD", "n", "8-01", "f", "v"),
    ],
    "xrange": [
        B("XADD", "s", "1-0", "a", "1"), B("XADD", "s", "1-1", "b", "2"), B("XADD", "s", "2-0", "c", "3"),
        B("XADD", "s", "3-5", "d", "4"), B("XADD", "s", "4-0", "e", "5", "f", "6"),
        B("XRANGE", "s", "-", "+"), B("XRANGE", "s", "1", "1"), B("XRANGE", "s", "(1-0", "+"), B("XRANGE", "s", "-", "(3-5"),
        B("XRANGE", "s", "(1", "(4"), B("XRANGE", "s", "2", "+", "COUNT", 2), B("XRANGE", "s", "-", "+", "COUNT", 0),
        B("XRANGE", "s", "-", "+", "COUNT", -1), B("XRANGE", "s", "+", "-"), B("XRANGE", "s", "4", "2"),
        B("XRANGE", "s", "(-", "+"), B("XRANGE", "s", "-", "(+"), B("XRANGE", "s", "(18446744073709551615-18446744073709551615", "+"),
        B("XRANGE", "s", "-", "(0-0"), B("XRANGE", "s", "x", "+"), B("XRANGE", "s", "-", "+", "COUNT"),
        B("XRANGE", "s", "-", "+", "COUNT", "x"), B("XRANGE", "s", "-", "+", "LIMIT", 1), B("XRANGE", "nope", "-", "+"),
        B("XRANGE", "nope", "-", "+", "COUNT", 0), B("XREVRANGE", "s", "+", "-"), B("XREVRANGE", "s", "+", "-", "COUNT", 2),
        B("XREVRANGE", "s", "(4", "(1"), B("XREVRANGE", "s", "-", "+"), B("XREVRANGE", "s", "3", "x"),
        B("XRANGE", "s", "(", "+"), B("XRANGE", "s", "((1", "+"), B("XRANGE", "s", "1-18446744073709551615", "+"),
    ],
    "xdel_xtrim": [
        *[B("XADD", "s", f"{i}-0", "f", i) for i in range(1, 11)],
        B("XDEL", "s", "1-0", "1-0", "5-0", "99-0"), B("XLEN", "s"), B("XDEL", "s", "x"), B("XDEL", "s", "2-0", "x"),
        B("XLEN", "s"), B("XDEL", "nope", "1-0"), B("XDEL", "nope", "x"), B("XTRIM", "s", "MAXLEN", 6), B("XRANGE", "s", "-", "+"),
        B("XTRIM", "s", "MAXLEN", "=", 5), B("XTRIM", "s", "MINID", 8), B("XRANGE", "s", "-", "+"), B("XTRIM", "s", "MINID", "=", "9-0"),
        B("XTRIM", "s"), B("XTRIM", "s", "FOO", 1), B("XTRIM", "s", "MAXLEN", -1), B("XTRIM", "s", "MAXLEN", "x"),
        B("XTRIM", "s", "MAXLEN", 1, "MINID", 1), B("XTRIM", "s", "MAXLEN", 1, "LIMIT", 1), B("XTRIM", "s", "LIMIT", 1),
        B("XTRIM", "s", "MAXLEN", "~", 1, "LIMIT", -1), B("XTRIM", "s", "MINID", "-"), B("XTRIM", "nope", "MAXLEN", 0),
        B("XTRIM", "s", "MAXLEN", "~", 100), B("XLEN", "s"), B("XTRIM", "s", "MAXLEN", "~", 0), B("XLEN", "s"),
        B("EXISTS", "s"), B("XADD", "s", "1-0", "f", "v"), B("XADD", "s", "MAXLEN", 2, "20-0", "f", "v"),
        B("XADD", "s", "MAXLEN", 2, "21-0", "f", "v"), B("XADD", "s", "MAXLEN", "=", 2, "22-0", "f", "v"), B("XRANGE", "s", "-", "+"),
        B("XADD", "s", "MINID", "22", "23-0", "f", "v"), B("XRANGE", "s", "-", "+"), B("XADD", "s", "MAXLEN", "~", 5, "LIMIT", 10, "24-0", "f", "v"),
        B("XADD", "s", "MAXLEN", 5, "LIMIT", 10, "25-0", "f", "v"), B("XADD", "s", "LIMIT", 10, "25-0", "f", "v"),
        B("XADD", "s", "MAXLEN", 1, "MINID", 1, "25-0", "f", "v"), B("XADD", "s", "MAXLEN", "~", 0, "26-0", "f", "v"),
        B("XLEN", "s"), B("XINFO", "STREAM", "s"), B("XDEL", "s", "26-0"), B("XINFO", "STREAM", "s"),
    ],
    "xsetid": [
        B("XSETID", "nope", "1-1"), B("XADD", "s", "5-0", "f", "v"), B("XSETID", "s", "4-0"), B("XSETID", "s", "5-0"),
        B("XSETID", "s", "10-0", "ENTRIESADDED", 0), B("XSETID", "s", "10-0", "ENTRIESADDED", -1),
        B("XSETID", "s", "10-0", "MAXDELETEDID", "11-0"), B("XSETID", "s", "10-0", "ENTRIESADDED", 7, "MAXDELETEDID", "3-0"),
        B("XINFO", "STREAM", "s"), B("XADD", "s", "9-0", "f", "v"), B("XADD", "s", "*", "f", "v"), B("XSETID", "s", "x"),
        B("XSETID", "s", "+"), B("XSETID", "s", "20-0", "FOO"), B("XSETID", "s", "20-0", "ENTRIESADDED"),
        B("XDEL", "s", "5-0"), B("XSETID", "s", "1-0"), B("XINFO", "STREAM", "s"),
    ],
    "xread": [
        B("XADD", "a", "1-0", "f", "1"), B("XADD", "a", "2-0", "f", "2"), B("XADD", "b", "5-0", "g", "5"),
        B("XREAD", "STREAMS", "a", "b", "0", "0"), B("XREAD", "COUNT", 1, "STREAMS", "a", "b", "1", "0"),
        B("XREAD", "STREAMS", "a", "$"), B("XREAD", "STREAMS", "a", "2-0"), B("XREAD", "STREAMS", "nope", "0"),
        B("XREAD", "STREAMS", "a", "b"), B("XREAD", "STREAMS", "a", ">"), B("XREAD", "STREAMS", "a", "x"),
        B("XREAD", "GROUP", "g", "c", "STREAMS", "a", "0"), B("XREAD", "NOACK", "STREAMS", "a", "0"),
        B("XREAD", "COUNT", "x", "STREAMS", "a", "0"), B("XREAD", "BLOCK", "x", "STREAMS", "a", "0"),
        B("XREAD", "BLOCK", -1, "STREAMS", "a", "0"), B("XREAD", "BLOCK", 1, "STREAMS", "a", "0"),
        B("XREAD", "BLOCK", 1, "STREAMS", "a", "$"), B("XREAD", "FOO", "STREAMS", "a", "0"), B("XREAD", "COUNT", 1),
        B("XREAD", "STREAMS"), B("SET", "str", "x"), B("XREAD", "STREAMS", "str", "0"), B("XREAD", "STREAMS", "a", "str", "0", "0"),
        B("XREAD", "COUNT", -5, "STREAMS", "a", "0"), B("XREAD", "STREAMS", "a", "-"), B("XREAD", "STREAMS", "a", "1"),
        B("XADD", "e", "1-0", "f", "v"), B("XDEL", "e", "1-0"), B("XREAD", "STREAMS", "e", "0"),
    ],
    "groups": [
        B("XGROUP", "CREATE", "s", "g", "$"), B("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"), B("XGROUP", "CREATE", "s", "g", "$"),
        B("XINFO", "GROUPS", "s"), B("XADD", "s", "1-0", "f", "1"), B("XADD", "s", "2-0", "f", "2"), B("XADD", "s", "3-0", "f", "3"),
        B("XGROUP", "CREATE", "s", "h", "0", "ENTRIESREAD", 1), B("XGROUP", "CREATE", "s", "i", "x"),
        B("XGROUP", "CREATE", "s", "i", "0", "ENTRIESREAD", -2), B("XGROUP", "CREATE", "s", "i", "0", "FOO"),
        B("XGROUP", "CREATE", "s", "i", "0", "ENTRIESREAD"), B("XGROUP", "CREATE", "s", "i", "-"),
        B("XGROUP", "CREATE", "s", "i", "0", "MKSTREAM", "ENTRIESREAD", 0, "MKSTREAM"),
        B("XINFO", "GROUPS", "s"), B("XGROUP", "SETID", "s", "g", "0"), B("XGROUP", "SETID", "s", "g", "$", "ENTRIESREAD", 3),
        B("XGROUP", "SETID", "s", "nog", "0"), B("XGROUP", "SETID", "nope", "g", "0"), B("XGROUP", "SETID", "s", "g", "0", "MKSTREAM"),
        B("XGROUP", "SETID", "s", "g", "-"), B("XINFO", "GROUPS", "s"), B("XGROUP", "CREATECONSUMER", "s", "g", "c1"),
        B("XGROUP", "CREATECONSUMER", "s", "g", "c1"), B("XGROUP", "CREATECONSUMER", "s", "nog", "c1"),
        B("XGROUP", "CREATECONSUMER", "nope", "g", "c1"), B("XINFO", "CONSUMERS", "s", "g"), B("XGROUP", "DELCONSUMER", "s", "g", "c9"),
        B("XGROUP", "DELCONSUMER", "s", "g", "c1"), B("XGROUP", "DESTROY", "s", "h"), B("XGROUP", "DESTROY", "s", "h"),
        B("XGROUP", "DESTROY", "nope", "h"), B("XGROUP", "HELP"), B("XGROUP", "CREATE", "s", "j", "0", "a", "b", "c", "d"),
        B("XGROUP", "DESTROY", "s", "h", "x"), B("SET", "str", "x"), B("XGROUP", "CREATE", "str", "g", "0"),
        B("XINFO", "GROUPS", "s"), B("XINFO", "CONSUMERS", "s", "nog"), B("XINFO", "GROUPS", "nope"), B("XINFO", "HELP"),
        B("XINFO", "GROUPS", "str"), B("XINFO", "STREAM", "s", "FULL", "COUNT"), B("XINFO", "STREAM", "s", "FOO"),
        B("XINFO", "STREAM", "s", "FULL", "LIMIT", 1), B("XINFO", "STREAM", "s", "FULL", "COUNT", "x"),
    ],
    "readgroup": [
        *[B("XADD", "s", f"{i}-0", "f", i) for i in range(1, 7)], B("XGROUP", "CREATE", "s", "g", "0"),
        B("XREADGROUP", "GROUP", "g", "alice", "COUNT", 2, "STREAMS", "s", ">"), B("XREADGROUP", "GROUP", "g", "bob", "COUNT", 1, "STREAMS", "s", ">"),
        B("XPENDING", "s", "g"), B("XPENDING", "s", "g", "-", "+", 10), B("XPENDING", "s", "g", "-", "+", 10, "alice"),
        B("XPENDING", "s", "g", "IDLE", 0, "-", "+", 10), B("XPENDING", "s", "g", "IDLE", 3600000, "-", "+", 10),
        B("XPENDING", "s", "g", "(1", "+", 1), B("XPENDING", "s", "g", "-", "+", 10, "nobody"), B("XPENDING", "s", "g", "-", "+"),
        B("XPENDING", "s", "g", "-", "+", "x"), B("XPENDING", "s", "g", "IDLE", "x", "-", "+", 1), B("XPENDING", "s", "g", "IDLE", 1, "-", "+"),
        B("XPENDING", "s", "nog"), B("XPENDING", "nope", "g"), B("XPENDING", "s", "g", "x", "+", 1),
        B("XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "0"), B("XPENDING", "s", "g", "-", "+", 10),
        B("XREADGROUP", "GROUP", "g", "alice", "COUNT", 1, "STREAMS", "s", "1-0"), B("XACK", "s", "g", "1-0", "1-0", "9-0"),
        B("XACK", "s", "g", "x"), B("XACK", "s", "nog", "x"), B("XACK", "nope", "g", "1-0"), B("XDEL", "s", "2-0"),
        B("XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "0"), B("XINFO", "GROUPS", "s"),
        B("XREADGROUP", "GROUP", "g", "carol", "NOACK", "STREAMS", "s", ">"), B("XPENDING", "s", "g"), B("XINFO", "GROUPS", "s"),
        B("XREADGROUP", "GROUP", "g", "carol", "STREAMS", "s", ">"), B("XREADGROUP", "GROUP", "g", "dave", "BLOCK", 1, "STREAMS", "s", ">"),
        B("XINFO", "CONSUMERS", "s", "g"), B("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "$"),
        B("XREADGROUP", "GROUP", "nog", "c", "STREAMS", "s", ">"), B("XREADGROUP", "GROUP", "g", "c", "STREAMS", "nope", ">"),
        B("XREADGROUP", "STREAMS", "s", ">"), B("XREADGROUP", "GROUP", "g", "STREAMS", "s", ">"), B("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "x"),
        B("SET", "str", "x"), B("XREADGROUP", "GROUP", "g", "c", "STREAMS", "str", ">"),
        B("XGROUP", "SETID", "s", "g", "0"), B("XREADGROUP", "GROUP", "g", "erin", "COUNT", 2, "STREAMS", "s", ">"),
        B("XPENDING", "s", "g", "-", "+", 10), B("XINFO", "GROUPS", "s"), B("XGROUP", "DELCONSUMER", "s", "g", "erin"),
        B("XPENDING", "s", "g"), B("XINFO", "STREAM", "s", "FULL"), B("XINFO", "STREAM", "s", "FULL", "COUNT", 1),
        B("XINFO", "STREAM", "s", "FULL", "COUNT", 0),
    ],
    "claim": [
        *[B("XADD", "s", f"{i}-0", "f", i) for i in range(1, 7)], B("XGROUP", "CREATE", "s", "g", "0"),
        B("XREADGROUP", "GROUP", "g", "alice", "COUNT", 4, "STREAMS", "s", ">"),
        B("XCLAIM", "s", "g", "bob", 0, "1-0"), B("XCLAIM", "s", "g", "bob", 3600000, "2-0"),
        B("XCLAIM", "s", "g", "bob", 0, "2-0", "3-0", "JUSTID"), B("XPENDING", "s", "g", "-", "+", 10),
        B("XCLAIM", "s", "g", "bob", 0, "3-0", "RETRYCOUNT", 7), B("XCLAIM", "s", "g", "bob", 0, "4-0", "TIME", 1000, "JUSTID"),
        B("XCLAIM", "s", "g", "carol", 0, "5-0"), B("XCLAIM", "s", "g", "carol", 0, "5-0", "FORCE"),
        B("XCLAIM", "s", "g", "carol", 0, "6-0", "FORCE", "JUSTID"), B("XPENDING", "s", "g", "-", "+", 10),
        B("XCLAIM", "s", "g", "carol", 0, "1-0", "1-0"), B("XCLAIM", "s", "g", "dave", 0, "9-0", "LASTID", "50-0"),
        B("XINFO", "GROUPS", "s"), B("XINFO", "CONSUMERS", "s", "g"), B("XCLAIM", "s", "g", "dave", "x", "1-0"),
        B("XCLAIM", "s", "g", "dave", 0, "1-0", "IDLE", "x"), B("XCLAIM", "s", "g", "dave", 0, "1-0", "TIME", "x"),
        B("XCLAIM", "s", "g", "dave", 0, "1-0", "RETRYCOUNT", "x"), B("XCLAIM", "s", "g", "dave", 0, "1-0", "LASTID", "x"),
        B("XCLAIM", "s", "g", "dave", 0, "1-0", "BOGUS"), B("XCLAIM", "s", "g", "dave", 0, "1-0", "IDLE"),
        B("XCLAIM", "s", "nog", "dave", 0, "1-0"), B("XCLAIM", "nope", "g", "dave", 0, "1-0"),
        B("XCLAIM", "s", "g", "dave", -5, "1-0", "IDLE", -100, "JUSTID"), B("XDEL", "s", "1-0", "3-0"),
        B("XCLAIM", "s", "g", "erin", 0, "1-0", "2-0"), B("XPENDING", "s", "g"),
        B("XAUTOCLAIM", "s", "g", "frank", 0, "0", "COUNT", 1), B("XAUTOCLAIM", "s", "g", "frank", 0, "0", "COUNT", 2, "JUSTID"),
        B("XDEL", "s", "4-0"), B("XAUTOCLAIM", "s", "g", "frank", 0, "(1-0"), B("XAUTOCLAIM", "s", "g", "frank", 3600000, "-"),
        B("XAUTOCLAIM", "s", "g", "frank", 0, "-", "COUNT", 0), B("XAUTOCLAIM", "s", "g", "frank", 0, "-", "COUNT", "x"),
        B("XAUTOCLAIM", "s", "g", "frank", "x", "-"), B("XAUTOCLAIM", "s", "g", "frank", 0, "x"), B("XAUTOCLAIM", "s", "g", "frank", 0, "-", "FOO"),
        B("XAUTOCLAIM", "s", "nog", "frank", 0, "-"), B("XAUTOCLAIM", "nope", "g", "frank", 0, "-"),
        B("XAUTOCLAIM", "s", "g", "frank", 0, "(18446744073709551615-18446744073709551615"), B("XPENDING", "s", "g"),
        B("XINFO", "CONSUMERS", "s", "g"), B("XINFO", "STREAM", "s", "FULL"),
    ],
    "lag_and_counters": [
        B("XADD", "s", "1-0", "f", "v"), B("XADD", "s", "2-0", "f", "v"), B("XADD", "s", "3-0", "f", "v"), B("XADD", "s", "4-0", "f", "v"),
        B("XGROUP", "CREATE", "s", "a", "0"), B("XGROUP", "CREATE", "s", "b", "2-0"), B("XGROUP", "CREATE", "s", "c", "$"),
        B("XGROUP", "CREATE", "s", "d", "0", "ENTRIESREAD", 0), B("XINFO", "GROUPS", "s"), B("XDEL", "s", "3-0"), B("XINFO", "GROUPS", "s"),
        B("XREADGROUP", "GROUP", "a", "x", "COUNT", 1, "STREAMS", "s", ">"), B("XREADGROUP", "GROUP", "d", "x", "COUNT", 3, "STREAMS", "s", ">"),
        B("XINFO", "GROUPS", "s"), B("XDEL", "s", "1-0"), B("XINFO", "GROUPS", "s"), B("XADD", "s", "5-0", "f", "v"),
        B("XREADGROUP", "GROUP", "b", "x", "STREAMS", "s", ">"), B("XINFO", "GROUPS", "s"), B("XTRIM", "s", "MAXLEN", 0),
        B("XINFO", "GROUPS", "s"), B("XINFO", "STREAM", "s"), B("XADD", "s", "6-0", "f", "v"), B("XINFO", "GROUPS", "s"),
        B("XSETID", "s", "9-0", "ENTRIESADDED", 20, "MAXDELETEDID", "8-0"), B("XINFO", "GROUPS", "s"), B("XINFO", "STREAM", "s", "FULL"),
    ],
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_script(real: Any, name: str) -> None:  # noqa: F811
    check(real, Harness(), SCRIPTS[name])


@st.composite
def _stream_scripts(draw):
    keys = [b"s1", b"s2"]
    ids = [b"1-0", b"1-1", b"2-0", b"3-0", b"3-5", b"4-0", b"0", b"2"]
    out = []
    for _ in range(draw(st.integers(1, 25))):
        k = draw(st.sampled_from(keys))
        i, j = draw(st.sampled_from(ids)), draw(st.sampled_from(ids))
        n = b"%d" % draw(st.integers(0, 4))
        g = draw(st.sampled_from([b"g1", b"g2"]))
        c = draw(st.sampled_from([b"c1", b"c2"]))
        choice = draw(st.integers(0, 15))
        out.append([
            [b"XADD", k, i, b"f", n], [b"XADD", k, b"MAXLEN", n, i, b"f", b"v"], [b"XDEL", k, i, j],
            [b"XRANGE", k, i, j, b"COUNT", n], [b"XREVRANGE", k, j, i], [b"XTRIM", k, b"MINID", i], [b"XLEN", k],
            [b"XGROUP", b"CREATE", k, g, i, b"MKSTREAM"], [b"XREADGROUP", b"GROUP", g, c, b"COUNT", n, b"STREAMS", k, b">"],
            [b"XREADGROUP", b"GROUP", g, c, b"STREAMS", k, i], [b"XACK", k, g, i, j], [b"XPENDING", k, g],
            [b"XCLAIM", k, g, c, b"0", i, j, b"JUSTID"], [b"XAUTOCLAIM", k, g, c, b"0", i, b"COUNT", b"2", b"JUSTID"],
            [b"XINFO", b"GROUPS", k], [b"XREAD", b"COUNT", n, b"STREAMS", b"s1", b"s2", i, j],
        ][choice])
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(_stream_scripts())
def test_random_stream_sequences(real: Any, script) -> None:  # noqa: F811
    check(real, Harness(), script)


def _wire(*parts: Any) -> bytes:
    args = B(*parts)
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


_RESP3_VOLATILE = re.compile(rb"radix-tree-(?:keys|nodes)\r\n:[0-9]+\r\n|:1[0-9]{12}\r\n")


def test_resp3_replies_byte_for_byte(real: Any) -> None:  # noqa: F811
    """Maps where Redis answers maps (XREAD's stream -> entries, XINFO), arrays elsewhere."""
    import socket

    import hiredis

    port = real.connection_pool.connection_kwargs["port"]
    script = [
        ("XADD", "s", "1-0", "f", "v"), ("XADD", "s", "2-0", "g", "w"), ("XGROUP", "CREATE", "s", "g", "0"),
        ("XREAD", "STREAMS", "s", "0"), ("XREADGROUP", "GROUP", "g", "c", "COUNT", 1, "STREAMS", "s", ">"),
        ("XINFO", "STREAM", "s"), ("XINFO", "GROUPS", "s"), ("XPENDING", "s", "g"), ("XREAD", "STREAMS", "s", "9"),
        ("XAUTOCLAIM", "s", "g", "c", 0, 0, "JUSTID"), ("XINFO", "STREAM", "s", "FULL", "COUNT", 0),
        ("XRANGE", "s", "-", "+", "COUNT", 0), ("XADD", "e", "NOMKSTREAM", "*", "f", "v"),
        ("XGROUP", "CREATE", "x", "g", "$", "MKSTREAM"), ("XINFO", "STREAM", "x"),
    ]
    h = Harness()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        reader = hiredis.Reader()

        def ask(*parts: Any) -> bytes:
            # One reply's bytes: read until hiredis has parsed a whole reply.
            sock.sendall(_wire(*parts))
            raw = b""
            while True:
                chunk = sock.recv(65536)
                raw += chunk
                reader.feed(chunk)
                if reader.gets() is not False:
                    return raw

        ask("HELLO", 3)
        ask("FLUSHALL")
        for parts in script:
            theirs = _RESP3_VOLATILE.sub(b"~", ask(*parts))
            ours = _RESP3_VOLATILE.sub(b"~", h.wire(*parts, proto=3))
            assert theirs == ours, f"{parts}\n  redis: {theirs!r}\n  ours:  {ours!r}"
