"""RESP fuzz against a real makod (hypothesis): structured and random requests,
as any client could send them, never crash, hang or corrupt the node.

The run in CI is bounded (FUZZ_EXAMPLES); MAKODB_FUZZ_EXAMPLES=N runs longer
(docs/TESTING.md records a long run)."""

from __future__ import annotations

import os
import socket

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ_EXAMPLES = int(os.environ.get("MAKODB_FUZZ_EXAMPLES", "150"))

COMMANDS = [b"SET", b"GET", b"DEL", b"HSET", b"HGET", b"HGETALL", b"MSET", b"MGET", b"INCR", b"INCRBYFLOAT",
            b"APPEND", b"GETRANGE", b"SETRANGE", b"EXPIRE", b"TTL", b"KEYS", b"SCAN", b"MULTI", b"EXEC",
            b"WATCH", b"DISCARD", b"HELLO", b"AUTH", b"CLIENT", b"CONFIG", b"ACL", b"INFO", b"COMMAND",
            b"OBJECT", b"TYPE", b"RENAME", b"EXISTS", b"SETEX", b"GETEX", b"HINCRBY", b"PING", b"ECHO", b"FLUSHDB"]

_arg = st.one_of(st.binary(max_size=40), st.sampled_from([b"", b"-1", b"0", b"9223372036854775808", b"nan",
                                                          b"inf", b"*", b"3", b"EX", b"PX", b"KEEPTTL", b"GET",
                                                          b"x" * 600, b"\r\n", b"$-1"]))


def _resp(argv: list[bytes]) -> bytes:
    return b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in argv)


_request = st.one_of(
    st.builds(lambda c, args: _resp([c, *args]), st.sampled_from(COMMANDS), st.lists(_arg, max_size=6)),
    st.binary(max_size=200),  # anything at all
    st.builds(lambda n, body: b"*%d\r\n%s" % (n, body), st.integers(-5, 1 << 40), st.binary(max_size=50)),
    st.builds(lambda n: b"*1\r\n$%d\r\n" % n, st.integers(-5, 1 << 62)),  # huge bulk lengths
    st.builds(lambda words: b" ".join(words) + b"\r\n", st.lists(st.sampled_from(COMMANDS + [b"'a", b'"b']),
                                                                  min_size=1, max_size=5)),  # inline
)


def _send(port: int, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        try:
            s.sendall(data)
            s.settimeout(0.1)
            while s.recv(65536):
                pass
        except (socket.timeout, ConnectionResetError, BrokenPipeError):
            pass


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(requests=st.lists(_request, min_size=1, max_size=4))
def _fuzz(port: int, requests: list[bytes]) -> None:
    _send(port, b"".join(requests))


def test_resp_fuzz_leaves_the_node_up_and_its_data_intact(single):
    c = single.client()
    c.set(b"canary", b"alive")
    _fuzz(single.port())
    c = single.client()
    assert c.ping() is True
    # FLUSHDB may be among the fuzzed commands: re-set, then check the node still works end to end.
    c.set(b"canary", b"alive")
    assert c.get(b"canary") == b"alive"
    assert "Traceback" not in single.log(single.names[0])
