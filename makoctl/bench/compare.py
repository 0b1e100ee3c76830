"""``makoctl bench compare``: the commit protocols side by side on this machine.

A sweep over cluster shapes x leader layouts x protocols x injected delays x
workloads. Each (shape, layout, protocol) gets one ephemeral cluster; for the
next delay it is restarted on the same data with the new ``inject_delay_ms``
(so a TPC-C database is loaded once per cluster, not per delay). Every cell
runs an existing benchmark as a function (``bench micro``'s ``run``,
``bench tpcc``'s ``run``) and keeps its whole report; the table shows the
figures that compare protocols, ``--json`` gives all of them and ``--chart``
draws throughput and latency against the round-trip time.

Workloads:

* ``micro``: 10 operations per transaction, half reads, every transaction on
  two shards (``bench micro --ops-per-txn 10 --read-ratio 0.5 --cross-shard 1``);
* ``tiga-z0.5``, ``tiga-z0.99`` (``tiga``: both): Tiga's microbenchmark, three
  increments on three shards (as many as the cluster has, up to three), Zipf
  skew 0.5 or 0.99;
* ``tpcc``: TPC-C, one warehouse per shard by default (loading costs about
  25 s per warehouse on 2x3, once per cluster).
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass, replace
from typing import Any, Callable

import click
import redis
from click.core import ParameterSource
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from makod.config import PROTOCOLS
from makoctl.bench import micro as micro_bench
from makoctl.bench.compare_chart import chart_svg
from makoctl.bench.tpcc import cli as tpcc_cli
from makoctl.bench.tpcc.common import (
    BenchCluster,
    BenchError,
    FatalError,
    console,
    err_console,
    open_cluster,
    server_cpu_sampler,
)
from makoctl.bench.tpcc.load import LoadError

MICRO_SHAPES = {
    "micro": micro_bench.Params(keys=100_000, read_ratio=0.5, ops=10, cross_shard=1.0, zipf=0.0),
    "tiga-z0.5": micro_bench.Params(keys=100_000, read_ratio=0.0, ops=3, cross_shard=1.0, zipf=0.5,
                                    shards_per_txn=3),
    "tiga-z0.99": micro_bench.Params(keys=100_000, read_ratio=0.0, ops=3, cross_shard=1.0, zipf=0.99,
                                     shards_per_txn=3),
}
WORKLOADS = [*MICRO_SHAPES, "tpcc"]
ALIASES = {"tiga": ["tiga-z0.5", "tiga-z0.99"]}
LEADER_LAYOUTS = ["co-located", "spread"]
SHORT = {"single_shard": "single", "cross_shard": "cross", "new_order": "NewOrd", "payment": "Pay",
         "order_status": "OrdStat", "delivery": "Deliv", "stock_level": "StockLvl"}
QUICK: dict[str, Any] = {"duration_s": 1.5, "warmup_s": 0.3, "clients": 8, "keys": 10_000, "tpcc_items": 10_000,
         "workloads": ["micro", "tiga-z0.99"]}


# -- option parsing -------------------------------------------------------------------------------------


def _csv(choices: list[str], aliases: dict[str, list[str]] | None = None):
    def parse(ctx: click.Context, param: click.Parameter, value: str) -> list[str]:
        out: list[str] = []
        for name in (v.strip() for v in value.split(",")):
            if not name:
                continue
            names = (aliases or {}).get(name, [name])
            for n in names:
                if n not in choices:
                    raise click.BadParameter(f"{name!r} is not one of {', '.join(choices + list(aliases or {}))}")
                if n not in out:
                    out.append(n)
        if not out:
            raise click.BadParameter("give at least one")
        return out
    return parse


def _parse_clusters(ctx: click.Context, param: click.Parameter, value: str) -> list[tuple[int, int]]:
    out = []
    for item in (v.strip() for v in value.split(",")):
        try:
            s, r = (int(x) for x in item.lower().split("x"))
        except ValueError:
            raise click.BadParameter(f"{item!r}: write SHARDSxREPLICAS, e.g. 2x3") from None
        if not (1 <= s <= 64 and 1 <= r <= 9):
            raise click.BadParameter(f"{item!r}: 1 to 64 shards, 1 to 9 replicas")
        if (s, r) not in out:
            out.append((s, r))
    return out


def _parse_delays(ctx: click.Context, param: click.Parameter, value: str) -> list[float]:
    out = []
    for item in (v.strip() for v in value.split(",")):
        try:
            d = float(item)
        except ValueError:
            raise click.BadParameter(f"{item!r} is not a number of milliseconds") from None
        if not 0 <= d <= 10_000:
            raise click.BadParameter(f"{item!r}: 0 to 10000 ms")
        if d not in out:
            out.append(d)
    return out


# -- the command ----------------------------------------------------------------------------------------


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--protocols", default=",".join(["mako", "luigi", "2pc-paxos"]), show_default=True,
              callback=_csv(list(PROTOCOLS)), help="Commit protocols to compare, comma-separated.")
@click.option("--workloads", default="micro,tiga", show_default=True, callback=_csv(WORKLOADS, ALIASES),
              help="Comma-separated among micro (10 ops, half reads, 2 shards), tiga (= tiga-z0.5,tiga-z0.99: "
                   "3 increments on 3 shards, Zipf 0.5 / 0.99) and tpcc [--quick: micro,tiga-z0.99].")
@click.option("--clusters", default="2x3", show_default=True, callback=_parse_clusters,
              help="Cluster shapes SHARDSxREPLICAS, comma-separated (replica r in datacenter r).")
@click.option("--delays-ms", default="0,25", show_default=True, callback=_parse_delays,
              help="One-way delays injected between datacenters, comma-separated (RTT = 2x).")
@click.option("--leaders", default="co-located", show_default=True, callback=_csv(LEADER_LAYOUTS),
              help="Shard leaders: co-located (all in dc0, Mako's layout) or spread (shard i's in dc i mod "
                   "REPLICAS); both: co-located,spread.")
@click.option("--duration-s", type=click.FloatRange(0.5, 3600), default=5.0, show_default=True,
              help="Seconds measured per cell [--quick: 1.5].")
@click.option("--warmup-s", type=click.FloatRange(0, 600), default=1.0, show_default=True,
              help="Seconds run before measuring, per cell [--quick: 0.3].")
@click.option("--clients", "-c", type=click.IntRange(1, 1024), default=16, show_default=True,
              help="Closed-loop clients (TPC-C terminals) per cell [--quick: 8].")
@click.option("--keys", type=click.IntRange(10, 50_000_000), default=100_000, show_default=True,
              help="Counters of the micro and tiga workloads [--quick: 10000].")
@click.option("--tpcc-warehouses", type=click.IntRange(1, 1000),
              help="TPC-C warehouses [default: one per shard].")
@click.option("--tpcc-items", type=click.IntRange(100, 100_000), default=100_000, show_default=True,
              help="TPC-C ITEM rows (below 100000 the load is faster but not a valid TPC-C) [--quick: 10000].")
@click.option("--base-port", type=click.IntRange(1024, 55000),
              help="First RESP port of every cluster (started one after another) [default: a free block each].")
@click.option("--seed", type=int, help="Seed of every random choice [default: random].")
@click.option("--quick", is_flag=True,
              help="About a minute with the defaults: workloads micro,tiga-z0.99, 1.5 s per cell, 0.3 s warmup, "
                   "8 clients, 10,000 keys, 10,000 TPC-C items (options given explicitly win).")
@click.option("--json", "as_json", is_flag=True, help="Print every figure as one JSON object on stdout.")
@click.option("--chart", "chart_path", type=click.Path(dir_okay=False, writable=True),
              help="Write an SVG chart: throughput and p50/p99 latency against RTT, a line per protocol.")
@click.pass_context
def compare(ctx: click.Context, protocols: list[str], workloads: list[str], clusters: list[tuple[int, int]],
            delays_ms: list[float], leaders: list[str], duration_s: float, warmup_s: float, clients: int, keys: int,
            tpcc_warehouses: int | None, tpcc_items: int, base_port: int | None, seed: int | None, quick: bool,
            as_json: bool, chart_path: str | None) -> None:
    """Run the commit protocols side by side on this machine and print one table.

    For every cluster shape, leader layout, protocol, delay and workload (a
    "cell"): TPS, p50/p99 latency per transaction type, aborts (TRYAGAIN
    answers) and retries, server CPU per committed transaction (every makod's
    CPU time over the measured window, from /proc) and, for luigi, the share
    of bumped and repositioned transactions (INFO luigi_bumped,
    luigi_repositioned, luigi_txns; "-" when the server does not report them).

    Every cluster is ephemeral, on this machine, and stopped at the end.
    Exit status: 0 if every cell ran, 1 if any failed (its row says why).
    """
    if quick:  # --quick's figures for every option left at its default
        given = {name for name in QUICK if ctx.get_parameter_source(name) != ParameterSource.DEFAULT}
        duration_s = duration_s if "duration_s" in given else QUICK["duration_s"]
        warmup_s = warmup_s if "warmup_s" in given else QUICK["warmup_s"]
        clients = clients if "clients" in given else int(QUICK["clients"])
        keys = keys if "keys" in given else int(QUICK["keys"])
        tpcc_items = tpcc_items if "tpcc_items" in given else int(QUICK["tpcc_items"])
        workloads = workloads if "workloads" in given else list(QUICK["workloads"])
    if seed is None:
        seed = random.SystemRandom().randrange(1 << 31)
    settings = {
        "protocols": protocols, "workloads": workloads, "clusters": [f"{s}x{r}" for s, r in clusters],
        "delays_ms": delays_ms, "leaders": leaders, "duration_s": duration_s, "warmup_s": warmup_s,
        "clients": clients, "keys": keys, "tpcc_warehouses": tpcc_warehouses, "tpcc_items": tpcc_items,
        "seed": seed, "quick": quick, "cpus": os.cpu_count(),
    }
    sweep = Sweep(settings, protocols, workloads, clusters, delays_ms, leaders, duration_s, warmup_s, clients, keys,
                  tpcc_warehouses, tpcc_items, base_port, seed, as_json)
    try:
        rows = sweep.run()
    except KeyboardInterrupt:
        err_console.print("[bold red]interrupted[/]")
        sys.exit(130)
    _add_ratios(rows)
    report = {"benchmark": "compare", "settings": settings, "rows": rows,
              "failed_cells": sum(1 for r in rows if r["error"])}
    if chart_path:
        try:
            with open(chart_path, "w") as f:
                f.write(chart_svg(rows, settings))
        except OSError as exc:
            err_console.print(f"[bold red]error:[/] cannot write the chart: {exc}", highlight=False)
            sys.exit(1)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        console.print(results_table(rows, settings))
        if chart_path:
            console.print(f"chart: {chart_path}", highlight=False)
    for row in rows:
        if row["error"]:
            err_console.print(f"[bold red]error:[/] {_cell_name(row)}: {row['error']}", highlight=False,
                              soft_wrap=True)
    sys.exit(1 if report["failed_cells"] else 0)


# -- the sweep ------------------------------------------------------------------------------------------


@dataclass
class Cell:
    shards: int
    replicas: int
    leaders: str
    protocol: str
    delay_ms: float
    workload: str


class Sweep:
    def __init__(self, settings: dict, protocols: list[str], workloads: list[str], clusters: list[tuple[int, int]],
                 delays_ms: list[float], leaders: list[str], duration_s: float, warmup_s: float, clients: int,
                 keys: int, tpcc_warehouses: int | None, tpcc_items: int, base_port: int | None, seed: int,
                 as_json: bool) -> None:
        self.settings = settings
        self.protocols, self.workloads, self.clusters = protocols, workloads, clusters
        self.delays_ms, self.leaders = delays_ms, leaders
        self.duration_s, self.warmup_s, self.clients, self.keys = duration_s, warmup_s, clients, keys
        self.tpcc_warehouses, self.tpcc_items = tpcc_warehouses, tpcc_items
        self.base_port, self.seed, self.as_json = base_port, seed, as_json
        self.rows: list[dict[str, Any]] = []

    def cells(self) -> list[Cell]:
        return [Cell(s, r, lead, p, d, w) for s, r in self.clusters for lead in self.leaders for p in self.protocols
                for d in self.delays_ms for w in self.workloads]

    def run(self) -> list[dict[str, Any]]:
        cells = self.cells()
        live = err_console.is_terminal
        progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=err_console, transient=False, disable=not live)
        with progress:
            task = progress.add_task("compare", total=len(cells))

            def step(text: str) -> None:
                progress.update(task, description=text)

            def done(row: dict[str, Any]) -> None:
                self.rows.append(row)
                progress.advance(task)
                if not live:  # a log: a line a cell (on stderr, also with --json)
                    status = f"error: {row['error']}" if row["error"] else f"{row['tps']:,.1f} TPS"
                    err_console.print(f"[{len(self.rows)}/{len(cells)}] {_cell_name(row)}: {status}",
                                      highlight=False, markup=False)

            groups: dict[tuple, list[Cell]] = {}
            for cell in cells:
                groups.setdefault((cell.shards, cell.replicas, cell.leaders, cell.protocol), []).append(cell)
            for (shards, replicas, lead, protocol), group in groups.items():
                self._run_cluster(shards, replicas, lead, protocol, group, step, done)
        return self.rows

    def _run_cluster(self, shards: int, replicas: int, lead: str, protocol: str, group: list[Cell],
                     step: Callable[[str], None], done: Callable[[dict], None]) -> None:
        bench: BenchCluster | None = None
        name = f"{protocol} {shards}x{replicas}" + (" spread" if lead == "spread" else "")
        try:
            step(f"{name}: starting the cluster")
            try:
                bench = open_cluster(None, None, shards, replicas, protocol, None, group[0].delay_ms,
                                     self.base_port, leaders=lead)
            except (BenchError, OSError) as exc:
                for cell in group:
                    done(_row(cell, None, error=f"cluster did not start: {exc}"))
                return
            delay = group[0].delay_ms
            broken: str | None = None
            for cell in group:
                if broken is None and cell.delay_ms != delay:
                    step(f"{name}: restarting with {cell.delay_ms:g} ms delay")
                    try:
                        bench.restart(cell.delay_ms)
                        delay = cell.delay_ms
                    except (BenchError, OSError) as exc:
                        broken = f"cluster did not restart: {exc}"
                if broken is not None:
                    done(_row(cell, None, error=broken))
                    continue
                _wait_preferred_leaders(bench)
                step(f"{name}, RTT {2 * cell.delay_ms:g} ms: {cell.workload}")
                done(self._run_cell(bench, cell))
        finally:
            if bench is not None:
                step(f"{name}: stopping the cluster")
                bench.close()

    def _run_cell(self, bench: BenchCluster, cell: Cell) -> dict[str, Any]:
        probe = ServerProbe(bench.cfg)
        leader_dcs = _leader_datacenters(bench)
        try:
            if cell.workload == "tpcc":
                warehouses = self.tpcc_warehouses or cell.shards

                def tpcc() -> tuple[int, dict[str, Any]]:
                    return tpcc_cli.run(bench, tpcc_cli.Ui(as_json=True), warehouses, self.clients, self.duration_s,
                                        self.warmup_s, False, False, self.seed, None, self.tpcc_items, 1,
                                        sample_cpu=probe)

                code, report = tpcc()
                if code == 0 and not report.get("load", {}).get("reused", True):
                    # Right after the load the followers are still applying it: measure again once they are done.
                    load = report["load"]
                    _settle(probe.cpu)
                    probe = ServerProbe(bench.cfg)
                    code, report = tpcc()
                    report["load"] = dict(load, measured_again_after_load=True)
            else:
                params = replace(MICRO_SHAPES[cell.workload], keys=self.keys)
                code, report = micro_bench.run(bench, params, self.clients, self.duration_s, self.warmup_s, False,
                                               self.seed, sample_cpu=probe)
        except (BenchError, FatalError, LoadError) as exc:
            return _row(cell, None, error=str(exc), leader_dcs=leader_dcs)
        except (redis.RedisError, OSError) as exc:
            return _row(cell, None, error=f"talking to the cluster failed: {type(exc).__name__}: {exc}",
                        leader_dcs=leader_dcs)
        error = None if code == 0 else f"the benchmark exited {code}"
        if error is None and not report.get("tps"):
            error = "no transaction completed"
        return _row(cell, report, error=error, luigi=probe.luigi_delta(), leader_dcs=leader_dcs)


def _settle(cpu: Callable[[], float] | None, idle_cores: float = 0.3, timeout_s: float = 60.0) -> None:
    """Until the cluster's makods use less than ``idle_cores`` of CPU over a second (or ``timeout_s``)."""
    if cpu is None:
        time.sleep(2.0)
        return
    deadline = time.monotonic() + timeout_s
    last = cpu()
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = cpu()
        if now - last < idle_cores:
            return
        last = now


class ServerProbe:
    """Called at the measured window's start and end: returns the makods' CPU seconds so far
    (see ``server_cpu_sampler``) and notes the luigi counters of every node's INFO."""

    FIELDS = ("luigi_txns", "luigi_bumped", "luigi_repositioned")

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        self.cpu = server_cpu_sampler(cfg)
        self.luigi: list[dict[str, int] | None] = []

    def __call__(self) -> float:
        self.luigi.append(self._luigi())
        return self.cpu() if self.cpu is not None else float("nan")

    def _luigi(self) -> dict[str, int] | None:
        total = {f: 0 for f in self.FIELDS}
        seen = False
        for rep in self.cfg.replicas:
            try:
                with redis.Redis(host=rep.host, port=rep.resp_port, password=self.cfg.requirepass, protocol=2,
                                 socket_timeout=1, socket_connect_timeout=1) as r:
                    info = r.info("everything")
            except (redis.RedisError, OSError):
                continue
            for f in self.FIELDS:
                if f in info:
                    try:
                        total[f] += int(info[f])
                        seen = True
                    except (TypeError, ValueError):
                        pass
        return total if seen else None

    def luigi_delta(self) -> dict[str, int] | None:
        if len(self.luigi) != 2 or self.luigi[0] is None or self.luigi[1] is None:
            return None
        return {f: self.luigi[1][f] - self.luigi[0][f] for f in self.FIELDS}


def _wait_preferred_leaders(bench: BenchCluster, timeout_s: float = 20.0) -> None:
    """Until every shard's preferred leader (config.preferred_leader) leads and serves, or ``timeout_s``:
    a cluster just started may elect another replica first and hand over later, in the middle of a cell."""
    from makoctl.procs import node_status

    cfg = bench.cfg
    deadline = time.monotonic() + timeout_s
    for shard in range(len(cfg.shards)):
        node_id = cfg.preferred_leader(shard)
        if node_id is None:
            continue
        rep = cfg.by_id(node_id)
        while time.monotonic() < deadline:
            st = node_status(rep, cfg.requirepass)
            if st and st.get("role") == "leader" and st.get("serving"):
                break
            time.sleep(0.2)


def _leader_datacenters(bench: BenchCluster) -> list[str | None]:
    """The datacenter each shard's leader is in now (None: no leader found)."""
    from makoctl.procs import node_status

    out: list[str | None] = []
    for shard in bench.cfg.shards:
        dc = None
        for rep in shard.replicas:
            st = node_status(rep, bench.cfg.requirepass)
            if st and st.get("role") == "leader":
                dc = rep.datacenter
                break
        out.append(dc)
    return out


# -- rows -----------------------------------------------------------------------------------------------


def _us(ms: float | None) -> float | None:
    return None if ms is None else round(ms * 1000, 1)


def _pct(part: float, whole: float) -> float | None:
    return round(100.0 * part / whole, 3) if whole else None


def headline_type(workload: str, shards: int) -> str:
    """The transaction type a cell's single latency figure (the chart's) is of."""
    if workload == "tpcc":
        return "new_order"
    return "cross_shard" if shards > 1 else "single_shard"


def _row(cell: Cell, report: dict[str, Any] | None, error: str | None = None,
         luigi: dict[str, int] | None = None, leader_dcs: list | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "cluster": f"{cell.shards}x{cell.replicas}", "shards": cell.shards, "replicas": cell.replicas,
        "leaders": cell.leaders, "leader_datacenters": leader_dcs, "protocol": cell.protocol,
        "delay_ms": cell.delay_ms, "rtt_ms": 2 * cell.delay_ms, "workload": cell.workload, "error": error,
        "duration_s": None, "tps": None, "tps_vs_2pc_paxos": None, "commits": None, "rollbacks": None,
        "aborts": None, "retries": None, "failed": None, "abort_pct": None, "retries_per_txn": None,
        "headline_type": headline_type(cell.workload, cell.shards), "latency_us_p50": None, "latency_us_p99": None,
        "types": {}, "server_cpu_us_per_txn": None, "server_cores_used": None,
        "luigi_txns": None, "luigi_bumped": None, "luigi_repositioned": None,
        "luigi_bumped_pct": None, "luigi_repositioned_pct": None, "report": report,
    }
    if report is None or "transactions" not in report:
        return row
    per_type = report["transactions"]
    commits = sum(t["commits"] for t in per_type.values())
    rollbacks = sum(t["rollbacks"] for t in per_type.values())
    aborts = sum(t["aborts"] for t in per_type.values())
    retries = sum(t["retries"] for t in per_type.values())
    failed = sum(t["failed"] for t in per_type.values())
    row.update({
        "duration_s": report.get("duration_s"), "tps": report.get("tps"), "commits": commits,
        "rollbacks": rollbacks, "aborts": aborts, "retries": retries, "failed": failed,
        # attempts: every commit or rollback was one attempt that ended; every abort one that did not
        "abort_pct": _pct(aborts, commits + rollbacks + aborts),
        "retries_per_txn": round(retries / (commits + rollbacks + failed), 4) if commits + rollbacks + failed else None,
        "types": {
            name: {"commits": t["commits"], "rollbacks": t["rollbacks"], "aborts": t["aborts"],
                   "retries": t["retries"], "failed": t["failed"], "tps": t["tps"],
                   "latency_us_p50": _us(t["p50_ms"]), "latency_us_p90": _us(t["p90_ms"]),
                   "latency_us_p99": _us(t["p99_ms"])}
            for name, t in per_type.items()
        },
    })
    head = row["types"].get(row["headline_type"], {})
    row["latency_us_p50"], row["latency_us_p99"] = head.get("latency_us_p50"), head.get("latency_us_p99")
    cpu = report.get("server_cpu") or {}
    cpu_s = cpu.get("cpu_s")
    if cpu_s is not None and math.isfinite(cpu_s) and commits:
        row["server_cpu_us_per_txn"] = round(cpu_s * 1e6 / commits, 1)
        row["server_cores_used"] = cpu.get("cores_used")
    if luigi is not None:
        row.update({"luigi_txns": luigi["luigi_txns"], "luigi_bumped": luigi["luigi_bumped"],
                    "luigi_repositioned": luigi["luigi_repositioned"],
                    "luigi_bumped_pct": _pct(luigi["luigi_bumped"], luigi["luigi_txns"]),
                    "luigi_repositioned_pct": _pct(luigi["luigi_repositioned"], luigi["luigi_txns"])})
    return row


def _add_ratios(rows: list[dict[str, Any]]) -> None:
    base = {(r["cluster"], r["leaders"], r["delay_ms"], r["workload"]): r["tps"]
            for r in rows if r["protocol"] == "2pc-paxos" and r["tps"]}
    for r in rows:
        b = base.get((r["cluster"], r["leaders"], r["delay_ms"], r["workload"]))
        if b and r["tps"] is not None:
            r["tps_vs_2pc_paxos"] = round(r["tps"] / b, 3)


def _cell_name(row: dict[str, Any]) -> str:
    return (f"{row['protocol']} {row['cluster']}" + (" spread" if row["leaders"] == "spread" else "")
            + f" RTT {row['rtt_ms']:g} ms {row['workload']}")


# -- the table ------------------------------------------------------------------------------------------


def _f(x: float | None, fmt: str = ",.1f") -> str:
    return "-" if x is None else format(x, fmt)


def results_table(rows: list[dict[str, Any]], settings: dict[str, Any]) -> Table:
    title = (f"compare: {settings['clients']} clients, {settings['duration_s']:g} s measured "
             f"(+{settings['warmup_s']:g} s warmup) per cell, seed {settings['seed']}")
    table = Table(title=title, show_lines=True, caption="luigi's bumped / repositioned: share of its transactions "
                  "(INFO luigi_bumped, luigi_repositioned over luigi_txns); -: not reported")
    for name, justify in (("cluster", "left"), ("RTT ms", "right"), ("workload", "left"), ("protocol", "left"),
                          ("TPS", "right"), ("x 2pc", "right"), ("p50 / p99 ms by type", "left"),
                          ("abort %", "right"), ("retry /txn", "right"), ("failed", "right"),
                          ("CPU µs /txn", "right"), ("bumped %", "right"), ("repos. %", "right")):
        table.add_column(name, justify=justify, no_wrap=name in ("workload", "protocol", "p50 / p99 ms by type"))  # type: ignore[arg-type]
    for r in rows:
        cluster = r["cluster"] + ("\nspread" if r["leaders"] == "spread" else "")
        if r["error"] and r["tps"] is None:
            table.add_row(cluster, f"{r['rtt_ms']:g}", r["workload"], r["protocol"],
                          "[bold red]failed[/]", "", r["error"][:60], *[""] * 6)
            continue
        lat = "\n".join(
            f"{SHORT.get(name, name)} {_f(_ms(t['latency_us_p50']), '.1f')} / {_f(_ms(t['latency_us_p99']), '.1f')}"
            for name, t in r["types"].items() if t["commits"] + t["rollbacks"] > 0) or "-"
        table.add_row(
            cluster, f"{r['rtt_ms']:g}", r["workload"], r["protocol"],
            ("[bold red]" if r["error"] else "") + _f(r["tps"]) + ("[/]" if r["error"] else ""),
            _f(r["tps_vs_2pc_paxos"], ".2f"), lat, _f(r["abort_pct"], ".2f"), _f(r["retries_per_txn"], ".3f"),
            f"{r['failed']:,}", _f(r["server_cpu_us_per_txn"], ",.0f"), _f(r["luigi_bumped_pct"], ".2f"),
            _f(r["luigi_repositioned_pct"], ".2f"),
        )
    return table


def _ms(us: float | None) -> float | None:
    return None if us is None else us / 1000
