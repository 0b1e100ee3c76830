"""Replies held back until the vector watermark covers what they depend on.

Mako's rule (DESIGN.md, "Reply"): a transaction with version vector c is
released when c_i <= w_i for every shard i, judged epoch by epoch (see
watermark.py). Entries are heaped on this shard's component, the one that
moves fastest; those whose own component is settled but that still wait on
another shard move to a short list rechecked whenever any watermark moves.
A transaction some ended epoch rolled back comes out as rolled back, and its
client gets an error instead of a reply.
"""

from __future__ import annotations

import heapq
from typing import Any

from makod.core.watermark import COVERED, PENDING, ROLLED_BACK, WatermarkTable


class ReleaseQueue:
    def __init__(self, shard_index: int, max_entries: int) -> None:
        self.own = shard_index
        self.max_entries = max_entries
        self._heap: list[tuple[int, int, tuple[int, ...], Any]] = []
        self._remote: list[tuple[tuple[int, ...], Any]] = []
        self._seq = 0

    def __len__(self) -> int:
        return len(self._heap) + len(self._remote)

    @property
    def full(self) -> bool:
        return len(self) >= self.max_entries

    def add(self, deps: tuple[int, ...], token: Any) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (deps[self.own], self._seq, deps, token))

    def settle(self, table: WatermarkTable) -> tuple[list[Any], list[Any]]:
        """(released, rolled back) tokens for what the watermarks now decide."""
        released: list[Any] = []
        rolled_back: list[Any] = []
        heap = self._heap
        own = self.own
        while heap and table.component(own, heap[0][0]) != PENDING:
            _, _, deps, token = heapq.heappop(heap)
            self._route(table.status(deps), deps, token, released, rolled_back, self._remote)
        if self._remote:
            still: list[tuple[tuple[int, ...], Any]] = []
            for deps, token in self._remote:
                self._route(table.status(deps), deps, token, released, rolled_back, still)
            self._remote = still
        return released, rolled_back

    @staticmethod
    def _route(status: int, deps, token, released, rolled_back, waiting) -> None:
        if status == COVERED:
            released.append(token)
        elif status == ROLLED_BACK:
            rolled_back.append(token)
        else:
            waiting.append((deps, token))

    def drain(self) -> list[Any]:
        """Everything still held (the leader lost its role: none of it will be covered here)."""
        out = [entry[3] for entry in self._heap] + [token for _, token in self._remote]
        self._heap = []
        self._remote = []
        return out
