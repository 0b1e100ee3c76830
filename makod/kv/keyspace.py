"""The in-memory keyspace of one shard replica: records, versions, expiry, indexes.

Pure: no clock (callers pass ``now_ms``), no I/O. Every change goes through
``apply(op, version, deps, undo)``; with an ``undo`` list it records what it
needs to put things back, and ``rollback(undo)`` does so in reverse order.
Rolling back in reverse order is exact even though container values (hashes,
lists, sets, ...) are mutated in place by their types' ops, because every
later change to the same key was itself undone first.
"""

from __future__ import annotations

import heapq
import zlib
from itertools import islice
from typing import Callable, Iterator

from sortedcontainers import SortedKeyList, SortedList

from makod.kv import dbs
from makod.kv.key_indexes import KeyIndexes
from makod.kv.keyspace_dbs import DatabasesMixin
from makod.kv.records import KIND_STRING, OP_DEL, OP_EXPIRE, OP_FLUSH, OP_SET, OPS, VALUE_TYPES, OpSpec, Record, value_from_wire

# Deleted keys remember the version of their deletion, so that WATCH and OCC
# notice "deleted, then re-created, then deleted again". The memory is bounded:
# past this many, the oldest are forgotten and ``absent_floor`` rises to their
# version, which can only make a check fail spuriously, never pass wrongly.
TOMBSTONES_MAX = 100_000

# Undo entry tags.
_U_RECORD = 0  # (tag, key, previous record or None, previous deletion or None)
_U_TYPED = 1  # (tag, record, the op's undo function, its undo token)
_U_META = 2  # (tag, key, record, version, deps, expire_ms)
_U_FLUSH = 3  # (tag, data, tombstones, absent_floor, expires_count, deletion deps, absent_deps)


def scan_hash(key: bytes) -> int:
    """A stable 56-bit position for SCAN cursors (the same on every replica and restart)."""
    h = (zlib.crc32(key) << 24) | (zlib.crc32(key, 0x5BD1E995) & 0xFFFFFF)
    return h or 1


def _scan_order(key: bytes) -> tuple[int, bytes]:
    return scan_hash(key), key


class Keyspace(DatabasesMixin):
    """Records by key, and what absence means.

    A key that is absent was deleted (``tombstones``: the deleting version),
    flushed (``absent_floor``) or never written. A deletion or FLUSH by a
    transaction that is not final yet leaves its dependency vector behind
    (``deletion_deps``, ``absent_deps``), like a record's ``deps``: whoever
    reads the absence, or writes over it, depends on that transaction, so
    that rolling it back (which brings the old value back) takes them along.
    """

    def __init__(self) -> None:
        self.data: dict[bytes, Record] = {}
        self.tombstones: dict[bytes, int] = {}
        self.deletion_deps: dict[bytes, tuple[int, ...]] = {}  # speculative deletions only
        self.absent_deps: tuple[int, ...] | None = None  # a speculative FLUSH's
        self.absent_floor = 0
        self.expires_count = 0
        self._expiry_heap: list[tuple[int, bytes]] = []
        self.indexes = KeyIndexes(self.data, _scan_order)
        # Keys that begin with dbs.MARK (databases other than 0, and 0's
        # escaped keys), by database: DBSIZE, KEYS and FLUSHDB of a numbered
        # database cost what that database holds, not the whole keyspace.
        self.marked: dict[int, set[bytes]] = {}
        self.marked_count = 0
        # INFO's keyspace_hits/misses: lookups by read-only commands run here.
        self.hits = 0
        self.misses = 0

    def reset_lookup_stats(self) -> None:
        self.hits = self.misses = 0

    @classmethod
    def from_records(cls, items) -> "Keyspace":
        """A keyspace holding ``(key, record)`` pairs, as loaded from storage."""
        ks = cls()
        data = ks.data
        heap = ks._expiry_heap
        for key, rec in items:
            data[key] = rec
            if key[:1] == dbs.MARK:
                ks._mark(key)
            if rec.expire_ms is not None:
                ks.expires_count += 1
                heap.append((rec.expire_ms, key))
        heapq.heapify(heap)
        return ks

    # -- reads -------------------------------------------------------------
    def get(self, key: bytes) -> Record | None:
        return self.data.get(key)

    def version_of(self, key: bytes) -> int:
        rec = self.data.get(key)
        if rec is not None:
            return rec.version
        return self.tombstones.get(key, self.absent_floor)

    def absence_deps(self, key: bytes) -> tuple[int, ...] | None:
        """What the absence of ``key`` depends on (None: nothing speculative)."""
        deps = self.deletion_deps.get(key)
        if deps is not None or key in self.tombstones:
            return deps
        return self.absent_deps

    def stamp(self, keys, version: int, deps: tuple[int, ...], flushed: bool) -> None:
        """A transaction at ``version`` wrote ``keys``: what it left on them (records,
        deletions, a FLUSH's absence) depends on its final vector ``deps``."""
        data = self.data
        for key in keys:
            rec = data.get(key)
            if rec is not None:
                if rec.version == version:
                    rec.deps = deps
            elif self.tombstones.get(key) == version:
                self.deletion_deps[key] = deps
        if flushed and self.absent_floor == version:
            self.absent_deps = deps

    def finalize(self, key: bytes, version: int) -> None:
        """The transaction at ``version`` is final: what it left on ``key`` no longer
        depends on anything."""
        rec = self.data.get(key)
        if rec is not None:
            if rec.version == version:
                rec.deps = None
        elif self.tombstones.get(key) == version:
            self.deletion_deps.pop(key, None)

    def finalize_flush(self, version: int) -> None:
        if self.absent_floor == version:
            self.absent_deps = None

    def __len__(self) -> int:
        return len(self.data)

    def items(self) -> Iterator[tuple[bytes, Record]]:
        return iter(self.data.items())

    # -- the one write path --------------------------------------------------
    def apply(
        self,
        op: tuple,
        version: int,
        deps: tuple[int, ...] | None,
        undo: list | None = None,
    ) -> bool:
        """Carry out one op at ``version``; True when it removed its key (a typed op
        that emptied the value: the context logs that as a DEL)."""
        code = op[0]
        data = self.data
        if code == OP_SET:
            key = op[1]
            prev = data.get(key)
            if undo is not None:
                undo.append((_U_RECORD, key, prev, self._deletion(key, prev)))
            kind = op[2]
            # The op holds the value's wire form; the record gets its own
            # value object (containers are mutated in place later).
            value = op[3] if kind == KIND_STRING else value_from_wire(kind, op[3])
            self._replace(key, prev, Record(kind, value, op[4], version, deps))
        elif code == OP_DEL:
            key = op[1]
            prev = data.get(key)
            if prev is not None:
                if undo is not None:
                    undo.append((_U_RECORD, key, prev, None))
                self._replace(key, prev, None)
                self._remember_deletion(key, version, deps)
        elif code == OP_EXPIRE:
            key = op[1]
            rec = data.get(key)
            if rec is None:
                return
            if undo is not None:
                undo.append((_U_META, key, rec, rec.version, rec.deps, rec.expire_ms))
            self._set_expire(key, rec, op[2])
            rec.version = version
            rec.deps = deps
        elif code == OP_FLUSH:
            if undo is not None:
                undo.append((
                    _U_FLUSH, self.data, self.tombstones, self.absent_floor, self.expires_count,
                    self.deletion_deps, self.absent_deps,
                ))
            self.data = {}
            self.tombstones = {}
            self.deletion_deps = {}
            self.absent_floor = max(self.absent_floor, version)
            self.absent_deps = deps
            self.expires_count = 0
            self._expiry_heap = []
            self.indexes.reset(self.data)
            self.marked = {}
            self.marked_count = 0
        else:
            spec = OPS.get(code)
            if spec is None:
                raise AssertionError(f"unknown op code {code}")
            return self._apply_typed(spec, op, version, deps, undo)
        return False

    def _apply_typed(
        self, spec: OpSpec, op: tuple, version: int, deps: tuple[int, ...] | None, undo: list | None
    ) -> bool:
        """A data type's op on one key; True when it emptied the value and the key went."""
        key = op[1]
        data = self.data
        rec = data.get(key)
        if rec is None or rec.kind != spec.kind:
            if rec is None and not spec.creates:
                return False
            # Absent (or, only when replaying over a newer checkpoint, another
            # kind): start from an empty value. Undoing restores ``rec``.
            if undo is not None:
                undo.append((_U_RECORD, key, rec, self._deletion(key, rec)))
            new = Record(spec.kind, VALUE_TYPES[spec.kind].empty(), None, version, deps)
            self._replace(key, rec, new)
            rec = new
            spec.apply(rec.value, op)
        else:
            if undo is not None:
                undo.append((_U_META, key, rec, rec.version, rec.deps, rec.expire_ms))
                undo.append((_U_TYPED, rec, spec.undo, spec.apply(rec.value, op)))
            else:
                spec.apply(rec.value, op)
            rec.version = version
            rec.deps = deps
        if VALUE_TYPES[spec.kind].size(rec.value) == 0:
            if undo is not None:
                undo.append((_U_RECORD, key, rec, None))
            self._replace(key, rec, None)
            self._remember_deletion(key, version, deps)
            return True
        return False

    def rollback(self, undo: list) -> None:
        """Undo, newest first, what ``apply`` recorded in ``undo``."""
        for entry in reversed(undo):
            tag = entry[0]
            if tag == _U_RECORD:
                key, prev = entry[1], entry[2]
                self._replace(key, self.data.get(key), prev)
                if prev is None:
                    self._restore_deletion(key, entry[3])
                else:
                    self.tombstones.pop(key, None)
                    self.deletion_deps.pop(key, None)
            elif tag == _U_TYPED:
                entry[2](entry[1].value, entry[3])
            elif tag == _U_META:
                key, rec = entry[1], entry[2]
                rec.version, rec.deps = entry[3], entry[4]
                if rec.expire_ms != entry[5]:
                    if self.data.get(key) is rec:
                        self._set_expire(key, rec, entry[5])
                    else:
                        # Detached now; _replace counts it when an older undo
                        # entry re-attaches it.
                        rec.expire_ms = entry[5]
            elif tag == _U_FLUSH:
                (
                    self.data, self.tombstones, self.absent_floor, self.expires_count,
                    self.deletion_deps, self.absent_deps,
                ) = entry[1:7]
                self._expiry_heap = [
                    (rec.expire_ms, key) for key, rec in self.data.items() if rec.expire_ms is not None
                ]
                heapq.heapify(self._expiry_heap)
                self.indexes.reset(self.data)
                self.marked = {}
                self.marked_count = 0
                for key in self.data:
                    if key[:1] == dbs.MARK:
                        self._mark(key)
        undo.clear()

    # -- expiry --------------------------------------------------------------
    def expired_keys(self, now_ms: int, limit: int) -> list[bytes]:
        """Up to ``limit`` keys whose expiry time has passed (active expiry).

        The leader turns these into replicated deletes; nothing here deletes.
        """
        heap = self._expiry_heap
        found: list[bytes] = []
        seen: set[bytes] = set()
        while heap and heap[0][0] <= now_ms and len(found) < limit:
            expire_ms, key = heapq.heappop(heap)
            rec = self.data.get(key)
            if rec is not None and rec.expire_ms == expire_ms and key not in seen:
                found.append(key)
                seen.add(key)
        # Stale heap entries (keys whose TTL changed) are dropped above as they
        # surface; rebuild when they dominate so the heap stays bounded.
        if len(heap) > 2 * self.expires_count + 1024:
            self._expiry_heap = [
                (rec.expire_ms, key) for key, rec in self.data.items() if rec.expire_ms is not None
            ]
            heapq.heapify(self._expiry_heap)
        # Keys found but not yet deleted must be findable again next time.
        for key in found:
            heapq.heappush(self._expiry_heap, (self.data[key].expire_ms, key))
        return found

    # -- whole-keyspace reads ------------------------------------------------
    def keys_matching(self, matcher: Callable[[bytes], bool] | None) -> list[bytes]:
        if matcher is None:
            return list(self.data)
        return [key for key in self.data if matcher(key)]

    def scan(
        self,
        cursor: int,
        count: int,
        matcher: Callable[[bytes], bool] | None,
        kind: int | None,
    ) -> tuple[int, list[bytes]]:
        """One SCAN step in stable hash order; cursor 0 starts and ends a scan.

        A key present for the whole scan is returned at least once: positions
        are hashes of keys, so inserts and deletes never shift them.
        """
        index = self._scan_idx()
        pos = index.bisect_key_left((cursor, b""))
        end = len(index)
        found: list[bytes] = []
        examined = 0
        data = self.data
        while pos < end and examined < count:
            key = index[pos]
            pos += 1
            examined += 1
            if matcher is not None and not matcher(key):
                continue
            if kind is not None and data[key].kind != kind:
                continue
            found.append(key)
        if pos >= end:
            return 0, found
        next_cursor = scan_hash(index[pos])
        if next_cursor == cursor:
            # A hash shared by more keys than COUNT: finish that group now.
            while pos < end and scan_hash(index[pos]) == cursor:
                key = index[pos]
                pos += 1
                if (matcher is None or matcher(key)) and (kind is None or data[key].kind == kind):
                    found.append(key)
            next_cursor = 0 if pos >= end else scan_hash(index[pos])
        return next_cursor, found

    def random_key(self, randrange: Callable[[int], int]) -> bytes | None:
        if not self.data:
            return None
        index = self._scan_idx()
        return index[randrange(len(index))]

    def range_iter(self, start: bytes, end: bytes | None, reverse: bool = False, limit: int | None = None):
        """Keys k with start <= k < end in byte order; the caller may delete keys meanwhile.

        Keys come in chunks (each a fresh index lookup past the last key
        given), growing from about ``limit``: "the oldest row" reads a few
        keys, not the whole range.
        """
        index = self._order_idx()
        chunk = max(8, 2 * limit) if limit is not None else 1 << 62
        last: bytes | None = None
        while True:
            if last is None:
                lo, hi, inc = start, end, (True, False)
            elif reverse:
                lo, hi, inc = start, last, (True, False)
            else:
                lo, hi, inc = last, end, (False, False)
            if hi is None:
                it = index.irange(minimum=lo, inclusive=(inc[0], True), reverse=reverse)
            else:
                it = index.irange(minimum=lo, maximum=hi, inclusive=inc, reverse=reverse)
            keys = list(islice(it, chunk))
            yield from keys
            if len(keys) < chunk:
                return
            last = keys[-1]
            chunk *= 4

    def range_keys(
        self, start: bytes, end: bytes | None, reverse: bool = False, limit: int | None = None
    ) -> list[bytes]:
        """Keys k with start <= k < end in byte order (stored procedures' range scans)."""
        index = self._order_idx()
        if end is None:
            it = index.irange(minimum=start, reverse=reverse)
        else:
            it = index.irange(minimum=start, maximum=end, inclusive=(True, False), reverse=reverse)
        if limit is None:
            return list(it)
        out = []
        for key in it:
            out.append(key)
            if len(out) >= limit:
                break
        return out

    # -- internals -------------------------------------------------------------
    def _replace(self, key: bytes, prev: Record | None, new: Record | None) -> None:
        """Point ``key`` at ``new`` (None deletes), keeping counts and indexes right."""
        if prev is not None and prev.expire_ms is not None:
            self.expires_count -= 1
        if new is None:
            if prev is not None:
                del self.data[key]
                if key[:1] == dbs.MARK:
                    self._unmark(key)
                self.indexes.deleted(key)
            return
        self.data[key] = new
        if prev is None:
            self.tombstones.pop(key, None)
            self.deletion_deps.pop(key, None)
            if key[:1] == dbs.MARK:
                self._mark(key)
            self.indexes.inserted(key)
        if new.expire_ms is not None:
            self.expires_count += 1
            heapq.heappush(self._expiry_heap, (new.expire_ms, key))

    def _set_expire(self, key: bytes, rec: Record, expire_ms: int | None) -> None:
        if rec.expire_ms is not None:
            self.expires_count -= 1
        rec.expire_ms = expire_ms
        if expire_ms is not None:
            self.expires_count += 1
            heapq.heappush(self._expiry_heap, (expire_ms, key))

    def _deletion(self, key: bytes, rec: Record | None) -> tuple[int, tuple | None] | None:
        """What the undo of a write over ``key`` must restore of its absence."""
        if rec is not None or key not in self.tombstones:
            return None
        return self.tombstones[key], self.deletion_deps.get(key)

    def _restore_deletion(self, key: bytes, deletion: tuple[int, tuple | None] | None) -> None:
        if deletion is None:
            self.tombstones.pop(key, None)
            self.deletion_deps.pop(key, None)
            return
        version, deps = deletion
        self.tombstones[key] = version
        if deps is None:
            self.deletion_deps.pop(key, None)
        else:
            self.deletion_deps[key] = deps

    def _remember_deletion(self, key: bytes, version: int, deps: tuple[int, ...] | None) -> None:
        tombstones = self.tombstones
        tombstones.pop(key, None)  # re-inserted last: the oldest deletions come first
        tombstones[key] = version
        if deps is None:
            self.deletion_deps.pop(key, None)
        else:
            self.deletion_deps[key] = deps
        if len(tombstones) > TOMBSTONES_MAX:
            # Forget the oldest version; a speculative deletion keeps its
            # dependency (deletion_deps) until it is final or undone.
            oldest = next(iter(tombstones))
            self.absent_floor = max(self.absent_floor, tombstones.pop(oldest))

    def _mark(self, key: bytes) -> None:
        self.marked.setdefault(dbs.db_of(key), set()).add(key)
        self.marked_count += 1

    def _unmark(self, key: bytes) -> None:
        # A coordinator's scratch keyspace is filled through ``data`` directly:
        # a key may be missing here.
        keys = self.marked.get(dbs.db_of(key))
        if keys is not None and key in keys:
            keys.remove(key)
            self.marked_count -= 1

    def _scan_idx(self) -> SortedKeyList:
        return self.indexes.scan_index()

    def _order_idx(self) -> SortedList:
        return self.indexes.order_index()



# The typed ops a keyspace applies are registered by the data type modules:
# whoever holds a keyspace (a replica replaying its log, a storage test) must
# have them, not only the processes that serve commands.
import makod.kv.types  # noqa: E402,F401
