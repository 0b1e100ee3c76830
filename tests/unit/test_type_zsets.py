"""Sorted set commands and ops through their handlers (see harness.py)."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from makod.kv import errors
from makod.kv.keyspace import Keyspace
from makod.kv.records import KIND_SET, KIND_ZSET, OPS, VALUE_TYPES, Record, value_to_wire
from makod.kv.replies import Double, ErrorReply, Pairs
from makod.kv.table import TABLE
from makod.kv.types import zsets
from makod.kv.types.zsets import OP_ZADD, OP_ZREM, ZSet, parse_score
from makod.storage.base import decode_record, encode_record
from tests.unit.harness import Harness

WRONGTYPE = ErrorReply(errors.WRONGTYPE)
SYNTAX = ErrorReply(errors.SYNTAX)


def wire(h: Harness, key: str) -> list:
    rec = h.ks.get(key.encode())
    return [] if rec is None else VALUE_TYPES[KIND_ZSET].to_wire(rec.value)


@pytest.mark.parametrize(
    "name,arity,flags,keys",
    [
        ("zadd", -4, {"write", "denyoom", "fast"}, (1, 1, 1)),
        ("zincrby", 4, {"write", "denyoom", "fast"}, (1, 1, 1)),
        ("zrem", -3, {"write", "fast"}, (1, 1, 1)),
        ("zcard", 2, {"readonly", "fast"}, (1, 1, 1)),
        ("zscore", 3, {"readonly", "fast"}, (1, 1, 1)),
        ("zmscore", -3, {"readonly", "fast"}, (1, 1, 1)),
        ("zrank", 3, {"readonly", "fast"}, (1, 1, 1)),
        ("zrevrank", 3, {"readonly", "fast"}, (1, 1, 1)),
        ("zcount", 4, {"readonly", "fast"}, (1, 1, 1)),
        ("zlexcount", 4, {"readonly", "fast"}, (1, 1, 1)),
        ("zrange", -4, {"readonly"}, (1, 1, 1)),
        ("zrangestore", -5, {"write", "denyoom"}, (1, 2, 1)),
        ("zrevrange", -4, {"readonly"}, (1, 1, 1)),
        ("zrangebyscore", -4, {"readonly"}, (1, 1, 1)),
        ("zrevrangebyscore", -4, {"readonly"}, (1, 1, 1)),
        ("zrangebylex", -4, {"readonly"}, (1, 1, 1)),
        ("zrevrangebylex", -4, {"readonly"}, (1, 1, 1)),
        ("zremrangebyrank", 4, {"write"}, (1, 1, 1)),
        ("zremrangebyscore", 4, {"write"}, (1, 1, 1)),
        ("zremrangebylex", 4, {"write"}, (1, 1, 1)),
        ("zpopmin", -2, {"write", "fast"}, (1, 1, 1)),
        ("zpopmax", -2, {"write", "fast"}, (1, 1, 1)),
        ("zunion", -3, {"readonly", "movablekeys"}, (0, 0, 0)),
        ("zinter", -3, {"readonly", "movablekeys"}, (0, 0, 0)),
        ("zdiff", -3, {"readonly", "movablekeys"}, (0, 0, 0)),
        ("zunionstore", -4, {"write", "denyoom", "movablekeys"}, (0, 0, 0)),
        ("zinterstore", -4, {"write", "denyoom", "movablekeys"}, (0, 0, 0)),
        ("zdiffstore", -4, {"write", "denyoom", "movablekeys"}, (0, 0, 0)),
        ("zintercard", -3, {"readonly", "movablekeys"}, (0, 0, 0)),
        ("zmpop", -4, {"write", "movablekeys"}, (0, 0, 0)),
        ("zrandmember", -2, {"readonly"}, (1, 1, 1)),
        ("zscan", -3, {"readonly"}, (1, 1, 1)),
    ],
)
def test_table_entries(name, arity, flags, keys) -> None:
    spec = TABLE.lookup(name.encode())
    assert spec is not None and spec.group == "sorted-set" and spec.scope == "data"
    assert spec.arity == arity
    assert spec.flags == flags
    assert (spec.first_key, spec.last_key, spec.key_step) == keys


def test_key_positions() -> None:
    assert TABLE.lookup(b"zunion").keys([b"ZUNION", b"2", b"a", b"b", b"WEIGHTS", b"1", b"2"]) == [b"a", b"b"]
    assert TABLE.lookup(b"zinterstore").keys([b"ZINTERSTORE", b"d", b"2", b"a", b"b"]) == [b"d", b"a", b"b"]
    assert TABLE.lookup(b"zintercard").keys([b"ZINTERCARD", b"x", b"a"]) == []
    assert TABLE.lookup(b"zrangestore").keys([b"ZRANGESTORE", b"d", b"s", b"0", b"1"]) == [b"d", b"s"]


def test_value_type_and_encoding() -> None:
    vtype = VALUE_TYPES[KIND_ZSET]
    assert vtype.name == "zset"
    z = vtype.empty()
    z.add(b"b", 1.0)
    z.add(b"a", 1.0)
    z.add(b"c", -2.0)
    assert vtype.to_wire(z) == [[b"c", -2.0], [b"a", 1.0], [b"b", 1.0]]
    assert vtype.to_wire(vtype.from_wire(vtype.to_wire(z))) == vtype.to_wire(z)
    copy = vtype.clone(z)
    copy.add(b"a", 9.0)
    assert z.scores[b"a"] == 1.0 and vtype.to_wire(z)[1] == [b"a", 1.0]
    assert vtype.size(z) == 3 and vtype.encoding(z) == "listpack"
    z.add(b"x" * 65, 0.0)
    assert vtype.encoding(z) == "skiplist"
    big = vtype.empty()
    for i in range(129):
        big.add(b"%d" % i, float(i))
    assert vtype.encoding(big) == "skiplist"


def test_codec_roundtrip() -> None:
    h = Harness()
    h.run("ZADD", "z", "1", "a", "-inf", "b", "2.5", "c", "inf", "d")
    rec = h.ks.get(b"z")
    back = decode_record(encode_record(rec))
    assert back.kind == KIND_ZSET and back.version == rec.version
    assert VALUE_TYPES[KIND_ZSET].to_wire(back.value) == wire(h, "z")
    assert isinstance(back.value, ZSet) and back.value.scores[b"b"] == -math.inf


def test_parse_score() -> None:
    assert parse_score(b"1") == 1.0
    assert parse_score(b"-inf") == -math.inf and parse_score(b"+inf") == math.inf
    assert parse_score(b"1e3") == 1000.0 and parse_score(b"0x10") == 16.0
    for bad in (b"", b"nan", b" 1", b"1 ", b"1_0", b"x", b"\xff"):
        assert parse_score(bad) is None


def test_zadd_options_and_errors() -> None:
    h = Harness()
    assert h.run("ZADD", "z", "1", "a", "2", "b") == 2
    assert h.run("ZADD", "z", "NX", "5", "a", "3", "c") == 1
    assert h.run("ZADD", "z", "XX", "CH", "5", "a", "3", "d") == 1
    assert h.run("ZADD", "z", "GT", "CH", "1", "a") == 0
    assert h.run("ZADD", "z", "LT", "CH", "1", "a") == 1
    assert h.run("ZADD", "z", "INCR", "2", "a").value == 3.0
    assert h.run("ZADD", "z", "INCR", "NX", "2", "a") is None
    assert h.run("ZADD", "z", "NX", "XX", "1", "a") == ErrorReply(zsets.XX_NX)
    assert h.run("ZADD", "z", "GT", "LT", "1", "a") == ErrorReply(errors.GT_LT_NX)
    assert h.run("ZADD", "z", "INCR", "1", "a", "2", "b") == ErrorReply(zsets.INCR_SINGLE)
    assert h.run("ZADD", "z", "nan", "a") == ErrorReply(errors.NOT_FLOAT)
    assert h.run("ZADD", "z", "1", "a", "2") == SYNTAX
    h.run("ZADD", "z", "inf", "a")
    assert h.run("ZINCRBY", "z", "-inf", "a") == ErrorReply(zsets.SCORE_NAN)
    assert wire(h, "z") == [[b"b", 2.0], [b"c", 3.0], [b"a", math.inf]]
    h.run("SET", "s", "x")
    assert h.run("ZADD", "s", "1", "a") == WRONGTYPE
    assert h.run("ZADD", "none", "XX", "1", "a") == 0 and h.ks.get(b"none") is None


def test_ranges() -> None:
    h = Harness()
    h.run("ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d")
    assert h.run("ZRANGE", "z", "1", "-2") == [b"b", b"c"]
    assert h.run("ZRANGE", "z", "0", "0", "REV") == [b"d"]
    reply = h.run("ZRANGE", "z", "(1", "3", "BYSCORE", "WITHSCORES")
    assert isinstance(reply, Pairs) and [(m, d.value) for m, d in reply.items] == [(b"b", 2.0), (b"c", 3.0)]
    assert h.run("ZRANGE", "z", "+inf", "-inf", "BYSCORE", "REV", "LIMIT", "1", "2") == [b"c", b"b"]
    assert h.run("ZRANGE", "z", "0", "1", "LIMIT", "0", "1") == ErrorReply(zsets.LIMIT_ONLY_BY)
    assert h.run("ZRANGE", "z", "-", "+", "BYLEX", "WITHSCORES") == ErrorReply(zsets.WITHSCORES_BYLEX)
    assert h.run("ZRANGEBYSCORE", "z", "x", "1") == ErrorReply(zsets.MINMAX_NOT_FLOAT)
    assert h.run("ZRANGEBYLEX", "z", "a", "b") == ErrorReply(zsets.MINMAX_NOT_LEX)
    assert h.run("ZRANGEBYLEX", "z", "[b", "(d") == [b"b", b"c"]
    assert h.run("ZREVRANGEBYLEX", "z", "+", "(b") == [b"d", b"c"]
    assert h.run("ZCOUNT", "z", "(1", "(4") == 2
    assert h.run("ZLEXCOUNT", "z", "-", "+") == 4
    assert h.run("ZRANK", "z", "c") == 2 and h.run("ZREVRANK", "z", "c") == 1
    assert h.run("ZRANGESTORE", "d", "z", "2", "3", "BYSCORE") == 2
    assert wire(h, "d") == [[b"b", 2.0], [b"c", 3.0]]
    assert h.run("ZRANGESTORE", "d", "z", "9", "10") == 0 and h.ks.get(b"d") is None


def test_pops_and_remranges_delete_empty_keys() -> None:
    h = Harness()
    h.run("ZADD", "z", "1", "a", "2", "b", "3", "c")
    reply = h.run("ZPOPMIN", "z")
    assert reply[0] == b"a" and isinstance(reply[1], Double)
    assert [m for m, _ in h.run("ZPOPMAX", "z", "5").items] == [b"c", b"b"]
    assert h.ks.get(b"z") is None
    h.run("ZADD", "z", "1", "a", "2", "b", "3", "c")
    assert h.run("ZREMRANGEBYRANK", "z", "0", "0") == 1
    assert h.run("ZREMRANGEBYSCORE", "z", "(2", "+inf") == 1
    assert h.run("ZREMRANGEBYLEX", "z", "-", "+") == 1
    assert h.ks.get(b"z") is None


def test_algebra_with_sets() -> None:
    h = Harness()
    h.run("ZADD", "z", "1", "a", "2", "b")
    h.run("SADD", "s", "b", "c")
    reply = h.run("ZUNION", "2", "z", "s", "WITHSCORES")
    assert [(m, d.value) for m, d in reply.items] == [(b"a", 1.0), (b"c", 1.0), (b"b", 3.0)]
    assert h.run("ZINTER", "2", "z", "s") == [b"b"]
    assert h.run("ZDIFF", "2", "z", "s") == [b"a"]
    assert h.run("ZINTERSTORE", "d", "2", "z", "s", "WEIGHTS", "2", "10", "AGGREGATE", "MAX") == 1
    assert wire(h, "d") == [[b"b", 10.0]]
    assert h.run("ZINTERCARD", "2", "z", "s") == 1
    assert h.ks.get(b"s").kind == KIND_SET


def test_op_undo_exact() -> None:
    z = ZSet()
    z.add(b"a", 1.0)
    before = VALUE_TYPES[KIND_ZSET].to_wire(z)
    spec = OPS[OP_ZADD]
    token = spec.apply(z, (OP_ZADD, b"k", [[b"a", 5.0], [b"b", 2.0], [b"a", 7.0]]))
    assert z.scores == {b"a": 7.0, b"b": 2.0}
    spec.undo(z, token)
    assert VALUE_TYPES[KIND_ZSET].to_wire(z) == before
    rem = OPS[OP_ZREM]
    token = rem.apply(z, (OP_ZREM, b"k", [b"a", b"zz"]))
    assert len(z) == 0
    rem.undo(z, token)
    assert VALUE_TYPES[KIND_ZSET].to_wire(z) == before
    assert rem.creates is False


_KEYS = st.sampled_from(["k1", "k2", "k3"])
_MEMBERS = st.sampled_from(["a", "b", "c", "d"])
_SCORES = st.sampled_from(["0", "1", "-2", "2.5", "inf", "-inf", "x"])
_BOUNDS = st.sampled_from(["0", "(1", "2", "-inf", "+inf"])
COMMAND = st.one_of(
    st.tuples(st.just("ZADD"), _KEYS, st.lists(st.sampled_from(["NX", "XX", "GT", "LT", "CH", "INCR"]), max_size=2, unique=True),
              st.lists(st.tuples(_SCORES, _MEMBERS), min_size=1, max_size=3).map(lambda ps: [x for p in ps for x in p])),
    st.tuples(st.just("ZINCRBY"), _KEYS, _SCORES, _MEMBERS),
    st.tuples(st.just("ZREM"), _KEYS, st.lists(_MEMBERS, min_size=1, max_size=3)),
    st.tuples(st.sampled_from(["ZPOPMIN", "ZPOPMAX"]), _KEYS, st.sampled_from(["1", "2"])),
    st.tuples(st.just("ZREMRANGEBYSCORE"), _KEYS, _BOUNDS, _BOUNDS),
    st.tuples(st.just("ZREMRANGEBYRANK"), _KEYS, st.sampled_from(["0", "1", "-1"]), st.sampled_from(["0", "-1", "2"])),
    st.tuples(st.just("ZREMRANGEBYLEX"), _KEYS, st.sampled_from(["-", "[b"]), st.sampled_from(["+", "(c"])),
    st.tuples(st.sampled_from(["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"]), _KEYS, st.just("2"), _KEYS, _KEYS),
    st.tuples(st.just("ZRANGESTORE"), _KEYS, _KEYS, st.just("0"), st.sampled_from(["0", "-1"])),
    st.tuples(st.just("SET"), _KEYS, st.just("v")),
)


def _flat(cmd) -> list:
    out = []
    for part in cmd:
        out.extend(part) if isinstance(part, list) else out.append(part)
    return out


def _state(ks: Keyspace) -> tuple:
    records = {
        key: (rec.kind, repr(value_to_wire(rec.kind, rec.value)), rec.expire_ms, rec.version)
        for key, rec in ks.data.items()
    }
    return records, dict(ks.tombstones)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=st.lists(COMMAND, min_size=1, max_size=25), seed=st.integers(0, 100))
def test_random_sequences_undo_replay_codec(script, seed) -> None:
    h = Harness(seed=seed)
    follower = Keyspace()
    for cmd in script:
        argv = _flat(cmd)
        before = _state(h.ks)
        h.run(*argv)
        ctx = h.last_ctx
        after = _state(h.ks)
        for op in ctx.ops:
            follower.apply(op, ctx.version, None)
        assert _state(follower)[0] == after[0], f"replay of {ctx.ops!r} after {argv!r} diverges"
        h.ks.rollback(list(ctx.undo))
        assert _state(h.ks) == before, f"undo of {argv!r} is not exact"
        for op in ctx.ops:
            h.ks.apply(op, ctx.version, None)
        assert _state(h.ks)[0] == after[0]
        for rec in h.ks.data.values():
            back = decode_record(encode_record(rec))
            assert back.kind == rec.kind and back.version == rec.version
            if rec.kind == KIND_ZSET:
                assert VALUE_TYPES[KIND_ZSET].to_wire(back.value) == VALUE_TYPES[KIND_ZSET].to_wire(rec.value)
                assert len(rec.value) > 0 and len(rec.value.order) == len(rec.value.scores)


def test_zscan_big_set_full_iteration() -> None:
    h = Harness()
    h.run("ZADD", "z", *[x for i in range(300) for x in (str(i), "m%d" % i)])
    seen: dict[bytes, bytes] = {}
    cursor = b"0"
    for _ in range(1000):
        cursor, page = h.run("ZSCAN", "z", cursor, "COUNT", "20")
        seen.update(zip(page[0::2], page[1::2]))
        if cursor == b"0":
            break
    assert len(seen) == 300 and seen[b"m7"] == b"7"
    small = Harness()
    small.run("ZADD", "s", "2.5", "b", "1", "a")
    assert small.run("ZSCAN", "s", "0") == [b"0", [b"a", b"1", b"b", b"2.5"]]
    assert small.run("ZSCAN", "s", "0", "MATCH", "b") == [b"0", [b"b", b"2.5"]]


def test_zrandmember_whole_set_is_descending() -> None:
    h = Harness()
    h.run("ZADD", "z", "1", "a", "3", "c", "2", "b")
    assert h.run("ZRANDMEMBER", "z", "10") == [b"c", b"b", b"a"]
    assert len(h.run("ZRANDMEMBER", "z", "-7")) == 7
    assert len(set(h.run("ZRANDMEMBER", "z", "2"))) == 2
    assert h.run("ZRANDMEMBER", "z") in (b"a", b"b", b"c")
