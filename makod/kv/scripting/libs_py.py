"""The Python halves of ``bit`` (LuaBitOp 1.0), ``struct`` (lua-struct 0.2)
and ``cmsgpack`` (lua-cmsgpack 0.4), as Redis 7.0 bundles them.

Each function returns ``(True, value...)`` or ``(False, message)``; the Lua
wrappers in libs.py raise the message at the caller's line (luaL_error).
Arguments arrive as lupa gives them (bytes, int, float, bool, None, tables).
"""

from __future__ import annotations

import math
import struct as _st
from typing import Any, Callable

from lupa import lua51 as lupa

# -- bit ------------------------------------------------------------------------------


def _u32(x: int) -> int:
    return x & 0xFFFFFFFF


def _s32(x: int) -> int:
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x & 0x80000000 else x


def _bits(x: float) -> int:
    """LuaBitOp's barg: the number rounded (ties to even) and cut to 32 bits."""
    if x != x or x in (math.inf, -math.inf):
        return 0
    return _u32(int(round(x)))


def bit_op(op: bytes, *args: float) -> tuple:
    a = [_bits(x) for x in args]
    if op == b"tobit":
        r = a[0]
    elif op == b"bnot":
        r = ~a[0]
    elif op == b"band":
        r = 0xFFFFFFFF
        for x in a:
            r &= x
    elif op == b"bor":
        r = 0
        for x in a:
            r |= x
    elif op == b"bxor":
        r = 0
        for x in a:
            r ^= x
    elif op == b"bswap":
        r = int.from_bytes(a[0].to_bytes(4, "little"), "big")
    else:
        x, n = a[0], a[1] & 31
        if op == b"lshift":
            r = x << n
        elif op == b"rshift":
            r = x >> n
        elif op == b"arshift":
            r = _s32(x) >> n
        elif op == b"rol":
            r = (x << n) | (x >> ((32 - n) & 31)) if n else x
        else:  # ror
            r = (x >> n) | (x << ((32 - n) & 31)) if n else x
    return True, _s32(r)


def bit_tohex(x: float, n: float | None = None) -> tuple:
    b = _bits(x)
    digits = 8 if n is None else _s32(_bits(n))
    upper = digits < 0
    digits = min(abs(digits), 8)
    text = ("%0*X" if upper else "%0*x") % (8, b)
    return True, text[8 - digits :].encode()


# -- struct ---------------------------------------------------------------------------

_SIZES = {b"b": 1, b"B": 1, b"h": 2, b"H": 2, b"l": 8, b"L": 8, b"T": 8, b"f": 4, b"d": 8, b"x": 1}
MAXINTSIZE = 32


class _StructError(Exception):
    pass


def _options(fmt: bytes):
    """(option, size, alignment padding rule) for each format item; tracks endianness."""
    i, n = 0, len(fmt)
    state = {"little": True, "align": 1}
    while i < n:
        opt = fmt[i : i + 1]
        i += 1
        j = i
        while j < n and fmt[j : j + 1].isdigit():
            j += 1
        num = int(fmt[i:j]) if j > i else None
        if opt in b"iIc!":
            i = j
        if opt == b" ":
            continue
        if opt == b"<":
            state["little"] = True
            continue
        if opt == b">":
            state["little"] = False
            continue
        if opt == b"!":
            state["align"] = num if num is not None else 8
            continue
        if opt in _SIZES:
            size = _SIZES[opt]
        elif opt in (b"i", b"I"):
            size = 4 if num is None else num
            if size > MAXINTSIZE:
                raise _StructError(f"integral size {size} is larger than limit of {MAXINTSIZE}")
        elif opt == b"c":
            size = 1 if num is None else num
        elif opt == b"s":
            size = 0
        else:
            raise _StructError(f"bad argument #1 to '{{}}' (invalid format option '{opt.decode('latin-1')}')")
        yield opt, size, state


def _toalign(pos: int, size: int, opt: bytes, align: int) -> int:
    if size == 0 or opt == b"c":
        return 0
    size = min(size, align)
    if size & (size - 1):
        raise _StructError("alignment must be power of 2")
    return (size - (pos & (size - 1))) & (size - 1)


def _checknum(v: Any, arg: int, fname: str) -> float:
    if isinstance(v, bytes):
        try:
            return float(v) if b"." in v or b"e" in v.lower() else int(v, 0)
        except ValueError:
            pass
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _StructError(f"bad argument #{arg} to '{fname}' (number expected, got {_typename(v, 'nil')})")
    return v


def _checkstr(v: Any, arg: int, fname: str) -> bytes:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return b"%.14g" % v
    if not isinstance(v, bytes):
        raise _StructError(f"bad argument #{arg} to '{fname}' (string expected, got {_typename(v, 'nil')})")
    return v


def _typename(v: Any, missing: str = "no value") -> str:
    if v is None:
        return missing
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, bytes):
        return "string"
    if isinstance(v, (int, float)):
        return "number"
    return lupa.lua_type(v) or "userdata"


def _wrap(fname: str, fn: Callable[..., tuple]) -> Callable[..., tuple]:
    def run(*args: Any) -> tuple:
        try:
            return fn(*args)
        except _StructError as exc:
            return False, str(exc).replace("{}", fname).encode()

    return run


def _struct_pack(fmt: Any = None, *values: Any) -> tuple:
    fmt = _checkstr(fmt, 1, "pack")
    out = bytearray()
    arg = 2
    vals = list(values)
    for opt, size, st in _options(fmt):
        pad = _toalign(len(out), size, opt, st["align"])
        out += b"\0" * pad
        little = st["little"]
        if opt == b"x":
            out.append(0)
        elif opt in b"bBhHlLTiI":
            n = _checknum(vals[arg - 2] if arg - 2 < len(vals) else None, arg, "pack")
            v = int(n) & ((1 << 64) - 1) if abs(n) < 2**64 else 0
            raw = (v & ((1 << (8 * size)) - 1) if size <= 8 else v).to_bytes(size, "little")
            out += raw if little else raw[::-1]
            arg += 1
        elif opt in (b"f", b"d"):
            n = _checknum(vals[arg - 2] if arg - 2 < len(vals) else None, arg, "pack")
            out += _st.pack(("<" if little else ">") + opt.decode(), n)
            arg += 1
        elif opt == b"c":
            s = _checkstr(vals[arg - 2] if arg - 2 < len(vals) else None, arg, "pack")
            if size == 0:
                size = len(s)
            if len(s) < size:
                raise _StructError(f"bad argument #{arg + 1} to 'pack' (string too short)")
            out += s[:size]
            arg += 1
        elif opt == b"s":
            s = _checkstr(vals[arg - 2] if arg - 2 < len(vals) else None, arg, "pack")
            out += s + b"\0"
            arg += 1
    return True, bytes(out)


def _struct_unpack(fmt: Any = None, data: Any = None, init: Any = None) -> tuple:
    fmt = _checkstr(fmt, 1, "unpack")
    data = _checkstr(data, 2, "unpack")
    pos = 0 if init is None else int(_checknum(init, 3, "unpack")) - 1
    if not 0 <= pos <= len(data):
        raise _StructError("bad argument #3 to 'unpack' (offset must be 1 or greater)")
    out: list[Any] = []
    for opt, size, st in _options(fmt):
        pos += _toalign(pos, size, opt, st["align"])
        little = st["little"]
        if opt == b"c" and size == 0:
            if not out or not isinstance(out[-1], (int, float)):
                raise _StructError("format 'c0' needs a previous size")
            size = int(out.pop())
        if opt == b"s":
            end = data.find(b"\0", pos)
            if end < 0:
                raise _StructError("unfinished string in data")
            out.append(data[pos:end])
            pos = end + 1
            continue
        if pos + size > len(data):
            raise _StructError("bad argument #2 to 'unpack' (data string too short)")
        chunk = data[pos : pos + size]
        if opt in b"bBhHlLTiI":
            v = int.from_bytes(chunk if little else chunk[::-1], "little")
            if opt.islower() and size <= 8 and v >> (8 * size - 1):
                v -= 1 << (8 * size)
            out.append(float(v) if abs(v) >= 2**53 else v)
        elif opt in (b"f", b"d"):
            out.append(_st.unpack(("<" if little else ">") + opt.decode(), chunk)[0])
        elif opt == b"c":
            out.append(chunk)
        pos += size
    return (True, *out, pos + 1)


def _struct_size(fmt: Any = None) -> tuple:
    fmt = _checkstr(fmt, 1, "size")
    pos = 0
    for opt, size, st in _options(fmt):
        if opt == b"s" or (opt == b"c" and size == 0):
            which = "s" if opt == b"s" else "c0"
            raise _StructError(f"bad argument #1 to 'size' (option '{which}' has no fixed size)")
        pos += _toalign(pos, size, opt, st["align"]) + size
    return True, pos


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


def python_side(table: Callable[[], Any]) -> dict[str, Any]:
    side: dict[str, Any] = {
        "bit_op": bit_op,
        "bit_tohex": bit_tohex,
        "struct_pack": _wrap("pack", _struct_pack),
        "struct_unpack": _wrap("unpack", _struct_unpack),
        "struct_size": _wrap("size", _struct_size),
        "msgpack_pack": _wrap("pack", _cmsgpack_pack),
    }
    for name, fn in _unpacker(table).items():
        side["msgpack_" + name] = _wrap(name, fn)
    return side
