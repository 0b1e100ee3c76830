"""Set commands and ops through their handlers (see harness.py)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from makod.kv import errors
from makod.kv.keyspace import Keyspace
from makod.kv.records import KIND_SET, OP_DEL, OP_SET, OPS, VALUE_TYPES, Record, value_to_wire
from makod.kv.replies import ErrorReply, Set
from makod.kv.table import TABLE
from makod.kv.types import sets
from makod.kv.types.sets import OP_SADD, OP_SREM, IndexedSet
from makod.storage.base import decode_record, encode_record
from tests.unit.harness import Harness

WRONGTYPE = ErrorReply(errors.WRONGTYPE)
SYNTAX = ErrorReply(errors.SYNTAX)
NOT_INTEGER = ErrorReply(errors.NOT_INTEGER)
NOT_POSITIVE = ErrorReply(errors.COUNT_NOT_POSITIVE)


def members(h: Harness, key: str) -> list[bytes]:
    rec = h.ks.get(key.encode())
    return [] if rec is None else list(rec.value)


@pytest.mark.parametrize(
    "name,arity,flags,keys",
    [
        ("sadd", -3, {"write", "denyoom", "fast"}, (1, 1, 1)),
        ("srem", -3, {"write", "fast"}, (1, 1, 1)),
        ("smembers", 2, {"readonly"}, (1, 1, 1)),
        ("sismember", 3, {"readonly", "fast"}, (1, 1, 1)),
        ("smismember", -3, {"readonly", "fast"}, (1, 1, 1)),
        ("scard", 2, {"readonly", "fast"}, (1, 1, 1)),
        ("spop", -2, {"write", "fast"}, (1, 1, 1)),
        ("srandmember", -2, {"readonly"}, (1, 1, 1)),
        ("smove", 4, {"write", "fast"}, (1, 2, 1)),
        ("sinter", -2, {"readonly"}, (1, -1, 1)),
        ("sunion", -2, {"readonly"}, (1, -1, 1)),
        ("sdiff", -2, {"readonly"}, (1, -1, 1)),
        ("sinterstore", -3, {"write", "denyoom"}, (1, -1, 1)),
        ("sunionstore", -3, {"write", "denyoom"}, (1, -1, 1)),
        ("sdiffstore", -3, {"write", "denyoom"}, (1, -1, 1)),
        ("sintercard", -3, {"readonly", "movablekeys"}, (0, 0, 0)),
        ("sscan", -3, {"readonly"}, (1, 1, 1)),
    ],
)
def test_table_entries(name, arity, flags, keys) -> None:
    spec = TABLE.lookup(name.encode())
    assert spec is not None and spec.group == "set" and spec.scope == "data"
    assert spec.arity == arity
    assert spec.flags == flags
    assert (spec.first_key, spec.last_key, spec.key_step) == keys


def test_key_positions() -> None:
    card = TABLE.lookup(b"sintercard")
    assert card.keys([b"SINTERCARD", b"2", b"a", b"b", b"LIMIT", b"1"]) == [b"a", b"b"]
    assert card.keys([b"SINTERCARD", b"x", b"a"]) == []
    assert TABLE.lookup(b"smove").keys([b"SMOVE", b"a", b"b", b"m"]) == [b"a", b"b"]
    assert TABLE.lookup(b"sinterstore").keys([b"SINTERSTORE", b"d", b"a", b"b"]) == [b"d", b"a", b"b"]


# -- the value type -------------------------------------------------------------------------


def test_value_type() -> None:
    vtype = VALUE_TYPES[KIND_SET]
    assert vtype.name == "set"
    value = IndexedSet([b"b", b"a"])
    assert vtype.to_wire(value) == [b"b", b"a"]
    assert vtype.to_wire({b"b": None, b"a": None}) == [b"b", b"a"]  # what SINTERSTORE & co. hand ctx.set
    assert vtype.from_wire([bytearray(b"b"), b"a"]) == value
    assert list(vtype.from_wire(vtype.to_wire(value))) == [b"b", b"a"]
    # Old checkpoints hold the same list; a duplicate (never written) keeps its first place.
    assert vtype.from_wire([b"b", b"a", b"b"]) == value
    clone = vtype.clone(value)
    clone.add(b"c")
    clone.remove(b"b")
    assert b"c" not in value and list(value) == [b"b", b"a"] and value.index == {b"b": 0, b"a": 1}
    assert vtype.size(value) == 2 and vtype.size(vtype.empty()) == 0


def test_encoding() -> None:
    vtype = VALUE_TYPES[KIND_SET]
    assert vtype.encoding(IndexedSet([b"1", b"-5", b"9223372036854775807"])) == "intset"
    assert vtype.encoding(IndexedSet([b"1", b"a"])) == "hashtable"
    assert vtype.encoding(IndexedSet([b"01"])) == "hashtable"
    assert vtype.encoding(IndexedSet([b"9223372036854775808"])) == "hashtable"
    assert vtype.encoding(IndexedSet(b"%d" % i for i in range(512))) == "intset"
    assert vtype.encoding(IndexedSet(b"%d" % i for i in range(513))) == "hashtable"
    h = Harness()
    h.run("SADD", "s", 3, 1)
    assert h.run("OBJECT", "ENCODING", "s") == b"intset"
    h.run("SADD", "s", "x")
    assert h.run("OBJECT", "ENCODING", "s") == b"hashtable"


def test_record_codec_roundtrip() -> None:
    rec = Record(KIND_SET, IndexedSet([b"z", b"1", b"", b"\x00\xff"]), 123, 7, None)
    back = decode_record(encode_record(rec))
    assert back.kind == KIND_SET and back.expire_ms == 123 and back.version == 7
    assert list(back.value) == list(rec.value)
    assert back.value is not rec.value


# -- ops ------------------------------------------------------------------------------------


def test_sadd_op_apply_undo() -> None:
    spec = OPS[OP_SADD]
    value = IndexedSet([b"a"])
    token = spec.apply(value, (OP_SADD, b"k", [b"b", b"a", b"c", b"b"]))
    assert token == [b"b", b"c"] and list(value) == [b"a", b"b", b"c"]
    spec.undo(value, token)
    assert list(value) == [b"a"]


def test_srem_op_undo_restores_order() -> None:
    spec = OPS[OP_SREM]
    assert not spec.creates
    value = IndexedSet([b"a", b"b", b"c", b"d", b"e"])
    token = spec.apply(value, (OP_SREM, b"k", [b"d", b"zz", b"a", b"d"]))
    # d goes (e fills its place), then a (e again, from the end).
    assert list(value) == [b"e", b"b", b"c"]
    spec.undo(value, token)
    assert list(value) == [b"a", b"b", b"c", b"d", b"e"]
    empty_token = spec.apply(value, (OP_SREM, b"k", [b"nope"]))
    spec.undo(value, empty_token)
    assert list(value) == [b"a", b"b", b"c", b"d", b"e"]


def test_logged_ops() -> None:
    h = Harness()
    h.run("SADD", "s", "a", "b", "a")
    assert h.last_ctx.ops == [(OP_SADD, b"s", [b"a", b"b"])]
    h.run("SADD", "s", "a")
    assert h.last_ctx.ops == []
    h.run("SREM", "s", "a", "x")
    assert h.last_ctx.ops == [(OP_SREM, b"s", [b"a"])]
    popped = h.run("SPOP", "s")
    assert popped == b"b"
    assert h.last_ctx.ops == [(OP_DEL, b"s")]  # it emptied the set
    h.run("SADD", "a", 1, 2)
    h.run("SUNIONSTORE", "d", "a")
    assert h.last_ctx.ops == [(OP_SET, b"d", KIND_SET, [b"1", b"2"], None)]
    h.run("SMOVE", "a", "b", 1)
    assert h.last_ctx.ops == [(OP_SREM, b"a", [b"1"]), (OP_SADD, b"b", [b"1"])]


# -- commands -------------------------------------------------------------------------------


def test_sadd_srem_scard() -> None:
    h = Harness()
    assert h.run("SADD", "s", "a", "b", "a") == 2
    assert h.run("SADD", "s", "b", "c") == 1
    assert h.run("SCARD", "s") == 3
    assert h.run("SREM", "s", "a", "a", "zz") == 1
    assert h.run("SREM", "nope", "a") == 0
    assert h.run("SREM", "s", "b", "c") == 2
    assert h.run("EXISTS", "s") == 0
    assert h.run("SCARD", "s") == 0


def test_reply_types_and_order() -> None:
    h = Harness()
    h.run("SADD", "i", 10, -2, 3)
    h.run("SADD", "s", "b", "a", 1)
    smembers = h.run("SMEMBERS", "i")
    assert isinstance(smembers, Set) and smembers.members == [b"-2", b"3", b"10"]
    assert h.run("SMEMBERS", "s").members == [b"b", b"a", b"1"]
    assert h.wire("SMEMBERS", "nope", proto=3) == b"~0\r\n"
    assert h.wire("SMEMBERS", "i", proto=2).startswith(b"*3\r\n")
    assert h.wire("SINTER", "i", "s", proto=3) == b"~0\r\n"
    assert h.wire("SUNION", "i", proto=3).startswith(b"~3\r\n")
    assert h.wire("SDIFF", "i", proto=3).startswith(b"~3\r\n")
    assert h.wire("SPOP", "nope", 2, proto=3) == b"~0\r\n"
    assert h.wire("SRANDMEMBER", "i", 2, proto=3).startswith(b"*2\r\n")
    assert h.wire("SRANDMEMBER", "i", -5, proto=3).startswith(b"*5\r\n")
    assert h.run("SRANDMEMBER", "i", 10) == [b"-2", b"3", b"10"]
    assert h.run("SMISMEMBER", "s", "a", "x", 1) == [1, 0, 1]
    assert h.run("SMISMEMBER", "nope", "a", "x") == [0, 0]
    assert h.run("SISMEMBER", "i", "03") == 0


def test_wrongtype() -> None:
    h = Harness()
    h.run("SET", "str", "v")
    h.run("SADD", "s", "a")
    for argv in [
        ("SADD", "str", "a"), ("SREM", "str", "a"), ("SMEMBERS", "str"), ("SISMEMBER", "str", "a"),
        ("SMISMEMBER", "str", "a"), ("SCARD", "str"), ("SPOP", "str"), ("SPOP", "str", 1),
        ("SRANDMEMBER", "str"), ("SRANDMEMBER", "str", 2), ("SINTER", "nope", "str"), ("SUNION", "s", "str"),
        ("SDIFF", "nope", "str"), ("SINTERSTORE", "d", "nope", "str"), ("SINTERCARD", 2, "nope", "str"),
        ("SMOVE", "str", "s", "a"), ("SMOVE", "s", "str", "a"), ("SSCAN", "str", 0),
    ]:
        assert h.run(*argv) == WRONGTYPE, argv
    assert h.run("SMOVE", "nope", "str", "a") == 0
    assert members(h, "s") == [b"a"]


def test_count_errors() -> None:
    h = Harness()
    h.run("SADD", "s", "a")
    assert h.run("SPOP", "s", -1) == NOT_POSITIVE
    assert h.run("SPOP", "s", "x") == NOT_POSITIVE
    assert h.run("SPOP", "s", 1, 2) == SYNTAX
    assert h.run("SRANDMEMBER", "s", "x") == NOT_INTEGER
    assert h.run("SRANDMEMBER", "s", 1, 2) == SYNTAX
    assert h.run("SRANDMEMBER", "s", "-9223372036854775808") == ErrorReply(
        errors.value_out_of_range_between(-(2**63 - 1), 2**63 - 1)
    )
    assert h.run("SINTERCARD", 0, "s") == ErrorReply(sets.NUMKEYS_NOT_POSITIVE)
    assert h.run("SINTERCARD", 2, "s") == ErrorReply(sets.NUMKEYS_TOO_MANY)
    assert h.run("SINTERCARD", 1, "s", "LIMIT", -1) == ErrorReply(errors.LIMIT_NEGATIVE)
    assert h.run("SINTERCARD", 1, "s", "LIMIT") == SYNTAX


def test_spop_srandmember_shapes() -> None:
    h = Harness(seed=3)
    h.run("SADD", "s", *range(10))
    picked = h.run("SPOP", "s", 4)
    assert isinstance(picked, Set) and len(set(picked.members)) == 4
    assert h.run("SCARD", "s") == 6
    assert not set(picked.members) & set(members(h, "s"))
    rand = h.run("SRANDMEMBER", "s", 3)
    assert len(set(rand)) == 3 and set(rand) <= set(members(h, "s"))
    rep = h.run("SRANDMEMBER", "s", -20)
    assert len(rep) == 20 and set(rep) <= set(members(h, "s"))
    assert h.run("SPOP", "s", 0).members == []
    rest = h.run("SPOP", "s", 100)
    assert len(rest.members) == 6 and h.run("EXISTS", "s") == 0
    assert h.run("SPOP", "s") is None
    assert h.run("SRANDMEMBER", "s") is None


def test_smove() -> None:
    h = Harness()
    h.run("SADD", "a", "x", "y")
    h.run("SADD", "b", "y")
    assert h.run("SMOVE", "a", "b", "y") == 1
    assert members(h, "a") == [b"x"] and members(h, "b") == [b"y"]
    assert h.run("SMOVE", "a", "a", "x") == 1
    assert h.run("SMOVE", "a", "a", "q") == 0
    assert h.run("SMOVE", "a", "c", "x") == 1
    assert h.run("EXISTS", "a") == 0 and members(h, "c") == [b"x"]


def test_algebra_and_store() -> None:
    h = Harness()
    h.run("SADD", "a", 1, 2, 3, "x")
    h.run("SADD", "b", 2, 3, "x", "y")
    assert sorted(h.run("SINTER", "a", "b").members) == [b"2", b"3", b"x"]
    assert h.run("SINTER", "a", "nope").members == []
    assert h.run("SINTERCARD", 2, "a", "b") == 3
    assert h.run("SINTERCARD", 2, "a", "b", "LIMIT", 2) == 2
    assert sorted(h.run("SUNION", "a", "b", "nope").members) == [b"1", b"2", b"3", b"x", b"y"]
    assert h.run("SDIFF", "a", "b").members == [b"1"]
    assert h.run("SDIFF", "a", "a").members == []
    h.run("SET", "d", "v", "EX", 100)
    assert h.run("SINTERSTORE", "d", "a", "b") == 3
    assert h.run("TYPE", "d").text == "set" and h.run("TTL", "d") == -1
    assert h.run("SDIFFSTORE", "d", "a", "a") == 0 and h.run("EXISTS", "d") == 0
    assert h.run("SUNIONSTORE", "a", "a", "b") == 5
    assert sorted(members(h, "a")) == [b"1", b"2", b"3", b"x", b"y"]


def test_sscan() -> None:
    h = Harness()
    h.run("SADD", "i", 3, 1, 2)
    assert h.run("SSCAN", "i", 0) == [b"0", [b"1", b"2", b"3"]]
    assert h.run("SSCAN", "i", 0, "MATCH", "[12]") == [b"0", [b"1", b"2"]]
    assert h.run("SSCAN", "nope", 0) == [b"0", []]
    assert h.run("SSCAN", "i", "x") == ErrorReply(errors.INVALID_CURSOR)
    assert h.run("SSCAN", "i", 0, "COUNT", 0) == SYNTAX
    big = [b"m%d" % i for i in range(1000)]
    h.run("SADD", "big", *big)
    seen: list[bytes] = []
    cursor = b"0"
    for _ in range(10_000):
        cursor, page = h.run("SSCAN", "big", cursor, "COUNT", 20)
        seen.extend(page)
        if cursor == b"0":
            break
    assert sorted(set(seen)) == sorted(big) and len(seen) == len(big)


# -- undo, replay and codec over random command sequences ----------------------------------

KEYS = ["a", "b", "c"]
MEMBERS = ["1", "2", "10", "-3", "x", "y", ""]
key = st.sampled_from(KEYS)
member = st.sampled_from(MEMBERS)
mems = st.lists(member, min_size=1, max_size=4)
key_list = st.lists(key, min_size=1, max_size=3)

COMMAND = st.one_of(
    st.tuples(st.just("SADD"), key, mems),
    st.tuples(st.just("SADD"), key, mems),
    st.tuples(st.just("SREM"), key, mems),
    st.tuples(st.just("SPOP"), key),
    st.tuples(st.just("SPOP"), key, st.integers(0, 5)),
    st.tuples(st.just("SMOVE"), key, key, member),
    st.tuples(st.just("SINTERSTORE"), key, key_list),
    st.tuples(st.just("SUNIONSTORE"), key, key_list),
    st.tuples(st.just("SDIFFSTORE"), key, key_list),
    st.tuples(st.just("SRANDMEMBER"), key, st.integers(-3, 3)),
    st.tuples(st.just("SMEMBERS"), key),
    st.tuples(st.just("SET"), key, st.just("str")),
    st.tuples(st.just("EXPIRE"), key, st.just(100)),
    st.tuples(st.just("DEL"), key),
)


def _flat(cmd) -> list:
    out = []
    for part in cmd:
        out.extend(part) if isinstance(part, list) else out.append(part)
    return out


def _state(ks: Keyspace) -> tuple:
    records = {
        key: (rec.kind, tuple(value_to_wire(rec.kind, rec.value)) if rec.kind == KIND_SET else rec.value,
              rec.expire_ms, rec.version)
        for key, rec in ks.data.items()
    }
    return records, dict(ks.tombstones)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=st.lists(COMMAND, min_size=1, max_size=30), seed=st.integers(0, 100))
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
        undo = list(ctx.undo)
        h.ks.rollback(undo)
        assert _state(h.ks) == before, f"undo of {argv!r} is not exact"
        for op in ctx.ops:
            h.ks.apply(op, ctx.version, None)
        assert _state(h.ks)[0] == after[0]
        for rec in h.ks.data.values():
            back = decode_record(encode_record(rec))
            assert back.kind == rec.kind and back.version == rec.version and back.expire_ms == rec.expire_ms
            if rec.kind == KIND_SET:
                assert list(back.value) == list(rec.value)
                assert len(rec.value) > 0  # an empty set is never kept


def test_srem_op_many_members_undo() -> None:
    spec = OPS[OP_SREM]
    original = [b"m%d" % i for i in range(50)]
    value = IndexedSet(original)
    gone = original[::3] + [b"absent"]
    token = spec.apply(value, (OP_SREM, b"k", list(reversed(gone))))
    assert sorted(value) == sorted(m for m in original if m not in gone)
    assert all(value.members[i] == m for m, i in value.index.items())
    spec.undo(value, token)
    assert list(value) == original and value.index == {m: i for i, m in enumerate(original)}


# -- O(1) per member --------------------------------------------------------------------------


class _NoWalk(IndexedSet):
    """An IndexedSet that fails if anything iterates it (same layout: no new slots)."""

    __slots__ = ()

    def __iter__(self):
        raise AssertionError("the set was walked")


def test_spop_srandmember_srem_sadd_do_not_walk_a_big_set() -> None:
    # SPOP used to walk the set to its i-th member and SREM's undo token
    # recorded each member's position by another walk: O(n) per call. Now
    # nothing iterates the value, and the undo token is one (index, member).
    h = Harness(seed=3)
    n = 50_000
    for start in range(0, n, 5_000):
        h.run("SADD", "s", *[b"m%d" % i for i in range(start, start + 5_000)])
    value = h.ks.get(b"s").value
    value.__class__ = _NoWalk
    tokens = []
    for argv in (["SPOP", "s"], ["SRANDMEMBER", "s"], ["SREM", "s", "m7"], ["SADD", "s", "new"],
                 ["SPOP", "s", 3], ["SRANDMEMBER", "s", 3], ["SRANDMEMBER", "s", -3], ["SMOVE", "s", "t", "m8"]):
        reply = h.run(*argv)
        assert not isinstance(reply, ErrorReply), (argv, reply)
        typed = [entry for entry in h.last_ctx.undo if entry[0] == 1 and entry[1].value is value]
        tokens.extend(entry[3] for entry in typed)
    assert len(value) == n - 1 - 1 + 1 - 3 - 1
    # One token entry per member changed, whatever the set's size.
    assert [len(t) for t in tokens] == [1, 1, 1, 3, 1]
    spop_token = tokens[0]
    assert isinstance(spop_token[0][0], int) and spop_token[0][1] not in value
    # The index stays a true inverse of the list.
    value.__class__ = IndexedSet
    assert all(value.members[i] == m for m, i in value.index.items()) and len(value.index) == len(value)


_SET_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("sadd"), st.lists(st.sampled_from([b"m%d" % i for i in range(12)]), max_size=5)),
        st.tuples(st.just("srem"), st.lists(st.sampled_from([b"m%d" % i for i in range(14)]), max_size=5)),
        st.tuples(st.just("spop"), st.integers(0, 10**6)),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(start=st.lists(st.sampled_from([b"m%d" % i for i in range(12)]), unique=True), steps=_SET_OPS)
def test_ops_undone_in_reverse_restore_the_exact_order(start, steps) -> None:
    """Apply random SADD/SREM/SPOP ops, then undo them newest first: each earlier state comes back exactly."""
    vtype = VALUE_TYPES[KIND_SET]
    value = IndexedSet(start)
    history = []
    for kind, arg in steps:
        if kind == "spop":
            if not value:
                continue
            op = (OP_SREM, b"k", [value.nth(arg % len(value))])  # what SPOP logs
        else:
            op = (OP_SADD if kind == "sadd" else OP_SREM, b"k", arg)
        before = (list(value.members), dict(value.index))
        spec = OPS[op[0]]
        history.append((before, spec, spec.apply(value, op)))
        assert sorted(value.index.items(), key=lambda kv: kv[1]) == [(m, i) for i, m in enumerate(value.members)]
        # A replica from a checkpoint (to_wire, from_wire) holds the same value in the same order.
        assert vtype.from_wire(vtype.to_wire(value)) == value
    for before, spec, token in reversed(history):
        spec.undo(value, token)
        assert (value.members, value.index) == before
    assert list(value) == start


def test_a_transaction_of_set_ops_rolls_back_exactly() -> None:
    # Several SREM/SADD/SPOP on one key in one MULTI share one undo list.
    h = Harness(seed=5)
    h.run("SADD", "s", *[b"m%d" % i for i in range(20)])
    before = list(h.ks.get(b"s").value)
    ks = h.ks
    undo: list = []
    for op in [(OP_SREM, b"s", [b"m3", b"m0"]), (OP_SADD, b"s", [b"x", b"m3"]), (OP_SREM, b"s", [b"m19", b"x", b"m5"]),
               (OP_SADD, b"s", [b"y"]), (OP_SREM, b"s", [b"m3"])]:
        ks.apply(op, 99, None, undo)
    assert list(ks.get(b"s").value) != before
    ks.rollback(undo)
    assert list(ks.get(b"s").value) == before
