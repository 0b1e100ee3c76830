"""Luigi's timestamp order at one shard leader (after Tiga, SOSP'25): pure state.

Every transaction that touches this shard passes through here, single-shard
ones included. An entry is *queued* (waiting), then *started* (it read this
shard's state and holds its place), then *finished* (installed or aborted
everywhere) and gone. Two rules:

* exclusion: an entry starts only when no conflicting entry is started and
  unfinished, and none is queued ahead of it. Two transactions conflict when
  one writes what the other reads or writes: read-read never conflicts, so
  the read and write maps are separate;
* order: "ahead" means a smaller (timestamp, txn id). A multi-shard entry
  starts only once its timestamp is agreed (the max of every involved
  leader's proposal) and this leader's clock has passed it; an unagreed one
  blocks only the conflicting entries behind its proposal, which is a lower
  bound of its final timestamp.

Exclusion is what makes histories serializable: a transaction that starts
at a shard after a conflicting one finished there started after that one
had started everywhere, so "all shards started" times grow along every
conflict edge and no cycle can form. Timestamps make it abort-free and
deadlock-free: every leader lets conflicting entries go in the same agreed
order, and an entry arriving below a conflicting timestamp already started
here is *bumped* above it, so started entries always come first.

Clocks serve speed, never correctness: the clock is ``max(wall, highest
started timestamp)``; a wrong clock delays entries or bumps them, nothing
more. All times are integer microseconds.
"""

from __future__ import annotations

from typing import Any

# A range's end of None means "to the end of the keyspace".
Range = tuple[bytes, "bytes | None"]
WHOLE: Range = (b"", None)

# An agreed entry waits for the clock at most this long: waiting only lets
# transactions still on their way take their place before it (else they
# are bumped), so a clock far behind costs this, not its offset.
MAX_CLOCK_WAIT_MS = 200.0

MAX_EXAMINED = 256

# Bounds: per-key timestamps kept for bumping (older ones fold into the
# floor, which then bumps conservatively), started ranges remembered.
MAX_KEY_MARKS = 200_000
MAX_RANGE_MARKS = 256


def _in(key: bytes, rng: Range) -> bool:
    return rng[0] <= key and (rng[1] is None or key < rng[1])


def _overlap(a: Range, b: Range) -> bool:
    return (b[1] is None or a[0] < b[1]) and (a[1] is None or b[0] < a[1])


class Footprint:
    """What a transaction may read and write at one shard (internal keys)."""

    __slots__ = ("reads", "writes", "read_ranges", "write_ranges")

    def __init__(self, reads=(), writes=(), read_ranges=(), write_ranges=()) -> None:
        self.writes = frozenset(writes)
        self.reads = frozenset(reads) - self.writes
        self.write_ranges: tuple[Range, ...] = tuple((r[0], r[1]) for r in write_ranges)
        self.read_ranges: tuple[Range, ...] = tuple((r[0], r[1]) for r in read_ranges)

    def empty(self) -> bool:
        return not (self.reads or self.writes or self.read_ranges or self.write_ranges)

    def covers(self, key: bytes) -> bool:
        """May the transaction touch ``key``?"""
        if key in self.writes or key in self.reads:
            return True
        return any(_in(key, r) for r in self.write_ranges) or any(_in(key, r) for r in self.read_ranges)

    def covers_write(self, key: bytes) -> bool:
        """May the transaction write ``key``?"""
        return key in self.writes or any(_in(key, r) for r in self.write_ranges)

    def covers_range(self, start: bytes, end: bytes | None) -> bool:
        for lo, hi in self.write_ranges + self.read_ranges:
            if lo <= start and (hi is None or (end is not None and end <= hi)):
                return True
        return False

    def conflicts(self, other: "Footprint") -> bool:
        return (
            _meets(self.writes, self.write_ranges, other.writes, other.write_ranges)
            or _meets(self.writes, self.write_ranges, other.reads, other.read_ranges)
            or _meets(other.writes, other.write_ranges, self.reads, self.read_ranges)
        )

    def to_wire(self) -> list:
        return [sorted(self.reads), sorted(self.writes),
                [list(r) for r in self.read_ranges], [list(r) for r in self.write_ranges]]

    @classmethod
    def from_wire(cls, wire: list) -> "Footprint":
        reads, writes, read_ranges, write_ranges = wire
        return cls(reads, writes, read_ranges, write_ranges)


def _meets(keys_a, ranges_a, keys_b, ranges_b) -> bool:
    if keys_a and keys_b and not keys_a.isdisjoint(keys_b):
        return True
    for r in ranges_a:
        if any(_in(k, r) for k in keys_b) or any(_overlap(r, s) for s in ranges_b):
            return True
    for s in ranges_b:
        if any(_in(k, s) for k in keys_a):
            return True
    return False


class Entry:
    __slots__ = ("txn", "t", "fp", "agreed", "started", "since_ms", "payload")

    def __init__(self, txn: Any, t: int, fp: Footprint, agreed: bool, since_ms: float, payload: Any) -> None:
        self.txn = txn
        self.t = t
        self.fp = fp
        self.agreed = agreed
        self.started = False
        self.since_ms = since_ms
        # What the driver needs to start it: a local request, or None.
        self.payload = payload

    def key(self) -> tuple:
        return (self.t, self.txn)


class Sequencer:
    def __init__(self, floor_us: int = 0, max_entries: int = 10_000) -> None:
        self.entries: dict[Any, Entry] = {}
        self.max_entries = max_entries
        # Highest timestamp started per key (reads and writes apart), and of
        # started ranges; anything at or below the floor counts as started on
        # every key (what the bounded maps forgot).
        self.read_t: dict[bytes, int] = {}
        self.write_t: dict[bytes, int] = {}
        self.range_marks: list[tuple[Range, int, bool]] = []
        self.floor_us = floor_us
        self.started_us = floor_us  # highest timestamp ever started here
        # What the comparison reports.
        self.txns = 0
        self.bumped = 0
        self.repositioned = 0

    # -- clock --------------------------------------------------------------------
    def clock_us(self, wall_us: int) -> int:
        return wall_us if wall_us > self.started_us else self.started_us

    # -- arrival --------------------------------------------------------------------
    def _bump_floor(self, fp: Footprint) -> int:
        """The smallest timestamp that orders ``fp`` after everything conflicting started here."""
        low = self.floor_us
        if fp.read_ranges or fp.write_ranges:
            # Ranges are not looked up in the per-key maps: order after all.
            return self.started_us
        write_t, read_t = self.write_t, self.read_t
        for key in fp.writes:
            t = write_t.get(key, 0)
            if t > low:
                low = t
            t = read_t.get(key, 0)
            if t > low:
                low = t
        for key in fp.reads:
            t = write_t.get(key, 0)
            if t > low:
                low = t
        for rng, t, is_write in self.range_marks:
            if t > low and (any(_in(k, rng) for k in fp.writes) or (is_write and any(_in(k, rng) for k in fp.reads))):
                low = t
        return low

    def _bump(self, t: int, fp: Footprint) -> int:
        """``t``, or just above the conflicting timestamps started here if it is not above them."""
        low = self._bump_floor(fp)
        return low + 1 if t <= low else t

    def _stamp(self, t: int, fp: Footprint) -> int:
        """The timestamp a transaction arriving with ``t`` takes here, counted."""
        return self._count(t, self._bump(t, fp))

    def _count(self, arrived: int, taken: int) -> int:
        self.txns += 1
        if taken != arrived:
            self.bumped += 1
        return taken

    def propose(self, txn: Any, t: int, fp: Footprint, now_ms: float) -> int | None:
        """A multi-shard transaction arrives with timestamp ``t``: the timestamp
        this leader proposes (bumped above what conflicting started here), or
        None when the queue is full. A duplicate gets the first answer:
        a proposal, once sent, is final."""
        entry = self.entries.get(txn)
        if entry is not None:
            return entry.t
        if len(self.entries) >= self.max_entries:
            return None
        t = self._stamp(t, fp)
        self.entries[txn] = Entry(txn, t, fp, False, now_ms, None)
        return t

    def agree(self, txn: Any, t: int) -> bool:
        """The agreed timestamp (the max of every proposal); False if unknown here."""
        entry = self.entries.get(txn)
        if entry is None or entry.started:
            return entry is not None
        if t < entry.t:
            # The max of proposals that are not this entry's (it was dropped
            # and proposed anew by a late duplicate): its place is not that.
            return False
        if t > entry.t:
            entry.t = t
            self.repositioned += 1
        entry.agreed = True
        return True

    def try_local(self, fp: Footprint, wall_us: int) -> int | None:
        """A single-shard transaction at this leader: its timestamp if it may run
        now (nothing conflicting unfinished), and then it counts as started and
        finished; None if it must queue (``enqueue_local``)."""
        clock = self.clock_us(wall_us)
        t = self._bump(clock, fp)
        if self.entries:
            # Only what is started, or queued at or before its timestamp, is
            # ahead of it (a multi-shard entry stamped in the future is not).
            for entry in self.entries.values():
                if (entry.started or entry.t <= t) and entry.fp.conflicts(fp):
                    return None
        self._mark_started(fp, self._count(clock, t))
        return t

    def enqueue_local(self, txn: Any, fp: Footprint, wall_us: int, now_ms: float, payload: Any) -> bool:
        if len(self.entries) >= self.max_entries:
            return False
        t = self._stamp(self.clock_us(wall_us), fp)
        self.entries[txn] = Entry(txn, t, fp, True, now_ms, payload)
        return True

    # -- progress ----------------------------------------------------------------------
    def startable(self, wall_us: int, now_ms: float = 0.0) -> list[Entry]:
        """Entries that may start now, in timestamp order; the caller starts
        each (``start``) before asking again. ``now_ms``: the monotonic
        clock, which bounds the wait for the wall clock (MAX_CLOCK_WAIT_MS)."""
        if not self.entries:
            return []
        clock = self.clock_us(wall_us)
        waited = now_ms - MAX_CLOCK_WAIT_MS
        blocking: list[Footprint] = [e.fp for e in self.entries.values() if e.started]
        out = []
        waiting = sorted((e for e in self.entries.values() if not e.started), key=Entry.key)
        # Only the first ones are examined per call: under a long queue the
        # later ones wait a round (cost stays linear in the queue, not square).
        for entry in waiting[:MAX_EXAMINED]:
            fp = entry.fp
            due = entry.t <= clock or entry.since_ms <= waited
            if entry.agreed and due and not any(fp.conflicts(b) for b in blocking):
                out.append(entry)
            # Started now or waiting, it is ahead of everything after it.
            blocking.append(fp)
        return out

    def start(self, entry: Entry) -> None:
        assert not entry.started and entry.agreed
        entry.started = True
        self._mark_started(entry.fp, entry.t)

    def finish(self, txn: Any) -> Entry | None:
        return self.entries.pop(txn, None)

    def expire(self, now_ms: float, timeout_ms: float) -> list[Entry]:
        """Queued (never started) entries older than ``timeout_ms``: their
        coordinator went quiet. Dropping one is safe (it read nothing here);
        a late Agreed for it is refused, and its coordinator retries."""
        old = [e for e in self.entries.values() if not e.started and now_ms - e.since_ms >= timeout_ms and
               e.payload is None]
        for entry in old:
            del self.entries[entry.txn]
        return old

    def _mark_started(self, fp: Footprint, t: int) -> None:
        if t > self.started_us:
            self.started_us = t
        write_t, read_t = self.write_t, self.read_t
        # The invariant Tiga's order rests on: conflicting transactions start
        # (so execute, install and apply) in timestamp order (equal
        # timestamps go in txn id order, the same at every leader).
        for key in fp.writes:
            assert write_t.get(key, 0) <= t and read_t.get(key, 0) <= t, ("started out of timestamp order", key, t)
            write_t[key] = t
        for key in fp.reads:
            assert write_t.get(key, 0) <= t, ("started out of timestamp order", key, t)
            if read_t.get(key, 0) < t:
                read_t[key] = t
        for rng in fp.write_ranges:
            self.range_marks.append((rng, t, True))
        for rng in fp.read_ranges:
            self.range_marks.append((rng, t, False))
        if len(self.range_marks) > MAX_RANGE_MARKS:
            drop = self.range_marks[: MAX_RANGE_MARKS // 2]
            del self.range_marks[: MAX_RANGE_MARKS // 2]
            self._raise_floor(max(t for _, t, _ in drop))
        if len(write_t) + len(read_t) > MAX_KEY_MARKS:
            self._fold_keys()

    def _fold_keys(self) -> None:
        # Dicts keep insertion order, roughly timestamp order: forget the
        # older half and let the floor stand for it.
        for marks in (self.write_t, self.read_t):
            n = len(marks) // 2
            for key in list(marks)[:n]:
                self._raise_floor(marks.pop(key))

    def _raise_floor(self, t: int) -> None:
        if t > self.floor_us:
            self.floor_us = t

    def stats(self) -> dict[str, int]:
        return {"luigi_txns": self.txns, "luigi_bumped": self.bumped, "luigi_repositioned": self.repositioned,
                "luigi_queued": sum(1 for e in self.entries.values() if not e.started),
                "luigi_started": sum(1 for e in self.entries.values() if e.started)}
