"""Which slots a shard owns, as replicated state (resharding, docs/RESHARDING.md).

Each shard keeps its own slot table under one internal key of a database no
SELECT reaches (``dbs.SLOTS_DB``), so the table is written by transactions
like any record: ordered in the shard's log with the writes it must be
ordered against, rolled back with them, carried by checkpoints and
snapshots. Before its first move a shard has no record, and its table is
the config's ranges for it (``initial``).

The table is a sorted list of ``[lo, hi, state, peer, move]`` (inclusive
slot ranges). A slot the table does not list was never this shard's.
``move`` names the move that put the range in its state (makoctl draws one
at random per chunk): every step names its move, and a step of another
move (a copy delayed in the network, an old makoctl) changes nothing.

* OWNED: this shard serves it.
* FROZEN (peer: the shard it is moving to): nothing runs on it here but the
  export; requests wait.
* IMPORTING (peer: the shard it comes from): copies arrive; nothing else runs.
* PURGING (peer: the new owner): moved away, its old keys still being deleted.
* AWAY (peer: the shard it was handed to): moved away, nothing left here.

Pure functions of plain data: no clocks, no I/O.
"""

from __future__ import annotations

from typing import Any

from makod.kv import dbs
from makod.kv.hashslot import NUM_SLOTS

OWNED, FROZEN, IMPORTING, PURGING, AWAY = 0, 1, 2, 3, 4
STATE_NAMES = ("owned", "frozen", "importing", "purging", "away")
# States in which some request on the slot must wait (or a whole-keyspace
# read would see half a move).
BUSY_STATES = frozenset({FROZEN, IMPORTING, PURGING})

TABLE_KEY = dbs.encode(dbs.SLOTS_DB, b"table")
# The most slots one table may list as ranges: every slot its own range.
MAX_ENTRIES = NUM_SLOTS


class TableError(ValueError):
    """A stored table that is not one (a bug or a damaged record)."""


MAX_MOVE_ID = (1 << 62) - 1


def initial(ranges: list[tuple[int, int]]) -> list[list[int]]:
    """A shard's table before its first move: its config ranges, owned."""
    return [[lo, hi, OWNED, -1, 0] for lo, hi in sorted(ranges)]


def decode(value: Any) -> list[list[int]]:
    """The table a record holds, checked (it came from the shard's own log)."""
    if not isinstance(value, (list, tuple)) or len(value) > MAX_ENTRIES:
        raise TableError("slot table is not a list of ranges")
    out: list[list[int]] = []
    last = -1
    for entry in value:
        if not isinstance(entry, (list, tuple)) or len(entry) != 5 or not all(type(x) is int for x in entry):
            raise TableError(f"slot table entry {entry!r} is not [lo, hi, state, peer, move]")
        lo, hi, state, peer, move = entry
        if not (last < lo <= hi < NUM_SLOTS) or not 0 <= state < len(STATE_NAMES):
            raise TableError(f"slot table entry {entry!r} is out of order or range")
        out.append([lo, hi, state, peer, move])
        last = hi
    return out


def per_slot(table: list[list[int]]) -> list[tuple[int, int, int] | None]:
    """(state, peer, move) of every slot, None where the table says nothing."""
    slots: list[tuple[int, int, int] | None] = [None] * NUM_SLOTS
    for lo, hi, state, peer, move in table:
        entry = (state, peer, move)
        for slot in range(lo, hi + 1):
            slots[slot] = entry
    return slots


def compress(slots: list[tuple[int, int, int] | None]) -> list[list[int]]:
    """The inverse of ``per_slot``: maximal ranges of equal (state, peer, move)."""
    out: list[list[int]] = []
    for slot, entry in enumerate(slots):
        if entry is None:
            continue
        if out and out[-1][1] == slot - 1 and (out[-1][2], out[-1][3], out[-1][4]) == entry:
            out[-1][1] = slot
        else:
            out.append([slot, slot, entry[0], entry[1], entry[2]])
    return out


def states_in(table: list[list[int]], lo: int, hi: int) -> set[tuple[int, int, int] | None]:
    """The distinct (state, peer, move) of slots lo..hi (None: not listed)."""
    slots = per_slot(table)
    return set(slots[lo:hi + 1])


def with_range(table: list[list[int]], lo: int, hi: int, state: int, peer: int, move: int) -> list[list[int]]:
    slots = per_slot(table)
    for slot in range(lo, hi + 1):
        slots[slot] = (state, peer, move)
    return compress(slots)


def owned_ranges(table: list[list[int]]) -> list[tuple[int, int]]:
    """The owned slots as maximal ranges (whichever move made each ours)."""
    out: list[tuple[int, int]] = []
    for lo, hi, state, _peer, _move in table:
        if state != OWNED:
            continue
        if out and out[-1][1] == lo - 1:
            out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


TAG_SHIFT = 40  # a version stays below 2^40 (a trillion transactions on one shard)
TAG_MASK = (1 << 23) - 1  # tagged versions stay below 2^63 (msgpack's int64)


def version_tag(move: int) -> int:
    """What a version read in a slot owned by ``move`` carries (0: owned from the start)."""
    return (move & TAG_MASK) << TAG_SHIFT


def describe(table: list[list[int]]) -> list[dict]:
    return [{"from": lo, "to": hi, "state": STATE_NAMES[state], **({"peer": peer} if peer >= 0 else {}),
             **({"move": move} if move else {})}
            for lo, hi, state, peer, move in table]
