"""Set commands (Redis 7.0 src/t_set.c semantics).

A set is an ``IndexedSet``: a list of members plus a dict member -> its
index in the list. Adding appends; removing moves the last member into the
hole, so both are O(1), and so is picking the i-th member (SPOP,
SRANDMEMBER). The order is a pure function of the ops applied, the same on
every replica, so a random pick by index (``ctx.randrange``) names the same
member everywhere (and the ops carry the concrete members anyway). Redis 7.0
keeps small all-integer sets as an *intset* (sorted numerically) and
everything else in a hash table; replies that list a set whose Redis
encoding would be an intset come sorted numerically, as Redis's do; other
replies come in the set's own order (Redis's hash order is arbitrary).

Sets change only through two ops: SADD (add members, creating the set) and
SREM (remove members; removing the last one removes the key). Whole-value
results (SINTERSTORE, SUNIONSTORE, SDIFFSTORE) replace the destination with
``ctx.set``.
"""

from __future__ import annotations

from typing import Iterable, Iterator

from makod.kv import errors
from makod.kv.args import check_random_picks, parse_intercard_limit, INT64_MAX, int_arg, parse_cursor, parse_int
from makod.kv.errors import CommandError
from makod.kv.glob import compile_matcher
from makod.kv.records import KIND_SET, OpSpec, Record, ValueType, register_op, register_type
from makod.kv.replies import Set
from makod.kv.table import command, numkeys_finder
from makod.kv.types.hashes import _hscan_page
from makod.kv.types.keys import parse_scan_options

# Op codes (sets own 20-29; stored in the log: never reuse one).
OP_SADD = 20  # (OP_SADD, key, [member, ...])  creates the set if absent
OP_SREM = 21  # (OP_SREM, key, [member, ...])  removes the key when it empties

# Redis's set-max-intset-entries default.
SET_MAX_INTSET_ENTRIES = 512
# A hash-table set this small is answered whole by SSCAN (cursor 0).
SSCAN_WHOLE_MAX = 128

# Error texts of src/t_set.c not in errors.py.
NUMKEYS_NOT_POSITIVE = "ERR numkeys should be greater than 0"
NUMKEYS_TOO_MANY = "ERR Number of keys can't be greater than number of args"


class IndexedSet:
    """Distinct members in a list, with a dict member -> index into it.

    ``add`` appends; ``remove`` moves the last member into the removed one's
    place and returns that place, so ``restore(index, member)`` can undo it
    exactly. Iteration, ``len`` and ``in`` are those of a set of members;
    iteration follows the list. Mutate only through the ops (and ``add`` while
    building a new value).
    """

    __slots__ = ("members", "index")

    def __init__(self, members: Iterable[bytes] = ()) -> None:
        # A repeated member keeps its first place.
        self.members: list[bytes] = list(dict.fromkeys(members))
        self.index: dict[bytes, int] = dict(zip(self.members, range(len(self.members))))

    def __len__(self) -> int:
        return len(self.members)

    def __contains__(self, member: object) -> bool:
        return member in self.index

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.members)

    def __eq__(self, other: object) -> bool:
        # Equal values list the same members in the same order.
        return isinstance(other, IndexedSet) and self.members == other.members

    __hash__ = None  # mutable

    def __repr__(self) -> str:
        return f"IndexedSet({self.members!r})"

    def add(self, member: bytes) -> bool:
        """Append ``member``; False (and no change) if it is present."""
        if member in self.index:
            return False
        self.index[member] = len(self.members)
        self.members.append(member)
        return True

    def remove(self, member: bytes) -> int:
        """Remove a present ``member`` (the last one fills its place); its old index."""
        index = self.index.pop(member)
        members = self.members
        last = members.pop()
        if index < len(members):
            members[index] = last
            self.index[last] = index
        return index

    def restore(self, index: int, member: bytes) -> None:
        """Undo ``remove(member)`` that returned ``index`` (the value as it left it)."""
        members = self.members
        if index < len(members):
            moved = members[index]
            self.index[moved] = len(members)
            members.append(moved)
            members[index] = member
        else:
            members.append(member)
        self.index[member] = index

    def copy(self) -> IndexedSet:
        """An independent copy, in the same order."""
        out = IndexedSet()
        out.members = self.members.copy()
        out.index = self.index.copy()
        return out

    def pop_last(self) -> bytes:
        member = self.members.pop()
        del self.index[member]
        return member

    def nth(self, index: int) -> bytes:
        return self.members[index]


class SetType(ValueType):
    """An ``IndexedSet``; its wire form is the member list, in order."""

    kind = KIND_SET
    name = "set"

    def empty(self) -> IndexedSet:
        return IndexedSet()

    def clone(self, value: IndexedSet) -> IndexedSet:
        return value.copy()

    def to_wire(self, value) -> list:
        # Any iterable of distinct members (a handler may hand ctx.set a dict).
        return list(value)

    def from_wire(self, data) -> IndexedSet:
        # A list of members in order (what to_wire gives, then and now);
        # duplicates, which no wire form holds, would keep their first place.
        return IndexedSet(bytes(x) for x in data)

    def size(self, value: IndexedSet) -> int:
        return len(value)

    def encoding(self, value) -> str:
        return "intset" if _is_intset(value) else "hashtable"


register_type(SetType())


def _is_intset(members) -> bool:
    """Would Redis 7.0 keep these members as an intset?"""
    return len(members) <= SET_MAX_INTSET_ENTRIES and all(parse_int(m) is not None for m in members)


def _ordered(members) -> list[bytes]:
    """The members in the order Redis would list them: numeric for an intset."""
    out = list(members)
    if _is_intset(out):
        out.sort(key=parse_int)
    return out


# -- ops ------------------------------------------------------------------------------


def _apply_sadd(value: IndexedSet, op: tuple) -> list:
    """Append the absent members; the token lists them (they are the newest)."""
    added = []
    for member in op[2]:
        if value.add(member):
            added.append(member)
    return added


def _undo_sadd(value: IndexedSet, token: list) -> None:
    # The added members are the last ones: popping them restores the order.
    for _ in token:
        value.pop_last()


def _apply_srem(value: IndexedSet, op: tuple) -> list:
    """Remove the present members; the token is each removal's (index, member).

    Each removal moves the last member into the hole; undoing the removals
    in reverse order puts every member back where it was, so the order is
    restored exactly (replicas and checkpoints compare values in order).
    """
    token = []
    for member in op[2]:
        if member in value:
            token.append((value.remove(member), member))
    return token


def _undo_srem(value: IndexedSet, token: list) -> None:
    for index, member in reversed(token):
        value.restore(index, member)


register_op(OpSpec(OP_SADD, KIND_SET, "sadd", _apply_sadd, _undo_sadd))
register_op(OpSpec(OP_SREM, KIND_SET, "srem", _apply_srem, _undo_srem, creates=False))


def _set(ctx, key: bytes) -> Record | None:
    """The set at ``key``, None if missing, WRONGTYPE if not a set."""
    rec = ctx.get(key)
    if rec is not None and rec.kind != KIND_SET:
        raise CommandError(errors.WRONGTYPE)
    return rec


def _sets(ctx, keys: list[bytes]) -> list[IndexedSet | None]:
    """Every key's set (None when missing); WRONGTYPE if any is not a set."""
    out = []
    for key in keys:
        rec = _set(ctx, key)
        out.append(None if rec is None else rec.value)
    return out


def _nth(members: IndexedSet, index: int) -> bytes:
    return members.nth(index)


# -- adding and removing -------------------------------------------------------------


@command("sadd", -3, "write denyoom fast", keys=(1, 1, 1), group="set", summary="Add one or more members to a set.", since="1.0.0", complexity="O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.")
def sadd(ctx, args):
    rec = _set(ctx, args[1])
    members = dict.fromkeys(args[2:])
    new = list(members) if rec is None else [m for m in members if m not in rec.value]
    if new:
        ctx.write((OP_SADD, args[1], new))
    return len(new)


@command("srem", -3, "write fast", keys=(1, 1, 1), group="set", summary="Remove one or more members from a set.", since="1.0.0", complexity="O(N) where N is the number of members to be removed.")
def srem(ctx, args):
    rec = _set(ctx, args[1])
    if rec is None:
        return 0
    present = [m for m in dict.fromkeys(args[2:]) if m in rec.value]
    if present:
        ctx.write((OP_SREM, args[1], present))
    return len(present)


@command("smove", 4, "write fast", keys=(1, 2, 1), group="set", summary="Move a member from one set to another.", since="1.0.0", complexity="O(1)")
def smove(ctx, args):
    src, dst, member = args[1], args[2], args[3]
    src_rec = ctx.get(src)
    if src_rec is None:
        return 0
    if src_rec.kind != KIND_SET:
        raise CommandError(errors.WRONGTYPE)
    dst_rec = _set(ctx, dst)
    if src == dst:
        return int(member in src_rec.value)
    if member not in src_rec.value:
        return 0
    ctx.write((OP_SREM, src, [member]))
    if dst_rec is None or member not in dst_rec.value:
        ctx.write((OP_SADD, dst, [member]))
    return 1


@command("spop", -2, "write fast", keys=(1, 1, 1), group="set", summary="Remove and return one or multiple random members from a set.", since="1.0.0", complexity="Without the count argument O(1), otherwise O(N) where N is the value of the passed count.")
def spop(ctx, args):
    argc = len(args)
    if argc > 3:
        raise CommandError(errors.SYNTAX)
    key = args[1]
    if argc == 2:
        rec = _set(ctx, key)
        if rec is None:
            return None
        members = rec.value
        member = _nth(members, ctx.randrange(len(members)))
        ctx.write((OP_SREM, key, [member]))
        return member

    count = parse_int(args[2])
    if count is None or count < 0:
        raise CommandError(errors.COUNT_NOT_POSITIVE)
    rec = _set(ctx, key)
    if rec is None or count == 0:
        return Set([])
    members = rec.value
    size = len(members)
    if count >= size:
        whole = _ordered(members)
        ctx.delete(key)
        return Set(whole)
    picked = _sample_distinct(ctx, members.members, count)
    ctx.write((OP_SREM, key, picked))
    return Set(picked)


def _sample_distinct(ctx, names, count: int) -> list[bytes]:
    """``count`` distinct members of ``names`` (count < len(names)), O(count).

    A partial Fisher-Yates shuffle of a virtual copy: ``swapped`` holds the
    positions it moved, so ``names`` is neither copied nor changed.
    """
    size = len(names)
    swapped: dict[int, bytes] = {}
    out = []
    for i in range(count):
        j = i + ctx.randrange(size - i)
        at_i = swapped.get(i)
        if at_i is None:
            at_i = names[i]
        at_j = swapped.get(j)
        if at_j is None:
            at_j = names[j]
        swapped[j] = at_i
        out.append(at_j)
    return out


# -- reading --------------------------------------------------------------------------


@command("smembers", 2, "readonly", keys=(1, 1, 1), group="set", summary="Get all the members in a set.", since="1.0.0", complexity="O(N) where N is the set cardinality.")
def smembers(ctx, args):
    rec = _set(ctx, args[1])
    return Set([] if rec is None else _ordered(rec.value))


@command("sismember", 3, "readonly fast", keys=(1, 1, 1), group="set", summary="Determine if a given value is a member of a set.", since="1.0.0", complexity="O(1)")
def sismember(ctx, args):
    rec = _set(ctx, args[1])
    return int(rec is not None and args[2] in rec.value)


@command("smismember", -3, "readonly fast", keys=(1, 1, 1), group="set", summary="Returns the membership associated with the given elements for a set.", since="6.2.0", complexity="O(N) where N is the number of elements being checked for membership")
def smismember(ctx, args):
    rec = _set(ctx, args[1])
    if rec is None:
        return [0] * (len(args) - 2)
    members = rec.value
    return [int(m in members) for m in args[2:]]


@command("scard", 2, "readonly fast", keys=(1, 1, 1), group="set", summary="Get the number of members in a set.", since="1.0.0", complexity="O(1)")
def scard(ctx, args):
    rec = _set(ctx, args[1])
    return 0 if rec is None else len(rec.value)


@command("srandmember", -2, "readonly", keys=(1, 1, 1), group="set", summary="Get one or multiple random members from a set.", since="1.0.0", complexity="Without the count argument O(1), otherwise O(N) where N is the absolute value of the passed count.")
def srandmember(ctx, args):
    argc = len(args)
    if argc > 3:
        raise CommandError(errors.SYNTAX)
    if argc == 2:
        rec = _set(ctx, args[1])
        if rec is None:
            return None
        members = rec.value
        return _nth(members, ctx.randrange(len(members)))

    count = int_arg(args[2])
    if count < -INT64_MAX:
        raise CommandError(errors.value_out_of_range_between(-INT64_MAX, INT64_MAX))
    rec = _set(ctx, args[1])
    if rec is None or count == 0:
        return []
    check_random_picks(count)
    members = rec.value
    size = len(members)
    if count < 0:
        # With repetition, in random order.
        names = members.members
        return [names[ctx.randrange(size)] for _ in range(-count)]
    if count >= size:
        return _ordered(members)
    return _sample_distinct(ctx, members.members, count)


# -- algebra --------------------------------------------------------------------------


def _inter(sets: list[IndexedSet | None], limit: int = 0) -> list[bytes]:
    """Members of every set (a missing set is empty), smallest set's order.

    ``limit`` > 0 stops after that many (SINTERCARD).
    """
    if not sets or any(s is None for s in sets):
        return []
    ordered = sorted(sets, key=len)
    first, rest = ordered[0], ordered[1:]
    out = []
    for member in _ordered(first):
        if all(member in s for s in rest if s is not first):
            out.append(member)
            if limit and len(out) >= limit:
                break
    return out


def _union(sets: list[IndexedSet | None]) -> dict:
    out: dict = {}
    for s in sets:
        if s:
            out.update(dict.fromkeys(s))
    return out


def _diff(sets: list[IndexedSet | None]) -> dict:
    first = sets[0]
    if not first:
        return {}
    rest = [s for s in sets[1:] if s]
    if any(s is first for s in rest):
        return {}
    return {m: None for m in first if not any(m in s for s in rest)}


def _store(ctx, dst: bytes, members) -> int:
    value = dict.fromkeys(members)
    if value:
        ctx.set(dst, KIND_SET, value)
    else:
        ctx.delete(dst)
    return len(value)


@command("sinter", -2, "readonly", keys=(1, -1, 1), group="set", summary="Intersect multiple sets.", since="1.0.0", complexity="O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.")
def sinter(ctx, args):
    return Set(_inter(_sets(ctx, args[1:])))


@command("sinterstore", -3, "write denyoom", keys=(1, -1, 1), group="set", summary="Intersect multiple sets and store the resulting set in a key.", since="1.0.0", complexity="O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.")
def sinterstore(ctx, args):
    return _store(ctx, args[1], _inter(_sets(ctx, args[2:])))


@command("sintercard", -3, "readonly movablekeys", key_finder=numkeys_finder(1), group="set", summary="Intersect multiple sets and return the cardinality of the result.", since="7.0.0", complexity="O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.")
def sintercard(ctx, args):
    numkeys = parse_int(args[1])
    if numkeys is None or numkeys < 1:
        raise CommandError(NUMKEYS_NOT_POSITIVE)
    if numkeys > len(args) - 2:
        raise CommandError(NUMKEYS_TOO_MANY)
    limit = parse_intercard_limit(args, 2 + numkeys)
    return len(_inter(_sets(ctx, args[2 : 2 + numkeys]), limit))


@command("sunion", -2, "readonly", keys=(1, -1, 1), group="set", summary="Add multiple sets.", since="1.0.0", complexity="O(N) where N is the total number of elements in all given sets.")
def sunion(ctx, args):
    return Set(_ordered(_union(_sets(ctx, args[1:]))))


@command("sunionstore", -3, "write denyoom", keys=(1, -1, 1), group="set", summary="Add multiple sets and store the resulting set in a key.", since="1.0.0", complexity="O(N) where N is the total number of elements in all given sets.")
def sunionstore(ctx, args):
    return _store(ctx, args[1], _union(_sets(ctx, args[2:])))


@command("sdiff", -2, "readonly", keys=(1, -1, 1), group="set", summary="Subtract multiple sets.", since="1.0.0", complexity="O(N) where N is the total number of elements in all given sets.")
def sdiff(ctx, args):
    return Set(_ordered(_diff(_sets(ctx, args[1:]))))


@command("sdiffstore", -3, "write denyoom", keys=(1, -1, 1), group="set", summary="Subtract multiple sets and store the resulting set in a key.", since="1.0.0", complexity="O(N) where N is the total number of elements in all given sets.")
def sdiffstore(ctx, args):
    return _store(ctx, args[1], _diff(_sets(ctx, args[2:])))


# -- iteration ------------------------------------------------------------------------


@command("sscan", -3, "readonly", keys=(1, 1, 1), group="set", summary="Incrementally iterate Set elements.", since="2.8.0", complexity="O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection..")
def sscan(ctx, args):
    cursor = parse_cursor(args[2])
    rec = _set(ctx, args[1])
    if rec is None:
        return [b"0", []]
    count, pattern, _ = parse_scan_options(args, 3, allow_type=False)
    members = rec.value
    if _is_intset(members):
        next_cursor, page = 0, _ordered(members)
    elif len(members) <= SSCAN_WHOLE_MAX:
        next_cursor, page = 0, list(members)
    else:
        next_cursor, page = _hscan_page(members, cursor, count)
    if pattern is not None:
        matches = compile_matcher(pattern)
        page = [m for m in page if matches(m)]
    return [b"%d" % next_cursor, page]
