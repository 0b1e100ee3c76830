"""``makoctl bench failover``: how long a shard is unwritable after its leader dies.

Writer threads write unique keys through every replica. Each round SIGKILLs
the shard's leader and measures the time until a write succeeds again (and
until every writer has one), then restarts the old leader. At the end every
acknowledged write is read back from the surviving leader.
"""

from __future__ import annotations

import json
import signal
import statistics
import threading
import time

import click
import redis
from rich.console import Console
from rich.table import Table

from makod.config import PROTOCOLS
from makoctl.bench.recorder import Recorder, terminal_chart, write_report
from makoctl.bench.tpcc.common import BenchError, open_cluster
from makoctl.procs import node_status, signal_node, start_node, wait_dead

RETRYABLE = (redis.ConnectionError, redis.TimeoutError, redis.ResponseError)


class Writers:
    def __init__(self, cfg, per_node: int) -> None:
        self.cfg = cfg
        self.recorder = Recorder()
        self.acked: dict[str, str] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.last_ok: dict[int, float] = {}
        self.threads = [
            threading.Thread(target=self._run, args=(rep, w), daemon=True)
            for rep in cfg.replicas for w in range(per_node)
        ]

    def _run(self, rep, worker: int) -> None:
        ident = rep.node_id * 100 + worker
        client = redis.Redis(host=rep.host, port=rep.resp_port, socket_timeout=3, socket_connect_timeout=1)
        i = 0
        while not self.stop.is_set():
            key = f"fo:{ident}:{i}"
            i += 1
            t0 = time.monotonic()
            try:
                if client.set(key, i):
                    done = time.monotonic()
                    self.recorder.record(done - t0, done)
                    with self.lock:
                        self.acked[key] = str(i)
                        self.last_ok[ident] = done
            except RETRYABLE:
                self.recorder.error()
                time.sleep(0.01)

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=15)


@click.command("failover")
@click.option("--replicas", default=3, show_default=True, type=click.IntRange(3, 9))
@click.option("--rounds", default=5, show_default=True, help="Leader kills.")
@click.option("--writers-per-node", default=2, show_default=True)
@click.option("--protocol", type=click.Choice(PROTOCOLS), default=None,
              help="Commit protocol of the cluster [default: mako].")
@click.option("--base-port", type=click.IntRange(1024, 55000), default=None,
              help="First RESP port of the cluster started here [default: a free block].")
@click.option("--chart/--no-chart", default=True, show_default=True,
              help="Draw throughput over time, with the kills marked, in the terminal.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False), default=None,
              help="Also write failover.json and failover.html (the chart as SVG) to this directory.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as one JSON object.")
def failover(replicas: int, rounds: int, writers_per_node: int, protocol: str | None, base_port: int | None,
             chart: bool, report_dir: str | None, as_json: bool) -> None:
    """SIGKILL a shard leader under write load; time until writes succeed again."""
    console = Console(stderr=as_json)
    try:
        bench = open_cluster(None, None, 1, replicas, protocol, None, None, base_port)
    except BenchError as exc:
        raise click.ClickException(str(exc)) from None
    cfg = bench.cfg
    data_dir = bench.data_dir or ""
    cfg_path = f"{data_dir}/cluster.yaml"
    first_write_s: list[float] = []
    all_writers_s: list[float] = []
    writers = Writers(cfg, writers_per_node)
    kills: list[tuple[float, str]] = []
    try:
        writers.start()
        time.sleep(1.0)
        for n in range(rounds):
            leader = next(r for r in cfg.replicas if (node_status(r, None) or {}).get("role") == "leader")
            pid = signal_node(data_dir, leader.name, signal.SIGKILL)
            killed_at = time.monotonic()
            kills.append((killed_at - writers.recorder.start, f"kill {leader.name}"))
            if pid is not None:
                wait_dead(pid, 5)
            deadline = killed_at + 30
            while time.monotonic() < deadline:
                with writers.lock:
                    after = [t for t in writers.last_ok.values() if t > killed_at]
                if after:
                    break
                time.sleep(0.005)
            else:
                raise click.ClickException(f"round {n + 1}: no write succeeded within 30 s of killing {leader.name}")
            first_write_s.append(min(after) - killed_at)
            # Writers attached to the killed node cannot write until it is back.
            survivors = [ident for ident in writers.last_ok if ident // 100 != leader.node_id]
            while time.monotonic() < deadline:
                with writers.lock:
                    done = sum(1 for ident in survivors if writers.last_ok[ident] > killed_at)
                if done == len(survivors):
                    break
                time.sleep(0.005)
            all_writers_s.append(time.monotonic() - killed_at)
            if not as_json:
                console.print(f"round {n + 1}: killed {leader.name}; first write after {first_write_s[-1]:.2f}s")
            start_node(cfg_path, data_dir, leader)
            time.sleep(2.0)
        writers.finish()
        # The restarted replica may be taking leadership back (preferred
        # leaders) right now: wait for the shard to have a leader again.
        new_leader = None
        leader_deadline = time.monotonic() + 30
        while new_leader is None:
            new_leader = next((r for r in cfg.replicas if (node_status(r, None) or {}).get("role") == "leader"), None)
            if new_leader is None:
                if time.monotonic() > leader_deadline:
                    raise click.ClickException("no leader within 30 s of the last restart: cannot check the writes")
                time.sleep(0.05)
        client = redis.Redis(host=new_leader.host, port=new_leader.resp_port, socket_timeout=30)
        keys = list(writers.acked)
        lost = 0
        for i in range(0, len(keys), 1000):
            chunk = keys[i : i + 1000]
            for key, value in zip(chunk, client.mget(chunk)):
                if value is None or value.decode() != writers.acked[key]:
                    lost += 1
    finally:
        writers.stop.set()
        bench.close()
    report = {
        "replicas": replicas,
        "rounds": rounds,
        "election_timeout_ms": cfg.election_timeout_ms,
        "first_write_s": {"median": statistics.median(first_write_s), "max": max(first_write_s), "all": first_write_s},
        "all_writers_s": {"median": statistics.median(all_writers_s), "max": max(all_writers_s)},
        "acknowledged_writes": len(writers.acked),
        "lost_writes": lost,
        "write_latency": writers.recorder.summary(),
    }
    timeline = writers.recorder.timeline()
    if report_dir:
        for path in write_report(report_dir, "failover", report, timeline, kills):
            console.print(f"wrote {path}")
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        table = Table(title=f"leader SIGKILL under write load, 1 shard x {replicas}")
        for col in ("measure", "median", "max"):
            table.add_column(col, justify="right" if col != "measure" else "left")
        table.add_row("first successful write after kill (s)", f"{report['first_write_s']['median']:.2f}",
                      f"{report['first_write_s']['max']:.2f}")
        table.add_row("every surviving node's writers writing again (s)", f"{report['all_writers_s']['median']:.2f}",
                      f"{report['all_writers_s']['max']:.2f}")
        console.print(table)
        lat = report["write_latency"]
        if lat.get("count"):
            console.print("write latency ms: " + ", ".join(
                f"{k.removesuffix('_ms')} {lat[k]}" for k in ("p50_ms", "p90_ms", "p99_ms", "p99.9_ms", "max_ms")))
        console.print(f"acknowledged writes: {len(writers.acked)}, lost: {lost}")
        if chart:
            console.print(terminal_chart(timeline, f"writes/s, 1 shard x {replicas}, leader killed at the marks",
                                         kills), highlight=False, markup=False)
    if lost:
        raise SystemExit(1)
