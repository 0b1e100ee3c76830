"""The initial population (clause 4.3.3.1), generated here and shipped in batched ``tpcc.load`` calls.

Work is cut into units (the items of one shard, one warehouse's own rows, a
slice of its stock, one district's customers, one district's orders); worker
processes generate and send them in parallel, reporting rows per table to the
parent, which draws one progress bar per table.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from makod.procs.tpcc_schema import (
    CUSTOMERS,
    DISTRICTS,
    FIRST_UNDELIVERED,
    LOAD_UID,
    ORDERS,
    k_b,
    k_c,
    k_cname,
    k_d,
    k_dn,
    k_dy,
    k_h,
    k_i,
    k_no,
    k_o,
    k_oc,
    k_ol,
    k_q,
    k_s,
    k_w,
    k_wy,
)
from makoctl.bench.tpcc.gen import A_C_LAST, Strings, c_last, nurand

TABLES = ["item", "warehouse", "district", "customer", "history", "order", "new_order", "order_line", "stock"]
BATCH_KEYS = 4000  # keys per tpcc.load call
STOCK_UNIT = 20_000  # stock rows per unit of work


@dataclass(frozen=True)
class LoadPlan:
    warehouses: int
    items: int
    shards: int
    c_load: int  # NURand C for C_LAST at load time
    seed: int
    now: int  # the load's date/time (seconds)

    def expected_rows(self) -> dict[str, int]:
        """TPC-C rows per table (ORDER-LINE is an estimate: 5..15 lines per order)."""
        w = self.warehouses
        return {
            "item": self.items * self.shards,
            "warehouse": w,
            "district": w * DISTRICTS,
            "customer": w * DISTRICTS * CUSTOMERS,
            "history": w * DISTRICTS * CUSTOMERS,
            "order": w * DISTRICTS * ORDERS,
            "new_order": w * DISTRICTS * (ORDERS - FIRST_UNDELIVERED + 1),
            "order_line": w * DISTRICTS * ORDERS * 10,
            "stock": w * self.items,
        }

    def units(self) -> list[tuple]:
        """Units of work, biggest first (so parallel workers finish together)."""
        out: list[tuple] = []
        for w in range(1, self.warehouses + 1):
            for d in range(1, DISTRICTS + 1):
                out.append(("order", w, d))
        for w in range(1, self.warehouses + 1):
            for d in range(1, DISTRICTS + 1):
                out.append(("customer", w, d))
        for w in range(1, self.warehouses + 1):
            for lo in range(1, self.items + 1, STOCK_UNIT):
                out.append(("stock", w, lo, min(self.items, lo + STOCK_UNIT - 1)))
        for shard in range(self.shards):
            for lo in range(1, self.items + 1, STOCK_UNIT):
                out.append(("item", shard, lo, min(self.items, lo + STOCK_UNIT - 1)))
        for w in range(1, self.warehouses + 1):
            out.append(("warehouse", w))
        return out


Batch = tuple[bytes, list, dict[str, int]]  # (route key, rows, rows per table)


class Generator:
    """Rows of each unit, in batches of about BATCH_KEYS keys."""

    def __init__(self, plan: LoadPlan, prefixes: dict[int, bytes], item_prefixes: list[bytes]) -> None:
        self.plan = plan
        self.prefixes = prefixes
        self.item_prefixes = item_prefixes

    def batches(self, unit: tuple) -> Iterator[Batch]:
        rng = random.Random(f"{self.plan.seed}:{unit}")
        s = Strings(rng)
        kind = unit[0]
        return getattr(self, "_" + kind)(rng, s, *unit[1:])

    # Each generator yields (route, rows, counts) with rows = [[key, value], ...].
    def _item(self, rng: random.Random, s: Strings, shard: int, lo: int, hi: int) -> Iterator[Batch]:
        ip = self.item_prefixes[shard]
        route = ip + b"I"
        rows: list = []
        for i in range(lo, hi + 1):
            rows.append([k_i(ip, i), [rng.randint(1, 10000), s.a(14, 24), rng.randint(100, 10000), s.data(26, 50)]])
            if len(rows) >= BATCH_KEYS:
                yield route, rows, {"item": len(rows)}
                rows = []
        if rows:
            yield route, rows, {"item": len(rows)}

    def _address(self, s: Strings) -> list:
        return [s.a(10, 20), s.a(10, 20), s.a(10, 20), s.state(), s.zip()]

    def _warehouse(self, rng: random.Random, s: Strings, w: int) -> Iterator[Batch]:
        p = self.prefixes[w]
        rows: list = [
            [k_w(p), [s.a(6, 10), *self._address(s), rng.randint(0, 2000)]],
            [k_wy(p), 30_000_000],
        ]
        for d in range(1, DISTRICTS + 1):
            rows.append([k_d(p, d), [s.a(6, 10), *self._address(s), rng.randint(0, 2000)]])
            rows.append([k_dn(p, d), ORDERS + 1])
            rows.append([k_dy(p, d), 3_000_000])
        yield p + b"W", rows, {"warehouse": 1, "district": DISTRICTS}

    def _stock(self, rng: random.Random, s: Strings, w: int, lo: int, hi: int) -> Iterator[Batch]:
        p = self.prefixes[w]
        route = p + b"W"
        rows: list = []
        a = s.a
        for i in range(lo, hi + 1):
            rows.append([k_s(p, i), [s.data(26, 50)] + [a(24, 24) for _ in range(DISTRICTS)]])
            rows.append([k_q(p, i), [rng.randint(10, 100), 0, 0, 0]])
            if len(rows) >= BATCH_KEYS:
                yield route, rows, {"stock": len(rows) // 2}
                rows = []
        if rows:
            yield route, rows, {"stock": len(rows) // 2}

    def _customer(self, rng: random.Random, s: Strings, w: int, d: int) -> Iterator[Batch]:
        p = self.prefixes[w]
        route = p + b"W"
        now = self.plan.now
        c_load = self.plan.c_load
        rows: list = []
        n = 0
        a = s.a
        for c in range(1, CUSTOMERS + 1):
            last = c_last(c - 1 if c <= 1000 else nurand(rng, A_C_LAST, 0, 999, c_load))
            first = a(8, 16)
            credit = "BC" if rng.randrange(10) == 0 else "GC"
            rows.append([
                k_c(p, d, c),
                [first, "OE", last, *self._address(s), s.n(16), now, credit, 5_000_000,
                 rng.randint(0, 5000), a(300, 500)],
            ])
            rows.append([k_b(p, d, c), [-1000, 1000, 1, 0]])
            rows.append([k_cname(p, d, last, first, c), [first, c]])
            rows.append([k_h(p, d, c, LOAD_UID), [w, d, now, 1000, a(12, 24)]])
            n += 1
            if len(rows) >= BATCH_KEYS:
                yield route, rows, {"customer": n, "history": n}
                rows, n = [], 0
        if rows:
            yield route, rows, {"customer": n, "history": n}

    def _order(self, rng: random.Random, s: Strings, w: int, d: int) -> Iterator[Batch]:
        p = self.prefixes[w]
        route = p + b"W"
        now = self.plan.now
        items = self.plan.items
        randint = rng.randint
        alnum, pool = s.alnum, s.POOL - 24
        randrange = rng.randrange
        customers = list(range(1, CUSTOMERS + 1))
        rng.shuffle(customers)
        rows: list = []
        counts = {"order": 0, "new_order": 0, "order_line": 0}
        for o in range(1, ORDERS + 1):
            c = customers[o - 1]
            ol_cnt = randint(5, 15)
            delivered = o < FIRST_UNDELIVERED
            rows.append([k_o(p, d, o), [c, now, randint(1, 10) if delivered else None, ol_cnt, 1]])
            rows.append([k_oc(p, d, c, o), o])
            counts["order"] += 1
            if not delivered:
                rows.append([k_no(p, d, o), 1])
                counts["new_order"] += 1
            for n in range(1, ol_cnt + 1):
                off = randrange(pool)
                rows.append([
                    k_ol(p, d, o, n),
                    [randint(1, items), w, now if delivered else None, 5,
                     0 if delivered else randint(1, 999_999), alnum[off : off + 24]],
                ])
            counts["order_line"] += ol_cnt
            if len(rows) >= BATCH_KEYS:
                yield route, rows, counts
                rows, counts = [], {"order": 0, "new_order": 0, "order_line": 0}
        if rows:
            yield route, rows, counts


# -- running the load -------------------------------------------------------------------------------


def _send(client: Any, batch: Batch) -> None:
    route, rows, _ = batch
    client.call("tpcc.load", {"rows": rows}, route_key=route)


def _worker(cfg: Any, plan: LoadPlan, prefixes: dict, item_prefixes: list, units: Any, out: Any) -> None:
    import gc

    from makod.client import ClusterClient

    gc.set_threshold(100_000, 50, 100)  # generated rows hold no cycles; default thresholds cost ~2x here
    client = ClusterClient(cfg, socket_timeout=120)
    gen = Generator(plan, prefixes, item_prefixes)
    try:
        while True:
            unit = units.get()
            if unit is None:
                break
            for batch in gen.batches(unit):
                _send_with_retry(client, batch)
                out.put(("rows", batch[2]))
        out.put(("done", None))
    except BaseException as exc:  # reported to the parent, which stops the load
        out.put(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        client.close()


def _send_with_retry(client: Any, batch: Batch) -> None:
    import redis

    for attempt in range(50):
        try:
            _send(client, batch)
            return
        except (redis.exceptions.TryAgainError, redis.exceptions.BusyLoadingError):
            time.sleep(min(0.5, 0.01 * (attempt + 1)))
    _send(client, batch)


class LoadError(Exception):
    pass


def run_load(
    cfg: Any,
    plan: LoadPlan,
    prefixes: dict[int, bytes],
    item_prefixes: list[bytes],
    workers: int,
    on_rows: Callable[[dict[str, int]], None],
) -> int:
    """Load everything with ``workers`` processes; ``on_rows`` sees each batch's rows per table.

    Returns the number of TPC-C rows loaded.
    """
    ctx = mp.get_context("fork" if os.name == "posix" else "spawn")
    units = ctx.Queue()
    for unit in plan.units():
        units.put(unit)
    for _ in range(workers):
        units.put(None)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(cfg, plan, prefixes, item_prefixes, units, out), daemon=True)
        for _ in range(workers)
    ]
    for proc in procs:
        proc.start()
    total = 0
    done = 0
    try:
        while done < workers:
            try:
                kind, value = out.get(timeout=1.0)
            except queue.Empty:
                dead = [p for p in procs if p.exitcode not in (None, 0)]
                if dead:
                    raise LoadError(f"a load worker died (exit code {dead[0].exitcode})")
                continue
            if kind == "rows":
                total += sum(value.values())
                on_rows(value)
            elif kind == "done":
                done += 1
            else:
                raise LoadError(value)
    finally:
        for proc in procs:
            if proc.is_alive() and done < workers:
                proc.terminate()
            proc.join(timeout=5)
    return total
