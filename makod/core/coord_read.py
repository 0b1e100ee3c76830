"""The READ phase of a cross-shard transaction (a mixin of Coordinator,
which keeps the state, runs the transaction and aborts it): fetch every key
and range it needs from the owning leaders, with versions; our own shard
answers at once, and a run may read our shard's keys on the spot."""

from __future__ import annotations

from typing import Any

from makod.core.context import IndexBuilding, KeyLocked, vec_join
from makod.core.coord_txn import DistTxn, ScratchContext
from makod.core.slots import BUSY
from makod.core.txn_messages import TxnRead
from makod.kv.keyspace import Keyspace
from makod.storage.base import decode_record


class Reads:
    node: Any  # (and Coordinator's _abort, _execute, _deadline)

    # -- READ ----------------------------------------------------------------------------------
    def _fetch(self, txn: DistTxn) -> None:
        node = self.node
        by_shard: dict[int, tuple[list, list]] = {}
        for key in txn.need_keys:
            by_shard.setdefault(node.slots.shard_of(key), ([], []))[0].append(key)
        for spec in txn.need_ranges:
            # A range spans every shard unless it stays inside one hash tag.
            for shard in node.slots.range_shards(spec[0], spec[1]):
                by_shard.setdefault(shard, ([], []))[1].append(spec)
        asked = len(txn.need_keys)
        txn.need_keys = set()
        txn.need_ranges = set()
        txn.pending = set()
        txn.asked = {}
        txn.read_round += 1
        txn.deadline = self._deadline(txn, asked)
        if BUSY in by_shard:
            self._abort(txn, retry=True, cause="slot_moving")
            return
        for shard, (keys, ranges) in sorted(by_shard.items()):
            if shard == node.shard:
                if ranges and node._not_held((), ranges):
                    self._abort(txn, retry=True, cause="slot_moving")
                    return
                replica = node.replica
                if ranges:
                    if not replica.ranges_ready():
                        self._abort(txn, retry=True, cause="indexing")
                        return
                    try:
                        txn.range_deps = vec_join(txn.range_deps, replica.spec_deps(), node.wm)
                    except KeyLocked:
                        self._abort(txn, retry=True, cause="no_leader")
                        return
                self._absorb(txn, shard, replica.read_items(keys), ranges, [replica.read_range(*r) for r in ranges])
                continue
            leader = node.leader_of(shard)
            if leader is None:
                self._abort(txn, retry=True, cause="pending_epoch")
                return
            txn.pending.add(shard)
            txn.asked[shard] = ranges
            node.send(leader, TxnRead(shard, node.id, txn.id, keys, ranges, txn.read_round))
        if not txn.pending:
            self._execute(txn)

    def _bind_fetches(self, txn: DistTxn, scratch: Keyspace, ctx: ScratchContext) -> None:
        """How a run reads our own shard's keys and ranges on the spot."""
        ctx.fetch_local = lambda key: self._fetch_local(txn, scratch, key)
        ctx.fetch_local_range = lambda spec: self._fetch_local_range(txn, scratch, spec)

    def _fetch_local(self, txn: DistTxn, scratch: Keyspace, key: bytes) -> bool:
        """Read one of our own shard's keys in the middle of a run (no round trip)."""
        node = self.node
        if node.slots.shard_of(key) != node.shard:
            return False
        self._absorb_now(txn, scratch, node.replica.read_items([key]))
        return True

    def _fetch_local_range(self, txn: DistTxn, scratch: Keyspace, spec: tuple) -> list[bytes] | None:
        node = self.node
        if node.slots.range_shards(spec[0], spec[1]) != [node.shard]:
            return None
        if not node.replica.ranges_ready():
            raise IndexBuilding()  # the run aborts and retries
        deps = node.replica.spec_deps()  # KeyLocked (in doubt): the run aborts and retries
        txn.range_deps = vec_join(txn.range_deps, deps, node.wm)
        txn.read_deps = vec_join(txn.read_deps, deps, node.wm)
        found = node.replica.read_range(*spec)
        keys = [item[0] for item in found]
        txn.ranges[spec] = {node.shard: keys}
        self._absorb_now(txn, scratch, found)
        return keys

    def _absorb_now(self, txn: DistTxn, scratch: Keyspace, items: list) -> None:
        wm = self.node.wm
        for key, raw, version, deps in items:
            if key in txn.fetched:
                continue  # the run may have changed its copy: keep that one
            deps = tuple(deps) if deps else None
            rec = decode_record(raw) if raw is not None else None
            txn.fetched[key] = (rec, version, deps)
            if rec is not None:
                rec.deps = deps
                scratch.data[key] = rec
            if deps is not None:
                txn.read_deps = vec_join(txn.read_deps, deps, wm)  # KeyLocked: abort and retry

    def _absorb(self, txn: DistTxn, shard: int, items: list, range_specs: list, range_items: list) -> None:
        for key, raw, version, deps in items:
            txn.fetched[key] = (decode_record(raw) if raw is not None else None, version, tuple(deps) if deps else None)
        for spec, found in zip(range_specs, range_items):
            txn.ranges.setdefault(tuple(spec), {})[shard] = [item[0] for item in found]
            for key, raw, version, deps in found:
                txn.fetched[key] = (decode_record(raw) if raw is not None else None, version, tuple(deps) if deps else None)
