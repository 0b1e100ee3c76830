"""Coordinator records (makod/core/coord_records.py) outlive the log and stay bounded."""

from __future__ import annotations

from makod.core.coord_records import CoordRecords


def test_changes_since_the_last_checkpoint_round_trip():
    records = CoordRecords()
    records.add((1, 256, 1), (5, 6), {1: [[0, b"k", 0, b"v", None]]})
    records.add((1, 256, 2), (7, 8), {})
    puts, deletes = records.take_changes()
    assert len(puts) == 2 and deletes == []
    assert records.take_changes() == ([], [])  # nothing new since
    loaded = CoordRecords.from_encoded(puts, evicted_epoch=0)
    assert loaded.get((1, 256, 1)) == ((5, 6), {1: [[0, b"k", 0, b"v", None]]})
    assert loaded.get((1, 256, 2)) == ((7, 8), {})


def test_eviction_is_bounded_and_remembered():
    records = CoordRecords(max_records=2)
    records.add((1, 256, 1), (1, 1), {})
    records.take_changes()  # written
    records.add((1, 512, 2), (2, 2), {})
    records.add((1, 768, 3), (3, 3), {})  # evicts the first
    assert len(records) == 2 and records.get((1, 256, 1)) is None
    puts, deletes = records.take_changes()
    assert len(deletes) == 1 and len(puts) == 2
    # A missing record of an epoch at or below an evicted one is unknown, never "aborted".
    assert records.may_be_forgotten((9, 256, 99)) and not records.may_be_forgotten((9, 768, 99))


def test_a_record_added_twice_is_kept_once():
    records = CoordRecords()
    records.add((1, 256, 1), (1, 1), {})
    records.add((1, 256, 1), (1, 1), {})  # read again in a replay
    assert len(records) == 1 and len(records.take_changes()[0]) == 1
