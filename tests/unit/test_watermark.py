"""Epoch-aware watermarks and dependency vectors (makod/core/watermark.py, context.vec_join)."""

from __future__ import annotations

import pytest

from makod.core.context import DependencyInDoubt, vec_join
from makod.core.release import ReleaseQueue
from makod.core.watermark import COVERED, PENDING, ROLLED_BACK, WatermarkTable


def v(epoch: int, counter: int) -> int:
    return (epoch << 32) | counter


def test_a_component_is_covered_by_its_epochs_watermark():
    wm = WatermarkTable(2)
    wm.observe(0, 5, v(5, 10))
    assert wm.component(0, v(5, 10)) == COVERED
    assert wm.component(0, v(5, 11)) == PENDING
    assert wm.component(0, v(6, 1)) == PENDING  # an epoch we have not heard of


def test_an_ended_epoch_is_judged_by_its_verdict():
    wm = WatermarkTable(1)
    wm.observe(0, 5, v(5, 10))
    wm.observe(0, 9, v(9, 0), {5: v(5, 12)}, closed_below=9)
    assert wm.component(0, v(5, 12)) == COVERED
    assert wm.component(0, v(5, 13)) == ROLLED_BACK
    # An epoch below the close with no verdict of its own left nothing behind.
    assert wm.component(0, v(7, 1)) == ROLLED_BACK


def test_watermarks_only_grow_and_verdicts_never_change():
    wm = WatermarkTable(1)
    wm.observe(0, 5, v(5, 10))
    wm.observe(0, 5, v(5, 3))  # an older gossip arriving late
    assert wm.shards[0].w == v(5, 10)
    wm.observe(0, 9, v(9, 0), {5: v(5, 12)}, 9)
    with pytest.raises(AssertionError, match="finalized twice"):
        wm.observe(0, 9, v(9, 0), {5: v(5, 11)}, 9)


def test_a_vector_is_rolled_back_if_any_component_is():
    wm = WatermarkTable(2)
    wm.observe(0, 5, v(5, 100))
    wm.observe(1, 3, v(3, 4))
    wm.observe(1, 8, v(8, 0), {3: v(3, 4)}, 8)
    assert wm.status((v(5, 1), v(3, 4))) == COVERED
    assert wm.status((v(5, 1), v(3, 5))) == ROLLED_BACK
    assert wm.status((v(5, 101), v(3, 4))) == PENDING


def test_joining_across_epochs_waits_for_the_older_verdict():
    """A newer epoch's clock must not hide an undecided dependency on an older
    epoch of the same shard: one clock per shard cannot hold both."""
    wm = WatermarkTable(1)
    wm.observe(0, 3, v(3, 9))
    wm.observe(0, 8, v(8, 0))  # epoch 3 ended, its verdict not known yet
    with pytest.raises(DependencyInDoubt):
        vec_join((v(3, 7),), (v(8, 1),), wm)
    wm.observe(0, 8, v(8, 0), {3: v(3, 9)}, 8)
    assert vec_join((v(3, 7),), (v(8, 1),), wm) == (v(8, 1),)  # 3:7 survived: safe to drop
    wm2 = WatermarkTable(1)
    wm2.observe(0, 8, v(8, 0), {3: v(3, 5)}, 8)
    with pytest.raises(DependencyInDoubt):
        vec_join((v(3, 7),), (v(8, 1),), wm2)  # rolled back: the reader must retry


def test_release_queue_releases_in_watermark_order_and_reports_rollbacks():
    wm = WatermarkTable(2)
    q = ReleaseQueue(0, 100)
    q.add((v(1, 2), 0), "a")
    q.add((v(1, 1), v(2, 5)), "b")
    q.add((v(1, 3), 0), "c")
    wm.observe(0, 1, v(1, 2))
    assert q.settle(wm) == (["a"], [])
    wm.observe(1, 2, v(2, 5))
    assert q.settle(wm) == (["b"], [])
    wm.observe(0, 4, v(4, 0), {1: v(1, 2)}, 4)
    assert q.settle(wm) == ([], ["c"])
    assert len(q) == 0
