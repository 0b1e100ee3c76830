"""RESP2/RESP3 encoding of reply values (the values live in makod.kv.replies)."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from makod.kv.replies import (  # noqa: F401  (re-exported for the session and the server)
    NULL_ARRAY,
    OK,
    PONG,
    QUEUED,
    Blocked,
    Bool,
    Double,
    ErrorReply,
    Map,
    Pairs,
    Set,
    SimpleString,
    Verbatim,
)

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
