"""``makoctl bench resp``: redis-benchmark against makod and redis-server, in one run.

Targets are measured in alternating rounds (A B C A B C ...) so a noisy,
shared machine slows them alike, and the report gives ratios, which say more
than absolute numbers here. For makod the benchmark talks to a shard leader
and also reports the leader's CPU time per request (from /proc).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

import click
import redis
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from makod.config import PROTOCOLS
from makoctl.bench.tpcc.common import BenchError, open_cluster
from makoctl.procs import node_status


@dataclass
class Target:
    label: str
    port: int
    pid: int | None
    results: dict[str, list[float]] = field(default_factory=dict)  # test -> rps per round
    cpu_us_per_req: dict[str, list[float]] = field(default_factory=dict)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_seconds(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(") ", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _start_redis(label: str, extra: list[str], tmp: str) -> tuple[Target, subprocess.Popen]:
    if shutil.which("redis-server") is None:
        raise BenchError("redis-server is not installed (apt-get install redis-server): use --no-redis")
    port = _free_port()
    workdir = os.path.join(tmp, f"redis-{port}")
    os.makedirs(workdir)
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", workdir, "--save", "", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if redis.Redis(port=port, socket_timeout=0.5).ping():
                return Target(label, port, proc.pid), proc
        except redis.RedisError:
            time.sleep(0.05)
    proc.kill()
    raise BenchError(f"redis-server on port {port} did not start")


def _run_benchmark(port: int, tests: str, requests: int, clients: int, pipeline: int,
                   command: str | None = None) -> dict[str, float]:
    """One redis-benchmark run: its -t tests, or one custom ``command`` (its
    result named by the command's text)."""
    what = ["-t", tests] if command is None else shlex.split(command)
    proc = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-n", str(requests), "-c", str(clients),
         "-P", str(pipeline), "-r", "100000", "--csv", "-q", *what],
        capture_output=True, text=True, timeout=600,
    )
    out: dict[str, float] = {}
    for line in proc.stdout.splitlines():
        # "test","rps", then six latencies: the test's name may hold commas
        # and quotes of its own (a script), so count the fields from the right.
        parts = [p.strip('"') for p in line.split(",")]
        if len(parts) >= 8 and parts[0] != "test":
            try:
                out[command if command is not None else parts[0].split()[0]] = float(parts[-7])
            except ValueError:
                continue
    if not out:
        raise BenchError(f"redis-benchmark against port {port} printed nothing usable:\n{proc.stderr[-500:]}")
    return out


@click.command("resp")
@click.option("-t", "--tests", default="set,get", show_default=True, help="redis-benchmark tests (-t).")
@click.option("-c", "--clients", default=50, show_default=True, help="Parallel connections (-c).")
@click.option("-n", "--requests", default=100_000, show_default=True, help="Requests per test and round (-n).")
@click.option("-P", "--pipeline", default=1, show_default=True, help="Pipelined requests per connection (-P).")
@click.option("--rounds", default=3, show_default=True, help="Alternating rounds over all targets.")
@click.option("--replicas", "replica_counts", multiple=True, type=click.IntRange(1, 9), default=(1,),
              show_default=True, help="makod clusters to compare (repeatable: --replicas 1 --replicas 3).")
@click.option("--inject-delay-ms", type=click.FloatRange(0, 10_000), default=None,
              help="One-way delay between datacenters in the makod clusters.")
@click.option("--protocol", type=click.Choice(PROTOCOLS), default=None,
              help="Commit protocol of the makod clusters [default: mako].")
@click.option("--redis/--no-redis", "with_redis", default=True, show_default=True,
              help="Also measure redis-server, as is (no fsync) and with appendfsync always.")
@click.option("--command", "commands", multiple=True, metavar="CMD",
              help="A custom command to benchmark instead of -t (repeatable), e.g. "
                   "\"EVAL 'return redis.call(\\\"INCR\\\", KEYS[1])' 1 k:__rand_int__\".")
@click.option("--base-port", type=click.IntRange(1024, 55000), default=None,
              help="First RESP port of the clusters started here (one block after another) [default: free blocks].")
@click.option("--json", "as_json", is_flag=True, help="Print the results as one JSON object.")
def resp(tests: str, clients: int, requests: int, pipeline: int, rounds: int, replica_counts: tuple[int, ...],
         inject_delay_ms: float | None, protocol: str | None, with_redis: bool, commands: tuple[str, ...],
         base_port: int | None, as_json: bool) -> None:
    """Throughput of makod against redis-server, measured side by side."""
    console = Console(stderr=as_json)
    if shutil.which("redis-benchmark") is None:
        raise click.ClickException("redis-benchmark is not installed (apt-get install redis-tools)")
    clusters, procs, targets = [], [], []
    tmp = tempfile.mkdtemp(prefix="makobench-resp-")
    try:
        next_port = base_port
        for replicas in replica_counts:
            bench = open_cluster(None, None, 1, replicas, protocol, None, inject_delay_ms, next_port,
                                 status=lambda s: console.print(s) if not as_json else None)
            clusters.append(bench)
            if next_port is not None:
                next_port += replicas
            leader = next(r for r in bench.cfg.replicas if (node_status(r, None) or {}).get("role") == "leader")
            targets.append(Target(f"makod 1x{replicas}", leader.resp_port, node_status(leader, None)["pid"]))
        if with_redis:
            for label, extra in (("redis-server", ["--appendonly", "no"]),
                                 ("redis-server fsync always", ["--appendonly", "yes", "--appendfsync", "always"])):
                target, proc = _start_redis(label, extra, tmp)
                targets.append(target)
                procs.append(proc)
        with Progress(console=console, transient=True, disable=as_json) as progress:
            task = progress.add_task("benchmarking", total=rounds * len(targets))
            for _ in range(rounds):
                for target in targets:
                    for command in commands or (None,):
                        cpu0 = _cpu_seconds(target.pid)
                        got = _run_benchmark(target.port, tests, requests, clients, pipeline, command)
                        cpu = _cpu_seconds(target.pid) - cpu0
                        for test, rps in got.items():
                            target.results.setdefault(test, []).append(rps)
                            target.cpu_us_per_req.setdefault(test, []).append(cpu * 1e6 / (requests * len(got)))
                    progress.advance(task)
    except BenchError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        for proc in procs:
            proc.kill()
        for bench in clusters:
            bench.close()
        shutil.rmtree(tmp, ignore_errors=True)

    reference = targets[-2] if with_redis else targets[0]
    report = {
        "clients": clients, "pipeline": pipeline, "requests": requests, "rounds": rounds,
        "targets": {
            t.label: {
                test: {
                    "rps_median": statistics.median(v),
                    "rps_rounds": v,
                    "ratio_to_reference": statistics.median(v) / statistics.median(reference.results[test])
                    if test in reference.results else None,
                    "server_cpu_us_per_request": statistics.median(t.cpu_us_per_req[test]) if t.pid else None,
                }
                for test, v in t.results.items()
            }
            for t in targets
        },
        "reference": reference.label,
    }
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    table = Table(title=f"redis-benchmark -c {clients} -P {pipeline} -n {requests} ({rounds} alternating rounds)")
    for col in ("target", "test", "requests/s (median)", f"ratio to {reference.label}", "server CPU µs/request"):
        table.add_column(col, justify="left" if col in ("target", "test") else "right")
    for label, per_test in report["targets"].items():
        for test, fig in per_test.items():
            ratio = fig["ratio_to_reference"]
            cpu = fig["server_cpu_us_per_request"]
            table.add_row(label, test, f"{fig['rps_median']:,.0f}", f"{ratio:.2f}x" if ratio else "-",
                          f"{cpu:.1f}" if cpu else "-")
    console.print(table)
