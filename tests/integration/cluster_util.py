"""Real clusters for tests: makod processes started through the real makoctl.

Each cluster gets its own temporary data dir and a random block of free
ports; ``stop()`` SIGKILLs anything left, so a failing test never leaves a
process behind.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import redis

MAKOCTL = [sys.executable, "-m", "makoctl.cli"]


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_block(n: int) -> int:
    """A base port b such that b..b+n-1, b+10000.. (peer ports), b+20000..
    (TLS ports, when a test turns TLS on) and b+30000.. (metrics) are all free.

    RESP, peer and TLS ports stay below Linux's ephemeral range (32768 up):
    a client that connects to a port in that range while its node is down
    (killed, about to restart) can be handed that very port as its own
    source port and connect to itself (TCP simultaneous open). It then reads
    its own HELLO back as the reply, and holds the port, so the node cannot
    restart on it. test_bank once failed exactly so. (Metrics ports may
    reach into it: tests scrape them only while their node runs.)

    Bases stay within 10,000 ports, so the four families never overlap:
    another worker's RESP port cannot be this block's peer port, taken
    between the check here and the node's bind (test_bench_failover once
    failed so)."""
    low, high = 2000, 12000 - n
    # Under pytest-xdist each worker draws from its own slice, so two workers
    # never race for one block between the check and the bind.
    worker, workers = os.environ.get("PYTEST_XDIST_WORKER", ""), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if worker.startswith("gw") and workers > 1:
        width = (high - low) // workers
        low += int(worker[2:]) * width
        high = low + width
    for _ in range(200):
        base = random.randrange(low, high)
        if all(_free(base + i) and _free(base + 10000 + i) and _free(base + 20000 + i) and _free(base + 30000 + i)
               for i in range(n)):
            return base
    raise RuntimeError("no free port block found")


def makoctl(*args: str, check: bool = True, timeout: float = 90) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [*MAKOCTL, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "160"},
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"makoctl {' '.join(args)} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def kill_leftover_nodes(data_dir: str) -> None:
    """SIGKILL every makod of this data dir that has a pid file, also when a
    start failed halfway. Only a makod of this cluster: a pid in a stale file
    may since belong to another test's freshly started node (a cleanup that
    trusted the file once killed one, which then 'exited during startup')."""
    import glob

    for pid_file in glob.glob(os.path.join(data_dir, "*", "makod.pid")):
        try:
            pid = int(open(pid_file).read())
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
            if b"makod" in cmdline and os.path.abspath(data_dir).encode() in cmdline:
                os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass


class Cluster:
    def __init__(self, data_dir: str, shards: int = 1, replicas: int = 1, config: dict | None = None) -> None:
        self.data_dir = str(data_dir)
        self.shards = shards
        self.replicas = replicas
        self.config = config
        self.base_port = 0
        self.names: list[str] = []
        self.ports: dict[str, int] = {}

    # -- lifecycle ------------------------------------------------------------------------
    def start(self, timeout: float = 60) -> None:
        n = self.shards * self.replicas
        if self.config is None:
            self.base_port = free_port_block(n)
            makoctl(
                "cluster", "start", "--data-dir", self.data_dir, "--shards", str(self.shards),
                "--replicas", str(self.replicas), "--base-port", str(self.base_port),
                "--timeout", str(timeout), timeout=timeout + 30,
            )
        else:
            import yaml

            from makod.config import default_config_dict

            self.base_port = free_port_block(n)
            data = default_config_dict(self.shards, self.replicas, self.base_port)
            data.update(self.config)
            path = os.path.join(os.path.dirname(self.data_dir.rstrip("/")), f"cfg-{self.base_port}.yaml")
            with open(path, "w") as f:
                yaml.safe_dump(data, f)
            makoctl("cluster", "start", "--data-dir", self.data_dir, "--config", path, "--timeout", str(timeout),
                    timeout=timeout + 30)
        for node in self.status()["nodes"]:
            self.names.append(node["name"])
            self.ports[node["name"]] = node["resp_port"]

    def stop(self) -> None:
        try:
            makoctl("cluster", "stop", "--data-dir", self.data_dir, check=False, timeout=60)
        finally:
            kill_leftover_nodes(self.data_dir)

    # -- operations -------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        proc = makoctl("cluster", "status", "--data-dir", self.data_dir, "--json", check=False)
        return json.loads(proc.stdout)

    def kill(self, name: str) -> None:
        makoctl("cluster", "kill", name, "--data-dir", self.data_dir)

    def restart(self, name: str) -> None:
        makoctl("cluster", "restart", name, "--data-dir", self.data_dir)

    def leader(self, shard: int = 0, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for node in self.status()["nodes"]:
                if node["shard"] == shard and node["role"] == "leader":
                    return node["name"]
            time.sleep(0.1)
        raise AssertionError(f"shard {shard} has no leader after {timeout}s")

    def port(self, name: str | None = None) -> int:
        return self.ports[name or self.names[0]]

    def client(self, name: str | None = None, **kwargs: Any) -> redis.Redis:
        kwargs.setdefault("socket_timeout", 15)
        return redis.Redis(host="127.0.0.1", port=self.port(name), **kwargs)

    def log(self, name: str) -> str:
        try:
            return open(os.path.join(self.data_dir, name, "makod.log")).read()
        except OSError:
            return ""


def wait_for(predicate, timeout: float = 10, interval: float = 0.05, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # keep polling through transient errors
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}" + (f" (last error: {last_exc})" if last_exc else ""))


def set_many(client: redis.Redis, key_format: str, count: int, batch: int = 5000) -> None:
    """SET key_format % i to i for i in range(count), pipelined in batches."""
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        pipe.set(key_format % i, i)
        if i % batch == batch - 1:
            pipe.execute()
    pipe.execute()
