"""Differential tests: the same commands against real Redis 7 and our handlers.

A real ``redis-server`` runs for the module; each case starts from an empty
database on both sides and every reply must be identical once both are seen
through the same lens: ours are encoded as RESP2 and parsed by hiredis,
Redis's come through redis-py (``protocol=2``, raw replies, response
callbacks removed); an error compares by its whole text, code included.

Replies that depend on time or randomness are normalised (``_normalise``):
TTLs within a tolerance, KEYS and full SCANs as sorted lists, RANDOMKEY and
partial HRANDFIELD samples by shape. Everything else must match byte for byte.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from typing import Any

import hiredis
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.exceptions import ResponseError

from resp.replies import encode
from tests.unit.harness import Harness



# -- the two sides ------------------------------------------------------------------------


class Err(str):
    """An error reply's full text (``WRONGTYPE ...``, ``ERR ...``)."""

    def __repr__(self) -> str:
        return f"Err({str(self)!r})"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_redis_server() -> tuple[subprocess.Popen, Any]:
    """A redis-server of our own on a free port. The port is free when
    picked but may be taken before redis-server binds it (another test's
    cluster, another worker's server): then this one exits, and the port
    answers as someone else's server. So check the pid it reports."""
    for _attempt in range(5):
        port = _free_port()
        proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(host="127.0.0.1", port=port, protocol=2, decode_responses=False)
        client.response_callbacks.clear()  # raw replies, no Python conversions
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                info = client.execute_command("INFO", "server")
                if b"process_id:%d\r\n" % proc.pid in info:
                    return proc, client
                break  # someone else's server on that port
            except redis.ConnectionError:
                time.sleep(0.05)
        client.close()
        _stop(proc)
    raise AssertionError("could not start a redis-server of our own in 5 attempts")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def real() -> Any:
    # A missing reference server is an install problem, not a reason to pass.
    assert shutil.which("redis-server"), (
        "redis-server is not installed: the differential tests compare replies with it "
        "(apt-get install redis-server, as .ci/run does)"
    )
    proc, client = _start_redis_server()
    try:
        yield client
    finally:
        client.close()
        _stop(proc)


def run_real(client: Any, args: list[bytes]) -> Any:
    try:
        return client.execute_command(*args)
    except ResponseError as exc:
        code = getattr(exc, "status_code", None)
        return Err(f"{code} {exc}" if code else str(exc))


def run_ours(h: Harness, args: list[bytes]) -> Any:
    h.now_ms = int(time.time() * 1000)  # relative expiries line up with Redis's clock
    reader = hiredis.Reader()
    reader.feed(encode(h.run(*args), 2))
    reply = reader.gets()
    assert reader.gets() is False, "one reply per command"
    if isinstance(reply, hiredis.ReplyError):
        return Err(str(reply))
    return reply


# -- normalising what is not deterministic ---------------------------------------------------


def _close(a: Any, b: Any, tolerance: int) -> bool:
    if not (isinstance(a, int) and isinstance(b, int)):
        return a == b
    if a < 0 or b < 0:
        return a == b
    return abs(a - b) <= tolerance


_TOLERANCE = {b"TTL": 1, b"EXPIRETIME": 1, b"PTTL": 1000, b"PEXPIRETIME": 1000}


def _normalise(args: list[bytes], reply: Any) -> Any:
    if isinstance(reply, Err):
        return reply
    name = args[0].upper()
    if name == b"KEYS":
        return sorted(reply)
    if name == b"SCAN":
        # Cases only scan from 0 with a COUNT above the key count, so both
        # sides finish in one call; the order is the hash tables' own.
        return [reply[0], sorted(reply[1])]
    if name == b"RANDOMKEY":
        return reply is None
    if name == b"HRANDFIELD" and isinstance(reply, list):
        count = int(args[2])
        withvalues = args[-1].upper() == b"WITHVALUES"
        picked = reply[0::2] if withvalues else reply
        if count < 0:
            return ("with repetition", len(reply))
        if len(picked) < count:
            return reply  # the whole hash, in the hash's own order
        return ("distinct", len(reply), len(set(picked)))
    if name == b"HRANDFIELD" and reply is not None:
        return "one field"
    return reply


def check(real_client: Any, h: Harness, script: list[list[bytes]]) -> None:
    run_real(real_client, [b"FLUSHALL"])
    for number, args in enumerate(script):
        theirs = run_real(real_client, args)
        ours = run_ours(h, args)
        name = args[0].upper()
        if name in _TOLERANCE:
            ok = _close(theirs, ours, _TOLERANCE[name])
        else:
            ok = _normalise(args, theirs) == _normalise(args, ours)
        assert ok, (
            f"step {number}: {args!r}\n  redis: {theirs!r}\n  ours:  {ours!r}\n"
            f"  script: {script[: number + 1]!r}"
        )
        if name == b"HRANDFIELD" and isinstance(ours, list) and not isinstance(theirs, Err):
            # Random picks must still be fields of the hash (checked on our side).
            fields = set(run_ours(h, [b"HKEYS", args[1]]))
            picked = ours[0::2] if args[-1].upper() == b"WITHVALUES" else ours
            assert set(picked) <= fields


def B(*parts: Any) -> list[bytes]:
    return [p if isinstance(p, bytes) else str(p).encode() for p in parts]


# -- hand-written scripts ---------------------------------------------------------------------

FUTURE_S = 4102444800  # 2100-01-01
FUTURE_MS = FUTURE_S * 1000

SCRIPTS: dict[str, list[list[bytes]]] = {
    "get_set_basic": [
        B("GET", "k"), B("SET", "k", "v"), B("GET", "k"), B("set", "k", ""), B("GET", "k"),
        B("SET", "k"), B("GET"), B("GET", "k", "x"), B("STRLEN", "k"), B("SET", "k", "hello"),
        B("STRLEN", "k"), B("STRLEN", "nope"),
    ],
    "set_options": [
        B("SET", "k", "v", "NX"), B("SET", "k", "w", "NX"), B("GET", "k"),
        B("SET", "k", "w", "XX"), B("SET", "missing", "w", "XX"), B("GET", "k"), B("EXISTS", "missing"),
        B("SET", "k", "v", "NX", "XX"), B("SET", "k", "v", "XX", "NX"), B("SET", "k", "v", "nx", "nx"),
        B("SET", "k", "v", "GET"), B("SET", "k", "v2", "GET", "NX"), B("SET", "new", "v2", "GET", "NX"),
        B("SET", "k", "v3", "GET", "XX"), B("SET", "new2", "v3", "GET", "XX"), B("EXISTS", "new2"),
        B("SET", "k", "v", "EX", "100"), B("TTL", "k"), B("SET", "k", "v"), B("TTL", "k"),
        B("SET", "k", "v", "PX", "100000"), B("PTTL", "k"), B("SET", "k", "v", "KEEPTTL"), B("PTTL", "k"),
        B("SET", "k", "v", "EXAT", FUTURE_S), B("EXPIRETIME", "k"),
        B("SET", "k", "v", "PXAT", FUTURE_MS + 123), B("PEXPIRETIME", "k"), B("EXPIRETIME", "k"),
        B("SET", "k", "v", "EX", "10", "PX", "100"), B("SET", "k", "v", "EX", "10", "KEEPTTL"),
        B("SET", "k", "v", "KEEPTTL", "EX", "10"), B("SET", "k", "v", "EX", "10", "EX", "20"), B("TTL", "k"),
        B("SET", "k", "v", "EX"), B("SET", "k", "v", "PX"), B("SET", "k", "v", "EXAT"), B("SET", "k", "v", "FOO"),
        B("SET", "k", "v", "EX", "abc"), B("SET", "k", "v", "EX", "0"), B("SET", "k", "v", "EX", "-5"),
        B("SET", "k", "v", "PX", "0"), B("SET", "k", "v", "EX", "9223372036854775807"),
        B("SET", "k", "v", "EX", "9223372036854775"), B("SET", "k", "v", "PX", "9223372036854775807"),
        B("SET", "k", "v", "EXAT", "9223372036854775"), B("SET", "k", "v", "PXAT", "9223372036854775807"),
        B("TTL", "k"), B("SET", "k", "v", "EX", "1.5"), B("SET", "k", "v", "ex", "100", "get"),
        B("SET", "k", "v", "EXAT", "1"), B("GET", "k"), B("EXISTS", "k"),
        B("SET", "k", "v", "PERSIST"), B("SET", "k", "v", "GET", "GET"),
    ],
    "set_get_wrongtype": [
        B("HSET", "h", "f", "v"), B("SET", "h", "v", "GET"), B("HGET", "h", "f"), B("GET", "h"),
        B("GETSET", "h", "x"), B("GETDEL", "h"), B("GETEX", "h"), B("SET", "h", "v", "NX", "GET"),
        B("SET", "h", "v", "XX", "GET"), B("SET", "h", "s"), B("GET", "h"), B("TYPE", "h"),
    ],
    "setnx_setex": [
        B("SETNX", "k", "1"), B("SETNX", "k", "2"), B("GET", "k"),
        B("SETEX", "k", "100", "v"), B("TTL", "k"), B("GET", "k"),
        B("SETEX", "k", "0", "v"), B("SETEX", "k", "-1", "v"), B("SETEX", "k", "x", "v"),
        B("PSETEX", "k", "100000", "v"), B("PTTL", "k"), B("PSETEX", "k", "0", "v"),
        B("SETEX", "k", "9223372036854776", "v"), B("PSETEX", "k", "9223372036854775807", "v"),
        B("SETEX", "k", "100"), B("SETNX", "k"),
    ],
    "getset_getdel_getex": [
        B("GETSET", "k", "1"), B("GETSET", "k", "2"), B("SET", "k", "v", "EX", "100"),
        B("GETSET", "k", "3"), B("TTL", "k"), B("GETDEL", "k"), B("GETDEL", "k"), B("EXISTS", "k"),
        B("GETEX", "k"), B("SET", "k", "v"), B("GETEX", "k"), B("GETEX", "k", "EX", "100"), B("TTL", "k"),
        B("GETEX", "k", "PERSIST"), B("TTL", "k"), B("GETEX", "k", "PX", "100000"), B("PTTL", "k"),
        B("GETEX", "k", "EXAT", FUTURE_S), B("EXPIRETIME", "k"), B("GETEX", "k", "PXAT", FUTURE_MS),
        B("PEXPIRETIME", "k"), B("GETEX", "k", "EX", "10", "PX", "10"), B("GETEX", "k", "PERSIST", "EX", "10"),
        B("GETEX", "k", "EX", "10", "PERSIST"), B("GETEX", "k", "KEEPTTL"), B("GETEX", "k", "NX"),
        B("GETEX", "k", "GET"), B("GETEX", "k", "EX"), B("GETEX", "k", "EX", "0"), B("GETEX", "k", "EX", "x"),
        B("GETEX", "missing", "EX", "x"), B("GETEX", "missing", "FOO"), B("GETEX", "k", "PERSIST", "PERSIST"),
        B("GETEX", "k", "EXAT", "1"), B("EXISTS", "k"), B("SET", "k", "v"), B("GETEX", "k", "PXAT", "1"),
        B("GET", "k"), B("GETEX"),
    ],
    "mget_mset": [
        B("MSET", "a", "1", "b", "2"), B("MGET", "a", "b", "c"), B("HSET", "h", "f", "v"),
        B("MGET", "a", "h", "a"), B("MSET", "a"), B("MSET", "a", "1", "b"), B("MSETNX", "a", "1", "b"),
        B("MSETNX", "x", "1", "y", "2"), B("MSETNX", "x", "1", "z", "2"), B("MGET", "x", "y", "z"),
        B("MSETNX", "h", "1"), B("MSET", "h", "1"), B("TYPE", "h"), B("SET", "t", "v", "EX", "100"),
        B("MSET", "t", "w"), B("TTL", "t"), B("MSET", "a", "1", "a", "2"), B("GET", "a"), B("MGET"),
    ],
    "append_strlen": [
        B("APPEND", "k", "ab"), B("APPEND", "k", "cd"), B("GET", "k"), B("APPEND", "k", ""),
        B("SET", "n", "10", "EX", "100"), B("APPEND", "n", "5"), B("TTL", "n"), B("INCR", "n"),
        B("HSET", "h", "f", "v"), B("APPEND", "h", "x"), B("STRLEN", "h"), B("APPEND", "e", ""),
        B("EXISTS", "e"), B("STRLEN", "e"),
    ],
    "getrange": [
        B("SET", "k", "Hello World"),
        *[B("GETRANGE", "k", s, e) for s, e in [
            (0, 4), (-5, -1), (0, -1), (5, 3), (-1, -5), (-100, -50), (-100, 100), (0, 0), (20, 30),
            (-3, 100), (3, -100), (-20, 2), ("a", 1), (1, "b"), ("9223372036854775807", 1),
            ("-9223372036854775808", "9223372036854775807"), ("1.5", 2), (-1, -1), (11, 11), (10, 10),
        ]],
        B("SUBSTR", "k", 0, 2), B("GETRANGE", "missing", 0, 10), B("GETRANGE", "missing", "x", 1),
        B("SET", "e", ""), B("GETRANGE", "e", 0, -1), B("GETRANGE", "e", -1, 0),
        B("HSET", "h", "f", "v"), B("GETRANGE", "h", 0, 1), B("GETRANGE", "h", "a", 1),
    ],
    "setrange": [
        B("SETRANGE", "k", 5, "abc"), B("GET", "k"), B("SETRANGE", "k", 0, "XY"), B("GET", "k"),
        B("SETRANGE", "k", 7, "long tail"), B("GET", "k"), B("SETRANGE", "k", 2, ""),
        B("SETRANGE", "missing", 5, ""), B("EXISTS", "missing"), B("SETRANGE", "k", -1, "x"),
        B("SETRANGE", "k", "x", "x"), B("SETRANGE", "missing", -1, ""),
        B("SETRANGE", "k", 536870911, ""), B("SETRANGE", "k", 536870912, "x"),
        B("SETRANGE", "k", "9223372036854775807", "x"), B("SETRANGE", "missing", 536870912, "x"),
        B("HSET", "h", "f", "v"), B("SETRANGE", "h", 0, "x"), B("SETRANGE", "h", 0, ""),
        B("SETRANGE", "h", -1, "x"), B("SET", "t", "abc", "EX", "100"), B("SETRANGE", "t", 1, "Z"),
        B("TTL", "t"), B("GET", "t"),
    ],
    "incr_decr": [
        B("INCR", "n"), B("INCR", "n"), B("DECR", "n"), B("INCRBY", "n", 10), B("DECRBY", "n", 3),
        B("INCRBY", "n", -20), B("DECRBY", "n", -5), B("GET", "n"), B("INCRBY", "n", "abc"),
        B("INCRBY", "n", "1.5"), B("INCRBY", "n", " 1"), B("INCRBY", "n", "+1"), B("INCRBY", "n", "01"),
        B("INCRBY", "n", "-0"), B("INCRBY", "n", "0"), B("INCRBY", "n", ""),
        B("INCRBY", "n", "9223372036854775808"), B("DECRBY", "n", "-9223372036854775808"),
        B("SET", "m", "9223372036854775806"), B("INCR", "m"), B("INCR", "m"), B("GET", "m"),
        B("SET", "m", "-9223372036854775807"), B("DECR", "m"), B("DECR", "m"),
        B("DECRBY", "m", "9223372036854775807"), B("SET", "m", "0"), B("DECRBY", "m", "9223372036854775807"),
        B("DECRBY", "m", "1"), B("DECRBY", "m", "1"),
        *[x for v in ["abc", "", " 1", "1 ", "+1", "01", "-0", "1.0", "0x1", "1e3", "99999999999999999999",
                      "9223372036854775808", "-9223372036854775809", "\x001"]
          for x in (B("SET", "s", v), B("INCR", "s"))],
        B("HSET", "h", "f", "1"), B("INCR", "h"), B("DECRBY", "h", "x"), B("INCRBY", "h", 1),
        B("SET", "t", "5", "EX", "100"), B("INCR", "t"), B("TTL", "t"),
    ],
    "incrbyfloat": [
        *[B("INCRBYFLOAT", "f", v) for v in [
            "0.1", "0.2", "-0.3", "1e10", "1.5e-7", "3", "-3", "10.50", "5.0e3", "1e-20", "-1e-20",
            "0.000003814697265625", "0.0000038146972656250", "123456789.123456789", "1e17", "1e18",
            "-1e18", "0.1", "7", ".5", "5.", "-.5", "1E2", "+1", "0x10", "0x1p-3", "1e", "e1", "abc", "",
            " 1", "1 ", "inf", "-inf", "Infinity", "nan", "NaN", "1e5000", "1e-5000",
            "1.7976931348623157e308", "1e308", "1e-310", "-0", "0", "00001", "1_0",
        ]],
        B("GET", "f"), B("SET", "f", "1e308"), B("INCRBYFLOAT", "f", "1e308"), B("INCRBYFLOAT", "f", "1e308"),
        B("SET", "f", "1.18e4932"), B("INCRBYFLOAT", "f", "1e4931"),
        B("SET", "f", "abc"), B("INCRBYFLOAT", "f", "1"), B("SET", "f", "inf"), B("INCRBYFLOAT", "f", "1"),
        B("SET", "f", " 1"), B("INCRBYFLOAT", "f", "1"), B("SET", "f", "1.5"), B("INCRBYFLOAT", "f", "x"),
        B("SET", "f", "-1e-5"), B("INCRBYFLOAT", "f", "1e-5"), B("INCRBYFLOAT", "f", "1e-5"),
        B("SET", "t", "1", "EX", "100"), B("INCRBYFLOAT", "t", "1.5"), B("TTL", "t"),
        B("HSET", "h", "f", "1"), B("INCRBYFLOAT", "h", "1"), B("INCRBYFLOAT", "g", "3.0"), B("GET", "g"),
        B("INCRBYFLOAT", "g", "0.30000000000000004"), B("INCRBYFLOAT", "big", "1e30"),
        B("INCRBYFLOAT", "big", "12345678901234567890.123456789"), B("INCRBYFLOAT", "z", "-0.0"),
    ],
    "del_exists_type_touch": [
        B("SET", "a", "1"), B("HSET", "h", "f", "v"), B("EXISTS", "a", "a", "h", "x"), B("TOUCH", "a", "x", "a"),
        B("TYPE", "a"), B("TYPE", "h"), B("TYPE", "x"), B("DEL", "a", "a", "x"), B("UNLINK", "h", "h"),
        B("EXISTS", "a", "h"), B("DEL"), B("EXISTS"), B("TYPE"), B("DBSIZE"), B("SET", "", "empty"),
        B("GET", ""), B("EXISTS", ""), B("DBSIZE"), B("DEL", ""),
    ],
    "rename": [
        B("RENAME", "a", "b"), B("RENAMENX", "a", "b"), B("SET", "a", "1", "EX", "100"), B("RENAME", "a", "a"),
        B("RENAMENX", "a", "a"), B("RENAME", "a", "b"), B("EXISTS", "a"), B("GET", "b"), B("TTL", "b"),
        B("SET", "c", "3"), B("RENAMENX", "b", "c"), B("GET", "c"), B("RENAME", "b", "c"), B("GET", "c"),
        B("TTL", "c"), B("HSET", "h", "f", "v", "g", "w"), B("RENAME", "h", "c"), B("HGETALL", "c"),
        B("TYPE", "c"), B("RENAMENX", "c", "d"), B("HGETALL", "d"), B("HSET", "d", "x", "y"),
        B("HGETALL", "d"), B("EXISTS", "c", "h"),
    ],
    "expire": [
        B("EXPIRE", "k", 100), B("SET", "k", "v"), B("EXPIRE", "k", 100), B("TTL", "k"),
        B("EXPIRE", "k", 200, "NX"), B("EXPIRE", "k", 200, "XX"), B("TTL", "k"),
        B("EXPIRE", "k", 100, "GT"), B("EXPIRE", "k", 300, "GT"), B("TTL", "k"),
        B("EXPIRE", "k", 400, "LT"), B("EXPIRE", "k", 150, "LT"), B("TTL", "k"),
        B("PERSIST", "k"), B("PERSIST", "k"), B("EXPIRE", "k", 100, "XX"), B("EXPIRE", "k", 100, "GT"),
        B("TTL", "k"), B("EXPIRE", "k", 100, "LT"), B("TTL", "k"), B("PERSIST", "k"),
        B("EXPIRE", "k", 100, "NX"), B("TTL", "k"),
        B("EXPIRE", "k", 100, "NX", "XX"), B("EXPIRE", "k", 100, "NX", "GT"), B("EXPIRE", "k", 100, "LT", "NX"),
        B("EXPIRE", "k", 100, "GT", "LT"), B("EXPIRE", "k", 200, "XX", "GT"), B("EXPIRE", "k", 100, "FOO"),
        B("EXPIRE", "k", 100, "nx", "bar"), B("EXPIRE", "k", "abc", "FOO"), B("EXPIRE", "k", "abc"),
        B("EXPIRE", "k", "1.5"), B("EXPIRE", "k", "9223372036854775807"), B("EXPIRE", "k", "9223372036854775"),
        B("EXPIRE", "k", "9223372036854776"), B("EXPIRE", "k", "-9223372036854775"),
        B("EXPIRE", "k", "-9223372036854776"), B("PEXPIRE", "k", "9223372036854775807"),
        B("PEXPIREAT", "k", "9223372036854775807"), B("PEXPIRETIME", "k"), B("EXPIREAT", "k", "9223372036854775"),
        B("EXPIRETIME", "k"), B("EXPIREAT", "k", "9223372036854776"),
        B("EXPIREAT", "k", FUTURE_S), B("EXPIRETIME", "k"), B("PEXPIRETIME", "k"),
        B("PEXPIREAT", "k", FUTURE_MS + 499), B("EXPIRETIME", "k"), B("PEXPIREAT", "k", FUTURE_MS + 500),
        B("EXPIRETIME", "k"), B("PEXPIRE", "k", 100000), B("PTTL", "k"),
        B("EXPIRE", "k", 0), B("EXISTS", "k"), B("SET", "k", "v"), B("EXPIRE", "k", -10),
        B("EXISTS", "k"), B("SET", "k", "v"), B("EXPIREAT", "k", 1), B("EXISTS", "k"),
        B("SET", "k", "v"), B("PEXPIRE", "k", -1), B("EXISTS", "k"), B("SET", "k", "v"),
        B("EXPIRE", "k", -1, "NX"), B("EXISTS", "k"), B("SET", "k", "v"), B("EXPIRE", "k", 100),
        B("EXPIRE", "k", -1, "GT"), B("EXPIRE", "k", -1, "LT"), B("EXISTS", "k"),
        B("SET", "k", "v"), B("EXPIRE", "k", -1, "XX"), B("EXISTS", "k"),
        B("TTL", "missing"), B("PTTL", "missing"), B("EXPIRETIME", "missing"), B("PEXPIRETIME", "missing"),
        B("PERSIST", "missing"), B("SET", "p", "v"), B("TTL", "p"), B("PTTL", "p"), B("EXPIRETIME", "p"),
        B("PEXPIRETIME", "p"), B("EXPIRE", "p"), B("HSET", "h", "f", "v"), B("EXPIRE", "h", 100),
        B("TTL", "h"), B("HSET", "h", "g", "w"), B("TTL", "h"), B("HDEL", "h", "f", "g"), B("TTL", "h"),
    ],
    "keys_scan_dbsize_flush": [
        B("MSET", "one", "1", "two", "2", "three", "3", "four", "4"), B("HSET", "hash", "f", "v"),
        B("KEYS", "*"), B("KEYS", "t*"), B("KEYS", "*o*"), B("KEYS", "???"), B("KEYS", "[ot]*"),
        B("KEYS", "[^o]*"), B("KEYS", "nothing"), B("KEYS", ""), B("DBSIZE"),
        B("SCAN", 0, "COUNT", 1000), B("SCAN", 0, "MATCH", "t*", "COUNT", 1000),
        B("SCAN", 0, "TYPE", "string", "COUNT", 1000), B("SCAN", 0, "TYPE", "HASH", "COUNT", 1000),
        B("SCAN", 0, "TYPE", "list", "COUNT", 1000), B("SCAN", 0, "TYPE", "nonsense", "COUNT", 1000),
        B("SCAN", 0, "count", 1000, "match", "*e*", "type", "string"),
        B("SCAN", 0, "COUNT", 0), B("SCAN", 0, "COUNT", -1), B("SCAN", 0, "COUNT", "x"), B("SCAN", 0, "COUNT"),
        B("SCAN", 0, "MATCH"), B("SCAN", 0, "FOO", "bar"), B("SCAN", "x"), B("SCAN", "-x"), B("SCAN", " 1"),
        B("SCAN", "1 "), B("SCAN", "18446744073709551616"), B("SCAN", "0x1"), B("SCAN", "+"), B("SCAN", "-"),
        B("SCAN", "", "COUNT", 1000), B("SCAN", "+0", "COUNT", 1000), B("SCAN", "-0", "COUNT", 1000),
        B("SCAN", "00", "COUNT", 1000), B("SCAN", "x", "COUNT", 0), B("SCAN", 0, "COUNT", 0, "FOO"),
        B("SCAN", 0, "FOO", "COUNT", 0), B("SCAN"), B("KEYS"), B("KEYS", "a", "b"),
        B("RANDOMKEY"), B("RANDOMKEY", "x"), B("DBSIZE", "x"), B("FLUSHDB", "x"), B("FLUSHDB", "ASYNC", "x"),
        B("FLUSHALL", "FOO"), B("FLUSHDB", "async"), B("DBSIZE"), B("RANDOMKEY"), B("KEYS", "*"),
        B("SET", "a", "1"), B("FLUSHALL", "SYNC"), B("DBSIZE"), B("SET", "a", "1"), B("FLUSHALL"),
        B("DBSIZE"), B("SET", "a", "1"), B("FLUSHDB"), B("DBSIZE"), B("SET", "", "1"), B("KEYS", "*"),
        B("KEYS", "**"), B("KEYS", "?"), B("KEYS", ""), B("SCAN", 0, "MATCH", "*"), B("SCAN", 0, "MATCH", "**"),
    ],
    "hashes_basic": [
        B("HSET", "h", "f", "v"), B("HSET", "h", "f", "w", "g", "x"), B("HSET", "h", "f"), B("HSET", "h"),
        B("HSET", "h", "a", "1", "a", "2"), B("HGET", "h", "a"), B("HGET", "h", "nope"), B("HGET", "nope", "f"),
        B("HMSET", "h", "m", "1", "n", "2"), B("HMSET", "h", "m"), B("HGETALL", "h"), B("HKEYS", "h"),
        B("HVALS", "h"), B("HLEN", "h"), B("HMGET", "h", "f", "nope", "g", "f"), B("HMGET", "nope", "a", "b"),
        B("HEXISTS", "h", "f"), B("HEXISTS", "h", "nope"), B("HEXISTS", "nope", "f"),
        B("HSTRLEN", "h", "f"), B("HSTRLEN", "h", "nope"), B("HSTRLEN", "nope", "f"),
        B("HSETNX", "h", "f", "z"), B("HSETNX", "h", "new", "z"), B("HGET", "h", "new"),
        B("HSETNX", "fresh", "f", "v"), B("HGETALL", "fresh"),
        B("HDEL", "h", "f", "f", "nope"), B("HDEL", "nope", "f"), B("HGETALL", "h"),
        B("HSET", "h", "f", "again"), B("HKEYS", "h"), B("HDEL", "h", "g", "a", "m", "n", "new", "f"),
        B("EXISTS", "h"), B("HGETALL", "h"), B("HKEYS", "h"), B("HVALS", "h"), B("HLEN", "h"),
        B("HSET", "e", "", ""), B("HGETALL", "e"), B("HSTRLEN", "e", ""),
    ],
    "hashes_wrongtype": [
        B("SET", "s", "v"),
        *[B(*c) for c in [
            ("HSET", "s", "f", "v"), ("HMSET", "s", "f", "v"), ("HSETNX", "s", "f", "v"), ("HGET", "s", "f"),
            ("HMGET", "s", "f"), ("HDEL", "s", "f"), ("HEXISTS", "s", "f"), ("HLEN", "s"), ("HKEYS", "s"),
            ("HVALS", "s"), ("HGETALL", "s"), ("HINCRBY", "s", "f", "1"), ("HINCRBY", "s", "f", "x"),
            ("HINCRBYFLOAT", "s", "f", "1"), ("HINCRBYFLOAT", "s", "f", "x"), ("HINCRBYFLOAT", "s", "f", "inf"),
            ("HSTRLEN", "s", "f"), ("HSCAN", "s", "0"), ("HSCAN", "s", "x"), ("HSCAN", "s", "0", "FOO"),
            ("HRANDFIELD", "s"), ("HRANDFIELD", "s", "1"), ("HRANDFIELD", "s", "x"),
            ("HRANDFIELD", "s", "1", "FOO"), ("HRANDFIELD", "s", "1", "WITHVALUES"),
        ]],
        B("GET", "s"),
    ],
    "hincr": [
        B("HINCRBY", "h", "n", 5), B("HINCRBY", "h", "n", -10), B("HINCRBY", "h", "n", "x"),
        B("HINCRBY", "h", "n", "1.5"), B("HSET", "h", "s", "abc", "big", "9223372036854775807", "z", "007"),
        B("HINCRBY", "h", "s", 1), B("HINCRBY", "h", "big", 1), B("HINCRBY", "h", "big", 0),
        B("HINCRBY", "h", "big", -1), B("HINCRBY", "h", "z", 1), B("HINCRBY", "h", "n", "9223372036854775808"),
        B("HSET", "h", "small", "-9223372036854775808"), B("HINCRBY", "h", "small", -1),
        B("HINCRBYFLOAT", "h", "fl", "0.1"), B("HINCRBYFLOAT", "h", "fl", "0.2"), B("HGET", "h", "fl"),
        B("HINCRBYFLOAT", "h", "fl", "x"), B("HINCRBYFLOAT", "h", "fl", "inf"), B("HINCRBYFLOAT", "h", "fl", "-inf"),
        B("HINCRBYFLOAT", "h", "fl", "nan"), B("HINCRBYFLOAT", "h", "s", "1"), B("HINCRBYFLOAT", "h", "n", "1.5"),
        B("HINCRBYFLOAT", "h", "big", "1"), B("HSET", "h", "inf", "inf"), B("HINCRBYFLOAT", "h", "inf", "1"),
        B("HSET", "hh", "huge", "1e308"), B("HINCRBYFLOAT", "hh", "huge", "1e308"), B("HGETALL", "hh"),
        B("HINCRBYFLOAT", "missing", "f", "2.50"), B("HGETALL", "missing"), B("HINCRBY", "missing2", "f", "x"),
        B("EXISTS", "missing2"), B("HINCRBYFLOAT", "missing3", "f", "x"), B("EXISTS", "missing3"),
        B("HINCRBYFLOAT", "h", "e", "1e5000"), B("HINCRBYFLOAT", "h", "e", "5.0e3"), B("HGETALL", "h"),
    ],
    "hscan_hrandfield": [
        B("HSCAN", "nope", 0), B("HSCAN", "nope", "x"), B("HSCAN", "nope", 0, "FOO"),
        B("HSET", "h", "a1", "1", "a2", "2", "b1", "3", "", "4"), B("HSCAN", "h", 0), B("HSCAN", "h", 5),
        B("HSCAN", "h", 0, "MATCH", "a*"), B("HSCAN", "h", 0, "MATCH", "*"), B("HSCAN", "h", 0, "MATCH", "?1"),
        B("HSCAN", "h", 0, "COUNT", 1), B("HSCAN", "h", 0, "COUNT", 0), B("HSCAN", "h", 0, "COUNT", "x"),
        B("HSCAN", "h", 0, "TYPE", "string"), B("HSCAN", "h", 0, "MATCH"), B("HSCAN", "h", "-1"),
        B("HSCAN", "h", "x"), B("HSCAN", "h", "0", "NOVALUES"),
        B("HRANDFIELD", "nope"), B("HRANDFIELD", "nope", 5), B("HRANDFIELD", "nope", 5, "WITHVALUES"),
        B("HRANDFIELD", "nope", "x"), B("HRANDFIELD", "nope", 5, "FOO"), B("HRANDFIELD", "h", 5, "WITHVALUES", "x"),
        B("HRANDFIELD", "h"), B("HRANDFIELD", "h", 0), B("HRANDFIELD", "h", 4), B("HRANDFIELD", "h", 10),
        B("HRANDFIELD", "h", 2), B("HRANDFIELD", "h", 1), B("HRANDFIELD", "h", -1), B("HRANDFIELD", "h", -10),
        B("HRANDFIELD", "h", 4, "WITHVALUES"), B("HRANDFIELD", "h", 10, "withvalues"),
        B("HRANDFIELD", "h", 3, "WITHVALUES"), B("HRANDFIELD", "h", -7, "WITHVALUES"),
        B("HRANDFIELD", "h", 0, "WITHVALUES"), B("HRANDFIELD", "h", "-9223372036854775808"),
        B("HRANDFIELD", "h", "-9223372036854775807", "x"), B("HRANDFIELD", "h", "4611686018427387904", "WITHVALUES"),
        B("HRANDFIELD", "h", "-4611686018427387904", "WITHVALUES"), B("HRANDFIELD", "h", "9223372036854775808"),
        B("HRANDFIELD", "nope", "4611686018427387904", "WITHVALUES"),
    ],
    "arity": [
        B(*a) for a in [
            ("GET",), ("SET", "k"), ("SETNX", "k"), ("SETEX", "k", "1"), ("PSETEX", "k"), ("GETSET", "k"),
            ("GETDEL",), ("GETEX",), ("MGET",), ("MSET",), ("MSETNX", "k"), ("APPEND", "k"), ("STRLEN",),
            ("GETRANGE", "k", "0"), ("SUBSTR", "k"), ("SETRANGE", "k", "0"), ("INCR",), ("DECR", "k", "1"),
            ("INCRBY", "k"), ("DECRBY", "k"), ("INCRBYFLOAT", "k"), ("DEL",), ("UNLINK",), ("EXISTS",),
            ("TYPE", "a", "b"), ("RENAME", "a"), ("RENAMENX", "a"), ("EXPIRE", "k"), ("PEXPIRE", "k"),
            ("EXPIREAT", "k"), ("PEXPIREAT", "k"), ("TTL",), ("PTTL", "a", "b"), ("EXPIRETIME",),
            ("PEXPIRETIME",), ("PERSIST",), ("TOUCH",), ("HSET", "h", "f"), ("HSETNX", "h", "f"),
            ("HGET", "h"), ("HMSET", "h", "f"), ("HMGET", "h"), ("HDEL", "h"), ("HEXISTS", "h"), ("HLEN",),
            ("HKEYS",), ("HVALS",), ("HGETALL",), ("HINCRBY", "h", "f"), ("HINCRBYFLOAT", "h", "f"),
            ("HSTRLEN", "h"), ("HSCAN", "h"), ("HRANDFIELD",), ("HSET", "h", "f", "v", "g"),
            ("HMSET", "h", "f", "v", "g"), ("MSET", "a", "1", "b"), ("MSETNX", "a", "1", "b"),
        ]
    ],
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_script(real: Any, name: str) -> None:
    check(real, Harness(), SCRIPTS[name])


# -- glob patterns against Redis's KEYS -------------------------------------------------------

GLOB_KEYS = [
    b"", b"a", b"b", b"ab", b"abc", b"ba", b"A", b"aB", b"[", b"]", b"-", b"^", b"*", b"?", b"\\",
    b"a\\b", b"a*b", b"a?b", b"[a]", b"a-", b"\x00", b"a\x00b", b"\x80", b"\xff", b"a\xffb", b"\xe9t\xe9",
    b"hello", b"hallo", b"hxllo", b"hllo", b"heeeello", b"{tag}x", b"!", b"~", b"`", b"Z",
]

GLOB_PATTERNS = [
    b"*", b"**", b"", b"?", b"??", b"a*", b"*b", b"*a*", b"a?b", b"[ab]", b"[^ab]", b"[a-c]*", b"[c-a]*",
    b"[", b"[^", b"[a", b"[ab", b"[^a", b"[]", b"[^]", b"[]]", b"[]a]", b"[a-]", b"[-a]", b"[a-", b"[\\]]",
    b"[\\", b"\\", b"\\*", b"a\\*b", b"\\a", b"a\\", b"*\\", b"[a\\-c]", b"[\\^]", b"[!a]", b"h?llo",
    b"h*llo", b"h[ae]llo", b"h[^e]llo", b"h[a-b]llo", b"*[", b"[*]", b"[?]", b"*?*", b"?*?",
    b"[\x00-a]", b"[a-\xff]", b"[\xff-a]", b"[\x80-\xff]", b"\xff", b"[\xe9]t*", b"a\x00*", b"[Z-a]",
    b"[A-z]", b"*\\\\", b"[[]", b"[[-]]", b"*]", b"{*}*", b"[^-]", b"[a-b-c]", b"[---]", b"*-*",
]


@pytest.mark.parametrize("pattern", GLOB_PATTERNS)
def test_keys_patterns(real: Any, pattern: bytes) -> None:
    h = Harness()
    script = [[b"SET", key, b"v"] for key in GLOB_KEYS] + [[b"KEYS", pattern]]
    script.append([b"SCAN", b"0", b"MATCH", pattern, b"COUNT", b"1000"])
    script.append([b"HSET", b"hash"] + [x for key in GLOB_KEYS for x in (key, b"v")])
    check(real, h, script)
    # HSCAN answers a hash this size whole, in insertion order, on both sides.
    assert run_real(real, [b"HSCAN", b"hash", b"0", b"MATCH", pattern]) == run_ours(
        h, [b"HSCAN", b"hash", b"0", b"MATCH", pattern]
    )


_GLOB_ALPHABET = [b"a", b"b", b"*", b"?", b"[", b"]", b"^", b"-", b"\\", b"\xff", b"A"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    keys=st.lists(st.lists(st.sampled_from(_GLOB_ALPHABET), max_size=5).map(b"".join), min_size=1, max_size=8),
    pattern=st.lists(st.sampled_from(_GLOB_ALPHABET), max_size=7).map(b"".join),
)
def test_keys_patterns_generated(real: Any, keys: list[bytes], pattern: bytes) -> None:
    script = [[b"SET", key, b"v"] for key in keys] + [[b"KEYS", pattern]]
    check(real, Harness(), script)


# -- generated command sequences -------------------------------------------------------------

KEYS = st.sampled_from([b"a", b"b", b"c"])
FIELDS = st.sampled_from([b"f", b"g", b"h"])
VALUES = st.sampled_from(
    [b"1", b"0", b"-1", b"10", b"abc", b"", b"1.5", b"9223372036854775807", b"-9223372036854775808",
     b"007", b" 1", b"+1", b"1e3", b"inf", b"3.0", b"-0", b"hello world", b"0.1"]
)
INTS = st.sampled_from(
    [b"0", b"1", b"-1", b"5", b"100", b"-100", b"x", b"1.5", b"9223372036854775807", b"-9223372036854775808",
     b"01", b"+1", b""]
)
FLOATS = st.sampled_from([b"0.1", b"-0.1", b"1e-5", b"1.5e10", b"2", b"abc", b"inf", b"-inf", b"1e400", b"5.0e3", b".5", b"-2.25"])
EXPIRES = st.sampled_from([b"100", b"1000", b"-1", b"0", b"x", b"9223372036854775807"])
ABS_EXPIRES = st.sampled_from([b"1", b"4102444800", b"4102444801", b"-5", b"x"])
GLOBS = st.sampled_from([b"*", b"a", b"[ab]", b"?", b"*b*", b"[^a]", b"f", b"[fg]*", b"\\f"])


def _opts(*choices: list[bytes]):
    return st.lists(st.sampled_from(list(choices)), max_size=3).map(lambda xs: [a for x in xs for a in x])


SET_OPTS = _opts(
    [b"NX"], [b"XX"], [b"GET"], [b"KEEPTTL"], [b"EX", b"100"], [b"PX", b"100000"], [b"EXAT", b"4102444800"],
    [b"PXAT", b"4102444800000"], [b"EX", b"0"], [b"EXAT", b"1"], [b"EX"], [b"get"], [b"PERSIST"],
)
GETEX_OPTS = _opts([b"PERSIST"], [b"EX", b"100"], [b"PX", b"100000"], [b"EXAT", b"1"], [b"PXAT", b"4102444800000"], [b"KEEPTTL"])
EXPIRE_OPTS = _opts([b"NX"], [b"XX"], [b"GT"], [b"LT"])


def _cmd(*parts):
    return st.tuples(*[p if isinstance(p, st.SearchStrategy) else st.just(p) for p in parts]).map(list)


def _flat(*parts):
    """Like _cmd, but list-valued parts are spliced in."""
    def join(values):
        out = []
        for v in values:
            out.extend(v if isinstance(v, list) else [v])
        return out
    return st.tuples(*[p if isinstance(p, st.SearchStrategy) else st.just(p) for p in parts]).map(join)


PAIRS = st.lists(st.tuples(FIELDS, VALUES), min_size=1, max_size=3).map(lambda ps: [x for p in ps for x in p])
KV_PAIRS = st.lists(st.tuples(KEYS, VALUES), min_size=1, max_size=3).map(lambda ps: [x for p in ps for x in p])

COMMANDS = st.one_of(
    _cmd(b"GET", KEYS),
    _flat(b"SET", KEYS, VALUES, SET_OPTS),
    _cmd(b"SETNX", KEYS, VALUES),
    _cmd(b"SETEX", KEYS, EXPIRES, VALUES),
    _cmd(b"PSETEX", KEYS, st.sampled_from([b"100000", b"0", b"x"]), VALUES),
    _cmd(b"GETSET", KEYS, VALUES),
    _cmd(b"GETDEL", KEYS),
    _flat(b"GETEX", KEYS, GETEX_OPTS),
    _flat(b"MGET", st.lists(KEYS, min_size=1, max_size=4)),
    _flat(b"MSET", KV_PAIRS),
    _flat(b"MSETNX", KV_PAIRS),
    _cmd(b"APPEND", KEYS, VALUES),
    _cmd(b"STRLEN", KEYS),
    _cmd(b"GETRANGE", KEYS, INTS, INTS),
    _cmd(b"SETRANGE", KEYS, st.sampled_from([b"0", b"1", b"3", b"-1", b"x", b"12"]), VALUES),
    _cmd(st.sampled_from([b"INCR", b"DECR"]), KEYS),
    _cmd(st.sampled_from([b"INCRBY", b"DECRBY"]), KEYS, INTS),
    _cmd(b"INCRBYFLOAT", KEYS, FLOATS),
    _flat(st.sampled_from([b"DEL", b"UNLINK", b"EXISTS", b"TOUCH"]), st.lists(KEYS, min_size=1, max_size=3)),
    _cmd(b"TYPE", KEYS),
    _cmd(st.sampled_from([b"RENAME", b"RENAMENX"]), KEYS, KEYS),
    _flat(st.sampled_from([b"EXPIRE", b"PEXPIRE"]), KEYS, EXPIRES, EXPIRE_OPTS),
    _flat(st.sampled_from([b"EXPIREAT"]), KEYS, ABS_EXPIRES, EXPIRE_OPTS),
    _cmd(st.sampled_from([b"TTL", b"PTTL", b"EXPIRETIME", b"PERSIST"]), KEYS),
    _cmd(b"KEYS", GLOBS),
    _flat(b"SCAN", b"0", b"COUNT", b"1000", st.sampled_from([[], [b"MATCH", b"[ab]"], [b"TYPE", b"hash"], [b"TYPE", b"string"]])),
    _cmd(st.sampled_from([b"DBSIZE", b"RANDOMKEY"])),
    _flat(st.sampled_from([b"HSET", b"HMSET"]), KEYS, PAIRS),
    _cmd(b"HSETNX", KEYS, FIELDS, VALUES),
    _cmd(b"HGET", KEYS, FIELDS),
    _flat(b"HMGET", KEYS, st.lists(FIELDS, min_size=1, max_size=3)),
    _flat(b"HDEL", KEYS, st.lists(FIELDS, min_size=1, max_size=3)),
    _cmd(st.sampled_from([b"HEXISTS", b"HSTRLEN"]), KEYS, FIELDS),
    _cmd(st.sampled_from([b"HLEN", b"HKEYS", b"HVALS", b"HGETALL"]), KEYS),
    _cmd(b"HINCRBY", KEYS, FIELDS, INTS),
    _cmd(b"HINCRBYFLOAT", KEYS, FIELDS, FLOATS),
    _flat(b"HSCAN", KEYS, b"0", st.sampled_from([[], [b"MATCH", b"[fg]"], [b"COUNT", b"1"], [b"COUNT", b"0"]])),
    _flat(b"HRANDFIELD", KEYS, st.sampled_from([[], [b"0"], [b"3"], [b"5"], [b"-2"], [b"5", b"WITHVALUES"], [b"x"]])),
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(script=st.lists(COMMANDS, min_size=1, max_size=25))
def test_generated_sequences(real: Any, script: list[list[bytes]]) -> None:
    check(real, Harness(), script)
