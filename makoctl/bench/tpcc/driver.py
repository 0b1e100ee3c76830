"""The TPC-C driver: closed-loop terminals, each bound to a home warehouse.

No keying or think time (as Mako runs it): a terminal sends its next
transaction as soon as the previous one completes. Each terminal deals its
transaction types from a shuffled deck of 100 cards, 45 New-Order, 43
Payment and 4 each of Order-Status, Delivery and Stock-Level (clause 5.2.4).
A transaction the server aborts (TRYAGAIN: a conflict, a lost leader) is
retried with the same inputs; its latency runs from the first attempt to the
last.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import threading
import time
from typing import Callable
from dataclasses import dataclass, field
from typing import Any

from makod.client import ClusterClient
from makod.procs.tpcc_schema import DISTRICTS, home_shard
from makoctl.bench.tpcc.common import FatalError, TypeStats, Window, call_with_retries, run_clients
from makoctl.bench.tpcc.gen import DECK, DELIVERY, NEW_ORDER, ORDER_STATUS, PAYMENT, STOCK_LEVEL, TYPES, NURandC, TxnInputs

PROCS = {
    NEW_ORDER: "tpcc.new_order",
    PAYMENT: "tpcc.payment",
    ORDER_STATUS: "tpcc.order_status",
    DELIVERY: "tpcc.delivery",
    STOCK_LEVEL: "tpcc.stock_level",
}


@dataclass
class RunSpec:
    cfg: Any
    warehouses: int
    items: int
    prefixes: dict[int, bytes]
    item_prefixes: list[bytes]
    consts: NURandC
    seed: int
    clients: int


@dataclass
class ClientStats:
    types: dict[str, TypeStats] = field(default_factory=lambda: {t: TypeStats() for t in TYPES})
    order_lines: int = 0  # lines of committed New-Orders
    remote_lines: int = 0
    payments: int = 0  # committed Payments
    remote_payments: int = 0
    by_name: int = 0  # committed Payments and Order-Status that chose the customer by last name
    by_name_of: int = 0
    skipped_deliveries: int = 0  # districts a committed Delivery found without a new order

    def merge(self, other: "ClientStats") -> None:
        for t in TYPES:
            self.types[t].merge(other.types[t])
        for name in ("order_lines", "remote_lines", "payments", "remote_payments", "by_name", "by_name_of",
                     "skipped_deliveries"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def terminal(idx: int, spec: RunSpec, window: Window, stats: ClientStats, nonce: int):
    """The body of terminal ``idx``'s thread."""
    w = idx % spec.warehouses + 1
    shards = len(spec.cfg.shards)
    rng = random.Random(f"{spec.seed}:terminal:{idx}")
    gen = TxnInputs(
        rng, w, spec.warehouses, spec.items, spec.prefixes,
        spec.item_prefixes[home_shard(w, spec.warehouses, shards)], spec.consts,
        stock_level_d=(idx // spec.warehouses) % DISTRICTS + 1,
        uid_base=b"%08x%04x" % (nonce, idx % 0x10000),
    )

    def body() -> None:
        client = ClusterClient(spec.cfg, socket_timeout=60)
        route = gen.route
        deck: list[str] = []
        perf = time.perf_counter
        mono = time.monotonic
        try:
            while not window.stop.is_set() and mono() < window.end:
                if not deck:
                    deck = DECK[:]
                    rng.shuffle(deck)
                kind = deck.pop()
                now = int(time.time())
                remote = 0
                if kind == NEW_ORDER:
                    args, remote = gen.new_order(now)
                elif kind == PAYMENT:
                    args, remote = gen.payment(now)
                elif kind == ORDER_STATUS:
                    args = gen.order_status()
                elif kind == DELIVERY:
                    args = gen.delivery(now)
                else:
                    args = gen.stock_level()
                name = PROCS[kind]
                t0 = perf()
                result, aborts, outcome = call_with_retries(client, name, args, route, rng, window.stop)
                if outcome == "rolled_back" and kind != NEW_ORDER:
                    raise FatalError(f"{name} rolled back unexpectedly: {result}")
                rolled_back, failed = outcome == "rolled_back", outcome == "failed"
                latency = perf() - t0
                if not window.measuring(mono()):
                    continue
                ts = stats.types[kind]
                ts.aborts += aborts
                ts.retries += aborts - (1 if failed else 0)
                if failed:
                    ts.failed += 1
                    continue
                ts.record(latency)
                if rolled_back:
                    ts.rollbacks += 1
                    continue
                ts.commits += 1
                if kind == NEW_ORDER:
                    stats.order_lines += len(args["l"])
                    stats.remote_lines += remote
                elif kind == PAYMENT:
                    stats.payments += 1
                    stats.remote_payments += 1 if remote else 0
                if kind in (PAYMENT, ORDER_STATUS):
                    stats.by_name_of += 1
                    stats.by_name += 1 if "last" in args else 0
                if kind == DELIVERY:
                    stats.skipped_deliveries += sum(1 for o in result if not o)
        finally:
            client.close()

    return body


def run(
    spec: RunSpec,
    warmup: float,
    duration: float,
    live: bool,
    plain: bool = False,
    processes: int = 1,
    sample_cpu: Callable[[], float] | None = None,
) -> tuple[ClientStats, float, float | None]:
    """Run the terminals; returns (merged stats of the measured window, its
    length in seconds, server CPU seconds spent in it if ``sample_cpu``).

    With ``processes`` > 1 the terminals are dealt over that many driver
    processes (each with its own threads), so a single Python process's GIL
    does not cap what the servers are asked to do.
    """
    nonce = int.from_bytes(os.urandom(4), "big")
    start = time.monotonic() + warmup + (2.0 if processes > 1 else 0.0)  # time to spawn
    cpu: list[float] = []
    if sample_cpu is not None:
        def sampler() -> None:
            for t in (start, start + duration):
                time.sleep(max(0.0, t - time.monotonic()))
                cpu.append(sample_cpu())
        threading.Thread(target=sampler, daemon=True).start()
    if processes <= 1:
        merged, measured = _run_terminals(spec, list(range(spec.clients)), start, duration, nonce, live, plain)
    else:
        ctx = multiprocessing.get_context("spawn")
        groups = [list(range(p, spec.clients, processes)) for p in range(processes)]
        with ctx.Pool(processes) as pool:
            parts = pool.starmap(_run_terminals, [(spec, g, start, duration, nonce, False, False) for g in groups])
        merged = ClientStats()
        for part, _ in parts:
            merged.merge(part)
        measured = min(duration, max(0.0, time.monotonic() - start))
    deadline = time.monotonic() + 5
    while sample_cpu is not None and len(cpu) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    server_cpu = cpu[1] - cpu[0] if len(cpu) == 2 else None
    return merged, measured, server_cpu


def _run_terminals(spec: RunSpec, indices: list[int], start: float, duration: float, nonce: int,
                   live: bool, plain: bool) -> tuple[ClientStats, float]:
    window = Window(0.0, duration, start=start)
    per_client = {i: ClientStats() for i in indices}

    def make(n: int, win: Window):
        i = indices[n]
        return terminal(i, spec, win, per_client[i], nonce)

    def counter() -> int:
        return sum(ts.completed for cs in per_client.values() for ts in cs.types.values())

    errors = run_clients(len(indices), make, window, counter, live, "tpcc", plain)
    if errors:
        raise errors[0]
    merged = ClientStats()
    for cs in per_client.values():
        merged.merge(cs)
    measured = min(duration, max(0.0, time.monotonic() - window.start))
    return merged, measured

