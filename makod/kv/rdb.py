"""DUMP payloads: one value in Redis's RDB format, with its version and CRC64.

A payload is ``type byte, value, RDB version (u16 LE), CRC-64 (u64 LE)``,
the checksum covering everything before it (src/cluster.c:
createDumpPayload, verifyDumpPayload). Redis 7.0 writes RDB version 10 and
refuses anything newer.

This module is a pure codec between payloads and neutral values:

=============  ==========================================
kind           value
=============  ==========================================
KIND_STRING    ``bytes``
KIND_LIST      ``list[bytes]``
KIND_SET       ``list[bytes]`` (no duplicates)
KIND_ZSET      ``list[tuple[bytes, float]]`` (no duplicate members, no NaN)
KIND_HASH      ``dict[bytes, bytes]``
=============  ==========================================

``encode_payload`` writes the plain RDB types (STRING, LIST, SET, ZSET_2,
HASH), which Redis 7.0 loads and re-encodes compactly itself.
``decode_payload`` reads every value type Redis 7.0 (and older versions)
writes but streams and modules. The payload is client input: it is checked
against its CRC before it is parsed, every declared length is checked
against the bytes present before anything is read or allocated, and
anything wrong raises ``BadChecksum`` or ``BadFormat`` (both ``RdbError``),
nothing else.

Malformed payloads are refused as Redis 7.0 refuses them with
``sanitize-dump-payload yes`` (tests/compat/test_diff_dump.py compares),
and a little more: a sorted-set listpack score that is not a number (Redis
reads junk as 0 and "nan" as NaN). Unsorted sorted-set listpacks load
sorted (Redis keeps them in the broken order). With its default
``sanitize-dump-payload no`` Redis also accepts duplicate or odd listpack
hash entries, unsorted intsets and wrong listpack back-lengths; makodb
never does.
"""

from __future__ import annotations

import struct
from typing import Any, Iterable

from makod.kv.rdb_compact import (
    BadChecksum,
    BadFormat,
    RdbError,
    lzf_decompress,
    parse_intset,
    parse_listpack,
    parse_ziplist,
    parse_zipmap,
)
from makod.kv.records import KIND_HASH, KIND_LIST, KIND_SET, KIND_STRING, KIND_ZSET
from makod.kv.types.zsets import parse_score

__all__ = ["BadChecksum", "BadFormat", "RdbError", "RDB_VERSION", "crc64", "encode_payload", "with_footer", "decode_payload"]

RDB_VERSION = 10  # Redis 7.0's (src/rdb.h)
DEFAULT_MAX_STRING_LEN = 512 * 1024 * 1024  # Redis's default proto-max-bulk-len
_FOOTER = 10  # version (2) + CRC64 (8)

# Value types (src/rdb.h). 6/7 are modules, 8 was never used, 15/19 are streams.
T_STRING = 0
T_LIST = 1
T_SET = 2
T_ZSET = 3
T_HASH = 4
T_ZSET_2 = 5
T_HASH_ZIPMAP = 9
T_LIST_ZIPLIST = 10
T_SET_INTSET = 11
T_ZSET_ZIPLIST = 12
T_HASH_ZIPLIST = 13
T_LIST_QUICKLIST = 14
T_HASH_LISTPACK = 16
T_ZSET_LISTPACK = 17
T_LIST_QUICKLIST_2 = 18

# String encodings (the low 6 bits of a length byte whose top bits are 11).
_ENC_INT8 = 0
_ENC_INT16 = 1
_ENC_INT32 = 2
_ENC_LZF = 3

# Quicklist 2 node containers (src/quicklist.h).
_NODE_PLAIN = 1
_NODE_PACKED = 2

# Old ZSET's text doubles: a length byte, or one of these for the special values.
_DOUBLE_NAN = 253
_DOUBLE_POS_INF = 254
_DOUBLE_NEG_INF = 255


# -- CRC-64/Jones, as Redis computes it (reflected, init 0, no final xor) --------------

_CRC_POLY_REFLECTED = 0x95AC9329AC4BC9B5  # 0xad93d23594c935a9, bit-reversed


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ _CRC_POLY_REFLECTED if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()


def crc64(data: bytes, crc: int = 0) -> int:
    table = _CRC_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


# -- encoding -------------------------------------------------------------------------


def _put_length(out: bytearray, n: int) -> None:
    if n < 1 << 6:
        out.append(n)
    elif n < 1 << 14:
        out += bytes([0x40 | (n >> 8), n & 0xFF])
    elif n <= 0xFFFFFFFF:
        out.append(0x80)
        out += n.to_bytes(4, "big")
    else:
        out.append(0x81)
        out += n.to_bytes(8, "big")


def _small_int(s: bytes) -> int | None:
    """The int32 that ``s`` spells canonically, which Redis stores as an integer."""
    if not 0 < len(s) <= 11:
        return None
    body = s[1:] if s[0] == 45 else s
    if not body.isdigit() or (body[0] == 48 and len(s) > 1):
        return None
    v = int(s)
    return v if -(1 << 31) <= v < 1 << 31 else None


def _put_string(out: bytearray, s: bytes) -> None:
    v = _small_int(s)
    if v is None:
        _put_length(out, len(s))
        out += s
    elif -(1 << 7) <= v < 1 << 7:
        out.append(0xC0 | _ENC_INT8)
        out += v.to_bytes(1, "little", signed=True)
    elif -(1 << 15) <= v < 1 << 15:
        out.append(0xC0 | _ENC_INT16)
        out += v.to_bytes(2, "little", signed=True)
    else:
        out.append(0xC0 | _ENC_INT32)
        out += v.to_bytes(4, "little", signed=True)


def _put_strings(out: bytearray, items: Iterable[bytes], count: int) -> None:
    _put_length(out, count)
    for item in items:
        _put_string(out, item)


def encode_payload(kind: int, value: Any) -> bytes:
    """A DUMP payload for a neutral value (see the module docstring)."""
    out = bytearray()
    if kind == KIND_STRING:
        out.append(T_STRING)
        _put_string(out, value)
    elif kind == KIND_LIST:
        out.append(T_LIST)
        _put_strings(out, value, len(value))
    elif kind == KIND_SET:
        out.append(T_SET)
        _put_strings(out, value, len(value))
    elif kind == KIND_ZSET:
        out.append(T_ZSET_2)
        _put_length(out, len(value))
        for member, score in value:
            _put_string(out, member)
            out += struct.pack("<d", score)
    elif kind == KIND_HASH:
        out.append(T_HASH)
        _put_length(out, len(value))
        for field, val in value.items():
            _put_string(out, field)
            _put_string(out, val)
    else:
        raise BadFormat(f"kind {kind} has no RDB encoding")
    return with_footer(bytes(out))


def with_footer(body: bytes, version: int = RDB_VERSION) -> bytes:
    """``body`` (a type byte and a value) made a payload: the RDB version, then the CRC64."""
    body += version.to_bytes(2, "little")
    return body + crc64(body).to_bytes(8, "little")


# -- decoding -------------------------------------------------------------------------


class _Reader:
    """A cursor over the payload that never reads past its end."""

    __slots__ = ("buf", "pos", "max_string_len")

    def __init__(self, buf: bytes, max_string_len: int) -> None:
        self.buf = buf
        self.pos = 0
        self.max_string_len = max_string_len

    def left(self) -> int:
        return len(self.buf) - self.pos

    def take(self, n: int) -> bytes:
        if n > self.left():
            raise BadFormat("value runs past the end of the payload")
        start = self.pos
        self.pos += n
        return self.buf[start : self.pos]

    def byte(self) -> int:
        if self.pos >= len(self.buf):
            raise BadFormat("value runs past the end of the payload")
        self.pos += 1
        return self.buf[self.pos - 1]

    def length(self) -> tuple[int, bool]:
        """A length, or (with True) the special encoding of a string."""
        b = self.byte()
        top = b >> 6
        if top == 0:
            return b & 0x3F, False
        if top == 1:
            return ((b & 0x3F) << 8) | self.byte(), False
        if top == 3:
            return b & 0x3F, True
        if b == 0x80:
            return int.from_bytes(self.take(4), "big"), False
        if b == 0x81:
            return int.from_bytes(self.take(8), "big"), False
        raise BadFormat(f"length byte {b:#x}")

    def plain_length(self) -> int:
        """A length where no string can be: Redis's rdbLoadLen(rdb, NULL), which
        reads a special-encoding byte as its low 6 bits (so 0xC1 counts 1)."""
        return self.length()[0]

    def count(self, min_item_bytes: int) -> int:
        """An element count, refused at once if the bytes left cannot hold that many."""
        n = self.plain_length()
        if n * min_item_bytes > self.left():
            raise BadFormat("element count larger than the payload")
        if n == 0:
            raise BadFormat("empty value")  # Redis never stores one ("empty keys skipped")
        return n

    def string(self) -> bytes:
        n, encoded = self.length()
        if not encoded:
            return self.take(n)
        if n == _ENC_INT8:
            return b"%d" % int.from_bytes(self.take(1), "little", signed=True)
        if n == _ENC_INT16:
            return b"%d" % int.from_bytes(self.take(2), "little", signed=True)
        if n == _ENC_INT32:
            return b"%d" % int.from_bytes(self.take(4), "little", signed=True)
        if n == _ENC_LZF:
            clen = self.plain_length()
            ulen = self.plain_length()
            if ulen > self.max_string_len:
                # LZF inflates up to ~88 times: a small payload must not build a huge string.
                raise BadFormat("lzf string longer than the limit")
            return lzf_decompress(self.take(clen), ulen)
        raise BadFormat(f"string encoding {n}")

    def text_double(self) -> float:
        n = self.byte()
        if n == _DOUBLE_POS_INF:
            return float("inf")
        if n == _DOUBLE_NEG_INF:
            return float("-inf")
        if n == _DOUBLE_NAN:
            raise BadFormat("NaN score")
        return _score(self.take(n))

    def binary_double(self) -> float:
        v = struct.unpack("<d", self.take(8))[0]
        if v != v:
            raise BadFormat("NaN score")
        return v


def _score(text: bytes) -> float:
    v = parse_score(text)
    if v is None:
        raise BadFormat("score is not a number")
    return v


def _unique(members: list[bytes]) -> list[bytes]:
    if len(set(members)) != len(members):
        raise BadFormat("duplicate set members")
    return members


def _pairs(flat: list[bytes]) -> list[tuple[bytes, bytes]]:
    if len(flat) % 2:
        raise BadFormat("odd number of entries in a pair encoding")
    pairs = list(zip(flat[0::2], flat[1::2]))
    if len({k for k, _ in pairs}) != len(pairs):
        raise BadFormat("duplicate fields")
    return pairs


def _nonempty(items: list) -> list:
    if not items:
        raise BadFormat("empty value")
    return items


def _zset_from_flat(flat: list[bytes]) -> list[tuple[bytes, float]]:
    return [(m, _score(s)) for m, s in _nonempty(_pairs(flat))]


def _quicklist(r: _Reader, version: int) -> list[bytes]:
    """A quicklist: nodes of ziplists (version 1) or of listpacks / plain elements (2)."""
    nodes = r.count(2 if version == 2 else 1)
    items: list[bytes] = []
    for _ in range(nodes):
        if version == 1:
            items += parse_ziplist(r.string())
            continue
        container = r.plain_length()
        blob = r.string()
        if container not in (_NODE_PLAIN, _NODE_PACKED):
            raise BadFormat("quicklist node container")
        if container == _NODE_PLAIN:
            if not blob:
                raise BadFormat("empty plain quicklist node")  # Redis refuses it too
            items.append(blob)
        else:
            items += parse_listpack(blob)  # an empty node is skipped, as Redis does
    return _nonempty(items)


def _decode_value(r: _Reader, rtype: int) -> tuple[int, Any]:
    if rtype == T_STRING:
        return KIND_STRING, r.string()
    if rtype == T_LIST:
        return KIND_LIST, [r.string() for _ in range(r.count(1))]
    if rtype == T_SET:
        return KIND_SET, _unique([r.string() for _ in range(r.count(1))])
    if rtype in (T_ZSET, T_ZSET_2):
        n = r.count(2 if rtype == T_ZSET else 9)
        read_score = r.text_double if rtype == T_ZSET else r.binary_double
        pairs = []
        for _ in range(n):
            member = r.string()
            pairs.append((member, read_score()))
        _unique([m for m, _ in pairs])
        return KIND_ZSET, pairs
    if rtype == T_HASH:
        n = r.count(2)
        return KIND_HASH, dict(_pairs([r.string() for _ in range(2 * n)]))
    if rtype == T_LIST_QUICKLIST_2:
        return KIND_LIST, _quicklist(r, 2)
    if rtype == T_LIST_QUICKLIST:
        return KIND_LIST, _quicklist(r, 1)
    if rtype == T_LIST_ZIPLIST:
        return KIND_LIST, _nonempty(parse_ziplist(r.string()))
    if rtype == T_SET_INTSET:
        return KIND_SET, _nonempty(parse_intset(r.string()))
    if rtype == T_ZSET_ZIPLIST:
        return KIND_ZSET, _zset_from_flat(parse_ziplist(r.string()))
    if rtype == T_ZSET_LISTPACK:
        return KIND_ZSET, _zset_from_flat(parse_listpack(r.string()))
    if rtype == T_HASH_ZIPLIST:
        return KIND_HASH, dict(_nonempty(_pairs(parse_ziplist(r.string()))))
    if rtype == T_HASH_ZIPMAP:
        return KIND_HASH, dict(_nonempty(_pairs(parse_zipmap(r.string()))))
    if rtype == T_HASH_LISTPACK:
        return KIND_HASH, dict(_nonempty(_pairs(parse_listpack(r.string()))))
    # Streams (15, 19), modules (6, 7) and unknown types.
    raise BadFormat(f"unsupported RDB value type {rtype}")


def verify_payload(payload: bytes) -> None:
    """verifyDumpPayload: raise ``BadChecksum`` unless the version and CRC are right."""
    if len(payload) < _FOOTER:
        raise BadChecksum("payload shorter than its footer")
    version = int.from_bytes(payload[-_FOOTER : -_FOOTER + 2], "little")
    if version > RDB_VERSION:
        raise BadChecksum(f"RDB version {version} is newer than {RDB_VERSION}")
    if crc64(payload[:-8]) != int.from_bytes(payload[-8:], "little"):
        raise BadChecksum("CRC64 mismatch")


def decode_payload(payload: bytes, max_string_len: int = DEFAULT_MAX_STRING_LEN) -> tuple[int, Any]:
    """(kind, neutral value) of a DUMP payload; ``RdbError`` if it is not a valid one.

    A compressed string (or compressed blob) may inflate to ``max_string_len``
    bytes at most (the caller passes proto-max-bulk-len).
    """
    verify_payload(payload)
    # Redis 7.0's restoreCommand reads the value from the whole payload, footer
    # included: a value may run into the footer's bytes, and bytes left
    # between the value and the footer are ignored (both checked: it answers OK).
    r = _Reader(payload, max_string_len)
    return _decode_value(r, r.byte())
