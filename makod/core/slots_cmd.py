"""MAKO SLOTS: the steps of moving slots between shards (docs/RESHARDING.md).

Each step is one transaction at the shard's leader, on that shard's slot
table (core/slot_table.py) and keys: ordered in its log against every
other transaction, replicated, answered only once final. ``makoctl cluster
reshard`` runs them in order for a range of slots moving from S to T:

1. at T, ``IMPORTING lo hi S M``: T takes copies and serves none of them;
2. at S, ``FREEZE lo hi T M``: S stops running anything on those slots;
3. at S, ``EXPORT lo hi M cursor count`` and at T, ``IMPORT lo hi S M k v ...``,
   until S has no more: the export waits until no transaction holds a lock
   there, and its reply until everything it read is final;
4. at T, ``OWN lo hi M``: T serves them;
5. at S, ``DROP lo hi M``, until it answers 0: S deletes its copies and
   forwards whoever still asks it to T.

``M`` is the move's id (a random positive integer): a step of another move
(a copy delayed in the network, an old makoctl) is refused and changes
nothing. A move stopped before step 4 is undone by ``DROP`` at T (its
copies go) and ``UNFREEZE`` at S. Every step is idempotent, so a rerun of
the whole sequence after a crash finishes (or undoes) the move.
"""

from __future__ import annotations

import json
from typing import Any

from makod.core import slot_table
from makod.core.context import IndexBuilding, KeyLocked, vec_join
from makod.core.slot_table import AWAY, FROZEN, IMPORTING, OWNED, PURGING, TABLE_KEY
from makod.kv import dbs, errors
from makod.kv.args import parse_int
from makod.kv.errors import CommandError
from makod.kv.hashslot import NUM_SLOTS, key_slot
from makod.kv.key_indexes import ORDER as ORDER_INDEX
from makod.kv.records import KIND_NATIVE
from makod.kv.replies import OK
from makod.storage.base import CorruptData, decode_record, encode_record

# One EXPORT or DROP call's work: a leader runs it between other requests.
SCAN_BUDGET_KEYS = 20_000
EXPORT_BUDGET_BYTES = 4 * 1024 * 1024
DROP_BUDGET_KEYS = 5_000
DEFAULT_EXPORT_COUNT = 1_000


def _slot_map(ctx: Any) -> Any:
    if ctx.slot_map is None:
        raise CommandError(errors.SLOTS_NOT_MOVABLE)
    return ctx.slot_map


def _read_table(ctx: Any) -> list[list[int]]:
    """Our table, read as a transaction reads a key (so the reply waits for its writer)."""
    slots = _slot_map(ctx)
    rec = ctx._get(TABLE_KEY)
    if rec is None:
        return slots.initial_table()
    return slot_table.decode(rec.value)


def _write_table(ctx: Any, table: list[list[int]]) -> None:
    saved, ctx.db = ctx.db, dbs.SLOTS_DB
    try:
        ctx.set(b"table", KIND_NATIVE, table, None)
    finally:
        ctx.db = saved


def _slot(arg: bytes) -> int:
    value = parse_int(arg)
    if value is None or not 0 <= value < NUM_SLOTS:
        raise CommandError(errors.SLOTS_BAD_SLOT.format(arg[:20].decode("utf-8", "replace")))
    return value


def _range(argv: list[bytes], i: int) -> tuple[int, int]:
    lo, hi = _slot(argv[i]), _slot(argv[i + 1])
    if lo > hi:
        raise CommandError(errors.SLOTS_BAD_RANGE.format(lo, hi))
    return lo, hi


def _peer(ctx: Any, arg: bytes) -> int:
    slots = _slot_map(ctx)
    value = parse_int(arg)
    if value is None or not 0 <= value < slots.num_shards or value == slots.shard:
        raise CommandError(errors.SLOTS_BAD_SHARD.format(arg[:20].decode("utf-8", "replace"), slots.shard))
    return value


def _all_owned(states: set) -> bool:
    return all(s is not None and s[0] == OWNED for s in states)


def _states(table: list[list[int]], lo: int, hi: int) -> set:
    return slot_table.states_in(table, lo, hi)


def _refuse(ctx: Any, lo: int, hi: int, states: set, wanted: str) -> CommandError:
    found = ", ".join(sorted("not listed" if s is None else slot_table.STATE_NAMES[s[0]] + (
        f" (shard {s[1]}, move {s[2]})" if s[1] >= 0 else "") for s in states))
    return CommandError(errors.SLOTS_WRONG_STATE.format(lo, hi, ctx.slot_map.shard, found, wanted))


def _keys_in(ctx: Any, lo: int, hi: int, after: bytes | None):
    """(key, record) of live user keys in slots lo..hi, in key order after ``after``.
    Raises IndexBuilding (call it before iterating) while a big keyspace's
    ordered index is still being made: the step waits for it like a lock,
    instead of making it at once and stopping the node for seconds."""
    if not ctx.ks.indexes.ready(ORDER_INDEX):
        raise IndexBuilding()
    return _live_keys_in(ctx, lo, hi, after)


def _live_keys_in(ctx: Any, lo: int, hi: int, after: bytes | None):
    start = b"" if after is None else after + b"\x00"
    data = ctx.ks.data
    now = ctx.now_ms
    for key in ctx.ks.range_iter(start, None):
        if key[:1] == dbs.MARK and dbs.is_hidden(key):
            yield key, None  # scanned, never moved
            continue
        rec = data.get(key)
        if rec is None or not lo <= key_slot(dbs.user_key(key)) <= hi:
            yield key, None
            continue
        if rec.expire_ms is not None and rec.expire_ms <= now:
            yield key, None
            continue
        yield key, rec


# -- the steps -----------------------------------------------------------------------------------------
def _move_id(arg: bytes) -> int:
    value = parse_int(arg)
    if value is None or not 0 < value <= slot_table.MAX_MOVE_ID:
        raise CommandError(errors.SLOTS_BAD_MOVE.format(arg[:24].decode("utf-8", "replace")))
    return value


def _freeze(ctx: Any, argv: list[bytes]) -> Any:
    """FREEZE lo hi to move: owned -> frozen (nothing runs on them here but the export)."""
    lo, hi = _range(argv, 3)
    to, move = _peer(ctx, argv[5]), _move_id(argv[6])
    table = _read_table(ctx)
    states = _states(table, lo, hi)
    if states == {(FROZEN, to, move)}:
        return OK
    if not _all_owned(states):
        raise _refuse(ctx, lo, hi, states, "owned")
    _write_table(ctx, slot_table.with_range(table, lo, hi, FROZEN, to, move))
    return OK


def _to_owned(ctx: Any, argv: list[bytes], source_state: int, wanted: str) -> Any:
    """``source_state`` (of this move) -> owned; owned already: done. Owned
    "by this move": the versions read here carry it (SlotMap.tag_of), so a
    version read before the move never equals one read after."""
    lo, hi = _range(argv, 3)
    move = _move_id(argv[5])
    table = _read_table(ctx)
    states = _states(table, lo, hi)
    if _all_owned(states):
        return OK
    if any(s is None or s[0] != source_state or s[2] != move for s in states):
        raise _refuse(ctx, lo, hi, states, f"{wanted} {move}")
    _write_table(ctx, slot_table.with_range(table, lo, hi, OWNED, -1, move))
    return OK


def _unfreeze(ctx: Any, argv: list[bytes]) -> Any:
    """UNFREEZE lo hi move: undo a freeze (the target has dropped its copies)."""
    return _to_owned(ctx, argv, FROZEN, "frozen by move")


def _importing(ctx: Any, argv: list[bytes]) -> Any:
    """IMPORTING lo hi from move: (not ours) -> importing (copies arrive, nothing else runs)."""
    lo, hi = _range(argv, 3)
    source, move = _peer(ctx, argv[5]), _move_id(argv[6])
    table = _read_table(ctx)
    states = _states(table, lo, hi)
    if states == {(IMPORTING, source, move)}:
        return OK
    if any(s is not None and (s[0] != AWAY or s[2] == move) for s in states):
        # (Away by this very move: a late copy of this step, after the move ended.)
        raise _refuse(ctx, lo, hi, states, "away (never ours, or handed over and purged)")
    _write_table(ctx, slot_table.with_range(table, lo, hi, IMPORTING, source, move))
    return OK


def _own(ctx: Any, argv: list[bytes]) -> Any:
    """OWN lo hi move: importing -> owned (served here from now on)."""
    return _to_owned(ctx, argv, IMPORTING, "importing for move")


def _wait_for_locks(ctx: Any, lo: int, hi: int) -> None:
    """A transaction prepared before the freeze may still hold a key of
    these slots: its writes must be in the copy. The export is then retried
    once the lock goes (KeyLocked parks it)."""
    if ctx.locks:
        for key in ctx.locks:
            if not dbs.is_hidden(key) and lo <= key_slot(dbs.user_key(key)) <= hi:
                raise KeyLocked(key)


def _wait_for_final(ctx: Any) -> None:
    """The copy's reply waits until every transaction installed here is
    final: a write an epoch's end rolls back must never reach the target
    (and what a scan misses matters as much as what it sees)."""
    ctx.deps = vec_join(ctx.deps, ctx.all_deps(), ctx.wm)


def _export(ctx: Any, argv: list[bytes]) -> Any:
    """EXPORT lo hi move [cursor [count]]: [more (1|0), cursor, [key, record, ...]],
    the next keys of slots lo..hi that this move froze."""
    lo, hi = _range(argv, 3)
    move = _move_id(argv[5])
    cursor = argv[6] if len(argv) > 6 and argv[6] else None
    count = DEFAULT_EXPORT_COUNT
    if len(argv) > 7:
        count = parse_int(argv[7]) or 0
        if count <= 0:
            raise CommandError(errors.SLOTS_BAD_COUNT)
    table = _read_table(ctx)
    states = _states(table, lo, hi)
    if any(s is None or s[0] != FROZEN or s[2] != move for s in states):
        raise _refuse(ctx, lo, hi, states, f"frozen by move {move}")
    _wait_for_locks(ctx, lo, hi)
    _wait_for_final(ctx)
    # The batch goes into one IMPORT transaction at the target: within its
    # bound (a single bigger key still goes alone, and its import says so).
    budget = min(EXPORT_BUDGET_BYTES, ctx.max_txn_bytes // 2)
    out: list[bytes] = []
    size = scanned = exported = 0
    last = cursor
    more = False
    for key, rec in _keys_in(ctx, lo, hi, cursor):
        if scanned >= SCAN_BUDGET_KEYS or exported >= count or size >= budget:
            more = True
            break
        scanned += 1
        if rec is None:
            last = key
            continue
        blob = encode_record(rec)
        if exported and size + len(key) + len(blob) > budget:
            more = True  # the next call starts at this key (the cursor is the last one sent)
            break
        last = key
        out.append(key)
        out.append(blob)
        size += len(key) + len(blob)
        exported += 1
    return [b"1" if more else b"0", last or b"", out]


def _import(ctx: Any, argv: list[bytes]) -> Any:
    """IMPORT lo hi from move key record ...: write copies into slots lo..hi
    that this move is importing; the number written."""
    lo, hi = _range(argv, 3)
    source, move = _peer(ctx, argv[5]), _move_id(argv[6])
    pairs = argv[7:]
    if len(pairs) % 2:
        raise CommandError(errors.SLOTS_BAD_PAIRS)
    table = _read_table(ctx)
    states = _states(table, lo, hi)
    if states != {(IMPORTING, source, move)}:
        raise _refuse(ctx, lo, hi, states, f"importing from shard {source} for move {move}")
    decoded = []
    for i in range(0, len(pairs), 2):
        ikey = pairs[i]
        if not dbs.is_internal(ikey) or dbs.is_hidden(ikey) or not lo <= key_slot(dbs.user_key(ikey)) <= hi:
            raise CommandError(errors.SLOTS_KEY_OUTSIDE.format(lo, hi))
        try:
            rec = decode_record(pairs[i + 1], "an imported record")
        except CorruptData as exc:
            raise CommandError(errors.SLOTS_BAD_RECORD.format(exc)) from None
        decoded.append((ikey, rec))
    saved = ctx.db
    written = 0
    try:
        for ikey, rec in decoded:
            if rec.expire_ms is not None and rec.expire_ms <= ctx.now_ms:
                continue
            ctx.db, key = dbs.decode(ikey)
            ctx.set(key, rec.kind, rec.value, rec.expire_ms)
            written += 1
    finally:
        ctx.db = saved
    return written


def _drop(ctx: Any, argv: list[bytes]) -> Any:
    """DROP lo hi move: delete our copies in slots lo..hi that this move
    handed over (or whose import it undoes): the keys left (call until 0)."""
    lo, hi = _range(argv, 3)
    move = _move_id(argv[5])
    table = _read_table(ctx)
    states = _states(table, lo, hi)
    if states and all(s is not None and s[0] == AWAY and s[2] == move for s in states):
        return 0  # done already
    peers = {s[1] for s in states if s is not None}
    if any(s is None or s[0] not in (FROZEN, IMPORTING, PURGING, AWAY) or s[2] != move for s in states) \
            or len(peers) != 1:
        raise _refuse(ctx, lo, hi, states, f"frozen, importing or purging for move {move}")
    peer = peers.pop()
    doomed = []
    left = False
    budget = ctx.max_txn_bytes // 2  # the deletes go into one transaction
    size = 0
    for key, rec in _keys_in(ctx, lo, hi, None):
        if rec is None:
            continue
        if len(doomed) >= DROP_BUDGET_KEYS or (doomed and size + len(key) + 8 > budget):
            left = True
            break
        doomed.append(key)
        size += len(key) + 8
    for key in doomed:  # not while the scan walks the index
        ctx._delete(key)
    state = PURGING if left else AWAY
    if states != {(state, peer, move)}:
        _write_table(ctx, slot_table.with_range(table, lo, hi, state, peer, move))
    return 1 if left else 0


def _show(ctx: Any, argv: list[bytes]) -> Any:
    slots = _slot_map(ctx)
    table = _read_table(ctx)
    return json.dumps({"shard": slots.shard, "table": slot_table.describe(table)}, sort_keys=True)


STEPS = {
    b"SHOW": (3, _show),
    b"FREEZE": (7, _freeze),
    b"UNFREEZE": (6, _unfreeze),
    b"IMPORTING": (7, _importing),
    b"EXPORT": (-6, _export),
    b"IMPORT": (-7, _import),
    b"OWN": (6, _own),
    b"DROP": (6, _drop),
}


def mako_slots(ctx: Any, argv: list[bytes]) -> Any:
    """MAKO SLOTS <step> ...: one step of a move, at this shard's leader."""
    if len(argv) < 3:
        return _show(ctx, argv)
    step = STEPS.get(argv[2].upper())
    if step is None:
        raise CommandError(errors.SLOTS_UNKNOWN_STEP.format(argv[2][:32].decode("utf-8", "replace")))
    arity, handler = step
    if (arity >= 0 and len(argv) != arity) or (arity < 0 and len(argv) < -arity):
        raise CommandError(errors.SLOTS_WRONG_ARGS.format(argv[2].decode("utf-8", "replace").upper()))
    return handler(ctx, argv)
