"""String commands (Redis 7.0 src/t_string.c semantics).

GET, SET and INCR are the benchmark's hot path: their common forms take a
short path with no option parsing.

TTL rules, as in Redis: SET, SETEX, PSETEX, GETSET and MSET replace the value
and drop any TTL (SET ... KEEPTTL keeps it); APPEND, SETRANGE, INCR* keep it.
"""

from __future__ import annotations

from fractions import Fraction

from makod.kv.records import KIND_NATIVE, KIND_STRING, Record, string_value
from makod.kv import errors
from makod.kv.args import (
    INT64_MAX,
    INT64_MIN,
    format_long_double,
    int_arg,
    is_finite,
    ld_add,
    parse_int,
    parse_long_double,
)
from makod.kv.errors import CommandError
from makod.kv.replies import OK, Map
from makod.kv.table import command

WRONGTYPE = errors.WRONGTYPE


def _string(rec: Record) -> bytes:
    """The bytes of a string-like record; WRONGTYPE for anything else."""
    kind = rec.kind
    if kind == KIND_STRING:
        return rec.value
    if kind == KIND_NATIVE:
        return string_value(rec)
    raise CommandError(WRONGTYPE)


# -- GET / SET --------------------------------------------------------------------


def _get_fast(rec: Record | None):
    if rec is None:
        return None
    return rec.value if rec.kind == KIND_STRING else NotImplemented


@command("get", 2, "readonly fast", keys=(1, 1, 1), fast_read=_get_fast, group="string", summary="Get the value of a key.", since="1.0.0", complexity="O(1)")
def get(ctx, args):
    rec = ctx.get(args[1])
    if rec is None:
        return None
    if rec.kind == KIND_STRING:
        return rec.value
    return _string(rec)


# Option flags of SET and GETEX (src/t_string.c: OBJ_*).
_NX = 1 << 0
_XX = 1 << 1
_EX = 1 << 2
_PX = 1 << 3
_KEEPTTL = 1 << 4
_GET = 1 << 5
_EXAT = 1 << 6
_PXAT = 1 << 7
_PERSIST = 1 << 8
_ANY_EXPIRE = _EX | _PX | _EXAT | _PXAT


def _parse_string_options(args: list[bytes], for_set: bool) -> tuple[int, bytes | None]:
    """parseExtendedStringArgumentsOrReply: (flags, expire argument or None).

    The conflict rules are Redis's own, including the quirks: an option may
    repeat (``EX 1 EX 2`` takes the last), and an expiry option with no value
    after it is a syntax error.
    """
    flags = 0
    expire = None
    j = 3 if for_set else 2
    argc = len(args)
    while j < argc:
        opt = args[j].upper()
        has_next = j < argc - 1
        if opt == b"NX" and for_set and not flags & _XX:
            flags |= _NX
        elif opt == b"XX" and for_set and not flags & _NX:
            flags |= _XX
        elif opt == b"GET" and for_set:
            flags |= _GET
        elif opt == b"KEEPTTL" and for_set and not flags & (_PERSIST | _ANY_EXPIRE):
            flags |= _KEEPTTL
        elif opt == b"PERSIST" and not for_set and not flags & (_ANY_EXPIRE | _KEEPTTL):
            flags |= _PERSIST
        elif opt == b"EX" and has_next and not flags & (_KEEPTTL | _PERSIST | _EXAT | _PX | _PXAT):
            flags |= _EX
            expire = args[j + 1]
            j += 1
        elif opt == b"PX" and has_next and not flags & (_KEEPTTL | _PERSIST | _EX | _EXAT | _PXAT):
            flags |= _PX
            expire = args[j + 1]
            j += 1
        elif opt == b"EXAT" and has_next and not flags & (_KEEPTTL | _PERSIST | _EX | _PX | _PXAT):
            flags |= _EXAT
            expire = args[j + 1]
            j += 1
        elif opt == b"PXAT" and has_next and not flags & (_KEEPTTL | _PERSIST | _EX | _EXAT | _PX):
            flags |= _PXAT
            expire = args[j + 1]
            j += 1
        else:
            raise CommandError(errors.SYNTAX)
        j += 1
    return flags, expire


def expire_at_ms(ctx, arg: bytes, seconds: bool, relative: bool, name: str) -> int:
    """getExpireMillisecondsOrReply: the absolute expiry time in unix ms.

    Zero, negative and overflowing values are "invalid expire time" errors
    naming the command (``name``).
    """
    when = parse_int(arg)
    if when is None:
        raise CommandError(errors.NOT_INTEGER)
    if when <= 0 or (seconds and when > INT64_MAX // 1000):
        raise CommandError(errors.invalid_expire(name))
    if seconds:
        when *= 1000
    if relative:
        when += ctx.now_ms
        if when > INT64_MAX:  # wraps negative in C
            raise CommandError(errors.invalid_expire(name))
    return when


def _expire_from_flags(ctx, flags: int, expire: bytes, name: str) -> int:
    return expire_at_ms(ctx, expire, bool(flags & (_EX | _EXAT)), bool(flags & (_EX | _PX)), name)


@command("set", -3, "write denyoom", keys=(1, 1, 1), group="string", summary="Set the string value of a key.", since="1.0.0", complexity="O(1)")
def set_(ctx, args):
    if len(args) == 3:
        ctx.set(args[1], KIND_STRING, args[2], None)
        return OK
    flags, expire = _parse_string_options(args, for_set=True)
    expire_ms = _expire_from_flags(ctx, flags, expire, "set") if expire is not None else None
    key = args[1]
    rec = ctx.get(key)
    old = None
    if flags & _GET and rec is not None:
        old = _string(rec)
    if (flags & _NX and rec is not None) or (flags & _XX and rec is None):
        return old  # GET's reply, or the null reply of an aborted SET
    if expire_ms is None and flags & _KEEPTTL and rec is not None:
        expire_ms = rec.expire_ms
    ctx.set(key, KIND_STRING, args[2], expire_ms)
    return old if flags & _GET else OK


@command("setnx", 3, "write denyoom fast", keys=(1, 1, 1), group="string", summary="Set the value of a key, only if the key does not exist.", since="1.0.0", complexity="O(1)")
def setnx(ctx, args):
    if ctx.get(args[1]) is not None:
        return 0
    ctx.set(args[1], KIND_STRING, args[2], None)
    return 1


@command("setex", 4, "write denyoom", keys=(1, 1, 1), group="string", summary="Set the value and expiration of a key.", since="2.0.0", complexity="O(1)")
def setex(ctx, args):
    expire_ms = expire_at_ms(ctx, args[2], True, True, "setex")
    ctx.set(args[1], KIND_STRING, args[3], expire_ms)
    return OK


@command("psetex", 4, "write denyoom", keys=(1, 1, 1), group="string", summary="Set the value and expiration in milliseconds of a key.", since="2.6.0", complexity="O(1)")
def psetex(ctx, args):
    expire_ms = expire_at_ms(ctx, args[2], False, True, "psetex")
    ctx.set(args[1], KIND_STRING, args[3], expire_ms)
    return OK


@command("getset", 3, "write denyoom fast", keys=(1, 1, 1), group="string", summary="Set the string value of a key and return its old value.", since="1.0.0", complexity="O(1)")
def getset(ctx, args):
    rec = ctx.get(args[1])
    old = None if rec is None else _string(rec)
    ctx.set(args[1], KIND_STRING, args[2], None)
    return old


@command("getdel", 2, "write fast", keys=(1, 1, 1), group="string", summary="Get the value of a key and delete the key.", since="6.2.0", complexity="O(1)")
def getdel(ctx, args):
    rec = ctx.get(args[1])
    if rec is None:
        return None
    old = _string(rec)
    ctx.delete(args[1])
    return old


@command("getex", -2, "write fast", keys=(1, 1, 1), group="string", summary="Get the value of a key and optionally set its expiration.", since="6.2.0", complexity="O(1)")
def getex(ctx, args):
    flags, expire = _parse_string_options(args, for_set=False)
    key = args[1]
    rec = ctx.get(key)
    if rec is None:
        return None
    value = _string(rec)
    if expire is not None:
        expire_ms = _expire_from_flags(ctx, flags, expire, "getex")
        if flags & (_EXAT | _PXAT) and expire_ms <= ctx.now_ms:
            ctx.delete(key)  # an absolute time already past deletes the key
        else:
            ctx.set_expire(key, expire_ms)
    elif flags & _PERSIST and rec.expire_ms is not None:
        ctx.set_expire(key, None)
    return value


# -- multi-key ----------------------------------------------------------------------


@command("mget", -2, "readonly fast", keys=(1, -1, 1), group="string", summary="Get the values of all the given keys.", since="1.0.0", complexity="O(N) where N is the number of keys to retrieve.")
def mget(ctx, args):
    out = []
    for key in args[1:]:
        rec = ctx.get(key)
        if rec is None or (rec.kind != KIND_STRING and rec.kind != KIND_NATIVE):
            out.append(None)  # MGET answers nil for other types, not WRONGTYPE
        else:
            out.append(_string(rec))
    return out


def _check_pairs(args: list[bytes], name: str) -> None:
    if len(args) % 2 == 0:
        raise CommandError(errors.wrong_arity(name))


@command("mset", -3, "write denyoom", keys=(1, -1, 2), group="string", summary="Set multiple keys to multiple values.", since="1.0.1", complexity="O(N) where N is the number of keys to set.")
def mset(ctx, args):
    _check_pairs(args, "mset")
    for j in range(1, len(args), 2):
        ctx.set(args[j], KIND_STRING, args[j + 1], None)
    return OK


@command("msetnx", -3, "write denyoom", keys=(1, -1, 2), group="string", summary="Set multiple keys to multiple values, only if none of the keys exist.", since="1.0.1", complexity="O(N) where N is the number of keys to set.")
def msetnx(ctx, args):
    _check_pairs(args, "msetnx")
    for j in range(1, len(args), 2):
        if ctx.get(args[j]) is not None:
            return 0
    for j in range(1, len(args), 2):
        ctx.set(args[j], KIND_STRING, args[j + 1], None)
    return 1


# -- editing ------------------------------------------------------------------------


def _check_length(ctx, size: int, append: int) -> None:
    """checkStringLength: the result may not exceed proto-max-bulk-len."""
    if size + append > ctx.proto_max_bulk_len:
        raise CommandError(errors.STRING_TOO_LONG)
    check_write_size(ctx, size + append)


def check_write_size(ctx, size: int) -> None:
    """A value of ``size`` bytes would go whole into the replication log: past
    max_txn_bytes the transaction would be refused anyway, so refuse it before
    building the value (SETBIT at 2^32-1 spent long enough making 512 MB to
    depose its leader)."""
    if size > ctx.max_txn_bytes:
        raise CommandError(errors.TXN_WRITES_TOO_LARGE.format(size, ctx.max_txn_bytes))


@command("append", 3, "write denyoom fast", keys=(1, 1, 1), group="string", summary="Append a value to a key.", since="2.0.0", complexity="O(1). The amortized time complexity is O(1) assuming the appended value is small and the already present value is of any size, since the dynamic string library used by Redis will double the free space available on every reallocation.")
def append(ctx, args):
    key, tail = args[1], args[2]
    rec = ctx.get(key)
    if rec is None:
        ctx.set(key, KIND_STRING, tail, None)
        return len(tail)
    old = _string(rec)
    _check_length(ctx, len(old), len(tail))
    new = old + tail
    ctx.set(key, KIND_STRING, new, rec.expire_ms)
    return len(new)


@command("strlen", 2, "readonly fast", keys=(1, 1, 1), group="string", summary="Get the length of the value stored in a key.", since="2.2.0", complexity="O(1)")
def strlen(ctx, args):
    rec = ctx.get(args[1])
    return 0 if rec is None else len(_string(rec))


def _getrange(ctx, args):
    start = int_arg(args[2])
    end = int_arg(args[3])
    rec = ctx.get(args[1])
    if rec is None:
        return b""
    value = _string(rec)
    n = len(value)
    if start < 0 and end < 0 and start > end:
        return b""
    if start < 0:
        start += n
    if end < 0:
        end += n
    if start < 0:
        start = 0
    if end < 0:
        end = 0
    if end >= n:
        end = n - 1
    if start > end or n == 0:
        return b""
    return value[start : end + 1]


_GETRANGE_COMPLEXITY = (
    "O(N) where N is the length of the returned string. The complexity is ultimately "
    "determined by the returned length, but because creating a substring from an existing "
    "string is very cheap, it can be considered O(1) for small strings."
)

command("getrange", 4, "readonly", keys=(1, 1, 1), group="string", summary="Get a substring of the string stored at a key.", since="2.4.0", complexity=_GETRANGE_COMPLEXITY)(_getrange)
command("substr", 4, "readonly", keys=(1, 1, 1), group="string", summary="Get a substring of the string stored at a key.", since="1.0.0", complexity=_GETRANGE_COMPLEXITY)(_getrange)


@command("setrange", 4, "write denyoom", keys=(1, 1, 1), group="string", summary="Overwrite part of a string at key starting at the specified offset.", since="2.2.0", complexity="O(1), not counting the time taken to copy the new string in place. Usually, this string is very small so the amortized complexity is O(1). Otherwise, complexity is O(M) with M being the length of the value argument.")
def setrange(ctx, args):
    key, value = args[1], args[3]
    offset = int_arg(args[2])
    if offset < 0:
        raise CommandError(errors.OFFSET_OUT_OF_RANGE)
    rec = ctx.get(key)
    if rec is None:
        if not value:
            return 0  # nothing set on a missing key: it stays missing
        _check_length(ctx, offset, len(value))
        ctx.set(key, KIND_STRING, bytes(offset) + value, None)
        return offset + len(value)
    old = _string(rec)
    if not value:
        return len(old)
    _check_length(ctx, offset, len(value))
    if offset > len(old):
        new = old + bytes(offset - len(old)) + value
    else:
        new = old[:offset] + value + old[offset + len(value) :]
    ctx.set(key, KIND_STRING, new, rec.expire_ms)
    return len(new)


# -- counters -------------------------------------------------------------------------


def _incr(ctx, key: bytes, incr: int) -> int:
    rec = ctx.get(key)
    if rec is None:
        ctx.set(key, KIND_STRING, b"%d" % incr, None)
        return incr
    if rec.kind == KIND_STRING:
        old = parse_int(rec.value)
    else:
        old = parse_int(_string(rec))
    if old is None:
        raise CommandError(errors.NOT_INTEGER)
    new = old + incr
    if new > INT64_MAX or new < INT64_MIN:
        raise CommandError(errors.OVERFLOW)
    ctx.set(key, KIND_STRING, b"%d" % new, rec.expire_ms)
    return new


@command("incr", 2, "write denyoom fast", keys=(1, 1, 1), group="string", summary="Increment the integer value of a key by one.", since="1.0.0", complexity="O(1)")
def incr(ctx, args):
    return _incr(ctx, args[1], 1)


@command("decr", 2, "write denyoom fast", keys=(1, 1, 1), group="string", summary="Decrement the integer value of a key by one.", since="1.0.0", complexity="O(1)")
def decr(ctx, args):
    return _incr(ctx, args[1], -1)


@command("incrby", 3, "write denyoom fast", keys=(1, 1, 1), group="string", summary="Increment the integer value of a key by the given amount.", since="1.0.0", complexity="O(1)")
def incrby(ctx, args):
    return _incr(ctx, args[1], int_arg(args[2]))


@command("decrby", 3, "write denyoom fast", keys=(1, 1, 1), group="string", summary="Decrement the integer value of a key by the given number.", since="1.0.0", complexity="O(1)")
def decrby(ctx, args):
    amount = int_arg(args[2])
    if amount == INT64_MIN:
        raise CommandError(errors.DECR_OVERFLOW)
    return _incr(ctx, args[1], -amount)


@command("incrbyfloat", 3, "write denyoom fast", keys=(1, 1, 1), group="string", summary="Increment the float value of a key by the given amount.", since="2.6.0", complexity="O(1)")
def incrbyfloat(ctx, args):
    key = args[1]
    rec = ctx.get(key)
    if rec is None:
        value = Fraction(0)
    else:
        value = parse_long_double(_string(rec))
        if value is None:
            raise CommandError(errors.NOT_FLOAT)
    amount = parse_long_double(args[2])
    if amount is None:
        raise CommandError(errors.NOT_FLOAT)
    total = ld_add(value, amount)
    if not is_finite(total):
        raise CommandError(errors.INCR_FLOAT_NAN)
    text = format_long_double(total)
    ctx.set(key, KIND_STRING, text, None if rec is None else rec.expire_ms)
    return text  # a bulk string in RESP2 and RESP3 alike


# -- LCS ---------------------------------------------------------------------------------------

LCS_NOT_STRINGS = "ERR The specified keys must contain string values"
LCS_LEN_AND_IDX = "ERR If you want both the length and indexes, please just use IDX."
LCS_TOO_BIG = "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"
# Redis bounds the DP table by proto-max-bulk-len (bytes); a Python table is
# about 100 times slower to fill, so the cap is on cells: 4M cells take a few
# seconds of the event loop, never minutes.
LCS_MAX_CELLS = 4_000_000


@command("lcs", -3, "readonly", keys=(1, 2, 1), group="string", summary="Find longest common substring", since="7.0.0", complexity="O(N*M) where N and M are the lengths of s1 and s2, respectively")
def lcs(ctx, args):
    recs = [ctx.get(args[1]), ctx.get(args[2])]
    if any(rec is not None and rec.kind not in (KIND_STRING, KIND_NATIVE) for rec in recs):
        raise CommandError(LCS_NOT_STRINGS)
    a, b = (b"" if rec is None else _string(rec) for rec in recs)
    getlen = getidx = withmatchlen = False
    minmatchlen = 0
    j = 3
    while j < len(args):
        opt = args[j].upper()
        if opt == b"IDX":
            getidx = True
        elif opt == b"LEN":
            getlen = True
        elif opt == b"WITHMATCHLEN":
            withmatchlen = True
        elif opt == b"MINMATCHLEN" and j + 1 < len(args):
            minmatchlen = max(0, int_arg(args[j + 1]))
            j += 1
        else:
            raise CommandError(errors.SYNTAX)
        j += 1
    if getidx and getlen:
        raise CommandError(LCS_LEN_AND_IDX)
    alen, blen = len(a), len(b)
    if (alen + 1) * (blen + 1) > LCS_MAX_CELLS:
        raise CommandError(LCS_TOO_BIG)
    # table[i][j]: the LCS length of a[:i] and b[:j].
    table = [[0] * (blen + 1)]
    for i in range(1, alen + 1):
        prev = table[-1]
        row = [0] * (blen + 1)
        ai = a[i - 1]
        for jj in range(1, blen + 1):
            if ai == b[jj - 1]:
                row[jj] = prev[jj - 1] + 1
            else:
                up, left = prev[jj], row[jj - 1]
                row[jj] = up if up > left else left
        table.append(row)
    total = table[alen][blen]
    if getlen:
        return total
    # Walk back from the end as Redis's lcsCommand does, collecting the
    # string and the matching ranges (newest first).
    result = bytearray(total)
    idx = total
    i, jj = alen, blen
    a_start = alen
    a_end = b_start = b_end = 0
    matches = []
    while i > 0 and jj > 0:
        emit = False
        if a[i - 1] == b[jj - 1]:
            result[idx - 1] = a[i - 1]
            if a_start == alen:
                a_start = a_end = i - 1
                b_start = b_end = jj - 1
            elif a_start == i and b_start == jj:
                a_start -= 1
                b_start -= 1
            else:
                emit = True
            if a_start == 0 or b_start == 0:
                emit = True
            idx -= 1
            i -= 1
            jj -= 1
        else:
            if table[i - 1][jj] > table[i][jj - 1]:
                i -= 1
            else:
                jj -= 1
            if a_start != alen:
                emit = True
        if emit:
            match_len = a_end - a_start + 1
            if getidx and (minmatchlen == 0 or match_len >= minmatchlen):
                item = [[a_start, a_end], [b_start, b_end]]
                if withmatchlen:
                    item.append(match_len)
                matches.append(item)
            a_start = alen
    if getidx:
        return Map([(b"matches", matches), (b"len", total)])
    return bytes(result)
