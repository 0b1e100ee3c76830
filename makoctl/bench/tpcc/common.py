"""Plumbing shared by ``makoctl bench tpcc`` and ``makoctl bench micro``.

* ``BenchCluster``: the cluster a benchmark runs against, either a running one
  (``--config FILE`` or ``--data-dir DIR``) or an ephemeral one it starts in a
  temporary directory (through ``makoctl cluster start``) and stops at the end;
* ``TypeStats``: per-transaction-type counters and a latency histogram;
* ``results_table``: the rich table both benchmarks print;
* ``run_clients``: closed-loop client threads with a warmup, a measured
  window and a live throughput line.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import click
import redis
import yaml
from hdrh.histogram import HdrHistogram
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from makod.config import ACK_MODES, PROTOCOLS, ClusterConfig, ConfigError, default_config_dict, load_config_file
from makoctl.bench.recorder import DIGITS, HIGHEST_US, LOWEST_US

console = Console(width=None if sys.stdout.isatty() else 140)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 140)

CONFIG_NAME = "cluster.yaml"


class BenchError(Exception):
    """A benchmark cannot go on; the message says why."""


# -- the cluster ---------------------------------------------------------------------------------


def cluster_options(fn: Callable) -> Callable:
    """The options every benchmark takes to find or start its cluster."""
    options = [
        click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
                     help="YAML of a running cluster to benchmark."),
        click.option("--data-dir", type=click.Path(file_okay=False),
                     help="Data dir of a running cluster (started with `makoctl cluster start`)."),
        click.option("--shards", type=click.IntRange(1, 64),
                     help="Shards of the ephemeral cluster the benchmark starts [default: 1]."),
        click.option("--replicas", type=click.IntRange(1, 9),
                     help="Replicas per shard of the ephemeral cluster [default: 1]."),
        click.option("--protocol", type=click.Choice(PROTOCOLS),
                     help="Commit protocol of the ephemeral cluster [default: mako]."),
        click.option("--ack", type=click.Choice(ACK_MODES),
                     help="Acknowledgement mode of the ephemeral cluster [default: durable]."),
        click.option("--inject-delay-ms", type=click.FloatRange(0, 10_000),
                     help="One-way delay between datacenters in the ephemeral cluster (WAN emulation)."),
        click.option("--base-port", type=click.IntRange(1024, 55000),
                     help="First RESP port of the ephemeral cluster [default: a free block]."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@dataclass
class BenchCluster:
    cfg: ClusterConfig
    ephemeral_dir: str | None = None
    data_dir: str | None = None

    @property
    def shards(self) -> int:
        return len(self.cfg.shards)

    @property
    def replicas(self) -> int:
        return len(self.cfg.shards[0].replicas)

    def restart(self, inject_delay_ms: float) -> None:
        """Stop the ephemeral cluster and start it again on the same data with another inject_delay_ms
        (the delay is read at start only); its data, a loaded TPC-C database too, stays."""
        if self.ephemeral_dir is None or self.data_dir is None:
            raise BenchError("only a cluster the benchmark started itself can be restarted")
        path = os.path.join(self.data_dir, CONFIG_NAME)
        proc = _makoctl("cluster", "stop", "--data-dir", self.data_dir, timeout=90)
        if proc.returncode != 0:
            raise BenchError(f"could not stop the ephemeral cluster:\n{proc.stderr.strip() or proc.stdout.strip()}")
        with open(path) as f:
            raw = yaml.safe_load(f)
        raw["inject_delay_ms"] = inject_delay_ms
        with open(path, "w") as f:
            yaml.safe_dump(raw, f, sort_keys=False)
        proc = _makoctl("cluster", "start", "--data-dir", self.data_dir, "--json", "--timeout", "60", timeout=120)
        if proc.returncode != 0:
            raise BenchError(f"could not restart the ephemeral cluster:\n{proc.stderr.strip() or proc.stdout.strip()}")
        self.cfg = load_config_file(path)

    def close(self) -> None:
        if self.ephemeral_dir is None:
            return
        try:
            _makoctl("cluster", "stop", "--data-dir", self.data_dir or "", timeout=90)
        finally:
            shutil.rmtree(self.ephemeral_dir, ignore_errors=True)
            self.ephemeral_dir = None


def open_cluster(
    config_file: str | None,
    data_dir: str | None,
    shards: int | None,
    replicas: int | None,
    protocol: str | None,
    ack: str | None,
    inject_delay_ms: float | None,
    base_port: int | None,
    status: Callable[[str], None] = lambda s: None,
    leaders: str = "co-located",
) -> BenchCluster:
    """The cluster to benchmark: a running one, or an ephemeral one started here.

    ``leaders`` (ephemeral clusters): "co-located", every shard's preferred
    leader in dc0 (the default layout); "spread", shard s's in dc(s mod R):
    replica r of shard s sits in dc((r + s) mod R), so each shard's first
    replica, which config's default ``leader_datacenter`` prefers, is in its own
    datacenter.
    """
    ephemeral_only = {
        "--shards": shards, "--replicas": replicas, "--protocol": protocol, "--ack": ack,
        "--inject-delay-ms": inject_delay_ms, "--base-port": base_port,
    }
    if config_file and data_dir:
        raise click.UsageError("give either --config or --data-dir, not both")
    if config_file or data_dir:
        given = [name for name, value in ephemeral_only.items() if value is not None]
        if given:
            raise click.UsageError(
                f"{', '.join(given)} only apply to a cluster the benchmark starts itself; "
                "a running cluster (--config/--data-dir) keeps its own settings"
            )
        path = config_file or os.path.join(data_dir or "", CONFIG_NAME)
        if not os.path.exists(path):
            raise BenchError(f"no cluster in {data_dir!r} (no {CONFIG_NAME}); start one with `makoctl cluster start`")
        try:
            cfg = load_config_file(path)
        except ConfigError as exc:
            raise BenchError(f"bad config: {exc}") from None
        bench = BenchCluster(cfg, None, data_dir)
        wait_leaders(cfg, timeout_s=10)
        return bench

    shards, replicas = shards or 1, replicas or 1
    tmp = tempfile.mkdtemp(prefix="makobench-")
    try:
        base = base_port or free_port_block(shards * replicas)
        data = default_config_dict(shards, replicas, base)
        data["cluster"] = "makobench"
        if leaders == "spread":
            for shard in data["shards"]:
                for r, rep in enumerate(shard["replicas"]):
                    rep["datacenter"] = f"dc{(r + shard['id']) % replicas}"
        elif leaders != "co-located":
            raise ValueError(f"leaders: {leaders!r}")
        if protocol:
            data["protocol"] = protocol
        if ack:
            data["ack"] = ack
        if inject_delay_ms is not None:
            data["inject_delay_ms"] = inject_delay_ms
        cfg_path = os.path.join(tmp, "bench.yaml")
        with open(cfg_path, "w") as f:
            yaml.safe_dump(data, f, sort_keys=False)
        ddir = os.path.join(tmp, "data")
        status(f"starting an ephemeral {shards}x{replicas} cluster ({protocol or 'mako'}) on ports {base}+")
        proc = _makoctl("cluster", "start", "--data-dir", ddir, "--config", cfg_path, "--json", "--timeout", "60",
                        timeout=120)
        if proc.returncode != 0:
            raise BenchError(f"could not start the ephemeral cluster:\n{proc.stderr.strip() or proc.stdout.strip()}")
        cfg = load_config_file(os.path.join(ddir, CONFIG_NAME))
        return BenchCluster(cfg, tmp, ddir)
    except BaseException:
        if os.path.exists(os.path.join(tmp, "data", CONFIG_NAME)):
            _makoctl("cluster", "stop", "--data-dir", os.path.join(tmp, "data"), timeout=90)
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _makoctl(*args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "makoctl.cli", *args], capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_block(n: int) -> int:
    """A base port b with b..b+n-1 and b+10000..b+10000+n-1 free (RESP and peer ports),
    all below Linux's ephemeral range (32768 up), where a client's own source
    port could take a node's port while the node restarts."""
    import random

    for _ in range(200):
        base = random.randrange(2000, 22000 - n)
        if all(_port_free(base + i) and _port_free(base + 10000 + i) for i in range(n)):
            return base
    raise BenchError("no free block of ports found for the ephemeral cluster")


def wait_leaders(cfg: ClusterConfig, timeout_s: float) -> None:
    """Until every shard has a serving leader, or BenchError."""
    deadline = time.monotonic() + timeout_s
    missing: set[int] = set()
    while True:
        leaders = set()
        for rep in cfg.replicas:
            try:
                with redis.Redis(host=rep.host, port=rep.resp_port, password=cfg.requirepass, protocol=2,
                                 socket_timeout=1, socket_connect_timeout=1) as r:
                    st = json.loads(r.execute_command("MAKO", "STATUS"))
            except (redis.RedisError, OSError, ValueError):
                continue
            if st.get("role") == "leader" and st.get("serving"):
                leaders.add(rep.shard)
        missing = set(range(len(cfg.shards))) - leaders
        if not missing:
            return
        if time.monotonic() > deadline:
            raise BenchError(
                f"shard(s) {', '.join(map(str, sorted(missing)))} have no serving leader; is the cluster running? "
                "(`makoctl cluster status`)"
            )
        time.sleep(0.2)


def server_cpu_sampler(cfg: ClusterConfig) -> Callable[[], float] | None:
    """Sum of user+system CPU seconds of every makod of the cluster on this machine (None: no pid known)."""
    from makoctl.procs import node_status

    pids = []
    for rep in cfg.replicas:
        status = node_status(rep, cfg.requirepass)
        if status and status.get("pid"):
            pids.append(int(status["pid"]))

    def sample() -> float:
        total = 0.0
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(") ", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            except (OSError, IndexError, ValueError):
                pass
        return total

    return sample if pids else None


# -- statistics ----------------------------------------------------------------------------------


@dataclass
class TypeStats:
    commits: int = 0
    rollbacks: int = 0  # user aborts (tx.abort), e.g. TPC-C's 1% New-Order rollback
    aborts: int = 0  # attempts the server aborted (TRYAGAIN: conflicts, lost leaders)
    retries: int = 0  # attempts repeated after such an abort
    failed: int = 0  # given up: too many aborts, or an error that is not retriable
    # Latencies of completed transactions (an HDR histogram in microseconds:
    # a long run's millions of samples in a few kilobytes).
    hist: HdrHistogram = field(default_factory=lambda: HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS))

    def record(self, latency_s: float) -> None:
        self.hist.record_value(min(max(int(latency_s * 1e6), LOWEST_US), HIGHEST_US))

    # Driver processes (bench tpcc --processes) send their stats back pickled:
    # the histogram travels in its own compressed encoding.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["hist"] = self.hist.encode()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        state["hist"] = HdrHistogram.decode(state["hist"])
        self.__dict__.update(state)

    def merge(self, other: "TypeStats") -> None:
        self.commits += other.commits
        self.rollbacks += other.rollbacks
        self.aborts += other.aborts
        self.retries += other.retries
        self.failed += other.failed
        self.hist.add(other.hist)

    @property
    def completed(self) -> int:
        return self.commits + self.rollbacks

    def summary(self, seconds: float) -> dict[str, Any]:
        h = self.hist
        empty = h.get_total_count() == 0

        def pct(p: float) -> float | None:
            return None if empty else round(h.get_value_at_percentile(p) / 1000, 3)

        return {
            "commits": self.commits,
            "rollbacks": self.rollbacks,
            "aborts": self.aborts,
            "retries": self.retries,
            "failed": self.failed,
            "tps": round(self.completed / seconds, 2) if seconds > 0 else 0.0,
            "p50_ms": pct(50),
            "p90_ms": pct(90),
            "p99_ms": pct(99),
            "p99.9_ms": pct(99.9),
            "max_ms": None if empty else round(h.get_max_value() / 1000, 3),
        }


def results_table(title: str, per_type: dict[str, dict[str, Any]], labels: dict[str, str] | None = None,
                  share: dict[str, float] | None = None, rollbacks: bool = True) -> Table:
    table = Table(title=title)
    table.add_column("transaction")
    cols = ["commits", "rollbacks", "aborts", "retries", "failed"] if rollbacks else ["commits", "aborts", "retries", "failed"]
    if share is not None:
        table.add_column("mix %", justify="right")
    for col in cols:
        table.add_column(col, justify="right")
    table.add_column("tps", justify="right")
    for col in ("p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"):
        table.add_column(col, justify="right")
    for name, s in per_type.items():
        row = [(labels or {}).get(name, name)]
        if share is not None:
            row.append(f"{share.get(name, 0.0):.1f}")
        row += [f"{s[c]:,}" for c in cols]
        row.append(f"{s['tps']:,.1f}")
        row += ["-" if s.get(k) is None else f"{s[k]:.2f}" for k in ("p50_ms", "p90_ms", "p99_ms", "p99.9_ms", "max_ms")]
        table.add_row(*row)
    return table


# -- closed-loop clients -------------------------------------------------------------------------


class Window:
    """The measured window: [start, end) in time.monotonic()."""

    def __init__(self, warmup: float, duration: float, start: float | None = None) -> None:
        self.t0 = time.monotonic()
        # ``start``: an absolute time.monotonic() (the same clock in every
        # process on this machine), so driver processes share one window.
        self.start = start if start is not None else self.t0 + warmup
        self.end = self.start + duration
        self.stop = threading.Event()

    def measuring(self, t: float) -> bool:
        return self.start <= t < self.end


def run_clients(
    n: int,
    make_worker: Callable[[int, Window], Callable[[], None]],
    window: Window,
    counter: Callable[[], int],
    live: bool,
    label: str,
    plain: bool = False,
) -> list[BaseException]:
    """Run ``n`` worker threads until the window ends; show live throughput on stderr.

    ``live``: a line redrawn in place (a terminal); ``plain``: a line every 5 s (logs).

    ``make_worker(i, window)`` returns the body of thread i; it must return
    once ``window.end`` has passed or ``window.stop`` is set. ``counter()``
    gives the completed transactions so far (for the live line).
    Returns the exceptions that escaped worker threads.
    """
    errors: list[BaseException] = []

    def wrap(body: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                body()
            except BaseException as exc:  # reported by the caller
                errors.append(exc)
                window.stop.set()
        return run

    threads = [threading.Thread(target=wrap(make_worker(i, window)), daemon=True, name=f"client-{i}")
               for i in range(n)]
    for t in threads:
        t.start()
    last_count, last_t = counter(), time.monotonic()
    rate = 0.0
    try:
        if live:
            with Live(Text(""), console=err_console, refresh_per_second=4, transient=True) as view:
                while any(t.is_alive() for t in threads):
                    time.sleep(0.25)
                    now = time.monotonic()
                    count = counter()
                    if now - last_t >= 1.0:
                        rate = (count - last_count) / (now - last_t)
                        last_count, last_t = count, now
                    phase = "warmup" if now < window.start else "measuring"
                    left = max(0.0, window.end - now)
                    view.update(Text(f"{label}: {phase}, {rate:,.0f} txn/s, {count:,} done, {left:.0f}s left"))
        else:
            next_line = time.monotonic() + 5.0
            while any(t.is_alive() for t in threads):
                time.sleep(0.25)
                now = time.monotonic()
                if plain and now >= next_line:
                    count = counter()
                    rate = (count - last_count) / (now - last_t)
                    last_count, last_t = count, now
                    phase = "warmup" if now < window.start else "measuring"
                    err_console.print(f"{label}: {phase}, {rate:,.0f} txn/s, {count:,} done", highlight=False)
                    next_line = now + 5.0
    except KeyboardInterrupt:
        window.stop.set()
        for t in threads:
            t.join(5)
        raise
    for t in threads:
        t.join()
    return errors


class WindowSample:
    """``sample()`` taken at a window's start and end, in a thread; ``result()``: end minus start (or None)."""

    def __init__(self, window: Window, sample: Callable[[], float] | None) -> None:
        self.values: list[float] = []
        self.sample = sample
        self.done = threading.Event()
        if sample is None:
            self.done.set()
        else:
            threading.Thread(target=self._run, args=(window,), daemon=True, name="window-sample").start()

    def _run(self, window: Window) -> None:
        try:
            for t in (window.start, window.end):
                if window.stop.wait(max(0.0, t - time.monotonic())):
                    return  # the run was stopped: no figure
                self.values.append(self.sample())  # type: ignore[misc]
        finally:
            self.done.set()

    def result(self, wait_s: float = 5.0) -> float | None:
        self.done.wait(wait_s)
        return self.values[1] - self.values[0] if len(self.values) == 2 else None


def window_sampler(window: Window, sample: Callable[[], float] | None) -> WindowSample:
    return WindowSample(window, sample)


MAX_ATTEMPTS = 100  # calls of one transaction before it counts as failed


class FatalError(Exception):
    """A transaction failed in a way retrying cannot fix (a bug, a missing procedure)."""


def call_with_retries(client: Any, name: str, args: Any, route: Any, rng: Any,
                      stop: threading.Event) -> tuple[Any, int, str]:
    """Run one transaction to an end: ``(result, aborts, outcome)``.

    outcome is "ok", "rolled_back" (the procedure's own tx.abort; result is
    the ProcedureAborted) or "failed" (MAX_ATTEMPTS retriable failures, or
    the run is stopping). Retriable failures back off at random,
    exponentially; anything else raises FatalError.
    """
    from makod.client import ProcedureAborted

    aborts = 0
    while True:
        try:
            return client.call(name, args, route_key=route), aborts, "ok"
        except ProcedureAborted as exc:
            return exc, aborts, "rolled_back"
        except Exception as exc:
            if not is_retriable(exc):
                raise FatalError(f"{name} failed: {type(exc).__name__}: {exc}") from None
            aborts += 1
            if aborts >= MAX_ATTEMPTS or stop.is_set():
                return None, aborts, "failed"
            time.sleep(rng.uniform(0, min(0.05, 0.0005 * (1 << min(aborts, 7)))))


RETRIABLE_PREFIXES = ("TRYAGAIN", "LOADING")
UNKNOWN_OUTCOME = ("outcome is unknown", "TIMEOUT")


def is_retriable(exc: BaseException) -> bool:
    """Failures after which the transaction certainly did not run: retry it.

    TRYAGAIN (a conflict, a rollback), LOADING, and CLUSTERDOWN "no leader".
    Not an unknown outcome (the leader died after running it, a timeout): a
    retry could run it twice, so such a transaction counts as failed.
    """
    text = str(exc)
    if any(marker in text for marker in UNKNOWN_OUTCOME):
        return False
    if isinstance(exc, (redis.exceptions.TryAgainError, redis.exceptions.BusyLoadingError,
                        redis.exceptions.ClusterDownError)):
        return True
    return isinstance(exc, redis.ResponseError) and text.startswith(RETRIABLE_PREFIXES)
