"""Bitmap and HyperLogLog commands through their handlers (see harness.py)."""

from __future__ import annotations

import pytest

from makod.kv import errors
from makod.kv.records import KIND_STRING
from makod.kv.replies import OK, ErrorReply
from makod.kv.table import TABLE
from makod.kv.types import bitmaps, hll
from tests.unit.harness import Harness

WRONGTYPE = ErrorReply(errors.WRONGTYPE)
SYNTAX = ErrorReply(errors.SYNTAX)
NOT_INTEGER = ErrorReply(errors.NOT_INTEGER)
BIT_OFFSET = ErrorReply(bitmaps.BIT_OFFSET)
HLL_NOT_VALID = ErrorReply(hll.HLL_NOT_VALID)


@pytest.mark.parametrize(
    "name,arity,flags,keys,group",
    [
        ("setbit", 4, {"write", "denyoom"}, (1, 1, 1), "bitmap"),
        ("getbit", 3, {"readonly", "fast"}, (1, 1, 1), "bitmap"),
        ("bitcount", -2, {"readonly"}, (1, 1, 1), "bitmap"),
        ("bitpos", -3, {"readonly"}, (1, 1, 1), "bitmap"),
        ("bitop", -4, {"write", "denyoom"}, (2, -1, 1), "bitmap"),
        ("bitfield", -2, {"write", "denyoom"}, (1, 1, 1), "bitmap"),
        ("bitfield_ro", -2, {"readonly", "fast"}, (1, 1, 1), "bitmap"),
        ("pfadd", -2, {"write", "denyoom", "fast"}, (1, 1, 1), "hyperloglog"),
        ("pfcount", -2, {"readonly"}, (1, -1, 1), "hyperloglog"),
        ("pfmerge", -2, {"write", "denyoom"}, (1, -1, 1), "hyperloglog"),
    ],
)
def test_table_entries(name, arity, flags, keys, group) -> None:
    spec = TABLE.lookup(name.encode())
    assert spec is not None and spec.group == group and spec.scope == "data"
    assert spec.arity == arity
    assert spec.flags == flags
    assert (spec.first_key, spec.last_key, spec.key_step) == keys


def test_bitop_keys() -> None:
    spec = TABLE.lookup(b"BITOP")
    assert spec.keys([b"BITOP", b"AND", b"d", b"a", b"b"]) == [b"d", b"a", b"b"]


# -- SETBIT / GETBIT ----------------------------------------------------------------------


def test_setbit_getbit(h: Harness) -> None:
    assert h.run("SETBIT", "k", 7, 1) == 0
    assert h.run("GET", "k") == b"\x01"
    assert h.run("SETBIT", "k", 7, 1) == 1
    assert h.run("SETBIT", "k", 0, 1) == 0
    assert h.run("GET", "k") == b"\x81"
    assert h.run("SETBIT", "k", 20, 0) == 0
    assert h.run("GET", "k") == b"\x81\x00\x00"
    assert h.run("GETBIT", "k", 0) == 1
    assert h.run("GETBIT", "k", 1) == 0
    assert h.run("GETBIT", "k", 10_000) == 0
    assert h.run("GETBIT", "missing", 3) == 0


def test_setbit_errors(h: Harness) -> None:
    assert h.run("SETBIT", "k", -1, 1) == BIT_OFFSET
    assert h.run("SETBIT", "k", "x", 1) == BIT_OFFSET
    assert h.run("SETBIT", "k", 1, 2) == ErrorReply(bitmaps.BIT_VALUE)
    assert h.run("SETBIT", "k", 4 * 1024 * 1024 * 1024 * 8, 1) == BIT_OFFSET
    assert h.run("EXISTS", "k") == 0
    h.run("HSET", "h", "f", "v")
    assert h.run("SETBIT", "h", 1, 1) == WRONGTYPE
    assert h.run("GETBIT", "h", 1) == WRONGTYPE


def test_setbit_offset_limit_follows_proto_max_bulk_len(h: Harness) -> None:
    h.proto_max_bulk_len = 1024
    assert h.run("SETBIT", "k", 1024 * 8, 1) == BIT_OFFSET
    assert h.run("SETBIT", "k", 1024 * 8 - 1, 1) == 0
    assert h.run("STRLEN", "k") == 1024


def test_setbit_keeps_ttl(h: Harness) -> None:
    h.run("SET", "k", "a", "EX", 100)
    h.run("SETBIT", "k", 30, 1)
    assert h.run("TTL", "k") == 100
    assert h.run("GET", "k") == b"a\x00\x00\x02"


def test_setbit_undo_restores_prior_bytes(h: Harness) -> None:
    h.run("SET", "k", "abc")
    before = h.ks.data[b"k"].value
    h.run("SETBIT", "k", 100, 1)
    assert h.ks.data[b"k"].value != before
    h.ks.rollback(h.last_ctx.undo)
    assert h.ks.data[b"k"].value == before


# -- BITCOUNT / BITPOS ----------------------------------------------------------------------


def test_bitcount(h: Harness) -> None:
    h.run("SET", "k", "foobar")
    assert h.run("BITCOUNT", "k") == 26
    assert h.run("BITCOUNT", "k", 0, 0) == 4
    assert h.run("BITCOUNT", "k", 1, 1) == 6
    assert h.run("BITCOUNT", "k", 1, 1, "BYTE") == 6
    assert h.run("BITCOUNT", "k", 5, 30, "BIT") == 17
    assert h.run("BITCOUNT", "k", -1, -2) == 0
    assert h.run("BITCOUNT", "k", 0) == SYNTAX
    assert h.run("BITCOUNT", "k", 0, 1, "X") == SYNTAX
    assert h.run("BITCOUNT", "k", "a", 1) == NOT_INTEGER
    assert h.run("BITCOUNT", "missing", "a", 1) == 0  # Redis looks the key up first


def test_bitpos(h: Harness) -> None:
    h.run("SET", "k", b"\xff\xf0\x00")
    assert h.run("BITPOS", "k", 0) == 12
    assert h.run("BITPOS", "k", 1, 2) == -1
    assert h.run("BITPOS", "k", 1, 7, 15, "BIT") == 7
    h.run("SET", "f", b"\xff\xff")
    assert h.run("BITPOS", "f", 0) == 16  # zero padded on the right
    assert h.run("BITPOS", "f", 0, 0, -1) == -1  # unless the end is explicit
    assert h.run("BITPOS", "missing", 0) == 0
    assert h.run("BITPOS", "missing", 1) == -1
    assert h.run("BITPOS", "k", 2) == ErrorReply(bitmaps.BIT_ARG)


# -- BITOP -----------------------------------------------------------------------------------


def test_bitop(h: Harness) -> None:
    h.run("SET", "a", b"\xf0\x0f")
    h.run("SET", "b", b"\xff")
    assert h.run("BITOP", "AND", "d", "a", "b") == 2
    assert h.run("GET", "d") == b"\xf0\x00"
    assert h.run("BITOP", "OR", "d", "a", "b") == 2
    assert h.run("GET", "d") == b"\xff\x0f"
    assert h.run("BITOP", "XOR", "d", "a", "b") == 2
    assert h.run("GET", "d") == b"\x0f\x0f"
    assert h.run("BITOP", "NOT", "d", "a") == 2
    assert h.run("GET", "d") == b"\x0f\xf0"
    assert h.run("BITOP", "NOT", "d", "a", "b") == ErrorReply(bitmaps.BITOP_NOT_SINGLE)
    assert h.run("BITOP", "NAND", "d", "a") == SYNTAX
    assert h.run("BITOP", "AND", "d", "nope") == 0
    assert h.run("EXISTS", "d") == 0
    h.run("HSET", "h", "f", "v")
    assert h.run("BITOP", "AND", "d", "a", "h") == WRONGTYPE


# -- BITFIELD --------------------------------------------------------------------------------


def test_bitfield(h: Harness) -> None:
    assert h.run("BITFIELD", "k", "SET", "u8", 0, 255, "GET", "i8", 0) == [0, -1]
    assert h.run("BITFIELD", "k", "INCRBY", "u8", 0, 1) == [0]
    assert h.run("BITFIELD", "k", "OVERFLOW", "SAT", "INCRBY", "u8", 0, -5) == [0]
    assert h.run("BITFIELD", "k", "OVERFLOW", "FAIL", "INCRBY", "u8", 0, -5) == [None]
    assert h.run("BITFIELD", "k", "SET", "u4", "#1", 15, "GET", "u8", 0) == [0, 15]
    assert h.run("BITFIELD", "k", "OVERFLOW", "SAT", "SET", "i4", 0, 100, "GET", "i4", 0) == [0, 7]
    assert h.run("BITFIELD", "k", "GET", "u64", 0) == ErrorReply(bitmaps.BITFIELD_TYPE)
    assert h.run("BITFIELD", "k", "OVERFLOW", "X") == ErrorReply(bitmaps.BITFIELD_OVERFLOW)
    assert h.run("BITFIELD", "k", "GET", "u8") == SYNTAX
    assert h.run("BITFIELD_RO", "k", "GET", "u8", 0) == [0x7F]
    assert h.run("BITFIELD_RO", "k", "SET", "u8", 0, 1) == ErrorReply(bitmaps.BITFIELD_RO_GET_ONLY)
    assert h.run("BITFIELD", "new", "GET", "u8", 0) == [0]
    assert h.run("EXISTS", "new") == 0


# -- HyperLogLog ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data,expected",
    [
        # Redis's C MurmurHash64A, seed 0xadc83b19 (tail lengths 0, 1, 5, 0 with two blocks, 5 with a block).
        (b"", 15627466953755236146),
        (b"a", 6039968161137406375),
        (b"hello", 1109414937308947456),
        (b"0123456789abcdef", 11494704960468834109),
        (b"element:12345", 17337706762210467094),
    ],
)
def test_murmurhash64a_reference(data: bytes, expected: int) -> None:
    assert hll.murmurhash64a(data) == expected
    index, count = hll.pat_len(data)
    assert index == expected & (hll.HLL_REGISTERS - 1)
    assert 1 <= count <= hll.HLL_Q + 1


def test_pfadd_pfcount(h: Harness) -> None:
    assert h.run("PFADD", "h") == 1
    assert h.run("PFADD", "h") == 0
    assert h.run("PFCOUNT", "h") == 0
    assert h.run("PFADD", "h", "a", "b", "c", "d", "e", "f", "g") == 1
    assert h.run("PFADD", "h", "a") == 0
    assert h.run("PFCOUNT", "h") == 7
    value = h.ks.data[b"h"].value
    assert len(value) == hll.HLL_DENSE_SIZE and value[:5] == b"HYLL\x00"
    assert value[15] & 0x80  # the cached cardinality is marked invalid
    assert h.run("PFCOUNT", "missing") == 0


def test_pfcount_several_and_pfmerge(h: Harness) -> None:
    h.run("PFADD", "a", *[f"x{i}" for i in range(100)])
    h.run("PFADD", "b", *[f"x{i}" for i in range(50, 150)])
    union = h.run("PFCOUNT", "a", "b", "missing")
    assert abs(union - 150) <= 3
    assert h.run("PFMERGE", "m", "a", "b") == OK
    assert h.run("PFCOUNT", "m") == union
    assert h.run("PFMERGE", "a", "b") == OK  # the destination is a source too
    assert h.run("PFCOUNT", "a") == union
    assert h.run("PFMERGE", "empty") == OK
    assert h.run("PFCOUNT", "empty") == 0


def test_pf_keeps_ttl(h: Harness) -> None:
    h.run("PFADD", "h", "a")
    h.run("EXPIRE", "h", 100)
    h.run("PFADD", "h", "b")
    assert h.run("TTL", "h") == 100
    h.run("PFMERGE", "h", "other")
    assert h.run("TTL", "h") == 100


def test_pf_wrong_values(h: Harness) -> None:
    h.run("SET", "s", "hello")
    assert h.run("PFADD", "s", "a") == HLL_NOT_VALID
    assert h.run("PFCOUNT", "s") == HLL_NOT_VALID
    assert h.run("PFMERGE", "d", "s") == HLL_NOT_VALID
    assert h.run("EXISTS", "d") == 0
    h.run("HSET", "hh", "f", "v")
    assert h.run("PFADD", "hh", "a") == WRONGTYPE
    assert h.run("PFCOUNT", "hh", "s") == WRONGTYPE


@pytest.mark.parametrize("n", [10_000, 50_000, 100_000])
def test_pfcount_accuracy(h: Harness, n: int) -> None:
    h.run("PFADD", "h", *[b"element:%d" % i for i in range(n)])
    count = h.run("PFCOUNT", "h")
    assert abs(count - n) / n < 0.02


def test_cached_cardinality_is_used(h: Harness) -> None:
    value = bytearray(hll._EMPTY_DENSE)
    value[8] = 42  # a valid cache says 42, whatever the registers say
    ctx = h.context()
    ctx.set(b"h", KIND_STRING, bytes(value), None)
    ctx.finish()
    assert h.run("PFCOUNT", "h") == 42
    assert h.run("PFADD", "h", "x") == 1  # a change invalidates the cache
    assert h.run("PFCOUNT", "h") == 1


def _sparse(*ops: bytes) -> bytes:
    return b"HYLL\x01\x00\x00\x00" + bytes(7) + b"\x80" + b"".join(ops)


def test_sparse_values_are_read(h: Harness) -> None:
    ctx = h.context()
    # XZERO covering every register: Redis's new (empty) HLL.
    ctx.set(b"empty", KIND_STRING, _sparse(b"\x7f\xff"), None)
    # VAL register 0 = 1, then XZERO 16383.
    ctx.set(b"one", KIND_STRING, _sparse(b"\x80", b"\x7f\xfe"), None)
    # Runs that do not cover 16384 registers: corrupted.
    ctx.set(b"bad", KIND_STRING, _sparse(b"\x80"), None)
    ctx.finish()
    assert h.run("PFCOUNT", "empty") == 0
    assert h.run("PFCOUNT", "one") == 1
    assert h.run("PFCOUNT", "bad") == ErrorReply(hll.HLL_CORRUPTED)
    assert h.run("PFCOUNT", "one", "empty") == 1
    assert h.run("PFADD", "one", "a", "b") == 1
    assert h.ks.data[b"one"].value[4] == hll.HLL_DENSE
    assert h.run("PFCOUNT", "one") == 3


def test_register_packing_round_trip() -> None:
    values = [(i * 7) % 52 for i in range(hll.HLL_REGISTERS)]
    dense = hll.registers_to_dense(values)
    assert len(dense) == hll.HLL_DENSE_BYTES
    assert hll.dense_to_registers(dense) == values
    regs = bytearray(dense)
    for i in (0, 1, 2, 3, 5000, hll.HLL_REGISTERS - 1):
        assert hll._get_register(regs, i) == values[i]
        hll._set_register(regs, i, 51)
        assert hll._get_register(regs, i) == 51
    assert hll._get_register(regs, 4) == values[4]


def test_pfadd_undo_restores_prior_bytes(h: Harness) -> None:
    h.run("PFADD", "h", "a", "b")
    before = h.ks.data[b"h"].value
    assert h.run("PFADD", "h", "c", "d", "e") == 1
    assert h.ks.data[b"h"].value != before
    h.ks.rollback(h.last_ctx.undo)
    assert h.ks.data[b"h"].value == before
    assert h.run("PFCOUNT", "h") == 2
