"""The chosen log, applied: a replica's side of what Paxos chose (a mixin of
ReplicaCore, like participant.py). Its own batches are already installed;
others' are decoded, and each transaction is applied once its whole version
vector is covered (or rolled back when the watermark says it was undone)."""

from __future__ import annotations

from collections import deque
from typing import Any

from makod.core.entries import (
    ENTRY_BATCH,
    ENTRY_EPOCH,
    MalformedEntry,
    batch_seq,
    decode_entry,
)
from makod.core.membership import CONFIG_TAG, decode_config
from makod.kv.records import OP_FLUSH
from makod.core.watermark import COVERED, EPOCH_SHIFT, PENDING, ROLLED_BACK

# Txn states.
INSTALLED = 0
FINAL = 1
UNDONE = -1


class Txn:
    """A transaction installed on this leader, not yet final."""

    __slots__ = ("version", "deps", "ops", "undo", "keys", "has_flush", "record", "state", "slot")

    def __init__(self, version: int, deps: tuple, ops: list, undo: list, keys: set, has_flush: bool, record: Any) -> None:
        self.version = version
        self.deps = deps
        self.ops = ops
        self.undo = undo
        self.keys = keys
        self.has_flush = has_flush
        self.record = record  # a coordinator's record: [txn id, {shard: ops}] or None
        self.state = INSTALLED
        self.slot: int | None = None


class ChosenSlots:
    # -- chosen slots -------------------------------------------------------------------------------
    def on_chosen(self, slot: int, value: bytes) -> None:
        own = self.inflight.pop(slot, None)
        for callback in self.inflight_barriers.pop(slot, ()):
            callback()
        if own is not None:
            marker, txns, seq = own
            if self.chain.read_batch(slot, self.epoch, seq, marker):
                self.wm.observe(self.shard, self.epoch, marker)
            for txn in txns:
                if txn.record is not None:
                    self._remember_record(txn.record, txn.deps)
            self.unresolved.append([slot, deque(txns)])
            return
        entry = self._read_entry(slot, value)
        if entry is None:
            self.chain.read_noop(slot)  # a no-op, or a CONFIG entry (_read_entry)
        elif entry[0] == ENTRY_BATCH:
            if self.chain.read_batch(slot, entry[1], batch_seq(entry), entry[2]):
                self.wm.observe(self.shard, entry[1], entry[2])
        elif entry[0] == ENTRY_EPOCH:
            epoch, (closed, closed_below) = entry[1], entry[2]
            closed = {int(e): f for e, f in closed.items()}
            if self.chain.read_epoch(slot, epoch, closed):
                self.wm.observe(self.shard, epoch, epoch << EPOCH_SHIFT, closed, closed_below)
                self.on_marks_changed(force=True)
        self.unresolved.append([slot, self._decoded_items(entry)])

    def _read_entry(self, slot: int, value: bytes) -> list | None:
        if value[:1] == CONFIG_TAG:
            # A membership change: in force once this slot is applied.
            change = decode_config(value)
            if change is None:
                self._count_apply_error(f"slot {slot}: a malformed membership change")
            else:
                self.members_pending[slot] = change
            return None
        try:
            return decode_entry(value)
        except MalformedEntry as exc:
            self._count_apply_error(f"slot {slot}: {exc}")
            return None

    def _count_apply_error(self, what: str) -> None:
        # Every replica sees the same chosen bytes and skips the same thing;
        # the count shows in INFO (apply_errors) so it is never silent.
        self.apply_errors += 1
        self.last_apply_error = what[:200]

    def _decoded_items(self, entry: list | None) -> deque:
        if entry is None or entry[0] != ENTRY_BATCH:
            return deque()
        items: deque = deque()
        own = self.shard
        for version, deps, ops, record in entry[3]:
            if deps is None:
                vec = list(self.zero)
                vec[own] = version
                deps = tuple(vec)
            else:
                deps = tuple(deps)
            if record is not None:
                self._remember_record(record, deps)
            items.append((version, deps, ops))
        return items

    def _remember_record(self, record: Any, deps: tuple) -> None:
        self.coord_records.add(tuple(record[0]), deps, record[1])

    def resolve(self, budget_ops: int = 4_000) -> None:
        """Finalize or skip, in log order, every transaction whose fate is now known.

        Stops after about ``budget_ops`` ops (``resolve_more`` says there may be
        more), so one call never holds the event loop for long.
        """
        wm = self.wm
        self.resolve_more = False
        while self.unresolved:
            slot, items = self.unresolved[0]
            while items:
                item = items[0]
                if type(item) is Txn:
                    if item.state == UNDONE:
                        items.popleft()
                        continue
                    status = wm.status(item.deps)
                    if status == PENDING:
                        return
                    if status == ROLLED_BACK:
                        # Never alone: everything built on it goes with it,
                        # newest first, or an undo would land under a dependent.
                        self._marks_scanned = -1
                        self.on_marks_changed(force=True)
                    else:
                        self._finalize(item)
                else:
                    version, deps, ops = item
                    status = wm.status(deps)
                    if status == PENDING:
                        return
                    if status == COVERED:
                        self._apply_ops(version, ops)
                        budget_ops -= len(ops)
                    else:
                        self.rolled_back_versions.append(version)
                items.popleft()
                if budget_ops <= 0 and (items or len(self.unresolved) > 1):
                    self.resolve_more = True
                    return
            self.unresolved.popleft()
            self.applied_slot = slot
            if self.members_pending:
                self._members_applied(slot)

    def _members_applied(self, slot: int) -> None:
        for s in sorted(self.members_pending):
            if s > slot:
                break
            self.members = self.members_pending.pop(s).applied_to(self.members)

    def _finalize(self, txn: Txn) -> None:
        txn.state = FINAL
        self.tracker.committed_own(txn.version, txn.keys, txn.ops, txn.has_flush)
        txn.undo = []
        # Its writes (and deletions) are final: readers no longer inherit its dependencies.
        ks = self.ks
        for key in txn.keys:
            ks.finalize(key, txn.version)
        if txn.has_flush:
            ks.finalize_flush(txn.version)
        if txn.version > self.applied_clock:
            self.applied_clock = txn.version
        self._pop_settled()

    def _pop_settled(self) -> None:
        """Final and undone transactions leave the speculative list from its head."""
        txns = self.txns
        while txns and txns[0].state != INSTALLED:
            txns.popleft()
        if not txns:
            self._spec_deps = self.zero

    def _apply_ops(self, version: int, ops: list) -> None:
        ks = self.ks
        data = ks.data
        keys: set[bytes] = set()
        has_flush = False
        # A key whose record is already at this version or newer has this
        # transaction's effect: a checkpoint is written in parts and may hold
        # records newer than its applied slot, and the log is replayed from
        # that slot. Ops that assign (SET, HSET) could be applied twice
        # harmlessly; ops that adjust (LPUSH, RPOP) must not. Per key,
        # versions grow in log order (a key
        # locked by a prepared transaction cannot be written meanwhile), so
        # the check is decided once per key, before the transaction's first op.
        stale: dict[bytes, bool] = {}
        for op in ops:
            op = tuple(op)
            if op[0] != OP_FLUSH:
                key = op[1]
                skip = stale.get(key)
                if skip is None:
                    rec = data.get(key) if type(key) is bytes else None
                    skip = stale[key] = rec is not None and rec.version >= version
                if skip:
                    self.replay_skipped_ops += 1
                    continue
            else:
                stale.clear()  # the FLUSH left nothing newer behind
            try:
                ks.apply(op, version, None)
            except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
                self._count_apply_error(f"op {op[:2]!r} at version {version}: {type(exc).__name__}: {exc}")
                continue
            if op[0] == OP_FLUSH:
                has_flush = True
            else:
                keys.add(op[1])
        self.tracker.applied(keys, has_flush)
        if version > self.applied_clock:
            self.applied_clock = version
        if not self.serving:
            self.clock = max(self.clock, self.applied_clock)

    def on_marks_changed(self, force: bool = False) -> None:
        """Watermarks moved (ours or another shard's): roll back what an epoch verdict excludes.

        Only an epoch verdict can doom a transaction, so plain watermark
        advances (nearly every gossip message) skip the scan over every
        installed transaction; ``force`` scans anyway (the tick does, as a
        backstop, when anything moved since the last scan).
        """
        wm = self.wm
        if not force and wm.verdicts == self._verdicts_scanned:
            return
        if force and wm.version == self._marks_scanned:
            return
        self._verdicts_scanned = wm.verdicts
        self._marks_scanned = wm.version
        doomed = [t for t in self.txns if t.state == INSTALLED and self.wm.status(t.deps) == ROLLED_BACK]
        if doomed:
            self._roll_back(doomed)

    def _roll_back(self, txns: list[Txn]) -> None:
        """Undo these transactions, newest first. Callers pass every doomed one at
        once (on_marks_changed): anything that read or overwrote their writes
        depends on them and carries the same verdict in its vector."""
        doomed = {id(t) for t in txns}
        for txn in reversed(self.txns):
            if id(txn) in doomed and txn.state == INSTALLED:
                self.ks.rollback(txn.undo)
                txn.state = UNDONE
                self.tracker.rolled_back(txn.keys, txn.has_flush)
                self.rolled_back_versions.append(txn.version)
        self.batch = [t for t in self.batch if t.state == INSTALLED]
        self.batch_ops = sum(len(t.ops) for t in self.batch)
        self._spec_deps = None
        self._pop_settled()

    def own_watermark(self) -> tuple[int, int, dict[int, int], int]:
        return self.wm.snapshot(self.shard)
