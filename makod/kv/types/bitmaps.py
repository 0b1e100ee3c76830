"""Bitmap commands (Redis 7.0 src/bitops.c semantics).

A bitmap is a string value: bit 0 is the most significant bit of byte 0.
SETBIT, BITFIELD and BITOP rewrite the whole string value with ``ctx.set``;
SETBIT and BITFIELD keep the key's TTL, BITOP replaces the destination (and
drops its TTL) as Redis's setKey does.

Argument errors are reported in Redis's order: every argument is parsed
before the key is looked up, except where Redis looks the key up first
(BITCOUNT and BITPOS answer a missing key before parsing their range).
"""

from __future__ import annotations

from makod.kv import errors
from makod.kv.args import int_arg, is_opt, parse_int
from makod.kv.errors import CommandError
from makod.kv.records import KIND_STRING
from makod.kv.table import command
from makod.kv.types.strings import _string, check_write_size

BIT_OFFSET = "ERR bit offset is not an integer or out of range"
BIT_VALUE = "ERR bit is not an integer or out of range"
BIT_ARG = "ERR The bit argument must be 1 or 0."
BITOP_NOT_SINGLE = "ERR BITOP NOT must be called with a single source key."
BITFIELD_TYPE = "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is."
BITFIELD_OVERFLOW = "ERR Invalid OVERFLOW type specified"
BITFIELD_RO_GET_ONLY = "ERR BITFIELD_RO only supports the GET subcommand"

_UINT64 = 1 << 64


def _bit_offset(ctx, arg: bytes, bits: int = 0) -> int:
    """getBitOffsetFromArgument: a bit offset, ``#n`` meaning n*bits when ``bits``."""
    usehash = bits > 0 and arg[:1] == b"#"
    off = parse_int(arg[1:] if usehash else arg)
    if off is None:
        raise CommandError(BIT_OFFSET)
    if usehash:
        off *= bits
        off = ((off + (1 << 63)) % (1 << 64)) - (1 << 63)  # wraps as a C long long
    if off < 0 or (off >> 3) >= ctx.proto_max_bulk_len:
        raise CommandError(BIT_OFFSET)
    return off


def _read(ctx, key: bytes) -> bytes | None:
    rec = ctx.get(key)
    return None if rec is None else _string(rec)


# -- SETBIT / GETBIT ----------------------------------------------------------------


@command("setbit", 4, "write denyoom", keys=(1, 1, 1), group="bitmap", summary="Sets or clears the bit at offset in the string value stored at key", since="2.2.0", complexity="O(1)")
def setbit(ctx, args):
    offset = _bit_offset(ctx, args[2])
    on = parse_int(args[3])
    if on is None or on & ~1:
        raise CommandError(BIT_VALUE)
    key = args[1]
    rec = ctx.get(key)
    byte = offset >> 3
    shift = 7 - (offset & 7)
    if rec is None or len(_string(rec)) <= byte:
        check_write_size(ctx, byte + 1)
    if rec is None:
        value = bytearray(byte + 1)
        expire = None
        grew = True
    else:
        old = _string(rec)
        expire = rec.expire_ms
        grew = len(old) <= byte
        value = bytearray(old)
        if grew:
            value.extend(bytes(byte + 1 - len(old)))
    bitval = (value[byte] >> shift) & 1
    if grew or bitval != on:
        if on:
            value[byte] |= 1 << shift
        else:
            value[byte] &= ~(1 << shift) & 0xFF
        ctx.set(key, KIND_STRING, bytes(value), expire)
    return bitval


@command("getbit", 3, "readonly fast", keys=(1, 1, 1), group="bitmap", summary="Returns the bit value at offset in the string value stored at key", since="2.2.0", complexity="O(1)")
def getbit(ctx, args):
    offset = _bit_offset(ctx, args[2])
    value = _read(ctx, args[1])
    if value is None:
        return 0
    byte = offset >> 3
    if byte >= len(value):
        return 0
    return (value[byte] >> (7 - (offset & 7))) & 1


# -- BITCOUNT / BITPOS ----------------------------------------------------------------


def _bit_unit(arg: bytes) -> bool:
    """BIT or BYTE (case-insensitive): True for BIT."""
    if is_opt(arg, b"BIT"):
        return True
    if is_opt(arg, b"BYTE"):
        return False
    raise CommandError(errors.SYNTAX)


def _normalise(start: int, end: int, total: int) -> tuple[int, int]:
    if start < 0:
        start += total
    if end < 0:
        end += total
    if start < 0:
        start = 0
    if end < 0:
        end = 0
    if end >= total:
        end = total - 1
    return start, end


@command("bitcount", -2, "readonly", keys=(1, 1, 1), group="bitmap", summary="Count set bits in a string", since="2.6.0", complexity="O(N)")
def bitcount(ctx, args):
    value = _read(ctx, args[1])
    if value is None:
        return 0
    argc = len(args)
    if argc == 2:
        return int.from_bytes(value, "big").bit_count()
    if argc not in (4, 5):
        raise CommandError(errors.SYNTAX)
    start = int_arg(args[2])
    end = int_arg(args[3])
    if start < 0 and end < 0 and start > end:
        return 0
    isbit = _bit_unit(args[4]) if argc == 5 else False
    n = len(value)
    if isbit:
        start, end = _normalise(start, end, n * 8)
        if start > end:
            return 0
        sb, eb = start >> 3, end >> 3
        chunk = int.from_bytes(value[sb : eb + 1], "big")
        # Keep bits start..end of the chunk (bit 0 is the chunk's top bit).
        chunk >>= 7 - (end & 7)
        chunk &= (1 << (end - start + 1)) - 1
        return chunk.bit_count()
    start, end = _normalise(start, end, n)
    if start > end:
        return 0
    return int.from_bytes(value[start : end + 1], "big").bit_count()


def _first_bit(value: bytes, bit: int, start: int, end: int) -> int:
    """The first bit position in [start, end] (bit units, inclusive) equal to ``bit``, or -1."""
    sb, eb = start >> 3, end >> 3
    nbits = end - start + 1
    chunk = int.from_bytes(value[sb : eb + 1], "big")
    chunk >>= 7 - (end & 7)
    mask = (1 << nbits) - 1
    chunk &= mask
    if bit == 0:
        chunk ^= mask
    if chunk == 0:
        return -1
    # The highest set bit of chunk is the first match from the left.
    return start + (nbits - chunk.bit_length())


@command("bitpos", -3, "readonly", keys=(1, 1, 1), group="bitmap", summary="Find first bit set or clear in a string", since="2.8.7", complexity="O(N)")
def bitpos(ctx, args):
    bit = int_arg(args[2])
    if bit != 0 and bit != 1:
        raise CommandError(BIT_ARG)
    value = _read(ctx, args[1])
    if value is None:
        return -1 if bit else 0
    n = len(value)
    argc = len(args)
    isbit = False
    end_given = False
    if argc in (4, 5, 6):
        start = int_arg(args[3])
        if argc == 6:
            isbit = _bit_unit(args[5])
        if argc >= 5:
            end = int_arg(args[4])
            end_given = True
        else:
            end = (n << 3) + 7 if isbit else n - 1
        total = n * 8 if isbit else n
        start, end = _normalise(start, end, total)
    elif argc == 3:
        start, end = 0, n - 1
    else:
        raise CommandError(errors.SYNTAX)
    if start > end:
        return -1
    if not isbit:
        start, end = start * 8, end * 8 + 7
    pos = _first_bit(value, bit, start, end)
    if pos != -1 or bit == 1:
        return pos
    # No clear bit in range: the string is zero padded on the right, unless
    # the caller gave an explicit end.
    if end_given:
        return -1
    return ((end >> 3) + 1) * 8


# -- BITOP ----------------------------------------------------------------------------


@command("bitop", -4, "write denyoom", keys=(2, -1, 1), group="bitmap", summary="Perform bitwise operations between strings", since="2.6.0", complexity="O(N)")
def bitop(ctx, args):
    op = args[1].upper()
    if op not in (b"AND", b"OR", b"XOR", b"NOT"):
        raise CommandError(errors.SYNTAX)
    if op == b"NOT" and len(args) != 4:
        raise CommandError(BITOP_NOT_SINGLE)
    dest = args[2]
    sources = []
    for key in args[3:]:
        value = _read(ctx, key)
        sources.append(b"" if value is None else value)
    maxlen = max(len(s) for s in sources)
    if maxlen == 0:
        ctx.delete(dest)
        return 0
    ints = [int.from_bytes(s, "big") << (8 * (maxlen - len(s))) for s in sources]
    result = ints[0]
    if op == b"NOT":
        result ^= (1 << (8 * maxlen)) - 1
    elif op == b"AND":
        for v in ints[1:]:
            result &= v
    elif op == b"OR":
        for v in ints[1:]:
            result |= v
    else:
        for v in ints[1:]:
            result ^= v
    ctx.set(dest, KIND_STRING, result.to_bytes(maxlen, "big"), None)
    return maxlen


# -- BITFIELD -------------------------------------------------------------------------

_WRAP, _SAT, _FAIL = 0, 1, 2
_GET, _SET, _INCRBY = 0, 1, 2


def _bitfield_type(arg: bytes) -> tuple[bool, int]:
    sign = arg[:1]
    if sign == b"i":
        signed = True
    elif sign == b"u":
        signed = False
    else:
        raise CommandError(BITFIELD_TYPE)
    rest = arg[1:]
    nul = rest.find(b"\0")  # the C string ends at the first NUL
    if nul >= 0:
        rest = rest[:nul]
    bits = parse_int(rest)
    if bits is None or bits < 1 or (signed and bits > 64) or (not signed and bits > 63):
        raise CommandError(BITFIELD_TYPE)
    return signed, bits


def _get_field(value: bytes | bytearray, offset: int, bits: int, signed: bool) -> int:
    sb = offset >> 3
    eb = (offset + bits - 1) >> 3
    chunk = bytes(value[sb : eb + 1])
    need = eb + 1 - sb
    if len(chunk) < need:
        chunk += bytes(need - len(chunk))
    v = int.from_bytes(chunk, "big")
    v >>= 7 - ((offset + bits - 1) & 7)
    v &= (1 << bits) - 1
    if signed and v >> (bits - 1):
        v -= 1 << bits
    return v


def _set_field(value: bytearray, offset: int, bits: int, v: int) -> None:
    sb = offset >> 3
    eb = (offset + bits - 1) >> 3
    chunk = int.from_bytes(value[sb : eb + 1], "big")
    shift = 7 - ((offset + bits - 1) & 7)
    mask = ((1 << bits) - 1) << shift
    chunk = (chunk & ~mask) | ((v & ((1 << bits) - 1)) << shift)
    value[sb : eb + 1] = chunk.to_bytes(eb + 1 - sb, "big")


def _bitfield(ctx, args, readonly_cmd: bool):
    ops = []
    owtype = _WRAP
    readonly = True
    highest = 0
    argc = len(args)
    j = 2
    while j < argc:
        remargs = argc - j - 1
        sub = args[j]
        if is_opt(sub, b"GET") and remargs >= 2:
            opcode = _GET
        elif is_opt(sub, b"SET") and remargs >= 3:
            opcode = _SET
        elif is_opt(sub, b"INCRBY") and remargs >= 3:
            opcode = _INCRBY
        elif is_opt(sub, b"OVERFLOW") and remargs >= 1:
            name = args[j + 1]
            j += 2
            if is_opt(name, b"WRAP"):
                owtype = _WRAP
            elif is_opt(name, b"SAT"):
                owtype = _SAT
            elif is_opt(name, b"FAIL"):
                owtype = _FAIL
            else:
                raise CommandError(BITFIELD_OVERFLOW)
            continue
        else:
            raise CommandError(errors.SYNTAX)
        signed, bits = _bitfield_type(args[j + 1])
        offset = _bit_offset(ctx, args[j + 2], bits)
        i64 = 0
        if opcode != _GET:
            readonly = False
            highest = max(highest, offset + bits - 1)
            i64 = int_arg(args[j + 3])
        ops.append((opcode, offset, i64, owtype, bits, signed))
        j += 4 if opcode != _GET else 3

    key = args[1]
    rec = ctx.get(key)
    if readonly:
        value = None if rec is None else _string(rec)
        out = []
        for _, offset, _, _, bits, signed in ops:
            out.append(0 if value is None else _get_field(value, offset, bits, signed))
        return out
    if readonly_cmd:
        raise CommandError(BITFIELD_RO_GET_ONLY)
    need = (highest >> 3) + 1
    if rec is None or len(_string(rec)) < need:
        check_write_size(ctx, need)
    if rec is None:
        value = bytearray(need)
        expire = None
        grew = True
    else:
        old = _string(rec)
        expire = rec.expire_ms
        value = bytearray(old)
        grew = len(old) < need
        if grew:
            value.extend(bytes(need - len(old)))
    changes = 0
    out = []
    for opcode, offset, i64, ow, bits, signed in ops:
        if opcode == _GET:
            out.append(_get_field(value, offset, bits, signed))
            continue
        old_v = _get_field(value, offset, bits, signed)
        if signed:
            hi = (1 << (bits - 1)) - 1
            lo = -hi - 1
            new_v = old_v + i64 if opcode == _INCRBY else i64
            overflow = new_v > hi or new_v < lo
            if overflow:
                if ow == _SAT:
                    new_v = hi if new_v > hi else lo
                else:
                    half = 1 << (bits - 1)
                    new_v = ((new_v + half) % (1 << bits)) - half
        else:
            hi = (1 << bits) - 1
            if opcode == _INCRBY:
                new_v = old_v + i64
            else:
                new_v = i64 % _UINT64  # the value is read as a uint64_t
            overflow = new_v > hi or new_v < 0
            if overflow:
                if ow == _SAT:
                    new_v = hi if new_v > hi else 0
                else:
                    new_v %= 1 << bits
        if overflow and ow == _FAIL:
            out.append(None)
            continue
        out.append(new_v if opcode == _INCRBY else old_v)
        _set_field(value, offset, bits, new_v)
        if grew or old_v != new_v:
            changes += 1
    if grew or changes:
        ctx.set(key, KIND_STRING, bytes(value), expire)
    return out


@command("bitfield", -2, "write denyoom", keys=(1, 1, 1), group="bitmap", summary="Perform arbitrary bitfield integer operations on strings", since="3.2.0", complexity="O(1) for each subcommand specified")
def bitfield(ctx, args):
    return _bitfield(ctx, args, False)


@command("bitfield_ro", -2, "readonly fast", keys=(1, 1, 1), group="bitmap", summary="Perform arbitrary bitfield integer operations on strings. Read-only variant of BITFIELD", since="6.0.0", complexity="O(1) for each subcommand specified")
def bitfield_ro(ctx, args):
    return _bitfield(ctx, args, True)

