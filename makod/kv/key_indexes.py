"""A keyspace's two ordered indexes over its keys, made when first needed.

* scan order, by ``(scan_hash(key), key)``: SCAN cursors and RANDOMKEY;
* byte order: stored procedures' range scans, slot moves, SWAPDB.

Neither exists until something asks for it: most workloads never do, and an
index costs memory and a little on every insert and delete. Made at once,
an index of a big keyspace stopped the event loop: the first SCAN after a
restart of a node holding six million keys took 25 s, with every client of
the node waiting and a leader's election timeout (0.8 s) long gone. So a
keyspace of more than ``build_at_once_keys`` keys makes it a slice of
``build_keys_per_step`` keys per tick (``build_step``), and ``ready`` says no
until it is done: a request that needs it waits and is tried again, like
one that meets a locked key, while the node serves everyone else. Past the
lock wait (``txn_timeout_ms``, 2 s) it is answered TRYAGAIN; six million
keys took 65 s of ticks, with GETs answered within 140 ms meanwhile.

Callers that cannot wait in that queue refuse instead: a participant asked
for a range read (or its validation) by another shard's coordinator answers
"indexing" (core/participant.py ``ranges_ready``), and the coordinator
retries the transaction with backoff, then answers TRYAGAIN. A slot move's
EXPORT and DROP wait like a lock. ``scan_index`` and ``order_index`` make
or finish an index at once; every caller asks ``ready`` first, so only a
small keyspace's index is ever made that way.

While an index is being made, writes keep it right: a key inserted goes in
at once (and is remembered, so the slice that reaches it later skips it), a
key deleted comes out if it is in. A slice adds what is still present.
"""

from __future__ import annotations

from typing import Callable

from sortedcontainers import SortedKeyList, SortedList

SCAN = "scan"
ORDER = "order"


class _Build:
    __slots__ = ("todo", "pos", "added")

    def __init__(self, todo: list[bytes]) -> None:
        self.todo = todo  # the keys present when it began, in no order
        self.pos = 0
        self.added: set[bytes] = set()  # inserted since it began: already in


class KeyIndexes:
    # A slice of 5,000 keys takes about 10 ms into a small index, 40 ms into
    # one of six million keys (a 2-core VM): a few ticks' worth at most.
    build_at_once_keys = 50_000
    build_keys_per_step = 5_000

    def __init__(self, data: dict, scan_key: Callable[[bytes], tuple]) -> None:
        self.data = data
        self.scan_key = scan_key
        self.scan: SortedKeyList | None = None
        self.order: SortedList | None = None
        self.building: dict[str, _Build] = {}

    def reset(self, data: dict) -> None:
        """The keyspace's records were replaced (FLUSH, or its undo): no index is right."""
        self.data = data
        self.scan = None
        self.order = None
        self.building = {}

    # -- asking for one --------------------------------------------------------------------
    def ready(self, which: str) -> bool:
        """Whether ``which`` can be used now. A big keyspace's missing index
        starts being made here, a slice per build_step; a small one's is made
        when used."""
        if which in self.building:
            return False
        if getattr(self, which) is not None or len(self.data) <= self.build_at_once_keys:
            return True
        setattr(self, which, self._empty(which))
        self.building[which] = _Build(list(self.data))
        return False

    def scan_index(self) -> SortedKeyList:
        return self._now(SCAN)

    def order_index(self) -> SortedList:
        return self._now(ORDER)

    def _now(self, which: str):
        """The index, whole: made (or finished) now if it is not."""
        build = self.building.get(which)
        if build is not None:
            self._step(which, len(build.todo))
        index = getattr(self, which)
        if index is None:
            index = self._empty(which)
            index.update(self.data)
            setattr(self, which, index)
        return index

    def _empty(self, which: str):
        return SortedKeyList(key=self.scan_key) if which == SCAN else SortedList()

    # -- making one a slice at a time ----------------------------------------------------
    def build_step(self) -> bool:
        """One slice of each index being made; True if one was finished (who waited may go on)."""
        finished = False
        for which in list(self.building):
            finished |= self._step(which, self.build_keys_per_step)
        return finished

    def _step(self, which: str, budget: int) -> bool:
        build = self.building[which]
        index = getattr(self, which)
        data, added = self.data, build.added
        end = min(build.pos + budget, len(build.todo))
        for key in build.todo[build.pos:end]:
            if key in data and key not in added:
                index.add(key)
        build.pos = end
        if end < len(build.todo):
            return False
        del self.building[which]
        assert len(index) == len(data), f"the {which} index holds {len(index)} keys of {len(data)}"
        return True

    # -- writes ------------------------------------------------------------------------------
    def inserted(self, key: bytes) -> None:
        if self.scan is not None:
            self.scan.add(key)
        if self.order is not None:
            self.order.add(key)
        for build in self.building.values():
            build.added.add(key)

    def deleted(self, key: bytes) -> None:
        if self.building:  # a slice may not have reached it yet
            if self.scan is not None:
                self.scan.discard(key)
            if self.order is not None:
                self.order.discard(key)
            return
        if self.scan is not None:
            self.scan.remove(key)
        if self.order is not None:
            self.order.remove(key)
