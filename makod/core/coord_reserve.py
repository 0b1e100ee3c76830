"""Hot keys held for a retried cross-shard transaction (a mixin of
Coordinator, which keeps the state and calls these at each phase).

Under TPC-C on two shards, cross-shard Payments and New-Orders failed five
attempts for each one that committed, nearly all at the coordinator's own
shard: the warehouse and district rows they write are written every few
milliseconds by the shard's single-shard transactions, which run at once,
while a cross-shard attempt needs those rows unchanged from its read to its
validation (a round trip to the other shard, or two). So on a retry, the
keys its last attempt wrote here are held from the start of the attempt
until its prepare locks them: this shard's own transactions that touch
one wait for it (KeyLocked, as for a lock), and another transaction's
prepare of one fails (as for a lock).

A retry that finds one of those keys held by another transaction (its
lock or its reservation) waits for it, backing off a tick at a time
without counting an attempt, rather than run an attempt bound to fail at
its prepare; after ``txn_timeout_ms`` of waiting it runs anyway.

A reservation only makes others wait or retry, like a lock: it changes
nothing any transaction reads or writes, so it cannot break
serializability. It holds no clock, so the watermark does not wait for it.
It is gone when the attempt prepares, aborts or ends, when the node stops
leading (the replica drops every lock), and at the latest one tick after
its transaction stops being active.
"""

from __future__ import annotations

from typing import Any

from makod.core.coord_txn import DistTxn


class Reserved:
    """The value a reserved key has in the replica's lock table: never equal
    to a transaction id, so it reads as another's lock to everyone."""

    __slots__ = ("txn",)

    def __init__(self, txn: DistTxn) -> None:
        self.txn = txn


class HotKeyReservations:
    node: Any
    active: dict
    reservations: dict  # id(txn) -> (its Reserved mark, the keys it holds)
    # Protocols that order transactions up front (Luigi) never meet these conflicts.
    reserves_on_retry = True

    def _reserve(self, txn: DistTxn) -> bool:
        """At the start of a retry: hold what the last attempt wrote here.
        False: another transaction holds one of those keys, so this attempt
        would fail at its prepare: wait for it instead (the caller backs off
        without counting an attempt), for up to ``txn_timeout_ms`` in all."""
        if not self.reserves_on_retry or not txn.local_writes or txn.attempt < 2:
            return True
        node = self.node
        locks = node.replica.locks
        if any(key in locks for key in txn.local_writes):
            if txn.waiting_since is None:
                txn.waiting_since = node.mono_ms
            if node.mono_ms - txn.waiting_since < node.cfg.txn_timeout_ms:
                return False
        txn.waiting_since = None
        mark = Reserved(txn)
        held = []
        for key in txn.local_writes:
            if key not in locks:  # held by another: this attempt may still win it
                locks[key] = mark
                held.append(key)
        txn.reserved = held
        if held:
            self.reservations[id(txn)] = (mark, held)
        return True

    def _release(self, txn: DistTxn) -> None:
        held = txn.reserved
        if not held:
            return
        txn.reserved = []
        entry = self.reservations.pop(id(txn), None)
        if entry is not None:
            self._unreserve(*entry)

    def _unreserve(self, mark: Reserved, keys: list[bytes]) -> None:
        replica = self.node.replica
        locks = replica.locks
        for key in keys:
            if locks.get(key) is mark:
                del locks[key]
        replica.lock_released = True  # who waits for them may go on

    def _drop_orphan_reservations(self) -> None:
        """A backstop, each tick: a reservation whose transaction is no longer
        active (every path out releases it; none may block keys for good)."""
        if not self.reservations:
            return
        for txn_key, (mark, keys) in list(self.reservations.items()):
            if self.active.get(mark.txn.id) is not mark.txn:
                del self.reservations[txn_key]
                mark.txn.reserved = []
                self._unreserve(mark, keys)
