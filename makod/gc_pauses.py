"""How long the cyclic garbage collector stops the event loop, per generation.

The collector runs inside whatever allocation crosses its threshold, so a
profile spreads its time over unrelated frames; these counters name it.
``MAKO STATUS`` reports them (``gc``), so a benchmark can put its pauses next
to its latencies (BENCHMARKS.md, issue 14).
"""

from __future__ import annotations

import gc
import time


class GcPauses:
    def __init__(self) -> None:
        self.started = 0.0
        self.count = [0, 0, 0]
        self.total_ms = [0.0, 0.0, 0.0]
        self.max_ms = [0.0, 0.0, 0.0]

    def install(self) -> None:
        if self._on_gc not in gc.callbacks:
            gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self.started = time.perf_counter()
            return
        gen = min(int(info.get("generation", 0)), 2)
        took_ms = (time.perf_counter() - self.started) * 1000.0
        self.count[gen] += 1
        self.total_ms[gen] += took_ms
        if took_ms > self.max_ms[gen]:
            self.max_ms[gen] = took_ms

    def snapshot(self) -> dict:
        return {
            f"gen{g}": {"collections": self.count[g], "total_ms": round(self.total_ms[g], 1),
                        "max_ms": round(self.max_ms[g], 1)}
            for g in range(3)
        } | {"frozen_objects": gc.get_freeze_count()}
