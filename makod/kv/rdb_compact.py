"""Redis's compact encodings, read back: LZF, listpack, ziplist, intset, zipmap.

A DUMP payload made by redis-server holds small values in these blobs
(a hash of a few fields is one listpack string, a list is a quicklist of
listpacks, an int-only set an intset, long strings LZF-compressed). The
payload comes from a client, so every reader here checks every length and
offset against the bytes actually present before using it, allocates
nothing by a declared size, and raises ``BadFormat`` (and nothing else) on
anything malformed. Stricter than Redis with ``sanitize-dump-payload no``:
back-lengths, tail offsets and element counts are all verified.

Formats are Redis 7.0's (src/lzf_d.c, src/listpack.c, src/ziplist.c,
src/intset.c, src/zipmap.c), written from their descriptions, not their code.
"""

from __future__ import annotations


class RdbError(Exception):
    """A DUMP payload makodb cannot accept (the only exception the codec raises)."""


class BadChecksum(RdbError):
    """The RDB version is newer than Redis 7.0's or the CRC64 does not match."""


class BadFormat(RdbError):
    """The payload's checksum is right but its value is malformed or unsupported."""


def _fail(why: str) -> BadFormat:
    return BadFormat(why)


# -- LZF ------------------------------------------------------------------------------


def lzf_decompress(data: bytes, expected_len: int) -> bytes:
    """Inflate an LZF block that must produce exactly ``expected_len`` bytes.

    The output grows with the input actually decoded (never preallocated by
    ``expected_len``) and decoding stops as soon as it would overshoot.
    """
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        ctrl = data[i]
        i += 1
        if ctrl < 32:  # a literal run of ctrl + 1 bytes
            run = ctrl + 1
            if i + run > n:
                raise _fail("lzf literal past the end")
            out += data[i : i + run]
            i += run
        else:  # a back-reference: length in the top 3 bits (7 = one more byte)
            run = ctrl >> 5
            if run == 7:
                if i >= n:
                    raise _fail("lzf length past the end")
                run += data[i]
                i += 1
            if i >= n:
                raise _fail("lzf offset past the end")
            ref = len(out) - ((ctrl & 0x1F) << 8) - data[i] - 1
            i += 1
            run += 2
            if ref < 0:
                raise _fail("lzf reference before the start")
            if len(out) + run > expected_len:
                raise _fail("lzf output longer than declared")
            if ref + run <= len(out):
                out += out[ref : ref + run]
            else:  # overlapping copy: the last len(out) - ref bytes, repeated
                period = out[ref:]
                out += (period * (run // len(period) + 1))[:run]
        if len(out) > expected_len:
            raise _fail("lzf output longer than declared")
    if len(out) != expected_len:
        raise _fail("lzf output shorter than declared")
    return bytes(out)


# -- listpack -------------------------------------------------------------------------

_LP_HEADER = 6  # total bytes (u32) + element count (u16)
_LP_EOF = 0xFF
_LP_COUNT_UNKNOWN = 0xFFFF


def _backlen_bytes(length: int) -> bytes:
    """How a listpack entry of ``length`` bytes stores its length after itself."""
    groups = [length & 127]
    length >>= 7
    while length:
        groups.append(length & 127)
        length >>= 7
    # The first byte (highest group) has no continuation bit; the rest have it.
    groups.reverse()
    return bytes([groups[0]] + [g | 128 for g in groups[1:]])


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def _lp_entry(blob: bytes, pos: int, end: int) -> tuple[bytes, int]:
    """One listpack entry at ``pos``: (its value as bytes, the next entry's position)."""
    b = blob[pos]
    if b < 0x80:  # 7-bit unsigned int
        value, size = b"%d" % b, 1
    elif b < 0xC0:  # 6-bit string length
        n = b & 0x3F
        if pos + 1 + n > end:
            raise _fail("listpack string past the end")
        value, size = blob[pos + 1 : pos + 1 + n], 1 + n
    elif b < 0xE0:  # 13-bit signed int
        if pos + 2 > end:
            raise _fail("listpack int past the end")
        value, size = b"%d" % _signed(((b & 0x1F) << 8) | blob[pos + 1], 13), 2
    elif b < 0xF0:  # 12-bit string length
        if pos + 2 > end:
            raise _fail("listpack length past the end")
        n = ((b & 0x0F) << 8) | blob[pos + 1]
        if pos + 2 + n > end:
            raise _fail("listpack string past the end")
        value, size = blob[pos + 2 : pos + 2 + n], 2 + n
    elif b == 0xF0:  # 32-bit string length
        if pos + 5 > end:
            raise _fail("listpack length past the end")
        n = int.from_bytes(blob[pos + 1 : pos + 5], "little")
        if pos + 5 + n > end:
            raise _fail("listpack string past the end")
        value, size = blob[pos + 5 : pos + 5 + n], 5 + n
    elif 0xF1 <= b <= 0xF4:  # 16/24/32/64-bit signed int
        width = {0xF1: 2, 0xF2: 3, 0xF3: 4, 0xF4: 8}[b]
        if pos + 1 + width > end:
            raise _fail("listpack int past the end")
        raw = int.from_bytes(blob[pos + 1 : pos + 1 + width], "little")
        value, size = b"%d" % _signed(raw, 8 * width), 1 + width
    else:
        raise _fail(f"listpack encoding byte {b:#x}")
    back = _backlen_bytes(size)
    after = pos + size
    if blob[after : after + len(back)] != back:
        raise _fail("listpack back-length mismatch")
    return value, after + len(back)


def parse_listpack(blob: bytes) -> list[bytes]:
    """The elements of a listpack, integers as their decimal text."""
    if len(blob) < _LP_HEADER + 1:
        raise _fail("listpack too short")
    total = int.from_bytes(blob[0:4], "little")
    count = int.from_bytes(blob[4:6], "little")
    if total != len(blob) or blob[-1] != _LP_EOF:
        raise _fail("listpack size or terminator wrong")
    end = len(blob) - 1
    out: list[bytes] = []
    pos = _LP_HEADER
    while pos < end:
        value, pos = _lp_entry(blob, pos, end)
        out.append(value)
    if pos != end or (count != _LP_COUNT_UNKNOWN and count != len(out)):
        raise _fail("listpack entries do not match its header")
    return out


# -- ziplist --------------------------------------------------------------------------

_ZL_HEADER = 10  # total bytes (u32), tail offset (u32), count (u16)
_ZL_END = 0xFF
_ZL_INTS = {0xC0: 2, 0xD0: 4, 0xE0: 8, 0xF0: 3, 0xFE: 1}


def _zl_entry(blob: bytes, pos: int, end: int, prev_size: int) -> tuple[bytes, int]:
    """One ziplist entry at ``pos``: (its value as bytes, the next entry's position)."""
    if blob[pos] < 0xFE:
        prevlen, pos = blob[pos], pos + 1
    elif blob[pos] == 0xFE:
        if pos + 5 > end:
            raise _fail("ziplist prevlen past the end")
        prevlen, pos = int.from_bytes(blob[pos + 1 : pos + 5], "little"), pos + 5
    else:
        raise _fail("ziplist entry starts with the end marker")
    if prevlen != prev_size:
        raise _fail("ziplist prevlen mismatch")
    if pos >= end:
        raise _fail("ziplist encoding past the end")
    enc = blob[pos]
    kind = enc >> 6
    if kind == 0:  # 6-bit string length
        n, pos = enc & 0x3F, pos + 1
    elif kind == 1:  # 14-bit string length, big-endian
        if pos + 2 > end:
            raise _fail("ziplist length past the end")
        n, pos = ((enc & 0x3F) << 8) | blob[pos + 1], pos + 2
    elif enc == 0x80:  # 32-bit string length, big-endian
        if pos + 5 > end:
            raise _fail("ziplist length past the end")
        n, pos = int.from_bytes(blob[pos + 1 : pos + 5], "big"), pos + 5
    elif enc in _ZL_INTS:
        width = _ZL_INTS[enc]
        if pos + 1 + width > end:
            raise _fail("ziplist int past the end")
        raw = int.from_bytes(blob[pos + 1 : pos + 1 + width], "little")
        return b"%d" % _signed(raw, 8 * width), pos + 1 + width
    elif 0xF1 <= enc <= 0xFD:  # immediate 0..12
        return b"%d" % ((enc & 0x0F) - 1), pos + 1
    else:
        raise _fail(f"ziplist encoding byte {enc:#x}")
    if pos + n > end:
        raise _fail("ziplist string past the end")
    return blob[pos : pos + n], pos + n


def parse_ziplist(blob: bytes) -> list[bytes]:
    """The elements of a ziplist, integers as their decimal text."""
    if len(blob) < _ZL_HEADER + 1:
        raise _fail("ziplist too short")
    total = int.from_bytes(blob[0:4], "little")
    tail = int.from_bytes(blob[4:8], "little")
    count = int.from_bytes(blob[8:10], "little")
    if total != len(blob) or blob[-1] != _ZL_END:
        raise _fail("ziplist size or terminator wrong")
    end = len(blob) - 1
    out: list[bytes] = []
    pos, prev_size, last = _ZL_HEADER, 0, _ZL_HEADER
    while pos < end:
        last = pos
        value, nxt = _zl_entry(blob, pos, end, prev_size)
        prev_size = nxt - pos
        pos = nxt
        out.append(value)
    if pos != end or tail != last or (count != 0xFFFF and count != len(out)):
        raise _fail("ziplist entries do not match its header")
    return out


# -- zipmap (hashes in RDB files of Redis 2.4 and older) ------------------------------

_ZM_BIGLEN = 254  # a length byte of 254: a 4-byte length follows; a count of 254: unknown
_ZM_END = 0xFF


def _zm_length(blob: bytes, pos: int, end: int) -> tuple[int, int]:
    b = blob[pos]
    if b < _ZM_BIGLEN:
        return b, pos + 1
    if b == _ZM_BIGLEN and pos + 5 <= end:
        return int.from_bytes(blob[pos + 1 : pos + 5], "little"), pos + 5
    raise _fail("zipmap length")


def parse_zipmap(blob: bytes) -> list[bytes]:
    """A zipmap's keys and values, flat: key, value, key, value..."""
    if len(blob) < 2 or blob[-1] != _ZM_END:
        raise _fail("zipmap too short or unterminated")
    end = len(blob) - 1
    out: list[bytes] = []
    pos = 1
    while pos < end:
        n, pos = _zm_length(blob, pos, end)
        if pos + n > end:
            raise _fail("zipmap key past the end")
        out.append(blob[pos : pos + n])
        n, pos = _zm_length(blob, pos + n, end)
        if pos >= end:
            raise _fail("zipmap value past the end")
        free = blob[pos]  # unused bytes after the value
        if pos + 1 + n + free > end:
            raise _fail("zipmap value past the end")
        out.append(blob[pos + 1 : pos + 1 + n])
        pos += 1 + n + free
    if blob[0] < _ZM_BIGLEN and blob[0] != len(out) // 2:
        raise _fail("zipmap count does not match its entries")
    return out


# -- intset ---------------------------------------------------------------------------


def parse_intset(blob: bytes) -> list[bytes]:
    """The members of an intset (strictly ascending integers) as decimal text."""
    if len(blob) < 8:
        raise _fail("intset too short")
    width = int.from_bytes(blob[0:4], "little")
    count = int.from_bytes(blob[4:8], "little")
    if width not in (2, 4, 8) or len(blob) != 8 + width * count:
        raise _fail("intset size wrong")
    values = [
        int.from_bytes(blob[i : i + width], "little", signed=True) for i in range(8, len(blob), width)
    ]
    if any(a >= b for a, b in zip(values, values[1:])):
        raise _fail("intset not strictly ascending")
    return [b"%d" % v for v in values]
