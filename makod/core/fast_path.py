"""Fast paths: requests the leader can answer with no transaction at all.

A one-key read whose key has nothing pending (issue 14's first step) skips
routing, the transaction context and the release queue (and, asked from a
session with no reply pending, the request object: ``NodeCore.fast_read``). The rule for when
it may is the full path's, checked up front: what it returns is what the
full path would return at once, or it declines (None) and the full path
runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from makod.core.watermark import COVERED
from makod.kv import dbs

if TYPE_CHECKING:
    from makod.core.node import NodeCore


def fast_read(node: "NodeCore", db: int, argv: list[bytes], spec: Any) -> tuple[Any, bool] | None:
    """A one-key read at this shard's serving leader, answered from the
    record itself when nothing about the key is pending: not locked, not
    expired, and what it depends on (its writers, or its absence's) is
    covered by the watermark, so the full path would answer the same at
    once. Anything else (None) takes the full path. Luigi orders every
    transaction, reads included, through its sequencer: not here."""
    key = argv[1]
    if db or key[:1] == dbs.MARK:
        key = dbs.encode(db, key)
    replica = node.replica
    if node.luigi is not None or (node.num_shards > 1 and node.slots.shard_of(key) != node.shard):
        return None
    if not replica.can_serve() or (replica.locks and key in replica.locks):
        return None
    ks = replica.ks
    rec = ks.data.get(key)
    if rec is None:
        if ks.absence_deps(key) is not None:
            return None
    elif rec.expire_ms is not None and rec.expire_ms <= replica.wall_ms:
        return None  # the full path deletes it (an expiry is a write)
    elif rec.deps is not None and node.wm.status(rec.deps) != COVERED:
        return None
    reply = spec.fast_read(rec)
    if reply is NotImplemented:
        return None
    if rec is None:
        ks.misses += 1
    else:
        ks.hits += 1
    return reply, True
