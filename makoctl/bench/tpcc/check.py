"""Driving the consistency check: one ``tpcc.check_district`` call per district, in parallel.

The heavy lifting (scanning a district's orders, lines, customers and
history) happens in makod; only per-district aggregates travel back, and
``makod.procs.tpcc_check.evaluate`` decides each condition.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from makod.client import ClusterClient
from makod.procs.tpcc_check import evaluate
from makod.procs.tpcc_schema import DISTRICTS
from makoctl.bench.tpcc.common import is_retriable

STOCK_CHUNK = 20_000


class _Clients(threading.local):
    client: ClusterClient | None = None


def _call(cfg: Any, local: _Clients, name: str, args: dict, route: bytes) -> Any:
    if local.client is None:
        local.client = ClusterClient(cfg, socket_timeout=300)
    attempt = 0
    while True:
        try:
            return local.client.call(name, args, route_key=route)
        except Exception as exc:
            attempt += 1
            if not is_retriable(exc) or attempt >= 20:
                raise
            time.sleep(0.01 * attempt)


def gather_figures(cfg: Any, prefixes: dict[int, bytes], threads: int = 4) -> list[dict]:
    """Every district's figures, fetched with ``threads`` concurrent callers."""
    local = _Clients()
    tasks = [(w, d) for w in sorted(prefixes) for d in range(1, DISTRICTS + 1)]

    def one(task: tuple[int, int]) -> dict:
        w, d = task
        p = prefixes[w]
        return _call(cfg, local, "tpcc.check_district", {"p": p, "w": w, "d": d}, p + b"W")

    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(tasks)))) as pool:
        return list(pool.map(one, tasks))


def check(cfg: Any, prefixes: dict[int, bytes], conditions: list[int], fresh: bool,
          threads: int = 4) -> tuple[dict[int, bool], list[dict], list[dict]]:
    """(condition -> passed, violations, figures)."""
    figures = gather_figures(cfg, prefixes, threads)
    results, violations = evaluate(figures, conditions, fresh)
    return results, violations, figures


def stock_totals(cfg: Any, prefixes: dict[int, bytes], items: int, threads: int = 4) -> tuple[int, int]:
    """(sum of S_ORDER_CNT, sum of S_REMOTE_CNT) over every warehouse's stock."""
    local = _Clients()
    tasks = [(w, lo) for w in sorted(prefixes) for lo in range(1, items + 1, STOCK_CHUNK)]

    def one(task: tuple[int, int]) -> list:
        w, lo = task
        p = prefixes[w]
        return _call(cfg, local, "tpcc.stock_totals", {"p": p, "lo": lo, "hi": min(items + 1, lo + STOCK_CHUNK)},
                     p + b"W")

    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(tasks)))) as pool:
        parts = list(pool.map(one, tasks))
    return sum(p[0] for p in parts), sum(p[1] for p in parts)
