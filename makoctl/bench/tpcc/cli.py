"""``makoctl bench tpcc``: load, run and check TPC-C (see docs/TPCC.md)."""

from __future__ import annotations

import json
import os
import random
import sys
import time
from typing import Any, Callable

import click
import redis
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from makod.client import ClusterClient
from makod.core.slots import SlotMap
from makod.procs.tpcc_check import CONDITION_TEXT, CONDITIONS
from makod.procs.tpcc_schema import CUSTOMERS, DISTRICTS, ITEMS, META_KEY, item_prefix, k_w, warehouse_prefix
from makoctl.bench.tpcc import check as checker
from makoctl.bench.tpcc import driver
from makoctl.bench.tpcc.common import (
    BenchCluster,
    BenchError,
    cluster_options,
    console,
    err_console,
    open_cluster,
    results_table,
    server_cpu_sampler,
)
from makoctl.bench.tpcc.gen import MIX, TYPES, NURandC
from makoctl.bench.tpcc.load import TABLES, LoadError, LoadPlan, run_load

META_VERSION = 1
LABELS = {
    "new_order": "New-Order",
    "payment": "Payment",
    "order_status": "Order-Status",
    "delivery": "Delivery",
    "stock_level": "Stock-Level",
}


@click.command()
@cluster_options
@click.option("--warehouses", "-w", default=1, show_default=True, type=click.IntRange(1, 10_000),
              help="Warehouses (W); warehouse w lives on shard (w-1)*S//W.")
@click.option("--clients", "-c", type=click.IntRange(1, 1024),
              help="Closed-loop terminals, spread evenly over the warehouses [default: 10 per warehouse, at most 64].")
@click.option("--duration", default=30.0, show_default=True, type=click.FloatRange(0.1, 86_400),
              help="Seconds measured.")
@click.option("--warmup", default=5.0, show_default=True, type=click.FloatRange(0, 3600),
              help="Seconds run before measuring.")
@click.option("--check", is_flag=True,
              help="Check the spec's consistency conditions (clause 3.3.2) after the load and after the run; "
                   "exit 1 on any violation.")
@click.option("--check-only", is_flag=True,
              help="Only check the consistency conditions of an already loaded database (no load, no run).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as one JSON object.")
@click.option("--seed", type=int, help="Seed of every random choice (load and run) [default: random].")
@click.option("--load-workers", type=click.IntRange(1, 64),
              help="Processes generating and sending the initial population [default: number of CPUs, 2 to 8].")
@click.option("--processes", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Driver processes the terminals are dealt over (one Python process's GIL caps "
                   "what it can ask of the servers).")
@click.option("--items", default=ITEMS, type=click.IntRange(100, ITEMS), hidden=True,
              help="ITEM rows (testing only: the spec fixes 100,000).")
def tpcc(
    config_file: str | None,
    data_dir: str | None,
    shards: int | None,
    replicas: int | None,
    protocol: str | None,
    ack: str | None,
    inject_delay_ms: float | None,
    base_port: int | None,
    warehouses: int,
    clients: int | None,
    duration: float,
    warmup: float,
    check: bool,
    check_only: bool,
    as_json: bool,
    seed: int | None,
    load_workers: int | None,
    processes: int,
    items: int,
) -> None:
    """TPC-C: load W warehouses, run the five transactions (45/43/4/4/4) and report tpmC.

    Runs against a running cluster (--config or --data-dir) or starts an
    ephemeral one (--shards, --replicas, --protocol) and stops it at the end.
    A database already loaded with the same warehouses is reused.

    Reports per transaction type commits, rollbacks (New-Order's 1% unused
    item), aborts and retries (TRYAGAIN from the server), p50/p90/p99 latency,
    the total TPS and tpmC (New-Orders completed per minute, the 1% rolled
    back on an unused item included; tpmc_committed_only leaves them out).
    """
    if check_only and check:
        raise click.UsageError("--check-only already checks; drop --check")
    if seed is None:
        seed = random.SystemRandom().randrange(1 << 31)
    ui = Ui(as_json)
    bench: BenchCluster | None = None
    code = 0
    try:
        bench = open_cluster(config_file, data_dir, shards, replicas, protocol, ack, inject_delay_ms, base_port,
                             status=ui.note)
        code = _main(bench, ui, warehouses, clients, duration, warmup, check, check_only, seed, load_workers, items,
                     processes)
    except BenchError as exc:
        ui.error(str(exc))
        code = 1
    except (driver.FatalError, LoadError) as exc:
        ui.error(str(exc))
        code = 1
    except (redis.RedisError, OSError) as exc:
        ui.error(f"talking to the cluster failed: {type(exc).__name__}: {exc}")
        code = 1
    except KeyboardInterrupt:
        ui.error("interrupted")
        code = 130
    finally:
        if bench is not None:
            bench.close()
    sys.exit(code)


class Ui:
    """Human output on stdout (tables) and stderr (progress), or one JSON object on stdout."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.live = err_console.is_terminal

    def note(self, text: str) -> None:
        if not self.as_json:
            err_console.print(text, highlight=False, markup=False)

    def error(self, text: str) -> None:
        err_console.print(f"[bold red]error:[/] {text}", highlight=False, soft_wrap=True)


def _main(bench: BenchCluster, ui: Ui, warehouses: int, clients: int | None, duration: float, warmup: float,
          check: bool, check_only: bool, seed: int, load_workers: int | None, items: int, processes: int = 1) -> int:
    code, report = run(bench, ui, warehouses, clients, duration, warmup, check, check_only, seed, load_workers, items,
                       processes)
    if ui.as_json:
        click.echo(json.dumps(report, indent=2))
    return code


def run(bench: BenchCluster, ui: Ui, warehouses: int, clients: int | None, duration: float, warmup: float,
        check: bool, check_only: bool, seed: int, load_workers: int | None, items: int,
        processes: int = 1, sample_cpu: Callable[[], float] | None = None) -> tuple[int, dict[str, Any]]:
    """Load (or reuse), run and maybe check on ``bench``: ``(exit code, report)``.

    The report is the object ``--json`` prints; tables and notes go through
    ``ui`` (nothing is printed with ``Ui(as_json=True)``). ``sample_cpu``:
    server CPU seconds so far, sampled at the measured window's start and end
    [default: every makod's CPU time from /proc].
    """
    client = ClusterClient(bench.cfg, socket_timeout=120)
    try:
        return _bench(bench, client, ui, warehouses, clients, duration, warmup, check, check_only, seed,
                      load_workers, items, processes, sample_cpu)
    finally:
        client.close()


def _bench(bench: BenchCluster, client: ClusterClient, ui: Ui, warehouses: int, clients: int | None,
           duration: float, warmup: float, check: bool, check_only: bool, seed: int, load_workers: int | None,
           items: int, processes: int = 1,
           sample_cpu: Callable[[], float] | None = None) -> tuple[int, dict[str, Any]]:
    cfg = bench.cfg
    slots = SlotMap([shard.current_slots for shard in cfg.shards])
    meta = client.call("tpcc.get", {"keys": [META_KEY]}, route_key=META_KEY)[0]
    report: dict[str, Any] = {
        "benchmark": "tpcc",
        "cluster": {"shards": bench.shards, "replicas": bench.replicas, "protocol": cfg.protocol,
                    "ack": cfg.ack, "ephemeral": bench.ephemeral_dir is not None},
        "seed": seed,
    }

    if check_only:
        if meta is None:
            raise BenchError("no TPC-C database in this cluster (load one with `makoctl bench tpcc`)")
        W = meta["warehouses"]
        prefixes = {w: warehouse_prefix(slots, w, W) for w in range(1, W + 1)}
        report.update({"warehouses": W, "items": meta["items"]})
        results, violations, _ = _run_check(ui, cfg, prefixes, CONDITIONS, bool(meta.get("fresh")), "check")
        report["consistency"] = _named(results, CONDITIONS)
        report["violations"] = violations
        _print_check(ui, "consistency", report["consistency"], violations)
        return (1 if violations else 0), report

    W = warehouses
    if items != ITEMS:
        ui.note(f"ITEM scaled down to {items:,} rows: for tests only, not a valid TPC-C (the spec fixes {ITEMS:,})")
    prefixes = {w: warehouse_prefix(slots, w, W) for w in range(1, W + 1)}
    item_prefixes = [item_prefix(slots, s) for s in range(bench.shards)]
    n_clients = clients or min(64, 10 * W)
    report.update({"warehouses": W, "items": items, "clients": n_clients, "warmup_s": warmup})

    # -- load (or reuse) ------------------------------------------------------------------------
    rng = random.Random(seed)
    if meta is None:
        if client.call("tpcc.get", {"keys": [k_w(prefixes[1])]}, route_key=k_w(prefixes[1]))[0] is not None:
            raise BenchError("the cluster holds TPC-C rows but no record of a finished load "
                             "(an interrupted load?); use a fresh cluster")
        c_load = NURandC.for_load(rng).c_last
        plan = LoadPlan(W, items, bench.shards, c_load, seed, int(time.time()))
        workers = load_workers or max(2, min(8, os.cpu_count() or 2))
        t0 = time.monotonic()
        rows = _load(ui, cfg, plan, prefixes, item_prefixes, workers)
        seconds = time.monotonic() - t0
        meta = {"version": META_VERSION, "warehouses": W, "items": items, "shards": bench.shards,
                "c_load": c_load, "fresh": True, "loaded_at": plan.now}
        client.call("tpcc.load", {"rows": [[META_KEY, meta]]}, route_key=META_KEY)
        report["load"] = {"rows": rows, "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds),
                          "workers": workers, "reused": False}
        ui.note(f"loaded {rows:,} rows in {seconds:.1f}s ({rows / seconds:,.0f} rows/s, {workers} workers)")
    else:
        mismatch = [(k, meta.get(k), v) for k, v in (("warehouses", W), ("items", items), ("shards", bench.shards))
                    if meta.get(k) != v]
        if mismatch:
            raise BenchError("the cluster already holds a TPC-C database with "
                             + ", ".join(f"{k}={have} (asked: {want})" for k, have, want in mismatch)
                             + "; use a fresh cluster or the same settings")
        report["load"] = {"rows": 0, "seconds": 0.0, "rows_per_s": 0, "reused": True}
        ui.note(f"reusing the TPC-C database already loaded ({W} warehouses)")
    fresh = bool(meta.get("fresh"))

    if check:
        results, violations, _ = _run_check(ui, cfg, prefixes, CONDITIONS, fresh, "check after load")
        report["consistency_after_load"] = _named(results, CONDITIONS)
        _print_check(ui, "consistency after load", report["consistency_after_load"], violations)
        if violations:
            report["violations"] = [dict(v, phase="after load") for v in violations]
            return 1, report

    # -- run -------------------------------------------------------------------------------------
    if fresh:
        meta = dict(meta, fresh=False)
        client.call("tpcc.load", {"rows": [[META_KEY, meta]]}, route_key=META_KEY)
    consts = NURandC.for_run(rng, meta["c_load"])
    spec = driver.RunSpec(cfg, W, items, prefixes, item_prefixes, consts, seed, n_clients)
    ui.note(f"running {n_clients} terminals on {W} warehouse(s) for {warmup:g}s warmup + {duration:g}s")
    sampler = sample_cpu or server_cpu_sampler(cfg)
    stats, measured, server_cpu = driver.run(spec, warmup, duration, live=ui.live and not ui.as_json,
                                             plain=not ui.live and not ui.as_json, processes=processes,
                                             sample_cpu=sampler)
    _fill_results(report, stats, measured)
    if server_cpu is not None and measured > 0:
        cores = server_cpu / measured
        report["server_cpu"] = {
            "cpu_s": round(server_cpu, 3),
            "cores_used": round(cores, 3),
            "cpu_us_per_txn": round(server_cpu * 1e6 / max(1.0, report["tps"] * measured), 1),
            "tps_per_server_core": round(report["tps"] / cores, 1) if cores > 0 else None,
        }

    code = 0
    if check:
        results, violations, figures = _run_check(ui, cfg, prefixes, CONDITIONS, False, "check after run")
        final = _named(results, CONDITIONS)
        final["11"] = report["consistency_after_load"].get("11", "skipped")
        report["consistency"] = final
        report["violations"] = [dict(v, phase="after run") for v in violations]
        orders, remote = checker.stock_totals(cfg, prefixes, items)
        hist = sum(f["n_history"] for f in figures) - W * DISTRICTS * CUSTOMERS
        remote_pay = sum(f["n_remote_payments"] for f in figures)
        report["database"] = {
            "remote_order_lines_pct": _pct(remote, orders),
            "remote_payments_pct": _pct(remote_pay, hist),
            "order_lines_since_load": orders,
            "payments_since_load": hist,
        }
        code = 1 if violations else 0
        _print_results(ui, report)
        _print_check(ui, "consistency after run (11: after load)", final, violations)
    else:
        _print_results(ui, report)
    return code, report


# -- pieces ------------------------------------------------------------------------------------------


def _load(ui: Ui, cfg: Any, plan: LoadPlan, prefixes: dict, item_prefixes: list, workers: int) -> int:
    expected = plan.expected_rows()
    if not ui.live or ui.as_json:
        return run_load(cfg, plan, prefixes, item_prefixes, workers, lambda counts: None)
    with Progress(
        TextColumn("{task.description:<11}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err_console, transient=False,
    ) as progress:
        tasks = {t: progress.add_task(t, total=expected[t]) for t in TABLES}

        def on_rows(counts: dict[str, int]) -> None:
            for table, n in counts.items():
                progress.advance(tasks[table], n)

        total = run_load(cfg, plan, prefixes, item_prefixes, workers, on_rows)
        for t in TABLES:  # ORDER-LINE's total was an estimate
            progress.update(tasks[t], total=progress.tasks[tasks[t]].completed)
    return total


def _run_check(ui: Ui, cfg: Any, prefixes: dict, conditions: list[int], fresh: bool, what: str):
    t0 = time.monotonic()
    if ui.live and not ui.as_json:
        with err_console.status(f"{what}: {len(prefixes) * DISTRICTS} districts", spinner="dots"):
            out = checker.check(cfg, prefixes, conditions, fresh)
    else:
        out = checker.check(cfg, prefixes, conditions, fresh)
    ui.note(f"{what}: {time.monotonic() - t0:.1f}s")
    for v in out[1]:
        where = f"warehouse {v['w']}" + ("" if v["d"] is None else f" district {v['d']}")
        ui.error(f"consistency condition {v['condition']} ({CONDITION_TEXT[v['condition']]}) violated: "
                 f"{where}: {v['detail']}")
    return out


def _named(results: dict[int, bool], conditions: list[int]) -> dict[str, str]:
    return {str(c): ("pass" if results[c] else "fail") if c in results else "skipped" for c in conditions}


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 3) if whole else None


def _fill_results(report: dict, stats: driver.ClientStats, measured: float) -> None:
    per_type = {t: stats.types[t].summary(measured) for t in TYPES}
    completed = {t: stats.types[t].completed for t in TYPES}
    total = sum(completed.values())
    for t in TYPES:
        per_type[t]["mix_pct"] = round(100.0 * completed[t] / total, 2) if total else 0.0
        per_type[t]["mix_target_pct"] = MIX[t]
    new_orders = completed["new_order"]
    report.update({
        "duration_s": round(measured, 3),
        "tps": round(total / measured, 2) if measured else 0.0,
        "tpmc": round(new_orders * 60.0 / measured, 1) if measured else 0.0,
        "tpmc_committed_only": round(stats.types["new_order"].commits * 60.0 / measured, 1) if measured else 0.0,
        "transactions": per_type,
        "remote": {
            "order_lines_pct": _pct(stats.remote_lines, stats.order_lines),
            "payments_pct": _pct(stats.remote_payments, stats.payments),
            "by_last_name_pct": _pct(stats.by_name, stats.by_name_of),
            "rollback_pct": _pct(stats.types["new_order"].rollbacks, new_orders),
        },
        "skipped_deliveries": stats.skipped_deliveries,
        "errors": sum(stats.types[t].failed for t in TYPES),
    })
    report.update(per_type)  # each type's figures at the top level too ("new_order": {...}, ...)


def _print_results(ui: Ui, report: dict) -> None:
    if ui.as_json:
        return
    per_type = report["transactions"]
    c = report["cluster"]
    title = (f"TPC-C: {report['warehouses']} warehouse(s), {report['clients']} terminals, "
             f"{c['shards']}x{c['replicas']} {c['protocol']}, {report['duration_s']:g}s")
    console.print(results_table(title, per_type, LABELS, {t: per_type[t]["mix_pct"] for t in per_type}))
    r = report["remote"]
    console.print(
        f"[bold]TPS {report['tps']:,.1f}[/]   [bold]tpmC {report['tpmc']:,.0f}[/] "
        f"(committed New-Orders only: {report['tpmc_committed_only']:,.0f})",
        highlight=False,
    )
    console.print(
        f"remote order lines {_fmt(r['order_lines_pct'])}%, remote payments {_fmt(r['payments_pct'])}%, "
        f"customer by last name {_fmt(r['by_last_name_pct'])}%, New-Order rollbacks {_fmt(r['rollback_pct'])}%, "
        f"skipped deliveries {report['skipped_deliveries']}",
        highlight=False,
    )
    if "database" in report:
        db = report["database"]
        console.print(
            f"in the database since load: remote order lines {_fmt(db['remote_order_lines_pct'])}% "
            f"of {db['order_lines_since_load']:,}, remote payments {_fmt(db['remote_payments_pct'])}% "
            f"of {db['payments_since_load']:,}",
            highlight=False,
        )


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _print_check(ui: Ui, title: str, named: dict[str, str], violations: list[dict]) -> None:
    if ui.as_json:
        return
    table = Table(title=title)
    table.add_column("#", justify="right")
    table.add_column("condition (clause 3.3.2)")
    table.add_column("result")
    table.add_column("first violation")
    first: dict[int, dict] = {}
    for v in violations:
        first.setdefault(v["condition"], v)
    for name, result in named.items():
        cond = int(name)
        style = {"pass": "green", "fail": "bold red"}.get(result, "dim")
        v = first.get(cond)
        where = ""
        if v is not None:
            where = f"w {v['w']}" + ("" if v["d"] is None else f" d {v['d']}") + f": {v['detail']}"
        table.add_row(name, CONDITION_TEXT[cond], f"[{style}]{result}[/]", where)
    console.print(table)
