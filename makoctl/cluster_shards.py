"""``makoctl cluster add-shard``: grow a running cluster by one shard
(docs/RESHARDING.md, "Adding a shard").

The new shard starts empty: its replicas are written into cluster.yaml with
no slots (``slots: []``), started, and once they have elected a leader
every running node reloads the file (MAKO TOPOLOGY RELOAD), from then on
counting one more shard in its vectors and routes. Slots then move to it
with ``makoctl cluster reshard`` (or ``--rebalance`` here, which moves an
even share). A start that fails is undone: the nodes it started are
stopped, their folders removed and the shard taken out of the file again;
the running nodes never heard of it.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import click

from makod.core import slot_table
from makod.kv.hashslot import NUM_SLOTS
from makoctl import procs
from makoctl.cluster_members import _free_port, _leader, _ports_of, _raw, reload_topology
from makoctl.cluster_reshard import RETRYABLE, Shards, StepRefused, move_options, move_slots, report
from makoctl.cluster_setup import port_in_use, undo_start, write_raw_config
from makoctl.output import console, err_console, fail


def rebalance_ranges(owned: list[list[tuple[int, int]]], target: int) -> list[tuple[int, int]]:
    """The slots to move to ``target`` so that every shard holds an even
    share (16384 // shards, the first few one more): each shard above its
    share gives the top of its highest ranges. ``owned``: each shard's
    owned ranges (inclusive)."""
    count = len(owned)
    share = [NUM_SLOTS // count + (1 if s < NUM_SLOTS % count else 0) for s in range(count)]
    # The target takes what the others give: its own share is what is left.
    give: list[tuple[int, int]] = []
    for shard, ranges in enumerate(owned):
        if shard == target:
            continue
        extra = sum(hi - lo + 1 for lo, hi in ranges) - share[shard]
        for lo, hi in sorted(ranges, reverse=True):
            if extra <= 0:
                break
            take = min(extra, hi - lo + 1)
            give.append((hi - take + 1, hi))
            extra -= take
    return sorted(give)


def _undo(cfg_path: str, data_dir: str, shard_id: int, started: list[str], created: list[str]) -> None:
    """Take the shard out of the file again, stop what was started, remove its folders."""
    raw = _raw(cfg_path)
    raw["shards"] = [sh for sh in raw["shards"] if sh.get("id") != shard_id]
    write_raw_config(cfg_path, raw)
    undo_start(data_dir, started, created)


def _wait_known(cfg: Any, names: list[str], deadline: float) -> dict[str, list[str]]:
    """Until every node told of the new shard knows every shard's leader
    (the new one's of the others, the others' of the new one): a request
    that needs a shard before then finds no leader to go to."""
    shards = [str(s) for s in range(len(cfg.shards))]

    def unknown(name: str) -> list[str]:
        leaders = (procs.node_status(cfg.replica(name), cfg.requirepass) or {}).get("leaders") or {}
        return [s for s in shards if leaders.get(s) is None]

    waiting: dict[str, Any] = dict.fromkeys(names)
    while waiting:
        waiting = {n: missing for n in waiting if (missing := unknown(n))}
        if waiting and time.monotonic() > deadline:
            err_console.print("[yellow]note:[/] " + "; ".join(
                f"{n} knows no leader of shard {', '.join(m)}" for n, m in waiting.items()), highlight=False)
            return waiting
        if waiting:
            time.sleep(0.1)
    return {}


def _copy_functions(cfg: Any, data_dir: str, new_leader: Any, deadline: float) -> int:
    """Every shard keeps its own copy of the FUNCTION libraries: give the
    new one shard 0's (RESTORE runs on every shard; REPLACE leaves the
    others as they are). The number of libraries copied."""
    while True:
        source = _leader(cfg, data_dir, 0, deadline)
        try:
            with procs.client(source, cfg.requirepass, 10.0) as c:
                libraries = c.execute_command("FUNCTION", "LIST")
                if not libraries:
                    return 0
                payload = c.execute_command("FUNCTION", "DUMP")
            with procs.client(new_leader, cfg.requirepass, 30.0) as c:
                c.execute_command("FUNCTION", "RESTORE", payload, "REPLACE")
            return len(libraries)
        except Exception as exc:  # noqa: BLE001  (the operator can copy them by hand)
            if not any(text in str(exc) for text in RETRYABLE + ("no leader",)) or time.monotonic() > deadline:
                err_console.print(f"[yellow]note:[/] the FUNCTION libraries were not copied to the new shard "
                                  f"({exc}); run FUNCTION DUMP and FUNCTION RESTORE ... REPLACE by hand",
                                  highlight=False)
                return 0
            time.sleep(0.2)


@click.command("add-shard")
@click.option("--replicas", "replica_count", type=click.IntRange(1, 9), default=None,
              help="Its replicas [default: as many as shard 0 has].")
@click.option("--host", default=None, help="Their host [default: shard 0's first replica's].")
@click.option("--base-port", type=click.IntRange(1024, 35535), default=None,
              help="The first one's RESP port [default: the first free ports above the cluster's].")
@click.option("--rebalance", is_flag=True, help="Then move slots to it until every shard holds an even share.")
@move_options("With --rebalance: ")
@click.option("--data-dir", default="./mako-data", show_default=True, type=click.Path(file_okay=False),
              help="Directory holding cluster.yaml and every node's data.")
@click.option("--timeout", "timeout_s", default=60.0, show_default=True,
              help="Seconds to wait for each step.")
@click.option("--json", "as_json", is_flag=True, help="Print the new shard (and what moved) as JSON.")
def add_shard(replica_count: int | None, host: str | None, base_port: int | None, rebalance: bool, chunk: int,
              batch: int, data_dir: str, timeout_s: float, as_json: bool) -> None:
    """Add an empty shard while the cluster serves; move slots to it with reshard (or --rebalance).

    A run that stopped before every node knew the new shard (the file names
    it, a running node does not) is finished instead: its replicas started
    if they are not running, every node told."""
    from makoctl.cluster import load_cluster

    cfg, cfg_path = load_cluster(data_dir)
    if cfg.protocol == "luigi":
        fail("shards are added only under protocol mako or 2pc-paxos (this cluster runs luigi)", 2)
    # With --json, stdout holds only the JSON (the steps go to stderr).
    say = err_console.print if as_json else console.print
    count = len(cfg.shards)
    unaware = [st.name for st in procs.cluster_states(cfg, data_dir, 1.0)
               if st.health == procs.OK and (st.status or {}).get("shards", count) < count]
    deadline = time.monotonic() + timeout_s
    if unaware and count > 1 and not cfg.shards[-1].slots:
        shard_id = count - 1
        names = [r.name for r in cfg.shards[-1].replicas]
        err_console.print(f"note: finishing the addition of shard {shard_id} ({', '.join(unaware)} did not know "
                          "it: an earlier run stopped there)", highlight=False)
        _start(cfg, cfg_path, data_dir, shard_id, [n for n in names if procs.read_pid(data_dir, n) is None],
               deadline, undo=False)
    else:
        shard_id = count
        if shard_id > 255:
            fail("a cluster has at most 256 shards", 2)
        entries = _plan_replicas(cfg, data_dir, shard_id, replica_count, host, base_port)
        raw = _raw(cfg_path)
        raw["shards"].append({"id": shard_id, "slots": [], "replicas": entries})
        cfg = write_raw_config(cfg_path, raw)
        names = [e["name"] for e in entries]
        say(f"1/3 shard {shard_id} ({', '.join(names)}; ports {entries[0]['resp_port']}-"
            f"{entries[-1]['resp_port']}) written to {cfg_path}", highlight=False)
        _start(cfg, cfg_path, data_dir, shard_id, names, deadline, undo=True)
    leader = _leader(cfg, data_dir, shard_id, deadline)
    say(f"2/3 shard {shard_id} started: {leader.name} leads", highlight=False)
    told = reload_topology(cfg, data_dir)
    behind = _wait_known(cfg, told, deadline)
    missed = [st.name for st in procs.cluster_states(cfg, data_dir, 1.0)
              if st.health == procs.OK and st.name not in told]
    if rebalance and (missed or behind):
        # A node that does not know the new shard cannot route to it: moving
        # slots there now would leave it unable to serve them.
        fail(f"shard {shard_id} is running, but {', '.join(missed + sorted(behind))} did not take it in; run "
             f"`redis-cli -p PORT mako topology reload` on each, then `makoctl cluster reshard --slots A-B "
             f"--to {shard_id}`", 1)
    libraries = _copy_functions(cfg, data_dir, leader, deadline)
    say(f"3/3 {len(told)} running nodes know shard {shard_id}; it holds no slots yet"
        + (f"; FUNCTION libraries copied to it: {libraries}" if libraries else ""), highlight=False)
    moved: list[dict] = []
    keys = 0
    serving: Any = None
    if rebalance:
        shards = Shards(cfg, data_dir, timeout_s)
        try:
            owned = [slot_table.owned_ranges(shards.table(s)) for s in range(len(cfg.shards))]
        except StepRefused as exc:
            fail(f"could not read the shards' slot tables: {exc}", 1)
        finally:
            shards.close()
        moved, keys, serving = move_slots(cfg, cfg_path, data_dir, rebalance_ranges(owned, shard_id), shard_id,
                                          chunk, batch, timeout_s, transient=not as_json)
    if as_json:
        click.echo(json.dumps({"shard": shard_id, "replicas": names, "leader": leader.name, "told": told,
                               "moved": moved, "keys": keys,
                               "serving": {str(s): [f"{a}-{b}" for a, b in r] for s, r in enumerate(serving or [])}}))
        return
    if rebalance:
        report(moved, keys, serving, shard_id, False, "every shard holds its share already")
    else:
        console.print(f"move slots to it with: makoctl cluster reshard --slots A-B --to {shard_id}", highlight=False)


def _plan_replicas(cfg: Any, data_dir: str, shard_id: int, replica_count: int | None, host: str | None,
                   base_port: int | None) -> list[dict[str, Any]]:
    """The new shard's replicas as cluster.yaml entries: names sNrK, fresh
    ids, free ports, the k-th beside shard 0's k-th (leaders side by side,
    Mako's layout)."""
    first = cfg.shards[0]
    replica_count = replica_count or len(first.replicas)
    host = host or first.replicas[0].host
    first_id = max([r.node_id for r in cfg.replicas] + cfg.retired_ids) + 1
    if first_id + replica_count - 1 > 255:
        fail("no node ids left: ids stay below 256 and a removed replica's id is never reused", 1)
    tls = bool(cfg.tls)
    taken = {p for r in cfg.replicas for p in (r.resp_port, r.peer_port, r.tls_port, r.metrics_port) if p}
    metrics = any(r.metrics_port for r in cfg.replicas)
    entries: list[dict[str, Any]] = []
    port = base_port or max(r.resp_port for r in cfg.replicas) + 1
    for k in range(replica_count):
        name = f"s{shard_id}r{k}"
        if name in {r.name for r in cfg.replicas} or os.path.exists(procs.node_dir(data_dir, name)):
            fail(f"a replica named {name} exists already (or its data directory does: "
                 f"{procs.node_dir(data_dir, name)})", 2)
        if base_port is None:
            port = _free_port(host, port, taken, tls)
        for p in _ports_of(port, tls):
            if p in taken or port_in_use(host, p) is not None:
                fail(f"port {p} on {host} is in use", 1)
        taken.update(_ports_of(port, tls))
        dc = first.replicas[k].datacenter if k < len(first.replicas) else f"dc{k}"
        entry: dict[str, Any] = {"id": first_id + k, "name": name, "host": host, "resp_port": port,
                                 "peer_port": port + 10000, "datacenter": dc}
        if metrics and port_in_use(host, port + 30000) is None and port + 30000 not in taken:
            entry["metrics_port"] = port + 30000
            taken.add(port + 30000)
        entries.append(entry)
        port += 1
    return entries


def _start(cfg: Any, cfg_path: str, data_dir: str, shard_id: int, names: list[str], deadline: float,
           undo: bool) -> None:
    """Start these replicas and wait until each answers; if one does not,
    stop them and (``undo``: this run wrote the shard) take the shard out of
    the file again."""
    started: list[str] = []
    for name in names:
        procs.start_node(cfg_path, data_dir, cfg.replica(name))
        started.append(name)
    for name in names:
        rep = cfg.replica(name)
        while procs.node_status(rep, cfg.requirepass) is None:
            if procs.read_pid(data_dir, name) is None or time.monotonic() > deadline:
                err_console.print(procs.log_tail(data_dir, name), highlight=False, markup=False)
                if undo:
                    _undo(cfg_path, data_dir, shard_id, started, [procs.node_dir(data_dir, n) for n in names])
                    fail(f"{name} did not start (log: {procs.log_path(data_dir, name)}); shard {shard_id} is out "
                         f"of {cfg_path} again", 1)
                fail(f"{name} did not start (log: {procs.log_path(data_dir, name)})", 1)
            time.sleep(0.1)
