"""What ``makoctl cluster status`` shows: a table that fits 80 columns (every
field with ``--wide``), the same as JSON, and a live view (``--watch``)."""

from __future__ import annotations

import time
from typing import Callable

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from makod.config import ClusterConfig
from makoctl import procs

ROLE_STYLES = {"leader": "bold green", "follower": "cyan", "learner": "magenta"}
NARROW = ("name", "shard", "role", "endpoint", "pid", "lag", "keys")
WIDE = ("name", "shard", "dc", "role", "endpoint", "pid", "ballot", "epoch", "last", "commit", "applied", "lag",
        "keys", "clients")
LEFT = {"name", "dc", "role", "endpoint"}


def state_json(s: procs.NodeState) -> dict:
    st = s.status or {}
    out = {
        "name": s.name,
        "shard": s.shard,
        "role": s.role,
        "health": s.health,
        "host": s.host,
        "resp_port": s.resp_port,
        "peer_port": s.peer_port,
        "datacenter": s.datacenter,
        "pid": s.pid,
    }
    if s.detail:
        out["detail"] = s.detail
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
                "keyspace": st.get("keyspace"),
                "connected_clients": st.get("connected_clients"),
                "commands_processed": st.get("commands_processed"),
            }
        )
    return out


def exit_code(states: list[procs.NodeState]) -> int:
    """0: every node is up; 1: some node is not; 3: none is."""
    down = sum(1 for s in states if s.health != procs.OK)
    if down == 0:
        return 0
    return 3 if down == len(states) else 1


def _cells(s: procs.NodeState, leader_commit: dict[int, int], ops: float | None,
           mean_ms: float | None = None) -> dict[str, str]:
    st = s.status or {}
    lag = "-"
    if st:
        lag = str(max(0, leader_commit.get(s.shard, st.get("commit_index", 0)) - st.get("applied_index", 0)))
    role = f"[{ROLE_STYLES[s.role]}]{s.role}[/]" if s.health == procs.OK else f"[bold red]{s.health}[/]"
    return {
        "name": s.name,
        "shard": str(s.shard),
        "dc": s.datacenter,
        "role": role,
        "endpoint": f"{s.host}:{s.resp_port}",
        "pid": str(s.pid or "-"),
        "ballot": str(st.get("ballot", "-")),
        "epoch": str(st.get("epoch", "-")),
        "last": str(st.get("last_index", "-")),
        "commit": str(st.get("commit_index", "-")),
        "applied": str(st.get("applied_index", "-")),
        "lag": lag,
        "keys": str(st.get("keys", "-")),
        "clients": str(st.get("connected_clients", "-")),
        "ops/s": "-" if ops is None else f"{ops:,.0f}",
        "lat ms": "-" if mean_ms is None else f"{mean_ms:.2f}",
    }


def table(states: list[procs.NodeState], title: str, wide: bool = False,
          ops: dict[str, float] | None = None, latency_ms: dict[str, float] | None = None) -> Table:
    columns = list(WIDE if wide else NARROW)
    if ops is not None:
        columns.insert(columns.index("lag"), "ops/s")
        columns.insert(columns.index("lag"), "lat ms")
    out = Table(title=title, title_justify="left")
    for col in columns:
        out.add_column(col, justify="left" if col in LEFT else "right", no_wrap=True)
    leader_commit = {s.shard: (s.status or {}).get("commit_index", 0) for s in states if s.role == "leader"}
    for s in states:
        cells = _cells(s, leader_commit, None if ops is None else ops.get(s.name),
                       None if latency_ms is None else latency_ms.get(s.name))
        out.add_row(*(cells[c] for c in columns))
    return out


def _cluster_keys(states: list[procs.NodeState]) -> int | None:
    """Keys held cluster-wide: each shard's leader's count (None if a shard has no leader up)."""
    by_shard = {s.shard: (s.status or {}).get("keys") for s in states if s.role == "leader"}
    if len(by_shard) != len({s.shard for s in states}) or any(v is None for v in by_shard.values()):
        return None
    return sum(by_shard.values())


def cluster_keyspace(states: list[procs.NodeState]) -> dict | None:
    """INFO keyspace for the whole cluster: each database's keys and keys
    with a TTL, summed over the shard leaders (None if a shard has no leader up)."""
    leaders = {s.shard: (s.status or {}).get("keyspace") for s in states if s.role == "leader"}
    if len(leaders) != len({s.shard for s in states}) or any(v is None for v in leaders.values()):
        return None
    out: dict[str, dict[str, int]] = {}
    for per_db in leaders.values():
        for db, counts in per_db.items():
            total = out.setdefault(db, {"keys": 0, "expires": 0})
            total["keys"] += counts["keys"]
            total["expires"] += counts["expires"]
    return dict(sorted(out.items(), key=lambda item: int(item[0][2:])))


def cluster_json(name: str, states: list[procs.NodeState]) -> dict:
    return {"cluster": name, "nodes": [state_json(s) for s in states], "keys": _cluster_keys(states),
            "keyspace": cluster_keyspace(states)}


def problems(states: list[procs.NodeState]) -> Text | None:
    """One line per node that is not up, saying why."""
    lines = [f"{s.name}: {s.health}" + (f" ({s.detail})" if s.detail else "") for s in states if s.health != procs.OK]
    leaderless = sorted({s.shard for s in states} - {s.shard for s in states if s.role == "leader"})
    lines += [f"shard {shard}: no leader" for shard in leaderless]
    return Text("\n".join(lines), style="red") if lines else None


def render(states: list[procs.NodeState], title: str, wide: bool, ops: dict[str, float] | None = None,
           latency_ms: dict[str, float] | None = None) -> Group:
    parts: list = [table(states, title, wide, ops, latency_ms)]
    keys = _cluster_keys(states)
    if keys is not None:
        keyspace = cluster_keyspace(states) or {}
        per_db = ", ".join(f"{db}: {c['keys']:,}" for db, c in keyspace.items()) if len(keyspace) > 1 else ""
        parts.append(Text(f"keys: {keys:,} in the cluster{' (' + per_db + ')' if per_db else ''} "
                          "(summed over shard leaders)"))
    trouble = problems(states)
    if trouble is not None:
        parts.append(trouble)
    return Group(*parts)


def watch(console: Console, cfg: ClusterConfig, data_dir: str, title: str, wide: bool, interval_s: float,
          count: int | None, probe: Callable[[], list[procs.NodeState]]) -> list[procs.NodeState]:
    """Redraw the table every ``interval_s`` (``count`` times, or until ^C),
    with each node's commands per second and their mean latency (time until
    the reply may go out) since the previous look."""
    before: dict[str, tuple[float, int]] = {}
    lat_before: dict[str, tuple[int, int]] = {}
    states: list[procs.NodeState] = []
    shown = 0
    with Live(console=console, auto_refresh=False, transient=False) as live:
        try:
            while count is None or shown < count:
                states = probe()
                now = time.monotonic()
                ops: dict[str, float] = {}
                latency_ms: dict[str, float] = {}
                for s in states:
                    st = s.status or {}
                    calls, usec = st.get("command_calls"), st.get("command_usec")
                    if calls is not None and usec is not None:
                        if s.name in lat_before and calls > lat_before[s.name][0]:
                            c0, u0 = lat_before[s.name]
                            latency_ms[s.name] = (usec - u0) / (calls - c0) / 1000
                        lat_before[s.name] = (calls, usec)
                    done = st.get("commands_processed")
                    if done is None:
                        continue
                    if s.name in before and now > before[s.name][0]:
                        t0, d0 = before[s.name]
                        ops[s.name] = max(0, done - d0) / (now - t0)
                    before[s.name] = (now, done)
                stamp = time.strftime("%H:%M:%S")
                live.update(render(states, f"{title} at {stamp}, every {interval_s:g}s (^C stops)", wide, ops,
                                   latency_ms), refresh=True)
                shown += 1
                if count is None or shown < count:
                    time.sleep(interval_s)
        except KeyboardInterrupt:
            pass
    return states
