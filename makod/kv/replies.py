"""Reply values: what command handlers return (the RESP layer encodes them).

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
``BigNumber``          bulk string                 big number ``(``
=====================  ==========================  =====================

``bool`` is deliberately not accepted as an integer: a handler that means a
RESP3 boolean must say ``Bool(x)``; one that means 0/1 must say ``int(x)``.
"""

from __future__ import annotations

from typing import Any

from makod.kv.errors import sanitize


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
    """A RESP3 map; ``items`` is a list of (key, value) pairs in reply order.

    In RESP2 a map is a flat array, or with ``nested`` an array of 2-element
    arrays (XREAD and XREADGROUP answer stream -> entries that way).
    """

    __slots__ = ("items", "nested")

    def __init__(self, items: Any, nested: bool = False) -> None:
        self.items = list(items.items()) if isinstance(items, dict) else list(items)
        self.nested = nested

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Map) and other.items == self.items and other.nested == self.nested

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
    """A double; ``text`` overrides its digits where Redis writes them its own way
    (GEOPOS coordinates: ``%.17Lf`` with trailing zeros cut)."""

    __slots__ = ("value", "text")

    def __init__(self, value: float, text: bytes | None = None) -> None:
        self.value = value
        self.text = text

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


class BigNumber:
    """RESP3 big number (a Lua script's ``{big_number=...}``); a bulk string in RESP2."""

    __slots__ = ("digits",)

    def __init__(self, digits: bytes) -> None:
        self.digits = digits

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BigNumber) and other.digits == self.digits

    def __repr__(self) -> str:
        return f"BigNumber({self.digits!r})"


OK = SimpleString("OK")
QUEUED = SimpleString("QUEUED")
PONG = SimpleString("PONG")


class Blocked:
    """A blocking command (BLPOP, BZPOPMIN, ...) found nothing to take and may wait.

    Not sent to clients: the session that asked retries the command until it
    gets a real reply or ``timeout_ms`` passes (0: forever), and then answers
    ``reply`` (what the command answers on timeout). Inside MULTI a blocking
    command never waits (the context says so: ``may_block`` is false), as in
    Redis.

    ``argv``, when set, is the command to run on the retries instead of the
    original: XREAD ... STREAMS k $ must keep waiting for entries after the
    last ID of its first attempt, so it names that ID instead of ``$`` (and
    a blocked XREAD without COUNT is served at most 1000 entries, as Redis).
    """

    __slots__ = ("timeout_ms", "reply", "argv")

    def __init__(self, timeout_ms: int, reply: Any, argv: list[bytes] | None = None) -> None:
        self.timeout_ms = timeout_ms
        self.reply = reply
        self.argv = argv

    def __repr__(self) -> str:
        return f"Blocked({self.timeout_ms} ms)"
