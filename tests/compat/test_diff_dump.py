"""DUMP and RESTORE against redis-server 7.0: payloads travel both ways.

* redis -> makodb: a value built in Redis (one case per type, size and
  compact encoding Redis picks) is DUMPed there, RESTOREd here, and read
  back on both sides with the type's read commands;
* makodb -> redis: the same value built here, DUMPed here, RESTOREd there;
* RESTORE's option parsing, error order and texts, script by script;
* a property: random values of each type go makodb -> redis -> makodb.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from makod.kv.rdb import RDB_VERSION, with_footer
from makod.kv.table import TABLE
from tests.compat.test_differential import B, check, real, run_ours, run_real  # noqa: F401
from tests.unit.harness import Harness
from tests.unit.test_rdb import LEGACY, MALFORMED

# name -> (commands building key "k", the RDB value type Redis 7.0 dumps it as)
CASES: dict[str, tuple[list[list[bytes]], int]] = {
    "str_small": ([B("SET", "k", "hello")], 0),
    "str_empty": ([B("SET", "k", "")], 0),
    "str_binary": ([[b"SET", b"k", b"\x00\xff\r\n" * 3]], 0),
    "str_int8": ([B("SET", "k", "-12")], 0),
    "str_int16": ([B("SET", "k", "1234")], 0),
    "str_int32": ([B("SET", "k", "-123456789")], 0),
    "str_int64": ([B("SET", "k", "12345678901234")], 0),
    "str_not_canonical_int": ([B("SET", "k", "007")], 0),
    "str_lzf": ([B("SET", "k", "abcdefgh" * 200)], 0),
    "list_small": ([B("RPUSH", "k", "a", "b", "", "1", "-1")], 18),
    "list_ints": ([B("RPUSH", "k", 0, 127, 128, -4096, 4095, 70000, -8388608, 2**31, 2**40, -(2**63), 2**63 - 1)], 18),
    "list_strlens": ([B("RPUSH", "k", "x" * 63, "y" * 64, "z" * 4095, "w" * 4096)], 18),
    "list_big": ([B("RPUSH", "k", *[f"element-{i}" for i in range(1500)])], 18),
    "set_intset": ([B("SADD", "k", 3, 1, 2, -5)], 11),
    "set_intset_wide": ([B("SADD", "k", 1, 2**40, -(2**35))], 11),
    "set_strings": ([B("SADD", "k", "a", "b", "c")], 2),
    "set_big_ints": ([B("SADD", "k", *range(600))], 2),
    "zset_small": ([B("ZADD", "k", 1, "a", 2.5, "b", "-inf", "c", "inf", "d", 0, "e", 12, "f")], 17),
    "zset_big": ([B("ZADD", "k", *[x for i in range(200) for x in (i / 7, f"m{i}")])], 5),
    "zset_long_member": ([B("ZADD", "k", 1, "x" * 65, 2, "y")], 5),
    "hash_small": ([B("HSET", "k", "f", "v", "n", "12", "e", "")], 16),
    "hash_big": ([B("HSET", "k", *[x for i in range(600) for x in (f"f{i}", f"v{i}")])], 4),
    "hash_long_value": ([B("HSET", "k", "f", "v" * 65, "g", 1)], 4),
}

READS = {
    b"string": lambda key: [B("GET", key)],
    b"list": lambda key: [B("LRANGE", key, 0, -1)],
    b"set": lambda key: [B("SMEMBERS", key)],
    b"zset": lambda key: [B("ZRANGE", key, 0, -1, "WITHSCORES")],
    b"hash": lambda key: [B("HGETALL", key)],
}


def _read(run, key: bytes) -> Any:
    """The value at ``key`` as comparable data (sets and hashes sorted)."""
    kind = run(B("TYPE", key))
    (reply,) = [run(args) for args in READS[kind](key)]
    if kind == b"set":
        reply = sorted(reply)
    elif kind == b"hash":
        reply = sorted(zip(reply[0::2], reply[1::2]))
    elif kind == b"zset":
        # Compared as numbers: Redis 7.0 replies %.17g, makodb the shortest
        # text that reads back exactly (the same double).
        reply = [(m, float(s)) for m, s in zip(reply[0::2], reply[1::2])]
    return kind, reply


def _sides(client: Any, h: Harness):
    return (lambda args: run_real(client, args)), (lambda args: run_ours(h, args))


def _transfer(source, dest, setup: list[list[bytes]]) -> bytes:
    """Build key k on ``source``, DUMP it there, RESTORE it on ``dest``, compare; the payload."""
    for args in setup:
        source(args)
    payload = source(B("DUMP", "k"))
    assert dest([b"RESTORE", b"k", b"0", payload]) == b"OK"
    assert _read(dest, b"k") == _read(source, b"k")
    return payload


@pytest.mark.parametrize("name", sorted(CASES))
def test_redis_to_makodb(real: Any, name: str) -> None:  # noqa: F811
    setup, rdb_type = CASES[name]
    theirs, ours = _sides(real, Harness())
    theirs([b"FLUSHALL"])
    payload = _transfer(theirs, ours, setup)
    assert payload[0] == rdb_type, f"redis dumped type {payload[0]}, the case expects {rdb_type}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_makodb_to_redis(real: Any, name: str) -> None:  # noqa: F811
    theirs, ours = _sides(real, Harness())
    theirs([b"FLUSHALL"])
    payload = _transfer(ours, theirs, CASES[name][0])
    if name.startswith("str_") and name != "str_lzf":
        # Short strings (no LZF) dump byte for byte as Redis's.
        assert theirs(B("DUMP", "k")) == payload


# -- RESTORE's errors and options ----------------------------------------------------------


GOOD = with_footer(b"\x00\x05hello")
BAD_CRC = GOOD[:-1] + bytes([GOOD[-1] ^ 1])
NEWER = with_footer(b"\x00\x05hello", RDB_VERSION + 1)
STREAM = with_footer(b"\x0f\x00")
UNKNOWN_TYPE = with_footer(b"\xc8\x00")
TRUNCATED = with_footer(b"\x00\x05hel")
EMPTY_LIST = with_footer(b"\x01\x00")
HUGE_COUNT = with_footer(b"\x01\x81\x00\x00\x00\x00\x0f\x42\x40\x00\x01a")
HUGE_LZF = with_footer(b"\x00\xc3\x02\x80\xff\xff\xff\xff\x00a")
PAST_MS = 1_000_000_000_000  # 2001
FUTURE_MS = 4102444800000  # 2100-01-01

SCRIPTS = {
    "basics": [
        B("DUMP", "missing"), B("RESTORE", "k", "0", GOOD), B("GET", "k"), B("TTL", "k"),
        B("RESTORE", "k", "0", GOOD), B("RESTORE", "k", "0", GOOD, "REPLACE"), B("RESTORE", "k", "0", GOOD, "replace"),
        B("SET", "s", "hello"), B("DUMP", "s"), B("SET", "i", "-70000"), B("DUMP", "i"),
        B("RESTORE", "k"), B("RESTORE", "k", "0"), B("DUMP"), B("DUMP", "a", "b"),
        B("RESTORE", "t", "100000", GOOD), B("PTTL", "t"), B("RESTORE", "t2", FUTURE_MS, GOOD, "ABSTTL"),
        B("PEXPIRETIME", "t2"), B("HSET", "h", "f", "v"), B("RESTORE", "h", "0", GOOD, "REPLACE"), B("TYPE", "h"),
    ],
    "errors": [
        B("RESTORE", "n", "0", BAD_CRC), B("RESTORE", "n", "0", NEWER), B("RESTORE", "n", "0", "abc"),
        B("RESTORE", "n", "0", ""), B("RESTORE", "n", "0", STREAM), B("RESTORE", "n", "0", UNKNOWN_TYPE),
        B("RESTORE", "n", "0", TRUNCATED), B("RESTORE", "n", "0", EMPTY_LIST), B("RESTORE", "n", "0", HUGE_COUNT),
        B("RESTORE", "n", "0", HUGE_LZF), B("EXISTS", "n"),
        B("RESTORE", "n", "-1", GOOD), B("RESTORE", "n", "x", GOOD), B("RESTORE", "n", "1.5", GOOD),
        B("RESTORE", "n", "-1", BAD_CRC), B("SET", "k", "v"), B("RESTORE", "k", "-1", GOOD),
        B("RESTORE", "k", "0", BAD_CRC), B("RESTORE", "k", "-1", BAD_CRC, "REPLACE"),
        B("RESTORE", "k", "0", BAD_CRC, "REPLACE"), B("RESTORE", "k", "x", GOOD, "FOO"), B("GET", "k"),
    ],
    "options": [
        B("RESTORE", "n", "0", GOOD, "FOO"), B("RESTORE", "n", "0", GOOD, "IDLETIME"),
        B("RESTORE", "n", "0", GOOD, "IDLETIME", "-1"), B("RESTORE", "n", "0", GOOD, "IDLETIME", "x"),
        B("RESTORE", "n", "0", GOOD, "FREQ"), B("RESTORE", "n", "0", GOOD, "FREQ", "256"),
        B("RESTORE", "n", "0", GOOD, "FREQ", "-1"), B("RESTORE", "n", "0", GOOD, "FREQ", "x"),
        B("RESTORE", "n", "0", GOOD, "IDLETIME", "5", "FREQ", "5"),
        B("RESTORE", "n", "0", GOOD, "FREQ", "5", "IDLETIME", "5"), B("EXISTS", "n"),
        B("RESTORE", "n", "0", GOOD, "IDLETIME", "10"), B("RESTORE", "m", "0", GOOD, "FREQ", "255", "ABSTTL"),
        B("RESTORE", "m", "0", GOOD, "IDLETIME", "-1", "REPLACE"), B("RESTORE", "m", "0", GOOD, "REPLACE", "FOO"),
        B("RESTORE", "m", "0", GOOD, "REPLACE", "IDLETIME", "1", "IDLETIME", "2"), B("EXISTS", "n", "m"),
    ],
    "expired": [
        B("RESTORE", "e", PAST_MS, GOOD, "ABSTTL"), B("EXISTS", "e"), B("SET", "k", "old"),
        B("RESTORE", "k", PAST_MS, GOOD, "ABSTTL"), B("RESTORE", "k", PAST_MS, GOOD, "ABSTTL", "REPLACE"),
        B("EXISTS", "k"), B("RESTORE", "k", "1", GOOD, "ABSTTL"), B("EXISTS", "k"),
        B("RESTORE", "big", str(2**63 - 1), GOOD, "ABSTTL"), B("EXISTS", "big"),
        B("RESTORE", "wrap", str(2**63 - 1), GOOD), B("EXISTS", "wrap"),
    ],
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_script(real: Any, name: str) -> None:  # noqa: F811
    check(real, Harness(), SCRIPTS[name])


# -- property: makodb -> redis -> makodb ------------------------------------------------------

_elem = st.one_of(
    st.binary(max_size=12),
    st.integers(-(2**63), 2**63 - 1).map(lambda i: b"%d" % i),
    st.integers(-300, 300).map(lambda i: b"%d" % i),
    st.binary(min_size=60, max_size=80),
)
_score = st.floats(allow_nan=False, width=64).map(repr)
_values = st.one_of(
    _elem.map(lambda v: [B("SET", "k", v)]),
    st.lists(_elem, min_size=1, max_size=150).map(lambda vs: [B("RPUSH", "k", *vs)]),
    st.lists(_elem, min_size=1, max_size=150).map(lambda vs: [B("SADD", "k", *vs)]),
    st.lists(st.tuples(_score, _elem), min_size=1, max_size=150).map(
        lambda ps: [B("ZADD", "k", *[x for p in ps for x in p])]
    ),
    st.lists(st.tuples(_elem, _elem), min_size=1, max_size=150).map(
        lambda ps: [B("HSET", "k", *[x for p in ps for x in p])]
    ),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(setup=_values)
def test_round_trip_through_redis(real: Any, setup: list[list[bytes]]) -> None:  # noqa: F811
    h = Harness()
    theirs, ours = _sides(real, h)
    for args in setup:
        ours(args)
    payload = ours(B("DUMP", "k"))
    assert theirs([b"RESTORE", b"k", b"0", payload, b"REPLACE"]) == b"OK"
    assert _read(theirs, b"k") == _read(ours, b"k")
    back = theirs(B("DUMP", "k"))
    assert ours([b"RESTORE", b"k2", b"0", back]) == b"OK"
    assert _read(ours, b"k2") == _read(ours, b"k")


# -- hand-made and malformed payloads ---------------------------------------------------------


def test_hand_made_payloads_as_sanitizing_redis(real: Any) -> None:  # noqa: F811
    """Legacy encodings load the same; malformed payloads fail with the same text.

    Compared with ``sanitize-dump-payload yes``: with its default (no), Redis
    accepts some corrupt compact blobs (duplicate or odd listpack hash
    entries, an unsorted intset, a wrong listpack back-length) that makodb
    always refuses.
    """
    theirs, ours = _sides(real, Harness())
    bodies = [body for body, _ in LEGACY.values()] + list(MALFORMED.values())
    real.execute_command("CONFIG", "SET", "sanitize-dump-payload", "yes")
    try:
        for body in bodies:
            theirs([b"FLUSHALL"])
            args = [b"RESTORE", b"k", b"0", with_footer(body), b"REPLACE"]
            reply = theirs(args)
            assert ours(args) == reply, body
            if reply == b"OK":
                assert _read(ours, b"k") == _read(theirs, b"k"), body
    finally:
        real.execute_command("CONFIG", "SET", "sanitize-dump-payload", "no")


def test_command_info(real: Any) -> None:  # noqa: F811
    for name in ("dump", "restore"):
        info = run_real(real, [b"COMMAND", b"INFO", name.encode()])[0]
        spec = TABLE.lookup(name.encode())
        assert spec.group == "generic" and spec.arity == info[1], name
        assert spec.flags == {f.decode() for f in info[2]}, name
        assert (spec.first_key, spec.last_key, spec.key_step) == tuple(info[3:6]), name


@pytest.mark.parametrize("count", [100, 3000])  # Redis's sparse and dense HyperLogLogs
def test_hyperloglogs_travel_both_ways(real: Any, count: int) -> None:  # noqa: F811
    theirs, ours = _sides(real, Harness())
    theirs([b"FLUSHALL"])
    for side, src, dst in ((theirs, b"r", b"r2"), (ours, b"m", b"m2")):
        side(B("PFADD", src, *range(count)))
        other = ours if side is theirs else theirs
        assert other([b"RESTORE", dst, b"0", side([b"DUMP", src])]) == b"OK"
        assert other([b"PFCOUNT", dst]) == side([b"PFCOUNT", src])
