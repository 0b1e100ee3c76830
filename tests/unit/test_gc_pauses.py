"""makod/gc_pauses.py: the collector's pauses, counted per generation."""

from __future__ import annotations

import gc
import weakref

from makod.gc_pauses import GcPauses


def test_a_full_collection_is_counted_with_its_time() -> None:
    pauses = GcPauses()
    pauses.install()
    pauses.install()  # once only
    try:
        assert gc.callbacks.count(pauses._on_gc) == 1
        gc.collect()
        gc.collect(0)
        snap = pauses.snapshot()
    finally:
        gc.callbacks.remove(pauses._on_gc)
    assert snap["gen2"]["collections"] == 1 and snap["gen0"]["collections"] >= 1
    assert 0 <= snap["gen2"]["max_ms"] <= snap["gen2"]["total_ms"] + 0.1
    assert snap["freezes"] == 0 and "frozen_objects" not in snap  # counting them walks them all


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_survivors_are_frozen_at_the_next_tick_and_a_full_pass_finds_what_died() -> None:
    pauses = GcPauses()
    pauses.install()
    frozen_before = gc.get_freeze_count()
    try:
        survivors = [[i] for i in range(1000)]
        cycle = _Cycle()
        gc.collect(0)
        assert pauses.freeze_due
        assert gc.get_freeze_count() == frozen_before  # not inside the collector
        pauses.tick()
        assert not pauses.freeze_due and pauses.freezes == 1
        assert gc.get_freeze_count() >= frozen_before + len(survivors)
        pauses.tick()
        assert pauses.freezes == 1  # nothing ran since
        alive = weakref.ref(cycle)
        del cycle  # a cycle that dies once frozen: no ordinary pass can find it
        gc.collect()
        assert alive() is not None
        full = pauses.full_pass()
        assert alive() is None and full["collected"] >= 1, full
        assert full["frozen_objects"] == gc.get_freeze_count() > 0
        assert full["pause_ms"] >= 0
        assert pauses.snapshot()["gen2"]["collected"] >= 1
        del survivors
    finally:
        gc.callbacks.remove(pauses._on_gc)
        gc.unfreeze()  # leave the test process as it was
        gc.collect()
