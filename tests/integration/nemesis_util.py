"""Helpers for tests/integration/test_nemesis.py: clients that never retry,
outcome classification, node control (SIGKILL/SIGSTOP/SIGCONT/restart), a
nemesis thread, and the checks run on the history afterwards.

Everything that waits has a timeout, so a test using these never hangs.
"""

from __future__ import annotations

import bisect
import json
import os
import random
import re
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import redis
from redis.backoff import NoBackoff
from redis.exceptions import ExecAbortError, TryAgainError, WatchError
from redis.retry import Retry

from makoctl import procs
from makod.config import load_config_file
from makod.core.slots import key_slot
from makod.sim import elle
from makod.sim.elle import MopTxn
from tests.integration.cluster_util import Cluster, makoctl

NUM_SLOTS = 16384

T0 = time.monotonic()


def now_ms() -> float:
    return time.monotonic() * 1000.0


def rel(t_ms: float | None) -> str:
    """A monotonic time in ms as seconds since this module was imported."""
    return "-" if t_ms is None else f"{t_ms / 1000.0 - T0:.3f}s"


# -- keys -------------------------------------------------------------------------------------

def shard_of_key(key: bytes, num_shards: int = 2) -> int:
    """Shard owning a key with the default config (equal contiguous slot ranges)."""
    return key_slot(key) * num_shards // NUM_SLOTS


def keys_on_shards(prefix: str, per_shard: int, num_shards: int = 2) -> list[bytes]:
    """``per_shard`` keys named ``<prefix><i>`` on each shard, interleaved by shard."""
    found: dict[int, list[bytes]] = {s: [] for s in range(num_shards)}
    i = 0
    while any(len(v) < per_shard for v in found.values()):
        key = f"{prefix}{i}".encode()
        s = shard_of_key(key, num_shards)
        if len(found[s]) < per_shard:
            found[s].append(key)
        i += 1
    return [found[s][j] for j in range(per_shard) for s in range(num_shards)]


# -- clients ----------------------------------------------------------------------------------

def make_client(port: int, timeout: float = 5.0) -> redis.Redis:
    """A client that never retries: redis-py 8 would otherwise re-send a
    MULTI/EXEC whose connection dropped, which fakes duplicate writes."""
    return redis.Redis(
        host="127.0.0.1",
        port=port,
        socket_timeout=timeout,
        socket_connect_timeout=min(timeout, 2.0),
        retry=Retry(NoBackoff(), 0),
        protocol=2,
    )


OK, FAILED, UNKNOWN, PENDING = "ok", "failed", "unknown", "pending"


def classify(exc: BaseException) -> str:
    """FAILED only for replies that guarantee the operation had no effect;
    everything else (timeouts, dropped connections, CLUSTERDOWN, ...) is UNKNOWN."""
    if isinstance(exc, WatchError):
        # redis-py also raises WatchError when the connection fails while
        # watching: only a null EXEC reply means "nothing happened".
        return FAILED if str(exc) == "Watched variable changed." else UNKNOWN
    if isinstance(exc, (TryAgainError, ExecAbortError)):
        return FAILED
    if isinstance(exc, redis.ResponseError) and str(exc).startswith("Command # "):
        # A command refused while being queued: redis-py raises it only when
        # EXEC answered EXECABORT (we always call execute(raise_on_error=False)).
        return FAILED
    return UNKNOWN


def error_kind(exc: BaseException) -> str:
    text = str(exc)
    word = text.split(" ", 1)[0] if text else ""
    if isinstance(exc, WatchError):
        return "WatchError" if classify(exc) == FAILED else "WatchError(connection lost)"
    if isinstance(exc, redis.ResponseError):
        if text.startswith("Command # "):
            m = re.search(r"caused error: (\S+)", text)
            word = "queued:" + (m.group(1) if m else "?")
        return f"{type(exc).__name__}:{word}"
    return type(exc).__name__


# -- nodes ------------------------------------------------------------------------------------

class Nodes:
    """Direct control of a cluster's makod processes (pid files, signals, status)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.data_dir = cluster.data_dir
        cfg = load_config_file(os.path.join(self.data_dir, procs.CONFIG_NAME))
        self.cfg = cfg
        self.names = [r.name for r in cfg.replicas]
        self.shard_of = {r.name: r.shard for r in cfg.replicas}
        self.port = {r.name: r.resp_port for r in cfg.replicas}
        self.num_shards = len(cfg.shards)
        self.paused: dict[str, int] = {}  # name -> pid we SIGSTOPped and not yet SIGCONTed
        self.lock = threading.Lock()

    def replicas(self, shard: int) -> list[str]:
        return [n for n in self.names if self.shard_of[n] == shard]

    def pid(self, name: str) -> int | None:
        return procs.read_pid(self.data_dir, name)

    def status(self, name: str, timeout: float = 0.5) -> dict | None:
        if name in self.paused:
            return None
        try:
            with make_client(self.port[name], timeout) as c:
                return json.loads(c.execute_command("MAKO", "STATUS"))
        except (redis.RedisError, OSError, ValueError):
            return None

    def find_leader(self, shard: int) -> str | None:
        best: tuple[int, str] | None = None
        for name in self.replicas(shard):
            st = self.status(name)
            if st and st.get("role") == "leader" and st.get("serving"):
                if best is None or st.get("ballot", 0) > best[0]:
                    best = (st.get("ballot", 0), name)
        return best[1] if best else None

    def wait_leader(self, shard: int, timeout: float = 15.0) -> str | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leader = self.find_leader(shard)
            if leader:
                return leader
            time.sleep(0.1)
        return None

    def sigkill(self, name: str) -> int | None:
        pid = self.pid(name)
        if pid is None:
            return None
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return None
        procs.wait_dead(pid, 5)
        return pid

    def sigstop(self, name: str) -> int | None:
        pid = self.pid(name)
        if pid is None:
            return None
        with self.lock:
            os.kill(pid, signal.SIGSTOP)
            self.paused[name] = pid
        return pid

    def sigcont(self, name: str) -> None:
        with self.lock:
            pid = self.paused.pop(name, None)
        if pid is not None:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass

    def cont_all(self) -> None:
        """SIGCONT every node (harmless for running ones): nothing stays stopped."""
        for name in list(self.paused):
            self.sigcont(name)
        for name in self.names:
            pid = self.pid(name)
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGCONT)
                except OSError:
                    pass

    def restart(self, name: str, timeout: float = 30.0) -> tuple[bool, str]:
        proc = makoctl("cluster", "restart", name, "--data-dir", self.data_dir, "--timeout", str(timeout),
                       check=False, timeout=timeout + 30)
        return proc.returncode == 0, (proc.stdout + proc.stderr).strip()[-500:]

    def start_missing(self, timeout: float = 40.0) -> tuple[bool, str]:
        """``makoctl cluster start`` on the existing data dir: starts every node
        that is not running and waits until every shard has a leader."""
        proc = makoctl("cluster", "start", "--data-dir", self.data_dir, "--timeout", str(timeout), "--json",
                       check=False, timeout=timeout + 30)
        return proc.returncode == 0, (proc.stderr or "").strip()[-800:]

    def failover(self, shard: int, timeout: float = 15.0) -> tuple[bool, str]:
        proc = makoctl("cluster", "failover", "--shard", str(shard), "--data-dir", self.data_dir,
                       "--timeout", str(timeout), check=False, timeout=timeout + 30)
        return proc.returncode == 0, (proc.stdout + proc.stderr).strip()[-500:]

    def log_tail(self, name: str, lines: int = 25) -> str:
        return procs.log_tail(self.data_dir, name, lines)

    # -- health and convergence --------------------------------------------------------------
    def healthy(self) -> tuple[bool, dict]:
        """Every node answers, every shard has exactly one serving leader, and
        every replica of a shard names that leader."""
        info: dict[str, Any] = {}
        ok = True
        for shard in range(self.num_shards):
            leaders = []
            known = set()
            for name in self.replicas(shard):
                st = self.status(name, timeout=1.0)
                if st is None:
                    info[name] = "down"
                    ok = False
                    continue
                info[name] = f"{st.get('role')} serving={st.get('serving')} ballot={st.get('ballot')} " \
                             f"commit={st.get('commit_index')} applied={st.get('applied_index')}"
                known.add(st.get("leader_name"))
                if st.get("role") == "leader" and st.get("serving"):
                    leaders.append(name)
            if len(leaders) != 1 or known != {leaders[0]}:
                ok = False
        return ok, info

    def wait_healthy(self, timeout: float = 40.0) -> dict:
        deadline = time.monotonic() + timeout
        info: dict = {}
        while time.monotonic() < deadline:
            ok, info = self.healthy()
            if ok:
                return info
            time.sleep(0.2)
        raise AssertionError(f"cluster not healthy after {timeout}s: {info}")

    def digests(self) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for name in self.names:
            try:
                with make_client(self.port[name], 2.0) as c:
                    out[name] = c.execute_command("MAKO", "DIGEST").decode()
            except (redis.RedisError, OSError) as exc:
                out[name] = f"error: {exc}"
        return out

    def wait_converged(self, timeout: float = 40.0) -> tuple[dict, list[str]]:
        """Polls MAKO DIGEST ("<applied_slot> <nkeys> <hash>") on every node until
        the replicas of each shard report the same string. Returns the digests
        and the transient observations of replicas at the same applied slot
        with different states (kept for the report)."""
        deadline = time.monotonic() + timeout
        transient: list[str] = []
        last: dict = {}
        while time.monotonic() < deadline:
            last = self.digests()
            all_same = True
            for shard in range(self.num_shards):
                ds = {n: last[n] for n in self.replicas(shard)}
                if len(set(ds.values())) != 1:
                    all_same = False
                    by_slot: dict[str, set] = {}
                    for d in ds.values():
                        if d and not d.startswith("error"):
                            slot, _, rest = d.partition(" ")
                            by_slot.setdefault(slot, set()).add(rest)
                    for slot, states in by_slot.items():
                        if len(states) > 1:
                            transient.append(f"{time.monotonic() - T0:.2f}s shard {shard} slot {slot}: {ds}")
            if all_same:
                return last, transient
            time.sleep(0.25)
        raise AssertionError(
            f"replicas did not converge within {timeout}s: digests {last}; "
            f"same-slot-different-state observations: {transient[-5:]}"
        )


# -- nemesis ----------------------------------------------------------------------------------

@dataclass
class NemesisEvent:
    t: float  # seconds since T0
    action: str
    detail: str


class Nemesis(threading.Thread):
    """Cycles through faults until ``duration`` seconds have passed:

    * kill-leader: SIGKILL a shard's leader, let the others elect, restart it;
    * pause-leader: SIGSTOP a leader for ``pause_s`` (well over the 800 ms
      election timeout), then SIGCONT it;
    * failover: ``makoctl cluster failover --shard N``;
    * kill-shard: SIGKILL every replica of one shard at once, restart them all.
    """

    KINDS = ("kill-leader", "pause-leader", "failover", "kill-shard")

    def __init__(self, nodes: Nodes, duration: float, seed: int, pause_s: float = 2.5, gap_s: float = 1.0) -> None:
        super().__init__(daemon=True, name="nemesis")
        self.nodes = nodes
        self.duration = duration
        self.rng = random.Random(seed)
        self.pause_s = pause_s
        self.gap_s = gap_s
        self.events: list[NemesisEvent] = []
        self.done: dict[str, int] = {k: 0 for k in self.KINDS}
        self.errors: list[str] = []
        self.halt = threading.Event()

    def log(self, action: str, detail: str) -> None:
        ev = NemesisEvent(time.monotonic() - T0, action, detail)
        self.events.append(ev)
        print(f"[nemesis {ev.t:8.3f}s] {action}: {detail}", flush=True)

    def run(self) -> None:
        deadline = time.monotonic() + self.duration
        shards = list(range(self.nodes.num_shards))
        plan = [(kind, shard) for shard in shards for kind in self.KINDS]
        # Alternate shards so that each kind hits both; kinds in a fixed cycle
        # so that every kind runs within the first four actions.
        order = []
        for i in range(len(self.KINDS) * len(shards)):
            order.append((self.KINDS[i % len(self.KINDS)], shards[(i + i // len(self.KINDS)) % len(shards)]))
        assert sorted(order) == sorted(plan)
        i = 0
        try:
            while time.monotonic() < deadline and not self.halt.is_set():
                kind, shard = order[i % len(order)]
                i += 1
                try:
                    ok = getattr(self, "_" + kind.replace("-", "_"))(shard)
                except Exception as exc:  # keep going: availability trouble is reported, not fatal here
                    ok = False
                    self.log(kind, f"shard {shard}: raised {type(exc).__name__}: {exc}")
                if ok:
                    self.done[kind] += 1
                else:
                    self.errors.append(f"{kind} shard {shard}")
                self.halt.wait(self.gap_s * (0.5 + self.rng.random()))
        finally:
            self.nodes.cont_all()
            self.log("end", f"done {self.done}")

    def _leader(self, shard: int, kind: str) -> str | None:
        leader = self.nodes.wait_leader(shard, timeout=10)
        if leader is None:
            self.log(kind, f"shard {shard}: no leader found within 10s, skipped")
        return leader

    def _kill_leader(self, shard: int) -> bool:
        leader = self._leader(shard, "kill-leader")
        if leader is None:
            return False
        pid = self.nodes.sigkill(leader)
        self.log("kill-leader", f"shard {shard}: SIGKILL {leader} (pid {pid})")
        self.halt.wait(1.5 + self.rng.random())
        new = self.nodes.find_leader(shard)
        self.log("kill-leader", f"shard {shard}: leader now {new}; restarting {leader}")
        ok, out = self.nodes.restart(leader)
        self.log("kill-leader", f"shard {shard}: restart {leader} -> {'ok' if ok else 'FAILED ' + out}")
        return ok and pid is not None

    def _pause_leader(self, shard: int) -> bool:
        leader = self._leader(shard, "pause-leader")
        if leader is None:
            return False
        pause = self.pause_s * (0.8 + 0.4 * self.rng.random())
        pid = self.nodes.sigstop(leader)
        self.log("pause-leader", f"shard {shard}: SIGSTOP {leader} (pid {pid}) for {pause:.2f}s")
        try:
            time.sleep(pause)
            new = self.nodes.find_leader(shard)
            self.log("pause-leader", f"shard {shard}: leader while {leader} is stopped: {new}")
        finally:
            self.nodes.sigcont(leader)
        self.log("pause-leader", f"shard {shard}: SIGCONT {leader}")
        return pid is not None

    def _failover(self, shard: int) -> bool:
        leader = self._leader(shard, "failover")
        if leader is None:
            return False
        for attempt in (1, 2):
            ok, out = self.nodes.failover(shard)
            last = out.splitlines()[-1] if out else ""
            self.log("failover", f"shard {shard}: from {leader} (attempt {attempt}): {'ok' if ok else 'FAILED'}: {last}")
            if ok or self.halt.is_set():
                return ok
            self.halt.wait(1.0)
            leader = self.nodes.wait_leader(shard, timeout=5) or leader
        return False

    def _kill_shard(self, shard: int) -> bool:
        names = self.nodes.replicas(shard)
        pids = {n: self.nodes.sigkill(n) for n in names}
        self.log("kill-shard", f"shard {shard}: SIGKILL {pids}")
        self.halt.wait(0.5 + self.rng.random())
        ok, out = self.nodes.start_missing()
        self.log("kill-shard", f"shard {shard}: restart all -> {'ok' if ok else 'FAILED ' + out}")
        return ok and all(p is not None for p in pids.values())


# -- list-append history ------------------------------------------------------------------------

@dataclass
class ListOp:
    op_id: int
    client: int
    kind: str  # append | get | txn
    node: str
    mops: list  # [("append", key, mark) | ("read", key, None)]
    invoke_ms: float
    complete_ms: float | None = None
    outcome: str = PENDING
    results: list | None = None  # one per mop when OK
    error: str = ""

    def cross_shard(self) -> bool:
        return len({shard_of_key(k) for _, k, _ in self.mops}) > 1

    def describe(self) -> str:
        return (f"op {self.op_id} c{self.client} {self.kind} via {self.node} [{rel(self.invoke_ms)} .. "
                f"{rel(self.complete_ms)}] {self.outcome} mops={self.mops} results={self.results} {self.error}")


def parse_marks(key: bytes, value: bytes | None) -> list[int]:
    if not value:
        return []
    text = value.decode("ascii", "replace")
    if not text.endswith(","):
        raise AssertionError(f"{key!r} holds {value!r}: not a list of '<mark>,'")
    try:
        return [int(m) for m in text[:-1].split(",")]
    except ValueError:
        raise AssertionError(f"{key!r} holds {value!r}: not a list of '<mark>,'") from None


def mark_bytes(marks: list[int]) -> int:
    return sum(len(b"%d," % m) for m in marks)


def check_lists(history: list[ListOp], final: dict[bytes, list[int]]) -> dict[str, int]:
    """The list-append checks. Raises AssertionError naming the operations involved."""
    by_id = {op.op_id: op for op in history}
    writer: dict[tuple[bytes, int], ListOp] = {}
    for op in history:
        for kind, key, mark in op.mops:
            if kind == "append":
                assert (key, mark) not in writer, f"test bug: mark {mark} used twice"
                writer[(key, mark)] = op
    position: dict[bytes, dict[int, int]] = {}
    for key, marks in final.items():
        pos: dict[int, int] = {}
        for i, m in enumerate(marks):
            assert m not in pos, f"mark {m} appears twice in {key!r}: {writer.get((key, m)) and writer[(key, m)].describe()}"
            assert (key, m) in writer, f"{key!r} holds mark {m} that nobody appended (final {marks})"
            pos[m] = i
        position[key] = pos

    # Acknowledged appends survive; failed ones do not show; MULTIs are all-or-nothing.
    committed: set[int] = set()
    for op in history:
        appends = [(k, m) for kind, k, m in op.mops if kind == "append"]
        if not appends:
            if op.outcome == OK:
                committed.add(op.op_id)
            continue
        visible = [m in position.get(k, {}) for k, m in appends]
        if op.outcome == OK:
            lost = [(k, m) for (k, m), v in zip(appends, visible) if not v]
            assert not lost, f"acknowledged appends lost {lost}: {op.describe()}"
            committed.add(op.op_id)
        elif any(visible):
            assert all(visible), (
                f"partly applied (not atomic): visible {[(k, m) for (k, m), v in zip(appends, visible) if v]}, "
                f"missing {[(k, m) for (k, m), v in zip(appends, visible) if not v]}: {op.describe()}"
            )
            assert op.outcome != FAILED, f"an operation answered as failed took effect: {op.describe()}"
            committed.add(op.op_id)

    # An acknowledged APPEND answers the length of the value it produced.
    for op in history:
        if op.outcome != OK:
            continue
        for (kind, key, mark), res in zip(op.mops, op.results or []):
            if kind == "append":
                expect = mark_bytes(final[key][: position[key][mark] + 1])
                assert res == expect, (
                    f"APPEND of {mark} to {key!r} answered {res}, but its position in the final value "
                    f"implies {expect}: {op.describe()}"
                )

    # Reads: a prefix of the final value (after removing the transaction's own
    # appends), containing every append acknowledged before the read began and
    # none that began after the read completed.
    acked_by_key: dict[bytes, list[tuple[float, int, int]]] = {}  # (complete, position, op)
    for op in history:
        if op.outcome == OK:
            for kind, key, mark in op.mops:
                if kind == "append":
                    acked_by_key.setdefault(key, []).append((op.complete_ms, position[key][mark], op.op_id))
    prefix_max_pos: dict[bytes, tuple[list[float], list[tuple[int, int]]]] = {}
    for key, items in acked_by_key.items():
        items.sort()
        times, best, acc = [], [], (-1, -1)
        for t, p, oid in items:
            if p > acc[0]:
                acc = (p, oid)
            times.append(t)
            best.append(acc)
        prefix_max_pos[key] = (times, best)
    # Latest invoke among the writers of the first n marks of each key.
    invoke_prefix: dict[bytes, list[tuple[float, int]]] = {}
    for key, marks in final.items():
        acc2: tuple[float, int] = (float("-inf"), -1)
        out = []
        for m in marks:
            w = writer[(key, m)]
            if w.invoke_ms > acc2[0]:
                acc2 = (w.invoke_ms, w.op_id)
            out.append(acc2)
        invoke_prefix[key] = out
    reads = 0
    for op in history:
        if op.outcome != OK:
            continue
        own: dict[bytes, list[int]] = {}
        for (kind, key, mark), res in zip(op.mops, op.results):
            if kind == "append":
                own.setdefault(key, []).append(mark)
                continue
            reads += 1
            got = parse_marks(key, res)
            mine = own.get(key, [])
            if mine:
                assert got[-len(mine):] == mine, f"read of {key!r} misses its own appends {mine}: {op.describe()}"
                got = got[: -len(mine)]
            fin = final.get(key, [])
            assert fin[: len(got)] == got, (
                f"read of {key!r} returned {got}, not a prefix of the final {fin}: {op.describe()}"
            )
            times, best = prefix_max_pos.get(key, ([], []))
            i = bisect.bisect_left(times, op.invoke_ms) - 1
            if i >= 0:
                p, oid = best[i]
                assert p < len(got), (
                    f"stale read of {key!r}: {got} misses mark {fin[p]} of an append acknowledged before the "
                    f"read began: read {op.describe()}; append {by_id[oid].describe()}"
                )
            if got:
                t, oid = invoke_prefix[key][len(got) - 1]
                assert t < op.complete_ms, (
                    f"read of {key!r} returned a mark of an append invoked after the read completed: "
                    f"read {op.describe()}; append {by_id[oid].describe()}"
                )

    # Strict serializability across keys: the project's Elle-style checker.
    txns = []
    for op in history:
        mops = []
        for i, (kind, key, mark) in enumerate(op.mops):
            if kind == "append":
                mops.append(("append", key, mark))
            else:
                mops.append(("read", key, parse_marks(key, op.results[i]) if op.outcome == OK else None))
        txns.append(MopTxn(op.op_id, mops, op.invoke_ms, op.complete_ms if op.outcome == OK else None,
                           op.outcome == OK, op.outcome == FAILED))
    try:
        counts = elle.check(0, txns, final, realtime=True)
    except elle.NotSerializable as exc:
        ids = [int(x) for x in re.findall(r"-?\d+", str(exc).split("transactions", 1)[-1])]
        involved = "\n  ".join(by_id[i].describe() for i in ids if i in by_id)
        raise AssertionError(f"Elle: {exc}\n  {involved}") from None
    return {"reads_checked": reads, **counts}


def history_summary(history: list[ListOp]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for op in history:
        out[f"{op.kind}:{op.outcome}"] = out.get(f"{op.kind}:{op.outcome}", 0) + 1
    errs: dict[str, int] = {}
    for op in history:
        if op.error:
            errs[op.error] = errs.get(op.error, 0) + 1
    out["errors"] = errs
    return out


def join_all(threads: list[threading.Thread], timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    return [t.name for t in threads if t.is_alive()]


def run_guarded(fn: Callable[[], None], errors: list[str], name: str) -> Callable[[], None]:
    """A thread body that records unexpected exceptions (a test bug) instead of dying silently."""

    def body() -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001
            import traceback

            errors.append(f"{name}: {type(exc).__name__}: {exc}\n{traceback.format_exc()}")

    return body


__all__ = [
    "FAILED", "OK", "PENDING", "UNKNOWN", "ListOp", "Nemesis", "Nodes", "T0", "check_lists", "classify",
    "error_kind", "history_summary", "join_all", "keys_on_shards", "make_client", "mark_bytes", "now_ms",
    "parse_marks", "rel", "run_guarded", "shard_of_key",
]
