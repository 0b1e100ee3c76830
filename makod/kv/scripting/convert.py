"""Reply values <-> Lua values, with Redis 7.0's rules (src/script_lua.c).

Command replies reach Lua the way Redis hands them over: as if the reply were
encoded in the protocol the script chose with ``redis.setresp`` (2 by
default) and the RESP parsed back into Lua values, as redisProtocolToLuaType
does (``reply_to_lua`` walks the value with resp/replies.py's encoding rules;
tests/compat/test_diff_scripting_lua.py checks the results against
redis-server with real data commands, tests/unit/test_scripting_engine.py
every reply type).

The script's result goes the other way (``flat_to_reply``): a Lua-side
walker (``FLATTEN`` in sandbox.py, which uses rawget and lua_next order as
luaReplyToRedisReply does) turns the value into a flat list of tagged tokens,
and this module builds reply values whose RESP2 and RESP3 encodings are both
the bytes redis-server sends.
"""

from __future__ import annotations

from typing import Any, Callable

from makod.kv.args import format_double
from makod.kv.errors import sanitize
from makod.kv.replies import NULL_ARRAY, BigNumber, Bool, Double, ErrorReply, Map, Pairs, Set, SimpleString, Verbatim

# -- reply -> Lua --------------------------------------------------------------------


def lua_error_text(err: str) -> str:
    """luaPushErrorBuff: "-CODE msg" keeps its code, "msg" gets ERR; the result
    is "CODE msg" with trailing CR/LF trimmed."""
    if err.startswith("-"):
        head, sep, rest = err[1:].partition(" ")
        code, msg = ("ERR", head) if not sep else (head, rest)
    else:
        code, msg = "ERR", err
    return f"{code} {msg.strip(chr(13) + chr(10))}"


def reply_to_lua(reply: Any, resp: int, table: Callable[[], Any], error: Callable[[str], Any]) -> Any:
    """One reply value as a Lua value, as Redis converts the reply's RESP form
    (``resp``: the script's redis.setresp) back into Lua: the same rules as
    resp/replies.py encode followed by redisProtocolToLuaType.

    ``table()`` makes a Lua table, ``error(text)`` the Lua value of an error
    reply (a table with ``err``)."""

    def conv(r: Any) -> Any:
        t = type(r)
        if t is bytes:
            return r
        if t is int:
            return r
        if t is list or t is tuple:
            return arr(r)
        if r is None or r is NULL_ARRAY:
            return False if resp == 2 else None
        if t is SimpleString:
            out = table()
            out[b"ok"] = r.text.encode()
            return out
        if t is ErrorReply:
            return error(lua_error_text("-" + r.text))
        if t is str:
            return r.encode()
        if t is bytearray or t is memoryview:
            return bytes(r)
        if t is Map:
            if resp == 3:
                return keyed(b"map", r.items)
            if r.nested:
                return arr([[k, v] for k, v in r.items])
            return arr([x for kv in r.items for x in kv])
        if t is Pairs:
            if resp == 3:
                return arr([[k, v] for k, v in r.items])
            return arr([x for kv in r.items for x in kv])
        if t is Set:
            if resp == 3:
                return keyed(b"set", [(m, True) for m in r.members])
            return arr(r.members)
        if t is Double or t is float:
            value = r.value if t is Double else r
            text = r.text if t is Double and r.text is not None else format_double(value)
            if resp == 2:
                return text
            out = table()
            out[b"double"] = float(text)
            return out
        if t is Bool:
            if resp == 2:
                return 1 if r.value else 0
            return r.value
        if t is Verbatim:
            if resp == 2:
                return r.data
            inner = table()
            inner[b"string"] = r.data
            inner[b"format"] = r.fmt.encode()[:3]
            out = table()
            out[b"verbatim_string"] = inner
            return out
        if t is BigNumber:
            if resp == 2:
                return r.digits
            out = table()
            out[b"big_number"] = r.digits
            return out
        raise TypeError(f"cannot convert reply of type {t.__name__}: {r!r}")

    def arr(items: Any) -> Any:
        out = table()
        for i, item in enumerate(items, 1):
            v = item if item is True else conv(item)
            if v is not None:
                out[i] = v
        return out

    def keyed(field: bytes, items: Any) -> Any:
        inner = table()
        for k, v in items:
            lk = conv(k)
            if lk is not None:
                inner[lk] = True if v is True else conv(v)
        out = table()
        out[field] = inner
        return out

    return conv(reply)


# -- Lua -> reply --------------------------------------------------------------------


def raw_error(text: str) -> ErrorReply:
    """An error reply sent as is (Redis's "-%s": no ERR added when the text has no code)."""
    reply = ErrorReply("ERR x")
    reply.text = sanitize(text)
    return reply


def format_g17(value: float) -> bytes:
    """C's "%.17g" (Redis's addReplyDouble and its Lua number -> argument rule)."""
    return b"%.17g" % value


def _number_to_int(v: float) -> int:
    """(long long)n as C casts it (out-of-range values: LLONG_MIN, as x86 does)."""
    if v != v or v in (float("inf"), float("-inf")) or not -(2.0**63) <= v < 2.0**63:
        return -(2**63)
    return int(v)


def flat_to_reply(tokens: list, resp: int) -> Any:
    """Build the reply from FLATTEN's tokens; ``resp`` is the script's setresp."""
    it = iter(tokens)

    def one() -> Any:
        tag = next(it)
        if tag == b"s":
            return next(it)
        if tag == b"i":
            return _number_to_int(next(it))
        if tag == b"t":
            return 1 if resp == 2 else Bool(True)
        if tag == b"f":
            return None if resp == 2 else Bool(False)
        if tag == b"n":
            return None
        if tag == b"e":
            return raw_error(next(it).decode("utf-8", "replace"))
        if tag == b"o":
            return SimpleString(next(it).decode("utf-8", "replace").replace("\r", " ").replace("\n", " "))
        if tag == b"d":
            v = float(next(it))
            return Double(v, format_g17(v))
        if tag == b"B":
            return BigNumber(next(it).replace(b"\r", b" ").replace(b"\n", b" "))
        if tag == b"V":
            fmt = next(it)
            return Verbatim(next(it), fmt[:3].decode("utf-8", "replace"))
        if tag == b"M":
            n = int(next(it))
            return Map([(one(), one()) for _ in range(n)])
        if tag == b"S":
            return Set([one() for _ in range(int(next(it)))])
        if tag == b"A":
            return [one() for _ in range(int(next(it)))]
        raise ValueError(f"bad token {tag!r}")

    return one()
