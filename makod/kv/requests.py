"""Requests a client session hands to the database (any transaction protocol), and their wire form.

The RESP session has already checked arity, authentication and MULTI
queueing; what reaches the database is only what must touch data.
"""

from __future__ import annotations

from typing import Any



class TxnRequest:
    """Run ``commands`` (each a full argv) as one transaction.

    ``multi``: answer with an array (EXEC) rather than the single reply.
    ``watches``: (key, version[, db]) observed by WATCH; if any key's version
    changed, nothing runs and the answer is a null array.
    ``db``: the numbered database (kv/dbs.py) the commands' keys are in;
    ``dbs``: one per command instead, when a SELECT queued in MULTI changes
    it part way (None otherwise).
    """

    __slots__ = ("commands", "multi", "watches", "shard", "specs", "db", "dbs")

    def __init__(
        self,
        commands: list[list[bytes]],
        multi: bool = False,
        watches: list[tuple] | None = None,
        shard: int | None = None,
        db: int = 0,
        dbs: list[int] | None = None,
    ) -> None:
        self.commands = commands
        self.multi = multi
        self.watches = watches
        # Pinned: run on this shard alone (one shard's part of a fan-out).
        self.shard = shard
        # The command specs, when the sender already resolved them (local only).
        self.specs: list | None = None
        self.db = db
        self.dbs = dbs

    def db_of(self, i: int) -> int:
        """The database command ``i`` runs in."""
        return self.db if self.dbs is None else self.dbs[i]

    def watch_items(self) -> list[tuple[int, bytes, int]]:
        """(db, key, version) of every WATCH (a pair is database ``db``'s)."""
        return [(w[2] if len(w) > 2 else self.db, w[0], w[1]) for w in self.watches or ()]

    def to_wire(self) -> list:
        return [0, self.commands, self.multi, self.watches, self.shard, self.db, self.dbs]

    def __repr__(self) -> str:
        return f"TxnRequest({self.commands!r}, multi={self.multi}, watches={self.watches}, db={self.db})"


class WatchRequest:
    """Read the current versions of ``keys`` of database ``db`` (for WATCH)."""

    __slots__ = ("keys", "db")

    def __init__(self, keys: list[bytes], db: int = 0) -> None:
        self.keys = keys
        self.db = db

    def to_wire(self) -> list:
        return [1, self.keys, self.db]

    def __repr__(self) -> str:
        return f"WatchRequest({self.keys!r}, db={self.db})"


def request_from_wire(data: list) -> Any:
    kind = data[0]
    if kind == 0:
        watches = [tuple(w) for w in data[3]] if data[3] is not None else None
        request = TxnRequest(data[1], data[2], watches, data[4] if len(data) > 4 else None)
        if len(data) > 6:
            request.db, request.dbs = data[5], data[6]
        return request
    if kind == 1:
        return WatchRequest(data[1], data[2] if len(data) > 2 else 0)
    raise ValueError(f"unknown request kind {kind}")
