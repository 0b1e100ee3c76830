"""Reply values and their RESP2/RESP3 encoding.

Handlers return plain Python values where the wire form is unambiguous and a
small wrapper where RESP2 and RESP3 differ:

=====================  ==========================  =====================
value                  RESP2                       RESP3
=====================  ==========================  =====================
``bytes`` / ``str``    bulk string ``$``           bulk string ``$``
``int``                integer ``:``               integer ``:``
``None``               null bulk ``$-1``           null ``_``
``list`` / ``tuple``   array ``*``                 array ``*``
``SimpleString``       ``+``                       ``+``
``ErrorReply``         ``-``                       ``-``
``NULL_ARRAY``         ``*-1``                     null ``_``
``Map``                flat array                  map ``%``
``Set``                array                       set ``~``
``Pairs``              flat array                  array of 2-arrays
``Double``             bulk string                 double ``,``
``Bool``               integer 0/1                 boolean ``#``
``Verbatim``           bulk string                 verbatim ``=``
=====================  ==========================  =====================

``bool`` is deliberately not accepted as an integer: a handler that means a
RESP3 boolean must say ``Bool(x)``; one that means 0/1 must say ``int(x)``.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from resp.errors import sanitize


class SimpleString:
    __slots__ = ("text", "wire")

    def __init__(self, text: str) -> None:
        self.text = text
        self.wire = b"+" + sanitize(text).encode() + b"\r\n"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SimpleString) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"SimpleString({self.text!r})"


class ErrorReply:
    """An error reply; ``text`` is the whole line after ``-`` (code included)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        text = sanitize(text)
        head = text.split(" ", 1)[0]
        if not head or not head.isupper():
            text = "ERR " + text
        self.text = text

    @property
    def code(self) -> str:
        return self.text.split(" ", 1)[0]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ErrorReply) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"ErrorReply({self.text!r})"


class _NullArray:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NULL_ARRAY"


NULL_ARRAY = _NullArray()


class Map:
    """A RESP3 map; ``items`` is a list of (key, value) pairs in reply order."""

    __slots__ = ("items",)

    def __init__(self, items: Any) -> None:
        self.items = list(items.items()) if isinstance(items, dict) else list(items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Map) and other.items == self.items

    def __repr__(self) -> str:
        return f"Map({self.items!r})"


class Set:
    __slots__ = ("members",)

    def __init__(self, members: Any) -> None:
        self.members = list(members)

    def __repr__(self) -> str:
        return f"Set({self.members!r})"


class Pairs:
    """Field/value pairs: a flat array in RESP2, an array of 2-element arrays in RESP3.

    (HRANDFIELD ... WITHVALUES and similar replies differ this way.)
    """

    __slots__ = ("items",)

    def __init__(self, items: Any) -> None:
        self.items = list(items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pairs) and other.items == self.items

    def __repr__(self) -> str:
        return f"Pairs({self.items!r})"


class Double:
    __slots__ = ("value",)

    def __init__(self, value: float) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Double({self.value!r})"


class Bool:
    __slots__ = ("value",)

    def __init__(self, value: bool) -> None:
        self.value = bool(value)

    def __repr__(self) -> str:
        return f"Bool({self.value!r})"


class Verbatim:
    """RESP3 verbatim string (INFO, CLIENT INFO use ``txt``); a bulk string in RESP2."""

    __slots__ = ("fmt", "data")

    def __init__(self, data: bytes, fmt: str = "txt") -> None:
        self.fmt = fmt
        self.data = data

    def __repr__(self) -> str:
        return f"Verbatim({self.data!r})"


OK = SimpleString("OK")
QUEUED = SimpleString("QUEUED")
PONG = SimpleString("PONG")

_OK_WIRE = OK.wire
_NULL2 = b"$-1\r\n"
_NULL3 = b"_\r\n"
_SMALL_INTS = [b":%d\r\n" % i for i in range(-16, 1025)]


def format_double(value: float) -> bytes:
    """A double as Redis 7.2+ writes it (util.c d2string): ``-0`` for negative
    zero, plain digits for integral values within +-LLONG_MAX/2, otherwise the
    shortest round-trip digits laid out as fpconv_dtoa lays them out."""
    if math.isnan(value):
        return b"nan"
    if math.isinf(value):
        return b"inf" if value > 0 else b"-inf"
    if value == 0:
        return b"-0" if math.copysign(1.0, value) < 0 else b"0"
    if -_HALF_LLONG_MAX <= value <= _HALF_LLONG_MAX and value == int(value):
        return b"%d" % int(value)
    return _dtoa_layout(value)


_HALF_LLONG_MAX = float((2**63 - 1) // 2)


def _dtoa_layout(value: float) -> bytes:
    """fpconv_dtoa's layout of the shortest digits: value = digits x 10**k."""
    sign, digit_tuple, k = Decimal(repr(value)).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    ndigits = len(digits)
    exp = abs(k + ndigits - 1)
    prefix = "-" if sign else ""
    if k >= 0 and exp < ndigits + 7:
        return (prefix + digits + "0" * k).encode()
    if k < 0 and (k > -7 or exp < 4):
        offset = ndigits + k
        if offset <= 0:
            return (prefix + "0." + "0" * -offset + digits).encode()
        return (prefix + digits[:offset] + "." + digits[offset:]).encode()
    mantissa = digits[0] + ("." + digits[1:] if ndigits > 1 else "")
    return f"{prefix}{mantissa}e{'-' if k + ndigits - 1 < 0 else '+'}{exp}".encode()


def encode(reply: Any, proto: int = 2) -> bytes:
    """Encode one reply for a connection speaking ``proto`` (2 or 3)."""
    out: list[bytes] = []
    _encode_into(reply, proto, out)
    return b"".join(out)


def _encode_into(reply: Any, proto: int, out: list[bytes]) -> None:
    t = type(reply)
    if t is bytes:
        out.append(b"$%d\r\n%s\r\n" % (len(reply), reply))
    elif t is SimpleString:
        out.append(reply.wire)
    elif t is int:
        if -16 <= reply <= 1024:
            out.append(_SMALL_INTS[reply + 16])
        else:
            out.append(b":%d\r\n" % reply)
    elif reply is None:
        out.append(_NULL3 if proto == 3 else _NULL2)
    elif t is list or t is tuple:
        out.append(b"*%d\r\n" % len(reply))
        for item in reply:
            _encode_into(item, proto, out)
    elif t is ErrorReply:
        out.append(b"-" + reply.text.encode("utf-8", "replace") + b"\r\n")
    elif t is str:
        data = reply.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    elif t is bytearray or t is memoryview:
        data = bytes(reply)
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    elif reply is NULL_ARRAY:
        out.append(_NULL3 if proto == 3 else b"*-1\r\n")
    elif t is Map:
        if proto == 3:
            out.append(b"%%%d\r\n" % len(reply.items))
        else:
            out.append(b"*%d\r\n" % (2 * len(reply.items)))
        for key, value in reply.items:
            _encode_into(key, proto, out)
            _encode_into(value, proto, out)
    elif t is Pairs:
        if proto == 3:
            out.append(b"*%d\r\n" % len(reply.items))
            for key, value in reply.items:
                out.append(b"*2\r\n")
                _encode_into(key, proto, out)
                _encode_into(value, proto, out)
        else:
            out.append(b"*%d\r\n" % (2 * len(reply.items)))
            for key, value in reply.items:
                _encode_into(key, proto, out)
                _encode_into(value, proto, out)
    elif t is Set:
        out.append((b"~%d\r\n" if proto == 3 else b"*%d\r\n") % len(reply.members))
        for item in reply.members:
            _encode_into(item, proto, out)
    elif t is Double or t is float:
        value = reply.value if t is Double else reply
        text = format_double(value)
        if proto == 3:
            out.append(b"," + text + b"\r\n")
        else:
            out.append(b"$%d\r\n%s\r\n" % (len(text), text))
    elif t is Bool:
        if proto == 3:
            out.append(b"#t\r\n" if reply.value else b"#f\r\n")
        else:
            out.append(b":1\r\n" if reply.value else b":0\r\n")
    elif t is Verbatim:
        if proto == 3:
            body = reply.fmt.encode() + b":" + reply.data
            out.append(b"=%d\r\n%s\r\n" % (len(body), body))
        else:
            out.append(b"$%d\r\n%s\r\n" % (len(reply.data), reply.data))
    elif t is bool:
        raise TypeError("bool reply is ambiguous: use Bool(x) for RESP3 booleans or int(x)")
    else:
        raise TypeError(f"cannot encode reply of type {t.__name__}: {reply!r}")
