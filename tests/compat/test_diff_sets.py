"""Differential tests of the set commands against real Redis 7.

Set replies list members in the set's internal order, which for a hash-table
set is Redis's hash order: replies of SMEMBERS, SINTER, SUNION, SDIFF, SSCAN
and whole-set SPOP/SRANDMEMBER compare as sorted lists. Random picks (SPOP,
SRANDMEMBER) compare by shape (sizes, distinctness, membership); after an
SPOP the real server is brought to our state (it popped other members), so a
script keeps comparing exact states afterwards.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from makod.kv.table import TABLE
from tests.compat.test_differential import B, Err, check, real, run_ours, run_real  # noqa: F401
from tests.unit.harness import Harness

SORTED = {b"SMEMBERS", b"SINTER", b"SUNION", b"SDIFF"}


def _members(h: Harness, key: bytes) -> set[bytes] | None:
    reply = run_ours(h, [b"SMEMBERS", key])
    return None if isinstance(reply, Err) else set(reply)


def compare(real_client: Any, h: Harness, script: list[list[bytes]]) -> None:
    run_real(real_client, [b"FLUSHALL"])
    for number, args in enumerate(script):
        name = args[0].upper()
        where = f"step {number}: {args!r}\n  script: {script[: number + 1]!r}"
        before = _members(h, args[1]) if name in (b"SPOP", b"SRANDMEMBER") and len(args) >= 2 else None
        theirs = run_real(real_client, args)
        ours = run_ours(h, args)
        if isinstance(theirs, Err) or isinstance(ours, Err):
            assert theirs == ours, f"{where}\n  redis: {theirs!r}\n  ours:  {ours!r}"
            continue
        if name in SORTED:
            assert sorted(theirs) == sorted(ours), f"{where}\n  redis: {theirs!r}\n  ours:  {ours!r}"
        elif name == b"SSCAN":
            assert theirs[0] == ours[0] == b"0", where
            assert sorted(theirs[1]) == sorted(ours[1]), f"{where}\n  redis: {theirs!r}\n  ours:  {ours!r}"
        elif name in (b"SPOP", b"SRANDMEMBER"):
            _check_random(real_client, h, args, before, theirs, ours, where)
        else:
            assert theirs == ours, f"{where}\n  redis: {theirs!r}\n  ours:  {ours!r}"


def _check_random(real_client, h, args, before, theirs, ours, where) -> None:
    name = args[0].upper()
    detail = f"{where}\n  redis: {theirs!r}\n  ours:  {ours!r}"
    if len(args) == 2:
        assert (theirs is None) == (ours is None), detail
        if ours is None:
            return
        assert before is not None and ours in before, detail
        popped_ours, popped_theirs = [ours], [theirs]
    else:
        count = int(args[2])
        assert isinstance(theirs, list) and isinstance(ours, list), detail
        assert len(theirs) == len(ours), detail
        assert set(ours) <= (before or set()), detail
        if count >= 0:
            assert len(set(ours)) == len(ours) == min(count, len(before or ())), detail
            if before is not None and count >= len(before):
                assert sorted(theirs) == sorted(ours), detail
        popped_ours, popped_theirs = ours, theirs
    if name == b"SPOP" and set(popped_ours) != set(popped_theirs):
        # Bring Redis to our state: put its picks back, take ours out.
        run_real(real_client, [b"SADD", args[1], *popped_theirs])
        run_real(real_client, [b"SREM", args[1], *popped_ours])


# -- hand-written scripts ---------------------------------------------------------------------

SCRIPTS: dict[str, list[list[bytes]]] = {
    "sadd_srem": [
        B("SADD", "s", "a", "b", "c"), B("SADD", "s", "a", "d", "d"), B("SCARD", "s"), B("SMEMBERS", "s"),
        B("SREM", "s", "a", "zz", "a"), B("SREM", "nope", "a"), B("SMEMBERS", "s"), B("TYPE", "s"),
        B("SREM", "s", "b", "c", "d"), B("EXISTS", "s"), B("SCARD", "s"), B("SMEMBERS", "s"),
        B("SADD", "s", ""), B("SISMEMBER", "s", ""), B("SADD", "s"), B("SREM", "s"),
    ],
    "intset": [
        B("SADD", "i", 5, 3, -1, 100, 3), B("SMEMBERS", "i"), B("OBJECT", "ENCODING", "i"),
        B("SISMEMBER", "i", 3), B("SISMEMBER", "i", "03"), B("SISMEMBER", "i", "+3"), B("SADD", "i", "03"),
        B("SMEMBERS", "i"), B("OBJECT", "ENCODING", "i"), B("SADD", "j", "9223372036854775807", "-9223372036854775808"),
        B("OBJECT", "ENCODING", "j"), B("SMEMBERS", "j"), B("SADD", "k", "9223372036854775808"),
        B("OBJECT", "ENCODING", "k"), B("SADD", "h", "x", 1), B("OBJECT", "ENCODING", "h"),
    ],
    "membership": [
        B("SADD", "s", "a", "b", 1), B("SISMEMBER", "s", "a"), B("SISMEMBER", "s", "z"), B("SISMEMBER", "nope", "a"),
        B("SMISMEMBER", "s", "a", "z", 1, "b", "a"), B("SMISMEMBER", "nope", "a", "b"), B("SMISMEMBER", "s"),
        B("SISMEMBER", "s"), B("SISMEMBER", "s", "a", "b"), B("SCARD", "nope"), B("SCARD", "s", "x"),
    ],
    "smove": [
        B("SADD", "a", 1, 2, "x"), B("SADD", "b", 2, "y"), B("SMOVE", "a", "b", 1), B("SMEMBERS", "a"), B("SMEMBERS", "b"),
        B("SMOVE", "a", "b", 2), B("SMEMBERS", "a"), B("SMEMBERS", "b"), B("SMOVE", "a", "b", "nope"),
        B("SMOVE", "a", "a", "x"), B("SMOVE", "a", "a", "zz"), B("SMOVE", "nope", "b", "y"),
        B("SMOVE", "a", "c", "x"), B("EXISTS", "a"), B("SMEMBERS", "c"), B("TYPE", "c"),
        B("SET", "str", "v"), B("SMOVE", "str", "b", "y"), B("SMOVE", "b", "str", "y"), B("SMOVE", "nope", "str", "y"),
        B("SMOVE", "b", "str", "notthere"), B("SMOVE", "b", "c"), B("SMEMBERS", "b"),
    ],
    "algebra": [
        B("SADD", "a", 1, 2, 3, "x", "y"), B("SADD", "b", 2, 3, 4, "y", "z"), B("SADD", "c", 3, "y", "q"),
        B("SINTER", "a", "b"), B("SINTER", "a", "b", "c"), B("SINTER", "a"), B("SINTER", "a", "nope"),
        B("SINTER", "nope"), B("SINTER", "a", "a"), B("SUNION", "a", "b"), B("SUNION", "a", "b", "c", "nope"),
        B("SUNION", "nope"), B("SDIFF", "a", "b"), B("SDIFF", "a", "b", "c"), B("SDIFF", "a", "nope"),
        B("SDIFF", "nope", "a"), B("SDIFF", "a", "a"), B("SDIFF", "a"), B("SDIFF", "b", "a", "c"),
        B("SINTER", "c", "b", "a"),
    ],
    "store": [
        B("SADD", "a", 1, 2, 3, "x"), B("SADD", "b", 2, 3, "x", "z"), B("SET", "d", "v"), B("EXPIRE", "d", 100),
        B("SINTERSTORE", "d", "a", "b"), B("TYPE", "d"), B("TTL", "d"), B("SMEMBERS", "d"),
        B("SUNIONSTORE", "u", "a", "b"), B("SMEMBERS", "u"), B("SDIFFSTORE", "f", "a", "b"), B("SMEMBERS", "f"),
        B("SINTERSTORE", "d", "a", "nope"), B("EXISTS", "d"), B("SUNIONSTORE", "u", "nope"), B("EXISTS", "u"),
        B("SDIFFSTORE", "f", "a", "a"), B("EXISTS", "f"), B("SINTERSTORE", "a", "a", "b"), B("SMEMBERS", "a"),
        B("SUNIONSTORE", "b", "b", "a"), B("SMEMBERS", "b"), B("SDIFFSTORE", "a", "b", "a"), B("SMEMBERS", "a"),
        B("SADD", "e", "k"), B("EXPIRE", "e", 100), B("SUNIONSTORE", "e", "e", "b"), B("TTL", "e"),
        B("SINTERSTORE", "d"), B("SUNIONSTORE", "d"), B("SDIFFSTORE", "d"),
    ],
    "sintercard": [
        B("SADD", "a", 1, 2, 3, "x", "y"), B("SADD", "b", 2, 3, 4, "y", "z"),
        B("SINTERCARD", 2, "a", "b"), B("SINTERCARD", 1, "a"), B("SINTERCARD", 2, "a", "nope"),
        B("SINTERCARD", 2, "a", "b", "LIMIT", 0), B("SINTERCARD", 2, "a", "b", "LIMIT", 1),
        B("SINTERCARD", 2, "a", "b", "limit", 2), B("SINTERCARD", 2, "a", "b", "LIMIT", 100),
        B("SINTERCARD", 2, "a", "b", "LIMIT", 1, "LIMIT", 3), B("SINTERCARD", 0, "a"), B("SINTERCARD", -1, "a"),
        B("SINTERCARD", "x", "a"), B("SINTERCARD", 3, "a", "b"), B("SINTERCARD", 2, "a", "b", "LIMIT"),
        B("SINTERCARD", 2, "a", "b", "LIMIT", -1), B("SINTERCARD", 2, "a", "b", "LIMIT", "x"),
        B("SINTERCARD", 2, "a", "b", "FOO"), B("SINTERCARD", 1, "a", "b"), B("SINTERCARD", 1),
        B("SINTERCARD", "01", "a"), B("SET", "str", "v"), B("SINTERCARD", 2, "a", "str"),
        B("SINTERCARD", 2, "nope", "str"), B("SINTERCARD", 1, "nope"),
    ],
    "wrongtype": [
        B("SET", "str", "v"), B("HSET", "h", "f", "v"), B("SADD", "s", "a"),
        B("SADD", "str", "a"), B("SREM", "str", "a"), B("SMEMBERS", "str"), B("SISMEMBER", "str", "a"),
        B("SMISMEMBER", "str", "a"), B("SCARD", "h"), B("SPOP", "str"), B("SPOP", "str", 2), B("SPOP", "str", 0),
        B("SRANDMEMBER", "str"), B("SRANDMEMBER", "str", 2), B("SRANDMEMBER", "str", 0),
        B("SINTER", "s", "str"), B("SINTER", "nope", "str"), B("SINTER", "str", "nope"),
        B("SUNION", "s", "h"), B("SUNION", "nope", "h"), B("SDIFF", "s", "h"), B("SDIFF", "nope", "h"),
        B("SINTERSTORE", "d", "s", "h"), B("SINTERSTORE", "d", "nope", "h"), B("SUNIONSTORE", "d", "s", "h"),
        B("SDIFFSTORE", "d", "nope", "h"), B("EXISTS", "d"), B("SINTERSTORE", "str", "s"), B("TYPE", "str"),
        B("SUNIONSTORE", "h", "nope"), B("EXISTS", "h"), B("SSCAN", "str", 0), B("SSCAN", "str", "x"),
        B("SPOP", "str", -1), B("SRANDMEMBER", "str", "x"),
    ],
    "spop": [
        B("SADD", "s", 1, 2, 3, 4, 5), B("SPOP", "s", 0), B("SCARD", "s"), B("SPOP", "s", 2), B("SCARD", "s"),
        B("SPOP", "s"), B("SCARD", "s"), B("SPOP", "s", 10), B("EXISTS", "s"), B("SPOP", "s"), B("SPOP", "s", 3),
        B("SPOP", "s", -1), B("SPOP", "s", "x"), B("SPOP", "s", 1, 2), B("SADD", "t", "a"), B("SPOP", "t"),
        B("EXISTS", "t"), B("SADD", "t", "a", "b", "c"), B("SPOP", "t", 3), B("EXISTS", "t"),
        B("SADD", "u", *range(20)), B("SPOP", "u", 17), B("SCARD", "u"), B("SPOP", "u", 1), B("SCARD", "u"),
        B("SPOP", "u", "9223372036854775807"), B("EXISTS", "u"), B("SPOP", "u", "9223372036854775808"),
    ],
    "srandmember": [
        B("SADD", "s", "a", "b", "c", 1, 2), B("SRANDMEMBER", "s"), B("SRANDMEMBER", "s", 0), B("SRANDMEMBER", "s", 1),
        B("SRANDMEMBER", "s", 3), B("SRANDMEMBER", "s", 5), B("SRANDMEMBER", "s", 10), B("SRANDMEMBER", "s", -1),
        B("SRANDMEMBER", "s", -12), B("SRANDMEMBER", "nope"), B("SRANDMEMBER", "nope", 3), B("SRANDMEMBER", "nope", -3),
        B("SRANDMEMBER", "s", "x"), B("SRANDMEMBER", "s", 1, 2), B("SRANDMEMBER", "s", "-9223372036854775808"),
        B("SRANDMEMBER", "s", "9223372036854775808"), B("SCARD", "s"), B("SADD", "i", 3, 1, 2),
        B("SRANDMEMBER", "i", 3), B("SRANDMEMBER", "i", 2),
    ],
    "sscan": [
        B("SADD", "s", "a", "b", "c", "ab"), B("SSCAN", "s", 0), B("SSCAN", "s", 0, "MATCH", "a*"),
        B("SSCAN", "s", 0, "COUNT", 100), B("SSCAN", "s", 0, "COUNT", 0), B("SSCAN", "s", 0, "COUNT", "x"),
        B("SSCAN", "s", 0, "FOO", 1), B("SSCAN", "s", 0, "MATCH"), B("SSCAN", "nope", 0), B("SSCAN", "s", "x"),
        B("SADD", "i", 3, 1, 2), B("SSCAN", "i", -1), B("SSCAN", "i", 7), B("SSCAN", "i", 0), B("SSCAN", "i", 0, "MATCH", "[12]"),
        B("SSCAN", "s"),
    ],
    "arity": [
        B("SADD", "s"), B("SREM", "s"), B("SMEMBERS"), B("SMEMBERS", "a", "b"), B("SISMEMBER", "s"),
        B("SMISMEMBER", "s"), B("SCARD"), B("SPOP"), B("SRANDMEMBER"), B("SMOVE", "a", "b"), B("SINTER"),
        B("SUNION"), B("SDIFF"), B("SINTERSTORE", "d"), B("SUNIONSTORE", "d"), B("SDIFFSTORE", "d"),
        B("SINTERCARD", 1), B("SSCAN", "s"),
    ],
    "expiry": [
        B("SADD", "s", "a", "b"), B("EXPIRE", "s", 100), B("SADD", "s", "c"), B("TTL", "s"), B("SREM", "s", "a"),
        B("TTL", "s"), B("SMOVE", "s", "t", "b"), B("TTL", "s"), B("TTL", "t"), B("SPOP", "s", 1), B("TTL", "s"),
    ],
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_script(real: Any, name: str) -> None:
    compare(real, Harness(), SCRIPTS[name])


SET_COMMANDS = [
    "sadd", "srem", "smembers", "sismember", "smismember", "scard", "spop", "srandmember", "smove", "sinter",
    "sintercard", "sunion", "sdiff", "sinterstore", "sunionstore", "sdiffstore", "sscan",
]


def test_command_info(real: Any) -> None:
    for name in SET_COMMANDS:
        info = run_real(real, [b"COMMAND", b"INFO", name.encode()])[0]
        spec = TABLE.lookup(name.encode())
        assert spec.group == "set" and spec.arity == info[1], name
        assert spec.flags == {f.decode() for f in info[2]}, name
        assert (spec.first_key, spec.last_key, spec.key_step) == tuple(info[3:6]), name


def test_exact_through_shared_check(real: Any) -> None:
    # Replies with a deterministic order also pass the shared harness unchanged.
    check(real, Harness(), [
        B("SADD", "s", 3, 1, 2), B("SMEMBERS", "s"), B("SINTER", "s", "s"), B("SUNION", "s", "nope"),
        B("SDIFF", "s", "nope"), B("SMISMEMBER", "s", 1, 9), B("SCARD", "s"), B("SSCAN", "s", 0),
        B("SRANDMEMBER", "s", 5), B("SPOP", "s", 3), B("EXISTS", "s"),
    ])


def test_large_sets(real: Any) -> None:
    ints = [str(i) for i in range(600)]  # past set-max-intset-entries
    compare(real, Harness(), [
        B("SADD", "big", *ints[:512]), B("OBJECT", "ENCODING", "big"), B("SMEMBERS", "big"),
        B("SADD", "big", ints[512]), B("OBJECT", "ENCODING", "big"), B("SCARD", "big"),
        B("SADD", "other", *ints[300:]), B("SINTERCARD", 2, "big", "other"), B("SINTER", "big", "other"),
        B("SDIFF", "other", "big"), B("SUNIONSTORE", "u", "big", "other"), B("SCARD", "u"),
        B("SPOP", "u", 590), B("SCARD", "u"), B("SRANDMEMBER", "big", 400), B("SINTERCARD", 2, "big", "other", "LIMIT", 7),
    ])


# -- generated sequences ----------------------------------------------------------------------

KEYS = [b"a", b"b", b"c"]
MEMBERS = [b"1", b"2", b"10", b"-3", b"x", b"y", b"zz", b""]

key = st.sampled_from(KEYS)
keys = st.lists(key, min_size=1, max_size=3)
members = st.lists(st.sampled_from(MEMBERS), min_size=1, max_size=4)
member = st.sampled_from(MEMBERS)


def _cmd(*parts):
    return st.tuples(*parts).map(lambda t: [p if isinstance(p, bytes) else str(p).encode() for p in _flat(t)])


def _flat(parts):
    out = []
    for p in parts:
        if isinstance(p, (list, tuple)):
            out.extend(_flat(p))
        else:
            out.append(p)
    return out


def _c(name: str):
    return st.just(name.encode())


COMMANDS = st.one_of(
    _cmd(_c("SADD"), key, members),
    _cmd(_c("SADD"), key, members),
    _cmd(_c("SREM"), key, members),
    _cmd(_c("SMEMBERS"), key),
    _cmd(_c("SISMEMBER"), key, member),
    _cmd(_c("SMISMEMBER"), key, members),
    _cmd(_c("SCARD"), key),
    _cmd(_c("SPOP"), key),
    _cmd(_c("SPOP"), key, st.integers(-1, 6)),
    _cmd(_c("SRANDMEMBER"), key),
    _cmd(_c("SRANDMEMBER"), key, st.integers(-6, 6)),
    _cmd(_c("SMOVE"), key, key, member),
    _cmd(_c("SINTER"), keys),
    _cmd(_c("SUNION"), keys),
    _cmd(_c("SDIFF"), keys),
    _cmd(_c("SINTERSTORE"), key, keys),
    _cmd(_c("SUNIONSTORE"), key, keys),
    _cmd(_c("SDIFFSTORE"), key, keys),
    keys.flatmap(lambda ks: st.tuples(st.just(b"SINTERCARD"), st.just(len(ks)), st.just(ks),
                                      st.sampled_from([[], [b"LIMIT", b"0"], [b"LIMIT", b"1"], [b"LIMIT", b"2"]]))
                 .map(lambda t: [t[0], b"%d" % t[1], *t[2], *t[3]])),
    _cmd(_c("SSCAN"), key, st.just(0)),
    _cmd(_c("SET"), key, st.just(b"str")),
    _cmd(_c("TYPE"), key),
    _cmd(_c("EXISTS"), key),
    _cmd(_c("DEL"), key),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(script=st.lists(COMMANDS, min_size=1, max_size=25))
def test_generated_sequences(real: Any, script: list[list[bytes]]) -> None:
    compare(real, Harness(), script)
