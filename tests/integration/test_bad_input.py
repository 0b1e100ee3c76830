"""Malformed requests get Redis's errors; the server keeps serving everyone else."""

from __future__ import annotations

import socket
import time

import pytest


def raw(port: int, data: bytes, wait: float = 0.3, read_until_close: bool = False) -> tuple[bytes, bool]:
    """Send bytes, read what comes back; also report whether the server closed."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(data)
    chunks = []
    closed = False
    deadline = time.monotonic() + (5 if read_until_close else wait)
    s.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            if not read_until_close:
                continue
            continue
        if not chunk:
            closed = True
            break
        chunks.append(chunk)
    s.close()
    return b"".join(chunks), closed


@pytest.mark.parametrize(
    "request_bytes, expected",
    [
        (b"*2\r\n$3\r\nGET\r\nx\r\n", b"-ERR Protocol error: expected '$', got 'x'\r\n"),
        (b"*abc\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
        (b"*1\r\n$-5\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
        (b"*1\r\n$999999999999\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
        (b"*99999999999\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
        (b'SET "unbalanced\r\n', b"-ERR Protocol error: unbalanced quotes in request\r\n"),
    ],
)
def test_protocol_errors_close_only_that_connection(single, request_bytes, expected):
    port = single.port()
    out, closed = raw(port, request_bytes, read_until_close=True)
    assert out == expected
    assert closed
    assert single.client().ping() is True


def test_commands_before_a_protocol_error_still_run(single):
    port = single.port()
    out, closed = raw(port, b"*1\r\n$4\r\nPING\r\nPING\r\n*x\r\n", read_until_close=True)
    assert out == b"+PONG\r\n+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n"
    assert closed


def test_inline_commands(single):
    out, _ = raw(single.port(), b"SET inline \"a b\"\r\nGET inline\r\nPING\r\n")
    assert out == b"+OK\r\n$3\r\na b\r\n+PONG\r\n"


def test_errors_that_keep_the_connection(single):
    out, closed = raw(
        single.port(),
        b"*1\r\n$3\r\nGET\r\n"  # wrong arity
        b"*2\r\n$4\r\nFROB\r\n$1\r\na\r\n"  # unknown command
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"
        b"*3\r\n$5\r\nHMGET\r\n$1\r\nk\r\n$1\r\nf\r\n"  # wrong type
        b"*1\r\n$4\r\nPING\r\n",
    )
    assert out == (
        b"-ERR wrong number of arguments for 'get' command\r\n"
        b"-ERR unknown command 'FROB', with args beginning with: 'a' \r\n"
        b"+OK\r\n"
        b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
        b"+PONG\r\n"
    )
    assert not closed


def test_big_value_round_trip(single):
    c = single.client()
    value = bytes(range(256)) * 4096 * 8  # 8 MB of every byte value
    assert c.set("big", value)
    assert c.get("big") == value
    assert c.strlen("big") == len(value)


def test_garbage_from_many_connections_does_not_hurt_the_server(single):
    import random

    rng = random.Random(7)
    for _ in range(30):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        raw(single.port(), junk, wait=0.05)
    assert single.client().ping() is True
    assert single.client().set("still", "fine")
