"""Differential tests (against redis-server) for lists, blocking forms included
(which, run alone with no element, answer only after their timeout: here they
find elements, or run with Redis's own timeout-0-free paths)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.compat.test_differential import B, check, real  # noqa: F401  (the module's redis-server)
from tests.unit.harness import Harness

SCRIPTS = {
    "push_pop": [
        B("LPUSH", "l", "a", "b", "c"), B("RPUSH", "l", "x", "y"), B("LRANGE", "l", 0, -1), B("LLEN", "l"),
        B("LPOP", "l"), B("RPOP", "l"), B("LPOP", "l", 2), B("RPOP", "l", 0), B("LPOP", "l", 10), B("EXISTS", "l"),
        B("LPOP", "l"), B("LPOP", "l", 2), B("RPOP", "nope", 0), B("LPOP", "l", -1), B("LPOP", "l", "x"),
        B("LPOP", "l", 1, 2), B("LPUSHX", "l", "a"), B("RPUSHX", "l", "a"), B("RPUSH", "l", "a"), B("LPUSHX", "l", "b", "c"),
        B("RPUSHX", "l", "d"), B("LRANGE", "l", 0, -1), B("SET", "s", "v"), B("LPUSH", "s", "a"), B("LPOP", "s"),
        B("LLEN", "s"), B("RPUSH", "l"), B("LPUSH", "e", ""), B("LRANGE", "e", 0, -1),
    ],
    "ranges": [
        B("RPUSH", "l", *"abcdefghij"), B("LRANGE", "l", 0, 3), B("LRANGE", "l", -3, -1), B("LRANGE", "l", 5, 2),
        B("LRANGE", "l", -100, 100), B("LRANGE", "l", 20, 30), B("LRANGE", "l", "x", 1), B("LINDEX", "l", 0),
        B("LINDEX", "l", -1), B("LINDEX", "l", 10), B("LINDEX", "l", -11), B("LINDEX", "l", "a"), B("LINDEX", "nope", 0),
        B("LRANGE", "nope", 0, -1), B("LSET", "l", 0, "A"), B("LSET", "l", -1, "J"), B("LSET", "l", 10, "z"),
        B("LSET", "nope", 0, "z"), B("LSET", "l", "x", "z"), B("LRANGE", "l", 0, -1),
        B("LTRIM", "l", 1, -2), B("LRANGE", "l", 0, -1), B("LTRIM", "l", 2, 100), B("LRANGE", "l", 0, -1),
        B("LTRIM", "l", 5, 1), B("EXISTS", "l"), B("LTRIM", "nope", 0, 1), B("RPUSH", "m", 1, 2, 3),
        B("LTRIM", "m", -2, -1), B("LRANGE", "m", 0, -1), B("LTRIM", "m", 0, -1), B("LLEN", "m"),
    ],
    "insert_rem_pos": [
        B("RPUSH", "l", "a", "b", "a", "c", "a"), B("LINSERT", "l", "BEFORE", "b", "X"), B("LINSERT", "l", "after", "c", "Y"),
        B("LINSERT", "l", "BEFORE", "zz", "Q"), B("LINSERT", "nope", "BEFORE", "a", "Q"), B("LINSERT", "l", "MIDDLE", "a", "Q"),
        B("LRANGE", "l", 0, -1), B("LPOS", "l", "a"), B("LPOS", "l", "a", "RANK", 2), B("LPOS", "l", "a", "RANK", -1),
        B("LPOS", "l", "a", "COUNT", 0), B("LPOS", "l", "a", "COUNT", 2, "RANK", -1), B("LPOS", "l", "a", "MAXLEN", 1),
        B("LPOS", "l", "a", "COUNT", 0, "MAXLEN", 3), B("LPOS", "l", "zz"), B("LPOS", "l", "zz", "COUNT", 1),
        B("LPOS", "nope", "a"), B("LPOS", "nope", "a", "COUNT", 1), B("LPOS", "l", "a", "RANK", 0),
        B("LPOS", "l", "a", "COUNT", -1), B("LPOS", "l", "a", "MAXLEN", -1), B("LPOS", "l", "a", "FOO", 1),
        B("LPOS", "l", "a", "RANK"), B("LPOS", "l", "a", "RANK", 10),
        B("LREM", "l", 1, "a"), B("LRANGE", "l", 0, -1), B("LREM", "l", -1, "a"), B("LRANGE", "l", 0, -1),
        B("RPUSH", "l", "a", "a"), B("LREM", "l", 0, "a"), B("LRANGE", "l", 0, -1), B("LREM", "l", 0, "zz"),
        B("LREM", "nope", 0, "a"), B("LREM", "l", "x", "a"), B("LREM", "l", 0, "X"), B("LREM", "l", 0, "b"),
        B("LREM", "l", 0, "c"), B("LREM", "l", 0, "Y"), B("EXISTS", "l"),
    ],
    "move": [
        B("RPUSH", "a", 1, 2, 3), B("LMOVE", "a", "b", "LEFT", "RIGHT"), B("LMOVE", "a", "b", "RIGHT", "LEFT"),
        B("LRANGE", "a", 0, -1), B("LRANGE", "b", 0, -1), B("LMOVE", "a", "a", "LEFT", "RIGHT"), B("LRANGE", "a", 0, -1),
        B("LMOVE", "nope", "b", "LEFT", "LEFT"), B("LMOVE", "a", "b", "UP", "LEFT"), B("RPOPLPUSH", "a", "b"),
        B("RPOPLPUSH", "a", "b"), B("EXISTS", "a"), B("LRANGE", "b", 0, -1), B("SET", "s", "x"),
        B("LMOVE", "b", "s", "LEFT", "LEFT"), B("LRANGE", "b", 0, -1), B("LMOVE", "s", "b", "LEFT", "LEFT"),
        B("RPOPLPUSH", "nope", "s"),
        B("LMPOP", 2, "nope", "b", "LEFT"), B("LMPOP", 1, "b", "RIGHT", "COUNT", 5), B("LMPOP", 1, "b", "LEFT"),
        B("LMPOP", 0, "a", "LEFT"), B("LMPOP", "x", "a", "LEFT"), B("LMPOP", 3, "a", "LEFT"),
        B("LMPOP", 1, "a", "MIDDLE"), B("LMPOP", 1, "a", "LEFT", "COUNT", 0), B("LMPOP", 1, "a", "LEFT", "COUNT", 1, "COUNT", 2),
        B("LMPOP", 1, "a", "LEFT", "COUNT", "x"), B("LMPOP", 1, "s", "LEFT"),
    ],
    "blocking_with_elements": [
        B("RPUSH", "a", 1, 2, 3), B("BLPOP", "nope", "a", 1), B("BRPOP", "a", 1), B("BLMOVE", "a", "b", "LEFT", "LEFT", 1),
        B("BRPOPLPUSH", "b", "a", 1), B("BLMPOP", 1, 2, "nope", "a", "RIGHT", "COUNT", 9), B("EXISTS", "a"),
        B("BLPOP", "a", -1), B("BLPOP", "a", "x"), B("BLPOP", "a", "inf"), B("BLMOVE", "a", "b", "UP", "LEFT", 1),
        B("BLMPOP", 1, 0, "a", "LEFT"), B("SET", "s", "v"), B("BLPOP", "s", 1),
        # Inside MULTI a blocking command never waits: Redis and makodb answer at once.
        B("MULTI"), B("BLPOP", "nope", 5), B("EXEC"),
    ],
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_script(real: Any, name: str) -> None:  # noqa: F811
    script = SCRIPTS[name]
    if name == "blocking_with_elements":
        # MULTI/EXEC is the session's: the harness runs the blocking command
        # the way EXEC does (may_block false), so send it alone on our side.
        _check_blocking_tail(real, script)
        return
    check(real, Harness(), script)


def _check_blocking_tail(real, script) -> None:  # noqa: F811
    body = [argv for argv in script if argv[0] not in (b"MULTI", b"EXEC")]
    check(real, Harness(), body[:-1])
    real.execute_command("MULTI")
    real.execute_command("BLPOP", "nope", 5)
    assert real.execute_command("EXEC") == [None]
    h = Harness()
    assert h.run("BLPOP", "nope", 5) is not None  # our harness: may_block false -> the null array at once


_ELEMS = [b"a", b"b", b"c"]


@st.composite
def _list_scripts(draw):
    keys = [b"k1", b"k2"]
    out = []
    for _ in range(draw(st.integers(1, 25))):
        k = draw(st.sampled_from(keys))
        e = draw(st.sampled_from(_ELEMS))
        i = draw(st.integers(-4, 4))
        j = draw(st.integers(-4, 4))
        choice = draw(st.integers(0, 13))
        out.append([
            [b"LPUSH", k, e], [b"RPUSH", k, e, e], [b"LPOP", k], [b"RPOP", k, b"%d" % abs(i)], [b"LRANGE", k, b"%d" % i, b"%d" % j],
            [b"LINDEX", k, b"%d" % i], [b"LSET", k, b"%d" % i, e], [b"LINSERT", k, b"BEFORE", e, b"z"],
            [b"LREM", k, b"%d" % i, e], [b"LTRIM", k, b"%d" % i, b"%d" % j], [b"LPOS", k, e, b"RANK", b"%d" % (i or 1), b"COUNT", b"0"],
            [b"LMOVE", k, draw(st.sampled_from(keys)), b"LEFT", b"RIGHT"], [b"LMPOP", b"2", b"k1", b"k2", b"RIGHT", b"COUNT", b"2"],
            [b"LLEN", k],
        ][choice])
    return out


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(_list_scripts())
def test_random_list_sequences(real: Any, script) -> None:  # noqa: F811
    check(real, Harness(), script)
