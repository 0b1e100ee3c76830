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

from concurrent.futures import ThreadPoolExecutor

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

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
    health: str = "ok"  # ok, or why it is down (OK, NOT_RUNNING, ... below)
    detail: str = ""


def node_dir(data_dir: str, name: str) -> str:
    return os.path.join(data_dir, name)


def pid_path(data_dir: str, name: str) -> str:
    return os.path.join(node_dir(data_dir, name), "makod.pid")


def log_path(data_dir: str, name: str) -> str:
    return os.path.join(node_dir(data_dir, name), "makod.log")


def read_pid(data_dir: str, name: str) -> int | None:
    """The pid in the node's pid file, if that process is alive and is this
    node's makod (a stale file may name a pid since reused by another program)."""
    try:
        with open(pid_path(data_dir, name)) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) and is_makod(pid, name, data_dir) else None


def pid_detail(data_dir: str, name: str) -> str:
    """Why read_pid found no node: for an error message."""
    try:
        with open(pid_path(data_dir, name)) as f:
            text = f.read().strip()
    except OSError as exc:
        return f"no pid file ({exc.strerror})"
    try:
        pid = int(text)
    except ValueError:
        return f"pid file holds {text[:20]!r}"
    if not pid_alive(pid):
        return f"process {pid} is gone"
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().replace(b"\0", b" ").decode("utf-8", "replace")[:200]
    except OSError:
        cmdline = "?"
    return f"process {pid} runs {cmdline!r}, not this node's makod"


def is_makod(pid: int, name: str, data_dir: str | None = None) -> bool:
    """Whether process ``pid`` runs makod for node ``name`` (its command
    line), and with ``data_dir`` its data dir: pids are reused, often within
    minutes, and every cluster has an s0r0."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return not os.path.isdir("/proc")  # no /proc here: trust the pid file
    if data_dir is not None and os.path.abspath(data_dir).encode() not in argv:
        return False
    return any(b"makod" in a for a in argv) and name.encode() in argv


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
    # Absolute paths: is_makod knows a node by its data dir in its command line.
    cfg_path, data_dir = os.path.abspath(cfg_path), os.path.abspath(data_dir)
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
            # makod rotates its own log; stdout and stderr (a crash before
            # logging starts) land in the same file.
            "--log-file",
            log_path(data_dir, rep.name),
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
    # No retries: redis-py would try again on its own, and a status that
    # waits 10 retries on a hung node tells the operator nothing faster.
    return redis.Redis(
        host=rep.host,
        port=rep.resp_port,
        password=password,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        protocol=2,
        retry=Retry(NoBackoff(), 0),
    )


# What a probe of a node found (NodeState.health).
OK = "ok"
NOT_RUNNING = "not running"  # nothing listens on its port
NOT_ANSWERING = "not answering"  # connected, or a process runs, but no reply in time
AUTH_FAILED = "auth failed"  # answered, refused our password
WRONG_NODE = "wrong node"  # answered, but is another node or another cluster


def probe(rep: ReplicaConfig, password: str | None, cluster_name: str | None = None,
          timeout_s: float = 1.0, cluster_id: str | None = None) -> tuple[str, dict | None, str]:
    """Ask a node who it is and how it is: (health, MAKO STATUS, detail)."""
    try:
        with client(rep, password, timeout_s) as c:
            raw = c.execute_command("MAKO", "STATUS")
    except redis.AuthenticationError as exc:
        return AUTH_FAILED, None, str(exc)
    except redis.ResponseError as exc:
        text = str(exc)
        if text.startswith(("NOAUTH", "WRONGPASS")) or "invalid username-password" in text:
            return AUTH_FAILED, None, text
        return WRONG_NODE, None, f"answered MAKO STATUS with an error: {text}"
    except redis.TimeoutError:
        return NOT_ANSWERING, None, f"no reply within {timeout_s:g}s"
    except (redis.ConnectionError, OSError) as exc:
        text = str(exc)
        if "refused" in text.lower():
            return NOT_RUNNING, None, "connection refused"
        if "timeout" in text.lower() or "timed out" in text.lower():
            return NOT_ANSWERING, None, text
        return NOT_RUNNING, None, text
    try:
        status = json.loads(raw)
    except (ValueError, TypeError):
        return WRONG_NODE, None, "MAKO STATUS answered something that is not JSON"
    if (status.get("name") != rep.name
            or (cluster_name is not None and status.get("cluster", cluster_name) != cluster_name)
            or (cluster_id is not None and status.get("cluster_id") != cluster_id)):
        return WRONG_NODE, status, (
            f"port {rep.resp_port} answers as {status.get('name')!r} of cluster {status.get('cluster')!r}"
            + (f" (id {status.get('cluster_id')})" if cluster_id is not None else ""))
    return OK, status, ""


def node_status(rep: ReplicaConfig, password: str | None, timeout_s: float = 1.0) -> dict | None:
    health, status, _detail = probe(rep, password, None, timeout_s)
    return status if health == OK else None


def _state_of(cfg: ClusterConfig, data_dir: str, rep: ReplicaConfig, timeout_s: float) -> NodeState:
    pid = read_pid(data_dir, rep.name)
    health, status, detail = probe(rep, cfg.requirepass, cfg.name, timeout_s, cfg.cluster_id)
    if health == OK and pid is None:
        # Started by hand or by a service manager: the node says its pid.
        theirs = status.get("pid") if status else None
        if isinstance(theirs, int) and pid_alive(theirs) and is_makod(theirs, rep.name):
            pid = theirs
    if health == NOT_RUNNING and pid is not None:
        health, detail = NOT_ANSWERING, f"process {pid} runs but its port refuses connections"
    if health != OK:
        role = "down"
    elif status["role"] in ("leader", "learner"):
        role = status["role"]
    else:
        role = "follower"
    return NodeState(rep.name, rep.shard, rep.host, rep.resp_port, rep.peer_port, rep.datacenter, pid, role,
                     status if health == OK else None, health, detail)


def cluster_states(cfg: ClusterConfig, data_dir: str, timeout_s: float = 1.0) -> list[NodeState]:
    """Every node's state, probed in parallel: one hung node costs ``timeout_s``, not more."""
    reps = cfg.replicas
    with ThreadPoolExecutor(max_workers=min(32, len(reps))) as pool:
        return list(pool.map(lambda rep: _state_of(cfg, data_dir, rep, timeout_s), reps))


def log_tail(data_dir: str, name: str, lines: int = 15) -> str:
    try:
        with open(log_path(data_dir, name), "rb") as f:
            data = f.read()[-8192:]
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])
