"""``makoctl bench micro``: counters read and incremented in transactions of a chosen shape.

Knobs: how many keys, the share of reads, operations per transaction, the
share of transactions that span two shards, and the Zipf skew of key choice.
Key i lives on shard i mod S (a hash tag per shard), so the driver decides
exactly which shards a transaction touches. Closed-loop clients, each with a
home shard (client i: shard i mod S); a cross-shard transaction puts half of
its operations on another shard. Same output conventions as ``bench tpcc``.
"""

from __future__ import annotations

import functools
import json
import random
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

import click
import redis

from makod.client import ClusterClient
from makod.core.slots import SlotMap
from makoctl.bench.tpcc.common import (
    BenchCluster,
    BenchError,
    FatalError,
    TypeStats,
    Window,
    call_with_retries,
    cluster_options,
    console,
    err_console,
    open_cluster,
    results_table,
    run_clients,
    window_sampler,
)

LOAD_BATCH = 5000
TYPES = ["single_shard", "cross_shard"]
LABELS = {"single_shard": "single-shard", "cross_shard": "cross-shard"}


@functools.lru_cache(maxsize=64)
def _zeta(n: int, theta: float) -> float:
    return sum(1.0 / (i ** theta) for i in range(1, n + 1))


class Zipf:
    """Ranks 0..n-1 with P(rank k) ~ 1/(k+1)^theta (Gray et al.'s generator, as YCSB uses); theta 0 is uniform."""

    def __init__(self, n: int, theta: float, rng: random.Random) -> None:
        self.n, self.theta, self.rng = n, theta, rng
        if theta > 0:
            self.zetan = _zeta(n, theta)
            self.zeta2 = 1.0 + 0.5 ** theta
            self.alpha = 1.0 / (1.0 - theta)
            self.eta = (1.0 - (2.0 / n) ** (1.0 - theta)) / (1.0 - self.zeta2 / self.zetan) if n > 1 else 1.0

    def next(self) -> int:
        if self.theta == 0 or self.n == 1:
            return self.rng.randrange(self.n)
        u = self.rng.random()
        uz = u * self.zetan
        if uz < 1.0:
            return 0
        if uz < self.zeta2:
            return 1
        return min(self.n - 1, int(self.n * (self.eta * u - self.eta + 1.0) ** self.alpha))


class KeySpace:
    """Key i on shard i mod S: ``{tag of that shard}k<i>``."""

    def __init__(self, slots: SlotMap, keys: int) -> None:
        self.shards = slots.num_shards
        self.keys = keys
        self.prefixes = [b"{" + slots.tag_for_shard(s, "micro.").encode() + b"}k" for s in range(self.shards)]

    def per_shard(self, shard: int) -> int:
        return len(range(shard, self.keys, self.shards))

    def key(self, shard: int, rank: int) -> bytes:
        return b"%s%010d" % (self.prefixes[shard], rank * self.shards + shard)

    def range(self, shard: int) -> tuple[bytes, bytes]:
        return self.prefixes[shard], self.prefixes[shard] + b"\xff"


@dataclass
class Params:
    keys: int
    read_ratio: float
    ops: int
    cross_shard: float
    zipf: float
    # Shards a cross-shard transaction spreads its operations over, round robin
    # from its home shard (at most the cluster's shards). 2: half on home, half
    # on one other shard (the CLI's shape); Tiga's microbenchmark uses 3.
    shards_per_txn: int = 2


@click.command()
@cluster_options
@click.option("--keys", default=100_000, show_default=True, type=click.IntRange(1, 50_000_000),
              help="Counters, spread evenly over the shards.")
@click.option("--read-ratio", default=0.5, show_default=True, type=click.FloatRange(0, 1),
              help="Share of operations that only read (the rest read and increment).")
@click.option("--ops-per-txn", default=10, show_default=True, type=click.IntRange(1, 1000),
              help="Operations per transaction.")
@click.option("--cross-shard", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Share of transactions that touch a second shard (needs 2+ shards).")
@click.option("--zipf", default=0.0, show_default=True, type=click.FloatRange(0, 0.999),
              help="Zipf skew of key choice (0: uniform; 0.99: YCSB's hot spot).")
@click.option("--clients", "-c", default=8, show_default=True, type=click.IntRange(1, 1024),
              help="Closed-loop clients.")
@click.option("--duration", default=10.0, show_default=True, type=click.FloatRange(0.1, 86_400),
              help="Seconds measured.")
@click.option("--warmup", default=2.0, show_default=True, type=click.FloatRange(0, 3600),
              help="Seconds run before measuring.")
@click.option("--check", is_flag=True,
              help="After the run, check that the counters add up to the committed increments; exit 1 if not.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as one JSON object.")
@click.option("--seed", type=int, help="Seed of every random choice [default: random].")
def micro(
    config_file: str | None, data_dir: str | None, shards: int | None, replicas: int | None, protocol: str | None,
    ack: str | None, inject_delay_ms: float | None, base_port: int | None, keys: int, read_ratio: float,
    ops_per_txn: int, cross_shard: float, zipf: float, clients: int, duration: float, warmup: float, check: bool,
    as_json: bool, seed: int | None,
) -> None:
    """Transactions of OPS-PER-TXN reads/increments over KEYS counters: throughput, aborts, latency.

    Runs against a running cluster (--config or --data-dir) or an ephemeral
    one it starts and stops (--shards, --replicas, --protocol). The counters
    are reset to 0 before each run.
    """
    if seed is None:
        seed = random.SystemRandom().randrange(1 << 31)
    bench: BenchCluster | None = None
    code = 0
    try:
        bench = open_cluster(config_file, data_dir, shards, replicas, protocol, ack, inject_delay_ms, base_port,
                             status=lambda s: None if as_json else err_console.print(s, highlight=False))
        code = _main(bench, Params(keys, read_ratio, ops_per_txn, cross_shard, zipf), clients, duration, warmup,
                     check, as_json, seed)
    except BenchError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        code = 1
    except (redis.RedisError, OSError) as exc:
        err_console.print(f"[bold red]error:[/] talking to the cluster failed: {type(exc).__name__}: {exc}",
                          highlight=False)
        code = 1
    except KeyboardInterrupt:
        code = 130
    finally:
        if bench is not None:
            bench.close()
    sys.exit(code)


def _main(bench: BenchCluster, params: Params, clients: int, duration: float, warmup: float, check: bool,
          as_json: bool, seed: int) -> int:
    note = (lambda s: None) if as_json else (lambda s: err_console.print(s, highlight=False))
    code, report = run(bench, params, clients, duration, warmup, check, seed, note,
                       live=err_console.is_terminal and not as_json, plain=not err_console.is_terminal and not as_json)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        _print_report(report, params, clients, check)
    return code


def run(bench: BenchCluster, params: Params, clients: int, duration: float, warmup: float, check: bool, seed: int,
        note: Callable[[str], None] = lambda s: None, live: bool = False, plain: bool = False,
        sample_cpu: Callable[[], float] | None = None) -> tuple[int, dict[str, Any]]:
    """One run on ``bench``: ``(exit code, report)``; the report is what ``--json`` prints.

    ``live``/``plain``: the throughput line on stderr (see ``run_clients``).
    ``sample_cpu``: called at the start and the end of the measured window;
    the difference goes to ``report["server_cpu"]``.
    """
    cfg = bench.cfg
    slots = SlotMap([s.current_slots for s in cfg.shards])
    space = KeySpace(slots, params.keys)
    if params.cross_shard > 0 and space.shards == 1:
        note("--cross-shard needs 2 or more shards: every transaction is single-shard on this cluster")
    if params.ops == 1 and params.cross_shard > 0:
        note("--ops-per-txn 1 cannot span two shards: every transaction is single-shard")

    # -- reset the counters ----------------------------------------------------------------------
    client = ClusterClient(cfg, socket_timeout=120)
    t0 = time.monotonic()
    for shard in range(space.shards):
        n = space.per_shard(shard)
        for lo in range(0, n, LOAD_BATCH):
            rows = [[space.key(shard, r), 0] for r in range(lo, min(n, lo + LOAD_BATCH))]
            client.call("micro.load", {"rows": rows}, route_key=space.prefixes[shard])
    note(f"reset {params.keys:,} counters in {time.monotonic() - t0:.1f}s")

    # -- run -------------------------------------------------------------------------------------
    window = Window(warmup, duration)
    per_client = [{t: TypeStats() for t in TYPES} for _ in range(clients)]
    ops_done = [[0, 0, 0] for _ in range(clients)]  # reads, increments, committed increments

    def make(i: int, win: Window):
        return _client_body(i, cfg, space, params, seed, win, per_client[i], ops_done[i])

    def counter() -> int:
        return sum(s.completed for c in per_client for s in c.values())

    cpu = window_sampler(window, sample_cpu)
    errors = run_clients(clients, make, window, counter, live, "micro", plain=plain)
    if errors:
        raise BenchError(str(errors[0]))
    measured = min(duration, max(0.0, time.monotonic() - window.start))
    merged = {t: TypeStats() for t in TYPES}
    for c in per_client:
        for t in TYPES:
            merged[t].merge(c[t])
    reads = sum(o[0] for o in ops_done)
    writes = sum(o[1] for o in ops_done)
    total = sum(merged[t].completed for t in TYPES)
    per_type = {t: merged[t].summary(measured) for t in TYPES}
    report: dict[str, Any] = {
        "benchmark": "micro",
        "cluster": {"shards": bench.shards, "replicas": bench.replicas, "protocol": cfg.protocol, "ack": cfg.ack,
                    "ephemeral": bench.ephemeral_dir is not None},
        "keys": params.keys, "read_ratio": params.read_ratio, "ops_per_txn": params.ops,
        "cross_shard": params.cross_shard, "zipf": params.zipf, "clients": clients, "seed": seed,
        "duration_s": round(measured, 3),
        "tps": round(total / measured, 2) if measured else 0.0,
        "ops_per_s": round((reads + writes) / measured, 1) if measured else 0.0,
        "transactions": per_type,
        "measured": {
            "read_pct": round(100.0 * reads / (reads + writes), 3) if reads + writes else None,
            "cross_shard_pct": round(100.0 * merged["cross_shard"].completed / total, 3) if total else None,
        },
    }
    # Each type's figures at the top level too, as bench tpcc does, except
    # where a parameter has the name (cross_shard is both a type and the
    # --cross-shard fraction: the parameter stays, the type is under
    # "transactions").
    report.update({t: figures for t, figures in per_type.items() if t not in report})
    server_cpu_s = cpu.result()
    if server_cpu_s is not None and measured > 0:
        committed = sum(merged[t].commits for t in TYPES)
        report["server_cpu"] = {
            "cpu_s": round(server_cpu_s, 3),
            "cores_used": round(server_cpu_s / measured, 3),
            "cpu_us_per_txn": round(server_cpu_s * 1e6 / committed, 1) if committed else None,
        }
    code = 0
    if check:
        # every committed increment in or out of the measured window counts
        committed = sum(o[2] for o in ops_done)
        got = 0
        for shard in range(space.shards):
            start, end = space.range(shard)
            got += client.call("micro.sum", {"start": start, "end": end}, route_key=start)[1]
        ok = got == committed
        report["consistency"] = {"counters": "pass" if ok else "fail"}
        if not ok:
            err_console.print(f"[bold red]error:[/] counters add up to {got:,}, but {committed:,} increments "
                              "committed", highlight=False)
            code = 1
    client.close()
    return code, report


def _print_report(report: dict[str, Any], params: Params, clients: int, check: bool) -> None:
    c = report["cluster"]
    measured = report["duration_s"]
    title = (f"micro: {params.keys:,} keys, read ratio {params.read_ratio:g}, {params.ops} ops/txn, "
             f"cross-shard {params.cross_shard:g}, zipf {params.zipf:g}, {clients} clients, "
             f"{c['shards']}x{c['replicas']} {c['protocol']}, {measured:g}s")
    console.print(results_table(title, report["transactions"], LABELS, rollbacks=False))
    m = report["measured"]
    console.print(f"[bold]TPS {report['tps']:,.1f}[/]   ops/s {report['ops_per_s']:,.0f}   "
                  f"reads {m['read_pct'] if m['read_pct'] is not None else '-'}%   "
                  f"cross-shard {m['cross_shard_pct'] if m['cross_shard_pct'] is not None else '-'}%",
                  highlight=False)
    if check:
        console.print(f"consistency: counters {report['consistency']['counters']}", highlight=False)


def _client_body(i: int, cfg: Any, space: KeySpace, params: Params, seed: int, window: Window,
                 stats: dict[str, TypeStats], ops_done: list[int]):
    rng = random.Random(f"{seed}:micro:{i}")
    home = i % space.shards
    zipfs = [Zipf(space.per_shard(s), params.zipf, rng) for s in range(space.shards)]
    spread = max(2, min(params.shards_per_txn, space.shards, params.ops))

    def body() -> None:
        client = ClusterClient(cfg, socket_timeout=60)
        perf, mono = time.perf_counter, time.monotonic
        try:
            while not window.stop.is_set() and mono() < window.end:
                cross = space.shards > 1 and params.ops > 1 and rng.random() < params.cross_shard
                touched = [home]
                if cross and spread == 2:
                    other = rng.randrange(space.shards - 1)
                    touched.append(other + (other >= home))
                elif cross:
                    touched += rng.sample([s for s in range(space.shards) if s != home], spread - 1)
                reads: list[bytes] = []
                writes: list[bytes] = []
                for n in range(params.ops):
                    shard = touched[n % len(touched)]
                    key = space.key(shard, zipfs[shard].next())
                    (reads if rng.random() < params.read_ratio else writes).append(key)
                args = {"r": reads, "w": writes}
                kind = "cross_shard" if cross else "single_shard"
                t0 = perf()
                result, aborts, outcome = call_with_retries(
                    client, "micro.txn", args, space.prefixes[home], rng, window.stop)
                if outcome == "rolled_back":
                    raise FatalError(f"micro.txn rolled back: {result}")
                failed = outcome == "failed"
                latency = perf() - t0
                if not failed:
                    ops_done[2] += len(writes)
                if not window.measuring(mono()):
                    continue
                s = stats[kind]
                s.aborts += aborts
                s.retries += aborts - (1 if failed else 0)
                if failed:
                    s.failed += 1
                    continue
                s.commits += 1
                s.record(latency)
                ops_done[0] += len(reads)
                ops_done[1] += len(writes)
        finally:
            client.close()

    return body
