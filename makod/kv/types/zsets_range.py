"""Sorted set ranges (Redis 7.0 src/t_zset.c): by score, lex and rank.

ZCOUNT, ZLEXCOUNT, ZRANGE and its older variants, ZRANGESTORE and the
ZREMRANGEBY* commands, and the range helpers the geo commands reuse. The
value and its ops are in ``zsets``.

Lex ranges walk the set in score order from the first member in range and
stop at the first one out of range, as Redis does on a listpack; Redis's
skiplist descent (sets over 128 members) can differ when scores are mixed,
where Redis itself calls the result unspecified.
"""

from __future__ import annotations

import math

from makod.kv import errors
from makod.kv.args import int_arg
from makod.kv.errors import CommandError
from makod.kv.table import command
from makod.kv.types.zsets import (
    _SPACE,
    LIMIT_ONLY_BY,
    MINMAX_NOT_FLOAT,
    MINMAX_NOT_LEX,
    OP_ZREM,
    WITHSCORES_BYLEX,
    ZSet,
    _scored,
    _store,
    _zset,
    parse_score,
)


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




def _lex_empty(rng) -> bool:
    """A range no set can hold: min above max, or equal with an open end."""
    mn, mx = rng
    rank = {b"-": 0, b"+": 2}
    a = (rank[mn], b"") if mn in rank else (1, mn[0])
    b = (rank[mx], b"") if mx in rank else (1, mx[0])
    return a > b or (a == b and a[0] == 1 and (mn[1] or mx[1]))


def _lex_items(z: ZSet, rng, rev: bool) -> list:
    """What Redis answers on a listpack, whose lex walk assumes equal scores:
    nothing unless the last member is >= min and the first <= max; else from
    the first member >= min (it must also be <= max) while members are <= max
    (rev: from the last member <= max, while members are >= min)."""
    order = z.order
    if not len(order) or _lex_empty(rng):
        return []
    if not _gte_min(order[-1][1], rng[0]) or not _lte_max(order[0][1], rng[1]):
        return []
    seq = reversed(order) if rev else iter(order)
    enters, stays = (_lte_max, _gte_min) if rev else (_gte_min, _lte_max)
    enter_bound, stay_bound = (rng[1], rng[0]) if rev else (rng[0], rng[1])
    out = []
    for s, m in seq:
        if not out:
            if enters(m, enter_bound):
                if not stays(m, stay_bound):
                    return []
                out.append((s, m))
        elif stays(m, stay_bound):
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
