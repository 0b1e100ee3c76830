"""kv/key_indexes.py: a big keyspace's ordered indexes are made a slice per
tick while writes go on, and come out exactly as if made at once; a read
that needs one waits (IndexBuilding) instead of stopping the node."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from makod.core.context import DirectContext, IndexBuilding, KeyLocked
from makod.kv.key_indexes import ORDER, SCAN, KeyIndexes
from makod.kv.keyspace import Keyspace, scan_hash
from makod.kv.records import KIND_STRING, OP_DEL, OP_FLUSH, OP_SET


def _small(ks: Keyspace, at_once: int = 5, per_step: int = 3) -> Keyspace:
    ks.indexes.build_at_once_keys = at_once
    ks.indexes.build_keys_per_step = per_step
    return ks


def _put(ks: Keyspace, key: bytes, version: int = 1) -> None:
    ks.apply((OP_SET, key, KIND_STRING, b"v", None), version, None)


def _check_whole(ks: Keyspace) -> None:
    idx = ks.indexes
    if idx.scan is not None:
        assert list(idx.scan) == sorted(ks.data, key=lambda k: (scan_hash(k), k))
    if idx.order is not None:
        assert list(idx.order) == sorted(ks.data)


keys = st.sampled_from([b"%c%d" % (c, i) for c in b"abc" for i in range(4)])  # few: ops meet the same keys
ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), keys),
        st.tuples(st.just("del"), keys),
        st.tuples(st.just("step"), st.none()),
        st.tuples(st.just("ask"), st.sampled_from([SCAN, ORDER])),
        st.tuples(st.just("flush"), st.none()),
        st.tuples(st.just("use"), st.sampled_from([SCAN, ORDER])),
    ),
    max_size=120,
)


@settings(max_examples=300)
@given(st.lists(keys, min_size=6, max_size=12, unique=True), ops)
def test_made_in_slices_while_written_equals_made_at_once(initial, steps) -> None:
    ks = _small(Keyspace())
    for key in initial:
        _put(ks, key)
    version = 2
    for what, arg in steps:
        version += 1
        if what == "put":
            _put(ks, arg, version)
        elif what == "del":
            ks.apply((OP_DEL, arg), version, None)
        elif what == "step":
            ks.indexes.build_step()
        elif what == "ask":
            ks.indexes.ready(arg)
        elif what == "flush":
            ks.apply((OP_FLUSH,), version, None)
        else:  # a caller that cannot wait finishes the index now
            (ks.indexes.scan_index if arg == SCAN else ks.indexes.order_index)()
        if not ks.indexes.building:
            _check_whole(ks)
    while ks.indexes.building:
        ks.indexes.build_step()
    _check_whole(ks)


def test_a_small_keyspace_is_ready_at_once_and_a_big_one_waits_for_its_slices() -> None:
    ks = _small(Keyspace(), at_once=5, per_step=4)
    for i in range(5):
        _put(ks, b"k%d" % i)
    assert ks.indexes.ready(SCAN) and not ks.indexes.building
    for i in range(5, 20):
        _put(ks, b"k%d" % i)
    assert not ks.indexes.ready(ORDER)
    assert not ks.indexes.ready(ORDER)  # still making it
    steps = 0
    while not ks.indexes.build_step():
        steps += 1
    assert steps == 4 and ks.indexes.ready(ORDER)  # 20 keys, 4 a slice: the 5th finishes
    assert list(ks.indexes.order) == sorted(ks.data)


def test_reads_that_need_an_index_wait_for_it() -> None:
    ks = _small(Keyspace(), at_once=10, per_step=25)
    for i in range(100):
        _put(ks, b"k%03d" % i)
    ctx = DirectContext(ks, 200, (200,), (199,), 0, random.Random(0))
    with pytest.raises(IndexBuilding) as raised:
        ctx.scan(0, 10, None, None)
    assert isinstance(raised.value, KeyLocked)  # parked and retried like a locked key
    with pytest.raises(IndexBuilding):
        ctx.range(b"k", b"l", 5, False)
    with pytest.raises(IndexBuilding):
        ctx.random_key()
    while ks.indexes.building:
        ks.indexes.build_step()
    cursor, found = ctx.scan(0, 1000, None, None)
    assert cursor == 0 and sorted(found) == sorted(ks.data)
    assert [k for k, _ in ctx.range(b"k", b"l", 5, False)] == [b"k000", b"k001", b"k002", b"k003", b"k004"]
    assert ctx.random_key() in ks.data


def test_a_deleted_key_comes_out_of_a_finished_index_and_a_missing_one_is_an_error() -> None:
    ks = Keyspace()
    _put(ks, b"a")
    _put(ks, b"b")
    idx = ks.indexes
    idx.order_index()
    ks.apply((OP_DEL, b"a"), 2, None)
    assert list(idx.order) == [b"b"]
    with pytest.raises(ValueError):
        idx.deleted(b"never")  # outside a build, an index out of step with the keys is a bug


def test_defaults_keep_slices_small() -> None:
    assert KeyIndexes.build_keys_per_step <= 10_000 <= KeyIndexes.build_at_once_keys
