"""The epoch chain (makod/core/epochs.py): what a shard's chosen log proves."""

from __future__ import annotations

import pytest

from makod.core.epochs import EpochChain

E1, E2, E3 = 256, 513, 770


def v(epoch: int, counter: int) -> int:
    return epoch << 32 | counter


def test_markers_count_while_the_batches_arrive_in_order():
    chain = EpochChain()
    assert chain.read_epoch(1, E1, {})
    assert chain.read_batch(2, E1, 1, v(E1, 3))
    assert chain.read_batch(3, E1, 2, v(E1, 7))
    assert chain.marker == v(E1, 7) and chain.verdict() == {E1: v(E1, 7)}


def test_after_a_missing_batch_no_later_marker_counts():
    chain = EpochChain()
    chain.read_epoch(1, E1, {})
    chain.read_batch(2, E1, 1, v(E1, 3))
    chain.read_noop(3)  # batch 2 was lost: a new leader filled its slot with a no-op
    assert not chain.read_batch(4, E1, 3, v(E1, 9))  # batch 3 claims versions that are gone
    assert not chain.read_batch(5, E1, 4, v(E1, 12))
    assert chain.verdict() == {E1: v(E1, 3)} and chain.broken


def test_a_new_epoch_must_close_the_old_one_with_the_logs_verdict():
    chain = EpochChain()
    chain.read_epoch(1, E1, {})
    chain.read_batch(2, E1, 1, v(E1, 3))
    with pytest.raises(AssertionError, match="closes epoch"):
        chain.copy().read_epoch(3, E2, {E1: v(E1, 9)})
    assert chain.read_epoch(3, E2, {E1: v(E1, 3)})
    assert chain.epoch == E2 and chain.seq == 0 and chain.marker == v(E2, 0)


def test_a_stale_leaders_entries_read_as_no_ops():
    chain = EpochChain()
    chain.read_epoch(1, E1, {})
    chain.read_epoch(2, E3, {E1: v(E1, 0)})
    assert not chain.read_epoch(5, E2, {E1: v(E1, 99)})  # older than the chain's epoch
    assert not chain.read_batch(6, E1, 1, v(E1, 50))
    assert chain.epoch == E3 and chain.marker == v(E3, 0)


def test_reading_a_slot_again_changes_nothing():
    chain = EpochChain()
    chain.read_epoch(1, E1, {})
    chain.read_batch(2, E1, 1, v(E1, 3))
    saved = chain.to_list()
    assert not chain.read_batch(2, E1, 1, v(E1, 3))
    assert not chain.read_epoch(1, E1, {})
    assert chain.to_list() == saved
    assert EpochChain.from_list(saved).to_list() == saved
