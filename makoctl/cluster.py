"""``makoctl cluster ...``: bootstrap, status, kill/restart and failover."""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import click

from makod.config import ClusterConfig, ConfigError, load_config_file, secret_file_path
import redis
from rich.progress import Progress, SpinnerColumn, TextColumn

from makoctl import backup as backups
from makoctl import node_logs, procs, status_view
from makoctl.cluster_setup import (
    DEFAULT_BASE_PORT,
    DEFAULT_REPLICAS,
    DEFAULT_SHARDS,
    config_diff,
    ensure_secret,
    layout,
    load_or_fail,
    port_in_use,
    preferred_name,
    stick_preferred,
    undo_start,
    wait_ready,
    wanted_config,
    generated,
    write_config,
)
from makoctl.output import console, err_console, fail

DEFAULT_DATA_DIR = "./mako-data"


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
    created: list[str] = []  # what this call made, removed again if the start fails
    if os.path.exists(cfg_path):
        existing = load_or_fail(cfg_path)
        if with_tls and existing.tls is None:
            fail(f"{data_dir!r} already holds a cluster without TLS; --tls applies when a cluster is created", 2)
        wanted = wanted_config(config_file, shards, replicas, base_port)
        if wanted is not None:
            if layout(wanted) != layout(existing):
                diff = "\n".join(f"  {line}" for line in config_diff(existing, wanted))
                fail(
                    f"{data_dir!r} already holds a different cluster ({cfg_path}):\n{diff}\n"
                    "Its nodes and data belong to that layout: stop it and remove the directory, "
                    "or use another --data-dir",
                    2,
                )
            changes = config_diff(existing, wanted)
            if changes and config_file:
                running = [s.name for s in procs.cluster_states(existing, data_dir, 1.0) if s.pid is not None]
                if running:
                    fail(f"{config_file} changes settings of the running cluster in {data_dir!r}:\n"
                         + "\n".join(f"  {c}" for c in changes)
                         + f"\nrunning nodes ({', '.join(running)}) would keep the old ones: "
                           "stop the cluster first (makoctl cluster stop), then start it with --config", 2)
                write_config(cfg_path, wanted, config_file, data_dir, with_tls=False,
                             cluster_id=existing.cluster_id)
                console.print(f"applied {config_file} to {cfg_path}:", highlight=False)
                for c in changes:
                    console.print(f"  {c}", highlight=False, markup=False)
        cfg = load_or_fail(cfg_path)
    else:
        cfg = wanted_config(config_file, shards, replicas, base_port) or generated(None, None, None)
        if not os.path.isdir(data_dir):
            created.append(data_dir)
        # The data dir holds the cluster secret (and maybe requirepass): its owner's only.
        os.makedirs(data_dir, mode=0o700, exist_ok=True)
        created.append(cfg_path)
        if with_tls:
            created.append(os.path.join(data_dir, "tls"))
        write_config(cfg_path, cfg, config_file, data_dir, with_tls)
        cfg = load_or_fail(cfg_path)
    if not os.path.exists(secret_file_path(cfg)):
        created.append(secret_file_path(cfg))
    ensure_secret(cfg)

    started: list[str] = []
    try:
        for rep in cfg.replicas:
            if procs.read_pid(data_dir, rep.name) is not None:
                continue
            busy = port_in_use(rep.host, rep.resp_port) or port_in_use(rep.host, rep.peer_port)
            if busy:
                fail(f"port {busy} for node {rep.name} is already in use by another program", 1)
            if not os.path.isdir(procs.node_dir(data_dir, rep.name)):
                created.append(procs.node_dir(data_dir, rep.name))
            procs.start_node(cfg_path, data_dir, rep)
            started.append(rep.name)
        wait_ready(cfg, data_dir, timeout_s, quiet=as_json)
    except SystemExit:
        undo_start(data_dir, started, created)
        raise
    states = procs.cluster_states(cfg, data_dir)
    if as_json:
        click.echo(json.dumps({"nodes": [status_view.state_json(s) for s in states]}, indent=2))
    else:
        _print_table(cfg, states, title=f"makodb cluster '{cfg.name}' ({data_dir})")
        console.print(f"Try: [bold]redis-cli -p {cfg.replicas[0].resp_port}[/]")
        if cfg.tls is not None:
            tls_dir = os.path.join(data_dir, "tls")
            console.print(f"Over TLS: [bold]redis-cli --tls --cacert {tls_dir}/ca.crt --cert {tls_dir}/client.crt "
                          f"--key {tls_dir}/client.key -p {cfg.replicas[0].tls_port}[/]")


def _print_table(cfg: ClusterConfig, states: list[procs.NodeState], title: str, wide: bool = False) -> None:
    console.print(status_view.render(states, title, wide))


@cluster.command()
@data_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print {\"nodes\": [...]} as JSON.")
@click.option("--wide", is_flag=True, help="Every column (ballot, epoch, log positions, clients), wider than 80.")
@click.option("--watch", "watch_s", type=float, default=None, is_flag=False, flag_value=1.0,
              help="Redraw every N seconds (default 1) with each node's commands per second, until ^C.")
@click.option("--count", type=click.IntRange(1), default=None, help="With --watch: stop after this many views.")
@click.option("--timeout", "timeout_s", default=1.0, show_default=True,
              help="Seconds to wait for each node's answer (nodes are asked in parallel).")
def status(data_dir: str, as_json: bool, wide: bool, watch_s: float | None, count: int | None, timeout_s: float) -> None:
    """Show every node: role, endpoint, pid, lag and keys (--wide: everything).

    A node that is not up says why: not running (nothing listens on its
    port), not answering (no reply in time), auth failed, or wrong node
    (its port answers as another node or cluster). Exit code 0 when every
    node is up, 1 when some node is not, 3 when none is.
    """
    cfg, _ = load_cluster(data_dir)
    title = f"makodb cluster '{cfg.name}' ({data_dir})"

    def probe() -> list[procs.NodeState]:
        return procs.cluster_states(cfg, data_dir, timeout_s)

    if watch_s is not None:
        if as_json:
            fail("--watch draws a live table; --json prints one snapshot: use one of them", 2)
        states = status_view.watch(console, cfg, data_dir, title, wide, max(0.2, watch_s), count, probe)
    else:
        states = probe()
        if as_json:
            click.echo(json.dumps(status_view.cluster_json(cfg.name, states), indent=2))
        else:
            _print_table(cfg, states, title, wide)
    sys.exit(status_view.exit_code(states))


@cluster.command()
@data_dir_option
def stop(data_dir: str) -> None:
    """Stop every node cleanly (SIGTERM, then SIGKILL after 10 s).

    Nodes are found by their pid files and by asking each node its pid (one
    started by hand or by a service manager is stopped too); a pid file
    whose process is not this node's makod is ignored.
    """
    cfg, _ = load_cluster(data_dir)
    stopped = 0
    with console.status("stopping nodes", spinner="dots"):
        pids = {}
        for state in procs.cluster_states(cfg, data_dir, 1.0):
            if state.pid is not None:
                try:
                    os.kill(state.pid, signal.SIGTERM)
                    pids[state.name] = state.pid
                except ProcessLookupError:
                    pass
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


@cluster.command()
@click.argument("name")
@data_dir_option
@click.option("-n", "--lines", default=50, show_default=True, type=click.IntRange(0), help="Lines of the end to show.")
@click.option("-f", "--follow", "follow_", is_flag=True, help="Keep printing what the node logs, until ^C.")
def logs(name: str, data_dir: str, lines: int, follow_: bool) -> None:
    """Show the end of node NAME's log (DATA_DIR/NAME/makod.log), and follow it with -f."""
    cfg, _ = load_cluster(data_dir)
    _replica_or_fail(cfg, name)
    path = procs.log_path(data_dir, name)
    if not os.path.exists(path):
        fail(f"node {name} has no log yet ({path})", 1)
    node_logs.stdout_write(node_logs.tail_lines(path, lines))
    if follow_:
        node_logs.follow(path, node_logs.stdout_write)


@cluster.command()
@click.argument("backup_dir", type=click.Path(file_okay=False))
@data_dir_option
@click.option("--drain-timeout", "drain_timeout_s", default=30.0, show_default=True,
              help="Seconds to wait for in-flight transactions to finish once writes are paused.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def backup(backup_dir: str, data_dir: str, drain_timeout_s: float, as_json: bool) -> None:
    """Copy every key of a running cluster to BACKUP_DIR, at one consistent cut.

    Writes pause on every node (reads go on) until in-flight transactions
    have finished everywhere; every key is then read (DUMP, with its expiry)
    and writes resume. No cross-shard transaction is ever half in a backup.
    """
    cfg, _ = load_cluster(data_dir)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed} keys"),
                  console=err_console, transient=True) as bar:
        task = bar.add_task("pausing writes and draining", total=None)

        def progress(n: int) -> None:
            bar.update(task, description="reading keys", advance=n)

        try:
            manifest = backups.backup(cfg, data_dir, backup_dir, drain_timeout_s=drain_timeout_s, progress=progress)
        except (backups.BackupError, OSError) as exc:
            fail(f"backup failed: {exc}", 1)
        except redis.RedisError as exc:
            fail(f"backup failed: a node answered {exc}", 1)
    if as_json:
        click.echo(json.dumps(manifest, indent=2))
        return
    keys = sum(manifest["keys"].values())
    console.print(f"backed up {keys} key(s) of cluster '{cfg.name}' to {backup_dir} "
                  f"(writes paused {manifest['writes_paused_s']:.2f}s); cut at "
                  + ", ".join(f"shard {c['shard']} slot {c['applied_index']}" for c in manifest["cut"]),
                  highlight=False)


@cluster.command()
@click.argument("backup_dir", type=click.Path(file_okay=False, exists=True))
@data_dir_option
@click.option("--base-port", type=click.IntRange(1024, 55000), default=None,
              help="Give the new cluster's nodes ports from here [default: the backed-up cluster's].")
@click.option("--timeout", "timeout_s", default=60.0, show_default=True, help="Seconds to wait for the new cluster.")
@click.pass_context
def restore(ctx: click.Context, backup_dir: str, data_dir: str, base_port: int | None, timeout_s: float) -> None:
    """Start a new cluster in DATA_DIR from BACKUP_DIR (same shards and replicas)."""
    if os.path.exists(os.path.join(data_dir, procs.CONFIG_NAME)):
        fail(f"{data_dir!r} already holds a cluster: restore makes a new one (use another --data-dir)", 2)
    try:
        manifest = backups.read_manifest(backup_dir)
    except backups.BackupError as exc:
        fail(str(exc), 2)
    cfg_path = backups.restore_config(backup_dir, base_port)
    try:
        ctx.invoke(start, config_file=cfg_path, shards=None, replicas=None, base_port=None, data_dir=data_dir,
                   timeout_s=timeout_s, as_json=False, with_tls=False)
    finally:
        os.unlink(cfg_path)
    cfg, _ = load_cluster(data_dir)
    total = sum(manifest["keys"].values())
    with Progress(console=err_console, transient=True) as bar:
        task = bar.add_task("restoring keys", total=total)
        client = procs.client(cfg.replicas[0], cfg.requirepass, 30.0)
        try:
            n = backups.load(client, backup_dir, manifest, lambda k: bar.update(task, advance=k), cfg.max_txn_bytes)
        except (backups.BackupError, redis.RedisError, OSError) as exc:
            fail(f"restore failed: {exc}", 1)
    console.print(f"restored {n} key(s) into cluster '{cfg.name}' in {data_dir}", highlight=False)


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
    (state,) = [st for st in procs.cluster_states(cfg, data_dir, 1.0) if st.name == name]
    pid = state.pid
    if pid is None:
        fail(f"node {name} is not running ({state.health})", 1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
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
@click.option("--timeout", "timeout_s", default=15.0, show_default=True,
              help="Seconds to wait for the shard to have a leader, and then for the handover.")
@click.option("--stick", is_flag=True,
              help="Make the target the shard's preferred leader (kept in cluster.yaml), so leadership stays there.")
def failover(shard_id: int, target: str | None, data_dir: str, timeout_s: float, stick: bool) -> None:
    """Hand a shard's leadership to another replica, gracefully.

    Leadership goes back to the shard's preferred leader once it has caught
    up, unless --stick makes the target the preferred leader.
    """
    cfg, cfg_path = load_cluster(data_dir)
    if not 0 <= shard_id < len(cfg.shards):
        fail(f"no shard {shard_id}; shards are 0-{len(cfg.shards) - 1}", 2)
    if stick and target is None:
        fail("--stick needs --to: the replica that should keep leading", 2)
    if target is not None:
        rep = _replica_or_fail(cfg, target)
        if rep.shard != shard_id:
            fail(f"{target} is a replica of shard {rep.shard}, not {shard_id}", 2)
    states = [s for s in procs.cluster_states(cfg, data_dir, 1.0) if s.shard == shard_id]
    if target is not None:
        (wanted,) = [s for s in states if s.name == target]
        if wanted.health != procs.OK:
            fail(f"{target} cannot take over: it is {wanted.health}" + (f" ({wanted.detail})" if wanted.detail else ""), 1)
    deadline = time.monotonic() + timeout_s
    leaders = [s for s in states if s.role == "leader"]
    while not leaders:
        # An election or a handover (a previous failover, the preferred
        # replica taking leadership back) is under way: wait for its outcome.
        if time.monotonic() > deadline:
            fail(f"shard {shard_id} has had no leader for {timeout_s:.0f}s", 1)
        time.sleep(0.1)
        states = [s for s in procs.cluster_states(cfg, data_dir, 1.0) if s.shard == shard_id]
        leaders = [s for s in states if s.role == "leader"]
    if stick:
        told = stick_preferred(cfg, cfg_path, shard_id, target, states)
        console.print(
            f"{target} is now shard {shard_id}'s preferred leader: written to {cfg_path} "
            f"(shards[{shard_id}].preferred_leader), told to {', '.join(told) or 'no running replica'}",
            highlight=False,
        )
    while True:
        old = leaders[0]
        if target == old.name:
            console.print(f"{target} already leads shard {shard_id}")
            return
        try:
            with procs.client(cfg.replica(old.name), cfg.requirepass, 2.0) as c:
                c.execute_command(*(["MAKO", "FAILOVER"] + ([target] if target else [])))
            break
        except Exception as exc:  # redis errors carry the server's explanation
            if "not its shard's leader" not in str(exc):
                fail(f"failover refused by {old.name}: {exc}", 1)
            if stick:
                break  # it may be handing over to its new preferred replica: wait for that
            # Leadership moved between our look and our request (the preferred
            # replica taking it back, say): ask whoever leads now.
            if time.monotonic() > deadline:
                fail(f"failover refused by {old.name}: {exc}", 1)
            time.sleep(0.1)
            states = [s for s in procs.cluster_states(cfg, data_dir, 1.0) if s.shard == shard_id]
            leaders = [s for s in states if s.role == "leader"] or leaders
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
    preferred = preferred_name(cfg, shard_id)
    if not stick and preferred is not None and preferred != new[0].name:
        # Say so rather than let the operator find out a second later.
        dc = cfg.replica(preferred).datacenter
        console.print(
            f"[yellow]note:[/] {preferred} is shard {shard_id}'s preferred leader (the first voter in "
            f"leader_datacenter {dc!r}); leadership goes back to it once it has caught up, "
            f"usually within a few seconds. To keep {new[0].name} leading, run this again with --stick.",
            highlight=False,
        )


from makoctl.cluster_members import add_replica, remove_replica  # noqa: E402  (they import load_cluster)
from makoctl.cluster_reshard import reshard  # noqa: E402
from makoctl.cluster_shards import add_shard  # noqa: E402

cluster.add_command(add_replica)
cluster.add_command(remove_replica)
cluster.add_command(reshard)
cluster.add_command(add_shard)
