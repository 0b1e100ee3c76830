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

Not implemented: BZPOPMIN, BZPOPMAX, BZMPOP (blocking pops).
"""

from __future__ import annotations

import math
import re

from sortedcontainers import SortedList

from makod.kv import errors
from makod.kv.args import parse_intercard_limit, INT64_MAX, format_double, int_arg, is_opt, parse_cursor, parse_int, parse_timeout_ms
from makod.kv.errors import CommandError
from makod.kv.glob import compile_matcher
from makod.kv.records import KIND_SET, KIND_ZSET, OpSpec, ValueType, register_op, register_type
from makod.kv.replies import NULL_ARRAY, Blocked, Double, Pairs
from makod.kv.table import command, numkeys_finder
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


# Score ranges: (min, minex, max, maxex).
def _parse_score_bound(s: bytes) -> tuple[float, bool]:
    ex = s[:1] == b"("
    if ex:
        s = s[1:]
    s = s.lstrip(_SPACE)  # strtod skips leading space; an empty text reads 0
    v = 0.0 if not s else parse_score(s)
    if v is None:
        raise CommandError(MINMAX_NOT_FLOAT)
    return v, ex


def _score_range(lo: bytes, hi: bytes):
    mn, mnex = _parse_score_bound(lo)
    mx, mxex = _parse_score_bound(hi)
    return mn, mnex, mx, mxex


def _in_score(score: float, rng) -> bool:
    mn, mnex, mx, mxex = rng
    return (score > mn if mnex else score >= mn) and (score < mx if mxex else score <= mx)


# Lex ranges: each bound is (value, exclusive) or "-" / "+".
def _parse_lex_bound(s: bytes):
    if s == b"+" or s == b"-":
        return s
    if s[:1] == b"(":
        return (s[1:], True)
    if s[:1] == b"[":
        return (s[1:], False)
    raise CommandError(MINMAX_NOT_LEX)


def _lex_range(lo: bytes, hi: bytes):
    return _parse_lex_bound(lo), _parse_lex_bound(hi)


def _gte_min(m: bytes, mn) -> bool:
    if mn == b"-":
        return True
    if mn == b"+":
        return False
    return m > mn[0] if mn[1] else m >= mn[0]


def _lte_max(m: bytes, mx) -> bool:
    if mx == b"+":
        return True
    if mx == b"-":
        return False
    return m < mx[0] if mx[1] else m <= mx[0]


def _in_lex(m: bytes, rng) -> bool:
    return _gte_min(m, rng[0]) and _lte_max(m, rng[1])


def _score_items(z: ZSet, rng, rev: bool) -> list:
    """(score, member) of the range, in ascending (or, rev, descending) order."""
    mn, mnex, mx, mxex = rng
    if mn > mx or (mn == mx and (mnex or mxex)):
        return []
    order = z.order
    lo = order.bisect_left((mn,))
    hi = len(order) if mx == math.inf else order.bisect_left((math.nextafter(mx, math.inf),))
    items = list(order.islice(lo, hi)) if lo < hi else []
    items = [it for it in items if _in_score(it[0], rng)]
    if rev:
        items.reverse()
    return items




def _lex_items(z: ZSet, rng, rev: bool) -> list:
    """As Redis walks a listpack: the first element in range, then while in range."""
    seq = list(z.order) if not rev else list(reversed(z.order))
    out = []
    started = False
    for s, m in seq:
        if not started:
            if _in_lex(m, rng):
                started = True
                out.append((s, m))
        elif _in_lex(m, rng):
            out.append((s, m))
        else:
            break
    return out


def _rank_bounds(start: int, end: int, llen: int):
    if start < 0:
        start += llen
    if end < 0:
        end += llen
    if start < 0:
        start = 0
    if start > end or start >= llen:
        return None
    if end >= llen:
        end = llen - 1
    return start, end


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


@command("zcount", 4, "readonly fast", keys=(1, 1, 1), group="sorted-set", summary="Count the members in a sorted set with scores within the given values.", since="2.0.0", complexity="O(log(N)) with N being the number of elements in the sorted set.")
def zcount(ctx, args):
    rng = _score_range(args[2], args[3])
    rec = _zset(ctx, args[1])
    return 0 if rec is None else len(_score_items(rec.value, rng, False))


@command("zlexcount", 4, "readonly fast", keys=(1, 1, 1), group="sorted-set", summary="Count the number of members in a sorted set between a given lexicographical range.", since="2.8.9", complexity="O(log(N)) with N being the number of elements in the sorted set.")
def zlexcount(ctx, args):
    rng = _lex_range(args[2], args[3])
    rec = _zset(ctx, args[1])
    return 0 if rec is None else len(_lex_items(rec.value, rng, False))


# -- ranges -------------------------------------------------------------------------------

RANK, SCORE, LEX = 0, 1, 2


def _zrange(ctx, args, argc_start: int, store: bytes | None, rangetype, direction):
    """zrangeGenericCommand: direction None = auto (REV may set it), True = reverse."""
    key = args[argc_start]
    lo, hi = args[argc_start + 1], args[argc_start + 2]
    withscores = False
    offset, limit = 0, -1
    has_limit = False
    j = argc_start + 3
    while j < len(args):
        left = len(args) - j - 1
        a = args[j].upper()
        if store is None and a == b"WITHSCORES":
            withscores = True
        elif a == b"LIMIT" and left >= 2:
            offset = int_arg(args[j + 1])
            limit = int_arg(args[j + 2])
            has_limit = True
            j += 2
        elif direction is None and a == b"REV":
            direction = True
        elif rangetype is None and a == b"BYLEX":
            rangetype = LEX
        elif rangetype is None and a == b"BYSCORE":
            rangetype = SCORE
        else:
            raise CommandError(errors.SYNTAX)
        j += 1
    rev = bool(direction)
    if rangetype is None:
        rangetype = RANK
    if has_limit and rangetype == RANK:
        raise CommandError(LIMIT_ONLY_BY)
    if withscores and rangetype == LEX:
        raise CommandError(WITHSCORES_BYLEX)
    if rev and rangetype in (SCORE, LEX):
        lo, hi = hi, lo
    if rangetype == RANK:
        start, end = int_arg(lo), int_arg(hi)
    elif rangetype == SCORE:
        rng = _score_range(lo, hi)
    else:
        rng = _lex_range(lo, hi)
    rec = _zset(ctx, key)
    if rec is None:
        items = []
    else:
        z = rec.value
        if rangetype == RANK:
            b = _rank_bounds(start, end, len(z))
            if b is None:
                items = []
            elif rev:
                n = len(z)
                items = list(z.order.islice(n - 1 - b[1], n - b[0]))[::-1]
            else:
                items = list(z.order.islice(b[0], b[1] + 1))
        else:
            items = _score_items(z, rng, rev) if rangetype == SCORE else _lex_items(z, rng, rev)
            if offset < 0:
                items = []
            else:
                items = items[offset:] if limit < 0 else items[offset : offset + limit]
    if store is not None:
        return _store(ctx, store, items)
    return _scored(items, withscores)


@command("zrange", -4, "readonly", keys=(1, 1, 1), group="sorted-set", summary="Return a range of members in a sorted set.", since="1.2.0", complexity="O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned.")
def zrange(ctx, args):
    return _zrange(ctx, args, 1, None, None, None)


@command("zrangestore", -5, "write denyoom", keys=(1, 2, 1), group="sorted-set", summary="Store a range of members from sorted set into another key.", since="6.2.0", complexity="O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements stored into the destination key.")
def zrangestore(ctx, args):
    return _zrange(ctx, args, 2, args[1], None, None)


@command("zrevrange", -4, "readonly", keys=(1, 1, 1), group="sorted-set", summary="Return a range of members in a sorted set, by index, with scores ordered from high to low.", since="1.2.0", complexity="O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned.")
def zrevrange(ctx, args):
    return _zrange(ctx, args, 1, None, RANK, True)


@command("zrangebyscore", -4, "readonly", keys=(1, 1, 1), group="sorted-set", summary="Return a range of members in a sorted set, by score.", since="1.0.5", complexity="O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned.")
def zrangebyscore(ctx, args):
    return _zrange(ctx, args, 1, None, SCORE, False)


@command("zrevrangebyscore", -4, "readonly", keys=(1, 1, 1), group="sorted-set", summary="Return a range of members in a sorted set, by score, with scores ordered from high to low.", since="2.2.0", complexity="O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned.")
def zrevrangebyscore(ctx, args):
    return _zrange(ctx, args, 1, None, SCORE, True)


@command("zrangebylex", -4, "readonly", keys=(1, 1, 1), group="sorted-set", summary="Return a range of members in a sorted set, by lexicographical range.", since="2.8.9", complexity="O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned.")
def zrangebylex(ctx, args):
    return _zrange(ctx, args, 1, None, LEX, False)


@command("zrevrangebylex", -4, "readonly", keys=(1, 1, 1), group="sorted-set", summary="Return a range of members in a sorted set, by lexicographical range, ordered from higher to lower strings.", since="2.8.9", complexity="O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned.")
def zrevrangebylex(ctx, args):
    return _zrange(ctx, args, 1, None, LEX, True)


# -- removing ranges and popping ----------------------------------------------------------


def _zremrange(ctx, args, rangetype):
    if rangetype == RANK:
        start, end = int_arg(args[2]), int_arg(args[3])
    elif rangetype == SCORE:
        rng = _score_range(args[2], args[3])
    else:
        rng = _lex_range(args[2], args[3])
    rec = _zset(ctx, args[1])
    if rec is None:
        return 0
    z = rec.value
    if rangetype == RANK:
        b = _rank_bounds(start, end, len(z))
        items = [] if b is None else list(z.order.islice(b[0], b[1] + 1))
    elif rangetype == SCORE:
        items = _score_items(z, rng, False)
    else:
        items = _lex_items(z, rng, False)
    if items:
        ctx.write((OP_ZREM, args[1], [m for _, m in items]))
    return len(items)


@command("zremrangebyrank", 4, "write", keys=(1, 1, 1), group="sorted-set", summary="Remove all members in a sorted set within the given indexes.", since="2.0.0", complexity="O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.")
def zremrangebyrank(ctx, args):
    return _zremrange(ctx, args, RANK)


@command("zremrangebyscore", 4, "write", keys=(1, 1, 1), group="sorted-set", summary="Remove all members in a sorted set within the given scores.", since="1.2.0", complexity="O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.")
def zremrangebyscore(ctx, args):
    return _zremrange(ctx, args, SCORE)


@command("zremrangebylex", 4, "write", keys=(1, 1, 1), group="sorted-set", summary="Remove all members in a sorted set between the given lexicographical range.", since="2.8.9", complexity="O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.")
def zremrangebylex(ctx, args):
    return _zremrange(ctx, args, LEX)


def _zpop(ctx, args, maxside: bool):
    if len(args) > 3:
        raise CommandError(errors.SYNTAX)
    count = None
    if len(args) == 3:
        count = parse_int(args[2])
        if count is None or count < 0:
            raise CommandError(errors.COUNT_NOT_POSITIVE)
    rec = _zset(ctx, args[1])
    if rec is None:
        return []
    z = rec.value
    n = 1 if count is None else count
    if n == 0:
        return []
    items = list(z.order.islice(max(0, len(z) - n), len(z)))[::-1] if maxside else list(z.order.islice(0, n))
    ctx.write((OP_ZREM, args[1], [m for _, m in items]))
    if count is None:
        s, m = items[0]
        return [m, Double(s)]
    return _scored(items, True)


@command("zpopmin", -2, "write fast", keys=(1, 1, 1), group="sorted-set", summary="Remove and return members with the lowest scores in a sorted set.", since="5.0.0", complexity="O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements popped.")
def zpopmin(ctx, args):
    return _zpop(ctx, args, False)


@command("zpopmax", -2, "write fast", keys=(1, 1, 1), group="sorted-set", summary="Remove and return members with the highest scores in a sorted set.", since="5.0.0", complexity="O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements popped.")
def zpopmax(ctx, args):
    return _zpop(ctx, args, True)


# -- algebra ------------------------------------------------------------------------------

UNION, INTER, DIFF = 0, 1, 2


def _source(ctx, key: bytes) -> dict | None:
    """A zset's scores, or a set's members with score 1; None if missing."""
    rec = ctx.get(key)
    if rec is None:
        return None
    if rec.kind == KIND_ZSET:
        return rec.value.scores
    if rec.kind == KIND_SET:
        return dict.fromkeys(rec.value, 1.0)
    raise CommandError(errors.WRONGTYPE)


def _agg(a: float, b: float, how: bytes) -> float:
    if how == b"SUM":
        v = a + b
        return 0.0 if math.isnan(v) else v
    if how == b"MIN":
        return a if a < b else b
    return a if a > b else b


def _algebra(ctx, args, op: int, numkeys_at: int, dst: bytes | None):
    numkeys = int_arg(args[numkeys_at])
    name = args[0].decode("utf-8", "replace").lower()
    if numkeys < 1:
        raise CommandError(f"ERR at least 1 input key is needed for '{name}' command")
    if numkeys > len(args) - numkeys_at - 1:
        raise CommandError(errors.SYNTAX)
    keys = args[numkeys_at + 1 : numkeys_at + 1 + numkeys]
    sources = [_source(ctx, k) for k in keys]
    weights = [1.0] * numkeys
    how = b"SUM"
    withscores = False
    j = numkeys_at + 1 + numkeys
    while j < len(args):
        remaining = len(args) - j
        a = args[j].upper()
        if op != DIFF and remaining >= numkeys + 1 and a == b"WEIGHTS":
            j += 1
            for i in range(numkeys):
                weights[i] = _score_arg(args[j], WEIGHT_NOT_FLOAT)
                j += 1
            continue
        if op != DIFF and remaining >= 2 and a == b"AGGREGATE":
            h = args[j + 1].upper()
            if h not in (b"SUM", b"MIN", b"MAX"):
                raise CommandError(errors.SYNTAX)
            how = h
            j += 2
            continue
        if dst is None and a == b"WITHSCORES":
            withscores = True
            j += 1
            continue
        raise CommandError(errors.SYNTAX)

    def weighted(score: float, w: float) -> float:
        v = score * w
        return 0.0 if math.isnan(v) else v

    result: dict[bytes, float] = {}
    if op == UNION:
        for src, w in zip(sources, weights):
            if not src:
                continue
            for m, s in src.items():
                v = weighted(s, w)
                result[m] = _agg(result[m], v, how) if m in result else v
    elif op == INTER:
        if all(sources):
            idx = sorted(range(numkeys), key=lambda i: len(sources[i]))
            first = idx[0]
            for m, s in sources[first].items():
                if all(m in sources[i] for i in idx[1:]):
                    v = weighted(s, weights[first])
                    for i in idx[1:]:
                        v = _agg(v, weighted(sources[i][m], weights[i]), how)
                    result[m] = v
    else:
        first = sources[0]
        if first:
            rest = [s for s in sources[1:] if s]
            result = {m: s for m, s in first.items() if not any(m in r for r in rest)}
    items = sorted((s, m) for m, s in result.items())
    if dst is not None:
        return _store(ctx, dst, items)
    return _scored(items, withscores)


@command("zunion", -3, "readonly movablekeys", key_finder=numkeys_finder(1), group="sorted-set", summary="Add multiple sorted sets.", since="6.2.0", complexity="O(N)+O(M*log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set.")
def zunion(ctx, args):
    return _algebra(ctx, args, UNION, 1, None)


@command("zinter", -3, "readonly movablekeys", key_finder=numkeys_finder(1), group="sorted-set", summary="Intersect multiple sorted sets.", since="6.2.0", complexity="O(N*K)+O(M*log(M)) worst case with N being the smallest input sorted set, K being the number of input sorted sets and M being the number of elements in the resulting sorted set.")
def zinter(ctx, args):
    return _algebra(ctx, args, INTER, 1, None)


@command("zdiff", -3, "readonly movablekeys", key_finder=numkeys_finder(1), group="sorted-set", summary="Subtract multiple sorted sets.", since="6.2.0", complexity="O(L + (N-K)log(N)) worst case where L is the total number of elements in all the sets, N is the size of the first set, and K is the size of the result set.")
def zdiff(ctx, args):
    return _algebra(ctx, args, DIFF, 1, None)


@command("zunionstore", -4, "write denyoom movablekeys", key_finder=numkeys_finder(2, 1), group="sorted-set", summary="Add multiple sorted sets and store the resulting sorted set in a new key.", since="2.0.0", complexity="O(N)+O(M log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set.")
def zunionstore(ctx, args):
    return _algebra(ctx, args, UNION, 2, args[1])


@command("zinterstore", -4, "write denyoom movablekeys", key_finder=numkeys_finder(2, 1), group="sorted-set", summary="Intersect multiple sorted sets and store the resulting sorted set in a new key.", since="2.0.0", complexity="O(N*K)+O(M*log(M)) worst case with N being the smallest input sorted set, K being the number of input sorted sets and M being the number of elements in the resulting sorted set.")
def zinterstore(ctx, args):
    return _algebra(ctx, args, INTER, 2, args[1])


@command("zdiffstore", -4, "write denyoom movablekeys", key_finder=numkeys_finder(2, 1), group="sorted-set", summary="Subtract multiple sorted sets and store the resulting sorted set in a new key.", since="6.2.0", complexity="O(L + (N-K)log(N)) worst case where L is the total number of elements in all the sets, N is the size of the first set, and K is the size of the result set.")
def zdiffstore(ctx, args):
    return _algebra(ctx, args, DIFF, 2, args[1])


@command("zintercard", -3, "readonly movablekeys", key_finder=numkeys_finder(1), group="sorted-set", summary="Intersect multiple sorted sets and return the cardinality of the result.", since="7.0.0", complexity="O(N*K) worst case with N being the smallest input sorted set, K being the number of input sorted sets.")
def zintercard(ctx, args):
    numkeys = int_arg(args[1])
    if numkeys < 1:
        raise CommandError("ERR at least 1 input key is needed for 'zintercard' command")
    if numkeys > len(args) - 2:
        raise CommandError(errors.SYNTAX)
    sources = [_source(ctx, k) for k in args[2 : 2 + numkeys]]
    limit = parse_intercard_limit(args, 2 + numkeys)
    if not all(sources):
        return 0
    sources.sort(key=len)
    n = 0
    for m in sources[0]:
        if all(m in s for s in sources[1:]):
            n += 1
            if limit and n >= limit:
                break
    return n


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


def _zmpop(ctx, args, numkeys_at: int):
    """ZMPOP's work (also BZMPOP's): [key, [[member, score], ...]], or None when every key is missing."""
    numkeys = parse_int(args[numkeys_at])
    if numkeys is None or numkeys < 1:
        raise CommandError("ERR numkeys should be greater than 0")
    first = numkeys_at + 1
    j = first + numkeys
    if j >= len(args):
        raise CommandError(errors.SYNTAX)
    where = args[j].upper()
    if where not in (b"MIN", b"MAX"):
        raise CommandError(errors.SYNTAX)
    j += 1
    count = -1
    while j < len(args):
        if count == -1 and is_opt(args[j], b"COUNT") and j + 1 < len(args):
            count = parse_int(args[j + 1])
            if count is None or count < 1:
                raise CommandError("ERR count should be greater than 0")
            j += 2
        else:
            raise CommandError(errors.SYNTAX)
    n = 1 if count == -1 else count
    for key in args[first : first + numkeys]:
        rec = _zset(ctx, key)
        if rec is None:
            continue
        z = rec.value
        if where == b"MAX":
            items = list(z.order.islice(max(0, len(z) - n), len(z)))[::-1]
        else:
            items = list(z.order.islice(0, n))
        ctx.write((OP_ZREM, key, [m for _, m in items]))
        return [key, [[m, Double(s)] for s, m in items]]
    return None


@command("zmpop", -4, "write movablekeys", key_finder=numkeys_finder(1), group="sorted-set", summary="Remove and return members with scores in a sorted set", since="7.0.0", complexity="O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements in the sorted set, and M being the number of elements popped.")
def zmpop(ctx, args):
    got = _zmpop(ctx, args, 1)
    return NULL_ARRAY if got is None else got


# -- blocking pops (the session retries a Blocked answer: see lists.py) ------------------------


def _bzpop(maxside: bool):
    def handler(ctx, args):
        timeout_ms = parse_timeout_ms(args[-1])
        for key in args[1:-1]:
            rec = _zset(ctx, key)
            if rec is None:
                continue
            z = rec.value
            score, member = z.order[-1] if maxside else z.order[0]
            ctx.write((OP_ZREM, key, [member]))
            return [key, member, Double(score)]
        return Blocked(timeout_ms, NULL_ARRAY) if ctx.may_block else NULL_ARRAY

    return handler


command("bzpopmin", -3, "write fast blocking", keys=(1, -2, 1), group="sorted-set", summary="Remove and return the member with the lowest score from one or more sorted sets, or block until one is available", since="5.0.0", complexity="O(log(N)) with N being the number of elements in the sorted set.")(_bzpop(False))
command("bzpopmax", -3, "write fast blocking", keys=(1, -2, 1), group="sorted-set", summary="Remove and return the member with the highest score from one or more sorted sets, or block until one is available", since="5.0.0", complexity="O(log(N)) with N being the number of elements in the sorted set.")(_bzpop(True))


@command("bzmpop", -5, "write blocking movablekeys", key_finder=numkeys_finder(2), group="sorted-set", summary="Remove and return members with scores in a sorted set or block until one is available", since="7.0.0", complexity="O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements in the sorted set, and M being the number of elements popped.")
def bzmpop(ctx, args):
    timeout_ms = parse_timeout_ms(args[1])
    got = _zmpop(ctx, args, 2)
    if got is not None:
        return got
    return Blocked(timeout_ms, NULL_ARRAY) if ctx.may_block else NULL_ARRAY
