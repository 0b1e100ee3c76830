"""Hash commands through their handlers (see harness.py)."""

from __future__ import annotations

import pytest

from makod.kv.records import KIND_NATIVE, OP_HDEL, OP_HSET
from makod.kv import errors
from makod.kv.types import hashes
from makod.kv.replies import OK, ErrorReply, Map, Pairs
from makod.kv.table import TABLE
from tests.unit.harness import Harness

WRONGTYPE = ErrorReply(errors.WRONGTYPE)
SYNTAX = ErrorReply(errors.SYNTAX)
NOT_INTEGER = ErrorReply(errors.NOT_INTEGER)


@pytest.mark.parametrize(
    "name,arity,flags",
    [
        ("hset", -4, {"write", "denyoom", "fast"}),
        ("hsetnx", 4, {"write", "denyoom", "fast"}),
        ("hget", 3, {"readonly", "fast"}),
        ("hmset", -4, {"write", "denyoom", "fast"}),
        ("hmget", -3, {"readonly", "fast"}),
        ("hdel", -3, {"write", "fast"}),
        ("hexists", 3, {"readonly", "fast"}),
        ("hlen", 2, {"readonly", "fast"}),
        ("hkeys", 2, {"readonly"}),
        ("hvals", 2, {"readonly"}),
        ("hgetall", 2, {"readonly"}),
        ("hincrby", 4, {"write", "denyoom", "fast"}),
        ("hincrbyfloat", 4, {"write", "denyoom", "fast"}),
        ("hstrlen", 3, {"readonly", "fast"}),
        ("hscan", -3, {"readonly"}),
        ("hrandfield", -2, {"readonly"}),
    ],
)
def test_table_entries(name, arity, flags) -> None:
    spec = TABLE.lookup(name.encode())
    assert spec is not None and spec.group == "hash" and spec.scope == "data"
    assert spec.arity == arity and spec.flags == flags
    assert (spec.first_key, spec.last_key, spec.key_step) == (1, 1, 1)


def test_hset_hget(h: Harness) -> None:
    assert h.run("HSET", "h", "f", "v") == 1
    assert h.run("HSET", "h", "f", "w", "g", "x") == 1
    assert h.run("HSET", "h", "a", "1", "a", "2") == 1  # the last value wins
    assert h.run("HGET", "h", "f") == b"w"
    assert h.run("HGET", "h", "a") == b"2"
    assert h.run("HGET", "h", "nope") is None
    assert h.run("HGET", "nope", "f") is None
    assert h.run("HSET", "h", "f") == ErrorReply("ERR wrong number of arguments for 'hset' command")
    assert h.run("HSET", "h", "f", "v", "g") == ErrorReply("ERR wrong number of arguments for 'hset' command")
    assert h.run("HMSET", "h", "f", "v", "g") == ErrorReply("ERR wrong number of arguments for 'hmset' command")
    assert h.run("HMSET", "h", "m", "1", "n", "2") == OK
    assert h.run("HLEN", "h") == 5


def test_order_is_insertion_order(h: Harness) -> None:
    h.run("HSET", "h", "c", "1", "a", "2", "b", "3")
    h.run("HSET", "h", "a", "updated")  # keeps its place
    h.run("HDEL", "h", "c")
    h.run("HSET", "h", "c", "back")  # goes last
    assert h.run("HKEYS", "h") == [b"a", b"b", b"c"]
    assert h.run("HVALS", "h") == [b"updated", b"3", b"back"]
    assert h.run("HGETALL", "h") == Map([(b"a", b"updated"), (b"b", b"3"), (b"c", b"back")])


def test_hgetall_wire(h: Harness) -> None:
    h.run("HSET", "h", "f", "v")
    assert h.wire("HGETALL", "h") == b"*2\r\n$1\r\nf\r\n$1\r\nv\r\n"
    assert h.wire("HGETALL", "h", proto=3) == b"%1\r\n$1\r\nf\r\n$1\r\nv\r\n"
    assert h.wire("HGETALL", "nope") == b"*0\r\n"
    assert h.wire("HGETALL", "nope", proto=3) == b"%0\r\n"


def test_hsetnx(h: Harness) -> None:
    assert h.run("HSETNX", "h", "f", "1") == 1
    assert h.run("HSETNX", "h", "f", "2") == 0
    assert h.run("HGET", "h", "f") == b"1"
    assert h.run("HSETNX", "h", "g", "3") == 1


def test_hmget_hexists_hstrlen_hlen(h: Harness) -> None:
    h.run("HSET", "h", "f", "hello", "g", "")
    assert h.run("HMGET", "h", "f", "nope", "g", "f") == [b"hello", None, b"", b"hello"]
    assert h.run("HMGET", "nope", "a", "b") == [None, None]
    assert h.run("HEXISTS", "h", "f") == 1
    assert h.run("HEXISTS", "h", "nope") == 0
    assert h.run("HEXISTS", "nope", "f") == 0
    assert h.run("HSTRLEN", "h", "f") == 5
    assert h.run("HSTRLEN", "h", "g") == 0
    assert h.run("HSTRLEN", "h", "nope") == 0
    assert h.run("HSTRLEN", "nope", "f") == 0
    assert h.run("HLEN", "nope") == 0
    assert h.run("HKEYS", "nope") == []
    assert h.run("HVALS", "nope") == []


def test_hdel_removes_empty_hash(h: Harness) -> None:
    h.run("HSET", "h", "f", "1", "g", "2")
    assert h.run("HDEL", "h", "f", "f", "nope") == 1
    assert h.last_ctx.ops == [(OP_HDEL, b"h", [b"f"])]
    assert h.run("HDEL", "h", "nope") == 0
    assert h.last_ctx.ops == []  # nothing to delete: no op
    assert h.run("HDEL", "h", "g") == 1
    assert h.run("EXISTS", "h") == 0
    assert h.run("HDEL", "h", "g") == 0


def test_wrong_type_everywhere(h: Harness) -> None:
    h.run("SET", "s", "v")
    ctx = h.context()
    ctx.set(b"n", KIND_NATIVE, {"x": 1}, None)
    ctx.finish()
    for key in ("s", "n"):
        for cmd in (
            ("HSET", key, "f", "v"), ("HMSET", key, "f", "v"), ("HSETNX", key, "f", "v"), ("HGET", key, "f"),
            ("HMGET", key, "f"), ("HDEL", key, "f"), ("HEXISTS", key, "f"), ("HLEN", key), ("HKEYS", key),
            ("HVALS", key), ("HGETALL", key), ("HINCRBY", key, "f", "1"), ("HINCRBYFLOAT", key, "f", "1"),
            ("HSTRLEN", key, "f"), ("HSCAN", key, "0"), ("HSCAN", key, "0", "FOO"), ("HRANDFIELD", key),
            ("HRANDFIELD", key, "1"), ("HRANDFIELD", key, "1", "WITHVALUES"),
        ):
            assert h.run(*cmd) == WRONGTYPE, cmd
    assert h.run("GET", "s") == b"v"
    # Argument errors come before the type check where Redis does so.
    assert h.run("HINCRBY", "s", "f", "x") == NOT_INTEGER
    assert h.run("HINCRBYFLOAT", "s", "f", "x") == ErrorReply(errors.NOT_FLOAT)
    assert h.run("HSCAN", "s", "x") == ErrorReply(errors.INVALID_CURSOR)
    assert h.run("HRANDFIELD", "s", "x") == NOT_INTEGER


def test_hincrby(h: Harness) -> None:
    assert h.run("HINCRBY", "h", "n", 5) == 5
    assert h.last_ctx.ops == [(OP_HSET, b"h", {b"n": b"5"})]
    assert h.run("HINCRBY", "h", "n", -10) == -5
    assert h.run("HGET", "h", "n") == b"-5"
    assert h.run("HINCRBY", "h", "n", "x") == NOT_INTEGER
    assert h.run("HINCRBY", "h", "n", "1.5") == NOT_INTEGER
    h.run("HSET", "h", "s", "abc", "z", "007", "big", "9223372036854775807", "small", "-9223372036854775808")
    assert h.run("HINCRBY", "h", "s", 1) == ErrorReply("ERR hash value is not an integer")
    assert h.run("HINCRBY", "h", "z", 1) == ErrorReply(errors.HASH_NOT_INTEGER)
    assert h.run("HINCRBY", "h", "big", 1) == ErrorReply("ERR increment or decrement would overflow")
    assert h.run("HINCRBY", "h", "small", -1) == ErrorReply(errors.OVERFLOW)
    assert h.run("HINCRBY", "h", "big", -1) == 9223372036854775806
    assert h.run("HINCRBY", "missing", "f", "x") == NOT_INTEGER
    assert h.run("EXISTS", "missing") == 0


def test_hincrbyfloat(h: Harness) -> None:
    assert h.run("HINCRBYFLOAT", "h", "f", "0.1") == b"0.1"
    assert h.run("HINCRBYFLOAT", "h", "f", "0.2") == b"0.3"
    assert h.run("HGET", "h", "f") == b"0.3"
    # long double noise shows at 17 decimals; Redis 7.0 answers the same text
    assert h.run("HINCRBYFLOAT", "h", "f", "5.0e3") == b"5000.29999999999999982"
    assert h.wire("HINCRBYFLOAT", "h", "g", "1.5", proto=3) == b"$3\r\n1.5\r\n"
    assert h.run("HINCRBYFLOAT", "h", "f", "x") == ErrorReply("ERR value is not a valid float")
    assert h.run("HINCRBYFLOAT", "h", "f", "inf") == ErrorReply("ERR value is NaN or Infinity")
    assert h.run("HINCRBYFLOAT", "h", "f", "-inf") == ErrorReply(errors.HASH_INCR_NAN)
    assert h.run("HINCRBYFLOAT", "h", "f", "nan") == ErrorReply(errors.NOT_FLOAT)
    h.run("HSET", "h", "s", "abc", "i", "inf")
    assert h.run("HINCRBYFLOAT", "h", "s", "1") == ErrorReply("ERR hash value is not a float")
    assert h.run("HINCRBYFLOAT", "h", "i", "1") == ErrorReply("ERR increment would produce NaN or Infinity")


def test_hscan_small_hash(h: Harness) -> None:
    assert h.run("HSCAN", "nope", 0) == [b"0", []]
    assert h.run("HSCAN", "nope", 0, "FOO") == [b"0", []]  # options are not even parsed
    assert h.run("HSCAN", "nope", "x") == ErrorReply("ERR invalid cursor")
    h.run("HSET", "h", "a1", "1", "a2", "2", "b1", "3")
    assert h.run("HSCAN", "h", 0) == [b"0", [b"a1", b"1", b"a2", b"2", b"b1", b"3"]]
    assert h.run("HSCAN", "h", 12345, "COUNT", 1) == [b"0", [b"a1", b"1", b"a2", b"2", b"b1", b"3"]]
    assert h.run("HSCAN", "h", 0, "MATCH", "a*") == [b"0", [b"a1", b"1", b"a2", b"2"]]
    assert h.run("HSCAN", "h", 0, "MATCH", "?1") == [b"0", [b"a1", b"1", b"b1", b"3"]]
    assert h.run("HSCAN", "h", 0, "COUNT", 0) == SYNTAX
    assert h.run("HSCAN", "h", 0, "COUNT", "x") == NOT_INTEGER
    assert h.run("HSCAN", "h", 0, "TYPE", "string") == SYNTAX
    assert h.run("HSCAN", "h", 0, "MATCH") == SYNTAX
    assert h.run("HSCAN", "h", 0, "NOVALUES") == SYNTAX  # 7.4's option, not 7.0's


def _full_hscan(h: Harness, key: str, *opts) -> tuple[list[bytes], int]:
    seen: list[bytes] = []
    cursor = b"0"
    calls = 0
    while True:
        cursor, flat = h.run("HSCAN", key, cursor, *opts)
        assert len(flat) % 2 == 0
        seen.extend(flat[0::2])
        calls += 1
        if cursor == b"0":
            return seen, calls


def test_hscan_big_hash_paginates(h: Harness) -> None:
    fields = [b"field:%d" % i for i in range(1000)]
    for i in range(0, 1000, 100):
        h.run("HSET", "big", *[x for f in fields[i : i + 100] for x in (f, b"v")])
    seen, calls = _full_hscan(h, "big", "COUNT", 10)
    assert sorted(seen) == sorted(fields)
    assert len(seen) == len(fields)  # no field twice when nothing changes
    assert calls > 5
    seen, _ = _full_hscan(h, "big", "MATCH", "field:1*", "COUNT", 50)
    assert sorted(seen) == sorted(f for f in fields if f.startswith(b"field:1"))


def test_hscan_big_hash_stable_under_writes(h: Harness) -> None:
    stable = [b"s%d" % i for i in range(300)]
    h.run("HSET", "big", *[x for f in stable for x in (f, b"v")])
    seen = set()
    cursor = b"0"
    i = 0
    while True:
        cursor, flat = h.run("HSCAN", "big", cursor, "COUNT", 10)
        seen.update(flat[0::2])
        h.run("HSET", "big", b"new%d" % i, "v")
        h.run("HDEL", "big", b"new%d" % (i - 2))
        i += 1
        if cursor == b"0":
            break
    assert set(stable) <= seen


def test_hscan_position_collisions(h: Harness, monkeypatch) -> None:
    # Force many fields onto a few positions: each group must come back whole
    # and the scan must still end.
    monkeypatch.setattr(hashes, "scan_hash", lambda field: 1 + len(field) % 3)
    fields = [b"f" * n for n in range(1, 200)]
    h.run("HSET", "big", *[x for f in fields for x in (f, b"v")])
    seen, calls = _full_hscan(h, "big", "COUNT", 1)
    assert sorted(seen) == sorted(fields)
    assert calls <= 4


def test_hrandfield_single(h: Harness) -> None:
    assert h.run("HRANDFIELD", "nope") is None
    h.run("HSET", "h", "a", "1", "b", "2", "c", "3")
    picks = {h.run("HRANDFIELD", "h") for _ in range(50)}
    assert picks == {b"a", b"b", b"c"}


def test_hrandfield_count(h: Harness) -> None:
    assert h.run("HRANDFIELD", "nope", 5) == []
    assert h.run("HRANDFIELD", "nope", 5, "WITHVALUES") == []
    h.run("HSET", "h", "a", "1", "b", "2", "c", "3")
    assert h.run("HRANDFIELD", "h", 0) == []
    assert h.run("HRANDFIELD", "h", 3) == [b"a", b"b", b"c"]  # whole hash, in order
    assert h.run("HRANDFIELD", "h", 10) == [b"a", b"b", b"c"]
    two = h.run("HRANDFIELD", "h", 2)
    assert len(two) == 2 and len(set(two)) == 2 and set(two) <= {b"a", b"b", b"c"}
    many = h.run("HRANDFIELD", "h", -10)
    assert len(many) == 10 and set(many) <= {b"a", b"b", b"c"}
    assert len(h.run("HRANDFIELD", "h", 1)) == 1
    pairs = h.run("HRANDFIELD", "h", -4, "WITHVALUES")
    assert isinstance(pairs, Pairs) and len(pairs.items) == 4
    assert all(dict(a=b"1", b=b"2", c=b"3")[f.decode()] == v for f, v in pairs.items)
    assert h.run("HRANDFIELD", "h", 3, "withvalues") == Pairs([(b"a", b"1"), (b"b", b"2"), (b"c", b"3")])


def test_hrandfield_wire(h: Harness) -> None:
    h.run("HSET", "h", "a", "1")
    assert h.wire("HRANDFIELD", "h", 1, "WITHVALUES") == b"*2\r\n$1\r\na\r\n$1\r\n1\r\n"
    assert h.wire("HRANDFIELD", "h", 1, "WITHVALUES", proto=3) == b"*1\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n"


def test_hrandfield_errors(h: Harness) -> None:
    h.run("HSET", "h", "a", "1")
    assert h.run("HRANDFIELD", "h", "x") == NOT_INTEGER
    assert h.run("HRANDFIELD", "h", 1, "FOO") == SYNTAX
    assert h.run("HRANDFIELD", "h", 1, "WITHVALUES", "x") == SYNTAX
    assert h.run("HRANDFIELD", "h", "-9223372036854775808") == ErrorReply(
        "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
    )
    assert h.run("HRANDFIELD", "h", "4611686018427387904", "WITHVALUES") == ErrorReply("ERR value is out of range")
    assert h.run("HRANDFIELD", "h", "-4611686018427387904", "WITHVALUES") == ErrorReply(errors.VALUE_OUT_OF_RANGE)
    # The count is checked before the key.
    assert h.run("HRANDFIELD", "nope", "4611686018427387904", "WITHVALUES") == ErrorReply(errors.VALUE_OUT_OF_RANGE)


def test_hrandfield_is_seeded() -> None:
    def picks(seed: int) -> list:
        h = Harness(seed=seed)
        h.run("HSET", "h", *[x for i in range(20) for x in (b"f%d" % i, b"v")])
        return [h.run("HRANDFIELD", "h", 5) for _ in range(5)]

    assert picks(3) == picks(3)


def test_hash_ttl_expiry(h: Harness) -> None:
    h.run("HSET", "h", "f", "v")
    h.run("PEXPIRE", "h", 10)
    h.advance(10)
    assert h.run("HGET", "h", "f") is None
    assert h.run("HSET", "h", "g", "w") == 1
    assert h.run("HGETALL", "h") == Map([(b"g", b"w")])
    assert h.run("TTL", "h") == -1
