"""String commands through their handlers (see harness.py)."""

from __future__ import annotations

from fractions import Fraction

import msgpack
import pytest

from makod.kv.records import KIND_NATIVE, KIND_STRING
from makod.kv import errors
from makod.kv import args as _util
from makod.kv.replies import OK, ErrorReply
from makod.kv.table import TABLE
from tests.unit.harness import Harness

WRONGTYPE = ErrorReply(errors.WRONGTYPE)
SYNTAX = ErrorReply(errors.SYNTAX)
NOT_INTEGER = ErrorReply(errors.NOT_INTEGER)
NOT_FLOAT = ErrorReply(errors.NOT_FLOAT)


def put_native(h: Harness, key: bytes, value) -> None:
    ctx = h.context()
    ctx.set(key, KIND_NATIVE, value, None)
    ctx.finish()


# -- the table ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,arity,flags,keys",
    [
        ("get", 2, {"readonly", "fast"}, (1, 1, 1)),
        ("set", -3, {"write", "denyoom"}, (1, 1, 1)),
        ("setnx", 3, {"write", "denyoom", "fast"}, (1, 1, 1)),
        ("setex", 4, {"write", "denyoom"}, (1, 1, 1)),
        ("psetex", 4, {"write", "denyoom"}, (1, 1, 1)),
        ("getset", 3, {"write", "denyoom", "fast"}, (1, 1, 1)),
        ("getdel", 2, {"write", "fast"}, (1, 1, 1)),
        ("getex", -2, {"write", "fast"}, (1, 1, 1)),
        ("mget", -2, {"readonly", "fast"}, (1, -1, 1)),
        ("mset", -3, {"write", "denyoom"}, (1, -1, 2)),
        ("msetnx", -3, {"write", "denyoom"}, (1, -1, 2)),
        ("append", 3, {"write", "denyoom", "fast"}, (1, 1, 1)),
        ("strlen", 2, {"readonly", "fast"}, (1, 1, 1)),
        ("getrange", 4, {"readonly"}, (1, 1, 1)),
        ("substr", 4, {"readonly"}, (1, 1, 1)),
        ("setrange", 4, {"write", "denyoom"}, (1, 1, 1)),
        ("incr", 2, {"write", "denyoom", "fast"}, (1, 1, 1)),
        ("decr", 2, {"write", "denyoom", "fast"}, (1, 1, 1)),
        ("incrby", 3, {"write", "denyoom", "fast"}, (1, 1, 1)),
        ("decrby", 3, {"write", "denyoom", "fast"}, (1, 1, 1)),
        ("incrbyfloat", 3, {"write", "denyoom", "fast"}, (1, 1, 1)),
    ],
)
def test_table_entries(name, arity, flags, keys) -> None:
    spec = TABLE.lookup(name.encode())
    assert spec is not None and spec.group == "string" and spec.scope == "data"
    assert spec.arity == arity
    assert spec.flags == flags
    assert (spec.first_key, spec.last_key, spec.key_step) == keys


def test_mset_key_positions() -> None:
    spec = TABLE.lookup(b"MSET")
    assert spec.keys([b"MSET", b"a", b"1", b"b", b"2"]) == [b"a", b"b"]


# -- GET / SET -------------------------------------------------------------------------------


def test_get_set_basic(h: Harness) -> None:
    assert h.run("GET", "k") is None
    assert h.run("SET", "k", "v") == OK
    assert h.run("get", "k") == b"v"
    assert h.run("SET", "k", b"\x00\xff") == OK
    assert h.run("GET", "k") == b"\x00\xff"
    assert h.wire("GET", "nope") == b"$-1\r\n"
    assert h.wire("GET", "nope", proto=3) == b"_\r\n"


def test_arity_errors(h: Harness) -> None:
    assert h.run("GET") == ErrorReply("ERR wrong number of arguments for 'get' command")
    assert h.run("SET", "k") == ErrorReply("ERR wrong number of arguments for 'set' command")
    assert h.run("MSET", "a", "1", "b") == ErrorReply("ERR wrong number of arguments for 'mset' command")
    assert h.run("MSETNX", "a") == ErrorReply("ERR wrong number of arguments for 'msetnx' command")


def test_set_clears_ttl_unless_keepttl(h: Harness) -> None:
    h.run("SET", "k", "v", "EX", "100")
    assert h.run("TTL", "k") == 100
    h.run("SET", "k", "w")
    assert h.run("TTL", "k") == -1
    h.run("SET", "k", "v", "PX", "5000")
    h.run("SET", "k", "w", "KEEPTTL")
    assert h.run("PTTL", "k") == 5000
    assert h.run("GET", "k") == b"w"


def test_set_expiry_options(h: Harness) -> None:
    now = h.now_ms
    h.run("SET", "a", "v", "EX", "10")
    h.run("SET", "b", "v", "PX", "1500")
    h.run("SET", "c", "v", "EXAT", str(now // 1000 + 20))
    h.run("SET", "d", "v", "PXAT", str(now + 2500))
    assert h.run("PEXPIRETIME", "a") == now + 10_000
    assert h.run("PEXPIRETIME", "b") == now + 1500
    assert h.run("PEXPIRETIME", "c") == (now // 1000 + 20) * 1000
    assert h.run("PEXPIRETIME", "d") == now + 2500
    h.advance(1500)
    assert h.run("GET", "b") is None
    assert h.run("GET", "a") == b"v"
    h.advance(1000)
    assert h.run("EXISTS", "d") == 0
    # A PXAT in the past is accepted; the key is simply already expired.
    assert h.run("SET", "e", "v", "PXAT", "1") == OK
    assert h.run("GET", "e") is None


def test_set_nx_xx_get(h: Harness) -> None:
    assert h.run("SET", "k", "1", "NX") == OK
    assert h.run("SET", "k", "2", "NX") is None
    assert h.run("SET", "missing", "2", "XX") is None
    assert h.run("EXISTS", "missing") == 0
    assert h.run("SET", "k", "3", "XX") == OK
    assert h.run("SET", "k", "4", "GET") == b"3"
    assert h.run("SET", "new", "4", "GET") is None
    assert h.run("GET", "new") == b"4"
    # NX with GET (Redis 7): the old value comes back and nothing is set.
    assert h.run("SET", "k", "5", "NX", "GET") == b"4"
    assert h.run("GET", "k") == b"4"
    assert h.run("SET", "x", "5", "XX", "GET") is None
    assert h.run("EXISTS", "x") == 0
    assert h.run("SET", "k", "6", "nx", "nx") is None  # options may repeat


@pytest.mark.parametrize(
    "opts",
    [
        ["NX", "XX"], ["XX", "NX"], ["EX", "1", "PX", "1"], ["PX", "1", "EX", "1"], ["EX", "1", "KEEPTTL"],
        ["KEEPTTL", "PX", "1"], ["EXAT", "1", "PXAT", "1"], ["EX"], ["PX"], ["EXAT"], ["PXAT"],
        ["FOO"], ["PERSIST"], ["EX", "1", "EXAT", "1"], ["GETX"], ["N"],
    ],
)
def test_set_syntax_errors(h: Harness, opts) -> None:
    assert h.run("SET", "k", "v", *opts) == SYNTAX
    assert h.run("EXISTS", "k") == 0


@pytest.mark.parametrize(
    "opts,error",
    [
        (["EX", "0"], errors.invalid_expire("set")),
        (["EX", "-1"], errors.invalid_expire("set")),
        (["PX", "0"], errors.invalid_expire("set")),
        (["EXAT", "0"], errors.invalid_expire("set")),
        (["EX", "9223372036854775807"], errors.invalid_expire("set")),
        (["EX", "9223372036854776"], errors.invalid_expire("set")),
        (["PX", "9223372036854775807"], errors.invalid_expire("set")),  # overflows once now is added
        (["EX", "abc"], errors.NOT_INTEGER),
        (["EX", "1.5"], errors.NOT_INTEGER),
        (["PX", " 1"], errors.NOT_INTEGER),
    ],
)
def test_set_expire_errors(h: Harness, opts, error) -> None:
    assert h.run("SET", "k", "v", *opts) == ErrorReply(error)
    assert h.run("EXISTS", "k") == 0


def test_set_expire_error_text() -> None:
    assert errors.invalid_expire("set") == "ERR invalid expire time in 'set' command"


def test_set_get_on_wrong_type(h: Harness) -> None:
    h.run("HSET", "h", "f", "v")
    assert h.run("SET", "h", "v", "GET") == WRONGTYPE
    assert h.run("HGET", "h", "f") == b"v"  # untouched
    assert h.run("SET", "h", "v") == OK  # plain SET overwrites any type
    assert h.run("TYPE", "h").text == "string"


def test_set_keepttl_on_other_type(h: Harness) -> None:
    h.run("HSET", "h", "f", "v")
    h.run("EXPIRE", "h", "50")
    h.run("SET", "h", "s", "KEEPTTL")
    assert h.run("TTL", "h") == 50


def test_setnx_setex_psetex(h: Harness) -> None:
    assert h.run("SETNX", "k", "1") == 1
    assert h.run("SETNX", "k", "2") == 0
    assert h.run("GET", "k") == b"1"
    assert h.run("SETEX", "k", "10", "v") == OK
    assert h.run("TTL", "k") == 10
    assert h.run("PSETEX", "k", "1500", "w") == OK
    assert h.run("PTTL", "k") == 1500
    assert h.run("SETEX", "k", "0", "v") == ErrorReply("ERR invalid expire time in 'setex' command")
    assert h.run("PSETEX", "k", "-5", "v") == ErrorReply("ERR invalid expire time in 'psetex' command")
    assert h.run("SETEX", "k", "x", "v") == NOT_INTEGER
    assert h.run("GET", "k") == b"w"


def test_getset_getdel(h: Harness) -> None:
    assert h.run("GETSET", "k", "1") is None
    h.run("EXPIRE", "k", "100")
    assert h.run("GETSET", "k", "2") == b"1"
    assert h.run("TTL", "k") == -1  # GETSET drops the TTL
    assert h.run("GETDEL", "k") == b"2"
    assert h.run("GETDEL", "k") is None
    assert h.run("EXISTS", "k") == 0
    h.run("HSET", "h", "f", "v")
    assert h.run("GETSET", "h", "x") == WRONGTYPE
    assert h.run("GETDEL", "h") == WRONGTYPE
    assert h.run("TYPE", "h").text == "hash"


def test_getex(h: Harness) -> None:
    assert h.run("GETEX", "k") is None
    h.run("SET", "k", "v")
    assert h.run("GETEX", "k") == b"v"
    assert h.run("TTL", "k") == -1
    assert h.run("GETEX", "k", "EX", "100") == b"v"
    assert h.run("TTL", "k") == 100
    assert h.run("GETEX", "k", "PX", "2000") == b"v"
    assert h.run("PTTL", "k") == 2000
    assert h.run("GETEX", "k", "PXAT", str(h.now_ms + 3000)) == b"v"
    assert h.run("PTTL", "k") == 3000
    assert h.run("GETEX", "k", "EXAT", str(h.now_ms // 1000 + 7)) == b"v"
    assert h.run("PEXPIRETIME", "k") == (h.now_ms // 1000 + 7) * 1000
    assert h.run("GETEX", "k", "PERSIST") == b"v"
    assert h.run("TTL", "k") == -1
    # An absolute time already past: the value is returned, then the key deleted.
    assert h.run("GETEX", "k", "EXAT", "1") == b"v"
    assert h.run("EXISTS", "k") == 0
    h.run("SET", "k", "v")
    assert h.run("GETEX", "k", "PXAT", str(h.now_ms)) == b"v"
    assert h.run("EXISTS", "k") == 0


def test_getex_errors(h: Harness) -> None:
    h.run("SET", "k", "v")
    for opts in (["EX", "1", "PX", "1"], ["PERSIST", "EX", "1"], ["EX", "1", "PERSIST"], ["KEEPTTL"],
                 ["NX"], ["XX"], ["GET"], ["EX"], ["FOO"]):
        assert h.run("GETEX", "k", *opts) == SYNTAX, opts
    assert h.run("GETEX", "k", "EX", "0") == ErrorReply("ERR invalid expire time in 'getex' command")
    assert h.run("GETEX", "k", "EX", "x") == NOT_INTEGER
    # The time is only checked when the key exists and is a string.
    assert h.run("GETEX", "missing", "EX", "x") is None
    h.run("HSET", "h", "f", "v")
    assert h.run("GETEX", "h", "EX", "x") == WRONGTYPE
    assert h.run("GETEX", "h", "FOO") == SYNTAX


def test_mget_mset_msetnx(h: Harness) -> None:
    assert h.run("MSET", "a", "1", "b", "2") == OK
    h.run("HSET", "h", "f", "v")
    assert h.run("MGET", "a", "b", "h", "missing", "a") == [b"1", b"2", None, None, b"1"]
    assert h.run("MSETNX", "a", "9", "c", "3") == 0
    assert h.run("EXISTS", "c") == 0
    assert h.run("MSETNX", "c", "3", "d", "4") == 1
    assert h.run("MGET", "c", "d") == [b"3", b"4"]
    h.run("EXPIRE", "a", "100")
    h.run("MSET", "a", "x", "a", "y")
    assert h.run("GET", "a") == b"y"
    assert h.run("TTL", "a") == -1


def test_append_strlen(h: Harness) -> None:
    assert h.run("APPEND", "k", "Hello") == 5
    assert h.run("APPEND", "k", " World") == 11
    assert h.run("GET", "k") == b"Hello World"
    assert h.run("STRLEN", "k") == 11
    assert h.run("STRLEN", "missing") == 0
    h.run("EXPIRE", "k", "100")
    h.run("APPEND", "k", "!")
    assert h.run("TTL", "k") == 100  # APPEND keeps the TTL
    assert h.run("APPEND", "e", "") == 0
    assert h.run("EXISTS", "e") == 1  # APPEND creates even an empty string
    h.run("HSET", "h", "f", "v")
    assert h.run("APPEND", "h", "x") == WRONGTYPE
    assert h.run("STRLEN", "h") == WRONGTYPE


def test_append_size_limit() -> None:
    h = Harness()
    h.proto_max_bulk_len = 10
    h.run("SET", "k", "123456")
    assert h.run("APPEND", "k", "7890") == 10
    assert h.run("APPEND", "k", "x") == ErrorReply(
        "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
    )
    assert h.run("GET", "k") == b"1234567890"


@pytest.mark.parametrize(
    "start,end,expected",
    [
        (0, 3, b"This"), (-3, -1, b"ing"), (0, -1, b"This is a string"), (10, 100, b"string"),
        (5, 3, b""), (-1, -5, b""), (-100, -50, b"T"), (-100, 100, b"This is a string"), (20, 30, b""),
        (3, -100, b""), (-1, -1, b"g"), (15, 15, b"g"), (16, 16, b""),
    ],
)
def test_getrange(h: Harness, start, end, expected) -> None:
    h.run("SET", "k", "This is a string")
    assert h.run("GETRANGE", "k", start, end) == expected
    assert h.run("SUBSTR", "k", start, end) == expected


def test_getrange_edges(h: Harness) -> None:
    assert h.run("GETRANGE", "missing", 0, -1) == b""
    assert h.run("GETRANGE", "missing", "x", 1) == NOT_INTEGER
    h.run("SET", "e", "")
    assert h.run("GETRANGE", "e", 0, -1) == b""
    h.run("HSET", "h", "f", "v")
    assert h.run("GETRANGE", "h", 0, 1) == WRONGTYPE


def test_setrange(h: Harness) -> None:
    h.run("SET", "k", "Hello World")
    assert h.run("SETRANGE", "k", 6, "Redis") == 11
    assert h.run("GET", "k") == b"Hello Redis"
    assert h.run("SETRANGE", "k", 13, "!") == 14
    assert h.run("GET", "k") == b"Hello Redis\x00\x00!"
    assert h.run("SETRANGE", "new", 3, "ab") == 5
    assert h.run("GET", "new") == b"\x00\x00\x00ab"
    assert h.run("SETRANGE", "k", 2, "") == 14
    assert h.run("SETRANGE", "missing", 5, "") == 0
    assert h.run("EXISTS", "missing") == 0
    assert h.run("SETRANGE", "k", -1, "x") == ErrorReply("ERR offset is out of range")
    assert h.run("SETRANGE", "k", "x", "x") == NOT_INTEGER
    h.run("EXPIRE", "k", "100")
    h.run("SETRANGE", "k", 0, "J")
    assert h.run("TTL", "k") == 100
    h.run("HSET", "h", "f", "v")
    assert h.run("SETRANGE", "h", 0, "x") == WRONGTYPE
    assert h.run("SETRANGE", "h", 0, "") == WRONGTYPE


def test_setrange_size_limit() -> None:
    h = Harness()
    h.proto_max_bulk_len = 8
    too_big = ErrorReply("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
    assert h.run("SETRANGE", "k", 8, "x") == too_big
    assert h.run("SETRANGE", "k", 7, "x") == 8
    assert h.run("SETRANGE", "k", 7, "xy") == too_big
    assert h.run("SETRANGE", "k", 100, "") == 8  # nothing written, no check
    assert h.run("SETRANGE", "k", "9223372036854775807", "x") == too_big


# -- counters -------------------------------------------------------------------------------


def test_incr_family(h: Harness) -> None:
    assert h.run("INCR", "n") == 1
    assert h.run("INCRBY", "n", 10) == 11
    assert h.run("DECR", "n") == 10
    assert h.run("DECRBY", "n", 15) == -5
    assert h.run("INCRBY", "n", -5) == -10
    assert h.run("GET", "n") == b"-10"
    h.run("EXPIRE", "n", "100")
    h.run("INCR", "n")
    assert h.run("TTL", "n") == 100  # INCR keeps the TTL


@pytest.mark.parametrize(
    "value",
    ["abc", "", " 1", "1 ", "+1", "01", "-0", "1.0", "0x1", "1e3", "99999999999999999999",
     "9223372036854775808", "-9223372036854775809", "1\x00"],
)
def test_incr_rejects_non_integers(h: Harness, value) -> None:
    h.run("SET", "k", value)
    assert h.run("INCR", "k") == ErrorReply("ERR value is not an integer or out of range")
    assert h.run("INCRBY", "x", value) == NOT_INTEGER
    assert h.run("GET", "k") == value.encode()


def test_incr_limits(h: Harness) -> None:
    h.run("SET", "k", "9223372036854775806")
    assert h.run("INCR", "k") == 9223372036854775807
    assert h.run("INCR", "k") == ErrorReply("ERR increment or decrement would overflow")
    h.run("SET", "k", "-9223372036854775807")
    assert h.run("DECR", "k") == -9223372036854775808
    assert h.run("DECR", "k") == ErrorReply(errors.OVERFLOW)
    assert h.run("INCRBY", "k", "9223372036854775807") == -1
    assert h.run("DECRBY", "k", "-9223372036854775808") == ErrorReply("ERR decrement would overflow")
    assert h.run("INCRBY", "z", "-9223372036854775808") == -9223372036854775808


def test_incr_wrong_type(h: Harness) -> None:
    h.run("HSET", "h", "f", "1")
    assert h.run("INCR", "h") == WRONGTYPE
    assert h.run("INCRBYFLOAT", "h", "1") == WRONGTYPE
    # The argument is checked before the key.
    assert h.run("INCRBY", "h", "x") == NOT_INTEGER


@pytest.mark.parametrize(
    "start,incr,expected",
    [
        (None, "0.1", b"0.1"), ("0.1", "0.2", b"0.3"), (None, "10.50", b"10.5"), (None, "5.0e3", b"5000"),
        ("3.0", "1", b"4"), (None, "-0.0", b"0"), ("1", "-1", b"0"), (None, "1e-20", b"0"),
        (None, "-1e-20", b"0"), (None, "0.000003814697265625", b"0.00000381469726562"),
        (None, "1e30", b"1000000000000000000024696061952"), (None, ".5", b"0.5"), (None, "5.", b"5"),
        (None, "0x10", b"16"), (None, "1E2", b"100"), ("10", "+1.5", b"11.5"),
        ("123456789.123456789", "0", b"123456789.12345678899873747"),  # checked on Redis 7.0
    ],
)
def test_incrbyfloat_formatting(h: Harness, start, incr, expected) -> None:
    if start is not None:
        h.run("SET", "k", start)
    assert h.run("INCRBYFLOAT", "k", incr) == expected
    assert h.run("GET", "k") == expected


def test_incrbyfloat_errors(h: Harness) -> None:
    for bad in ["abc", "", " 1", "1 ", "nan", "1e", "1_0", "1e5000", "1e-5000"]:
        assert h.run("INCRBYFLOAT", "k", bad) == ErrorReply("ERR value is not a valid float"), bad
    assert h.run("EXISTS", "k") == 0
    assert h.run("INCRBYFLOAT", "k", "inf") == ErrorReply("ERR increment would produce NaN or Infinity")
    h.run("SET", "k", "abc")
    assert h.run("INCRBYFLOAT", "k", "1") == NOT_FLOAT
    h.run("SET", "k", "1e308")
    # long double does not overflow at 2e308 (a C double would)
    assert h.run("INCRBYFLOAT", "k", "1e308").startswith(b"1999999999999999999")
    h.run("SET", "k", "1.18e4932")
    assert h.run("INCRBYFLOAT", "k", "1e4931") == ErrorReply(errors.INCR_FLOAT_NAN)


def test_incrbyfloat_keeps_ttl_and_is_bulk_in_resp3(h: Harness) -> None:
    h.run("SET", "k", "1", "EX", "100")
    assert h.wire("INCRBYFLOAT", "k", "1.5", proto=3) == b"$3\r\n2.5\r\n"
    assert h.run("TTL", "k") == 100


def test_native_values_read_as_strings(h: Harness) -> None:
    put_native(h, b"n", {"a": 1})
    packed = msgpack.packb({"a": 1}, use_bin_type=True)
    assert h.run("GET", "n") == packed
    assert h.run("STRLEN", "n") == len(packed)
    assert h.run("MGET", "n") == [packed]
    assert h.run("TYPE", "n").text == "string"
    assert h.run("INCR", "n") == NOT_INTEGER
    assert h.run("HGET", "n", "f") == WRONGTYPE
    assert h.run("APPEND", "n", "x") == len(packed) + 1
    assert h.ks.data[b"n"].kind == KIND_STRING
    put_native(h, b"m", 41)
    assert h.run("GETSET", "m", "x") == msgpack.packb(41)


# -- parsing helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,value",
    [
        (b"0", 0), (b"1", 1), (b"-1", -1), (b"9223372036854775807", 2**63 - 1),
        (b"-9223372036854775808", -(2**63)), (b"9223372036854775808", None), (b"-0", None), (b"00", None),
        (b"01", None), (b"+1", None), (b" 1", None), (b"1 ", None), (b"", None), (b"-", None),
        (b"1.0", None), (b"\xd9\xa1", None), (b"123456789012345678901", None),
    ],
)
def test_parse_int(text, value) -> None:
    assert _util.parse_int(text) == value


def test_long_double_rounding() -> None:
    third = _util.ld_round(Fraction(1, 3))
    # 64 significant bits, round to nearest
    assert third.denominator == 2**65 and abs(third - Fraction(1, 3)) < Fraction(1, 2**66)
    assert _util.ld_round(Fraction(2**64 + 1)) == 2**64  # tie to even
    assert _util.ld_round(Fraction(2**64 + 3)) == 2**64 + 4
    assert _util.ld_round(Fraction(2) ** 16384) == float("inf")
    assert _util.format_long_double(_util.parse_long_double(b"0.1")) == b"0.1"
    assert _util.format_long_double(Fraction(-5, 2)) == b"-2.5"
    assert _util.parse_long_double(b"-inf") == float("-inf")
    assert _util.parse_long_double(b"1e-4950") is not None  # a denormal is fine
    assert _util.parse_long_double(b"1e-4952") is None  # underflows to zero
