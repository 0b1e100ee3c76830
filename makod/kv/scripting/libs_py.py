"""The Python halves of ``bit`` (LuaBitOp 1.0) and ``struct`` (lua-struct 0.2),
as Redis 7.0 bundles them (cmsgpack: msgpack.py).

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


def struct_functions() -> dict[str, Callable[..., tuple]]:
    return {
        "pack": _wrap("pack", _struct_pack),
        "unpack": _wrap("unpack", _struct_unpack),
        "size": _wrap("size", _struct_size),
    }
