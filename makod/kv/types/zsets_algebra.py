"""Sorted set algebra and pops (Redis 7.0 src/t_zset.c).

ZUNION, ZINTER, ZDIFF (sets count as score 1) and their STORE forms,
ZINTERCARD; ZPOPMIN, ZPOPMAX, ZMPOP and the blocking BZPOPMIN, BZPOPMAX,
BZMPOP. The value and its ops are in ``zsets``.
"""

from __future__ import annotations

import math

from makod.kv import errors
from makod.kv.args import int_arg, is_opt, parse_int, parse_intercard_limit, parse_timeout_ms
from makod.kv.errors import CommandError
from makod.kv.records import KIND_SET, KIND_ZSET
from makod.kv.replies import NULL_ARRAY, Blocked, Double
from makod.kv.table import command, numkeys_finder
from makod.kv.types.zsets import OP_ZREM, WEIGHT_NOT_FLOAT, _score_arg, _scored, _store, _zset


# -- popping -----------------------------------------------------------------------------


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
