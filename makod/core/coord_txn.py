"""A cross-shard transaction's state at its coordinator, and the context its
commands run in there (private copies of what was fetched; anything not
fetched yet ends the run). The phases are coordinator.py's."""

from __future__ import annotations

from typing import Any

from makod.core.context import DirectContext, NeedRemote
from makod.kv import dbs
from makod.kv.errors import CommandError
from makod.kv.records import Record

READ, PREPARE, VALIDATE, BACKOFF, INSTALL = 0, 1, 2, 3, 4

KEYSPACE_IN_MULTI = (
    "ERR DBSIZE, KEYS, SCAN, RANDOMKEY, FLUSHDB and FLUSHALL cannot be part of a "
    "transaction that spans shards"
)


class DistTxn:
    __slots__ = (
        "id", "token", "request", "attempt", "phase", "deadline", "pending",
        "fetched", "ranges", "need_keys", "need_ranges",
        "result", "ops_by_shard", "read_deps", "range_deps", "clocks", "epochs", "retry_at", "asked", "read_round",
        "wall_ms", "events", "slots_version", "moving_since", "local_writes", "reserved",
        "waiting_since",
    )

    def __init__(self, txn_id: tuple, token: Any, request: Any) -> None:
        self.id = txn_id
        self.token = token
        self.request = request
        self.attempt = 0
        self.phase = READ
        self.deadline = 0.0
        self.pending: set[int] = set()
        # key -> (record | None, version, deps | None): what we read, at which version.
        self.fetched: dict[bytes, tuple[Record | None, int, tuple | None]] = {}
        # (start, end, limit, reverse) -> {shard: [key, ...] as that shard scanned it}.
        self.ranges: dict[tuple, dict[int, list[bytes]]] = {}
        self.need_keys: set[bytes] = set()
        self.need_ranges: set[tuple] = set()
        self.result: Any = None
        self.ops_by_shard: dict[int, list] = {}
        self.read_deps: tuple = ()
        # What the range reads depend on beyond the keys found (what they missed).
        self.range_deps: tuple = ()
        self.clocks: dict[int, int] = {}
        self.epochs: dict[int, int] = {}
        self.retry_at = 0.0
        self.asked: dict[int, list[tuple]] = {}  # shard -> range specs asked, in order
        self.read_round = 0  # which round of reads the replies must answer
        # The time every run of this transaction sees (a rerun after a fetch
        # must not be observable: TIME in a script, XADD's "*").
        self.wall_ms: int | None = None
        self.events: list | None = None  # keyspace notifications of the run that commits
        # The slot map this attempt routed by (a change aborts it), and since
        # when its attempts have met slots on the move.
        self.slots_version = 0
        self.moving_since: float | None = None
        # The keys the last run wrote at the coordinator's shard, and those
        # of them held for this attempt (coord_reserve.py).
        self.local_writes: list[bytes] = []
        self.reserved: list[bytes] = []
        self.waiting_since: float | None = None  # since when a retry waits for its keys


class ScratchContext(DirectContext):
    """Runs handlers on private copies of fetched records; anything not fetched ends the run."""

    # fetch_local(key) / fetch_local_range(spec): read what our own shard
    # holds right now, so only other shards' keys cost a round (and a rerun).
    __slots__ = ("fetched_keys", "fetched_ranges", "fetch_local", "fetch_local_range", "whole_ranges")

    def _known(self, key: bytes) -> bool:
        """Is this internal key's record (or absence) known to the run? Our own
        shard's keys become known on the spot (fetch_local)."""
        return key in self.fetched_keys or self._in_whole_range(key) or self.fetch_local(key)

    def _get(self, key: bytes) -> Record | None:
        if not self._known(key):
            raise NeedRemote([key])
        return DirectContext._get(self, key)

    def _write(self, op: tuple, key: bytes, prev: Record | None) -> None:
        if key not in self.fetched_keys and not self._in_whole_range(key):
            if not self.fetch_local(key):
                raise NeedRemote([key])
            prev = self.ks.data.get(key)
        DirectContext._write(self, op, key, prev)

    def prefetch(self, keys: list[bytes]) -> None:
        missing = {ik for ik in (dbs.encode(self.db, k) for k in keys) if not self._known(ik)}
        if missing:
            raise NeedRemote(sorted(missing))

    def db_items(self, db: int):
        items = DirectContext.db_items(self, db)
        self.whole_ranges.extend(dbs.spans(db))  # read whole: see _in_whole_range
        return items

    def _in_whole_range(self, key: bytes) -> bool:
        """Is ``key`` in a database this run read whole (SWAPDB)? Then the
        range read told whether it exists (it is absent unless fetched with
        the range), and validating the range re-scans it, so an insert
        meanwhile aborts: no round trip (and rerun) per key written."""
        for start, end in self.whole_ranges:
            if start <= key and (end is None or key < end):
                return True
        return False

    def range(self, start: bytes, end: bytes | None, limit: int | None, reverse: bool):
        spec = (start, end, limit, reverse)
        seen = self.fetched_ranges.get(spec)
        if seen is None:
            seen = self.fetch_local_range(spec)
        if seen is None:
            raise NeedRemote(ranges=[spec])
        # What the owner scanned, plus what this transaction wrote in range.
        keys = set(seen)
        keys.update(k for k in self.ks.data if start <= k and (end is None or k < end))
        out = []
        for key in sorted(keys, reverse=reverse):
            rec = DirectContext._get(self, key)
            if rec is not None:
                out.append((key, rec))
                if limit is not None and len(out) >= limit:
                    break
        return out

    def flush(self) -> None:
        raise CommandError(KEYSPACE_IN_MULTI)

    flush_db = flush
