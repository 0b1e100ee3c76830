"""The Python half of ``cmsgpack`` (lua-cmsgpack 0.4.0 as Redis 7.0 bundles it):
pack/unpack/unpack_one/unpack_limit, with its integer and float widths, its
array detection (keys exactly 1..n), nesting cut at 16 levels (deeper values
pack as nil) and no bin/ext types."""

from __future__ import annotations

import math
import struct as _st
from typing import Any, Callable

from lupa import lua51 as lupa

from makod.kv.scripting.libs_py import _checkstr, _StructError

# -- cmsgpack -------------------------------------------------------------------------

MAX_NESTING = 16


def _mp_int(out: bytearray, n: int) -> None:
    if n >= 0:
        if n <= 127:
            out.append(n)
        elif n <= 0xFF:
            out += b"\xcc" + n.to_bytes(1, "big")
        elif n <= 0xFFFF:
            out += b"\xcd" + n.to_bytes(2, "big")
        elif n <= 0xFFFFFFFF:
            out += b"\xce" + n.to_bytes(4, "big")
        else:
            out += b"\xcf" + (n & (2**64 - 1)).to_bytes(8, "big")
    elif n >= -32:
        out.append(n & 0xFF)
    elif n >= -128:
        out += b"\xd0" + n.to_bytes(1, "big", signed=True)
    elif n >= -32768:
        out += b"\xd1" + n.to_bytes(2, "big", signed=True)
    elif n >= -(2**31):
        out += b"\xd2" + n.to_bytes(4, "big", signed=True)
    else:
        out += b"\xd3" + max(n, -(2**63)).to_bytes(8, "big", signed=True)


def _mp_len(out: bytearray, n: int, small: int, limit: int, b16: bytes, b32: bytes, b8: bytes | None = None) -> None:
    if n < limit:
        out.append(small | n)
    elif b8 is not None and n <= 0xFF:
        out += b8 + n.to_bytes(1, "big")
    elif n <= 0xFFFF:
        out += b16 + n.to_bytes(2, "big")
    else:
        out += b32 + n.to_bytes(4, "big")


def _fits_float(d: float) -> bool:
    """Does C's (double)(float)d == d hold?"""
    if d != d:
        return False
    if d in (math.inf, -math.inf):
        return True
    try:
        return _st.unpack(">f", _st.pack(">f", d))[0] == d
    except OverflowError:
        return False


def _mp_encode(out: bytearray, v: Any, level: int) -> None:
    if v is None:
        out.append(0xC0)
    elif v is True:
        out.append(0xC3)
    elif v is False:
        out.append(0xC2)
    elif isinstance(v, bytes):
        _mp_len(out, len(v), 0xA0, 32, b"\xda", b"\xdb", b"\xd9")
        out += v
    elif isinstance(v, int):
        _mp_int(out, v)
    elif isinstance(v, float):
        if v == v and v not in (math.inf, -math.inf) and v == int(v) and -(2**63) <= v < 2**63:
            _mp_int(out, int(v))
        elif _fits_float(v):
            out += b"\xca" + _st.pack(">f", v)
        else:
            out += b"\xcb" + _st.pack(">d", v)
    elif lupa.lua_type(v) == "table" and level < MAX_NESTING:
        items = list(v.items())
        ints = [k for k, _ in items if isinstance(k, (int, float)) and not isinstance(k, bool) and k > 0 and k == int(k)]
        if len(ints) == len(items) and (not ints or max(ints) == len(ints)):
            _mp_len(out, len(items), 0x90, 16, b"\xdc", b"\xdd")
            by_index = {int(k): x for k, x in items}
            for i in range(1, len(items) + 1):
                _mp_encode(out, by_index[i], level + 1)
        else:
            _mp_len(out, len(items), 0x80, 16, b"\xde", b"\xdf")
            for k, x in items:
                _mp_encode(out, k, level + 1)
                _mp_encode(out, x, level + 1)
    else:
        out.append(0xC0)


def _cmsgpack_pack(*values: Any) -> tuple:
    if not values:
        raise _StructError("bad argument #0 to 'pack' (MessagePack pack needs input.)")
    out = bytearray()
    for v in values:
        _mp_encode(out, v, 0)
    return True, bytes(out)


class _Missing(Exception):
    pass


class _BadFormat(Exception):
    pass


def _mp_decode(data: bytes, pos: int, table: Callable[[], Any]) -> tuple[Any, int]:
    def take(n: int) -> bytes:
        nonlocal pos
        if pos + n > len(data):
            raise _Missing
        chunk = data[pos : pos + n]
        pos += n
        return chunk

    def num(n: int, signed: bool = False) -> int:
        return int.from_bytes(take(n), "big", signed=signed)

    def one() -> Any:
        c = take(1)[0]
        if c <= 0x7F:
            return c
        if c >= 0xE0:
            return c - 256
        if 0xA0 <= c <= 0xBF:
            return take(c & 0x1F)
        if 0x90 <= c <= 0x9F:
            return arr(c & 0x0F)
        if 0x80 <= c <= 0x8F:
            return mapping(c & 0x0F)
        if c == 0xC0:
            return None
        if c == 0xC2:
            return False
        if c == 0xC3:
            return True
        if c == 0xCA:
            return _st.unpack(">f", take(4))[0]
        if c == 0xCB:
            return _st.unpack(">d", take(8))[0]
        sizes = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}
        if c in sizes:
            v = num(sizes[c])
            return float(v) if v >= 2**53 else v
        ssizes = {0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}
        if c in ssizes:
            v = num(ssizes[c], True)
            return float(v) if abs(v) >= 2**53 else v
        if c == 0xD9:
            return take(num(1))
        if c == 0xDA:
            return take(num(2))
        if c == 0xDB:
            return take(num(4))
        if c == 0xDC:
            return arr(num(2))
        if c == 0xDD:
            return arr(num(4))
        if c == 0xDE:
            return mapping(num(2))
        if c == 0xDF:
            return mapping(num(4))
        raise _BadFormat

    def arr(n: int) -> Any:
        t = table()
        for i in range(1, n + 1):
            v = one()
            if v is not None:
                t[i] = v
        return t

    def mapping(n: int) -> Any:
        t = table()
        for _ in range(n):
            k = one()
            v = one()
            if k is not None and not (isinstance(k, float) and k != k) and v is not None:
                t[k] = v
        return t

    value = one()
    return value, pos


def _unpacker(table: Callable[[], Any]) -> dict[str, Callable[..., tuple]]:
    def unpack_full(data: Any, limit: int, offset: int) -> tuple:
        data = _checkstr(data, 1, "unpack")
        if offset < 0 or (offset > len(data) and data):
            raise _StructError("bad argument #3 to 'unpack' (Start offset %d greater than input length %d.)" % (offset, len(data)))
        out: list[Any] = []
        pos = offset
        try:
            while pos < len(data) and (limit <= 0 or len(out) < limit):
                value, pos = _mp_decode(data, pos, table)
                out.append(value)
        except _Missing:
            raise _StructError("Missing bytes in input.") from None
        except _BadFormat:
            raise _StructError("Bad data format in input.") from None
        if limit > 0:
            return (True, -1 if pos >= len(data) else pos, *out)
        return (True, *out)

    return {
        "unpack": lambda data=None: unpack_full(data, 0, 0),
        "unpack_one": lambda data=None, offset=0: unpack_full(data, 1, int(offset or 0)),
        "unpack_limit": lambda data=None, limit=0, offset=0: unpack_full(data, int(limit or 0), int(offset or 0)),
    }
