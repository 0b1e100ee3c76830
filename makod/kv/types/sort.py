"""SORT and SORT_RO (Redis 7.0 src/sort.c semantics).

Sorts a list, set or sorted set: numerically by default, bytewise with
ALPHA (Redis uses strcoll, which is a byte comparison in the C locale it
runs in), by the element itself or by a value found through a BY pattern,
and answers the elements or GET patterns' values; STORE puts the answer in
a list (replaced with ``ctx.set``; an empty answer deletes the destination).

Patterns name other keys: ``*`` is replaced by the element (the first ``*``
only), and ``key->field`` reads a hash field; ``#`` is the element itself.
Those keys are read with ``ctx.get`` like any key, so on a cluster they may
be on other shards: the transaction coordinator fetches them (NeedRemote)
and the command runs again, so a SORT sees one snapshot of every key it
read. Redis Cluster refuses BY and GET patterns; makodb does not need to.

Where Redis's order is unspecified it differs: elements whose BY values
compare equal under ALPHA (qsort is not stable there), and a set's order
with a constant BY pattern and no STORE (makodb answers SMEMBERS's order).
"""

from __future__ import annotations

import math
from collections import deque

from makod.kv import errors
from makod.kv.args import parse_int
from makod.kv.errors import CommandError
from makod.kv.records import KIND_HASH, KIND_LIST, KIND_NATIVE, KIND_SET, KIND_STRING, KIND_ZSET, string_value
from makod.kv.table import command
from makod.kv.types.sets import _ordered
from makod.kv.types.zsets import parse_double_strict

SCORES_NOT_DOUBLE = "ERR One or more scores can't be converted into double"
LONG_MIN, LONG_MAX = -(1 << 63), (1 << 63) - 1
_SPACE = b" \t\n\v\f\r"


def _strtod_score(s: bytes) -> float | None:
    """SORT's strtod: leading spaces allowed, the rest must be a number;
    an empty string reads 0. None when Redis reports a conversion error."""
    if not s:
        return 0.0
    body = s.lstrip(_SPACE)
    if not body:
        return None  # strtod converted nothing: the end pointer is at a space
    return parse_double_strict(body)


def _pattern_key(pattern: bytes, element: bytes) -> tuple[bytes | None, bytes | None]:
    """(key, hash field or None) a BY or GET pattern names for ``element``;
    key None when the pattern names no key (``#``, or no ``*``)."""
    if pattern == b"#":
        return None, None
    star = pattern.find(b"*")
    if star < 0:
        return None, None
    arrow = pattern.find(b"->", star + 1)
    if arrow >= 0 and arrow + 2 < len(pattern):
        return pattern[:star] + element + pattern[star + 1 : arrow], pattern[arrow + 2 :]
    return pattern[:star] + element + pattern[star + 1 :], None


def prefetch_patterns(ctx, patterns: list[bytes], elements: list[bytes]) -> None:
    """Tell the context every key the patterns will read, before reading any:
    on a cluster the keys of other shards then cost one round, not one each."""
    keys = [key for pattern in patterns for element in elements
            if (key := _pattern_key(pattern, element)[0]) is not None]
    if keys:
        ctx.prefetch(keys)


def lookup_by_pattern(ctx, pattern: bytes, element: bytes) -> bytes | None:
    """The value a BY or GET pattern names for ``element`` (lookupKeyByPattern)."""
    if pattern == b"#":
        return element
    key, field = _pattern_key(pattern, element)
    if key is None:
        return None
    rec = ctx.get(key)
    if rec is None:
        return None
    if field is not None:
        return rec.value.get(field) if rec.kind == KIND_HASH else None
    if rec.kind in (KIND_STRING, KIND_NATIVE):
        return string_value(rec)
    return None


def _parse(args: list[bytes], readonly: bool):
    desc = alpha = False
    limit_start, limit_count = 0, -1
    store = sortby = None
    dontsort = False  # set by any BY without a *, never reset by a later BY (as Redis)
    gets: list[bytes] = []
    j = 2
    while j < len(args):
        a = args[j].lower()
        left = len(args) - j - 1
        if a == b"asc":
            desc = False
        elif a == b"desc":
            desc = True
        elif a == b"alpha":
            alpha = True
        elif a == b"limit" and left >= 2:
            limit_start, limit_count = parse_int(args[j + 1]), parse_int(args[j + 2])
            if limit_start is None or limit_count is None:
                raise CommandError(errors.NOT_INTEGER)
            j += 2
        elif a == b"store" and left >= 1 and not readonly:
            store = args[j + 1]
            j += 1
        elif a == b"by" and left >= 1:
            sortby = args[j + 1]
            dontsort = dontsort or b"*" not in sortby
            j += 1
        elif a == b"get" and left >= 1:
            gets.append(args[j + 1])
            j += 1
        else:
            raise CommandError(errors.SYNTAX)
        j += 1
    return desc, alpha, limit_start, limit_count, store, sortby, gets, dontsort


def _bounds(limit_start: int, limit_count: int, n: int) -> tuple[int, int]:
    """Redis's LIMIT arithmetic: the first and last index answered (end < start: none)."""
    start = min(max(limit_start, 0), n)
    count = min(max(limit_count, -1), n)
    end = n - 1 if count < 0 else start + count - 1
    if start >= n:
        start, end = n - 1, n - 2
    return start, min(end, n - 1)


def _elements(rec) -> list[bytes]:
    if rec is None:
        return []
    if rec.kind == KIND_LIST:
        return list(rec.value)
    if rec.kind == KIND_SET:
        return _ordered(rec.value)
    return [m for _, m in rec.value.order]


def _sorted(ctx, elements: list[bytes], desc: bool, alpha: bool, sortby: bytes | None) -> list[bytes]:
    if alpha and sortby is None:
        return sorted(elements, reverse=desc)
    if sortby is not None:
        prefetch_patterns(ctx, [sortby], elements)
    keyed = []
    failed = False
    for element in elements:
        value = element if sortby is None else lookup_by_pattern(ctx, sortby, element)
        if alpha:
            keyed.append(((value is not None, value or b""), element))
            continue
        score = 0.0 if value is None else _strtod_score(value)
        if score is None or math.isnan(score):
            failed = True
            score = 0.0
        keyed.append(((score, element), element))
    if failed:
        raise CommandError(SCORES_NOT_DOUBLE)
    keyed.sort(key=lambda pair: pair[0], reverse=desc)
    return [element for _, element in keyed]


def _sort(ctx, args: list[bytes], readonly: bool):
    desc, alpha, limit_start, limit_count, store, sortby, gets, dontsort = _parse(args, readonly)
    rec = ctx.get(args[1])
    if rec is not None and rec.kind not in (KIND_LIST, KIND_SET, KIND_ZSET):
        raise CommandError(errors.WRONGTYPE)
    if dontsort and rec is not None and rec.kind == KIND_SET and store is not None:
        dontsort, alpha, sortby = False, True, None  # a stored result must not depend on set order
    elements = _elements(rec)
    start, end = _bounds(limit_start, limit_count, len(elements))
    if dontsort:
        if desc and rec is not None and rec.kind != KIND_SET:
            elements.reverse()
    else:
        elements = _sorted(ctx, elements, desc, alpha, sortby)
    chosen = elements[start : end + 1] if end >= start else []
    if gets:
        prefetch_patterns(ctx, gets, chosen)
    if store is None:
        if not gets:
            return chosen
        return [lookup_by_pattern(ctx, pattern, element) for element in chosen for pattern in gets]
    if gets:
        chosen = [lookup_by_pattern(ctx, pattern, element) or b"" for element in chosen for pattern in gets]
    if chosen:
        ctx.set(store, KIND_LIST, deque(chosen))
    else:
        ctx.delete(store)
    return len(chosen)


def _sort_keys(args: list[bytes]) -> list[bytes]:
    """The sorted key and the STORE destination (the last one given), as Redis's
    sortGetKeys finds them (SORT_RO's key is its first argument only).
    BY and GET keys depend on the data, not the request: see _reads_pattern_keys."""
    keys = args[1:2]
    dest = None
    skip = {b"limit": 2, b"get": 1, b"by": 1}
    j = 2
    while j < len(args):
        a = args[j].lower()
        if a == b"store" and j + 1 < len(args):
            dest = args[j + 1]
            j += 1
        else:
            j += skip.get(a, 0)
        j += 1
    return keys + [dest] if dest is not None else keys


def _reads_pattern_keys(args: list[bytes]) -> bool:
    """Do BY or GET patterns name keys (a BY with ``*``, a GET other than ``#``)?"""
    j = 2
    while j + 1 < len(args):
        a = args[j].lower()
        if (a == b"by" and b"*" in args[j + 1]) or (a == b"get" and args[j + 1] != b"#"):
            return True
        j += 1
    return False


@command("sort", -2, "write denyoom movablekeys", keys=(1, 1, 1), key_finder=_sort_keys, reads_data_keys=_reads_pattern_keys, group="generic", summary="Sort the elements in a list, set or sorted set", since="1.0.0", complexity="O(N+M*log(M)) where N is the number of elements in the list or set to sort, and M the number of returned elements. When the elements are not sorted, complexity is O(N).")
def sort(ctx, args):
    return _sort(ctx, args, False)


@command("sort_ro", -2, "readonly movablekeys", keys=(1, 1, 1), key_finder=lambda args: args[1:2], reads_data_keys=_reads_pattern_keys, group="generic", summary="Sort the elements in a list, set or sorted set. Read-only variant of SORT.", since="7.0.0", complexity="O(N+M*log(M)) where N is the number of elements in the list or set to sort, and M the number of returned elements. When the elements are not sorted, complexity is O(N).")
def sort_ro(ctx, args):
    return _sort(ctx, args, True)
