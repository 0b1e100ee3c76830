"""What the next checkpoint must write: the committed image of changed keys.

A leader's memory holds speculative writes (installed, not yet chosen) on top
of the committed state, while a checkpoint may only persist committed state.
For each key that has speculative writers, ``shadow`` keeps its committed
image: captured just before the first speculative write, rolled forward by
replaying each writer's ops as that writer commits, dropped when the last
writer commits (memory is then the committed image again). Checkpoints thus
never wait for the leader to go quiet, and a key rewritten by every batch is
still persisted.
"""

from __future__ import annotations

from makod.kv.keyspace import Keyspace
from makod.kv.records import OP_FLUSH, Record, clone_value


def clone(rec: Record | None) -> Record | None:
    if rec is None:
        return None
    return Record(rec.kind, clone_value(rec.kind, rec.value), rec.expire_ms, rec.version, None)


class Checkpoint:
    """What changed since the last checkpoint, up to ``applied_slot``.

    ``keys`` are the keys to write; ``value_of(key)`` gives a key's committed
    record (None: delete it) at the moment it is called. Writers may call it
    later than the checkpoint was taken (a big one is written in parts): the
    value is then committed but possibly newer, which replaying the log from
    ``applied_slot`` tolerates (every op assigns; none adjusts).
    """

    __slots__ = ("applied_slot", "clock", "keys", "value_of", "flush", "marks", "records_put", "records_del")

    def __init__(
        self,
        applied_slot: int,
        clock: int,
        keys: list,
        value_of,
        flush: bool,
        marks: list | None = None,
    ) -> None:
        self.applied_slot = applied_slot
        self.clock = clock
        self.keys = keys
        self.value_of = value_of
        self.flush = flush  # clear the stored state before writing the keys
        # What the shard's log said of its epochs (replica.marks()): verdicts
        # on ended epochs must outlive the log entries that carried them.
        self.marks = marks
        # Coordinator records added and evicted since the last checkpoint
        # (coord_records.py), encoded: [(key, value)] and [key].
        self.records_put: list[tuple[bytes, bytes]] = []
        self.records_del: list[bytes] = []


class CheckpointTracker:
    def __init__(self, ks: Keyspace) -> None:
        self.ks = ks
        self.spec_writers: dict[bytes, int] = {}
        self.shadow: dict[bytes, Record | None] = {}
        self.spec_flushes = 0
        self.dirty: set[bytes] = set()
        self.flush_committed = False

    # -- speculative lifecycle (leader) ------------------------------------------------
    def before_write(self, key: bytes, captured: set[bytes]) -> None:
        """Hook called by the execution context before it changes ``key``."""
        if key not in self.spec_writers and key not in self.shadow:
            self.shadow[key] = clone(self.ks.data.get(key))
            captured.add(key)

    def installed(self, keys: set[bytes], has_flush: bool) -> None:
        writers = self.spec_writers
        for key in keys:
            writers[key] = writers.get(key, 0) + 1
        if has_flush:
            self.spec_flushes += 1

    def aborted(self, captured: set[bytes]) -> None:
        """A transaction was rolled back before it was installed."""
        for key in captured:
            if key not in self.spec_writers:
                self.shadow.pop(key, None)

    def committed_own(self, version: int, keys: set[bytes], ops: list[tuple], has_flush: bool) -> None:
        """One of this leader's speculative transactions was chosen."""
        writers = self.spec_writers
        if has_flush:
            self.spec_flushes -= 1
            assert self.spec_flushes >= 0
            self.flush_committed = True
            self.dirty.clear()
            for key in self.shadow:
                self.shadow[key] = None
        replay_keys = [key for key in keys if writers.get(key, 0) > 1]
        if replay_keys:
            scratch = Keyspace()
            for key in replay_keys:
                image = self.shadow.get(key)
                if image is not None:
                    scratch.data[key] = image
            wanted = set(replay_keys)
            for op in ops:
                if op[0] == OP_FLUSH or op[1] in wanted:
                    scratch.apply(op, version, None)
            for key in replay_keys:
                self.shadow[key] = scratch.data.get(key)
        for key in keys:
            n = writers[key] - 1
            if n == 0:
                del writers[key]
                self.shadow.pop(key, None)
            else:
                writers[key] = n
            self.dirty.add(key)

    def rolled_back(self, keys: set[bytes], has_flush: bool) -> None:
        """One speculative transaction was undone (its writes are gone from memory)."""
        writers = self.spec_writers
        for key in keys:
            n = writers.get(key, 0) - 1
            if n <= 0:
                writers.pop(key, None)
                self.shadow.pop(key, None)
            else:
                writers[key] = n
        if has_flush:
            self.spec_flushes -= 1

    def rolled_back_all(self) -> None:
        """Every speculative write was undone: memory is the committed state again."""
        self.spec_writers.clear()
        self.shadow.clear()
        self.spec_flushes = 0

    # -- committed changes that were never speculative (followers, old epochs) ---------
    def applied(self, keys: set[bytes], has_flush: bool) -> None:
        if has_flush:
            self.flush_committed = True
            self.dirty.clear()
        self.dirty.update(keys)

    def mark_all_dirty(self) -> None:
        """The stored state was replaced: the next checkpoint writes every key."""
        self.flush_committed = True
        self.dirty = set(self.ks.data) | set(self.spec_writers)

    # -- taking a checkpoint ---------------------------------------------------------------
    def take(self, applied_slot: int, clock: int, marks: list | None = None) -> Checkpoint | None:
        if self.spec_flushes:
            return None  # a speculative FLUSH: wait until it is chosen or undone
        ckpt = Checkpoint(applied_slot, clock, list(self.dirty), self.committed_value, self.flush_committed, marks)
        self.dirty = set()
        self.flush_committed = False
        return ckpt

    def committed_value(self, key: bytes) -> Record | None:
        """The key's committed record right now (its shadow while speculative writes are on top)."""
        if key in self.spec_writers:
            return self.shadow.get(key)
        return self.ks.data.get(key)

    @property
    def pending(self) -> int:
        return len(self.dirty)
