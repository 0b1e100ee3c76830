"""Lists (Redis 7.0 src/t_list.c semantics), blocking pops included.

A list is a ``collections.deque`` of bytes: pushes and pops at both ends are
O(1). It changes only through the ops below, each exactly reversible and
tolerant of any list (a replica replaying its log over a newer checkpoint
may meet another value: out-of-range positions do nothing). Ops carry what
the leader decided (how many to pop, which position to set), never a
condition to evaluate again.

Blocking forms (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP) answer at once when
a source holds something; otherwise, outside MULTI, they answer ``Blocked``
and the client's session runs them again until one succeeds or the timeout
passes (resp/session.py). A pop that succeeds is an ordinary transaction:
on one shard, or a distributed one when BLMOVE's lists (or BLPOP's keys)
live on different shards.
"""

from __future__ import annotations

from collections import deque

from makod.kv import errors
from makod.kv.args import INT64_MAX, int_arg, is_opt, parse_int, parse_timeout_ms
from makod.kv.errors import CommandError
from makod.kv.records import KIND_LIST, OpSpec, Record, ValueType, register_op, register_type
from makod.kv.replies import NULL_ARRAY, OK, Blocked
from makod.kv.table import command, numkeys_finder

OP_LPUSH = 10  # (OP_LPUSH, key, [value, ...])  each to the head, in order
OP_RPUSH = 11  # (OP_RPUSH, key, [value, ...])  each to the tail, in order
OP_LPOP = 12  # (OP_LPOP, key, count)
OP_RPOP = 13  # (OP_RPOP, key, count)
OP_LSET = 14  # (OP_LSET, key, index >= 0, value)
OP_LINSERT = 15  # (OP_LINSERT, key, index >= 0, value)  the value ends up at ``index``
OP_LREM = 16  # (OP_LREM, key, count, value)  Redis's LREM count rule
OP_LTRIM = 17  # (OP_LTRIM, key, start >= 0, stop)  keep [start, stop]

COUNT_POSITIVE = "ERR value is out of range, must be positive"
NUMKEYS_POSITIVE = "ERR numkeys should be greater than 0"
COUNT_GREATER_THAN_0 = "ERR count should be greater than 0"
RANK_ZERO = (
    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... "
    "or use negative to start from the end of the list"
)
COUNT_NEGATIVE = "ERR COUNT can't be negative"
MAXLEN_NEGATIVE = "ERR MAXLEN can't be negative"
INDEX_OUT_OF_RANGE = "ERR index out of range"

# Redis's list-max-listpack-size default (-2: 8 KB nodes) makes a small list a
# listpack; counted here by entries and sizes, as OBJECT ENCODING reports it.
LISTPACK_MAX_ENTRIES = 128
LISTPACK_MAX_VALUE = 64


class ListType(ValueType):
    kind = KIND_LIST
    name = "list"

    def empty(self) -> deque:
        return deque()

    def clone(self, value: deque) -> deque:
        return deque(value)

    def to_wire(self, value: deque) -> list:
        return list(value)

    def from_wire(self, data: list) -> deque:
        return deque(bytes(item) for item in data)

    def size(self, value: deque) -> int:
        return len(value)

    def encoding(self, value: deque) -> str:
        if len(value) <= LISTPACK_MAX_ENTRIES and all(len(item) <= LISTPACK_MAX_VALUE for item in value):
            return "listpack"
        return "quicklist"


register_type(ListType())


# -- ops: apply returns the undo token -------------------------------------------------------


def _lpush(items: deque, op: tuple) -> int:
    items.extendleft(op[2])
    return len(op[2])


def _rpush(items: deque, op: tuple) -> int:
    items.extend(op[2])
    return len(op[2])


def _undo_lpush(items: deque, n: int) -> None:
    for _ in range(n):
        items.popleft()


def _undo_rpush(items: deque, n: int) -> None:
    for _ in range(n):
        items.pop()


def _lpop(items: deque, op: tuple) -> list:
    return [items.popleft() for _ in range(min(max(op[2], 0), len(items)))]


def _rpop(items: deque, op: tuple) -> list:
    return [items.pop() for _ in range(min(max(op[2], 0), len(items)))]


def _undo_lpop(items: deque, popped: list) -> None:
    items.extendleft(reversed(popped))  # the first popped goes back first in line


def _undo_rpop(items: deque, popped: list) -> None:
    items.extend(reversed(popped))


def _lset(items: deque, op: tuple):
    index = op[2]
    if not 0 <= index < len(items):
        return None
    old = items[index]
    items[index] = op[3]
    return (index, old)


def _undo_lset(items: deque, token) -> None:
    if token is not None:
        items[token[0]] = token[1]


def _linsert(items: deque, op: tuple):
    index = op[2]
    if not 0 <= index <= len(items):
        return None
    items.insert(index, op[3])
    return index


def _undo_linsert(items: deque, index) -> None:
    if index is not None:
        del items[index]


def _lrem(items: deque, op: tuple) -> list:
    count, value = op[2], op[3]
    n = len(items)
    positions = [i for i, item in enumerate(items) if item == value]
    if count > 0:
        positions = positions[:count]
    elif count < 0:
        positions = positions[count:]
    if not positions:
        return []
    keep = set(positions)
    survivors = [item for i, item in enumerate(items) if i not in keep]
    items.clear()
    items.extend(survivors)
    assert len(items) == n - len(positions)
    return positions  # ascending; every removed item equals ``value``


def _ltrim(items: deque, op: tuple) -> tuple:
    start, stop = op[2], op[3]
    n = len(items)
    if start > stop or start >= n:
        left, right = list(items), []
        items.clear()
        return (left, right)
    stop = min(stop, n - 1)
    left = [items.popleft() for _ in range(start)]
    right = [items.pop() for _ in range(n - 1 - stop)]
    return (left, right)


def _undo_ltrim(items: deque, token: tuple) -> None:
    left, right = token
    items.extend(reversed(right))
    items.extendleft(reversed(left))


register_op(OpSpec(OP_LPUSH, KIND_LIST, "lpush", _lpush, _undo_lpush))
register_op(OpSpec(OP_RPUSH, KIND_LIST, "rpush", _rpush, _undo_rpush))
register_op(OpSpec(OP_LPOP, KIND_LIST, "lpop", _lpop, _undo_lpop, creates=False))
register_op(OpSpec(OP_RPOP, KIND_LIST, "rpop", _rpop, _undo_rpop, creates=False))
register_op(OpSpec(OP_LSET, KIND_LIST, "lset", _lset, _undo_lset, creates=False))
register_op(OpSpec(OP_LINSERT, KIND_LIST, "linsert", _linsert, _undo_linsert, creates=False))
register_op(OpSpec(OP_LTRIM, KIND_LIST, "ltrim", _ltrim, _undo_ltrim, creates=False))


def _lrem_apply(items: deque, op: tuple) -> tuple:
    return (_lrem(items, op), op[3])


def _lrem_undo(items: deque, token: tuple) -> None:
    positions, value = token
    for index in positions:  # ascending: each lands where it was
        items.insert(index, value)


register_op(OpSpec(OP_LREM, KIND_LIST, "lrem", _lrem_apply, _lrem_undo, creates=False))


# -- helpers ----------------------------------------------------------------------------------


def _list(ctx, key: bytes) -> Record | None:
    rec = ctx.get(key)
    if rec is not None and rec.kind != KIND_LIST:
        raise CommandError(errors.WRONGTYPE)
    return rec


def _pop(ctx, key: bytes, left: bool, count: int) -> list[bytes]:
    """Pop up to ``count`` from a list known to exist; the popped values."""
    items = ctx.get(key).value
    n = min(count, len(items))
    taken = [items[i] for i in range(n)] if left else [items[-1 - i] for i in range(n)]
    ctx.write((OP_LPOP if left else OP_RPOP, key, n))
    return taken


def _push(ctx, key: bytes, left: bool, values: list[bytes]) -> int:
    ctx.write((OP_LPUSH if left else OP_RPUSH, key, list(values)))
    return len(ctx.get(key).value)


def _range(n: int, start: int, stop: int) -> tuple[int, int] | None:
    """Redis's index normalisation: the inclusive [start, stop] inside a list of n, or None."""
    if start < 0:
        start += n
    if stop < 0:
        stop += n
    if start < 0:
        start = 0
    if start > stop or start >= n:
        return None
    return start, min(stop, n - 1)


def _side(arg: bytes) -> bool:
    """LEFT -> True, RIGHT -> False, else a syntax error."""
    if is_opt(arg, b"LEFT"):
        return True
    if is_opt(arg, b"RIGHT"):
        return False
    raise CommandError(errors.SYNTAX)


# -- pushing ----------------------------------------------------------------------------------


def _push_command(left: bool, only_existing: bool):
    def handler(ctx, args):
        key = args[1]
        rec = _list(ctx, key)
        if rec is None and only_existing:
            return 0
        return _push(ctx, key, left, args[2:])

    return handler


command("lpush", -3, "write denyoom fast", keys=(1, 1, 1), group="list", summary="Prepend one or multiple elements to a list", since="1.0.0", complexity="O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.")(_push_command(True, False))
command("rpush", -3, "write denyoom fast", keys=(1, 1, 1), group="list", summary="Append one or multiple elements to a list", since="1.0.0", complexity="O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.")(_push_command(False, False))
command("lpushx", -3, "write denyoom fast", keys=(1, 1, 1), group="list", summary="Prepend an element to a list, only if the list exists", since="2.2.0", complexity="O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.")(_push_command(True, True))
command("rpushx", -3, "write denyoom fast", keys=(1, 1, 1), group="list", summary="Append an element to a list, only if the list exists", since="2.2.0", complexity="O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.")(_push_command(False, True))


# -- popping ----------------------------------------------------------------------------------


def _pop_command(left: bool):
    def handler(ctx, args):
        if len(args) > 3:
            raise CommandError(errors.wrong_arity("lpop" if left else "rpop"))
        count = None
        if len(args) == 3:
            count = parse_int(args[2])
            if count is None or count < 0:
                raise CommandError(COUNT_POSITIVE)
        rec = _list(ctx, args[1])
        if rec is None:
            return None if count is None else NULL_ARRAY
        if count is None:
            return _pop(ctx, args[1], left, 1)[0]
        if count == 0:
            return []
        return _pop(ctx, args[1], left, count)

    return handler


command("lpop", -2, "write fast", keys=(1, 1, 1), group="list", summary="Remove and get the first elements in a list", since="1.0.0", complexity="O(N) where N is the number of elements returned")(_pop_command(True))
command("rpop", -2, "write fast", keys=(1, 1, 1), group="list", summary="Remove and get the last elements in a list", since="1.0.0", complexity="O(N) where N is the number of elements returned")(_pop_command(False))


# -- reading ----------------------------------------------------------------------------------


@command("llen", 2, "readonly fast", keys=(1, 1, 1), group="list", summary="Get the length of a list", since="1.0.0", complexity="O(1)")
def llen(ctx, args):
    rec = _list(ctx, args[1])
    return 0 if rec is None else len(rec.value)


@command("lrange", 4, "readonly", keys=(1, 1, 1), group="list", summary="Get a range of elements from a list", since="1.0.0", complexity="O(S+N) where S is the distance of start offset from HEAD for small lists, from nearest end (HEAD or TAIL) for large lists; and N is the number of elements in the specified range.")
def lrange(ctx, args):
    start, stop = int_arg(args[2]), int_arg(args[3])
    rec = _list(ctx, args[1])
    if rec is None:
        return []
    items = rec.value
    bounds = _range(len(items), start, stop)
    if bounds is None:
        return []
    lo, hi = bounds
    if lo > len(items) // 2:
        return [items[i] for i in range(lo, hi + 1)]
    out = []
    for i, item in enumerate(items):
        if i > hi:
            break
        if i >= lo:
            out.append(item)
    return out


@command("lindex", 3, "readonly", keys=(1, 1, 1), group="list", summary="Get an element from a list by its index", since="1.0.0", complexity="O(N) where N is the number of elements to traverse to get to the element at index. This makes asking for the first or the last element of the list O(1).")
def lindex(ctx, args):
    index = int_arg(args[2])
    rec = _list(ctx, args[1])
    if rec is None:
        return None
    items = rec.value
    if index < 0:
        index += len(items)
    return items[index] if 0 <= index < len(items) else None


@command("lpos", -3, "readonly", keys=(1, 1, 1), group="list", summary="Return the index of matching elements on a list", since="6.0.6", complexity="O(N) where N is the number of elements in the list, for the average case. When searching for elements near the head or the tail of the list, or when the MAXLEN option is provided, the command may run in constant time.")
def lpos(ctx, args):
    rank, count, maxlen = 1, None, 0
    j = 3
    while j < len(args):
        if j + 1 >= len(args):
            raise CommandError(errors.SYNTAX)
        opt = args[j]
        if is_opt(opt, b"RANK"):
            rank = int_arg(args[j + 1])
            if rank == 0:
                raise CommandError(RANK_ZERO)
        elif is_opt(opt, b"COUNT"):
            count = int_arg(args[j + 1])
            if count < 0:
                raise CommandError(COUNT_NEGATIVE)
        elif is_opt(opt, b"MAXLEN"):
            maxlen = int_arg(args[j + 1])
            if maxlen < 0:
                raise CommandError(MAXLEN_NEGATIVE)
        else:
            raise CommandError(errors.SYNTAX)
        j += 2
    rec = _list(ctx, args[1])
    if rec is None:
        return [] if count is not None else None
    items, value = rec.value, args[2]
    n = len(items)
    wanted = count if count else (INT64_MAX if count == 0 else 1)
    skip = abs(rank) - 1
    order = range(n) if rank > 0 else range(n - 1, -1, -1)
    found = []
    for checked, i in enumerate(order):
        if maxlen and checked >= maxlen:
            break
        if items[i] == value:
            if skip:
                skip -= 1
                continue
            found.append(i)
            if len(found) >= wanted:
                break
    if count is not None:
        return found
    return found[0] if found else None


# -- changing in place ----------------------------------------------------------------------------


@command("lset", 4, "write denyoom", keys=(1, 1, 1), group="list", summary="Set the value of an element in a list by its index", since="1.0.0", complexity="O(N) where N is the length of the list. Setting either the first or the last element of the list is O(1).")
def lset(ctx, args):
    index = int_arg(args[2])
    rec = _list(ctx, args[1])
    if rec is None:
        raise CommandError(errors.NO_SUCH_KEY)
    n = len(rec.value)
    if index < 0:
        index += n
    if not 0 <= index < n:
        raise CommandError(INDEX_OUT_OF_RANGE)
    ctx.write((OP_LSET, args[1], index, args[3]))
    return OK


@command("linsert", 5, "write denyoom", keys=(1, 1, 1), group="list", summary="Insert an element before or after another element in a list", since="2.2.0", complexity="O(N) where N is the number of elements to traverse before seeing the value pivot. This means that inserting somewhere on the left end on the list (head) can be considered O(1) and inserting somewhere on the right end (tail) is O(N).")
def linsert(ctx, args):
    if is_opt(args[2], b"BEFORE"):
        after = False
    elif is_opt(args[2], b"AFTER"):
        after = True
    else:
        raise CommandError(errors.SYNTAX)
    rec = _list(ctx, args[1])
    if rec is None:
        return 0
    items, pivot = rec.value, args[3]
    for i, item in enumerate(items):
        if item == pivot:
            ctx.write((OP_LINSERT, args[1], i + 1 if after else i, args[4]))
            return len(ctx.get(args[1]).value)
    return -1


@command("lrem", 4, "write", keys=(1, 1, 1), group="list", summary="Remove elements from a list", since="1.0.0", complexity="O(N+M) where N is the length of the list and M is the number of elements removed.")
def lrem(ctx, args):
    count = int_arg(args[2])
    rec = _list(ctx, args[1])
    if rec is None:
        return 0
    value = args[3]
    matches = sum(1 for item in rec.value if item == value)
    removed = matches if count == 0 else min(abs(count), matches)
    if removed:
        ctx.write((OP_LREM, args[1], count, value))
    return removed


@command("ltrim", 4, "write", keys=(1, 1, 1), group="list", summary="Trim a list to the specified range", since="1.0.0", complexity="O(N) where N is the number of elements to be removed by the operation.")
def ltrim(ctx, args):
    start, stop = int_arg(args[2]), int_arg(args[3])
    rec = _list(ctx, args[1])
    if rec is None:
        return OK
    n = len(rec.value)
    bounds = _range(n, start, stop)
    if bounds is None:
        ctx.write((OP_LTRIM, args[1], n, n - 1))  # empties the list (logged as DEL)
    elif bounds != (0, n - 1):
        ctx.write((OP_LTRIM, args[1], bounds[0], bounds[1]))
    return OK


# -- moving -------------------------------------------------------------------------------------


def _move(ctx, src: bytes, dst: bytes, from_left: bool, to_left: bool):
    """LMOVE's work: the moved element, or None when ``src`` is missing (or empty)."""
    rec = _list(ctx, src)
    if rec is None:
        return None
    _list(ctx, dst)  # WRONGTYPE before anything changes
    value = _pop(ctx, src, from_left, 1)[0]
    _push(ctx, dst, to_left, [value])
    return value


@command("lmove", 5, "write denyoom", keys=(1, 2, 1), group="list", summary="Pop an element from a list, push it to another list and return it", since="6.2.0", complexity="O(1)")
def lmove(ctx, args):
    from_left, to_left = _side(args[3]), _side(args[4])
    return _move(ctx, args[1], args[2], from_left, to_left)


@command("rpoplpush", 3, "write denyoom", keys=(1, 2, 1), group="list", summary="Remove the last element in a list, prepend it to another list and return it", since="1.2.0", complexity="O(1)")
def rpoplpush(ctx, args):
    return _move(ctx, args[1], args[2], False, True)


def _parse_mpop(args: list[bytes], numkeys_at: int) -> tuple[list[bytes], bool, int]:
    """numkeys key [key ...] LEFT|RIGHT [COUNT count] (LMPOP, BLMPOP)."""
    numkeys = parse_int(args[numkeys_at])
    if numkeys is None or numkeys <= 0:
        raise CommandError(NUMKEYS_POSITIVE)
    first = numkeys_at + 1
    if numkeys > len(args) - first - 1:
        raise CommandError(errors.SYNTAX)
    keys = args[first : first + numkeys]
    left = _side(args[first + numkeys])
    count = None
    j = first + numkeys + 1
    while j < len(args):
        if is_opt(args[j], b"COUNT") and count is None and j + 1 < len(args):
            count = parse_int(args[j + 1])
            if count is None or count <= 0:
                raise CommandError(COUNT_GREATER_THAN_0)
            j += 2
        else:
            raise CommandError(errors.SYNTAX)
    return keys, left, count or 1


def _mpop(ctx, keys: list[bytes], left: bool, count: int):
    for key in keys:
        rec = _list(ctx, key)
        if rec is not None:
            return [key, _pop(ctx, key, left, count)]
    return None


@command("lmpop", -4, "write movablekeys", keys=(0, 0, 0), key_finder=numkeys_finder(1), group="list", summary="Pop elements from a list", since="7.0.0", complexity="O(N+M) where N is the number of provided keys and M is the number of elements returned.")
def lmpop(ctx, args):
    keys, left, count = _parse_mpop(args, 1)
    got = _mpop(ctx, keys, left, count)
    return NULL_ARRAY if got is None else got


# -- blocking forms --------------------------------------------------------------------------------


def _blocked(ctx, timeout_ms: int, reply):
    return Blocked(timeout_ms, reply) if ctx.may_block else reply


def _bpop_command(left: bool):
    def handler(ctx, args):
        timeout_ms = parse_timeout_ms(args[-1])
        for key in args[1:-1]:
            if _list(ctx, key) is not None:
                return [key, _pop(ctx, key, left, 1)[0]]
        return _blocked(ctx, timeout_ms, NULL_ARRAY)

    return handler


command("blpop", -3, "write blocking", keys=(1, -2, 1), group="list", summary="Remove and get the first element in a list, or block until one is available", since="2.0.0", complexity="O(N) where N is the number of provided keys.")(_bpop_command(True))
command("brpop", -3, "write blocking", keys=(1, -2, 1), group="list", summary="Remove and get the last element in a list, or block until one is available", since="2.0.0", complexity="O(N) where N is the number of provided keys.")(_bpop_command(False))


@command("blmove", 6, "write denyoom blocking", keys=(1, 2, 1), group="list", summary="Pop an element from a list, push it to another list and return it; or block until one is available", since="6.2.0", complexity="O(1)")
def blmove(ctx, args):
    from_left, to_left = _side(args[3]), _side(args[4])
    timeout_ms = parse_timeout_ms(args[5])
    moved = _move(ctx, args[1], args[2], from_left, to_left)
    return _blocked(ctx, timeout_ms, None) if moved is None else moved


@command("brpoplpush", 4, "write denyoom blocking", keys=(1, 2, 1), group="list", summary="Pop an element from a list, push it to another list and return it; or block until one is available", since="2.2.0", complexity="O(1)")
def brpoplpush(ctx, args):
    timeout_ms = parse_timeout_ms(args[3])
    moved = _move(ctx, args[1], args[2], False, True)
    return _blocked(ctx, timeout_ms, None) if moved is None else moved


@command("blmpop", -5, "write blocking movablekeys", keys=(0, 0, 0), key_finder=numkeys_finder(2), group="list", summary="Pop elements from a list, or block until one is available", since="7.0.0", complexity="O(N+M) where N is the number of provided keys and M is the number of elements returned.")
def blmpop(ctx, args):
    timeout_ms = parse_timeout_ms(args[1])
    keys, left, count = _parse_mpop(args, 2)
    got = _mpop(ctx, keys, left, count)
    return _blocked(ctx, timeout_ms, NULL_ARRAY) if got is None else got
