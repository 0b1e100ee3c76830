"""The simulator's stream check (workload.py's ``x...`` keys).

Entries are never deleted or trimmed by the workload, so at the end every
stream holds exactly the entries whose XADD took effect: each acknowledged
XADD's value is there once, in the stream it was added to, under the ID the
XADD answered; nothing was invented; the two XADDs of one MULTI are both
there or both absent; and ``XREADGROUP ... >`` never delivered an entry twice
(each acknowledged delivery names an entry that exists, with its value).
XREADGROUP runs in a MULTI after an XGROUP CREATE (which fails once the
group exists), so the group is there whenever a stream is.
"""

from __future__ import annotations

from typing import Any, Callable

from makod.kv.records import KIND_STREAM
from makod.kv.replies import Map
from makod.sim.workload import Op, queue_value


class StreamCheckFailed(AssertionError):
    pass


def _final_entries(seed: int, final: dict[bytes, tuple]) -> dict[bytes, dict[bytes, bytes]]:
    """stream key -> {entry ID as XADD answers it: value of field t}."""
    out: dict[bytes, dict[bytes, bytes]] = {}
    for key, (kind, value) in final.items():
        if key[:1] != b"x":
            continue
        if kind != KIND_STREAM:
            raise StreamCheckFailed(f"seed {seed}: stream {key!r} holds {value!r} at the end")
        entries = {}
        for ms, seq, fields in value[0]:
            if len(fields) != 2 or fields[0] != b"t":
                raise StreamCheckFailed(f"seed {seed}: stream {key!r} entry {ms}-{seq} holds {fields!r}")
            entries[b"%d-%d" % (ms, seq)] = fields[1]
        out[key] = entries
    return out


def _deliveries(result: Any) -> list[tuple[bytes, bytes, Any]]:
    """(stream, ID, fields) of each entry an XREADGROUP reply delivered."""
    if isinstance(result, Map):
        pairs = result.items
    elif isinstance(result, list):
        pairs = result
    else:
        return []  # a null reply: nothing new
    return [(bytes(key), bytes(entry[0]), entry[1]) for key, entries in pairs for entry in entries]


def check_streams(seed: int, history: list[Op], final: dict[bytes, tuple],
                  definitely_failed: Callable[[Any], bool]) -> int:
    streams = _final_entries(seed, final)
    where: dict[bytes, tuple[bytes, bytes]] = {}  # value -> (stream, ID) at the end
    for key, entries in streams.items():
        for entry_id, value in entries.items():
            if value in where:
                raise StreamCheckFailed(f"seed {seed}: {value!r} is in the streams twice: {where[value]}, {key!r}")
            where[value] = (key, entry_id)
    added: dict[bytes, bytes] = {}  # value -> the stream its XADD named
    delivered: set[tuple[bytes, bytes]] = set()
    for op in history:
        failed = op.ok is False and definitely_failed(op.result)
        if op.kind == "xadd":
            writes = [(op.key, queue_value(op))]
        elif op.kind == "xadd2":
            writes = [(op.mops[0], queue_value(op)), (op.mops[1], queue_value(op) + b"b")]
        elif op.kind == "xread" and op.ok:
            for key, entry_id, fields in _deliveries(op.result[1]):
                if (key, entry_id) in delivered:
                    raise StreamCheckFailed(f"seed {seed}: {key!r} {entry_id!r} delivered twice by XREADGROUP >")
                delivered.add((key, entry_id))
                value = streams.get(key, {}).get(entry_id)
                if value is None or [b"t", value] != list(fields):
                    raise StreamCheckFailed(
                        f"seed {seed}: XREADGROUP delivered {key!r} {entry_id!r} {fields!r}, "
                        f"the stream holds {value!r}")
            continue
        else:
            continue
        if not failed:
            for key, value in writes:
                added[value] = key
        present = [value in where for _, value in writes]
        if len(set(present)) > 1:
            raise StreamCheckFailed(f"seed {seed}: half of a MULTI of two XADDs took effect: {writes!r}")
        if op.ok:
            ids = [op.result] if op.kind == "xadd" else list(op.result)
            for (key, value), entry_id in zip(writes, ids):
                if where.get(value) != (key, bytes(entry_id)):
                    raise StreamCheckFailed(
                        f"seed {seed}: acknowledged XADD {key!r} {entry_id!r} {value!r} is "
                        f"{'at ' + repr(where[value]) if value in where else 'lost'}")
    for value, (key, _) in where.items():
        if added.get(value) != key:
            raise StreamCheckFailed(f"seed {seed}: {key!r} holds {value!r}, never added there")
    return len(where)
