"""Which shard owns each slot (the slot of a key: makod/kv/hashslot.py,
exactly as Redis Cluster computes it)."""

from __future__ import annotations

from array import array
from typing import Any, Callable

from makod.core import slot_table
from makod.kv import dbs
from makod.kv.hashslot import NUM_SLOTS, crc16, key_slot  # noqa: F401  (re-exported)


_UNSET = object()
BUSY = -2  # shard_of for a slot this shard is moving: requests on it wait


class SlotMap:
    """Which shard owns each slot.

    For a client (``shard`` None) this is the config's inclusive ranges. For a
    node it is the config's ranges, then what the node learned of moves
    elsewhere (``learn``: hints, corrected by whoever holds the slot), then,
    with authority, its own shard's slot table (core/slot_table.py, read
    through ``table``): a slot the table says is moving maps to BUSY, and a
    slot the table does not say this shard owns never maps to it.
    """

    def __init__(self, ranges_by_shard: list[list[tuple[int, int]]], shard: int | None = None,
                 table: Callable[[], Any] | None = None) -> None:
        self.num_shards = len(ranges_by_shard)
        # Arrays, not lists: a node holds several of 16,384 entries for its
        # whole life, and the garbage collector need not walk them.
        self._config = array("h", bytes(2 * NUM_SLOTS))
        for s, ranges in enumerate(ranges_by_shard):
            for lo, hi in ranges:
                self._config[lo:hi + 1] = array("h", [s]) * (hi - lo + 1)
        self._config_ranges = [list(r) for r in ranges_by_shard]
        self.shard = shard
        # The config with our own slots BUSY: a slot is ours only if our
        # table says so (a table lists every slot the config gave us).
        self._base = self._config
        if shard is not None:
            self._base = array("h", self._config)
            for lo, hi in self._config_ranges[shard]:
                self._base[lo:hi + 1] = array("h", [BUSY]) * (hi - lo + 1)
        self._table = table
        self._seen: Any = _UNSET
        self._learned: dict[int, int] = {}
        self._owner = array("h", self._config)
        self._tags: array | None = None
        self._cache: dict[bytes, int] = {}
        # Any slot of ours moving (whole-keyspace reads and writes wait), and a
        # counter that changes whenever any slot's owner here does.
        self.busy = False
        self.version = 0
        self.own_table: list[list[int]] = slot_table.initial(self._config_ranges[shard]) if shard is not None else []
        self._rebuild()

    # -- the node's own shard --------------------------------------------------------------------------
    def _fresh(self) -> None:
        if self._table is not None:
            rec = self._table()
            if rec is not self._seen:
                self._seen = rec
                self._rebuild_from(rec)

    def initial_table(self) -> list[list[int]]:
        """Our shard's table before it was ever written: its config slots, owned."""
        return slot_table.initial(self._config_ranges[self.shard])  # type: ignore[index]

    def _rebuild_from(self, rec: Any) -> None:
        if rec is None:
            table = self.initial_table()
        else:
            table = slot_table.decode(rec.value)
        if table == self.own_table:
            return  # (a node's first look: no table written yet)
        if self._learned:
            old = slot_table.per_slot(self.own_table)
            new = slot_table.per_slot(table)
            for slot in [slot for slot in self._learned if old[slot] != new[slot]]:
                # What our own log now says is newer than anything heard before.
                del self._learned[slot]
        self.own_table = table
        self._rebuild()

    def _rebuild(self) -> None:
        """The owner of every slot: config (our own slots BUSY until our table
        says otherwise), our table, and hints for the slots not ours."""
        owner = array("h", self._base)
        busy = False
        tags: array | None = None
        if self.shard is not None:
            me = self.shard
            for lo, hi, state, peer, move in self.own_table:
                n = hi - lo + 1
                if state == slot_table.OWNED:
                    owner[lo:hi + 1] = array("h", [me]) * n
                    if move:
                        if tags is None:
                            tags = array("q", bytes(8 * NUM_SLOTS))
                        tags[lo:hi + 1] = array("q", [slot_table.version_tag(move)]) * n
                elif state == slot_table.FROZEN or state == slot_table.IMPORTING:
                    owner[lo:hi + 1] = array("h", [BUSY]) * n
                else:
                    owner[lo:hi + 1] = array("h", [peer]) * n
                if state in slot_table.BUSY_STATES:
                    busy = True
        me = self.shard
        for slot, s in self._learned.items():
            # A hint beats the config and where we handed a slot (it may have
            # moved on since), never our own authority (ours, or moving here).
            if owner[slot] != me and owner[slot] != BUSY:
                owner[slot] = s
        self._owner = owner
        self._cache = {}
        self._tags = tags
        self.busy = busy
        self.version += 1

    def tag_of(self, key: bytes) -> int:
        """What a version of ``key`` read here carries: the move that made its
        slot ours (slot_table.version_tag), so that WATCH, reads and
        validations never take a version from before a move for one after."""
        self._fresh()
        tags = self._tags
        if tags is None or (key[:1] == dbs.MARK and dbs.is_hidden(key)):
            return 0
        return tags[key_slot(dbs.user_key(key))]

    def current(self) -> int:
        """``version``, after catching up with our shard's table."""
        self._fresh()
        return self.version

    def learn(self, lo: int, hi: int, shard: int) -> bool:
        """A hint that ``shard`` now holds slots lo..hi (a peer's refusal, or
        the operator's MAKO ROUTE). Our own slots follow only our log. True
        if it changed where we route any of them."""
        if not (0 <= lo <= hi < NUM_SLOTS and 0 <= shard < self.num_shards) or shard == self.shard:
            return False
        self._fresh()
        learned = self._learned
        if all(learned.get(slot) == shard for slot in range(lo, hi + 1)):
            return False
        before = self._owner[lo:hi + 1]
        for slot in range(lo, hi + 1):
            learned[slot] = shard
        self._rebuild()
        return self._owner[lo:hi + 1] != before

    def handed_away(self) -> list[list[int]]:
        """[lo, hi, shard] for the slots our table says we handed to another shard."""
        self._fresh()
        return [[lo, hi, peer] for lo, hi, state, peer, _move in self.own_table
                if state in (slot_table.AWAY, slot_table.PURGING) and peer >= 0]

    def hints(self, keys: list[bytes]) -> list[list[int]]:
        """[slot, shard we believe holds it] for keys we do not own."""
        self._fresh()
        out = []
        for key in keys:
            slot = key_slot(dbs.user_key(key))
            out.append([slot, self._owner[slot]])
        return out

    # -- lookups ------------------------------------------------------------------------------------------
    def shard_of_slot(self, slot: int) -> int:
        self._fresh()
        return self._owner[slot]

    def shard_of(self, key: bytes) -> int:
        """The shard of an internal key (kv/dbs.py): its user key's, so a
        key's name lives on one shard in every database. A hidden database's
        keys (dbs.is_hidden) are every shard's own."""
        if self._table is not None:
            rec = self._table()
            if rec is not self._seen:
                self._seen = rec
                self._rebuild_from(rec)
        shard = self._cache.get(key)
        if shard is None:
            if self.shard is not None and key[:1] == dbs.MARK and dbs.is_hidden(key):
                return self.shard
            shard = self._owner[key_slot(dbs.user_key(key))]
            if len(self._cache) < 100_000:
                self._cache[key] = shard
        return shard

    def shard_of_user(self, db: int, key: bytes) -> int:
        return self.shard_of(dbs.encode(db, key))

    def guard_range(self, start: bytes, end: bytes | None) -> bool:
        """May a read or write of every key in [start, end) run here now? A
        range inside one hash tag: if we hold its slot. Any other: unless
        one of our slots is moving (it would see or change half a move)."""
        shards = self.range_shards(start, end)
        if len(shards) == 1:
            return shards[0] == self.shard
        self._fresh()
        return not self.busy

    def client_shard_of_slot(self, slot: int) -> int:
        """shard_of_slot, with a slot moving here shown as ours (where a
        client's request should go: we route it on when the move ends)."""
        shard = self.shard_of_slot(slot)
        return self.shard if shard == BUSY and self.shard is not None else shard

    def ranges_of(self, shard: int) -> list[tuple[int, int]]:
        """The ranges ``shard`` holds as far as we know (our moving slots: ours)."""
        return [(lo, hi) for lo, hi, s in self.ranges()
                if s == shard or (s == BUSY and shard == self.shard)]

    def ranges(self) -> list[list[int]]:
        """[lo, hi, shard] for every slot, maximal ranges (BUSY shown as -2)."""
        self._fresh()
        out: list[list[int]] = []
        for slot, s in enumerate(self._owner):
            if out and out[-1][2] == s:
                out[-1][1] = slot
            else:
                out.append([slot, slot, s])
        return out

    def range_shards(self, start: bytes, end: bytes | None) -> list[int]:
        """The shards that may hold keys k with start <= k < end.

        Keys are hashed, so a range holds keys of every shard, unless it stays
        inside one hash tag: then all its keys share one slot.
        """
        open_ = start.find(b"{")
        if open_ != -1 and end is not None:
            close = start.find(b"}", open_ + 1)
            if close > open_ + 1:
                prefix = start[: close + 1]
                if end.startswith(prefix) or end == _successor(prefix):
                    return [self.shard_of(start)]
        return list(range(self.num_shards))

    def first_slot(self, shard: int) -> int:
        self._fresh()
        for slot, owner in enumerate(self._owner):
            if owner == shard:
                return slot
        raise KeyError(shard)

    def tag_for_shard(self, shard: int, prefix: str = "t") -> str:
        """A hash tag (without braces) whose keys all live on ``shard`` now.

        Deterministic: the first of ``prefix0, prefix1, ...`` that lands there.
        """
        self._fresh()
        owner = self._owner
        if shard not in owner:
            raise KeyError(shard)
        n = 0
        while True:
            tag = f"{prefix}{n}"
            if owner[key_slot(tag.encode())] == shard:
                return tag
            n += 1

    def add_shards(self, num_shards: int) -> None:
        """Shards joined the cluster: the config gives them no slot."""
        assert num_shards >= self.num_shards, (num_shards, self.num_shards)
        while len(self._config_ranges) < num_shards:
            self._config_ranges.append([])
        self.num_shards = num_shards

    def attach(self, table: Callable[[], Any]) -> None:
        """Follow our shard's slot table from now on (read through ``table``)."""
        self._table = table
        self._seen = _UNSET
        self._fresh()


MOVED = "moved"


def moved_reason(hints: list[list[int]]) -> str:
    """A participant's refusal of keys it does not hold: "moved" and, per
    slot, the shard it believes holds it (BUSY: moving, ask again soon)."""
    return MOVED + "".join(f" {slot}:{shard}" for slot, shard in hints[:64])


def parse_moved(reason: str) -> list[tuple[int, int]]:
    """The hints of a ``moved_reason`` (a peer's text: anything malformed is dropped)."""
    out = []
    for part in reason[len(MOVED):].split()[:64]:
        slot, _, shard = part.partition(":")
        if slot.isdigit() and shard.lstrip("-").isdigit():
            out.append((int(slot), int(shard)))
    return out


def _successor(prefix: bytes) -> bytes:
    """The smallest byte string greater than every string starting with ``prefix``."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return prefix + b"\x00"
    return trimmed[:-1] + bytes([trimmed[-1] + 1])
