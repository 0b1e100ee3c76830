"""Serializability of list-append transactions (the approach of Jepsen's Elle).

Each transaction is a list of micro-operations, ``append k mark`` or
``read k -> [marks]``, run atomically (MULTI/EXEC, possibly across shards).
Marks are unique, so the final value of each key (which converged replicas
agree on) is the key's version order, and every read names exactly which
appends it saw. From that we draw the dependency graph of committed
transactions (Adya's):

* ww: the append of mark i precedes the append of mark i+1 in key k;
* wr: T read a list whose last element T' appended;
* rw: T read a list of length n, T' appended element n (T' overwrote what T saw).

A history is serializable iff that graph has no cycle. We also check that a
read returns a prefix of the final list (no phantom or reordered values),
that acknowledged appends survive, and that nothing is appended twice. With
``realtime`` we add edges T -> T' whenever T finished before T' started
(strict serializability).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any


class NotSerializable(AssertionError):
    pass


@dataclass
class MopTxn:
    txn_id: int
    mops: list[tuple[str, bytes, Any]]  # ("append", key, mark) | ("read", key, [marks] or None)
    invoke_ms: float
    complete_ms: float | None
    acked: bool  # True: the client got the EXEC reply; False/None: outcome unknown or failed
    failed_definitely: bool = False  # an error that guarantees nothing happened
    extra: dict = field(default_factory=dict)


def check(seed: int, txns: list[MopTxn], final: dict[bytes, list[int]], realtime: bool = False) -> dict[str, int]:
    writer: dict[tuple[bytes, int], int] = {}  # (key, mark) -> txn id
    by_id = {t.txn_id: t for t in txns}
    for t in txns:
        for kind, key, arg in t.mops:
            if kind == "append":
                writer[(key, arg)] = t.txn_id
    position: dict[bytes, dict[int, int]] = {}
    for key, marks in final.items():
        seen: dict[int, int] = {}
        for i, mark in enumerate(marks):
            if mark in seen:
                raise NotSerializable(f"seed {seed}: mark {mark} appended twice to {key!r}")
            if (key, mark) not in writer:
                raise NotSerializable(f"seed {seed}: {key!r} holds mark {mark} nobody appended")
            seen[mark] = i
        position[key] = seen
    # Which transactions committed: acknowledged ones, and unknown ones whose appends show.
    committed: set[int] = set()
    for t in txns:
        appends = [(k, m) for kind, k, m in t.mops if kind == "append"]
        visible = [m in position.get(k, {}) for k, m in appends]
        if t.acked:
            if not all(visible):
                lost = [(k, m) for (k, m), v in zip(appends, visible) if not v]
                raise NotSerializable(f"seed {seed}: acknowledged transaction {t.txn_id} lost appends {lost[:3]}")
            committed.add(t.txn_id)
        elif any(visible):
            if not all(visible):
                raise NotSerializable(
                    f"seed {seed}: transaction {t.txn_id} applied only part of its appends (not atomic)"
                )
            if t.failed_definitely:
                raise NotSerializable(f"seed {seed}: transaction {t.txn_id} failed yet its appends show")
            committed.add(t.txn_id)
    edges: dict[int, set[int]] = {t: set() for t in committed}

    def edge(a: int, b: int) -> None:
        if a != b and a in edges and b in edges:
            edges[a].add(b)

    for key, marks in final.items():
        for a, b in zip(marks, marks[1:]):
            edge(writer[(key, a)], writer[(key, b)])
    reads = 0
    for tid in committed:
        t = by_id[tid]
        own: dict[bytes, list[int]] = {}
        for kind, key, arg in t.mops:
            if kind == "append":
                own.setdefault(key, []).append(arg)
                continue
            if arg is None or not t.acked:
                continue
            reads += 1
            got = list(arg)
            # Our own earlier appends in this transaction come last in what we read.
            mine = own.get(key, [])
            if mine:
                if got[-len(mine):] != mine:
                    raise NotSerializable(f"seed {seed}: transaction {tid} did not read its own appends to {key!r}")
                got = got[: -len(mine)]
            fin = final.get(key, [])
            if fin[: len(got)] != got:
                raise NotSerializable(
                    f"seed {seed}: transaction {tid} read {got} of {key!r}, not a prefix of the final {fin}"
                )
            if got:
                edge(writer[(key, got[-1])], tid)
            # Whoever appended right after what we saw overwrote our view.
            nxt = len(got)
            if nxt < len(fin):
                follower = writer[(key, fin[nxt])]
                if follower != tid:
                    edge(tid, follower)
    if realtime:
        _realtime_edges(edges, [by_id[t] for t in committed])
    cycle = _find_cycle(edges)
    if cycle:
        cycle = [t for t in cycle if type(t) is int]
    if cycle:
        raise NotSerializable(f"seed {seed}: dependency cycle among transactions {cycle}")
    return {"committed": len(committed), "reads": reads}


def _realtime_edges(edges: dict, txns: list[MopTxn]) -> None:
    """T -> T' whenever T finished before T' started, in O(n log n) edges: T points
    to the moment it finished, moments point to the next, and each moment to
    every transaction that started after it (and before the next moment)."""
    done = sorted((t for t in txns if t.acked and t.complete_ms is not None), key=lambda t: t.complete_ms)
    if not done:
        return
    times = [t.complete_ms for t in done]
    moments = [("t", i) for i in range(len(times))]
    for i, moment in enumerate(moments):
        edges[moment] = {moments[i + 1]} if i + 1 < len(moments) else set()
    for i, t in enumerate(done):
        edges[t.txn_id].add(moments[i])
    for t in txns:
        # The last moment strictly before t started.
        i = bisect.bisect_left(times, t.invoke_ms) - 1
        if i >= 0:
            edges[moments[i]].add(t.txn_id)


def _find_cycle(edges: dict) -> list | None:
    WHITE, GREY, BLACK = 0, 1, 2
    color = {v: WHITE for v in edges}
    parent: dict[int, int] = {}
    for root in sorted(edges, key=_order):
        if color[root] != WHITE:
            continue
        stack = [(root, iter(sorted(edges[root], key=_order)))]
        color[root] = GREY
        while stack:
            v, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                color[v] = BLACK
                stack.pop()
                continue
            if color.get(nxt, BLACK) == GREY:
                cycle = [nxt, v]
                u = v
                while u != nxt and u in parent:
                    u = parent[u]
                    cycle.append(u)
                return cycle[::-1]
            if color.get(nxt) == WHITE:
                color[nxt] = GREY
                parent[nxt] = v
                stack.append((nxt, iter(sorted(edges[nxt], key=_order))))
    return None


def _order(v) -> tuple:
    """Transactions (ints) and moments (tuples) in one deterministic order."""
    return (0, v, 0) if type(v) is int else (1, v[1], 0)
