"""Sorted set commands (Redis 7.0 src/t_zset.c semantics).

A sorted set is a ``ZSet``: ``scores`` maps member -> score (a float) and
``order`` keeps (score, member) pairs sorted, which is Redis's order (score,
then member bytes). Sorted sets change only through two ops: ZADD (assign
scores, creating the set) and ZREM (remove members; removing the last one
removes the key). Whole-value results (ZUNIONSTORE, ZRANGESTORE, ...) replace
the destination with ``ctx.set``.

Lex ranges walk the set in score order from the first member in range and
stop at the first one out of range, as Redis does on a listpack; Redis's
skiplist descent (sets over 128 members) can differ when scores are mixed,
where Redis itself calls the result unspecified.

The commands live in three modules: this one (the value, its ops, the
shared helpers, ZADD/ZINCRBY/ZREM, point reads, ZRANDMEMBER, ZSCAN),
``zsets_range`` (score, lex and rank ranges: ZCOUNT, ZRANGE and its
variants, ZRANGESTORE, ZREMRANGEBY*) and ``zsets_algebra`` (ZUNION, ZINTER,
ZDIFF and their STORE forms, ZINTERCARD, and the pops: ZPOPMIN/MAX, ZMPOP,
the blocking BZPOPMIN/BZPOPMAX/BZMPOP). Geo commands (``geo``) are built on
the same value and ops.
"""

from __future__ import annotations

import math
import re

from sortedcontainers import SortedList

from makod.kv import errors
from makod.kv.args import check_random_picks, INT64_MAX, format_double, int_arg, is_opt, parse_cursor
from makod.kv.errors import CommandError
from makod.kv.glob import compile_matcher
from makod.kv.records import KIND_ZSET, OpSpec, ValueType, register_op, register_type
from makod.kv.replies import Double, Pairs
from makod.kv.table import command
from makod.kv.types.keys import parse_scan_options

# Op codes (sorted sets own 30-39; stored in the log: never reuse one).
OP_ZADD = 30  # (OP_ZADD, key, [[member, score], ...])  creates the zset if absent
OP_ZREM = 31  # (OP_ZREM, key, [member, ...])  removes the key when it empties

# Error texts of src/t_zset.c not in errors.py.
MINMAX_NOT_FLOAT = "ERR min or max is not a float"
MINMAX_NOT_LEX = "ERR min or max not valid string range item"
XX_NX = "ERR XX and NX options at the same time are not compatible"
INCR_SINGLE = "ERR INCR option supports a single increment-element pair"
SCORE_NAN = "ERR resulting score is not a number (NaN)"
LIMIT_ONLY_BY = "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
WITHSCORES_BYLEX = "ERR syntax error, WITHSCORES not supported in combination with BYLEX"
WEIGHT_NOT_FLOAT = "ERR weight value is not a float"

ZSET_MAX_LISTPACK_ENTRIES = 128
ZSET_MAX_LISTPACK_VALUE = 64


class ZSet:
    __slots__ = ("scores", "order")

    def __init__(self) -> None:
        self.scores: dict[bytes, float] = {}
        self.order: SortedList = SortedList()

    def add(self, member: bytes, score: float) -> None:
        old = self.scores.get(member)
        if old is not None:
            self.order.remove((old, member))
        self.scores[member] = score
        self.order.add((score, member))

    def remove(self, member: bytes) -> None:
        score = self.scores.pop(member)
        self.order.remove((score, member))

    def __len__(self) -> int:
        return len(self.scores)

    def __repr__(self) -> str:
        return f"ZSet({list(self.order)!r})"


class ZSetType(ValueType):
    kind = KIND_ZSET
    name = "zset"

    def empty(self) -> ZSet:
        return ZSet()

    def clone(self, value: ZSet) -> ZSet:
        out = ZSet()
        out.scores = dict(value.scores)
        out.order = SortedList(value.order)
        return out

    def to_wire(self, value: ZSet) -> list:
        return [[m, s] for s, m in value.order]

    def from_wire(self, data) -> ZSet:
        out = ZSet()
        for m, s in data:
            out.add(bytes(m), float(s))
        return out

    def size(self, value: ZSet) -> int:
        return len(value.scores)

    def encoding(self, value: ZSet) -> str:
        if len(value) <= ZSET_MAX_LISTPACK_ENTRIES and all(len(m) <= ZSET_MAX_LISTPACK_VALUE for m in value.scores):
            return "listpack"
        return "skiplist"


register_type(ZSetType())


def _apply_zadd(z: ZSet, op: tuple) -> list:
    token = []
    for member, score in op[2]:
        token.append((member, z.scores.get(member)))
        z.add(member, float(score))
    return token


def _apply_zrem(z: ZSet, op: tuple) -> list:
    token = []
    for member in op[2]:
        if member in z.scores:
            token.append((member, z.scores[member]))
            z.remove(member)
    return token


def _undo(z: ZSet, token: list) -> None:
    for member, old in reversed(token):
        if old is None:
            if member in z.scores:
                z.remove(member)
        else:
            z.add(member, old)


register_op(OpSpec(OP_ZADD, KIND_ZSET, "zadd", _apply_zadd, _undo))
register_op(OpSpec(OP_ZREM, KIND_ZSET, "zrem", _apply_zrem, _undo, creates=False))


# -- helpers ------------------------------------------------------------------------------

_HEX = re.compile(rb"[+-]?0[xX]")
_SPACE = b" \t\n\v\f\r"


def parse_score(s: bytes) -> float | None:
    """strtod as Redis's getDoubleFromObject uses it; None for NaN or junk."""
    if not s or s[0] in _SPACE or b"_" in s or s[-1] in _SPACE:
        return None
    try:
        if _HEX.match(s):
            v = float.fromhex(s.decode("ascii"))
        else:
            v = float(s)
    except (ValueError, UnicodeDecodeError):
        return None
    if math.isnan(v):
        return None
    return v


def parse_double_strict(s: bytes) -> float | None:
    """``parse_score`` that also refuses what makes strtod set ERANGE: overflow to
    infinity and underflow to zero (getDoubleFromObject, SORT's scores)."""
    v = parse_score(s)
    if v is None:
        return None
    low = s.lower()
    if math.isinf(v) and b"inf" not in low:
        return None
    if v == 0:
        hexa = _HEX.match(s) is not None
        mantissa = low.split(b"p" if hexa else b"e")[0].lstrip(b"+-")
        if hexa:
            mantissa = mantissa[2:]
        if any(c in b"123456789abcdef" for c in mantissa):
            return None
    return v


def _score_arg(s: bytes, error: str = errors.NOT_FLOAT) -> float:
    v = parse_score(s)
    if v is None:
        raise CommandError(error)
    return v


def _zset(ctx, key: bytes):
    rec = ctx.get(key)
    if rec is not None and rec.kind != KIND_ZSET:
        raise CommandError(errors.WRONGTYPE)
    return rec


def _scored(items, withscores: bool):
    """items: (score, member) pairs in reply order."""
    if withscores:
        return Pairs([(m, Double(s)) for s, m in items])
    return [m for _, m in items]


def _store(ctx, dst: bytes, items) -> int:
    z = ZSet()
    for s, m in items:
        z.add(m, s)
    if len(z):
        ctx.set(dst, KIND_ZSET, z)
    else:
        ctx.delete(dst)
    return len(z)


# -- ZADD / ZINCRBY / ZREM ---------------------------------------------------------------------


@command("zadd", -4, "write denyoom fast", keys=(1, 1, 1), group="sorted-set", summary="Add one or more members to a sorted set, or update its score if it already exists.", since="1.2.0", complexity="O(log(N)) for each item added, where N is the number of elements in the sorted set.")
def zadd(ctx, args):
    return _zadd(ctx, args, False)


@command("zincrby", 4, "write denyoom fast", keys=(1, 1, 1), group="sorted-set", summary="Increment the score of a member in a sorted set.", since="1.2.0", complexity="O(log(N)) where N is the number of elements in the sorted set.")
def zincrby(ctx, args):
    return _zadd(ctx, args, True)


def _zadd(ctx, args, incr: bool):
    nx = xx = gt = lt = ch = False
    j = 2
    while j < len(args):
        a = args[j].upper()
        if a == b"NX":
            nx = True
        elif a == b"XX":
            xx = True
        elif a == b"GT":
            gt = True
        elif a == b"LT":
            lt = True
        elif a == b"CH":
            ch = True
        elif a == b"INCR":
            incr = True
        else:
            break
        j += 1
    if args[0].lower() == b"zincrby":
        j = 2
        nx = xx = gt = lt = ch = False
        incr = True
    elements = len(args) - j
    if elements % 2 or not elements:
        raise CommandError(errors.SYNTAX)
    elements //= 2
    if nx and xx:
        raise CommandError(XX_NX)
    if (gt and nx) or (lt and nx) or (gt and lt):
        raise CommandError(errors.GT_LT_NX)
    if incr and elements > 1:
        raise CommandError(INCR_SINGLE)
    pairs = [(_score_arg(args[k]), args[k + 1]) for k in range(j, len(args), 2)]
    key = args[1]
    rec = _zset(ctx, key)
    if rec is None and xx:
        return None if incr else 0
    current = {} if rec is None else rec.value.scores
    new: dict[bytes, float] = {}
    added = updated = processed = 0
    score = None
    for score, member in pairs:
        cur = new.get(member, current.get(member))
        if cur is not None:
            if nx:
                continue
            if incr:
                score = cur + score
                if math.isnan(score):
                    raise CommandError(SCORE_NAN)
            if (lt and score >= cur) or (gt and score <= cur):
                continue
            processed += 1
            if score != cur:  # as Redis: -0 and 0 are the same score
                new[member] = score
                updated += 1
        else:
            if xx:
                continue
            new[member] = score
            added += 1
            processed += 1
    if new:
        ctx.write((OP_ZADD, key, [[m, s] for m, s in new.items()]))
    if incr:
        return Double(score) if processed else None
    return added + updated if ch else added


@command("zrem", -3, "write fast", keys=(1, 1, 1), group="sorted-set", summary="Remove one or more members from a sorted set.", since="1.2.0", complexity="O(M*log(N)) with N being the number of elements in the sorted set and M the number of elements to be removed.")
def zrem(ctx, args):
    rec = _zset(ctx, args[1])
    if rec is None:
        return 0
    present = [m for m in dict.fromkeys(args[2:]) if m in rec.value.scores]
    if present:
        ctx.write((OP_ZREM, args[1], present))
    return len(present)


# -- point reads --------------------------------------------------------------------------


@command("zcard", 2, "readonly fast", keys=(1, 1, 1), group="sorted-set", summary="Get the number of members in a sorted set.", since="1.2.0")
def zcard(ctx, args):
    rec = _zset(ctx, args[1])
    return 0 if rec is None else len(rec.value)


@command("zscore", 3, "readonly fast", keys=(1, 1, 1), group="sorted-set", summary="Get the score associated with the given member in a sorted set.", since="1.2.0")
def zscore(ctx, args):
    rec = _zset(ctx, args[1])
    if rec is None or args[2] not in rec.value.scores:
        return None
    return Double(rec.value.scores[args[2]])


@command("zmscore", -3, "readonly fast", keys=(1, 1, 1), group="sorted-set", summary="Get the score associated with the given members in a sorted set.", since="6.2.0", complexity="O(N) where N is the number of members being requested.")
def zmscore(ctx, args):
    rec = _zset(ctx, args[1])
    scores = {} if rec is None else rec.value.scores
    return [Double(scores[m]) if m in scores else None for m in args[2:]]


def _rank(ctx, args, rev: bool):
    rec = _zset(ctx, args[1])
    if rec is None:
        return None
    z = rec.value
    score = z.scores.get(args[2])
    if score is None:
        return None
    r = z.order.index((score, args[2]))
    return len(z) - 1 - r if rev else r


@command("zrank", 3, "readonly fast", keys=(1, 1, 1), group="sorted-set", summary="Determine the index of a member in a sorted set.", since="2.0.0", complexity="O(log(N))")
def zrank(ctx, args):
    return _rank(ctx, args, False)


@command("zrevrank", 3, "readonly fast", keys=(1, 1, 1), group="sorted-set", summary="Determine the index of a member in a sorted set, with scores ordered from high to low.", since="2.0.0", complexity="O(log(N))")
def zrevrank(ctx, args):
    return _rank(ctx, args, True)


# -- sampling and iteration ---------------------------------------------------------------


@command("zrandmember", -2, "readonly", keys=(1, 1, 1), group="sorted-set", summary="Get one or multiple random elements from a sorted set.", since="6.2.0", complexity="O(N) where N is the number of elements returned")
def zrandmember(ctx, args):
    argc = len(args)
    if argc == 2:
        rec = _zset(ctx, args[1])
        if rec is None:
            return None
        z = rec.value
        return z.order[ctx.randrange(len(z))][1]
    count = int_arg(args[2])
    if count < -INT64_MAX:
        raise CommandError(errors.value_out_of_range_between(-INT64_MAX, INT64_MAX))
    if argc > 4 or (argc == 4 and not is_opt(args[3], b"WITHSCORES")):
        raise CommandError(errors.SYNTAX)
    withscores = argc == 4
    if withscores and (count < -(INT64_MAX // 2) or count > INT64_MAX // 2):
        raise CommandError(errors.VALUE_OUT_OF_RANGE)
    rec = _zset(ctx, args[1])
    if rec is None or count == 0:
        return []
    check_random_picks(count)
    z = rec.value
    items = list(z.order)
    size = len(items)
    if count < 0 or count == 1:
        picked = [items[ctx.randrange(size)] for _ in range(-count if count < 0 else 1)]
    elif count >= size:
        picked = items[::-1]  # the whole zset, highest score first (as Redis 7.0)
    else:
        for i in range(count):
            j = i + ctx.randrange(size - i)
            items[i], items[j] = items[j], items[i]
        picked = items[:count]
    return _scored(picked, withscores)


@command("zscan", -3, "readonly", keys=(1, 1, 1), group="sorted-set", summary="Incrementally iterate sorted sets elements and associated scores.", since="2.8.0", complexity="O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection..")
def zscan(ctx, args):
    cursor = parse_cursor(args[2])
    rec = _zset(ctx, args[1])
    if rec is None:
        return [b"0", []]
    count, pattern, _ = parse_scan_options(args, 3, allow_type=False)
    z = rec.value
    if len(z) <= ZSET_MAX_LISTPACK_ENTRIES:
        next_cursor, page = 0, [m for _, m in z.order]
    else:
        from makod.kv.types.hashes import _hscan_page

        next_cursor, page = _hscan_page(z.scores, cursor, count)
    if pattern is not None:
        matches = compile_matcher(pattern)
        page = [m for m in page if matches(m)]
    out = []
    for m in page:
        out.append(m)
        out.append(format_double(z.scores[m]))
    return [b"%d" % next_cursor, out]
