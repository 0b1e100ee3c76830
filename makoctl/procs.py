"""Starting, finding and stopping makod processes of a cluster's data dir.

A data dir holds ``cluster.yaml`` and one folder per node with its LMDB
files, ``makod.pid`` and ``makod.log``. Nothing else keeps state, so any
makoctl invocation can pick up where another left off.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import redis

from makod.config import ClusterConfig, ReplicaConfig

CONFIG_NAME = "cluster.yaml"


@dataclass
class NodeState:
    name: str
    shard: int
    host: str
    resp_port: int
    peer_port: int
    datacenter: str
    pid: int | None
    role: str  # leader | follower | learner | down
    status: dict | None


def node_dir(data_dir: str, name: str) -> str:
    return os.path.join(data_dir, name)


def pid_path(data_dir: str, name: str) -> str:
    return os.path.join(node_dir(data_dir, name), "makod.pid")


def log_path(data_dir: str, name: str) -> str:
    return os.path.join(node_dir(data_dir, name), "makod.log")


def read_pid(data_dir: str, name: str) -> int | None:
    try:
        with open(pid_path(data_dir, name)) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed, not yet reaped by its parent) is not alive.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return True


def start_node(cfg_path: str, data_dir: str, rep: ReplicaConfig) -> int:
    os.makedirs(node_dir(data_dir, rep.name), exist_ok=True)
    log = open(log_path(data_dir, rep.name), "ab")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "makod.main",
            "--config",
            cfg_path,
            "--node",
            rep.name,
            "--data-dir",
            data_dir,
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
        close_fds=True,
    )
    log.close()
    with open(pid_path(data_dir, rep.name), "w") as f:
        f.write(str(proc.pid))
    return proc.pid


def signal_node(data_dir: str, name: str, sig: int) -> int | None:
    pid = read_pid(data_dir, name)
    if pid is None:
        return None
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return None
    return pid


def wait_dead(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.02)
    return not pid_alive(pid)


def stop_node(data_dir: str, name: str, timeout_s: float = 10.0) -> bool:
    """SIGTERM, then SIGKILL after ``timeout_s``. True if a process was stopped."""
    pid = signal_node(data_dir, name, signal.SIGTERM)
    if pid is None:
        return False
    if not wait_dead(pid, timeout_s):
        os.kill(pid, signal.SIGKILL)
        wait_dead(pid, 5)
    try:
        os.unlink(pid_path(data_dir, name))
    except OSError:
        pass
    return True


def client(rep: ReplicaConfig, password: str | None, timeout_s: float = 1.0) -> redis.Redis:
    return redis.Redis(
        host=rep.host,
        port=rep.resp_port,
        password=password,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        protocol=2,
    )


def node_status(rep: ReplicaConfig, password: str | None, timeout_s: float = 1.0) -> dict | None:
    try:
        with client(rep, password, timeout_s) as c:
            raw = c.execute_command("MAKO", "STATUS")
    except (redis.RedisError, OSError):
        return None
    return json.loads(raw)


def cluster_states(cfg: ClusterConfig, data_dir: str, timeout_s: float = 1.0) -> list[NodeState]:
    out = []
    for rep in cfg.replicas:
        pid = read_pid(data_dir, rep.name)
        status = node_status(rep, cfg.requirepass, timeout_s) if pid is not None else None
        if status is None:
            role = "down"
        elif status["role"] == "leader":
            role = "leader"
        elif status["role"] == "learner":
            role = "learner"
        else:
            role = "follower"
        out.append(
            NodeState(rep.name, rep.shard, rep.host, rep.resp_port, rep.peer_port, rep.datacenter, pid, role, status)
        )
    return out


def log_tail(data_dir: str, name: str, lines: int = 15) -> str:
    try:
        with open(log_path(data_dir, name), "rb") as f:
            data = f.read()[-8192:]
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])
