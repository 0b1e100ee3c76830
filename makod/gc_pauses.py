"""The cyclic garbage collector in makod: its pauses, counted per generation,
and when what survives it is frozen.

The collector runs inside whatever allocation crosses its threshold, so a
profile spreads its time over unrelated frames; these counters name it.
``MAKO STATUS`` reports them (``gc``), so a benchmark can put its pauses next
to its latencies (BENCHMARKS.md, issue 14).

Why freeze. The keyspace is millions of long-lived objects (records, rows)
without reference cycles. Each young pass moves its survivors, nearly all of
them new records, into the middle generation, and the middle generation is
scanned whole every few dozen young passes: under TPC-C that pass held
millions of objects and stopped the event loop for 2.7 s, three times a
leader's election timeout. So the survivors of every young pass are frozen
(``gc.freeze``) at the next tick: the older generations stay nearly empty,
and no pass scans more than one young generation's worth of objects.

The cost: a reference cycle that survives a young pass and dies later is
not found until someone asks. ``MAKO GC`` does a full pass over everything,
frozen objects included, and says how much it found (tests/integration
checks that connections, transactions, pub/sub and errors leave none).
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
        self.collected = [0, 0, 0]  # unreachable objects found: what scanning each generation buys
        self.freeze_due = False
        self.freezes = 0

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
        self.collected[gen] += int(info.get("collected", 0))
        self.total_ms[gen] += took_ms
        if took_ms > self.max_ms[gen]:
            self.max_ms[gen] = took_ms
        # Not from inside the collector: the host calls tick() from its loop.
        self.freeze_due = True

    def tick(self) -> None:
        """After a pass, freeze its survivors (see the module's text)."""
        if self.freeze_due:
            self.freeze_due = False
            gc.freeze()
            self.freezes += 1

    def full_pass(self) -> dict:
        """MAKO GC: one pass over every object, frozen ones included, then
        freeze again. It stops the loop for as long as it takes (about 0.3 s
        per million objects on the machines BENCHMARKS.md describes)."""
        started = time.perf_counter()
        gc.unfreeze()
        collected = gc.collect()
        gc.freeze()
        return {
            "collected": collected,
            "pause_ms": round((time.perf_counter() - started) * 1000.0, 1),
            "frozen_objects": gc.get_freeze_count(),
        }

    def snapshot(self) -> dict:
        return {
            f"gen{g}": {"collections": self.count[g], "total_ms": round(self.total_ms[g], 1),
                        "max_ms": round(self.max_ms[g], 1), "collected": self.collected[g]}
            for g in range(3)
        } | {"freezes": self.freezes}
        # Not gc.get_freeze_count(): it walks the frozen list, a second per
        # ten million objects, and MAKO STATUS is polled (MAKO GC reports it).
