"""Replies held back until the replication watermark covers what they depend on.

Mako's rule (DESIGN.md, "Reply"): a transaction with version vector c is
released when c_i <= w_i for every shard i. The queue is keyed on this
shard's component (the one that moves fastest); entries whose own component
is covered but that still wait on another shard move to a short list that is
rechecked whenever any watermark moves.
"""

from __future__ import annotations

import heapq
from typing import Any


def covers(watermark: list[int], deps: tuple[int, ...]) -> bool:
    for d, w in zip(deps, watermark):
        if d > w:
            return False
    return True


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

    def released(self, watermark: list[int]) -> list[Any]:
        out: list[Any] = []
        heap = self._heap
        own_w = watermark[self.own]
        while heap and heap[0][0] <= own_w:
            _, _, deps, token = heapq.heappop(heap)
            if covers(watermark, deps):
                out.append(token)
            else:
                self._remote.append((deps, token))
        if self._remote:
            still = []
            for deps, token in self._remote:
                if covers(watermark, deps):
                    out.append(token)
                else:
                    still.append((deps, token))
            self._remote = still
        return out

    def drain(self) -> list[Any]:
        """Everything still held (the leader lost its role: none of it will be covered here)."""
        out = [entry[3] for entry in self._heap] + [token for _, token in self._remote]
        self._heap = []
        self._remote = []
        return out
