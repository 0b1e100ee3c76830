"""Stored procedures' rows (issue 14): stored as decoded from the bytes put
packed, and checkpointed from those bytes without packing them again.
The stored bytes must be exactly what packing the value would give, or a
restart would read another state than the replicas that never restarted."""

from __future__ import annotations

import random

import msgpack
from hypothesis import given
from hypothesis import strategies as st

from makod.codec import pack
from makod.core.context import DirectContext
from makod.core.procedures import ProcTxn
from makod.kv.keyspace import Keyspace
from makod.kv.records import KIND_NATIVE, KIND_STRING, VALUE_TYPES, Record, ValueType
from makod.storage.base import _PLAIN_WIRE_KINDS, decode_record, encode_for_checkpoint, encode_record

# What a procedure may store: msgpack-able values, nested.
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(allow_nan=False),
    st.text(max_size=40), st.binary(max_size=40),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=6), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=20,
)


def _context(ks: Keyspace, version: int = 1) -> DirectContext:
    return DirectContext(ks, version, (version,), (version - 1,), 0, random.Random(0))


def test_plain_wire_kinds_really_are_their_own_wire_form() -> None:
    # encode_record skips to_wire for these kinds: that is only right while
    # their ValueType keeps the identity to_wire.
    for kind in _PLAIN_WIRE_KINDS:
        assert type(VALUE_TYPES[kind]).to_wire is ValueType.to_wire, kind


@given(values, st.one_of(st.none(), st.integers(0, 2**62)), st.integers(0, 2**63 - 1))
def test_packed_rows_encode_to_the_same_bytes(value, expire_ms, version) -> None:
    plain = Record(KIND_NATIVE, value, expire_ms, version, None)
    reused = Record(KIND_NATIVE, value, expire_ms, version, None)
    reused.packed = pack(value)
    data = encode_record(plain)
    assert encode_record(reused) == data
    assert encode_for_checkpoint(reused) == data
    assert reused.packed is None  # written: not kept in memory twice
    back = decode_record(data)
    assert (back.kind, back.expire_ms, back.version) == (KIND_NATIVE, expire_ms, version)
    assert pack(back.value) == pack(value)


def test_packed_bytes_are_ignored_for_other_kinds() -> None:
    rec = Record(KIND_STRING, b"abc", None, 7, None)
    rec.packed = pack(b"something else")
    assert decode_record(encode_record(rec)).value == b"abc"


@given(values)
def test_put_stores_a_copy_as_followers_decode_it(value) -> None:
    ks = Keyspace()
    ProcTxn(_context(ks)).put(b"k", value)
    rec = ks.data[b"k"]
    # A follower applies the op decoded from the log, with the log's options.
    follower = VALUE_TYPES[KIND_NATIVE].from_wire(
        msgpack.unpackb(pack(value), raw=False, strict_map_key=False, use_list=True)
    )
    assert repr(rec.value) == repr(follower)  # MAKO DIGEST compares repr()
    assert rec.packed == pack(value)


def test_a_row_changed_after_put_stays_as_put() -> None:
    ks = Keyspace()
    row = [1, [2, 3], "x"]
    tx = ProcTxn(_context(ks))
    tx.put(b"k", row)
    row[0] = 99
    row[1].append(4)
    rec = ks.data[b"k"]
    assert rec.value == [1, [2, 3], "x"]
    assert decode_record(encode_record(rec)).value == [1, [2, 3], "x"]
    assert tx.get(b"k") == [1, [2, 3], "x"]

