"""Generic key commands (Redis 7.0 src/db.c and src/expire.c semantics).

Expiry times are absolute unix milliseconds (``ctx.now_ms`` is now). A
relative or absolute time that is already past deletes the key at once, as
Redis does on a master (``checkAlreadyExpired``).

Whole-keyspace commands (DBSIZE, KEYS, SCAN, RANDOMKEY, FLUSHDB, FLUSHALL)
run on every shard and are merged by the policy they declare; on one shard
they just run against ``ctx``.
"""

from __future__ import annotations

from makod.kv.records import KIND_NATIVE, KIND_STRING, VALUE_TYPES, kind_name
from makod.kv import errors
from makod.kv.args import INT64_MAX, int_arg, is_opt, parse_cursor
from makod.kv.dbs import db_index
from makod.kv.errors import CommandError
from makod.kv.replies import OK, SimpleString
from makod.kv.scripting import library_store
from makod.kv.table import command, container, subcommand

_TYPE_NONE = SimpleString("none")
_TYPE_REPLIES: dict[int, SimpleString] = {}


def _type_reply(kind: int) -> SimpleString:
    reply = _TYPE_REPLIES.get(kind)
    if reply is None:
        reply = _TYPE_REPLIES[kind] = SimpleString(kind_name(kind))
    return reply

# SCAN's default COUNT (src/db.c: scanGenericCommand).
SCAN_DEFAULT_COUNT = 10


# -- existence ------------------------------------------------------------------------


def _delete(ctx, args):
    deleted = 0
    for key in args[1:]:
        if ctx.delete(key):
            deleted += 1
    return deleted


command("del", -2, "write", keys=(1, -1, 1), group="generic", summary="Delete a key.", since="1.0.0", complexity="O(N) where N is the number of keys that will be removed. When a key to remove holds a value other than a string, the individual complexity for this key is O(M) where M is the number of elements in the list, set, sorted set or hash. Removing a single key that holds a string value is O(1).")(_delete)
command("unlink", -2, "write fast", keys=(1, -1, 1), group="generic", summary="Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non blocking.", since="4.0.0", complexity="O(1) for each key removed regardless of its size. Then the command does O(N) work in a different thread in order to reclaim memory, where N is the number of allocations the deleted objects where composed of.")(_delete)


def _count_existing(ctx, args):
    # Repeated keys count every time (EXISTS k k is 2 when k exists).
    return sum(1 for key in args[1:] if ctx.get(key) is not None)


command("exists", -2, "readonly fast", keys=(1, -1, 1), group="generic", summary="Determine if a key exists.", since="1.0.0", complexity="O(N) where N is the number of keys to check.")(_count_existing)
command("touch", -2, "readonly fast", keys=(1, -1, 1), group="generic", summary="Alters the last access time of a key(s). Returns the number of existing keys specified.", since="3.2.1", complexity="O(N) where N is the number of keys that will be touched.")(_count_existing)


@command("type", 2, "readonly fast", keys=(1, 1, 1), group="generic", summary="Determine the type stored at key.", since="1.0.0", complexity="O(1)")
def type_(ctx, args):
    rec = ctx.get(args[1])
    if rec is None:
        return _TYPE_NONE
    return _type_reply(rec.kind)


# -- renaming -------------------------------------------------------------------------


def _rename(ctx, args, nx: bool):
    src, dst = args[1], args[2]
    rec = ctx.get(src)
    if rec is None:
        raise CommandError(errors.NO_SUCH_KEY)
    if src == dst:
        return 0 if nx else OK
    if nx and ctx.get(dst) is not None:
        return 0
    # ctx.set copies a container value: the new record must not share a
    # mutable value with the one being deleted (the ops and undo log hold both).
    ctx.set(dst, rec.kind, rec.value, rec.expire_ms)  # the TTL moves with the value
    ctx.delete(src)
    return 1 if nx else OK


@command("rename", 3, "write", keys=(1, 2, 1), group="generic", summary="Rename a key.", since="1.0.0", complexity="O(1)")
def rename(ctx, args):
    return _rename(ctx, args, nx=False)


@command("renamenx", 3, "write fast", keys=(1, 2, 1), group="generic", summary="Rename a key, only if the new key does not exist.", since="1.0.0", complexity="O(1)")
def renamenx(ctx, args):
    return _rename(ctx, args, nx=True)


# -- expiry ---------------------------------------------------------------------------

_EXP_NX = 1
_EXP_XX = 2
_EXP_GT = 4
_EXP_LT = 8
_EXPIRE_FLAGS = {b"NX": _EXP_NX, b"XX": _EXP_XX, b"GT": _EXP_GT, b"LT": _EXP_LT}

# C's LLONG_MIN / 1000 truncates toward zero.
_SECONDS_MIN = -((1 << 63) // 1000)
_SECONDS_MAX = INT64_MAX // 1000


def _expire(ctx, args, name: str, seconds: bool, relative: bool):
    """expireGenericCommand: options, then the time, then the key."""
    flags = 0
    for opt in args[3:]:
        flag = _EXPIRE_FLAGS.get(opt.upper())
        if flag is None:
            raise CommandError(errors.unsupported_option(opt))
        flags |= flag
    if flags & _EXP_NX and flags & (_EXP_XX | _EXP_GT | _EXP_LT):
        raise CommandError(errors.NX_XX_GT_LT)
    if flags & _EXP_GT and flags & _EXP_LT:
        raise CommandError(errors.GT_AND_LT)

    when = int_arg(args[2])
    if seconds:
        if when > _SECONDS_MAX or when < _SECONDS_MIN:
            raise CommandError(errors.invalid_expire(name))
        when *= 1000
    base = ctx.now_ms if relative else 0
    if when > INT64_MAX - base:
        raise CommandError(errors.invalid_expire(name))
    when += base

    key = args[1]
    rec = ctx.get(key)
    if rec is None:
        return 0
    if flags:
        current = rec.expire_ms
        if flags & _EXP_NX and current is not None:
            return 0
        if flags & _EXP_XX and current is None:
            return 0
        # No TTL counts as infinite: GT never beats it, LT always does.
        if flags & _EXP_GT and (current is None or when <= current):
            return 0
        if flags & _EXP_LT and current is not None and when >= current:
            return 0
    if when <= ctx.now_ms:
        ctx.delete(key)
    else:
        ctx.set_expire(key, when)
    return 1


@command("expire", -3, "write fast", keys=(1, 1, 1), group="generic", summary="Set a key's time to live in seconds.", since="1.0.0", complexity="O(1)")
def expire(ctx, args):
    return _expire(ctx, args, "expire", seconds=True, relative=True)


@command("pexpire", -3, "write fast", keys=(1, 1, 1), group="generic", summary="Set a key's time to live in milliseconds.", since="2.6.0", complexity="O(1)")
def pexpire(ctx, args):
    return _expire(ctx, args, "pexpire", seconds=False, relative=True)


@command("expireat", -3, "write fast", keys=(1, 1, 1), group="generic", summary="Set the expiration for a key as a UNIX timestamp.", since="1.2.0", complexity="O(1)")
def expireat(ctx, args):
    return _expire(ctx, args, "expireat", seconds=True, relative=False)


@command("pexpireat", -3, "write fast", keys=(1, 1, 1), group="generic", summary="Set the expiration for a key as a UNIX timestamp specified in milliseconds.", since="2.6.0", complexity="O(1)")
def pexpireat(ctx, args):
    return _expire(ctx, args, "pexpireat", seconds=False, relative=False)


def _ttl(ctx, key: bytes, ms: bool, absolute: bool) -> int:
    """ttlGenericCommand: -2 missing, -1 no TTL; seconds are rounded to nearest."""
    rec = ctx.get(key)
    if rec is None:
        return -2
    if rec.expire_ms is None:
        return -1
    ttl = rec.expire_ms if absolute else rec.expire_ms - ctx.now_ms
    if ttl < 0:
        ttl = 0
    return ttl if ms else (ttl + 500) // 1000


@command("ttl", 2, "readonly fast", keys=(1, 1, 1), group="generic", summary="Get the time to live for a key in seconds.", since="1.0.0", complexity="O(1)")
def ttl(ctx, args):
    return _ttl(ctx, args[1], ms=False, absolute=False)


@command("pttl", 2, "readonly fast", keys=(1, 1, 1), group="generic", summary="Get the time to live for a key in milliseconds.", since="2.6.0", complexity="O(1)")
def pttl(ctx, args):
    return _ttl(ctx, args[1], ms=True, absolute=False)


@command("expiretime", 2, "readonly fast", keys=(1, 1, 1), group="generic", summary="Get the expiration Unix timestamp for a key.", since="7.0.0", complexity="O(1)")
def expiretime(ctx, args):
    return _ttl(ctx, args[1], ms=False, absolute=True)


@command("pexpiretime", 2, "readonly fast", keys=(1, 1, 1), group="generic", summary="Get the expiration Unix timestamp for a key in milliseconds.", since="7.0.0", complexity="O(1)")
def pexpiretime(ctx, args):
    return _ttl(ctx, args[1], ms=True, absolute=True)


@command("persist", 2, "write fast", keys=(1, 1, 1), group="generic", summary="Remove the expiration from a key.", since="2.2.0", complexity="O(1)")
def persist(ctx, args):
    rec = ctx.get(args[1])
    if rec is None or rec.expire_ms is None:
        return 0
    ctx.set_expire(args[1], None)
    return 1


# -- whole keyspace ---------------------------------------------------------------------


@command("keys", 2, "readonly", scope="keyspace", merge="concat", group="generic", summary="Find all keys matching the given pattern.", since="1.0.0", complexity="O(N) with N being the number of keys in the database, under the assumption that the key names in the database and the given pattern have limited length.")
def keys(ctx, args):
    return ctx.keys(args[1])


def parse_scan_options(args: list[bytes], start: int, allow_type: bool):
    """scanGenericCommand's option loop: (count, pattern or None, type name or None).

    A MATCH of exactly ``*`` is no pattern at all (it would not match the
    empty key if it were matched). COUNT below 1 is a syntax error.
    """
    count = SCAN_DEFAULT_COUNT
    pattern = None
    typename = None
    i = start
    argc = len(args)
    while i < argc:
        opt = args[i]
        has_value = argc - i >= 2
        if has_value and is_opt(opt, b"COUNT"):
            count = int_arg(args[i + 1])
            if count < 1:
                raise CommandError(errors.SYNTAX)
        elif has_value and is_opt(opt, b"MATCH"):
            pattern = None if args[i + 1] == b"*" else args[i + 1]
        elif has_value and allow_type and is_opt(opt, b"TYPE"):
            typename = args[i + 1].lower()
        else:
            raise CommandError(errors.SYNTAX)
        i += 2
    return count, pattern, typename


@command("scan", -2, "readonly", scope="keyspace", merge="scan", group="generic", summary="Incrementally iterate the keys space.", since="2.8.0", complexity="O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.")
def scan(ctx, args):
    cursor = parse_cursor(args[1])
    count, pattern, typename = parse_scan_options(args, 2, allow_type=True)
    kinds = [kind for kind, vtype in VALUE_TYPES.items() if vtype.name.encode() == typename]
    if typename is None:
        next_cursor, found = ctx.scan(cursor, count, pattern, None)
    elif len(kinds) == 1:
        next_cursor, found = ctx.scan(cursor, count, pattern, kinds[0])
    else:
        # "string" covers two kinds; a made-up name matches nothing but the
        # scan still advances: Redis 7.0 filters by name and never rejects it.
        next_cursor, found = ctx.scan(cursor, count, pattern, None)
        if typename == b"string":
            found = [key for key in found if _is_string(ctx.get(key))]
        else:
            found = []
    return [b"%d" % next_cursor, found]


def _is_string(rec) -> bool:
    return rec is not None and (rec.kind == KIND_STRING or rec.kind == KIND_NATIVE)


@command("randomkey", 1, "readonly", scope="keyspace", merge="any", group="generic", summary="Return a random key from the keyspace.", since="1.0.0", complexity="O(1)")
def randomkey(ctx, args):
    return ctx.random_key()


@command("dbsize", 1, "readonly fast", scope="keyspace", merge="sum", group="server", summary="Return the number of keys in the selected database.", since="1.0.0", complexity="O(1)")
def dbsize(ctx, args):
    return ctx.dbsize()


def _flush_args(args):
    # getFlushCommandFlags: nothing, SYNC or ASYNC (both flush at once here).
    if len(args) > 2 or (len(args) == 2 and not (is_opt(args[1], b"SYNC") or is_opt(args[1], b"ASYNC"))):
        raise CommandError(errors.SYNTAX)


@command("flushdb", -1, "write", scope="keyspace", merge="all_ok", group="server", summary="Remove all keys from the current database.", since="1.0.0", complexity="O(N) where N is the number of keys in the selected database")
def flushdb(ctx, args):
    _flush_args(args)
    ctx.flush_db()
    return OK


@command("flushall", -1, "write", scope="keyspace", merge="all_ok", group="server", summary="Remove all keys from all databases.", since="1.0.0", complexity="O(N) where N is the total number of keys in all databases")
def flushall(ctx, args):
    _flush_args(args)
    # FUNCTION libraries are not data: FLUSHALL keeps them, as Redis does.
    libraries = library_store.read(ctx)
    ctx.flush()
    if libraries:
        library_store.write(ctx, libraries)
    return OK


# -- numbered databases (kv/dbs.py) ------------------------------------------------------


class _InDb:
    """``with _InDb(ctx, n):`` the context's key methods work in database n,
    then back in the selected one."""

    __slots__ = ("ctx", "db", "saved")

    def __init__(self, ctx, db: int) -> None:
        self.ctx = ctx
        self.db = db

    def __enter__(self):
        self.saved = self.ctx.db
        self.ctx.db = self.db

    def __exit__(self, *exc) -> None:
        self.ctx.db = self.saved


@command("move", 3, "write fast", keys=(1, 1, 1), group="generic", summary="Move a key to another database.", since="1.0.0", complexity="O(1)")
def move(ctx, args):
    key = args[1]
    db = db_index(args[2], ctx.databases)
    if db == ctx.db:
        raise CommandError(SAME_OBJECT)
    rec = ctx.get(key)
    if rec is None:
        return 0
    with _InDb(ctx, db):
        if ctx.get(key) is not None:
            return 0
        ctx.set(key, rec.kind, rec.value, rec.expire_ms)  # a copy of the value; the TTL too
    ctx.delete(key)
    return 1


@command("swapdb", 3, "write fast movablekeys", group="server", summary="Swaps two Redis databases", since="4.0.0", complexity="O(N) where N is the count of clients watching or blocking on keys from both databases.")
def swapdb(ctx, args):
    """Every key of each database is rewritten into the other, in one
    transaction: across shards it is read as ranges and certified by the
    coordinator like any other, so no client sees the databases half swapped,
    and WATCH on a key of either notices (as Redis's touchAllWatchedKeysInDb).
    Unlike Redis's O(1) pointer swap this costs O(keys in both)."""
    bound = 1 << 31  # parse both before the range checks, as Redis does
    first = db_index(args[1], bound, SWAPDB_BAD_FIRST)
    second = db_index(args[2], bound, SWAPDB_BAD_SECOND)
    if first >= ctx.databases or second >= ctx.databases:
        raise CommandError(errors.DB_INDEX_OUT_OF_RANGE)
    if first == second:
        return OK
    items = {first: ctx.db_items(first), second: ctx.db_items(second)}
    for db in (first, second):
        with _InDb(ctx, db):
            for key, _rec in items[db]:
                ctx.delete(key)
    for db, other in ((first, second), (second, first)):
        with _InDb(ctx, other):
            for key, rec in items[db]:
                ctx.set(key, rec.kind, rec.value, rec.expire_ms)
    return OK


SAME_OBJECT = "ERR source and destination objects are the same"
SWAPDB_BAD_FIRST = "ERR invalid first DB index"
SWAPDB_BAD_SECOND = "ERR invalid second DB index"


# -- copying and inspecting ------------------------------------------------------------------


@command("copy", -3, "write denyoom", keys=(1, 2, 1), group="generic", summary="Copy a key.", since="6.2.0", complexity="O(N) worst case for collections, where N is the number of nested items. O(1) for string values.")
def copy(ctx, args):
    src, dst = args[1], args[2]
    replace = False
    db = ctx.db
    j = 3
    while j < len(args):
        if is_opt(args[j], b"REPLACE"):
            replace = True
        elif is_opt(args[j], b"DB") and j + 1 < len(args):
            db = db_index(args[j + 1], ctx.databases)
            j += 1
        else:
            raise CommandError(errors.SYNTAX)
        j += 1
    if src == dst and db == ctx.db:
        raise CommandError(SAME_OBJECT)
    rec = ctx.get(src)
    if rec is None:
        return 0
    with _InDb(ctx, db):
        if ctx.get(dst) is not None and not replace:
            return 0
        ctx.set(dst, rec.kind, rec.value, rec.expire_ms)  # a copy of the value; the TTL too
    return 1


def _object_key(ctx, args):
    rec = ctx.get(args[2])
    if rec is None:
        return None
    return rec


def _object_encoding(ctx, args):
    rec = _object_key(ctx, args)
    return None if rec is None else VALUE_TYPES[rec.kind].encoding(rec.value).encode()


def _object_refcount(ctx, args):
    return None if _object_key(ctx, args) is None else 1


def _object_idletime(ctx, args):
    # Access times are not tracked (they would be per-replica state that reads
    # would have to write): every key reads as just used, as with an LFU policy
    # Redis would refuse; 0 is what a freshly touched key answers.
    return None if _object_key(ctx, args) is None else 0


def _object_freq(ctx, args):
    if _object_key(ctx, args) is None:
        return None
    raise CommandError(OBJECT_FREQ_NOT_LFU)


OBJECT_FREQ_NOT_LFU = (
    "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching "
    "between policies at runtime LRU and LFU data will take some time to adjust."
)


def _object_help(ctx, args):
    return [
        b"OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        b"ENCODING <key>",
        b"    Return the kind of internal representation used in order to store the value",
        b"    associated with a <key>.",
        b"FREQ <key>",
        b"    Return the access frequency index of the <key>. The returned integer is",
        b"    proportional to the logarithm of the recent access frequency of the key.",
        b"IDLETIME <key>",
        b"    Return the idle time of the <key>, that is the approximated number of",
        b"    seconds elapsed since the last access to the key.",
        b"REFCOUNT <key>",
        b"    Return the number of references of the value associated with the specified",
        b"    <key>.",
        b"HELP",
        b"    Print this help.",
    ]


container(
    "object",
    scope="data",
    group="generic",
    summary="A container for object introspection commands.",
    since="2.2.3",
    subcommands=[
        subcommand("object", "encoding", 3, _object_encoding, "readonly", scope="data", group="generic", summary="Inspect the internal encoding of a Redis object.", since="2.2.3", keys=(2, 2, 1)),
        subcommand("object", "freq", 3, _object_freq, "readonly", scope="data", group="generic", summary="Get the logarithmic access frequency counter of a Redis object.", since="4.0.0", keys=(2, 2, 1)),
        subcommand("object", "idletime", 3, _object_idletime, "readonly", scope="data", group="generic", summary="Get the time since a Redis object was last accessed.", since="2.2.3", keys=(2, 2, 1)),
        subcommand("object", "refcount", 3, _object_refcount, "readonly", scope="data", group="generic", summary="Get the number of references to the value of the key.", since="2.2.3", keys=(2, 2, 1)),
        subcommand("object", "help", 2, _object_help, "loading stale", scope="data", group="generic", summary="Show helpful text about the different subcommands", since="6.2.0"),
    ],
)
