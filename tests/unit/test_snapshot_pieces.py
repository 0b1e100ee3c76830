"""A record bigger than a snapshot chunk travels in pieces and comes back whole
(makod/core/snapshots.py): whole, a collection past 256 MB made a message
peers refuse, and no snapshot of its shard could be sent."""

from __future__ import annotations

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from makod.core.messages import to_wire
from makod.core.snapshots import SnapshotReceiver, snapshot_messages

_items = st.lists(st.tuples(st.binary(min_size=1, max_size=8), st.binary(max_size=300)), max_size=12)


def _stream(chunks, max_bytes):
    return snapshot_messages(0, 1, iter([(7, 9, items, b"meta" if i == 0 else None) for i, items in enumerate(chunks)]),
                             max_bytes)


def _through_the_wire(msg):
    """What a peer decodes: lists, not tuples."""
    fields = msgpack.unpackb(msgpack.packb(to_wire(msg), use_bin_type=True), raw=False)
    return type(msg)(*fields[1:])


@settings(max_examples=200, deadline=None)
@given(chunks=st.lists(_items, min_size=1, max_size=4), max_bytes=st.integers(1, 200))
def test_every_record_comes_back_whole_and_no_message_carries_more_than_a_piece(chunks, max_bytes):
    messages = _stream(chunks, max_bytes)
    for msg in messages:
        assert all(len(item[1]) <= max_bytes for item in msg.items)
    assert messages[0].meta == b"meta" and all(m.meta is None for m in messages[1:])
    receiver = SnapshotReceiver()
    got = None
    for msg in messages:
        got = receiver.receive(_through_the_wire(msg), 0)
    assert got is not None
    applied, clock, joined, meta = got
    assert (applied, clock, meta) == (7, 9, b"meta")
    flat = [(bytes(k), bytes(v)) for items in joined for k, v in items]
    assert flat == [item for items in chunks for item in items]


def test_a_three_megabyte_record_takes_three_messages_and_a_fourth_for_the_rest():
    big = bytes(range(256)) * (3 * 4096)  # 3 MiB
    messages = _stream([[(b"a", b"1"), (b"big", big), (b"z", b"2")]], 1 << 20)
    assert [len(m.items) for m in messages] == [1, 1, 1, 1, 1]
    assert [len(item) for m in messages for item in m.items] == [2, 3, 3, 2, 2]
    receiver = SnapshotReceiver()
    for msg in messages:
        got = receiver.receive(msg, 0)
    assert [list(items) for items in got[2]] == [[(b"a", b"1")], [], [], [(b"big", big)], [(b"z", b"2")]]


def test_a_piece_that_nothing_ends_or_a_bad_item_discards_the_snapshot():
    for items in ([(b"k", b"x", True)], [(b"k", b"x", True), (b"j", b"y")], [7], [(b"k",)], [(b"k", "text")]):
        receiver = SnapshotReceiver()
        msg = _stream([[(b"a", b"1")]], 100)[0]
        msg.items = items
        assert receiver.receive(msg, 0) is None
