"""Requests a client session hands to the database (any transaction protocol), and their wire form.

The RESP session has already checked arity, authentication and MULTI
queueing; what reaches the database is only what must touch data.
"""

from __future__ import annotations

from typing import Any



class TxnRequest:
    """Run ``commands`` (each a full argv) as one transaction.

    ``multi``: answer with an array (EXEC) rather than the single reply.
    ``watches``: (key, version) pairs observed by WATCH; if any key's version
    changed, nothing runs and the answer is a null array.
    """

    __slots__ = ("commands", "multi", "watches", "shard", "specs")

    def __init__(
        self,
        commands: list[list[bytes]],
        multi: bool = False,
        watches: list[tuple[bytes, int]] | None = None,
        shard: int | None = None,
    ) -> None:
        self.commands = commands
        self.multi = multi
        self.watches = watches
        # Pinned: run on this shard alone (one shard's part of a fan-out).
        self.shard = shard
        # The command specs, when the sender already resolved them (local only).
        self.specs: list | None = None

    def to_wire(self) -> list:
        return [0, self.commands, self.multi, self.watches, self.shard]

    def __repr__(self) -> str:
        return f"TxnRequest({self.commands!r}, multi={self.multi}, watches={self.watches})"


class WatchRequest:
    """Read the current versions of ``keys`` (for WATCH)."""

    __slots__ = ("keys",)

    def __init__(self, keys: list[bytes]) -> None:
        self.keys = keys

    def to_wire(self) -> list:
        return [1, self.keys]

    def __repr__(self) -> str:
        return f"WatchRequest({self.keys!r})"


def request_from_wire(data: list) -> Any:
    kind = data[0]
    if kind == 0:
        watches = [tuple(w) for w in data[3]] if data[3] is not None else None
        return TxnRequest(data[1], data[2], watches, data[4] if len(data) > 4 else None)
    if kind == 1:
        return WatchRequest(data[1])
    raise ValueError(f"unknown request kind {kind}")
