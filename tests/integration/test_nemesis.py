"""Safety under faults, on real processes: 2 shards x 3 replicas of makod.

Two workloads run concurrently with a nemesis (SIGKILL and restart a shard
leader, SIGSTOP a leader past its lease then SIGCONT it, SIGKILL every
replica of a shard at once, graceful failover), then, after every node is
back and the cluster is quiet, the history is checked:

* bank: cross-shard transfers (WATCH a b / GET a / GET b / MULTI / SET a /
  SET b / EXEC) keep the total; every acknowledged all-accounts snapshot
  (one MULTI/EXEC) during the run sums to the total; no balance is negative;
* list-append: unique marks appended with APPEND and with MULTI/EXEC (often
  across shards), read with GET and MULTI/EXEC: acknowledged appends
  survive, none appears twice or out of nowhere, MULTIs are all-or-nothing,
  an APPEND answers the length its final position implies, reads are
  prefixes of the final value and respect real time, and the whole history
  is strictly serializable (the project's Elle-style checker,
  makod/sim/elle.py, with real-time edges);
* every shard's replicas converge to the same state (MAKO DIGEST).

Every client is built with no retries (redis-py 8 would re-send a MULTI/EXEC
whose connection dropped, faking duplicates). An operation whose outcome is
not known (timeout, dropped connection, CLUSTERDOWN, ...) is "unknown"; it is
"failed" only when the reply guarantees it had no effect (TRYAGAIN,
EXECABORT, a null EXEC after WATCH).
"""

from __future__ import annotations

import itertools
import os
import random
import threading
import time

import pytest
import redis

from tests.integration.nemesis_util import (
    OK,
    T0,
    ListOp,
    Nemesis,
    Nodes,
    check_lists,
    classify,
    error_kind,
    history_summary,
    join_all,
    keys_on_shards,
    make_client,
    now_ms,
    parse_marks,
    run_guarded,
    shard_of_key,
)

# Knobs for longer or harsher hunts; the defaults are the acceptance run.
NEMESIS_SECONDS = float(os.environ.get("MAKO_NEMESIS_SECONDS", "24"))
PAUSE_SECONDS = float(os.environ.get("MAKO_NEMESIS_PAUSE", "2.5"))  # SIGSTOP length (x0.8-1.2)
GAP_SECONDS = float(os.environ.get("MAKO_NEMESIS_GAP", "1.0"))  # between actions (x0.5-1.5)
WARMUP_SECONDS = 2.0
HEALED_SECONDS = 3.0  # the workloads keep running this long after the nemesis, on a healed cluster
CLIENT_TIMEOUT = 5.0
BANK_CLIENTS = 3
LIST_CLIENTS = 4
ACCOUNTS = keys_on_shards("acct", 4)  # 8 accounts, 4 on each shard
LIST_KEYS = keys_on_shards("list", 3)  # 6 keys, 3 on each shard
INITIAL = 1000
TOTAL = INITIAL * len(ACCOUNTS)


class Workloads:
    def __init__(self, nodes: Nodes, seed: int) -> None:
        self.nodes = nodes
        self.seed = seed
        self.stop = threading.Event()
        self.ids = itertools.count(1)
        self.history: list[ListOp] = []
        self.bank: dict[str, int] = {}
        self.bank_errors: dict[str, int] = {}
        self.snapshots_ok = 0
        self.bad_snapshots: list[str] = []
        self.thread_errors: list[str] = []
        self.lock = threading.Lock()

    # -- plumbing --------------------------------------------------------------------------
    def _client(self, rng: random.Random) -> tuple[str, redis.Redis]:
        name = rng.choice(self.nodes.names)
        return name, make_client(self.nodes.port[name], CLIENT_TIMEOUT)

    def _count(self, what: str, exc: BaseException | None = None) -> None:
        with self.lock:
            self.bank[what] = self.bank.get(what, 0) + 1
            if exc is not None:
                k = error_kind(exc)
                self.bank_errors[k] = self.bank_errors.get(k, 0) + 1

    def threads(self) -> list[threading.Thread]:
        out = []
        for i in range(BANK_CLIENTS):
            out.append(threading.Thread(target=run_guarded(lambda i=i: self._bank_client(i), self.thread_errors,
                                                           f"bank{i}"), name=f"bank{i}", daemon=True))
        for i in range(LIST_CLIENTS):
            out.append(threading.Thread(target=run_guarded(lambda i=i: self._list_client(i), self.thread_errors,
                                                           f"list{i}"), name=f"list{i}", daemon=True))
        return out

    # -- bank --------------------------------------------------------------------------------
    def _bank_client(self, idx: int) -> None:
        rng = random.Random(self.seed * 1000 + idx)
        name, client = self._client(rng)
        while not self.stop.is_set():
            if rng.random() < 0.05:
                client.close()
                name, client = self._client(rng)
            try:
                if rng.random() < 0.15:
                    self._audit(client)
                else:
                    self._transfer(client, rng)
                continue
            except AssertionError:
                raise
            except Exception:  # noqa: BLE001 - counted in _transfer/_audit
                pass
            client.close()
            time.sleep(0.02 + 0.05 * rng.random())
            name, client = self._client(rng)
        client.close()

    def _transfer(self, client: redis.Redis, rng: random.Random) -> None:
        a, b = rng.sample(ACCOUNTS, 2)
        amount = rng.randint(1, 30)
        pipe = client.pipeline()
        sent_exec = False
        try:
            pipe.watch(a, b)
            va, vb = pipe.get(a), pipe.get(b)
            if va is None or vb is None:
                raise AssertionError(f"account {a!r} or {b!r} missing: {va!r} {vb!r}")
            va, vb = int(va), int(vb)
            if va < amount:
                pipe.unwatch()
                self._count("skipped")
                return
            pipe.multi()
            pipe.set(a, va - amount)
            pipe.set(b, vb + amount)
            sent_exec = True
            res = pipe.execute(raise_on_error=False)
            if any(isinstance(r, Exception) for r in res):
                self._count("exec-partial-error(unknown)")
                raise redis.ResponseError(f"EXEC answered {res!r}")
            self._count("acked")
        except AssertionError:
            raise
        except Exception as exc:
            if not sent_exec:
                self._count("aborted-before-exec", exc)
            else:
                self._count(f"exec-{classify(exc)}", exc)
            raise
        finally:
            try:
                pipe.reset()
            except Exception:  # noqa: BLE001 - the connection may be dead
                pass

    def _audit(self, client: redis.Redis) -> None:
        pipe = client.pipeline(transaction=True)
        for a in ACCOUNTS:
            pipe.get(a)
        try:
            values = pipe.execute(raise_on_error=False)
        except Exception as exc:
            self._count("audit-" + classify(exc), exc)
            raise
        finally:
            try:
                pipe.reset()
            except Exception:  # noqa: BLE001
                pass
        if any(isinstance(v, Exception) for v in values):
            self._count("audit-partial-error")
            return
        total = sum(int(v) if v is not None else 0 for v in values)
        with self.lock:
            self.snapshots_ok += 1
            if total != TOTAL or any(v is None for v in values):
                self.bad_snapshots.append(f"{time.monotonic() - T0:.3f}s sum {total}: {values}")

    # -- list-append -------------------------------------------------------------------------
    def _list_client(self, idx: int) -> None:
        rng = random.Random(self.seed * 1000 + 100 + idx)
        name, client = self._client(rng)
        while not self.stop.is_set():
            if rng.random() < 0.05:
                client.close()
                name, client = self._client(rng)
            op = self._new_op(idx, name, rng)
            self.history.append(op)  # before sending: an op still running at the end stays "pending"
            try:
                op.invoke_ms = now_ms()
                op.results = self._run(client, op)
                op.complete_ms = now_ms()
                op.outcome = OK
                continue
            except AssertionError:
                raise
            except Exception as exc:  # noqa: BLE001
                op.complete_ms = now_ms()
                op.outcome = classify(exc)
                op.error = error_kind(exc)
            client.close()
            time.sleep(0.02 + 0.05 * rng.random())
            name, client = self._client(rng)
        client.close()

    def _new_op(self, idx: int, node: str, rng: random.Random) -> ListOp:
        op_id = next(self.ids)
        roll = rng.random()
        if roll < 0.3:
            return ListOp(op_id, idx, "append", node, [("append", rng.choice(LIST_KEYS), op_id * 10)], 0.0)
        if roll < 0.5:
            return ListOp(op_id, idx, "get", node, [("read", rng.choice(LIST_KEYS), None)], 0.0)
        mops = []
        n = rng.randint(2, 4)
        keys = [rng.choice(LIST_KEYS) for _ in range(n)]
        if len({shard_of_key(k) for k in keys}) == 1 and rng.random() < 0.7:
            # Mostly cross-shard: swap one key for a key of the other shard.
            other = [k for k in LIST_KEYS if shard_of_key(k) != shard_of_key(keys[0])]
            keys[-1] = rng.choice(other)
        for i, k in enumerate(keys):
            if rng.random() < 0.6:
                mops.append(("append", k, op_id * 10 + i))
            else:
                mops.append(("read", k, None))
        return ListOp(op_id, idx, "txn", node, mops, 0.0)

    @staticmethod
    def _run(client: redis.Redis, op: ListOp) -> list:
        if op.kind == "append":
            _, key, mark = op.mops[0]
            res = client.append(key, b"%d," % mark)
            if not isinstance(res, int):
                raise AssertionError(f"APPEND answered {res!r}")
            return [res]
        if op.kind == "get":
            res = client.get(op.mops[0][1])
            if res is not None and not isinstance(res, bytes):
                raise AssertionError(f"GET answered {res!r}")
            return [res]
        pipe = client.pipeline(transaction=True)
        try:
            for kind, key, mark in op.mops:
                if kind == "append":
                    pipe.append(key, b"%d," % mark)
                else:
                    pipe.get(key)
            res = pipe.execute(raise_on_error=False)
        finally:
            try:
                pipe.reset()
            except Exception:  # noqa: BLE001
                pass
        if any(isinstance(r, Exception) for r in res):
            # Some commands of the EXEC failed: nothing can be said for sure.
            raise redis.ResponseError(f"EXEC answered errors: {res!r}")
        if len(res) != len(op.mops):
            raise AssertionError(f"EXEC answered {len(res)} replies for {len(op.mops)} commands: {res!r}")
        for (kind, _, _), r in zip(op.mops, res):
            if kind == "append" and not isinstance(r, int) or kind == "read" and r is not None and not isinstance(r, bytes):
                raise AssertionError(f"EXEC answered {res!r} for {op.mops}")
        return res


def _final_read(nodes: Nodes, keys: list[bytes], timeout: float = 30.0) -> list:
    """All keys in one MULTI/EXEC (atomic across shards), retried until it answers."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    rng = random.Random()
    while time.monotonic() < deadline:
        name = rng.choice(nodes.names)
        try:
            with make_client(nodes.port[name], 10.0) as c:
                pipe = c.pipeline(transaction=True)
                for k in keys:
                    pipe.get(k)
                return pipe.execute()
        except redis.RedisError as exc:
            last = exc
            time.sleep(0.2)
    raise AssertionError(f"final read did not succeed within {timeout}s: {last}")


def _mget_via(nodes: Nodes, name: str, keys: list[bytes], timeout: float = 20.0) -> list:
    """MGET through one given node, retried on errors (a leader may still move back
    to its preferred replica after the nemesis)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with make_client(nodes.port[name], 10.0) as c:
                return c.mget(keys)
        except redis.RedisError as exc:
            last = exc
            time.sleep(0.2)
    raise AssertionError(f"MGET through {name} did not succeed within {timeout}s: {last}")


@pytest.mark.timeout(240)
def test_safety_under_nemesis(make_cluster):
    seed = int(os.environ.get("MAKO_NEMESIS_SEED", random.randrange(1 << 30)))
    print(f"\nnemesis test seed {seed} (MAKO_NEMESIS_SEED={seed} replays the same choices, not the same timing)")
    assert {shard_of_key(k) for k in ACCOUNTS} == {0, 1}
    assert {shard_of_key(k) for k in LIST_KEYS} == {0, 1}
    t_start = time.monotonic()
    cluster = make_cluster(shards=2, replicas=3)
    nodes = Nodes(cluster)
    assert nodes.num_shards == 2 and len(nodes.names) == 6
    print(f"cluster up in {time.monotonic() - t_start:.1f}s: {nodes.port}")

    setup = make_client(nodes.port[nodes.names[0]], 15.0)
    assert setup.mset({a: INITIAL for a in ACCOUNTS})
    setup.close()

    work = Workloads(nodes, seed)
    threads = work.threads()
    nemesis = Nemesis(nodes, NEMESIS_SECONDS, seed, pause_s=PAUSE_SECONDS, gap_s=GAP_SECONDS)
    stuck: list[str] = []
    try:
        for t in threads:
            t.start()
        time.sleep(WARMUP_SECONDS)
        nemesis.start()
        nemesis.join(NEMESIS_SECONDS + 90)
        assert not nemesis.is_alive(), "the nemesis did not finish in time"
        nodes.cont_all()
        ok, out = nodes.start_missing()  # any node left down by a failed restart
        print(f"[{time.monotonic() - T0:8.3f}s] nemesis over; all nodes started: {ok} {out if not ok else ''}")
        time.sleep(HEALED_SECONDS)
    finally:
        nemesis.halt.set()
        work.stop.set()
        nemesis.join(60)
        nodes.cont_all()
        stuck = join_all(threads, 4 * CLIENT_TIMEOUT + 10)
    print(f"[{time.monotonic() - T0:8.3f}s] workloads stopped")
    # -- report -------------------------------------------------------------------------------
    summary = history_summary(work.history)
    acked_list = sum(1 for op in work.history if op.outcome == OK)
    acked_cross = sum(
        1 for op in work.history
        if op.outcome == OK and op.kind == "txn" and op.cross_shard() and any(m[0] == "append" for m in op.mops)
    )
    acked_appends_after = sum(
        1 for op in work.history
        if op.outcome == OK and any(m[0] == "append" for m in op.mops) and op.invoke_ms / 1000 - T0 > (nemesis.events[-1].t if nemesis.events else 0)
    )
    print(f"nemesis: done {nemesis.done}, failed actions {nemesis.errors}")
    for ev in nemesis.events:
        print(f"  {ev.t:8.3f}s {ev.action}: {ev.detail}")
    print(f"bank: {work.bank}; errors {work.bank_errors}; snapshots ok {work.snapshots_ok}")
    print(f"lists: {summary}; acked {acked_list}, cross-shard MULTIs with appends acked {acked_cross}, "
          f"appends acked after the nemesis {acked_appends_after}")
    path = os.path.join(os.path.dirname(cluster.data_dir.rstrip("/")), "nemesis-history.txt")
    with open(path, "w") as f:
        f.write("\n".join(f"{ev.t:.3f}s nemesis {ev.action}: {ev.detail}" for ev in nemesis.events) + "\n")
        f.write("\n".join(op.describe() for op in work.history) + "\n")
    print(f"history written to {path}")

    assert not work.thread_errors, "client threads raised:\n" + "\n".join(work.thread_errors)
    assert not stuck, f"client threads still running after their socket timeouts: {stuck}"

    # -- quiescence: every node up, one leader per shard, replicas converged --------------
    t_heal = time.monotonic()
    try:
        health = nodes.wait_healthy(timeout=45)
        digests, transient = nodes.wait_converged(timeout=45)
    except AssertionError as exc:
        tails = "\n".join(f"--- {n} ---\n{nodes.log_tail(n, 15)}" for n in nodes.names)
        raise AssertionError(f"{exc}\nlog tails:\n{tails}") from None
    print(f"[{time.monotonic() - T0:8.3f}s] healthy and converged in {time.monotonic() - t_heal:.1f}s: {health}")
    print(f"digests: {digests}")
    if transient:
        print(f"transient same-slot/different-state observations: {transient[:5]}")
    for shard in range(nodes.num_shards):
        ds = {digests[n] for n in nodes.replicas(shard)}
        assert len(ds) == 1, f"shard {shard} replicas differ: {digests}"

    # -- final state, read atomically across shards, and the same through every node --------
    values = _final_read(nodes, ACCOUNTS + LIST_KEYS)
    for name in nodes.names:
        via = _mget_via(nodes, name, ACCOUNTS + LIST_KEYS)
        assert via == values, f"{name} answers {via} but a MULTI read answered {values}"
    balances = dict(zip(ACCOUNTS, values[: len(ACCOUNTS)]))
    final = {k: parse_marks(k, v) for k, v in zip(LIST_KEYS, values[len(ACCOUNTS):])}
    print(f"final balances {balances}; list lengths { {k.decode(): len(v) for k, v in final.items()} }")
    print(f"test body took {time.monotonic() - t_start:.1f}s")

    # -- safety ---------------------------------------------------------------------------------
    assert not work.bad_snapshots, (
        f"{len(work.bad_snapshots)} acknowledged snapshots did not sum to {TOTAL}: {work.bad_snapshots[:3]}"
    )
    assert all(v is not None for v in balances.values()), f"accounts missing: {balances}"
    ints = {k: int(v) for k, v in balances.items()}
    assert sum(ints.values()) == TOTAL, f"total {sum(ints.values())} != {TOTAL}: {ints}"
    assert all(v >= 0 for v in ints.values()), f"a negative balance: {ints}"
    counts = check_lists(work.history, final)
    print(f"list checks passed: {counts}")

    # -- the run really exercised something -----------------------------------------------
    assert all(n >= 1 for n in nemesis.done.values()), f"some nemesis action never succeeded: {nemesis.done}"
    assert work.bank.get("acked", 0) >= 20, f"too few transfers acknowledged: {work.bank}"
    assert work.snapshots_ok >= 5, f"too few bank snapshots: {work.snapshots_ok}"
    assert acked_list + work.bank.get("acked", 0) >= 100, f"too few acknowledged operations: {summary} {work.bank}"
    assert acked_cross >= 10, f"too few cross-shard MULTIs acknowledged: {acked_cross}"
    assert acked_appends_after >= 1, "no append was acknowledged once the cluster had healed"
    assert counts["reads"] >= 20, f"too few acknowledged reads checked: {counts}"


def test_checker_catches_anomalies():
    """The list checks can fail: each planted anomaly is caught (no cluster needed)."""
    k0, k1 = LIST_KEYS[0], LIST_KEYS[1]

    def op(op_id, kind, mops, t0, t1, outcome=OK, results=None):
        return ListOp(op_id, 0, kind, "n", mops, t0 * 1000.0, None if t1 is None else t1 * 1000.0, outcome, results)

    def base():
        return [
            op(1, "append", [("append", k0, 10)], 0, 1, results=[3]),
            op(2, "append", [("append", k0, 20)], 2, 3, results=[6]),
            op(3, "get", [("read", k0, None)], 4, 5, results=[b"10,20,"]),
        ]

    check_lists(base(), {k0: [10, 20], k1: []})  # a correct history passes

    def bad(history, final, what):
        with pytest.raises(AssertionError) as info:
            check_lists(history, final)
        print(f"caught {what}: {str(info.value).splitlines()[0][:160]}")

    bad(base(), {k0: [10], k1: []}, "lost acknowledged append")
    bad(base(), {k0: [10, 20, 10], k1: []}, "duplicate")
    bad(base(), {k0: [10, 20, 99], k1: []}, "phantom mark")
    h = base()
    h[1].results = [5]
    bad(h, {k0: [10, 20], k1: []}, "wrong APPEND length")
    h = base() + [op(4, "txn", [("append", k0, 40), ("append", k1, 41)], 6, None, outcome="unknown")]
    bad(h, {k0: [10, 20, 40], k1: []}, "partial MULTI")
    h = base() + [op(4, "append", [("append", k1, 40)], 6, 7, outcome="failed")]
    bad(h, {k0: [10, 20], k1: [40]}, "failed write visible")
    h = base()
    h[2].results = [b"10,"]
    bad(h, {k0: [10, 20], k1: []}, "stale read")
    h = base() + [op(4, "get", [("read", k0, None)], 1.5, 1.8, results=[b"10,20,"])]
    bad(h, {k0: [10, 20], k1: []}, "read from the future")
    h = base() + [op(4, "get", [("read", k0, None)], 4, 5, results=[b"20,"])]
    bad(h, {k0: [10, 20], k1: []}, "read not a prefix")
    write_skew = [
        op(5, "txn", [("read", k0, None), ("append", k1, 50)], 10, 12, results=[b"", 3]),
        op(6, "txn", [("read", k1, None), ("append", k0, 60)], 10, 12, results=[b"", 3]),
    ]
    bad(write_skew, {k0: [60], k1: [50]}, "dependency cycle (write skew)")
