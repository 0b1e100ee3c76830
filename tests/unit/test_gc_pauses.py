"""makod/gc_pauses.py: the collector's pauses, counted per generation."""

from __future__ import annotations

import gc

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
    assert snap["frozen_objects"] == gc.get_freeze_count()
