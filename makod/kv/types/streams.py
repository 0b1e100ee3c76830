"""Streams (Redis 7.0 src/t_stream.c semantics): the value, IDs, and the entry commands.

A stream is a ``Stream``: its entries in a ``SortedDict`` keyed by ID (an
``(ms, seq)`` tuple, so ranges are O(log n) seeks and XADD never re-sorts),
the metadata Redis keeps (last generated ID, largest deleted ID, entries
ever added) and its consumer groups (streams_groups.py). The first entry's
ID ("recorded-first-entry-id") is derived, never stored: Redis keeps it equal
to the first live entry, or 0-0 when the stream is empty.

Unlike every other container, an empty stream stays (XDEL of every entry,
XTRIM to 0, XGROUP CREATE MKSTREAM all leave the key), so ``size`` is never 0.

Handlers decide everything that depends on time (the ``*`` ID from
``ctx.now_ms``) and write ops holding concrete IDs; the ops tolerate any
stream (deleting an absent ID does nothing) and return exact undo tokens.

Approximate trimming (``MAXLEN ~`` / ``MINID ~``) differs from Redis: Redis
removes whole listpack nodes only (100 entries each by default), makodb trims
exactly, but never more than LIMIT entries (default 10000, as Redis's 100
nodes). Redis's contract allows both ("at least" the requested length).
"""

from __future__ import annotations

import re

from sortedcontainers import SortedDict

from makod.kv import errors
from makod.kv.args import UINT64_MAX, int_arg, is_opt, parse_int
from makod.kv.errors import CommandError
from makod.kv.records import KIND_STREAM, OpSpec, Record, ValueType, register_op, register_type
from makod.kv.replies import NULL_ARRAY, OK
from makod.kv.table import command

# Op codes (streams own 50-59; stored in the log: never reuse one).
OP_XADD = 50  # (OP_XADD, key, ms, seq, [field, value, ...])  creates the stream
OP_XDEL = 51  # (OP_XDEL, key, [[ms, seq], ...], is_xdel)  is_xdel: raise max-deleted-entry-id
OP_XSETID = 52  # (OP_XSETID, key, [ms, seq], entries_added | -1, [ms, seq] | None)
# 53-58: consumer groups (streams_groups.py).

ZERO = (0, 0)
MAX_ID = (UINT64_MAX, UINT64_MAX)
# A LIMIT-less approximate trim removes at most this many entries (Redis:
# 100 * stream-node-max-entries).
APPROX_TRIM_LIMIT = 10000
# Redis reads an ID into a 128-byte buffer: anything longer is invalid.
ID_MAX_LEN = 127


class Group:
    """A consumer group: last delivered ID, read counter (-1: unknown), PEL, consumers.

    ``pel`` maps ID -> [consumer name, delivery time ms, delivery count];
    ``consumers`` maps name -> Consumer.
    """

    __slots__ = ("last_id", "entries_read", "pel", "consumers")

    def __init__(self, last_id: tuple, entries_read: int) -> None:
        self.last_id = last_id
        self.entries_read = entries_read
        self.pel: SortedDict = SortedDict()
        self.consumers: dict[bytes, Consumer] = {}


class Consumer:
    __slots__ = ("seen_ms", "pel")

    def __init__(self, seen_ms: int) -> None:
        self.seen_ms = seen_ms
        self.pel: set[tuple] = set()


class Stream:
    __slots__ = ("entries", "last_id", "max_deleted", "entries_added", "groups")

    def __init__(self) -> None:
        self.entries: SortedDict = SortedDict()  # (ms, seq) -> [field, value, ...]
        self.last_id = ZERO
        self.max_deleted = ZERO
        self.entries_added = 0
        self.groups: dict[bytes, Group] = {}

    @property
    def first_id(self) -> tuple:
        return self.entries.peekitem(0)[0] if self.entries else ZERO


class StreamType(ValueType):
    kind = KIND_STREAM
    name = "stream"

    def empty(self) -> Stream:
        return Stream()

    def clone(self, value: Stream) -> Stream:
        return self.from_wire(self.to_wire(value))

    def to_wire(self, s: Stream) -> list:
        groups = []
        # Sorted by name (as Redis lists them): equal streams have equal wire forms.
        for name, g in sorted(s.groups.items()):
            pel = [[i[0], i[1], n[0], n[1], n[2]] for i, n in g.pel.items()]
            consumers = [[cname, c.seen_ms] for cname, c in sorted(g.consumers.items())]
            groups.append([name, list(g.last_id), g.entries_read, pel, consumers])
        entries = [[i[0], i[1], list(f)] for i, f in s.entries.items()]
        return [entries, list(s.last_id), list(s.max_deleted), s.entries_added, groups]

    def from_wire(self, data: list) -> Stream:
        s = Stream()
        entries, last_id, max_deleted, s.entries_added, groups = data
        s.entries.update(((ms, seq), [bytes(x) for x in f]) for ms, seq, f in entries)
        s.last_id, s.max_deleted = tuple(last_id), tuple(max_deleted)
        for name, glast, entries_read, pel, consumers in groups:
            g = Group(tuple(glast), entries_read)
            for cname, seen in consumers:
                g.consumers[bytes(cname)] = Consumer(seen)
            for ms, seq, cname, when, count in pel:
                g.pel[(ms, seq)] = [bytes(cname), when, count]
                g.consumers[bytes(cname)].pel.add((ms, seq))
            s.groups[bytes(name)] = g
        return s

    def size(self, value: Stream) -> int:
        return len(value.entries) + 1  # never 0: Redis keeps an empty stream

    def encoding(self, value: Stream) -> str:
        return "stream"


register_type(StreamType())


# -- ops -------------------------------------------------------------------------------------


def _xadd(s: Stream, op: tuple) -> tuple:
    sid = (op[2], op[3])
    token = (s.last_id, s.entries_added, s.entries.get(sid))
    s.entries[sid] = list(op[4])
    s.last_id = sid
    s.entries_added += 1
    return token


def _undo_xadd(s: Stream, token: tuple) -> None:
    sid = s.last_id
    s.last_id, s.entries_added, old = token
    if old is None:
        s.entries.pop(sid, None)
    else:
        s.entries[sid] = old


def _xdel(s: Stream, op: tuple) -> tuple:
    removed = []
    max_deleted = s.max_deleted
    for ms, seq in op[2]:
        fields = s.entries.pop((ms, seq), None)
        if fields is not None:
            removed.append(((ms, seq), fields))
            if op[3] and (ms, seq) > s.max_deleted:
                s.max_deleted = (ms, seq)
    return (removed, max_deleted)


def _undo_xdel(s: Stream, token: tuple) -> None:
    removed, s.max_deleted = token
    s.entries.update(removed)


def _xsetid(s: Stream, op: tuple) -> tuple:
    token = (s.last_id, s.entries_added, s.max_deleted)
    s.last_id = tuple(op[2])
    if op[3] != -1:
        s.entries_added = op[3]
    if op[4] is not None:
        s.max_deleted = tuple(op[4])
    return token


def _undo_xsetid(s: Stream, token: tuple) -> None:
    s.last_id, s.entries_added, s.max_deleted = token


register_op(OpSpec(OP_XADD, KIND_STREAM, "xadd", _xadd, _undo_xadd))
register_op(OpSpec(OP_XDEL, KIND_STREAM, "xdel", _xdel, _undo_xdel, creates=False))
register_op(OpSpec(OP_XSETID, KIND_STREAM, "xsetid", _xsetid, _undo_xsetid, creates=False))


# -- IDs -------------------------------------------------------------------------------------

_STRTOULL = re.compile(rb"[ \t\n\v\f\r]*([+-]?)([0-9]+)")


def _parse_u64(s: bytes) -> int | None:
    """Redis's string2ull: strict string2ll first, then strtoull's laxer syntax."""
    v = parse_int(s)
    if v is not None:
        return v if v >= 0 else None
    m = _STRTOULL.fullmatch(s)
    if m is None:
        return None
    v = int(m.group(2))
    if v > UINT64_MAX:
        return None
    return (-v) % (UINT64_MAX + 1) if m.group(1) == b"-" else v


def parse_id(arg: bytes, missing_seq: int = 0, strict: bool = False, star: bool = False) -> tuple:
    """An ID argument as (ms, seq, seq_given); ``-``/``+`` unless strict; ``ms-*`` if star."""
    if len(arg) > ID_MAX_LEN or (strict and arg in (b"-", b"+")):
        raise CommandError(errors.STREAM_INVALID_ID)
    if arg == b"-":
        return 0, 0, True
    if arg == b"+":
        return UINT64_MAX, UINT64_MAX, True
    head, dash, tail = arg.partition(b"-")
    ms = _parse_u64(head)
    seq, seq_given = missing_seq, True
    if dash:
        if star and tail == b"*":
            seq, seq_given = 0, False
        else:
            seq = _parse_u64(tail)
    if ms is None or seq is None:
        raise CommandError(errors.STREAM_INVALID_ID)
    return ms, seq, seq_given


def strict_id(arg: bytes) -> tuple:
    ms, seq, _ = parse_id(arg, strict=True)
    return (ms, seq)


def incr_id(sid: tuple) -> tuple | None:
    if sid[1] == UINT64_MAX:
        return None if sid[0] == UINT64_MAX else (sid[0] + 1, 0)
    return (sid[0], sid[1] + 1)


def decr_id(sid: tuple) -> tuple | None:
    if sid[1] == 0:
        return None if sid[0] == 0 else (sid[0] - 1, UINT64_MAX)
    return (sid[0], sid[1] - 1)


def interval_start(arg: bytes) -> tuple:
    """A range start: inclusive, or exclusive with ``(`` (then the next ID)."""
    if len(arg) > 1 and arg[:1] == b"(":
        sid = incr_id(strict_id(arg[1:]))
        if sid is None:
            raise CommandError(errors.STREAM_INVALID_START)
        return sid
    ms, seq, _ = parse_id(arg, 0)
    return (ms, seq)


def interval_end(arg: bytes) -> tuple:
    if len(arg) > 1 and arg[:1] == b"(":
        ms, seq, _ = parse_id(arg[1:], UINT64_MAX, strict=True)
        sid = decr_id((ms, seq))
        if sid is None:
            raise CommandError(errors.STREAM_INVALID_END)
        return sid
    ms, seq, _ = parse_id(arg, UINT64_MAX)
    return (ms, seq)


def fmt_id(sid: tuple) -> bytes:
    return b"%d-%d" % sid


def entry_reply(sid: tuple, fields: list) -> list:
    return [fmt_id(sid), list(fields)]


def get_stream(ctx, key: bytes) -> Record | None:
    rec = ctx.get(key)
    if rec is not None and rec.kind != KIND_STREAM:
        raise CommandError(errors.WRONGTYPE)
    return rec


def range_reply(s: Stream, start: tuple, end: tuple, count: int, rev: bool = False) -> list:
    out = []
    if start > end:
        return out
    for sid in s.entries.irange(start, end, reverse=rev):
        out.append(entry_reply(sid, s.entries[sid]))
        if count and len(out) >= count:
            break
    return out


# -- XADD / XTRIM ----------------------------------------------------------------------------


class TrimArgs:
    __slots__ = ("strategy", "maxlen", "minid", "approx", "limit", "nomkstream", "id", "seq_given", "pos")

    def __init__(self) -> None:
        self.strategy: bytes | None = None
        self.maxlen = 0
        self.minid = ZERO
        self.approx = False
        self.limit = 0
        self.nomkstream = False
        self.id: tuple | None = None
        self.seq_given = True
        self.pos = 0


def _parse_add_trim(args: list[bytes], xadd: bool) -> TrimArgs:
    """XADD/XTRIM options (streamParseAddOrTrimArgsOrReply); for XADD ``pos`` is the ID's index."""
    t = TrimArgs()
    limit_given = False
    i = 2
    while i < len(args):
        more = len(args) - 1 - i
        opt = args[i]
        if xadd and opt == b"*":
            break
        if (is_opt(opt, b"MAXLEN") or is_opt(opt, b"MINID")) and more:
            if t.strategy is not None:
                raise CommandError(errors.STREAM_MAXLEN_AND_MINID)
            t.approx = False
            if more >= 2 and args[i + 1] in (b"~", b"="):
                t.approx = args[i + 1] == b"~"
                i += 1
            if is_opt(opt, b"MAXLEN"):
                t.maxlen = int_arg(args[i + 1])
                if t.maxlen < 0:
                    raise CommandError(errors.STREAM_MAXLEN_NEGATIVE)
            else:
                t.minid = strict_id(args[i + 1])
            t.strategy = opt.upper()
            i += 1
        elif is_opt(opt, b"LIMIT") and more:
            t.limit = int_arg(args[i + 1])
            if t.limit < 0:
                raise CommandError(errors.STREAM_LIMIT_NEGATIVE)
            limit_given = True
            i += 1
        elif xadd and is_opt(opt, b"NOMKSTREAM"):
            t.nomkstream = True
        elif xadd:
            ms, seq, t.seq_given = parse_id(opt, strict=True, star=True)
            t.id = (ms, seq)
            break
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    if t.limit and t.strategy is None:
        raise CommandError(errors.STREAM_LIMIT_WITHOUT_STRATEGY)
    if not xadd and t.strategy is None:
        raise CommandError(errors.STREAM_XTRIM_WITHOUT_STRATEGY)
    if limit_given:
        if not t.approx:
            raise CommandError(errors.STREAM_LIMIT_WITHOUT_APPROX)
    else:
        t.limit = APPROX_TRIM_LIMIT if t.approx else 0
    t.pos = i
    return t


def trim(ctx, key: bytes, s: Stream, t: TrimArgs) -> int:
    """Trim per ``t`` (exactly; at most ``t.limit`` entries when approximate); how many went."""
    if t.strategy == b"MAXLEN":
        n = len(s.entries) - t.maxlen
        victims = list(s.entries.islice(0, n)) if n > 0 else []
    else:
        victims = list(s.entries.irange(maximum=t.minid, inclusive=(True, False)))
    if t.limit:
        victims = victims[: t.limit]
    if victims:
        ctx.write((OP_XDEL, key, [list(v) for v in victims], False))
    return len(victims)


def _next_id(s: Stream, t: TrimArgs, now_ms: int) -> tuple:
    last = s.last_id
    if t.id is None:
        if now_ms > last[0]:
            return (now_ms, 0)
        nxt = incr_id(last)
        return nxt if nxt is not None else last
    if t.seq_given:
        return t.id
    if t.id[0] == last[0]:
        if last[1] == UINT64_MAX:
            return last  # rejected below: not greater than the top item
        return (last[0], last[1] + 1)
    return (t.id[0], 0)


@command("xadd", -5, "write denyoom fast", keys=(1, 1, 1), group="stream", summary="Appends a new entry to a stream", since="5.0.0", complexity="O(1) when adding a new entry, O(N) when trimming where N being the number of entries evicted.")
def xadd(ctx, args):
    t = _parse_add_trim(args, True)
    fields = args[t.pos + 1 :]
    if len(fields) < 2 or len(fields) % 2:
        raise CommandError(errors.wrong_arity("xadd"))
    if t.id == ZERO and t.seq_given:
        raise CommandError(errors.STREAM_XADD_ZERO_ID)
    key = args[1]
    rec = get_stream(ctx, key)
    if rec is None and t.nomkstream:
        return None
    s = rec.value if rec is not None else Stream()
    if s.last_id == MAX_ID:
        raise CommandError(errors.STREAM_EXHAUSTED)
    sid = _next_id(s, t, ctx.now_ms)
    if sid <= s.last_id:
        raise CommandError(errors.STREAM_XADD_ID_TOO_SMALL)
    ctx.write((OP_XADD, key, sid[0], sid[1], list(fields)))
    if t.strategy is not None:
        trim(ctx, key, ctx.get(key).value, t)
    return fmt_id(sid)


@command("xtrim", -4, "write", keys=(1, 1, 1), group="stream", summary="Deletes messages from the beginning of a stream.", since="5.0.0", complexity="O(N), with N being the number of evicted entries. Constant times are very small however, since entries are organized in macro nodes containing multiple entries that can be released with a single deallocation.")
def xtrim(ctx, args):
    t = _parse_add_trim(args, False)
    rec = get_stream(ctx, args[1])
    if rec is None:
        return 0
    return trim(ctx, args[1], rec.value, t)


@command("xdel", -3, "write fast", keys=(1, 1, 1), group="stream", summary="Removes the specified entries from the stream. Returns the number of items actually deleted, that may be different from the number of IDs passed in case certain IDs do not exist.", since="5.0.0", complexity="O(1) for each single item to delete in the stream, regardless of the stream size.")
def xdel(ctx, args):
    rec = get_stream(ctx, args[1])
    if rec is None:
        return 0
    ids = [strict_id(a) for a in args[2:]]
    present = [list(sid) for sid in dict.fromkeys(ids) if sid in rec.value.entries]
    if present:
        ctx.write((OP_XDEL, args[1], present, True))
    return len(present)


@command("xlen", 2, "readonly fast", keys=(1, 1, 1), group="stream", summary="Return the number of entries in a stream", since="5.0.0", complexity="O(1)")
def xlen(ctx, args):
    rec = get_stream(ctx, args[1])
    return 0 if rec is None else len(rec.value.entries)


def _xrange(ctx, args, rev: bool):
    start_arg, end_arg = (args[3], args[2]) if rev else (args[2], args[3])
    start = interval_start(start_arg)
    end = interval_end(end_arg)
    count = -1
    j = 4
    while j < len(args):
        if is_opt(args[j], b"COUNT") and j + 1 < len(args):
            count = max(int_arg(args[j + 1]), 0)
            j += 2
        else:
            raise CommandError(errors.SYNTAX)
    rec = get_stream(ctx, args[1])
    if rec is None:
        return []
    if count == 0:
        return NULL_ARRAY
    return range_reply(rec.value, start, end, max(count, 0), rev)


@command("xrange", -4, "readonly", keys=(1, 1, 1), group="stream", summary="Return a range of elements in a stream, with IDs matching the specified IDs interval", since="5.0.0", complexity="O(N) with N being the number of elements being returned. If N is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1).")
def xrange(ctx, args):
    return _xrange(ctx, args, False)


@command("xrevrange", -4, "readonly", keys=(1, 1, 1), group="stream", summary="Return a range of elements in a stream, with IDs matching the specified IDs interval, in reverse order (from greater to smaller IDs) compared to XRANGE", since="5.0.0", complexity="O(N) with N being the number of elements returned. If N is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1).")
def xrevrange(ctx, args):
    return _xrange(ctx, args, True)


@command("xsetid", -3, "write denyoom fast", keys=(1, 1, 1), group="stream", summary="An internal command for replicating stream values", since="5.0.0", complexity="O(1)")
def xsetid(ctx, args):
    sid = strict_id(args[2])
    added, max_deleted = -1, ZERO
    i = 3
    while i < len(args):
        if is_opt(args[i], b"ENTRIESADDED") and i + 1 < len(args):
            added = int_arg(args[i + 1])
            if added < 0:
                raise CommandError(errors.STREAM_ENTRIES_ADDED_NEGATIVE)
        elif is_opt(args[i], b"MAXDELETEDID") and i + 1 < len(args):
            max_deleted = strict_id(args[i + 1])
            if sid < max_deleted:
                raise CommandError(errors.STREAM_XSETID_BELOW_MAX_DELETED)
        else:
            raise CommandError(errors.SYNTAX)
        i += 2
    rec = get_stream(ctx, args[1])
    if rec is None:
        raise CommandError(errors.NO_SUCH_KEY)
    s = rec.value
    if s.entries:
        if sid < s.entries.peekitem(-1)[0]:
            raise CommandError(errors.STREAM_XSETID_TOO_SMALL)
        if added != -1 and len(s.entries) > added:
            raise CommandError(errors.STREAM_XSETID_ADDED_TOO_SMALL)
    ctx.write((OP_XSETID, args[1], list(sid), added, list(max_deleted) if max_deleted != ZERO else None))
    return OK
