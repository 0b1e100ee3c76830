"""``makoctl cluster ...``: bootstrap, status, kill/restart and failover."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time

import click
import yaml
from rich.console import Console
from rich.table import Table

from makoctl.certs import make_cluster_certs
from makod.config import (
    ClusterConfig,
    ConfigError,
    default_config_dict,
    load_cluster_secret,
    load_config_file,
    parse_config,
    secret_file_path,
    write_secret_file,
)
from makoctl import procs

# Piped output gets a fixed width wide enough for the status table
# (rich falls back to 80 columns when it cannot ask a terminal).
console = Console(width=None if sys.stdout.isatty() else 140)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 140)

DEFAULT_DATA_DIR = "./mako-data"
DEFAULT_BASE_PORT = 7379
DEFAULT_SHARDS = 2
DEFAULT_REPLICAS = 3


def fail(message: str, code: int = 1) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    sys.exit(code)


def load_cluster(data_dir: str) -> tuple[ClusterConfig, str]:
    path = os.path.join(data_dir, procs.CONFIG_NAME)
    if not os.path.exists(path):
        fail(f"no cluster in {data_dir!r} (no {procs.CONFIG_NAME}); start one with `makoctl cluster start`", 1)
    try:
        return load_config_file(path), path
    except ConfigError as exc:
        fail(f"bad config: {exc}", 2)
        raise  # unreachable


data_dir_option = click.option(
    "--data-dir",
    default=DEFAULT_DATA_DIR,
    show_default=True,
    type=click.Path(file_okay=False),
    help="Directory holding cluster.yaml and every node's data.",
)


@click.group()
def cluster() -> None:
    """Start, inspect and operate a makodb cluster on this machine."""


@cluster.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="Cluster YAML file to start from.")
@click.option("--shards", type=click.IntRange(1, 64), help=f"Number of shards [default: {DEFAULT_SHARDS}].")
@click.option("--replicas", type=click.IntRange(1, 9), help=f"Replicas per shard [default: {DEFAULT_REPLICAS}].")
@click.option("--base-port", type=click.IntRange(1024, 55000), help=f"First RESP port [default: {DEFAULT_BASE_PORT}].")
@data_dir_option
@click.option("--timeout", "timeout_s", default=60.0, show_default=True, help="Seconds to wait for every shard to have a leader.")
@click.option("--json", "as_json", is_flag=True, help="Print the node list as JSON.")
@click.option("--tls", "with_tls", is_flag=True,
              help="Make a throwaway CA and certificates in DATA_DIR/tls and serve RESP over TLS "
                   "(on resp_port + 20000) and peer links over mutual TLS.")
def start(
    config_file: str | None,
    shards: int | None,
    replicas: int | None,
    base_port: int | None,
    data_dir: str,
    timeout_s: float,
    as_json: bool,
    with_tls: bool,
) -> None:
    """Start every node in the background and wait until each shard has a leader.

    With no options: the embedded default (2 shards x 3 replicas, RESP ports
    from 7379, data in ./mako-data). On a data dir that already holds a
    cluster, restarts that cluster from its saved config and data.
    """
    cfg_path = os.path.join(data_dir, procs.CONFIG_NAME)
    if os.path.exists(cfg_path):
        if with_tls and _load_or_fail(cfg_path).tls is None:
            fail(f"{data_dir!r} already holds a cluster without TLS; --tls applies when a cluster is created", 2)
        if config_file or shards or replicas or base_port:
            existing = _load_or_fail(cfg_path)
            wanted = _wanted_config(config_file, shards, replicas, base_port)
            if wanted is not None and _layout(wanted) != _layout(existing):
                fail(
                    f"{data_dir!r} already holds a different cluster ({cfg_path}); "
                    "stop it and remove the directory, or use another --data-dir",
                    2,
                )
        cfg = _load_or_fail(cfg_path)
    else:
        cfg = _wanted_config(config_file, shards, replicas, base_port) or _generated(None, None, None)
        # The data dir holds the cluster secret (and maybe requirepass): its owner's only.
        os.makedirs(data_dir, mode=0o700, exist_ok=True)
        raw = dict(cfg.raw)
        if config_file:
            # The copy lives in the data dir: paths relative to the original stay right.
            base = os.path.dirname(os.path.abspath(config_file))
            if isinstance(raw.get("tls"), dict):
                raw["tls"] = {k: os.path.join(base, v) if k.endswith("_file") else v for k, v in raw["tls"].items()}
            if raw.get("cluster_secret_file"):
                raw["cluster_secret_file"] = os.path.join(base, raw["cluster_secret_file"])
        if with_tls:
            if raw.get("tls") is not None:
                fail("--tls makes its own certificates; the config already has a tls: section", 2)
            paths = make_cluster_certs(os.path.join(data_dir, "tls"), [r.host for r in cfg.replicas])
            rel = {k: os.path.relpath(v, data_dir) for k, v in paths.items()}
            raw["tls"] = {"cert_file": rel["node_cert"], "key_file": rel["node_key"], "ca_file": rel["ca"]}
        fd = os.open(cfg_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            if config_file and raw == cfg.raw:
                with open(config_file) as src:  # keep the user's comments
                    shutil.copyfileobj(src, f)
            else:
                f.write(yaml.safe_dump(raw, sort_keys=False))
        cfg = _load_or_fail(cfg_path)
    _ensure_secret(cfg)

    started = []
    for rep in cfg.replicas:
        if procs.read_pid(data_dir, rep.name) is not None:
            continue
        busy = _port_in_use(rep.host, rep.resp_port) or _port_in_use(rep.host, rep.peer_port)
        if busy:
            fail(f"port {busy} for node {rep.name} is already in use by another program", 1)
        procs.start_node(cfg_path, data_dir, rep)
        started.append(rep.name)

    _wait_ready(cfg, data_dir, timeout_s, quiet=as_json)
    states = procs.cluster_states(cfg, data_dir)
    if as_json:
        click.echo(json.dumps({"nodes": [_state_json(s) for s in states]}, indent=2))
    else:
        _print_table(cfg, states, title=f"makodb cluster '{cfg.name}' ({data_dir})")
        console.print(f"Try: [bold]redis-cli -p {cfg.replicas[0].resp_port}[/]")
        if cfg.tls is not None:
            tls_dir = os.path.join(data_dir, "tls")
            console.print(f"Over TLS: [bold]redis-cli --tls --cacert {tls_dir}/ca.crt --cert {tls_dir}/client.crt "
                          f"--key {tls_dir}/client.key -p {cfg.replicas[0].tls_port}[/]")


def _ensure_secret(cfg: ClusterConfig) -> None:
    """Every cluster's peer links authenticate: make the secret if the config names none."""
    try:
        if load_cluster_secret(cfg) is None:
            write_secret_file(secret_file_path(cfg))
    except ConfigError as exc:
        fail(f"bad config: {exc}", 2)


def _load_or_fail(path: str) -> ClusterConfig:
    try:
        return load_config_file(path)
    except ConfigError as exc:
        fail(f"bad config: {exc}", 2)
        raise


def _generated(shards: int | None, replicas: int | None, base_port: int | None) -> ClusterConfig:
    data = default_config_dict(
        shards or DEFAULT_SHARDS, replicas or DEFAULT_REPLICAS, base_port or DEFAULT_BASE_PORT
    )
    return parse_config(data, "<generated>")


def _wanted_config(config_file, shards, replicas, base_port) -> ClusterConfig | None:
    if config_file:
        if shards or replicas or base_port:
            fail("--config cannot be combined with --shards/--replicas/--base-port", 2)
        return _load_or_fail(config_file)
    if shards or replicas or base_port:
        return _generated(shards, replicas, base_port)
    return None


def _layout(cfg: ClusterConfig) -> list:
    return [(r.name, r.shard, r.host, r.resp_port, r.peer_port) for r in cfg.replicas]


def _port_in_use(host: str, port: int) -> int | None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return port
    return None


def _wait_ready(cfg: ClusterConfig, data_dir: str, timeout_s: float, quiet: bool) -> None:
    deadline = time.monotonic() + timeout_s
    status_text = "starting nodes"
    with console.status(status_text, spinner="dots") if not quiet else _NullStatus() as status:
        while True:
            states = procs.cluster_states(cfg, data_dir, timeout_s=0.5)
            dead = [s for s in states if s.pid is None]
            if dead:
                name = dead[0].name
                err_console.print(procs.log_tail(data_dir, name), highlight=False, markup=False)
                fail(f"node {name} exited during startup (log: {procs.log_path(data_dir, name)})", 1)
            up = sum(1 for s in states if s.status is not None)
            leaders = {s.shard for s in states if s.role == "leader" and s.status and s.status.get("serving")}
            # Settled: a shard led by the replica its config prefers (which
            # takes leadership back a moment after another one won the first
            # election), so the leader this command reports is the one that stays.
            settled = {
                s.shard for s in states
                if s.role == "leader" and s.status and s.status.get("serving") and _preferred_name(cfg, s.shard) in (None, s.name)
            }
            status.update(f"nodes answering {up}/{len(states)}, shards with a leader {len(leaders)}/{len(cfg.shards)}"
                          f" (settled {len(settled)})")
            if up == len(states) and len(settled) == len(cfg.shards):
                return
            if time.monotonic() > deadline:
                fail(f"cluster not ready after {timeout_s:.0f}s: {up}/{len(states)} nodes answering, "
                     f"{len(leaders)}/{len(cfg.shards)} shards with a leader, "
                     f"{len(settled)}/{len(cfg.shards)} led by their preferred replica", 1)
            time.sleep(0.1)


def _preferred_name(cfg: ClusterConfig, shard: int) -> str | None:
    node_id = cfg.preferred_leader(shard)
    return None if node_id is None else cfg.by_id(node_id).name


class _NullStatus:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, *args, **kwargs) -> None:
        pass


def _state_json(s: procs.NodeState) -> dict:
    st = s.status or {}
    out = {
        "name": s.name,
        "shard": s.shard,
        "role": s.role,
        "host": s.host,
        "resp_port": s.resp_port,
        "peer_port": s.peer_port,
        "datacenter": s.datacenter,
        "pid": s.pid,
    }
    if st:
        commit = st.get("commit_index", 0)
        out.update(
            {
                "state": st.get("role"),
                "ballot": st.get("ballot"),
                "epoch": st.get("epoch"),
                "leader": st.get("leader_name"),
                "last_index": st.get("last_index"),
                "commit_index": commit,
                "applied_index": st.get("applied_index"),
                "lag": max(0, commit - st.get("applied_index", 0)),
                "keys": st.get("keys"),
            }
        )
    return out


def _print_table(cfg: ClusterConfig, states: list[procs.NodeState], title: str) -> None:
    table = Table(title=title)
    for col in ("name", "shard", "role", "endpoint", "pid", "ballot", "last", "commit", "applied", "lag", "keys"):
        table.add_column(col, justify="right" if col in ("shard", "pid", "ballot", "last", "commit", "applied", "lag", "keys") else "left")
    leader_commit = {s.shard: (s.status or {}).get("commit_index", 0) for s in states if s.role == "leader"}
    styles = {"leader": "bold green", "follower": "cyan", "learner": "magenta", "down": "bold red"}
    for s in states:
        st = s.status or {}
        lag = ""
        if st:
            lag = str(max(0, leader_commit.get(s.shard, st.get("commit_index", 0)) - st.get("applied_index", 0)))
        table.add_row(
            s.name,
            str(s.shard),
            f"[{styles[s.role]}]{s.role}[/]",
            f"{s.host}:{s.resp_port}",
            str(s.pid or "-"),
            str(st.get("ballot", "-")),
            str(st.get("last_index", "-")),
            str(st.get("commit_index", "-")),
            str(st.get("applied_index", "-")),
            lag or "-",
            str(st.get("keys", "-")),
        )
    console.print(table)


@cluster.command()
@data_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print {\"nodes\": [...]} as JSON.")
def status(data_dir: str, as_json: bool) -> None:
    """Show every node: role, endpoint, pid, ballot and log positions."""
    cfg, _ = load_cluster(data_dir)
    states = procs.cluster_states(cfg, data_dir)
    if as_json:
        click.echo(json.dumps({"cluster": cfg.name, "nodes": [_state_json(s) for s in states]}, indent=2))
    else:
        _print_table(cfg, states, title=f"makodb cluster '{cfg.name}' ({data_dir})")
    if all(s.role == "down" for s in states):
        sys.exit(3)


@cluster.command()
@data_dir_option
def stop(data_dir: str) -> None:
    """Stop every node cleanly (SIGTERM, then SIGKILL after 10 s)."""
    cfg, _ = load_cluster(data_dir)
    stopped = 0
    with console.status("stopping nodes", spinner="dots"):
        pids = {}
        for rep in cfg.replicas:
            pid = procs.signal_node(data_dir, rep.name, signal.SIGTERM)
            if pid is not None:
                pids[rep.name] = pid
        for name, pid in pids.items():
            if not procs.wait_dead(pid, 10):
                os.kill(pid, signal.SIGKILL)
                procs.wait_dead(pid, 5)
            try:
                os.unlink(procs.pid_path(data_dir, name))
            except OSError:
                pass
            stopped += 1
    console.print(f"stopped {stopped} node(s) of cluster '{cfg.name}'")


def _replica_or_fail(cfg: ClusterConfig, name: str):
    try:
        return cfg.replica(name)
    except KeyError:
        fail(f"no node named {name!r}; nodes: {', '.join(r.name for r in cfg.replicas)}", 2)


@cluster.command()
@click.argument("name")
@data_dir_option
def kill(name: str, data_dir: str) -> None:
    """SIGKILL one node (a crash, for testing failover)."""
    cfg, _ = load_cluster(data_dir)
    _replica_or_fail(cfg, name)
    pid = procs.signal_node(data_dir, name, signal.SIGKILL)
    if pid is None:
        fail(f"node {name} is not running", 1)
    procs.wait_dead(pid, 5)
    console.print(f"killed {name} (pid {pid})")


@cluster.command()
@click.argument("name")
@data_dir_option
@click.option("--timeout", "timeout_s", default=30.0, show_default=True)
def restart(name: str, data_dir: str, timeout_s: float) -> None:
    """Restart one node (stopping it first if it runs) and wait until it answers."""
    cfg, cfg_path = load_cluster(data_dir)
    rep = _replica_or_fail(cfg, name)
    procs.stop_node(data_dir, name)
    procs.start_node(cfg_path, data_dir, rep)
    deadline = time.monotonic() + timeout_s
    with console.status(f"restarting {name}", spinner="dots"):
        while procs.node_status(rep, cfg.requirepass, 0.5) is None:
            if procs.read_pid(data_dir, name) is None:
                err_console.print(procs.log_tail(data_dir, name), highlight=False, markup=False)
                fail(f"node {name} exited during startup", 1)
            if time.monotonic() > deadline:
                fail(f"node {name} did not answer within {timeout_s:.0f}s", 1)
            time.sleep(0.1)
    console.print(f"restarted {name} (pid {procs.read_pid(data_dir, name)})")


@cluster.command()
@click.option("--shard", "shard_id", required=True, type=int, help="Shard whose leadership moves.")
@click.option("--to", "target", default=None, help="Replica to become leader [default: the most up-to-date one].")
@data_dir_option
@click.option("--timeout", "timeout_s", default=15.0, show_default=True)
def failover(shard_id: int, target: str | None, data_dir: str, timeout_s: float) -> None:
    """Hand a shard's leadership to another replica, gracefully."""
    cfg, _ = load_cluster(data_dir)
    if not 0 <= shard_id < len(cfg.shards):
        fail(f"no shard {shard_id}; shards are 0-{len(cfg.shards) - 1}", 2)
    if target is not None:
        rep = _replica_or_fail(cfg, target)
        if rep.shard != shard_id:
            fail(f"{target} is a replica of shard {rep.shard}, not {shard_id}", 2)
    states = [s for s in procs.cluster_states(cfg, data_dir) if s.shard == shard_id]
    leaders = [s for s in states if s.role == "leader"]
    if not leaders:
        fail(f"shard {shard_id} has no leader right now", 1)
    old = leaders[0]
    if target == old.name:
        console.print(f"{target} already leads shard {shard_id}")
        return
    rep = cfg.replica(old.name)
    try:
        with procs.client(rep, cfg.requirepass, 2.0) as c:
            args = ["MAKO", "FAILOVER"] + ([target] if target else [])
            c.execute_command(*args)
    except Exception as exc:  # redis errors carry the server's explanation
        fail(f"failover refused by {old.name}: {exc}", 1)
    t0 = time.monotonic()
    with console.status(f"moving leadership of shard {shard_id} away from {old.name}", spinner="dots"):
        while True:
            now_states = [s for s in procs.cluster_states(cfg, data_dir, 0.5) if s.shard == shard_id]
            new = [
                s for s in now_states
                if s.role == "leader" and s.name != old.name and (s.status or {}).get("serving")
            ]
            if new and (target is None or new[0].name == target):
                break
            if time.monotonic() - t0 > timeout_s:
                fail(f"no new leader for shard {shard_id} within {timeout_s:.0f}s", 1)
            time.sleep(0.05)
    console.print(
        f"shard {shard_id}: leadership moved {old.name} -> {new[0].name} in {time.monotonic() - t0:.2f}s"
    )
