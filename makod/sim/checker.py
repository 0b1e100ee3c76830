"""Checks on a finished run: replicas converge, nothing acknowledged is lost,
nothing happens twice, and the history is linearizable.

The history uses append-only values with unique marks, so linearizability of
each key reduces to checks on one list (the key's final value, which the
converged replicas agree on):

* every mark appears at most once (no write applied twice);
* every acknowledged append appears (no acknowledged write lost);
* appends keep real-time order: if A finished before B started, A comes first;
* every read returns a prefix of the final list;
* a read contains every append that finished before the read started, and
  no append that started after the read finished;
* reads keep real-time order: a read that finished before another started
  returned a list no longer than the later one's.

Together these give a total order that respects real time in which every
read returns exactly the appends before it: a linearization.
"""

from __future__ import annotations

import msgpack

from makod.core.records import KIND_NATIVE, KIND_STRING
from makod.sim import elle
from makod.sim.elle import MopTxn
from makod.sim.workload import Op


class CheckFailed(AssertionError):
    pass


def replica_states(world) -> dict[int, dict[bytes, tuple]]:
    out = {}
    for node_id, node in world.nodes.items():
        if node is None:
            continue
        ks = node.core.ks
        out[node_id] = {k: (r.kind, _freeze(r.value)) for k, r in ks.data.items()}
    return out


def _freeze(value):
    if isinstance(value, dict):
        return tuple(sorted(value.items()))
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def check_convergence(world) -> dict[bytes, tuple]:
    """Every shard's replicas hold the same state; returns the union over shards."""
    states = replica_states(world)
    merged: dict[bytes, tuple] = {}
    for shard in range(world.num_shards):
        members = [i for i in states if world.shard_of_node[i] == shard]
        applied = {i: world.nodes[i].core.applied_slot for i in members}
        if len(set(applied.values())) != 1:
            raise CheckFailed(f"seed {world.seed}: shard {shard} replicas applied different prefixes: {applied}")
        reference_id = min(members)
        reference = states[reference_id]
        for node_id in members:
            if states[node_id] != reference:
                diff = sorted(set(states[node_id].items()) ^ set(reference.items()))[:5]
                raise CheckFailed(
                    f"seed {world.seed}: replica n{node_id} differs from n{reference_id}: {diff}"
                )
        merged.update(reference)
    return merged


def check_history(seed: int, history: list[Op], final: dict[bytes, tuple]) -> dict[str, int]:
    """Strict serializability of the whole history (elle.py), plus exactly-once counters
    and that every acknowledged APPEND answered the length its position implies."""
    txns: list[MopTxn] = []
    counter_ops = []
    for op in history:
        if op.kind == "incr":
            counter_ops.append(op)
            continue
        failed = op.ok is False and _definitely_failed(op.result)
        if op.kind == "append":
            mops = [("append", op.key, op.mark)]
        elif op.kind == "get":
            mops = [("read", op.key, _marks(op.result) if op.ok else None)]
        elif op.kind == "proc":
            results = None
            if op.ok is False and "procedure" in getattr(op.result, "text", ""):
                raise CheckFailed(f"seed {seed}: procedure {op.op_id} failed: {op.result.text}")
            if op.ok:
                if not isinstance(op.result, bytes):
                    raise CheckFailed(f"seed {seed}: procedure {op.op_id} answered {op.result!r}")
                results = msgpack.unpackb(op.result, raw=False)
            mops = [
                (kind, key, results[i] if kind == "read" and results is not None else arg)
                for i, (kind, key, arg) in enumerate(op.mops or [])
            ]
        else:
            results = op.result if op.ok and isinstance(op.result, list) else None
            mops = []
            for i, (kind, key, arg) in enumerate(op.mops or []):
                if kind == "read":
                    arg = _marks(results[i]) if results is not None else None
                mops.append((kind, key, arg))
            if op.ok and not isinstance(op.result, list):
                raise CheckFailed(f"seed {seed}: transaction {op.op_id} answered {op.result!r}")
        txns.append(MopTxn(op.op_id, mops, op.invoke_ms, op.complete_ms, bool(op.ok), failed))
    lists: dict[bytes, list[int]] = {}
    for key, (kind, value) in final.items():
        if key == b"counter":
            continue
        if kind == KIND_NATIVE and isinstance(value, tuple):
            lists[key] = list(value)  # a procedure's list
        elif kind == KIND_STRING:
            lists[key] = _marks(value)
        else:
            raise CheckFailed(f"seed {seed}: {key!r} holds {value!r} at the end")
    counts = elle.check(seed, txns, lists, realtime=True)
    # An acknowledged single APPEND answers the length of the value it produced.
    for op in history:
        if op.kind == "append" and op.ok:
            marks = lists.get(op.key, [])
            pos = marks.index(op.mark)
            if op.result != sum(len(b"%d," % m) for m in marks[: pos + 1]):
                raise CheckFailed(f"seed {seed}: append {op.op_id} answered length {op.result}, not its position's")
    _check_counter(seed, counter_ops, final.get(b"counter"))
    return {"acked": sum(1 for t in txns if t.acked), **counts}


def _marks(value) -> list[int]:
    if not value:
        return []
    return [int(m) for m in value.split(b",") if m]


def _definitely_failed(result) -> bool:
    """Errors after which the transaction certainly had no effect."""
    text = getattr(result, "text", "")
    return text.startswith("TRYAGAIN") or "has no leader" in text


def _check_counter(seed: int, ops: list[Op], final: tuple | None) -> None:
    incrs = [op for op in ops if op.kind == "incr"]
    acked = [op for op in incrs if op.ok]
    maybe = [op for op in incrs if not op.ok]
    value = int(final[1]) if final is not None else 0
    if not len(acked) <= value <= len(acked) + len(maybe):
        raise CheckFailed(
            f"seed {seed}: counter is {value} after {len(acked)} acknowledged and {len(maybe)} "
            f"unknown increments"
        )
    results = sorted(op.result for op in acked)
    if len(set(results)) != len(results):
        raise CheckFailed(f"seed {seed}: two INCRs returned the same value")
