"""Hash commands (Redis 7.0 src/t_hash.c semantics).

A hash is a dict of field -> value bytes; its iteration order is insertion
order, which is also the order of a small Redis hash (a listpack): new fields
go last, updated fields keep their place, so HKEYS, HGETALL and friends answer
in the same order Redis does for hashes of up to 128 fields.

Hashes change only through two ops: HSET (assign fields, creating the hash)
and HDEL (remove fields; removing the last one removes the key).
"""

from __future__ import annotations

import heapq
from fractions import Fraction

from makod.kv.keyspace import scan_hash
from makod.kv.records import KIND_HASH, OP_HDEL, OP_HSET, OpSpec, Record, ValueType, register_op, register_type
from makod.kv import errors
from makod.kv.args import (
    check_random_picks,
    INT64_MAX,
    INT64_MIN,
    format_long_double,
    int_arg,
    is_finite,
    is_opt,
    ld_add,
    parse_cursor,
    parse_int,
    parse_long_double,
)
from makod.kv.types.keys import parse_scan_options
from makod.kv.errors import CommandError
from makod.kv.glob import compile_matcher
from makod.kv.replies import OK, Map, Pairs
from makod.kv.table import command

# Redis's hash-max-listpack-entries default: a hash this small is answered
# whole by HSCAN (cursor 0), as Redis does for listpack-encoded hashes.
HSCAN_WHOLE_MAX = 128
# A bigger hash is scanned in stable field-hash order. Each call costs O(N)
# (the fields are not kept sorted), so a call returns at least 1/32 of the
# hash however small COUNT is: a full scan stays O(N) calls-worth of work x 32.
HSCAN_MIN_FRACTION = 32


class HashType(ValueType):
    """A dict of field -> value, in insertion order."""

    kind = KIND_HASH
    name = "hash"

    def empty(self) -> dict:
        return {}

    def clone(self, value: dict) -> dict:
        return dict(value)

    def to_wire(self, value: dict) -> dict:
        return dict(value)

    def from_wire(self, data: dict) -> dict:
        return {bytes(f): bytes(v) for f, v in data.items()}

    def size(self, value: dict) -> int:
        return len(value)

    def encoding(self, value: dict) -> str:
        if len(value) <= 128 and all(len(f) <= 64 and len(v) <= 64 for f, v in value.items()):
            return "listpack"
        return "hashtable"


register_type(HashType())


def _apply_hset(fields: dict, op: tuple) -> list:
    mapping = op[2]
    token = [(field, fields.get(field)) for field in mapping]
    fields.update(mapping)
    return token


def _apply_hdel(fields: dict, op: tuple) -> list:
    return [(field, fields.pop(field)) for field in op[2] if field in fields]


def _undo_fields(fields: dict, token: list) -> None:
    for field, old in reversed(token):
        if old is None:
            del fields[field]
        else:
            fields[field] = old


register_op(OpSpec(OP_HSET, KIND_HASH, "hset", _apply_hset, _undo_fields))
register_op(OpSpec(OP_HDEL, KIND_HASH, "hdel", _apply_hdel, _undo_fields, creates=False))


def _hset(ctx, key: bytes, rec: Record | None, mapping: dict[bytes, bytes]) -> int:
    """Assign ``mapping`` in the hash ``rec`` (checked) at ``key``: how many fields are new."""
    added = len(mapping) if rec is None else sum(1 for field in mapping if field not in rec.value)
    ctx.write((OP_HSET, key, mapping))
    return added


def _hash(ctx, key: bytes) -> Record | None:
    """The hash at ``key``, None if missing, WRONGTYPE if not a hash."""
    rec = ctx.get(key)
    if rec is not None and rec.kind != KIND_HASH:
        raise CommandError(errors.WRONGTYPE)
    return rec


# -- setting --------------------------------------------------------------------------


def _pairs(args: list[bytes], name: str) -> dict[bytes, bytes]:
    if len(args) % 2 == 1:
        raise CommandError(errors.wrong_arity(name))
    mapping = {}
    for j in range(2, len(args), 2):
        mapping[args[j]] = args[j + 1]  # a repeated field: the last value wins
    return mapping


@command("hset", -4, "write denyoom fast", keys=(1, 1, 1), group="hash", summary="Set the string value of a hash field.", since="2.0.0", complexity="O(1) for each field/value pair added, so O(N) to add N field/value pairs when the command is called with multiple field/value pairs.")
def hset(ctx, args):
    mapping = _pairs(args, "hset")
    return _hset(ctx, args[1], _hash(ctx, args[1]), mapping)


@command("hmset", -4, "write denyoom fast", keys=(1, 1, 1), group="hash", summary="Set multiple hash fields to multiple values.", since="2.0.0", complexity="O(N) where N is the number of fields being set.")
def hmset(ctx, args):
    mapping = _pairs(args, "hmset")
    _hset(ctx, args[1], _hash(ctx, args[1]), mapping)
    return OK


@command("hsetnx", 4, "write denyoom fast", keys=(1, 1, 1), group="hash", summary="Set the value of a hash field, only if the field does not exist.", since="2.0.0", complexity="O(1)")
def hsetnx(ctx, args):
    rec = _hash(ctx, args[1])
    if rec is not None and args[2] in rec.value:
        return 0
    ctx.write((OP_HSET, args[1], {args[2]: args[3]}))
    return 1


@command("hdel", -3, "write fast", keys=(1, 1, 1), group="hash", summary="Delete one or more hash fields.", since="2.0.0", complexity="O(N) where N is the number of fields to be removed.")
def hdel(ctx, args):
    rec = _hash(ctx, args[1])
    if rec is None:
        return 0
    present = [field for field in dict.fromkeys(args[2:]) if field in rec.value]
    if present:
        ctx.write((OP_HDEL, args[1], present))
    return len(present)


# -- reading --------------------------------------------------------------------------


@command("hget", 3, "readonly fast", keys=(1, 1, 1), group="hash", summary="Get the value of a hash field.", since="2.0.0", complexity="O(1)")
def hget(ctx, args):
    rec = _hash(ctx, args[1])
    return None if rec is None else rec.value.get(args[2])


@command("hmget", -3, "readonly fast", keys=(1, 1, 1), group="hash", summary="Get the values of all the given hash fields.", since="2.0.0", complexity="O(N) where N is the number of fields being requested.")
def hmget(ctx, args):
    rec = _hash(ctx, args[1])
    if rec is None:
        return [None] * (len(args) - 2)
    fields = rec.value
    return [fields.get(field) for field in args[2:]]


@command("hexists", 3, "readonly fast", keys=(1, 1, 1), group="hash", summary="Determine if a hash field exists.", since="2.0.0", complexity="O(1)")
def hexists(ctx, args):
    rec = _hash(ctx, args[1])
    return int(rec is not None and args[2] in rec.value)


@command("hlen", 2, "readonly fast", keys=(1, 1, 1), group="hash", summary="Get the number of fields in a hash.", since="2.0.0", complexity="O(1)")
def hlen(ctx, args):
    rec = _hash(ctx, args[1])
    return 0 if rec is None else len(rec.value)


@command("hstrlen", 3, "readonly fast", keys=(1, 1, 1), group="hash", summary="Get the length of the value of a hash field.", since="3.2.0", complexity="O(1)")
def hstrlen(ctx, args):
    rec = _hash(ctx, args[1])
    if rec is None:
        return 0
    value = rec.value.get(args[2])
    return 0 if value is None else len(value)


@command("hkeys", 2, "readonly", keys=(1, 1, 1), group="hash", summary="Get all the fields in a hash.", since="2.0.0", complexity="O(N) where N is the size of the hash.")
def hkeys(ctx, args):
    rec = _hash(ctx, args[1])
    return [] if rec is None else list(rec.value)


@command("hvals", 2, "readonly", keys=(1, 1, 1), group="hash", summary="Get all the values in a hash.", since="2.0.0", complexity="O(N) where N is the size of the hash.")
def hvals(ctx, args):
    rec = _hash(ctx, args[1])
    return [] if rec is None else list(rec.value.values())


@command("hgetall", 2, "readonly", keys=(1, 1, 1), group="hash", summary="Get all the fields and values in a hash.", since="2.0.0", complexity="O(N) where N is the size of the hash.")
def hgetall(ctx, args):
    rec = _hash(ctx, args[1])
    return Map([] if rec is None else rec.value)


# -- counters -------------------------------------------------------------------------


@command("hincrby", 4, "write denyoom fast", keys=(1, 1, 1), group="hash", summary="Increment the integer value of a hash field by the given number.", since="2.0.0", complexity="O(1)")
def hincrby(ctx, args):
    key, field = args[1], args[2]
    incr = int_arg(args[3])
    rec = _hash(ctx, key)
    old = 0
    if rec is not None:
        current = rec.value.get(field)
        if current is not None:
            old = parse_int(current)
            if old is None:
                raise CommandError(errors.HASH_NOT_INTEGER)
    new = old + incr
    if new > INT64_MAX or new < INT64_MIN:
        raise CommandError(errors.OVERFLOW)
    ctx.write((OP_HSET, key, {field: b"%d" % new}))
    return new


@command("hincrbyfloat", 4, "write denyoom fast", keys=(1, 1, 1), group="hash", summary="Increment the float value of a hash field by the given amount.", since="2.6.0", complexity="O(1)")
def hincrbyfloat(ctx, args):
    key, field = args[1], args[2]
    incr = parse_long_double(args[3])
    if incr is None:
        raise CommandError(errors.NOT_FLOAT)
    if not is_finite(incr):
        raise CommandError(errors.HASH_INCR_NAN)
    rec = _hash(ctx, key)
    value = Fraction(0)
    if rec is not None:
        current = rec.value.get(field)
        if current is not None:
            value = parse_long_double(current)
            if value is None:
                raise CommandError(errors.HASH_NOT_FLOAT)
    total = ld_add(value, incr)
    if not is_finite(total):
        raise CommandError(errors.INCR_FLOAT_NAN)
    text = format_long_double(total)
    ctx.write((OP_HSET, key, {field: text}))
    return text


# -- iteration and sampling -----------------------------------------------------------------


@command("hscan", -3, "readonly", keys=(1, 1, 1), group="hash", summary="Incrementally iterate hash fields and associated values.", since="2.8.0", complexity="O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection..")
def hscan(ctx, args):
    cursor = parse_cursor(args[2])
    rec = _hash(ctx, args[1])
    if rec is None:
        return [b"0", []]
    count, pattern, _ = parse_scan_options(args, 3, allow_type=False)
    fields = rec.value
    if len(fields) <= HSCAN_WHOLE_MAX:
        next_cursor, page = 0, list(fields)
    else:
        next_cursor, page = _hscan_page(fields, cursor, count)
    if pattern is not None:
        matches = compile_matcher(pattern)
        page = [field for field in page if matches(field)]
    out = []
    for field in page:
        out.append(field)
        out.append(fields[field])
    return [b"%d" % next_cursor, out]


def _hscan_page(fields: dict[bytes, bytes], cursor: int, count: int) -> tuple[int, list[bytes]]:
    """Fields whose scan position is >= cursor, in position order, about COUNT of them.

    Positions are hashes of the fields, so they do not move when other fields
    come and go: a field present for the whole scan is returned at least once.
    Fields sharing a position are always returned together.
    """
    size = max(count, len(fields) // HSCAN_MIN_FRACTION)
    candidates = [(h, field) for field in fields if (h := scan_hash(field)) >= cursor]
    if len(candidates) <= size:
        return 0, [field for _, field in sorted(candidates)]
    chosen = heapq.nsmallest(size, candidates)
    last = chosen[-1][0]
    later = [h for h, _ in candidates if h > last]
    chosen.extend(c for c in candidates if c[0] == last and c not in chosen)
    chosen.sort()
    return (min(later) if later else 0), [field for _, field in chosen]


@command("hrandfield", -2, "readonly", keys=(1, 1, 1), group="hash", summary="Get one or multiple random fields from a hash.", since="6.2.0", complexity="O(N) where N is the number of fields returned")
def hrandfield(ctx, args):
    argc = len(args)
    if argc == 2:
        rec = _hash(ctx, args[1])
        if rec is None:
            return None
        fields = rec.value
        return _nth(fields, ctx.randrange(len(fields)))

    count = int_arg(args[2])
    if count < -INT64_MAX:
        raise CommandError(errors.value_out_of_range_between(-INT64_MAX, INT64_MAX))
    if argc > 4 or (argc == 4 and not is_opt(args[3], b"WITHVALUES")):
        raise CommandError(errors.SYNTAX)
    withvalues = argc == 4
    if withvalues and (count < -(INT64_MAX // 2) or count > INT64_MAX // 2):
        raise CommandError(errors.VALUE_OUT_OF_RANGE)

    rec = _hash(ctx, args[1])
    if rec is None or count == 0:
        return []
    check_random_picks(count)
    fields = rec.value
    size = len(fields)
    if count < 0 or count == 1:
        # Sampling with repetition, in random order.
        names = list(fields)
        picked = [names[ctx.randrange(size)] for _ in range(-count if count < 0 else 1)]
    elif count >= size:
        picked = list(fields)  # the whole hash, in its own order (as Redis)
    else:
        # Distinct fields: a partial Fisher-Yates shuffle.
        names = list(fields)
        for i in range(count):
            j = i + ctx.randrange(size - i)
            names[i], names[j] = names[j], names[i]
        picked = names[:count]
    if withvalues:
        return Pairs([(name, fields[name]) for name in picked])
    return picked


def _nth(fields: dict[bytes, bytes], index: int) -> bytes:
    for i, field in enumerate(fields):
        if i == index:
            return field
    raise AssertionError("index out of range")
