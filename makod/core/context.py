"""DirectContext: run command handlers against the leader's own keyspace.

A transaction that touches only the local shard runs start to finish inside
one call on the leader (the event loop never interleaves two), so it needs no
locks and no validation: it reads, writes through ops, and is installed the
moment it returns. What it leaves behind:

* ``ops``: the mutations, in order, for the replication log;
* ``undo``: how to take them back (a deposed leader, an epoch rollback, or a
  transaction that must abort part way);
* ``deps``: the version vector its reply must wait for, the element-wise max
  of its own clock and the ``deps`` of every record it read or overwrote,
  and of every speculative deletion whose absence it read or wrote over.
"""

from __future__ import annotations

import random
from typing import Any, Callable

from makod.core.slot_table import TABLE_KEY
from makod.kv import dbs
from makod.kv.key_indexes import ORDER as ORDER_INDEX
from makod.kv.key_indexes import SCAN as SCAN_INDEX
from makod.kv.keyspace import Keyspace
from makod.kv.records import KIND_STRING, OP_DEL, OP_EXPIRE, OP_FLUSH, OP_SET, Record, value_to_wire


class KeyLocked(Exception):
    """A key is locked by a cross-shard transaction being certified: retry later."""


class IndexBuilding(KeyLocked):
    """The keyspace is still making the ordered index this read needs, a slice
    per tick (kv/key_indexes.py): the request waits and is tried again, as
    when it meets a locked key."""


class SlotsMoving(Exception):
    """A whole-keyspace command met a slot of this shard on the move: the run
    is undone and the request waits for the move's next step (routing.py)."""


class NeedRemote(Exception):
    """The transaction touched a key (or range) this replica does not own."""

    def __init__(self, keys: list[bytes] | None = None, ranges: list[tuple] | None = None) -> None:
        super().__init__(keys, ranges)
        self.keys = keys or []
        self.ranges = ranges or []


class DependencyInDoubt(KeyLocked):
    """Joining two dependencies on different epochs of one shard while the
    older one's fate is unknown: a vector holds one clock per shard, so the
    newer would hide the older (and a rollback of it). Retry once decided."""


EPOCH_SHIFT = 32
_MARK = dbs.MARK


def _same_length(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A vector made before a shard was added (makoctl cluster add-shard) is
    shorter: the shards it does not name are zero."""
    n = max(len(a), len(b))
    return a + (0,) * (n - len(a)), b + (0,) * (n - len(b))


def vec_max(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """Element-wise max, for vectors known to share epochs (or with no judge at hand)."""
    if a is b:
        return a
    if len(a) != len(b):
        a, b = _same_length(a, b)
    return tuple(map(max, a, b))


def vec_join(a: tuple[int, ...], b: tuple[int, ...], wm: Any) -> tuple[int, ...]:
    """Element-wise max that refuses to let a newer epoch's clock hide an older
    epoch's dependency that is not yet known to survive (see DependencyInDoubt)."""
    if a is b:
        return a
    if len(a) != len(b):
        a, b = _same_length(a, b)
    out = []
    for shard, (x, y) in enumerate(zip(a, b)):
        if x and y and (x ^ y) >> EPOCH_SHIFT:
            older = x if x < y else y
            if wm is None or wm.component(shard, older) != 1:  # 1 == watermark.COVERED
                raise DependencyInDoubt(shard)
        out.append(x if x > y else y)
    return tuple(out)


class DirectContext:
    __slots__ = (
        "proto_max_bulk_len",
        "max_txn_bytes",
        "count_lookups",
        "ks",
        "now_ms",
        "rng",
        "version",
        "ops",
        "undo",
        "deps",
        "all_deps",
        "matcher_factory",
        "written",
        "own_deps",
        "before_write",
        "captured",
        "has_flush",
        "locks",
        "owns",
        "wm",
        "range_local",
        "may_block",
        "db",
        "databases",
        "expired",
        "home_tag",
        "events",
        "slot_map",
    )

    def __init__(
        self,
        ks: Keyspace,
        version: int,
        own_deps: tuple[int, ...],
        all_deps: tuple[int, ...] | Callable[[], tuple[int, ...]],
        now_ms: int,
        rng: random.Random,
        matcher_factory: Callable[[bytes], Callable[[bytes], bool]] | None = None,
        before_write: Callable[[bytes, set], None] | None = None,
        locks: dict | None = None,
        owns: Callable[[bytes], bool] | None = None,
        wm: Any = None,
    ) -> None:
        self.ks = ks
        self.version = version
        # own_deps: this transaction's own clock vector (``version`` at this
        # shard's position); it joins ``deps`` only if the transaction writes.
        self.own_deps = own_deps
        self.deps = tuple(0 for _ in own_deps)
        # What a whole-keyspace or range read depends on: every transaction
        # installed here and not yet final (what it did not see matters too).
        # A function, since few requests need it and it costs more than a lookup.
        self.all_deps = all_deps if callable(all_deps) else (lambda: all_deps)
        self.before_write = before_write
        self.count_lookups = False  # a read-only command runs: count keyspace hits and misses
        self.captured: set[bytes] = set()
        self.has_flush = False
        self.proto_max_bulk_len = 512 * 1024 * 1024
        # A replica's bound on what one transaction writes (config.py): a
        # command that would build a bigger value fails before it does.
        self.max_txn_bytes = 1 << 62
        # Keys locked by cross-shard transactions in certification: touching
        # one aborts this execution (no waiting), and it is retried later.
        self.locks = locks
        # When set, a key this replica does not own ends the run (NeedRemote).
        self.owns = owns
        self.wm = wm  # judges dependencies on ended epochs (vec_join)
        # With ``owns``: is a range wholly on this shard? (else NeedRemote)
        self.range_local: Callable[[bytes, bytes | None], bool] | None = None
        # The node's slot map (core/slots.py; None: one shard, or Luigi).
        # Whole-keyspace commands ask it first: while a slot of this shard is
        # moving they would see or change half of a move. MAKO SLOTS reads it.
        self.slot_map: Any = None
        # A blocking command may answer Blocked (its session retries it) only
        # when it runs alone: inside MULTI it answers at once, as in Redis.
        self.may_block = False
        # The numbered database (kv/dbs.py) the handler's keys are in: every
        # method taking a key maps it to its internal key here, and nowhere
        # else; the ops logged carry internal keys. Handlers that reach
        # another database (MOVE, COPY ... DB, SWAPDB) switch it and back.
        self.db = 0
        self.databases = 16
        self.now_ms = now_ms
        self.rng = rng
        self.matcher_factory = matcher_factory
        self.ops: list[tuple] = []
        self.undo: list = []
        self.written: set[bytes] = set()
        # Keys this run deleted only because they had expired (a read's side
        # effect: Luigi lets a run that declared a key read-only do that).
        self.expired: set[bytes] = set()
        # A hash tag ("{fn3}") whose keys live on the shard this runs on:
        # where its copy of the FUNCTION libraries is (kv/scripting/library_store.py).
        self.home_tag = b"{fn}"
        # Keyspace notifications this run raises (kv/notify.py), or None
        # when no one asked for them (notify-keyspace-events is empty).
        self.events: list | None = None

    # -- reads -----------------------------------------------------------------
    def get(self, key: bytes) -> Record | None:
        if self.db or key[:1] == _MARK:  # else the internal key is the key (the usual case)
            key = dbs.encode(self.db, key)
        rec = self._get(key)
        if self.count_lookups:
            if rec is None:
                self.ks.misses += 1
            else:
                self.ks.hits += 1
        return rec

    def _get(self, key: bytes) -> Record | None:
        """The record of an internal key (lazy expiry applied)."""
        if self.locks and key in self.locks:
            raise KeyLocked(key)
        if self.owns is not None and not self.owns(key):
            raise NeedRemote([key])
        rec = self.ks.data.get(key)
        if rec is None:
            # Reading an absence depends on whoever made it, like reading a value.
            gone = self.ks.absence_deps(key)
            if gone is not None and gone is not self.deps:
                self.deps = vec_join(self.deps, gone, self.wm)
            return None
        if rec.expire_ms is not None and rec.expire_ms <= self.now_ms:
            self._write((OP_DEL, key), key, rec)
            self.expired.add(key)
            return None
        if rec.deps is not None and rec.deps is not self.deps:
            self.deps = vec_join(self.deps, rec.deps, self.wm)
        return rec

    def prefetch(self, keys: list[bytes]) -> None:
        """The run is about to read ``keys`` (SORT's BY/GET keys, named by data).
        If some live on other shards, say so for all of them at once: the
        coordinator then fetches them in one round, not one round (and one
        rerun of the whole command) per key."""
        if self.owns is None:
            return
        missing = {ik for ik in (dbs.encode(self.db, k) for k in keys) if not self.owns(ik)}
        if missing:
            raise NeedRemote(sorted(missing))

    def version_of(self, key: bytes) -> int:
        key = dbs.encode(self.db, key)
        self._get(key)  # applies lazy expiry first, so an expired key reads as deleted
        if self.slot_map is not None:
            return self.ks.version_of(key) | self.slot_map.tag_of(key)
        return self.ks.version_of(key)

    # -- writes ----------------------------------------------------------------
    def set(
        self, key: bytes, kind: int, value: Any, expire_ms: int | None = None, packed: bytes | None = None
    ) -> None:
        """``packed``: the value's msgpack bytes, if the caller has them (Record.packed)."""
        if kind != KIND_STRING:
            value = value_to_wire(kind, value)  # a copy: the log must not alias a live value
        if self.db or key[:1] == _MARK:
            key = dbs.encode(self.db, key)
        self._write((OP_SET, key, kind, value, expire_ms), key, self.ks.data.get(key))
        if packed is not None:
            self.ks.data[key].packed = packed

    def delete(self, key: bytes) -> bool:
        return self._delete(dbs.encode(self.db, key))

    def _delete(self, key: bytes) -> bool:
        rec = self._get(key)
        if rec is None:
            return False
        self._write((OP_DEL, key), key, rec)
        return True

    def write(self, op: tuple) -> None:
        """A data type's op on the key ``op[1]`` (the handler checked the type)."""
        key = dbs.encode(self.db, op[1])
        if key is not op[1]:
            op = (op[0], key) + op[2:]
        self._write(op, key, self._get(key))

    def set_expire(self, key: bytes, expire_ms: int | None) -> bool:
        key = dbs.encode(self.db, key)
        rec = self._get(key)
        if rec is None:
            return False
        self._write((OP_EXPIRE, key, expire_ms), key, rec)
        return True

    def flush(self) -> None:
        """FLUSHALL: every database (but the shard's slot table, written back)."""
        self._whole_keyspace()
        table = self.ks.data.get(TABLE_KEY)
        self.deps = vec_join(self.deps, self.all_deps(), self.wm)
        self.has_flush = True
        self.ops.append((OP_FLUSH,))
        self.ks.apply((OP_FLUSH,), self.version, self.deps, self.undo)
        if table is not None:
            op = (OP_SET, TABLE_KEY, table.kind, value_to_wire(table.kind, table.value), None)
            self._write(op, TABLE_KEY, None)

    def flush_db(self) -> None:
        """FLUSHDB: the selected database. One FLUSH op when it holds every key
        here (the usual case: only database 0 in use), else a DEL per key."""
        self._whole_keyspace()
        if self.ks.only_db(self.db):
            self.flush()
            return
        self.deps = vec_join(self.deps, self.all_deps(), self.wm)
        for key in self.ks.db_keys(self.db):
            self._delete(key)

    # -- whole keyspace (the selected database) ------------------------------------
    def _whole_keyspace(self, start: bytes = b"", end: bytes | None = None) -> None:
        if self.slot_map is not None and not self.slot_map.guard_range(start, end):
            raise SlotsMoving()

    def dbsize(self) -> int:
        self._whole_keyspace()
        self.deps = vec_join(self.deps, self.all_deps(), self.wm)
        return self.ks.db_size(self.db)

    def keys(self, pattern: bytes) -> list[bytes]:
        self._whole_keyspace()
        self.deps = vec_join(self.deps, self.all_deps(), self.wm)
        matcher = self._matcher(pattern)
        found = []
        for key in self.ks.db_keys(self.db):
            user = dbs.user_key(key)
            if (matcher is None or matcher(user)) and self._alive(key):
                found.append(user)
        return found

    def scan(
        self, cursor: int, count: int, pattern: bytes | None, kind: int | None
    ) -> tuple[int, list[bytes]]:
        self._whole_keyspace()
        self.deps = vec_join(self.deps, self.all_deps(), self.wm)
        user_matcher = self._matcher(pattern) if pattern is not None else None
        db = self.db
        if db == 0 and not self.ks.marked_count and user_matcher is None:
            matcher = None
        else:
            def matcher(key: bytes) -> bool:
                owner, user = dbs.decode(key)
                return owner == db and (user_matcher is None or user_matcher(user))
        if not self.ks.indexes.ready(SCAN_INDEX):
            raise IndexBuilding()
        next_cursor, found = self.ks.scan(cursor, count, matcher, kind)
        return next_cursor, [dbs.user_key(key) for key in found if self._alive(key)]

    def db_items(self, db: int) -> list[tuple[bytes, Record]]:
        """Every live (user key, record) of database ``db``, as range reads (so
        a cross-shard transaction fetches and validates them: SWAPDB)."""
        out = []
        for start, end in dbs.spans(db):
            out.extend((dbs.user_key(key), rec) for key, rec in self.range(start, end, None, False))
        return out

    def range(
        self, start: bytes, end: bytes | None, limit: int | None, reverse: bool
    ) -> list[tuple[bytes, Record]]:
        """Live records with start <= key < end in key order, at most ``limit``.

        What a scan did not see (a key deleted by a transaction not yet
        replicated) matters as much as what it saw, so a scan depends on
        everything installed on this shard, like a whole-keyspace read.
        """
        if self.range_local is not None and not self.range_local(start, end):
            raise NeedRemote(ranges=[(start, end, limit, reverse)])
        if not self.ks.indexes.ready(ORDER_INDEX):
            raise IndexBuilding()
        self._whole_keyspace(start, end)
        self.deps = vec_join(self.deps, self.all_deps(), self.wm)
        out: list[tuple[bytes, Record]] = []
        for key in self.ks.range_iter(start, end, reverse, limit):
            rec = self._get(key)
            if rec is not None:
                out.append((key, rec))
                if limit is not None and len(out) >= limit:
                    break
        return out

    def random_key(self) -> bytes | None:
        self._whole_keyspace()
        self.deps = vec_join(self.deps, self.all_deps(), self.wm)
        db = self.db
        if db != 0 or self.ks.marked_count:
            keys = self.ks.db_keys(db)
            while keys:
                key = keys.pop(self.rng.randrange(len(keys)))
                if self._alive(key):
                    return dbs.user_key(key)
            return None
        if not self.ks.indexes.ready(SCAN_INDEX):
            raise IndexBuilding()
        # A few tries past expired keys, as Redis's dbRandomKey does.
        for _ in range(100):
            key = self.ks.random_key(self.rng.randrange)
            if key is None or self._alive(key):
                return key
        return None

    def randrange(self, n: int) -> int:
        return self.rng.randrange(n)

    # -- internals -----------------------------------------------------------------
    def _alive(self, key: bytes) -> bool:
        return self._get(key) is not None

    def _matcher(self, pattern: bytes) -> Callable[[bytes], bool] | None:
        if pattern == b"*":
            return None
        assert self.matcher_factory is not None, "pattern matching needs a matcher factory"
        return self.matcher_factory(pattern)

    def _write(self, op: tuple, key: bytes, prev: Record | None) -> None:
        if self.locks and key in self.locks:
            raise KeyLocked(key)
        if self.owns is not None and not self.owns(key):
            raise NeedRemote([key])
        # Overwriting a record depends on it too: rolling this transaction
        # back restores ``prev``, which is only right if prev's writer stands.
        # Writing over an absence depends on the deletion (or FLUSH) likewise.
        if prev is not None:
            if prev.deps is not None:
                self.deps = vec_join(self.deps, prev.deps, self.wm)
        else:
            gone = self.ks.absence_deps(key)
            if gone is not None:
                self.deps = vec_join(self.deps, gone, self.wm)
        if self.before_write is not None:
            self.before_write(key, self.captured)
        self.ops.append(op)
        self.written.add(key)
        if self.ks.apply(op, self.version, self.deps, self.undo):
            # The op emptied the value and the key went: the log says DEL, so
            # that a replica replaying over a newer checkpoint (where the op
            # may meet another value) still ends with the key gone.
            self.ops[-1] = (OP_DEL, key)

    def finish(self) -> tuple[int, ...]:
        """Stamp the final dependency vector on everything written (and deleted,
        and flushed); return it.

        A transaction that wrote depends on its own clock too; a read-only one
        depends only on what it read.
        """
        if not self.ops:
            return self.deps
        deps = self.deps = vec_join(self.deps, self.own_deps, self.wm)
        self.ks.stamp(self.written, self.version, deps, self.has_flush)
        return deps
