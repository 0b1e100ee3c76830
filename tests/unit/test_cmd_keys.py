"""Generic key commands through their handlers (see harness.py)."""

from __future__ import annotations

import pytest

from makod.kv.records import KIND_NATIVE, OP_DEL, OP_EXPIRE
from makod.kv import errors
from makod.kv.args import parse_cursor
from makod.kv.errors import CommandError
from makod.kv.replies import OK, ErrorReply, SimpleString
from makod.kv.table import TABLE
from tests.unit.harness import Harness

SYNTAX = ErrorReply(errors.SYNTAX)
NOT_INTEGER = ErrorReply(errors.NOT_INTEGER)


@pytest.mark.parametrize(
    "name,arity,flags,keys,scope,merge",
    [
        ("del", -2, {"write"}, (1, -1, 1), "data", ""),
        ("unlink", -2, {"write", "fast"}, (1, -1, 1), "data", ""),
        ("exists", -2, {"readonly", "fast"}, (1, -1, 1), "data", ""),
        ("touch", -2, {"readonly", "fast"}, (1, -1, 1), "data", ""),
        ("type", 2, {"readonly", "fast"}, (1, 1, 1), "data", ""),
        ("rename", 3, {"write"}, (1, 2, 1), "data", ""),
        ("renamenx", 3, {"write", "fast"}, (1, 2, 1), "data", ""),
        ("expire", -3, {"write", "fast"}, (1, 1, 1), "data", ""),
        ("pexpire", -3, {"write", "fast"}, (1, 1, 1), "data", ""),
        ("expireat", -3, {"write", "fast"}, (1, 1, 1), "data", ""),
        ("pexpireat", -3, {"write", "fast"}, (1, 1, 1), "data", ""),
        ("ttl", 2, {"readonly", "fast"}, (1, 1, 1), "data", ""),
        ("pttl", 2, {"readonly", "fast"}, (1, 1, 1), "data", ""),
        ("expiretime", 2, {"readonly", "fast"}, (1, 1, 1), "data", ""),
        ("pexpiretime", 2, {"readonly", "fast"}, (1, 1, 1), "data", ""),
        ("persist", 2, {"write", "fast"}, (1, 1, 1), "data", ""),
        ("keys", 2, {"readonly"}, (0, 0, 0), "keyspace", "concat"),
        ("scan", -2, {"readonly"}, (0, 0, 0), "keyspace", "scan"),
        ("randomkey", 1, {"readonly"}, (0, 0, 0), "keyspace", "any"),
        ("dbsize", 1, {"readonly", "fast"}, (0, 0, 0), "keyspace", "sum"),
        ("flushdb", -1, {"write"}, (0, 0, 0), "keyspace", "all_ok"),
        ("flushall", -1, {"write"}, (0, 0, 0), "keyspace", "all_ok"),
    ],
)
def test_table_entries(name, arity, flags, keys, scope, merge) -> None:
    spec = TABLE.lookup(name.encode())
    assert spec is not None
    assert spec.arity == arity and spec.flags == flags
    assert (spec.first_key, spec.last_key, spec.key_step) == keys
    assert spec.scope == scope and spec.merge == merge


def test_rename_key_positions() -> None:
    assert TABLE.lookup(b"rename").keys([b"RENAME", b"a", b"b"]) == [b"a", b"b"]
    assert TABLE.lookup(b"del").keys([b"DEL", b"a", b"b", b"c"]) == [b"a", b"b", b"c"]


# -- existence ----------------------------------------------------------------------------


def test_del_unlink_exists_touch(h: Harness) -> None:
    h.run("MSET", "a", "1", "b", "2")
    h.run("HSET", "h", "f", "v")
    assert h.run("EXISTS", "a", "a", "h", "x") == 3  # repeats count
    assert h.run("TOUCH", "a", "x", "a") == 2
    assert h.run("DEL", "a", "a", "x") == 1
    assert h.run("UNLINK", "b", "h") == 2
    assert h.run("EXISTS", "a", "b", "h") == 0
    assert h.run("DEL", "a") == 0


def test_type(h: Harness) -> None:
    h.run("SET", "s", "v")
    h.run("HSET", "h", "f", "v")
    assert h.run("TYPE", "s") == SimpleString("string")
    assert h.run("TYPE", "h") == SimpleString("hash")
    assert h.run("TYPE", "x") == SimpleString("none")
    assert h.wire("TYPE", "h") == b"+hash\r\n"
    ctx = h.context()
    ctx.set(b"n", KIND_NATIVE, [1, 2], None)
    ctx.finish()
    assert h.run("TYPE", "n") == SimpleString("string")


def test_expired_keys_do_not_exist(h: Harness) -> None:
    h.run("SET", "k", "v", "PX", "100")
    h.advance(99)
    assert h.run("EXISTS", "k") == 1
    h.advance(1)
    assert h.run("EXISTS", "k") == 0
    assert h.run("TYPE", "k") == SimpleString("none")
    assert h.run("DEL", "k") == 0


# -- rename ---------------------------------------------------------------------------------


def test_rename(h: Harness) -> None:
    assert h.run("RENAME", "a", "b") == ErrorReply("ERR no such key")
    assert h.run("RENAMENX", "a", "b") == ErrorReply("ERR no such key")
    h.run("SET", "a", "1", "EX", "100")
    assert h.run("RENAME", "a", "a") == OK
    assert h.run("RENAMENX", "a", "a") == 0
    assert h.run("RENAME", "a", "b") == OK
    assert h.run("EXISTS", "a") == 0
    assert h.run("GET", "b") == b"1"
    assert h.run("TTL", "b") == 100  # the TTL moves with the value
    h.run("SET", "c", "3", "EX", "50")
    assert h.run("RENAMENX", "b", "c") == 0
    assert h.run("RENAME", "b", "c") == OK
    assert h.run("GET", "c") == b"1"
    assert h.run("TTL", "c") == 100
    h.run("SET", "d", "4")
    h.run("RENAME", "d", "c")
    assert h.run("TTL", "c") == -1  # the destination's TTL goes with its value


def test_rename_hash_is_independent(h: Harness) -> None:
    h.run("HSET", "h", "f", "v")
    assert h.run("RENAMENX", "h", "g") == 1
    h.run("HSET", "g", "x", "y")
    assert h.run("HGETALL", "g").items == [(b"f", b"v"), (b"x", b"y")]
    assert h.run("EXISTS", "h") == 0


def test_rename_expired_source(h: Harness) -> None:
    h.run("SET", "a", "1", "PX", "10")
    h.advance(10)
    assert h.run("RENAME", "a", "b") == ErrorReply(errors.NO_SUCH_KEY)


# -- expiry -----------------------------------------------------------------------------------


def test_expire_and_ttl(h: Harness) -> None:
    assert h.run("EXPIRE", "k", 100) == 0
    h.run("SET", "k", "v")
    assert h.run("TTL", "k") == -1
    assert h.run("PTTL", "k") == -1
    assert h.run("EXPIRETIME", "k") == -1
    assert h.run("EXPIRE", "k", 100) == 1
    assert h.run("TTL", "k") == 100
    assert h.run("PTTL", "k") == 100_000
    h.advance(40_400)
    assert h.run("PTTL", "k") == 59_600
    assert h.run("TTL", "k") == 60  # rounded to the nearest second
    h.advance(100)
    assert h.run("TTL", "k") == 60  # 59.5 s rounds up
    h.advance(1)
    assert h.run("TTL", "k") == 59
    h.advance(59_499)
    assert h.run("TTL", "k") == -2
    assert h.run("PTTL", "k") == -2
    assert h.run("EXPIRETIME", "k") == -2
    assert h.run("PEXPIRETIME", "k") == -2


def test_ttl_rounding(h: Harness) -> None:
    h.run("SET", "k", "v", "PX", "1499")
    assert h.run("TTL", "k") == 1
    h.run("SET", "k", "v", "PX", "1500")
    assert h.run("TTL", "k") == 2
    h.run("SET", "k", "v", "PX", "499")
    assert h.run("TTL", "k") == 0  # alive, but under half a second


def test_expiretime(h: Harness) -> None:
    h.run("SET", "k", "v")
    assert h.run("PEXPIREAT", "k", 4102444800499) == 1
    assert h.run("EXPIRETIME", "k") == 4102444800  # rounded like TTL
    assert h.run("PEXPIREAT", "k", 4102444800500) == 1
    assert h.run("EXPIRETIME", "k") == 4102444801
    assert h.run("PEXPIRETIME", "k") == 4102444800500
    assert h.run("EXPIREAT", "k", 4102444800) == 1
    assert h.run("PEXPIRETIME", "k") == 4102444800000


def test_pexpire_and_expire_at(h: Harness) -> None:
    h.run("SET", "k", "v")
    assert h.run("PEXPIRE", "k", 1500) == 1
    assert h.run("PTTL", "k") == 1500
    assert h.run("EXPIREAT", "k", h.now_ms // 1000 + 10) == 1
    assert h.run("PEXPIRETIME", "k") == (h.now_ms // 1000 + 10) * 1000


@pytest.mark.parametrize(
    "cmd,when",
    [("EXPIRE", 0), ("EXPIRE", -10), ("PEXPIRE", -1), ("EXPIREAT", 1), ("PEXPIREAT", 0), ("PEXPIREAT", "now")],
)
def test_past_expiry_deletes(h: Harness, cmd, when) -> None:
    h.run("SET", "k", "v")
    if when == "now":
        when = h.now_ms
    assert h.run(cmd, "k", when) == 1
    assert (OP_DEL, b"k") in h.last_ctx.ops  # replicated as an explicit delete
    assert h.run("EXISTS", "k") == 0


def test_expire_op(h: Harness) -> None:
    h.run("SET", "k", "v")
    h.run("EXPIRE", "k", 10)
    assert h.last_ctx.ops == [(OP_EXPIRE, b"k", h.now_ms + 10_000)]


def test_expire_flags(h: Harness) -> None:
    h.run("SET", "k", "v")
    assert h.run("EXPIRE", "k", 100, "XX") == 0
    assert h.run("EXPIRE", "k", 100, "GT") == 0  # no TTL is infinite: never greater
    assert h.run("TTL", "k") == -1
    assert h.run("EXPIRE", "k", 100, "NX") == 1
    assert h.run("EXPIRE", "k", 200, "NX") == 0
    assert h.run("EXPIRE", "k", 200, "XX") == 1
    assert h.run("EXPIRE", "k", 100, "GT") == 0
    assert h.run("EXPIRE", "k", 300, "gt") == 1
    assert h.run("EXPIRE", "k", 300, "LT") == 0
    assert h.run("EXPIRE", "k", 150, "LT") == 1
    assert h.run("EXPIRE", "k", 150, "XX", "LT") == 0
    assert h.run("TTL", "k") == 150
    h.run("PERSIST", "k")
    assert h.run("EXPIRE", "k", 50, "LT") == 1  # no TTL is infinite: anything is less
    assert h.run("TTL", "k") == 50
    assert h.run("EXPIRE", "k", -1, "GT") == 0
    assert h.run("EXPIRE", "k", -1, "LT") == 1
    assert h.run("EXISTS", "k") == 0


@pytest.mark.parametrize(
    "opts,error",
    [
        (["NX", "XX"], "ERR NX and XX, GT or LT options at the same time are not compatible"),
        (["NX", "GT"], "ERR NX and XX, GT or LT options at the same time are not compatible"),
        (["LT", "NX"], "ERR NX and XX, GT or LT options at the same time are not compatible"),
        (["GT", "LT"], "ERR GT and LT options at the same time are not compatible"),
        (["FOO"], "ERR Unsupported option FOO"),
        (["nx", "bar"], "ERR Unsupported option bar"),
    ],
)
def test_expire_option_errors(h: Harness, opts, error) -> None:
    h.run("SET", "k", "v")
    assert h.run("EXPIRE", "k", 100, *opts) == ErrorReply(error)
    # Options are checked before the time.
    assert h.run("PEXPIRE", "k", "x", *opts) == ErrorReply(error)
    assert h.run("TTL", "k") == -1


@pytest.mark.parametrize(
    "cmd,when,error",
    [
        ("EXPIRE", "x", errors.NOT_INTEGER),
        ("EXPIRE", "1.5", errors.NOT_INTEGER),
        ("EXPIRE", "9223372036854776", "ERR invalid expire time in 'expire' command"),
        ("EXPIRE", "-9223372036854776", "ERR invalid expire time in 'expire' command"),
        ("EXPIREAT", "9223372036854776", "ERR invalid expire time in 'expireat' command"),
        ("PEXPIRE", "9223372036854775807", "ERR invalid expire time in 'pexpire' command"),
        ("EXPIRE", "9223372036854775", "ERR invalid expire time in 'expire' command"),
    ],
)
def test_expire_time_errors(h: Harness, cmd, when, error) -> None:
    h.run("SET", "k", "v")
    assert h.run(cmd, "k", when) == ErrorReply(error)
    assert h.run("TTL", "k") == -1


def test_expire_extreme_but_valid(h: Harness) -> None:
    h.run("SET", "k", "v")
    assert h.run("PEXPIREAT", "k", "9223372036854775807") == 1
    assert h.run("PEXPIRETIME", "k") == 9223372036854775807
    assert h.run("EXPIREAT", "k", "9223372036854775") == 1
    assert h.run("EXPIRE", "k", "-9223372036854775") == 1  # far past: deleted
    assert h.run("EXISTS", "k") == 0
    assert h.run("EXPIRE", "missing", "9223372036854776") == ErrorReply(errors.invalid_expire("expire"))


def test_persist(h: Harness) -> None:
    assert h.run("PERSIST", "k") == 0
    h.run("SET", "k", "v")
    assert h.run("PERSIST", "k") == 0
    h.run("EXPIRE", "k", 10)
    assert h.run("PERSIST", "k") == 1
    assert h.run("TTL", "k") == -1
    h.advance(20_000)
    assert h.run("GET", "k") == b"v"


def test_hash_ttl_survives_field_changes(h: Harness) -> None:
    h.run("HSET", "h", "f", "v")
    h.run("EXPIRE", "h", 100)
    h.run("HSET", "h", "g", "w")
    h.run("HDEL", "h", "f")
    assert h.run("TTL", "h") == 100
    h.advance(100_000)
    assert h.run("HGETALL", "h").items == []


# -- whole keyspace -----------------------------------------------------------------------------


def test_keys(h: Harness) -> None:
    h.run("MSET", "one", "1", "two", "2", "three", "3", "", "empty")
    h.run("HSET", "hash", "f", "v")
    assert sorted(h.run("KEYS", "*")) == [b"", b"hash", b"one", b"three", b"two"]
    assert sorted(h.run("KEYS", "t*")) == [b"three", b"two"]
    assert sorted(h.run("KEYS", "???")) == [b"one", b"two"]
    assert sorted(h.run("KEYS", "[ot]*")) == [b"one", b"three", b"two"]
    # Only exactly "*" is special-cased: "**" is matched, and no pattern but ""
    # matches the empty key.
    assert sorted(h.run("KEYS", "**")) == [b"hash", b"one", b"three", b"two"]
    assert h.run("KEYS", "") == [b""]
    assert h.run("KEYS", "nothing") == []
    h.run("PEXPIRE", "one", 5)
    h.advance(5)
    assert sorted(h.run("KEYS", "*")) == [b"", b"hash", b"three", b"two"]


def test_scan_full_iteration(h: Harness) -> None:
    keys = {b"key:%d" % i for i in range(250)}
    for key in keys:
        h.run("SET", key, "v")
    for i in range(20):
        h.run("HSET", b"h:%d" % i, "f", "v")
    seen: list[bytes] = []
    cursor = b"0"
    calls = 0
    while True:
        cursor, found = h.run("SCAN", cursor, "MATCH", "key:*", "COUNT", 7)
        seen.extend(found)
        calls += 1
        if cursor == b"0":
            break
    assert set(seen) == keys and len(seen) == len(keys)
    assert calls > 10


def test_scan_is_stable_under_writes(h: Harness) -> None:
    stable = {b"s%d" % i for i in range(100)}
    for key in stable:
        h.run("SET", key, "v")
    seen = set()
    cursor = b"0"
    i = 0
    while True:
        cursor, found = h.run("SCAN", cursor, "COUNT", 5)
        seen.update(found)
        h.run("SET", b"new%d" % i, "v")  # keys come and go during the scan
        h.run("DEL", b"new%d" % (i - 3))
        i += 1
        if cursor == b"0":
            break
    assert stable <= seen


def test_scan_type_filter(h: Harness) -> None:
    h.run("MSET", "s1", "1", "s2", "2")
    h.run("HSET", "h1", "f", "v")
    ctx = h.context()
    ctx.set(b"n1", KIND_NATIVE, {"x": 1}, None)
    ctx.finish()

    def all_of(*extra):
        cursor, found = h.run("SCAN", 0, "COUNT", 1000, *extra)
        assert cursor == b"0"
        return sorted(found)

    assert all_of() == [b"h1", b"n1", b"s1", b"s2"]
    assert all_of("TYPE", "string") == [b"n1", b"s1", b"s2"]
    assert all_of("TYPE", "STRING") == [b"n1", b"s1", b"s2"]
    assert all_of("TYPE", "hash") == [b"h1"]
    assert all_of("TYPE", "list") == []
    assert all_of("TYPE", "nonsense") == []  # Redis 7.0 does not reject unknown names
    assert all_of("MATCH", "s*", "TYPE", "string") == [b"s1", b"s2"]


@pytest.mark.parametrize(
    "args,error",
    [
        (["x"], "ERR invalid cursor"),
        ([" 1"], "ERR invalid cursor"),
        (["1 "], "ERR invalid cursor"),
        (["18446744073709551616"], "ERR invalid cursor"),
        (["0x1"], "ERR invalid cursor"),
        (["+"], "ERR invalid cursor"),
        (["x", "COUNT", "0"], "ERR invalid cursor"),  # the cursor is checked first
        (["0", "COUNT", "0"], errors.SYNTAX),
        (["0", "COUNT", "-1"], errors.SYNTAX),
        (["0", "COUNT", "x"], errors.NOT_INTEGER),
        (["0", "COUNT"], errors.SYNTAX),
        (["0", "MATCH"], errors.SYNTAX),
        (["0", "TYPE"], errors.SYNTAX),
        (["0", "FOO", "bar"], errors.SYNTAX),
    ],
)
def test_scan_errors(h: Harness, args, error) -> None:
    assert h.run("SCAN", *args) == ErrorReply(error)


@pytest.mark.parametrize(
    "text,value",
    [
        (b"0", 0), (b"", 0), (b"00", 0), (b"+5", 5), (b"-0", 0), (b"-1", 2**64 - 1),
        (b"18446744073709551615", 2**64 - 1), (b"-18446744073709551615", 1), (b"7\x00junk", 7),
    ],
)
def test_parse_cursor(text, value) -> None:
    assert parse_cursor(text) == value


@pytest.mark.parametrize("text", [b"x", b" 1", b"\t1", b"1 ", b"+", b"-", b"18446744073709551616", b"1.0", b"0x1"])
def test_parse_cursor_rejects(text) -> None:
    with pytest.raises(CommandError) as info:
        parse_cursor(text)
    assert info.value.text == "ERR invalid cursor"


def test_randomkey_dbsize(h: Harness) -> None:
    assert h.run("RANDOMKEY") is None
    assert h.run("DBSIZE") == 0
    h.run("MSET", "a", "1", "b", "2", "c", "3")
    assert h.run("DBSIZE") == 3
    picks = {h.run("RANDOMKEY") for _ in range(60)}
    assert picks == {b"a", b"b", b"c"}
    # Same seed, same picks: commands draw only from the context's random source.
    assert _picks(7) == _picks(7)


def _picks(seed: int) -> list[bytes]:
    h = Harness(seed=seed)
    h.run("MSET", "a", "1", "b", "2", "c", "3", "d", "4")
    return [h.run("RANDOMKEY") for _ in range(10)]


def test_randomkey_skips_expired(h: Harness) -> None:
    h.run("SET", "gone", "v", "PX", "1")
    h.run("SET", "here", "v")
    h.advance(1)
    assert {h.run("RANDOMKEY") for _ in range(20)} == {b"here"}


@pytest.mark.parametrize("cmd", ["FLUSHDB", "FLUSHALL"])
def test_flush(h: Harness, cmd) -> None:
    for extra in ([], ["SYNC"], ["async"]):
        h.run("MSET", "a", "1", "b", "2")
        assert h.run(cmd, *extra) == OK
        assert h.run("DBSIZE") == 0
    h.run("SET", "a", "1")
    assert h.run(cmd, "FOO") == SYNTAX
    assert h.run(cmd, "ASYNC", "SYNC") == SYNTAX
    assert h.run("DBSIZE") == 1
