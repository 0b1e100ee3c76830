"""``makoctl cluster add-replica`` and ``remove-replica``: change a shard's
replicas while it serves (docs/MEMBERSHIP.md, "makoctl").

Adding: write the replica into cluster.yaml (``joined: true``: it is not in
the shard's first membership), have every running node reload the file's
addresses, start it, ask the shard's leader to add it as a learner, wait
until it has caught up (from a snapshot when the log no longer reaches
back), then promote it to voter. Removing: hand leadership away from it if
it leads, ask the leader to remove it, wait until that is chosen, stop it,
and take it out of cluster.yaml (its id is retired, never reused). Each
change moves at most one voter and waits for the previous one to be chosen.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Callable

import click
import yaml

from makod.config import ClusterConfig, ReplicaConfig
from makoctl import procs
from makoctl.cluster_setup import port_in_use, write_raw_config
from makoctl.output import console, err_console, fail

# A leader answers these while a change, an election or a handover is under
# way: ask again (whoever leads by then).
RETRYABLE = ("not its shard's leader", "not the serving leader", "no entry of its own chosen yet",
             "previous membership change is not chosen yet", "handover is under way",
             "Connection", "Timeout", "timed out", "refused")


def _raw(cfg_path: str) -> dict:
    with open(cfg_path) as f:
        return yaml.safe_load(f)


def reload_topology(cfg: ClusterConfig, data_dir: str) -> list[str]:
    """MAKO TOPOLOGY RELOAD on every running node; returns those told (one
    that is down reads the file when it starts)."""
    told = []
    for state in procs.cluster_states(cfg, data_dir, 1.0):
        if state.health != procs.OK:
            continue
        try:
            with procs.client(cfg.replica(state.name), cfg.requirepass, 5.0) as c:
                c.execute_command("MAKO", "TOPOLOGY", "RELOAD")
            told.append(state.name)
        except Exception as exc:  # noqa: BLE001  (it reads the file when it restarts)
            err_console.print(f"[yellow]note:[/] {state.name} did not reload the topology ({exc}); "
                              "it reads it when it restarts", highlight=False)
    return told


def _leader(cfg: ClusterConfig, data_dir: str, shard: int, deadline: float) -> ReplicaConfig:
    while True:
        for state in procs.cluster_states(cfg, data_dir, 1.0):
            if state.shard == shard and state.role == "leader" and (state.status or {}).get("serving"):
                return cfg.replica(state.name)
        if time.monotonic() > deadline:
            fail(f"shard {shard} has no serving leader", 1)
        time.sleep(0.1)


def _members(cfg: ClusterConfig, rep: ReplicaConfig) -> dict | None:
    try:
        with procs.client(rep, cfg.requirepass, 2.0) as c:
            return json.loads(c.execute_command("MAKO", "MEMBERS"))
    except Exception:  # noqa: BLE001  (asked again)
        return None


def _at_leader(cfg: ClusterConfig, data_dir: str, shard: int, deadline: float, *command: Any,
               done: tuple[str, ...] = ()) -> None:
    """Run a MAKO command at the shard's leader, asking again (whoever leads
    then) while the answer says to wait. An answer with one of ``done`` in
    it means an earlier try already did it (its reply was lost)."""
    while True:
        leader = _leader(cfg, data_dir, shard, deadline)
        try:
            with procs.client(leader, cfg.requirepass, 5.0) as c:
                c.execute_command(*command)
            return
        except Exception as exc:  # noqa: BLE001  (the server's explanation is in the text)
            if any(text in str(exc) for text in done):
                return
            if not any(text in str(exc) for text in RETRYABLE):
                fail(f"{' '.join(map(str, command))} refused by {leader.name}: {exc}", 1)
            if time.monotonic() > deadline:
                fail(f"{' '.join(map(str, command))}: still refused after the timeout: {exc}", 1)
            time.sleep(0.2)


def _wait_members(cfg: ClusterConfig, data_dir: str, shard: int, deadline: float, what: str,
                  done: Callable[[dict], bool]) -> dict:
    """Wait until the shard leader's membership (nothing pending) satisfies ``done``."""
    while True:
        leader = _leader(cfg, data_dir, shard, deadline)
        members = _members(cfg, leader)
        if members is not None and members["role"] == "leader" and not members["pending"] and done(members):
            return members
        if time.monotonic() > deadline:
            fail(f"timed out waiting until {what}", 1)
        time.sleep(0.1)


def _ports_of(resp_port: int, tls: bool) -> list[int]:
    """A replica's RESP port, its peer port and (with TLS) its TLS port."""
    return [resp_port, resp_port + 10000] + ([resp_port + 20000] if tls else [])


def _free_port(host: str, start: int, taken: set[int], tls: bool) -> int:
    port = start
    while any(p in taken or port_in_use(host, p) is not None for p in _ports_of(port, tls)):
        port += 1
        if port > 65535 - 30000:
            fail("no free port left for the new replica", 1)
    return port


@click.command("add-replica")
@click.option("--shard", "shard_id", required=True, type=int, help="Shard that gets the replica.")
@click.option("--name", default=None, help="Its name [default: sNrK, the first free K].")
@click.option("--host", default=None, help="Its host [default: the shard's first replica's].")
@click.option("--resp-port", type=click.IntRange(1024, 35535), default=None,
              help="Its RESP port [default: the first free one above the cluster's].")
@click.option("--datacenter", default=None, help="Its datacenter [default: dcK].")
@click.option("--learner", "as_learner", is_flag=True, help="Leave it a learner (never promote it to voter).")
@click.option("--data-dir", default="./mako-data", show_default=True, type=click.Path(file_okay=False),
              help="Directory holding cluster.yaml and every node's data.")
@click.option("--timeout", "timeout_s", default=120.0, show_default=True,
              help="Seconds to wait for each step (catching up may take a snapshot).")
@click.option("--json", "as_json", is_flag=True, help="Print the shard's membership at the end as JSON.")
def add_replica(shard_id: int, name: str | None, host: str | None, resp_port: int | None, datacenter: str | None,
                as_learner: bool, data_dir: str, timeout_s: float, as_json: bool) -> None:
    """Add a replica to a shard while it serves: a learner first, a voter once caught up."""
    from makoctl.cluster import load_cluster

    cfg, cfg_path = load_cluster(data_dir)
    if not 0 <= shard_id < len(cfg.shards):
        fail(f"no shard {shard_id}; shards are 0-{len(cfg.shards) - 1}", 2)
    shard = cfg.shards[shard_id]
    node_id = max([r.node_id for r in cfg.replicas] + cfg.retired_ids) + 1
    if node_id > 255:
        fail("no node id left: ids stay below 256 and a removed replica's id is never reused", 1)
    names = {r.name for r in cfg.replicas}

    def taken(candidate: str) -> bool:
        # A removed replica's data stays under its name: a new replica with
        # that name would start from it (its promises, its log).
        return candidate in names or os.path.exists(procs.node_dir(data_dir, candidate))

    if name is None:
        k = len(shard.replicas)
        while taken(f"s{shard_id}r{k}"):
            k += 1
        name = f"s{shard_id}r{k}"
    elif taken(name):
        fail(f"a replica named {name} exists already (or its data directory does: "
             f"{procs.node_dir(data_dir, name)})", 2)
    host = host or shard.replicas[0].host
    taken = {p for r in cfg.replicas for p in (r.resp_port, r.peer_port, r.tls_port, r.metrics_port) if p}
    resp_port = resp_port or _free_port(host, max(r.resp_port for r in cfg.replicas) + 1, taken, bool(cfg.tls))
    for port in _ports_of(resp_port, bool(cfg.tls)):
        if port in taken or port_in_use(host, port) is not None:
            fail(f"port {port} on {host} is in use", 1)
    entry: dict[str, Any] = {
        "id": node_id, "name": name, "host": host, "resp_port": resp_port, "peer_port": resp_port + 10000,
        "datacenter": datacenter or f"dc{len(shard.replicas)}", "role": "learner", "joined": True,
    }
    if any(r.metrics_port for r in cfg.replicas) and port_in_use(host, resp_port + 30000) is None:
        entry["metrics_port"] = resp_port + 30000
    deadline = time.monotonic() + timeout_s
    raw = _raw(cfg_path)
    raw["shards"][shard_id]["replicas"].append(entry)
    cfg = write_raw_config(cfg_path, raw)
    rep = cfg.replica(name)
    told = reload_topology(cfg, data_dir)
    console.print(f"1/4 {name} (id {node_id}, {host}:{resp_port}) written to {cfg_path}; "
                  f"{len(told)} running nodes told", highlight=False)
    procs.start_node(cfg_path, data_dir, rep)
    while procs.node_status(rep, cfg.requirepass) is None:
        if procs.read_pid(data_dir, name) is None or time.monotonic() > deadline:
            err_console.print(procs.log_tail(data_dir, name), highlight=False, markup=False)
            _forget(cfg, cfg_path, data_dir, name, retire=False)
            fail(f"{name} did not start (log: {procs.log_path(data_dir, name)}); it is out of {cfg_path} again", 1)
        time.sleep(0.1)
    console.print(f"2/4 {name} started", highlight=False)
    deadline = time.monotonic() + timeout_s
    _at_leader(cfg, data_dir, shard_id, deadline, "MAKO", "MEMBER", "ADD", node_id, done=("is already a",))
    members = _wait_members(cfg, data_dir, shard_id, deadline, f"{name} is a learner of shard {shard_id}",
                            lambda m: node_id in m["learners"] + m["voters"])
    console.print(f"3/4 {name} is a learner of shard {shard_id}; catching up", highlight=False)
    if not as_learner and node_id not in members["voters"]:
        deadline = time.monotonic() + timeout_s
        _wait_members(cfg, data_dir, shard_id, deadline, f"{name} has caught up",
                      lambda m: m["match"].get(str(node_id), 0) >= m["commit_index"])
        _at_leader(cfg, data_dir, shard_id, deadline, "MAKO", "MEMBER", "PROMOTE", node_id,
                   done=("is already a voter",))
        members = _wait_members(cfg, data_dir, shard_id, deadline, f"{name} is a voter of shard {shard_id}",
                                lambda m: node_id in m["voters"])
        # The file says what the log now says (a restored backup starts from
        # the file's roles); joined: true keeps it out of the first membership.
        raw = _raw(cfg_path)
        for entry in raw["shards"][shard_id]["replicas"]:
            if entry.get("name") == name:
                entry["role"] = "voter"
        cfg = write_raw_config(cfg_path, raw)
    role = "voter" if node_id in members["voters"] else "learner"
    console.print(f"4/4 {name} is a {role} of shard {shard_id}: voters "
                  f"{_names(members, members['voters'])}, learners {_names(members, members['learners'])}",
                  highlight=False)
    if as_json:
        click.echo(json.dumps({"name": name, "node_id": node_id, "shard": shard_id, "role": role,
                               "voters": members["voters"], "learners": members["learners"]}))


@click.command("remove-replica")
@click.argument("name")
@click.option("--data-dir", default="./mako-data", show_default=True, type=click.Path(file_okay=False),
              help="Directory holding cluster.yaml and every node's data.")
@click.option("--timeout", "timeout_s", default=60.0, show_default=True, help="Seconds to wait for each step.")
@click.option("--json", "as_json", is_flag=True, help="Print the shard's membership at the end as JSON.")
def remove_replica(name: str, data_dir: str, timeout_s: float, as_json: bool) -> None:
    """Remove a replica from its shard while it serves, then stop it."""
    from makoctl.cluster import load_cluster

    cfg, cfg_path = load_cluster(data_dir)
    try:
        rep = cfg.replica(name)
    except KeyError:
        fail(f"no replica named {name}", 2)
        raise  # unreachable
    shard_id, node_id = rep.shard, rep.node_id
    deadline = time.monotonic() + timeout_s
    leader = _leader(cfg, data_dir, shard_id, deadline)
    members = _members(cfg, leader) or {}
    if members.get("voters") == [node_id]:
        fail(f"{name} is shard {shard_id}'s only voter", 1)
    if cfg.preferred_leader(shard_id) == node_id:
        # Else the shard would hand leadership back to it before the removal.
        for other in cfg.shards[shard_id].replicas:
            try:
                with procs.client(other, cfg.requirepass, 2.0) as c:
                    c.execute_command("MAKO", "PREFER", "none")
            except Exception:  # noqa: BLE001  (down: it reads the file, rewritten below, when it starts)
                pass
    if leader.name == name:
        console.print(f"{name} leads shard {shard_id}: handing leadership over first", highlight=False)
        _at_leader(cfg, data_dir, shard_id, deadline, "MAKO", "FAILOVER")
        while _leader(cfg, data_dir, shard_id, deadline).name == name:
            if time.monotonic() > deadline:
                fail(f"{name} still leads shard {shard_id}", 1)
            time.sleep(0.1)
    _at_leader(cfg, data_dir, shard_id, deadline, "MAKO", "MEMBER", "REMOVE", node_id,
               done=("is not a member",))
    members = _wait_members(cfg, data_dir, shard_id, deadline, f"{name} is out of shard {shard_id}",
                            lambda m: node_id not in m["voters"] + m["learners"])
    console.print(f"1/2 {name} removed from shard {shard_id}: voters {_names(members, members['voters'])}",
                  highlight=False)
    _forget(cfg, cfg_path, data_dir, name, retire=True)
    console.print(f"2/2 {name} stopped and out of {cfg_path} (its data stays in "
                  f"{procs.node_dir(data_dir, name)}; its id {node_id} is retired)", highlight=False)
    if as_json:
        click.echo(json.dumps({"name": name, "node_id": node_id, "shard": shard_id,
                               "voters": members["voters"], "learners": members["learners"]}))


def _forget(cfg: ClusterConfig, cfg_path: str, data_dir: str, name: str, retire: bool) -> None:
    """Stop ``name`` and take it out of cluster.yaml (its id retired when it
    ever was a member), then tell the running nodes."""
    rep = cfg.replica(name)
    procs.stop_node(data_dir, name)
    raw = _raw(cfg_path)
    shard_raw = raw["shards"][rep.shard]
    shard_raw["replicas"] = [r for r in shard_raw["replicas"] if r.get("name") != name]
    if shard_raw.get("preferred_leader") == name:
        del shard_raw["preferred_leader"]
    if retire:
        raw["retired_ids"] = sorted(set(raw.get("retired_ids", [])) | {rep.node_id})
    cfg = write_raw_config(cfg_path, raw)
    reload_topology(cfg, data_dir)


def _names(members: dict, ids: list[int]) -> str:
    return ", ".join(members["names"].get(str(i), f"node {i}") for i in ids) or "none"
