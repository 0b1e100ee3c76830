"""What became of the cross-shard transactions this shard coordinated.

A coordinator installs its own part of a transaction with a *record*: the
transaction's version vector and every other shard's operations. The record
travels in the shard's log; every replica keeps the records of its chosen
slots, so that a participant that missed its Install can ask any replica of
the coordinator's shard (TxnQuery) and get the decision.

Records outlive the log: a checkpoint writes the ones added since the last
one (and drops the evicted ones), a snapshot carries them all, a restart
loads them. Memory is bounded: past ``max_records`` the oldest are evicted,
and ``evicted_epoch`` remembers the newest coordinator epoch any evicted
record had, so that a missing record of such an epoch reads as unknown,
never as "aborted".
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import msgpack

from makod.codec import pack

COORD_RECORDS_MAX = 100_000


class CoordRecords:
    def __init__(self, max_records: int = COORD_RECORDS_MAX) -> None:
        self.max_records = max_records
        self.records: OrderedDict[tuple, tuple[int, tuple, Any]] = OrderedDict()  # txn -> (seq, deps, ops by shard)
        self.next_seq = 1
        self.evicted_epoch = 0
        self._added: dict[tuple, None] = {}  # since the last checkpoint, in order
        self._removed: dict[tuple, None] = {}

    def __len__(self) -> int:
        return len(self.records)

    def add(self, txn: tuple, deps: tuple, ops_by_shard: Any) -> None:
        if txn in self.records:
            return  # read again (a replay after a restart)
        self.records[txn] = (self.next_seq, deps, ops_by_shard)
        self.next_seq += 1
        self._added[txn] = None
        self._removed.pop(txn, None)
        while len(self.records) > self.max_records:
            old, _ = self.records.popitem(last=False)
            self.evicted_epoch = max(self.evicted_epoch, old[1])
            if old in self._added:
                del self._added[old]  # never written: nothing to delete
            else:
                self._removed[old] = None

    def get(self, txn: tuple) -> tuple[tuple, Any] | None:
        entry = self.records.get(txn)
        return None if entry is None else (entry[1], entry[2])

    def may_be_forgotten(self, txn: tuple) -> bool:
        """True if a record of ``txn`` may have been evicted."""
        return txn[1] <= self.evicted_epoch

    # -- persistence -------------------------------------------------------------------------
    def take_changes(self) -> tuple[list[tuple[bytes, bytes]], list[bytes]]:
        """(puts, deletes) since the last call, encoded for the store."""
        puts = []
        for txn in self._added:
            seq, deps, ops = self.records[txn]
            puts.append((encode_key(txn), pack([seq, list(deps), ops])))
        deletes = [encode_key(txn) for txn in self._removed]
        self._added = {}
        self._removed = {}
        return puts, deletes

    def all_encoded(self) -> list[tuple[bytes, bytes]]:
        return [(encode_key(txn), pack([seq, list(deps), ops])) for txn, (seq, deps, ops) in self.records.items()]

    @classmethod
    def from_encoded(cls, items: list[tuple[bytes, bytes]], evicted_epoch: int) -> "CoordRecords":
        out = cls()
        decoded = []
        for key, value in items:
            seq, deps, ops = msgpack.unpackb(value, raw=False, strict_map_key=False)
            decoded.append((seq, tuple(msgpack.unpackb(key, raw=False)), tuple(deps), ops))
        decoded.sort(key=lambda item: item[0])
        for seq, txn, deps, ops in decoded:
            out.records[txn] = (seq, deps, ops)
            out.next_seq = seq + 1
        out.evicted_epoch = evicted_epoch
        return out

    def merge(self, other: "CoordRecords") -> None:
        """Take in a snapshot's records (what we already hold stays)."""
        for txn, (_seq, deps, ops) in other.records.items():
            self.add(txn, deps, ops)
        self.evicted_epoch = max(self.evicted_epoch, other.evicted_epoch)


def encode_key(txn: tuple) -> bytes:
    return pack(list(txn))
