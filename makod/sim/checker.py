"""Checks on a finished run: replicas converge, nothing acknowledged is lost,
nothing happens twice, and the history is strictly serializable.

* Lists (APPEND/GET, MULTI, WATCH, procedures and their range scans) use
  unique marks, so the final value of each key is its version order and the
  dependency graph of committed transactions can be drawn exactly (elle.py):
  no cycle (real-time edges included), no acknowledged append lost, none
  applied twice, every read a prefix of the final list.
* Registers (SET with unique values, TTLs, DEL, FLUSHDB) are checked key by
  key for linearizability (registers.py).
* ``INCR counter`` must count every acknowledged increment exactly once.
* ``check_convergence``: every replica of a shard holds the same state.
"""

from __future__ import annotations

from makod.kv import dbs

from collections import Counter

import msgpack

from makod.kv.records import KIND_LIST, KIND_NATIVE, KIND_SET, KIND_STREAM, KIND_STRING, KIND_ZSET, value_to_wire
from makod.sim import elle, registers
from makod.sim.elle import MopTxn
from makod.kv.errors import error_code
from makod.kv.replies import NULL_ARRAY, ErrorReply
from makod.sim.workload import (
    CONNECTION_REFUSED, POP_KINDS, PUSH_KINDS, QUEUE_KINDS, REGISTER_KINDS, Op, queue_value,
)
from makod.sim.streams_check import StreamCheckFailed, check_streams


class CheckFailed(AssertionError):
    pass


def replica_states(world) -> dict[int, dict[bytes, tuple]]:
    out = {}
    for node_id, node in world.nodes.items():
        if node is None:
            continue
        ks = node.core.ks
        out[node_id] = {k: (r.kind, _freeze(value_to_wire(r.kind, r.value))) for k, r in ks.data.items()}
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
        # Each shard's own bookkeeping (its slot table) is no one's data.
        merged.update((k, v) for k, v in reference.items() if not dbs.is_hidden(k))
    return merged


def check_history(seed: int, history: list[Op], final: dict[bytes, tuple]) -> dict[str, int]:
    """Strict serializability of the lists (elle.py), linearizability of the
    registers (registers.py), exactly-once counters, and that every
    acknowledged APPEND answered the length its position implies."""
    txns: list[MopTxn] = []
    counter_ops = []
    reg_writes: list[registers.Write] = []
    reg_reads: list[registers.Read] = []
    register_keys = sorted({k for op in history if op.kind in REGISTER_KINDS for _, k, _ in op.mops or []})
    counts_queues = _check_tokens(seed, history, final)
    try:
        counts_streams = check_streams(seed, history, final, _definitely_failed)
    except StreamCheckFailed as exc:
        raise CheckFailed(str(exc)) from None
    for op in history:
        failed = op.ok is False and _definitely_failed(op.result)
        if op.kind in QUEUE_KINDS:
            continue
        if op.kind == "incr":
            counter_ops.append(op)
        elif op.kind in REGISTER_KINDS:
            _register_events(seed, op, failed, reg_writes, reg_reads, register_keys)
        elif op.kind == "watch":
            txns.extend(_watch_txns(seed, op, failed))
        else:
            txns.append(_list_txn(seed, op, failed))
    lists: dict[bytes, list[int]] = {}
    reg_final: dict[bytes, bytes | None] = {}
    for key, (kind, value) in final.items():
        if key == b"counter" or key[:1] in TOKEN_PREFIXES:
            continue
        if key.startswith(b"r"):
            if kind != KIND_STRING:
                raise CheckFailed(f"seed {seed}: register {key!r} holds {value!r} at the end")
            reg_final[key] = value
        elif kind == KIND_NATIVE and isinstance(value, tuple):
            lists[key] = list(value)  # a procedure's list
        elif kind == KIND_STRING:
            lists[key] = _marks(value)
        else:
            raise CheckFailed(f"seed {seed}: {key!r} holds {value!r} at the end")
    counts = elle.check(seed, txns, lists, realtime=True)
    counts["queue_values"] = counts_queues
    counts["stream_entries"] = counts_streams
    keys = sorted({w.key for w in reg_writes} | {r.key for r in reg_reads})
    counts["register_reads"] = registers.check(seed, reg_writes, reg_reads, reg_final, keys)
    # An acknowledged single APPEND answers the length of the value it produced.
    for op in history:
        if op.kind == "append" and op.ok:
            marks = lists.get(op.key, [])
            pos = marks.index(op.mark)
            if op.result != sum(len(b"%d," % m) for m in marks[: pos + 1]):
                raise CheckFailed(f"seed {seed}: append {op.op_id} answered length {op.result}, not its position's")
    _check_counter(seed, counter_ops, final.get(b"counter"))
    return {"acked": sum(1 for t in txns if t.acked), **counts}


def _list_txn(seed: int, op: Op, failed: bool) -> MopTxn:
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
        mops = []
        for i, (kind, key, arg) in enumerate(op.mops or []):
            if kind == "scan":
                if results is not None:
                    mops.extend(_scan_reads(key, arg, results[i]))
            elif kind == "read":
                mops.append(("read", key, results[i] if results is not None else None))
            else:
                mops.append((kind, key, arg))
    else:
        results = op.result if op.ok and isinstance(op.result, list) else None
        mops = []
        for i, (kind, key, arg) in enumerate(op.mops or []):
            if kind == "read":
                arg = _marks(results[i]) if results is not None else None
            mops.append((kind, key, arg))
        if op.ok and not isinstance(op.result, list):
            raise CheckFailed(f"seed {seed}: transaction {op.op_id} answered {op.result!r}")
    # Unknown outcome: it may take effect after its error reply (see _register_events).
    end = op.complete_ms if op.ok or failed else None
    return MopTxn(op.op_id, mops, op.invoke_ms, end, bool(op.ok), failed)


def _scan_reads(start: bytes, arg: tuple, rows: list) -> list[tuple]:
    """A range scan read every procedure key in the part of the range it covered:
    the rows it returned, and as empty lists the keys it passed over."""
    end, limit = arg
    found = {bytes(k): list(v) for k, v in rows}
    covered_to = end
    if limit is not None and len(rows) >= limit:
        covered_to = bytes(rows[-1][0]) + b"\x00"  # up to and including the last row
    mops = []
    for i in range(1000):
        key = b"pk%03d" % i
        if key >= covered_to or key >= b"pk~":
            break
        if key >= start:
            mops.append(("read", key, found.get(key, [])))
    return mops


def _watch_txns(seed: int, op: Op, failed: bool) -> list[MopTxn]:
    """WATCH; GET each key; MULTI; APPEND ...; EXEC. If EXEC ran, the GETs are part
    of its transaction (the keys did not change in between); otherwise they
    are plain reads, somewhere in the operation's interval."""
    if op.ok and op.result is not NULL_ARRAY:
        if not isinstance(op.result, list):
            raise CheckFailed(f"seed {seed}: watched transaction {op.op_id} answered {op.result!r}")
        mops = [("read", k, _marks(op.reads[k])) for kind, k, _ in op.mops if kind == "read"]
        mops += [m for m in op.mops if m[0] == "append"]
        return [MopTxn(op.op_id, mops, op.invoke_ms, op.complete_ms, True, False)]
    out = []
    # Separate GETs, each somewhere in the operation's interval (ids that no
    # other transaction uses).
    for i, (k, v) in enumerate(op.reads.items()):
        out.append(MopTxn(-(op.op_id * 100 + i + 1), [("read", k, _marks(v))], op.invoke_ms, op.reads_ms, True, False))
    if not (op.ok and op.result is NULL_ARRAY) and len(op.reads) == len([m for m in op.mops if m[0] == "read"]):
        # EXEC was sent and its outcome is unknown (or it failed): its appends may show.
        appends = [m for m in op.mops if m[0] == "append"]
        # An outcome-unknown EXEC may still take effect after its error reply
        # (a delayed forward reaches a leader that still leads): no end.
        out.append(MopTxn(-(op.op_id * 100), appends, op.invoke_ms, None, False, failed))
    return out


def _register_events(seed, op: Op, failed: bool, writes: list, reads: list, register_keys: list[bytes]) -> None:
    status = registers.ACKED if op.ok else registers.FAILED if failed else registers.UNKNOWN
    # An operation whose outcome is unknown may take effect after its error
    # reply (a delayed forward still reaches a leader of the same ballot), so
    # it is pending forever, as Jepsen treats indeterminate operations.
    complete_ms = None if status == registers.UNKNOWN else op.complete_ms
    if op.kind == "flush":
        # FLUSHDB runs shard by shard inside its interval: a deletion of every
        # key. An error from one shard says nothing of the others.
        status = registers.ACKED if op.ok else registers.UNKNOWN
        for key in register_keys:
            writes.append(registers.Write(op.op_id, key, None, None, op.invoke_ms,
                                          op.complete_ms if op.ok else None, status))
        return
    results = None
    if op.ok:
        results = op.result if op.kind == "rtxn" else [op.result]
        if not isinstance(results, list) or len(results) != len(op.mops):
            raise CheckFailed(f"seed {seed}: register op {op.op_id} answered {op.result!r}")
    for i, (kind, key, arg) in enumerate(op.mops):
        if kind == "get":
            if results is not None:
                value = results[i]
                if isinstance(value, ErrorReply) or (value is not None and not isinstance(value, bytes)):
                    raise CheckFailed(f"seed {seed}: GET {key!r} in op {op.op_id} answered {value!r}")
                reads.append(registers.Read(op.op_id, key, value, op.invoke_ms, op.complete_ms))
        elif kind == "set":
            value, ttl = arg
            writes.append(registers.Write(op.op_id, key, value, ttl, op.invoke_ms, complete_ms, status))
        else:
            writes.append(registers.Write(op.op_id, key, None, None, op.invoke_ms, complete_ms, status))


def _marks(value) -> list[int]:
    if not value:
        return []
    return [int(m) for m in value.split(b",") if m]


def _definitely_failed(result) -> bool:
    """Errors after which the transaction certainly had no effect."""
    text = getattr(result, "text", "")
    return error_code(text) == "TRYAGAIN" or "has no leader" in text or text == CONNECTION_REFUSED


# Key families holding unique tokens, and the kind each must be at the end.
TOKEN_PREFIXES = {b"q": KIND_LIST, b"s": KIND_SET, b"z": KIND_ZSET, b"x": KIND_STREAM}


def _popped_token(op: Op) -> bytes | None:
    """The token an acknowledged pop took (LPOP and SPOP answer it, ZPOPMIN [it, score])."""
    if op.kind == "zpop":
        return op.result[0] if op.result else None
    return op.result


def _check_tokens(seed: int, history: list[Op], final: dict[bytes, tuple]) -> int:
    """Queues and bags: every token in them at the end or taken by an acknowledged
    pop was pushed, and appears once; an acknowledged push is there unless a pop
    whose outcome is unknown may have taken it."""
    pushed: set[bytes] = set()
    acked: set[bytes] = set()
    popped: list[bytes] = []
    unknown_pops = 0
    for op in history:
        failed = op.ok is False and _definitely_failed(op.result)
        if op.kind in PUSH_KINDS:
            if not failed:
                pushed.add(queue_value(op))
            if op.ok:
                acked.add(queue_value(op))
        elif op.kind in POP_KINDS:
            if op.ok:
                token = _popped_token(op)
                if token is not None:
                    popped.append(token)
            elif not failed:
                unknown_pops += 1
    seen = list(popped)
    for key, (kind, value) in final.items():
        want = TOKEN_PREFIXES.get(key[:1])
        if want is None or want == KIND_STREAM:
            continue  # streams: streams_check.py
        if kind != want:
            raise CheckFailed(f"seed {seed}: {key!r} holds {value!r} at the end")
        seen.extend(item[0] if kind == KIND_ZSET else item for item in value)
    twice = sorted(v for v, n in Counter(seen).items() if n > 1)
    if twice:
        raise CheckFailed(
            f"seed {seed}: tokens seen twice (an acknowledged pop lost, or a value duplicated): {twice[:5]}"
        )
    invented = sorted(set(seen) - pushed)
    if invented:
        raise CheckFailed(f"seed {seed}: tokens never pushed: {invented[:5]}")
    lost = sorted(acked - set(seen))
    if len(lost) > unknown_pops:
        raise CheckFailed(
            f"seed {seed}: acknowledged pushes lost: {lost[:5]} ({len(lost)} missing, "
            f"{unknown_pops} pops with unknown outcome)"
        )
    return len(seen)


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
