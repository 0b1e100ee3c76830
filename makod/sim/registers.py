"""Linearizability checks for registers with deletes, expiry and FLUSHDB.

Every SET writes a value no other SET writes, so a read of a value names its
writer. A read of nothing (nil) is ambiguous: the key may never have been
written, or a DEL, a FLUSHDB or an expiring TTL took it away. These are
necessary conditions for linearizability, checked key by key (a transaction
contributes one event per key it touched, over its whole interval):

* a read returns a value some SET wrote, a SET that did not certainly fail
  and had started before the read finished;
* no stale read: no acknowledged write of the key began after the read
  value's SET finished and finished before the read began;
* a nil read has a cause: for every acknowledged SET (without a TTL) that
  finished before the read began, some deletion that did not certainly fail
  did not finish before that SET began;
* the final value (what the converged replicas hold) is read the same way,
  at the end of time: no acknowledged write is lost.

An event is (invoke_ms, complete_ms or None, status): acknowledged, failed
for certain (nothing happened), or unknown (it may or may not have).
"""

from __future__ import annotations

from dataclasses import dataclass

INF = float("inf")

ACKED = "acked"
FAILED = "failed"
UNKNOWN = "unknown"


class NotLinearizable(AssertionError):
    pass


@dataclass
class Write:
    op_id: int
    key: bytes
    value: bytes | None  # None: a deletion (DEL or FLUSHDB)
    ttl_ms: int | None
    invoke_ms: float
    complete_ms: float | None
    status: str

    @property
    def end(self) -> float:
        return INF if self.complete_ms is None else self.complete_ms


@dataclass
class Read:
    op_id: int
    key: bytes
    value: bytes | None
    invoke_ms: float
    complete_ms: float


def check(seed: int, writes: list[Write], reads: list[Read], final: dict[bytes, bytes | None], keys: list[bytes]) -> int:
    """Raises NotLinearizable; returns how many reads were checked."""
    by_key_writes: dict[bytes, list[Write]] = {k: [] for k in keys}
    by_key_reads: dict[bytes, list[Read]] = {k: [] for k in keys}
    for w in writes:
        by_key_writes.setdefault(w.key, []).append(w)
    for r in reads:
        by_key_reads.setdefault(r.key, []).append(r)
    checked = 0
    for key, ws in by_key_writes.items():
        writer = {}
        for w in ws:
            if w.value is not None:
                assert w.value not in writer, f"seed {seed}: value {w.value!r} written twice by the workload"
                writer[w.value] = w
        acked = [w for w in ws if w.status == ACKED]
        for r in by_key_reads.get(key, []):
            _check_read(seed, key, r.value, r.invoke_ms, r.complete_ms, f"read {r.op_id}", writer, ws, acked)
            checked += 1
        _check_read(seed, key, final.get(key), INF, INF, "the final state", writer, ws, acked)
    return checked


def _check_read(seed: int, key: bytes, value: bytes | None, start: float, end: float, who: str,
                writer: dict, ws: list[Write], acked: list[Write]) -> None:
    if value is not None:
        w = writer.get(value)
        if w is None:
            raise NotLinearizable(f"seed {seed}: {who} of {key!r} returned {value!r}, which nobody wrote")
        if w.status == FAILED:
            raise NotLinearizable(
                f"seed {seed}: {who} of {key!r} returned {value!r}, written by op {w.op_id}, which failed"
            )
        if w.invoke_ms > end:
            raise NotLinearizable(f"seed {seed}: {who} of {key!r} returned {value!r} before op {w.op_id} wrote it")
        for w2 in acked:
            if w2 is not w and w2.invoke_ms > w.end and w2.end < start:
                raise NotLinearizable(
                    f"seed {seed}: {who} of {key!r} returned {value!r} (op {w.op_id}), but op {w2.op_id} "
                    f"overwrote it in between ({w2.invoke_ms:.1f}..{w2.end:.1f}; read began {start:.1f})"
                )
        return
    deleters = [w for w in ws if w.status != FAILED and (w.value is None or w.ttl_ms is not None)]
    for w in acked:
        if w.value is None or w.ttl_ms is not None or w.end >= start:
            continue
        if not any(d is not w and d.end > w.invoke_ms and d.invoke_ms < end for d in deleters):
            raise NotLinearizable(
                f"seed {seed}: {who} of {key!r} found nothing, but op {w.op_id} set it to {w.value!r} "
                f"({w.invoke_ms:.1f}..{w.end:.1f}) and no deletion could have followed"
            )
