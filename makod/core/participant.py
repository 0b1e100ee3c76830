"""A shard leader's side of Mako's cross-shard certification (DESIGN.md,
"Transactions"): versioned reads for a coordinator's execution, Lock with
GetClock (``prepare``), Validate, Install at the handed-out clock, abort, and
answering what became of a transaction this shard coordinated.

A mixin of ReplicaCore: it works on the replica's keyspace, locks, clock and
watermarks, and hands installed transactions back through ``_add_certified``.
"""

from __future__ import annotations

from typing import Any

from makod.kv.key_indexes import ORDER
from makod.kv.records import OP_FLUSH
from makod.core.watermark import ROLLED_BACK

# Why a range read or validation was refused: the ordered index of a big
# keyspace is still being made a slice per tick (kv/key_indexes.py). Making
# it at once would stop this leader for seconds per million keys; the
# coordinator retries instead, and in the end answers TRYAGAIN.
INDEXING = "indexing"


class Prepared:
    """A transaction locked here (Lock and GetClock done), waiting for Install or abort."""

    __slots__ = ("txn", "keys", "clock", "since_ms", "queried_ms")

    def __init__(self, txn: tuple, keys: list[bytes], clock: int, since_ms: float) -> None:
        self.txn = txn
        self.keys = keys
        self.clock = clock
        self.since_ms = since_ms
        self.queried_ms = since_ms


class Participant:
    """Methods only; the state lives in ReplicaCore."""

    def read_items(self, keys: list[bytes]) -> list[list]:
        from makod.storage.base import encode_record

        out = []
        ks = self.ks
        data = ks.data
        tag = self._tag
        for key in keys:
            rec = data.get(key)
            if rec is None:
                # An absence depends on the deletion that made it, if not final.
                gone = ks.absence_deps(key)
                out.append([key, None, ks.version_of(key) | tag(key), list(gone) if gone else None])
            else:
                out.append([key, encode_record(rec), rec.version | tag(key), list(rec.deps) if rec.deps else None])
        return out

    def _tag(self, key: bytes) -> int:
        """What this shard's versions of ``key`` carry (SlotMap.tag_of; 0 with one shard)."""
        slot_map = self.slot_map
        return 0 if slot_map is None else slot_map.tag_of(key)

    def ranges_ready(self) -> bool:
        """Can range reads be answered now? False starts the ordered index's
        stepwise build (ReplicaCore.tick makes it); ask again later."""
        return self.ks.indexes.ready(ORDER)

    def read_range(self, start: bytes, end: bytes | None, limit: int | None, reverse: bool) -> list[list]:
        return self.read_items(self._range_keys(start, end, limit, reverse))

    def _range_keys(self, start: bytes, end: bytes | None, limit: int | None, reverse: bool) -> list[bytes]:
        keys = []
        data = self.ks.data
        for key in self.ks.range_iter(start, end, reverse, limit):
            rec = data.get(key)
            if rec is None or (rec.expire_ms is not None and rec.expire_ms <= self.wall_ms):
                continue
            keys.append(key)
            if limit is not None and len(keys) >= limit:
                break
        return keys

    def prepare(self, txn: tuple, keys: list[bytes]) -> tuple[bool, int, str]:
        """Lock ``keys`` and hand out the next clock; a held lock fails at once."""
        if txn in self.prepared:
            return True, self.prepared[txn].clock, ""
        if txn in self.recent_outcomes:
            # A duplicated prepare after the decision: locking again would
            # leave an orphan holding keys and a clock forever.
            return False, 0, "already " + self.recent_outcomes[txn]
        locks = self.locks
        for key in keys:
            holder = locks.get(key)
            if holder is not None and holder != txn:
                return False, 0, "locked"
        for key in keys:
            locks[key] = txn
        self.clock += 1
        clock = self.clock
        self.granted[txn] = clock
        self.prepared[txn] = Prepared(txn, list(keys), clock, self.mono_ms)
        return True, clock, ""

    def validate(self, txn: tuple, reads: list, ranges: list) -> tuple[bool, str]:
        locks = self.locks
        data = self.ks.data
        now = self.wall_ms
        for key, version in reads:
            holder = locks.get(key)
            if holder is not None and holder != txn:
                return False, "locked"
            rec = data.get(key)
            if rec is not None and rec.expire_ms is not None and rec.expire_ms <= now:
                return False, "expired"
            if self.ks.version_of(key) | self._tag(key) != version:
                return False, "changed"
        if ranges and not self.ranges_ready():
            return False, INDEXING  # (a FLUSH since the read dropped the index)
        for start, end, limit, reverse, seen in ranges:
            current = self._range_keys(start, end, limit, reverse)
            if [k for k, _ in seen] != current:
                return False, "range changed"
            for key, version in seen:
                holder = locks.get(key)
                if (holder is not None and holder != txn) or self.ks.version_of(key) | self._tag(key) != version:
                    return False, "range changed"
            if self._phantom_locked(txn, start, end, limit, reverse, current):
                return False, "range locked"
        return True, ""

    def _phantom_locked(self, txn: tuple, start: bytes, end: bytes | None, limit: int | None, reverse: bool,
                        found: list[bytes]) -> bool:
        """Does another transaction hold a lock inside the part of the range a scan
        covered? It may be about to insert a key the scan did not see (a phantom):
        the scan would then have seen part of that transaction and not the rest."""
        if not self.locks:
            return False
        lo, hi = start, end  # the covered part: [lo, hi), or up to the last key when the limit cut it
        if limit is not None and len(found) >= limit and found:
            if reverse:
                lo = found[-1]
            else:
                hi = found[-1] + b"\x00"
        for key, holder in self.locks.items():
            if holder != txn and lo <= key and (hi is None or key < hi):
                return True
        return False

    def install_prepared(self, txn: tuple, deps: tuple, ops: list, record: Any = None) -> tuple[bool, str]:
        """Apply a certified transaction's ops here at the clock we handed out."""
        if self.recent_outcomes.get(txn) == "installed":
            return True, ""
        prepared = self.prepared.get(txn)
        if prepared is None:
            return False, "unknown transaction"
        if self._stale_prepare(prepared, deps):
            self.abort_prepared(txn)
            return False, "stale prepare"
        del self.prepared[txn]
        self._unlock(prepared)
        if self.wm.status(deps) == ROLLED_BACK:
            # Already excluded by an epoch verdict: installing it would only
            # let others build on writes that must vanish.
            self.granted.pop(txn, None)
            self._outcome(txn, "aborted")
            if self.prepared_done is not None:
                self.prepared_done(txn)
            return True, ""
        version = prepared.clock
        undo: list = []
        keys: set[bytes] = set()
        has_flush = False
        captured: set[bytes] = set()
        for op in ops:
            op = tuple(op)
            if op[0] == OP_FLUSH:
                has_flush = True
            else:
                keys.add(op[1])
                self.tracker.before_write(op[1], captured)
            self.ks.apply(op, version, deps, undo)
        self.granted.pop(txn, None)
        self._outcome(txn, "installed")
        if ops or record is not None:
            self._add_certified(version, deps, [tuple(op) for op in ops], undo, keys, has_flush, record)
        if self.prepared_done is not None:
            self.prepared_done(txn)
        return True, ""

    def _stale_prepare(self, prepared: Prepared, deps: tuple | None) -> bool:
        """Whether a decision's ``deps`` were made for an earlier prepare of the same transaction.

        The deps hold the clock this shard granted the prepare the coordinator
        counted (Luigi's may be higher still: its local reads come later); a
        clock granted after the decision is above them all. Such a prepare is
        a copy the network delivered late, after a restart forgot the outcome,
        and it locked anew; the real one was installed (or aborted) long ago.
        Installing again would write the old values over everything since
        (seen: an acknowledged DEL undone by a 4.5 s late duplicate, sweep
        seed 282, 2pc-paxos)."""
        return deps is not None and len(deps) > self.shard and prepared.clock > deps[self.shard]

    def abort_prepared(self, txn: tuple) -> None:
        prepared = self.prepared.pop(txn, None)
        if prepared is not None:
            self._unlock(prepared)
        self.granted.pop(txn, None)
        self._outcome(txn, "aborted")
        if self.prepared_done is not None:
            self.prepared_done(txn)

    def _unlock(self, prepared: Prepared) -> None:
        for key in prepared.keys:
            if self.locks.get(key) == prepared.txn:
                del self.locks[key]
        self.lock_released = True

    def _outcome(self, txn: tuple, outcome: str) -> None:
        self.recent_outcomes[txn] = outcome
        if len(self.recent_outcomes) > 100_000:
            self.recent_outcomes.popitem(last=False)

    def decision_for(self, txn: tuple, participant_shard: int) -> tuple[str, Any, Any]:
        """What became of a transaction this shard coordinated, if this replica can tell.

        Any replica may answer: coordinator records come from chosen slots,
        and once we read the epoch entry that closed the coordinator's epoch,
        every slot of that epoch is behind us, so a missing record means the
        transaction was never committed.
        """
        record = self.coord_records.get(txn)
        if record is not None:
            deps, ops_by_shard = record
            if self.wm.status(deps) == ROLLED_BACK:
                return "abort", None, None
            ops = ops_by_shard.get(participant_shard, ops_by_shard.get(str(participant_shard), []))
            return "commit", deps, ops
        # Every slot of an epoch below the chain's is behind us (records are
        # kept across checkpoints, snapshots and restarts): no record, no
        # commit. Unless records of that epoch were evicted: then nobody knows.
        if txn[1] < self.chain.epoch and not self.coord_records.may_be_forgotten(txn):
            return "abort", None, None
        return "pending", None, None

    def _query_orphans(self) -> None:
        """Prepared transactions whose coordinator went quiet: ask what happened."""
        for prepared in self.prepared.values():
            if self.mono_ms - prepared.queried_ms >= self.cfg.orphan_query_ms:
                prepared.queried_ms = self.mono_ms
                self.orphans_to_query.append(prepared.txn)
