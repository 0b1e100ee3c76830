"""``makoctl cluster reshard --slots A-B --to N``: move slots between shards
while the cluster serves (docs/RESHARDING.md).

For each run of slots with one source shard, in chunks of ``--chunk``
slots, the steps of makod/core/slots_cmd.py in order: IMPORTING at the
target, FREEZE at the source, EXPORT/IMPORT batches, OWN at the target,
DROP at the source, then a routing hint (MAKO ROUTE) to every node. A
request on a chunk's slots waits while that chunk moves (or gets
TRYAGAIN after the queue timeout). Every step is idempotent: a rerun after
a crash reads each shard's table and finishes what was started; a chunk
that cannot move (a refused import) is undone. At the end cluster.yaml's
``serving`` ranges say where every slot now is.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any, Callable

import click
import yaml
from rich.progress import BarColumn, Progress, TextColumn

from makod.config import ClusterConfig
from makod.core import slot_table
from makod.kv.hashslot import NUM_SLOTS
from makoctl import procs
from makoctl.cluster_setup import write_raw_config
from makoctl.output import console, err_console, fail

# Answers that mean "ask again" (an election, a lock held by a transaction
# prepared before the freeze, a forwarded request whose leader moved).
RETRYABLE = ("TRYAGAIN", "CLUSTERDOWN", "LOADING", "Connection", "Timeout", "timed out", "refused",
             "not its shard's leader", "Error while reading", "Broken pipe", "reset by peer",
             "cannot go to another node")  # (a big IMPORT at a follower: asked again at the leader)


class StepRefused(Exception):
    pass


class Shards:
    """Talks to each shard (any replica forwards to its leader), asking again
    while the answer says to wait."""

    def __init__(self, cfg: ClusterConfig, data_dir: str, timeout_s: float) -> None:
        self.cfg = cfg
        self.data_dir = data_dir
        self.timeout_s = timeout_s
        self._clients: dict[str, Any] = {}

    def _candidates(self, shard: int) -> list:
        reps = self.cfg.shards[shard].replicas
        leader = None
        for state in procs.cluster_states(self.cfg, self.data_dir, 1.0):
            if state.shard == shard and state.role == "leader":
                leader = state.name
        return sorted(reps, key=lambda r: r.name != leader)

    def call(self, shard: int, *command: Any) -> Any:
        deadline = time.monotonic() + self.timeout_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            for rep in self._candidates(shard):
                try:
                    c = self._clients.get(rep.name)
                    if c is None:
                        c = self._clients[rep.name] = procs.client(rep, self.cfg.requirepass, 30.0)
                    return c.execute_command(*command)
                except Exception as exc:  # noqa: BLE001  (the server's explanation is in the text)
                    self._clients.pop(rep.name, None)
                    if not any(text in str(exc) for text in RETRYABLE):
                        raise StepRefused(f"shard {shard}: {' '.join(map(str, command[:5]))}: {exc}") from None
                    last = exc
            time.sleep(0.1)
        raise StepRefused(f"shard {shard}: {' '.join(map(str, command[:5]))}: still refused after "
                          f"{self.timeout_s:.0f} s: {last}")

    def table(self, shard: int) -> list[list[int]]:
        shown = json.loads(self.call(shard, "MAKO", "SLOTS", "SHOW"))
        names = {name: i for i, name in enumerate(slot_table.STATE_NAMES)}
        return [[e["from"], e["to"], names[e["state"]], e.get("peer", -1), e.get("move", 0)] for e in shown["table"]]

    def close(self) -> None:
        for c in self._clients.values():
            c.close()


def parse_slots(text: str) -> tuple[int, int]:
    lo_s, _, hi_s = text.partition("-")
    try:
        lo = int(lo_s)
        hi = int(hi_s) if hi_s else lo
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a slot range like 0-999 or one slot like 42") from None
    if not 0 <= lo <= hi < NUM_SLOTS:
        raise click.BadParameter(f"{text!r}: slots are 0-{NUM_SLOTS - 1}, the first not above the last")
    return lo, hi


def plan(tables: list[list[list[int]]], lo: int, hi: int, target: int, chunk: int) -> list[tuple[int, int, int]]:
    """(source, lo, hi) chunks that are not yet the target's, from each
    shard's own table: who owns, or is handing over, each slot."""
    source_of: list[int | None] = [None] * NUM_SLOTS
    for shard, table in enumerate(tables):
        for a, b, state, _peer, _move in table:
            if state in (slot_table.OWNED, slot_table.FROZEN):
                for slot in range(max(a, lo), min(b, hi) + 1):
                    source_of[slot] = shard
    out: list[tuple[int, int, int]] = []
    for slot in range(lo, hi + 1):
        src = source_of[slot]
        if src is None or src == target:
            continue
        if out and out[-1][0] == src and out[-1][2] == slot - 1 and slot - out[-1][1] < chunk:
            out[-1] = (src, out[-1][1], slot)
        else:
            out.append((src, slot, slot))
    return out


def move_chunk(shards: Shards, src: int, dst: int, lo: int, hi: int, batch: int, on_keys,
               move: int | None = None) -> int:
    """Move slots lo..hi from ``src`` to ``dst`` (as move ``move``: one under
    way, else a new one); the number of keys copied."""
    move = move or secrets.randbelow(slot_table.MAX_MOVE_ID) + 1
    dst_states = slot_table.states_in(shards.table(dst), lo, hi)
    copied = 0
    if not all(s is not None and s[0] == slot_table.OWNED for s in dst_states):
        shards.call(dst, "MAKO", "SLOTS", "IMPORTING", lo, hi, src, move)
        shards.call(src, "MAKO", "SLOTS", "FREEZE", lo, hi, dst, move)
        cursor = b""
        try:
            while True:
                more, cursor, items = shards.call(src, "MAKO", "SLOTS", "EXPORT", lo, hi, move, cursor, batch)
                if items:
                    copied += shards.call(dst, "MAKO", "SLOTS", "IMPORT", lo, hi, src, move, *items)
                    on_keys(len(items) // 2)
                if more == b"0":
                    break
        except StepRefused:
            # Undo: the target forgets its copies, the source serves again.
            while shards.call(dst, "MAKO", "SLOTS", "DROP", lo, hi, move):
                pass
            shards.call(src, "MAKO", "SLOTS", "UNFREEZE", lo, hi, move)
            raise
        shards.call(dst, "MAKO", "SLOTS", "OWN", lo, hi, move)
    while shards.call(src, "MAKO", "SLOTS", "DROP", lo, hi, move):
        pass
    return copied


def finish_interrupted(shards: Shards, tables: list[list[list[int]]], batch: int) -> list[str]:
    """Finish what an interrupted run left: a frozen range moves on to where
    it was going, a lone import is undone, a purge completes."""
    done = []
    for src, table in enumerate(tables):
        for a, b, state, peer, move in table:
            if state == slot_table.FROZEN:
                move_chunk(shards, src, peer, a, b, batch, lambda n: None, move)
                done.append(f"finished moving slots {a}-{b} from shard {src} to shard {peer}")
    tables = [shards.table(s) for s in range(len(tables))]
    for shard, table in enumerate(tables):
        for a, b, state, _peer, move in table:
            if state in (slot_table.IMPORTING, slot_table.PURGING):
                while shards.call(shard, "MAKO", "SLOTS", "DROP", a, b, move):
                    pass
                what = "undid an import of" if state == slot_table.IMPORTING else "purged"
                done.append(f"{what} slots {a}-{b} at shard {shard}")
    return done


def tell_routes(cfg: ClusterConfig, data_dir: str, lo: int, hi: int, dst: int) -> None:
    """A hint to every running node (those down learn it from the file)."""
    for state in procs.cluster_states(cfg, data_dir, 1.0):
        if state.health != procs.OK:
            continue
        try:
            with procs.client(cfg.replica(state.name), cfg.requirepass, 2.0) as c:
                c.execute_command("MAKO", "ROUTE", lo, hi, dst)
        except Exception:  # noqa: BLE001  (a hint: the node learns it from a refusal anyway)
            pass


def serving_ranges(tables: list[list[list[int]]]) -> list[list[tuple[int, int]]] | None:
    """Each shard's owned ranges, if together they cover every slot once."""
    out = [slot_table.owned_ranges(t) for t in tables]
    covered = sorted(r for ranges in out for r in ranges)
    nxt = 0
    for a, b in covered:
        if a != nxt:
            return None
        nxt = b + 1
    return out if nxt == NUM_SLOTS else None


def write_serving(cfg_path: str, serving: list[list[tuple[int, int]]]) -> ClusterConfig:
    with open(cfg_path) as f:
        raw = yaml.safe_load(f)
    for shard_raw, ranges in zip(raw["shards"], serving):
        shard_raw["serving"] = [f"{a}-{b}" for a, b in ranges]
    return write_raw_config(cfg_path, raw)


def move_options(prefix: str = "") -> Callable[[Any], Any]:
    """--chunk and --batch, for every command that moves slots."""
    def text(help_text: str) -> str:
        return prefix + help_text[0].lower() + help_text[1:] if prefix else help_text

    def apply(command: Any) -> Any:
        command = click.option("--batch", default=500, show_default=True, type=click.IntRange(1, 100_000),
                               help=text("Keys per export and import."))(command)
        return click.option("--chunk", default=512, show_default=True, type=click.IntRange(1, NUM_SLOTS),
                            help=text("Slots moved at a time (requests on a chunk wait while it moves)."))(command)
    return apply


@click.command("reshard")
@click.option("--slots", "slot_range", required=True, help="Slots to move: A-B (inclusive) or one slot.")
@click.option("--to", "target", required=True, type=int, help="Shard that gets them.")
@move_options()
@click.option("--data-dir", default="./mako-data", show_default=True, type=click.Path(file_okay=False),
              help="Directory holding cluster.yaml and every node's data.")
@click.option("--timeout", "timeout_s", default=60.0, show_default=True,
              help="Seconds each step may keep being told to wait.")
@click.option("--json", "as_json", is_flag=True, help="Print what moved, and where every slot is, as JSON.")
def reshard(slot_range: str, target: int, chunk: int, batch: int, data_dir: str, timeout_s: float,
            as_json: bool) -> None:
    """Move slots to another shard while the cluster serves."""
    from makoctl.cluster import load_cluster

    cfg, cfg_path = load_cluster(data_dir)
    lo, hi = parse_slots(slot_range)
    if not 0 <= target < len(cfg.shards):
        fail(f"no shard {target}; shards are 0-{len(cfg.shards) - 1}", 2)
    if len(cfg.shards) < 2:
        fail("a cluster of one shard has nowhere to move slots", 2)
    if cfg.protocol == "luigi":
        fail("slots move only under protocol mako or 2pc-paxos (this cluster runs luigi)", 2)
    moved, keys, serving = move_slots(cfg, cfg_path, data_dir, [(lo, hi)], target, chunk, batch, timeout_s,
                                      transient=not as_json)
    report(moved, keys, serving, target, as_json, f"slots {lo}-{hi} are shard {target}'s already")


def move_slots(cfg: ClusterConfig, cfg_path: str, data_dir: str, ranges: list[tuple[int, int]], target: int,
               chunk: int, batch: int, timeout_s: float, transient: bool = True) -> tuple[list[dict], int, Any]:
    """Move every slot of ``ranges`` to shard ``target`` (finishing first
    what an interrupted run left), with a progress bar; rewrite the file's
    serving ranges. Returns what moved, the keys copied, and the serving
    ranges (None if some slots are still mid-move)."""
    behind = [st.name for st in procs.cluster_states(cfg, data_dir, 1.0)
              if st.health == procs.OK and (st.status or {}).get("shards", len(cfg.shards)) < len(cfg.shards)]
    if behind:
        # A node that does not know a shard cannot route to it (makoctl cluster add-shard reloads them all).
        fail(f"{', '.join(behind)} do not know all {len(cfg.shards)} shards of {cfg_path} yet: run "
             "`redis-cli -p PORT mako topology reload` on each (or restart them), then reshard again", 1)
    shards = Shards(cfg, data_dir, timeout_s)
    moved: list[dict] = []
    keys = 0
    try:
        tables = [shards.table(s) for s in range(len(cfg.shards))]
        for line in finish_interrupted(shards, tables, batch):
            err_console.print(f"note: {line} (an earlier run stopped there)", highlight=False)
        tables = [shards.table(s) for s in range(len(cfg.shards))]
        chunks = [c for lo, hi in ranges for c in plan(tables, lo, hi, target, chunk)]
        what = ", ".join(f"{lo}-{hi}" for lo, hi in ranges)
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} slots"),
                      TextColumn("{task.fields[keys]} keys"), console=err_console, transient=transient) as bar:
            task = bar.add_task(f"slots {what} to shard {target}", total=sum(b - a + 1 for _, a, b in chunks),
                                keys=0)
            for src, a, b in chunks:
                def on_keys(n: int) -> None:
                    nonlocal keys
                    keys += n
                    bar.update(task, keys=keys)

                copied = move_chunk(shards, src, target, a, b, batch, on_keys)
                tell_routes(cfg, data_dir, a, b, target)
                moved.append({"from_shard": src, "slots": f"{a}-{b}", "keys": copied})
                bar.advance(task, b - a + 1)
        tables = [shards.table(s) for s in range(len(cfg.shards))]
    except StepRefused as exc:
        fail(f"reshard stopped: {exc}", 1)
    finally:
        shards.close()
    serving = serving_ranges(tables)
    if serving is not None:
        write_serving(cfg_path, serving)
    else:
        err_console.print("[yellow]note:[/] some slots are still mid-move elsewhere; cluster.yaml keeps its "
                          "serving ranges (run reshard again to finish)", highlight=False)
    return moved, keys, serving


def report(moved: list[dict], keys: int, serving: Any, target: int, as_json: bool, nothing: str) -> None:
    if as_json:
        click.echo(json.dumps({"moved": moved, "keys": keys,
                               "serving": {str(s): [f"{a}-{b}" for a, b in r] for s, r in enumerate(serving or [])}}))
        return
    if not moved:
        console.print(nothing, highlight=False)
        return
    for m in moved:
        console.print(f"moved slots {m['slots']} from shard {m['from_shard']} to shard {target} "
                      f"({m['keys']} keys)", highlight=False)
    if serving is not None:
        for s, ranges in enumerate(serving):
            console.print(f"shard {s} serves {', '.join(f'{a}-{b}' for a, b in ranges) or 'no slots'}",
                          highlight=False)
