"""A chosen value this version cannot read is skipped (and counted), never a crash."""

from __future__ import annotations

import random

import pytest

from makod.codec import pack
from makod.core.entries import ENTRY_BATCH, MalformedEntry, decode_entry, encode_batch
from makod.core.replica import ReplicaCore
from makod.kv.keyspace import OP_SET

BAD = [
    b"\xc1",  # never valid msgpack
    b"\x92\x01",  # truncated array
    pack("a string"),
    pack([]),
    pack([99, 1, 2]),
    pack([ENTRY_BATCH, -1, 0, [], 1]),
    pack([ENTRY_BATCH, 1, 0, "txns", 1]),
    pack([ENTRY_BATCH, 1, 0, [[1, None, [["x"]], None]], 1]),
    pack([ENTRY_BATCH, 1, 0, [[1, ["a"], [], None]], 1]),
    pack([2, 1, None]),
]


@pytest.mark.parametrize("value", BAD)
def test_decode_rejects_with_one_error_type(value):
    with pytest.raises(MalformedEntry):
        decode_entry(value)


def test_replica_skips_unreadable_entries_and_ops_and_keeps_applying():
    core = ReplicaCore(0, 0, 1, [0], [], rng=random.Random(1))
    for slot, value in enumerate(BAD, start=1):
        core.on_chosen(slot, value)
    assert core.apply_errors == len(BAD)
    # A well-formed batch whose one op is of the right shape but wrong content
    # (a SET without its fields) is skipped op by op; the next op applies.
    good = encode_batch(0, 5, [[5, None, [[OP_SET, b"k"], [OP_SET, b"ok", "string", b"v", None]], None]], 1)
    core.on_chosen(len(BAD) + 1, good)
    core.resolve()
    assert core.apply_errors == len(BAD) + 1
    assert core.ks.get(b"ok").value == b"v"
    assert core.ks.get(b"k") is None
