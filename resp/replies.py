"""RESP2/RESP3 encoding of reply values (the values live in makod.kv.replies)."""

from __future__ import annotations

from typing import Any

from makod.kv.args import format_double  # noqa: F401  (re-exported)
from makod.kv.replies import (  # noqa: F401  (re-exported for the session and the server)
    NULL_ARRAY,
    OK,
    PONG,
    QUEUED,
    BigNumber,
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



class Push:
    """A RESP3 push (``>``), an array in RESP2: pub/sub messages and the
    (un)subscribe confirmations (resp/pubsub.py)."""

    __slots__ = ("items",)

    def __init__(self, items: list) -> None:
        self.items = items


class Several:
    """Replies written one after another for one command (SUBSCRIBE a b
    answers one confirmation per channel), as Redis adds them to the client's
    buffer: inside EXEC's array they count as one element, as in Redis."""

    __slots__ = ("replies",)

    def __init__(self, replies: list) -> None:
        self.replies = replies


__all__ = [
    "encode", "format_double", "Push", "Several", "NULL_ARRAY", "OK", "PONG", "QUEUED", "Blocked", "Bool", "Double",
    "ErrorReply", "Map", "Pairs", "Set", "SimpleString", "Verbatim",
]

_OK_WIRE = OK.wire
_NULL2 = b"$-1\r\n"
_NULL3 = b"_\r\n"
_SMALL_INTS = [b":%d\r\n" % i for i in range(-16, 1025)]


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
            out.append(b"*%d\r\n" % (len(reply.items) if reply.nested else 2 * len(reply.items)))
        for key, value in reply.items:
            if reply.nested and proto != 3:
                out.append(b"*2\r\n")
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
        text = reply.text if t is Double and reply.text is not None else format_double(value)
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
    elif t is Push:
        out.append((b">%d\r\n" if proto == 3 else b"*%d\r\n") % len(reply.items))
        for item in reply.items:
            _encode_into(item, proto, out)
    elif t is Several:
        for item in reply.replies:
            _encode_into(item, proto, out)
    elif t is BigNumber:
        if proto == 3:
            out.append(b"(" + reply.digits + b"\r\n")
        else:
            out.append(b"$%d\r\n%s\r\n" % (len(reply.digits), reply.digits))
    elif t is bool:
        raise TypeError("bool reply is ambiguous: use Bool(x) for RESP3 booleans or int(x)")
    else:
        raise TypeError(f"cannot encode reply of type {t.__name__}: {reply!r}")
