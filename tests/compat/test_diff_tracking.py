"""Client-side caching against redis-server, byte for byte: CLIENT TRACKING
and its options' errors, CACHING, GETREDIR, TRACKINGINFO, and the
invalidation pushes (default, BCAST with prefixes, OPTIN, OPTOUT, NOLOOP,
FLUSHALL) a RESP3 connection gets for its own and another connection's
writes. One node here; tests/integration/test_tracking.py covers changes
made through other nodes."""

from __future__ import annotations

import socket

import pytest

from tests.compat import test_differential
from tests.compat.test_diff_client import _port, mako, read_all  # noqa: F401  (a one-node makod, module-scoped)

real = test_differential.real  # the redis-server fixture


def _read_all(s: socket.socket, wait_s: float, quiet_s: float = 0.06) -> bytes:
    return read_all(s, wait_s, quiet_s=quiet_s)


def _converse(port: int, lines: list[bytes], resp3: bool, slow: bool = False) -> list[bytes]:
    """Each line's bytes (its reply and any pushes that followed), one line at
    a time, so event-loop batching (BCAST gathers a loop's changes) cannot differ.
    A line starting with ``other:`` is sent on a second connection (its reply dropped).
    ``slow``: wait longer for each line's bytes (a loaded machine)."""
    wait_s, quiet_s = (0.3, 0.3) if slow else (0.04, 0.06)
    out = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s, \
            socket.create_connection(("127.0.0.1", port), timeout=5) as other:
        if resp3:
            s.sendall(b"HELLO 3\r\n")
            _read_all(s, 0.1)
        for line in lines:
            if line.startswith(b"other:"):
                other.sendall(line[6:] + b"\r\n")
                other.settimeout(5)
                other.recv(65536)  # one short reply
            else:
                s.sendall(line + b"\r\n")
            out.append(_read_all(s, wait_s, quiet_s))
    return out


def _pipelined(port: int, lines: list[bytes], resp3: bool) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        if resp3:
            s.sendall(b"HELLO 3\r\n")
            _read_all(s, 0.1)
        s.sendall(b"".join(line + b"\r\n" for line in lines))
        return _read_all(s, 0.3)


CLEAN = [b"other:FLUSHALL"]

ERRORS = [
    b"CLIENT TRACKING ON PREFIX a",
    b"CLIENT TRACKING ON BCAST OPTIN",
    b"CLIENT TRACKING ON OPTIN OPTOUT",
    b"CLIENT TRACKING ON REDIRECT 999999",
    b"CLIENT TRACKING ON REDIRECT abc",
    b"CLIENT TRACKING ON REDIRECT",
    b"CLIENT TRACKING ON BCAST PREFIX a PREFIX ab",
    b"CLIENT TRACKING ON FOO",
    b"CLIENT TRACKING MAYBE",
    b"CLIENT CACHING yes",
    b"CLIENT GETREDIR",
    b"CLIENT TRACKING ON OPTIN",
    b"CLIENT CACHING no",
    b"CLIENT CACHING maybe",
    b"CLIENT CACHING yes",
    b"CLIENT TRACKINGINFO",
    b"CLIENT TRACKING ON OPTOUT",
    b"CLIENT TRACKING ON BCAST",
    b"CLIENT GETREDIR",
    b"CLIENT TRACKING OFF",
    b"CLIENT TRACKING ON BCAST PREFIX user: PREFIX ord",
    b"CLIENT TRACKING ON BCAST PREFIX us",
    b"CLIENT TRACKING ON BCAST PREFIX x",
    b"CLIENT TRACKINGINFO",
    b"CLIENT TRACKING OFF",
    b"CLIENT TRACKINGINFO",
    # Redis checks a new prefix against the existing ones in its radix tree's
    # (sorted) order: 'aa' is named, though 'ab' was given first.
    b"CLIENT TRACKING ON BCAST PREFIX ab PREFIX aa",
    b"CLIENT TRACKING ON BCAST PREFIX a",
    b"CLIENT TRACKING OFF",
    # 2,001 prefixes: past makod's quadratic-check bound, the same answer.
    # (The repeated one is the first: Redis 7.0 answers a clash found at any
    # later position with the error and then +OK, and enables tracking anyway.)
    b"CLIENT TRACKING ON BCAST " + b" ".join(b"PREFIX k%05d" % i for i in [*range(2000), 0]),
    b"CLIENT TRACKING ON BCAST " + b" ".join(b"PREFIX k%05d" % i for i in range(2000)),
    b"CLIENT TRACKING ON BCAST PREFIX k01999x",
    b"CLIENT TRACKING OFF",
]

SCRIPTS = {
    "default": CLEAN + [
        b"CLIENT TRACKING ON", b"GET a", b"MGET b c", b"HGET h f", b"other:SET b 1", b"SET a 1", b"SET a 2",
        b"other:SET c 1", b"other:SET c 2", b"other:HSET h f v", b"GET a", b"other:DEL a", b"CLIENT TRACKINGINFO",
    ],
    "bcast": CLEAN + [
        b"CLIENT TRACKING ON BCAST PREFIX p: PREFIX q", b"SET p:1 a", b"SET r:1 a", b"other:MSET p:2 x qq y z 1",
        b"other:DEL p:1", b"GET p:2", b"other:SET x 1", b"CLIENT TRACKINGINFO",
    ],
    "bcast-order": CLEAN + [
        b"CLIENT TRACKING ON BCAST PREFIX u: PREFIX o:", b"other:MSET u:1 a o:9 b u:2 c", b"other:SET x 1",
    ],
    "bcast-all": CLEAN + [b"CLIENT TRACKING ON BCAST", b"other:SET k 1", b"other:MSET a 1 b 2", b"CLIENT TRACKINGINFO"],
    "optin": CLEAN + [
        b"CLIENT TRACKING ON OPTIN", b"GET a", b"CLIENT CACHING yes", b"GET b", b"GET c", b"other:SET a 1",
        b"other:SET b 1", b"other:SET c 1", b"MULTI", b"CLIENT CACHING yes", b"GET d", b"EXEC", b"other:SET d 1",
    ],
    "optout": CLEAN + [
        b"CLIENT TRACKING ON OPTOUT", b"GET a", b"CLIENT CACHING no", b"GET b", b"other:SET a 1", b"other:SET b 1",
    ],
    "noloop": CLEAN + [
        b"CLIENT TRACKING ON NOLOOP", b"GET a", b"GET b", b"SET a 1", b"other:SET b 1", b"GET a", b"other:SET a 2",
    ],
    "flush": CLEAN + [b"CLIENT TRACKING ON", b"GET a", b"other:FLUSHALL", b"GET a", b"FLUSHALL"],
    "multi": CLEAN + [b"CLIENT TRACKING ON", b"MULTI", b"GET m1", b"SET m2 1", b"EXEC", b"other:SET m1 1"],
    "expire": CLEAN + [b"other:SET e 1 PX 100", b"CLIENT TRACKING ON", b"GET e", b"other:PEXPIRE e 1", b"GET e"],
}


@pytest.mark.parametrize("resp3", [False, True], ids=["resp2", "resp3"])
def test_tracking_errors_and_queries(real, mako, resp3):
    assert _pipelined(mako, ERRORS, resp3) == _pipelined(_port(real), ERRORS, resp3)


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_invalidation_pushes(real, mako, name):
    ours, theirs = _converse(mako, SCRIPTS[name], True), _converse(_port(real), SCRIPTS[name], True)
    if ours != theirs:
        # A push that came after the short read window lands in the next
        # line's bytes (seen once with three test files running at once):
        # a real difference shows again with windows five times longer.
        ours, theirs = _converse(mako, SCRIPTS[name], True, slow=True), _converse(_port(real), SCRIPTS[name], True, slow=True)
    assert ours == theirs, [(line, a, b) for line, a, b in zip(SCRIPTS[name], ours, theirs) if a != b]


def test_resp2_without_redirect_gets_no_pushes(real, mako):
    lines = CLEAN + [b"CLIENT TRACKING ON", b"GET a", b"other:SET a 1", b"PING"]
    expected = [b"", b"+OK\r\n", b"$-1\r\n", b"", b"+PONG\r\n"]
    assert _converse(mako, lines, False) == _converse(_port(real), lines, False) == expected
