"""A node's side of other shards' transactions: it answers their
coordinators' reads, prepares, validations, installs and aborts, and their
queries about what became of a transaction (a mixin of NodeCore, like
forwarding.py)."""

from __future__ import annotations

from makod.core.context import DependencyInDoubt
from makod.core.messages import Message
from makod.core.participant import INDEXING
from makod.core.paxos import LEADER
from makod.core.slots import moved_reason
from makod.core.txn_messages import (
    TxnAbort,
    TxnAborted,
    TxnDecision,
    TxnInstall,
    TxnInstalled,
    TxnPrepare,
    TxnPrepared,
    TxnQuery,
    TxnRead,
    TxnReadReply,
    TxnValidate,
    TxnValidated,
)


# A read reply refused for its size says so, then its size in bytes.
READS_TOO_LARGE = "too large: "


def items_bytes(items: list[list]) -> int:
    """Roughly what [key, record bytes | None, version, deps] items take on the wire."""
    return sum(len(item[0]) + (len(item[1]) if item[1] is not None else 0) + 16 for item in items)


class Participation:
    def _not_held(self, keys, ranges=()) -> str:
        """Why this shard cannot answer for these keys and ranges now (slots
        moved or moving: the refusal names who holds them), or ""."""
        if self.num_shards == 1:
            return ""
        owns = self.owns
        bad = [key for key in keys if not owns(key)]
        if bad:
            return moved_reason(self.slots.hints(bad))
        guard = self.slots.guard_range
        for spec in ranges:
            if not guard(spec[0], spec[1]):
                return moved_reason([])
        return ""

    # -- cross-shard participation -----------------------------------------------------------------
    def _participant(self, msg: Message) -> None:
        replica = self.replica
        t = type(msg)
        if t is TxnQuery:
            outcome, deps, ops = self.coord.decision(msg.txn, msg.participant_shard)
            if outcome != "pending":
                self.send(msg.src, TxnDecision(msg.participant_shard, self.id, msg.txn, outcome, deps, ops))
            return
        if t is TxnDecision:
            if msg.outcome == "commit":
                replica.install_prepared(msg.txn, msg.deps, msg.ops)
            elif msg.outcome == "abort":
                replica.abort_prepared(msg.txn)
            return
        serving = replica.serving and self.paxos.role == LEADER
        epoch = replica.epoch
        if t is TxnRead:
            # Reads and validations answer for the present: only a leader whose
            # lease is valid knows it is still the leader (a deposed one that
            # does not know it yet would answer with stale versions).
            if not replica.can_answer_reads():
                self.send(msg.src, TxnReadReply(self.shard, self.id, msg.txn, False, epoch, [], [], "not leader",
                                                None, msg.round))
                return
            moved = self._not_held(msg.keys, msg.ranges)
            if moved:
                self.send(msg.src, TxnReadReply(self.shard, self.id, msg.txn, False, epoch, [], [], moved,
                                                None, msg.round))
                return
            deps = None
            if msg.ranges:
                if not replica.ranges_ready():
                    self.send(msg.src, TxnReadReply(self.shard, self.id, msg.txn, False, epoch, [], [], INDEXING,
                                                    None, msg.round))
                    return
                try:
                    deps = replica.spec_deps()
                except DependencyInDoubt:
                    self.send(msg.src, TxnReadReply(self.shard, self.id, msg.txn, False, epoch, [], [], "in doubt",
                                                    None, msg.round))
                    return
            items = replica.read_items(msg.keys)
            ranges = [replica.read_range(*r) for r in msg.ranges]
            size = items_bytes(items) + sum(items_bytes(found) for found in ranges)
            if size > self.cfg.max_txn_bytes:
                # One peer frame must carry it (and a leader stalls while it
                # encodes and sends it): the coordinator fails the transaction.
                self.send(msg.src, TxnReadReply(self.shard, self.id, msg.txn, False, epoch, [], [],
                                                READS_TOO_LARGE + str(size), None, msg.round))
                return
            self.send(msg.src, TxnReadReply(self.shard, self.id, msg.txn, True, epoch, items, ranges, "", deps, msg.round))
        elif t is TxnPrepare:
            if not serving:
                self.send(msg.src, TxnPrepared(self.shard, self.id, msg.txn, False, 0, epoch, "not leader"))
                return
            moved = self._not_held(msg.keys) if msg.txn not in replica.prepared else ""
            if moved:
                self.send(msg.src, TxnPrepared(self.shard, self.id, msg.txn, False, 0, epoch, moved))
                return
            ok, clock, reason = replica.prepare(msg.txn, msg.keys)
            reply = TxnPrepared(self.shard, self.id, msg.txn, ok, clock, epoch, reason)
            if ok and self.cfg.protocol == "2pc-paxos":
                # The baseline votes only once its prepare is replicated.
                replica.after_replication(lambda: self.send(msg.src, reply))
            else:
                self.send(msg.src, reply)
        elif t is TxnValidate:
            moved = self._not_held([read[0] for read in msg.reads], msg.ranges)
            if moved:
                ok, reason = False, moved
            elif replica.can_answer_reads():
                ok, reason = replica.validate(msg.txn, msg.reads, msg.ranges)
            else:
                ok, reason = False, "not leader"
            self.send(msg.src, TxnValidated(self.shard, self.id, msg.txn, ok, reason))
        elif t is TxnInstall:
            if msg.epoch != epoch or not serving:
                ok, reason = False, "epoch changed"
            else:
                ok, reason = replica.install_prepared(msg.txn, msg.deps, msg.ops)
            self.send(msg.src, TxnInstalled(self.shard, self.id, msg.txn, ok, reason))
        elif t is TxnAbort:
            replica.abort_prepared(msg.txn)
            self.send(msg.src, TxnAborted(self.shard, self.id, msg.txn))
