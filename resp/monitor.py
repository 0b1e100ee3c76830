"""MONITOR: every command this node runs, as Redis prints it to monitors.

``+<unix seconds>.<microseconds> [<db> <client addr>] "arg" "arg" ...``,
each argument quoted as Redis's sdscatrepr quotes it.
"""

from __future__ import annotations

_ESCAPES = {ord("\\"): b"\\\\", ord('"'): b'\\"', ord("\n"): b"\\n", ord("\r"): b"\\r", ord("\t"): b"\\t",
            7: b"\\a", 8: b"\\b"}
_QUOTED = [(_ESCAPES[c] if c in _ESCAPES else bytes([c]) if 32 <= c < 127 else b"\\x%02x" % c) for c in range(256)]

# Commands a monitor never sees: Redis skips admin commands, and AUTH and
# HELLO carry passwords.
HIDDEN = frozenset({"auth", "hello"})


def quote(arg: bytes) -> bytes:
    return b'"' + b"".join(_QUOTED[c] for c in arg) + b'"'


def monitor_line(now_us: int, db: int, addr: str, argv: list[bytes]) -> bytes:
    head = b"+%d.%06d [%d %s]" % (now_us // 1_000_000, now_us % 1_000_000, db, addr.encode())
    return head + b"".join(b" " + quote(a) for a in argv) + b"\r\n"
