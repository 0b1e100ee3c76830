"""Tests for resp.protocol.RequestParser, the sans-I/O RESP request parser.

Every case is fed whole, split in two at every position, and one byte at a
time, and must give the same commands and the same error each way (the h11
habit: the result may not depend on how the bytes arrived). Each case also
runs with the bulk fast path turned off, so the fast path is checked against
the general loop.
"""

from __future__ import annotations

import random
import re
import time

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from redis.connection import Connection

from makod.kv import errors
from makod.kv.errors import ProtocolError
from resp.protocol import (
    DEFAULT_MAX_BULK_LEN,
    DEFAULT_MAX_MULTIBULK_LEN,
    INLINE_MAX_LEN,
    RequestParser,
    split_inline,
)

LIMIT = INLINE_MAX_LEN


# -- helpers ------------------------------------------------------------------
def make_parser(fast: bool, **limits: int) -> RequestParser:
    parser = RequestParser(**limits)
    parser._use_fast = fast
    return parser


def run(chunks: list[bytes], fast: bool = True, **limits: int) -> tuple[list[list[bytes]], str | None]:
    """Feed ``chunks`` in order; return (all commands, error text or None)."""
    parser = make_parser(fast, **limits)
    commands: list[list[bytes]] = []
    for chunk in chunks:
        commands.extend(parser.feed(chunk))
        if parser.error is not None:
            assert isinstance(parser.error, ProtocolError)
            # Once failed, the parser stays failed and holds nothing.
            assert parser.feed(b"*1\r\n$4\r\nPING\r\n") == []
            assert parser.buffered == 0
    for command in commands:
        assert command and all(type(arg) is bytes for arg in command)
    return commands, (parser.error.text if parser.error is not None else None)


def split_points(data: bytes) -> list[int]:
    """Every split position for small inputs; for large ones the edges, the
    area around the 64 KB line limit and a deterministic sample."""
    if len(data) <= 3000:
        return list(range(1, len(data)))
    rng = random.Random(len(data))
    points = set(range(1, 40)) | set(range(len(data) - 40, len(data)))
    points |= {p for p in range(LIMIT - 10, LIMIT + 10) if 0 < p < len(data)}
    points |= {rng.randrange(1, len(data)) for _ in range(150)}
    return sorted(points)


def all_ways(data: bytes, fast: bool, **limits: int):
    """Yield (description, result) for data fed whole, in two pieces at
    every split point, and byte by byte."""
    yield "whole", run([data], fast, **limits)
    for cut in split_points(data):
        yield f"split at {cut}", run([data[:cut], data[cut:]], fast, **limits)
    yield "bytewise", run([data[i : i + 1] for i in range(len(data))], fast, **limits)


def mb(*args: bytes) -> bytes:
    """A canonical multibulk request."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


def proto(detail: str) -> str:
    return f"ERR Protocol error: {detail}"


ALL_BYTES = bytes(range(256))
BIG = bytes(range(256)) * 78 + b"\r\n" * 20  # 20008 bytes: beyond the header cache


# -- valid input ----------------------------------------------------------------
VALID = [
    ("ping", b"*1\r\n$4\r\nPING\r\n", [[b"PING"]]),
    ("case as sent", b"*1\r\n$4\r\npInG\r\n", [[b"pInG"]]),
    ("set", mb(b"SET", b"key", b"value"), [[b"SET", b"key", b"value"]]),
    (
        "pipeline",
        mb(b"SET", b"a", b"1") + mb(b"GET", b"a") + mb(b"INCR", b"a"),
        [[b"SET", b"a", b"1"], [b"GET", b"a"], [b"INCR", b"a"]],
    ),
    ("empty arg", mb(b"ECHO", b""), [[b"ECHO", b""]]),
    ("payload with CRLF", mb(b"ECHO", b"a\r\nb\r\n"), [[b"ECHO", b"a\r\nb\r\n"]]),
    ("payload is CRLF", mb(b"ECHO", b"\r\n"), [[b"ECHO", b"\r\n"]]),
    ("payload ends in CR", mb(b"ECHO", b"ab\r"), [[b"ECHO", b"ab\r"]]),
    ("payload starts with LF", mb(b"ECHO", b"\nab"), [[b"ECHO", b"\nab"]]),
    ("payload looks like a request", mb(b"ECHO", mb(b"PING")), [[b"ECHO", mb(b"PING")]]),
    ("all byte values", mb(b"SET", b"k", ALL_BYTES), [[b"SET", b"k", ALL_BYTES]]),
    ("*0 is skipped", b"*0\r\n" + mb(b"PING"), [[b"PING"]]),
    ("*-1 is skipped", b"*-1\r\n" + mb(b"PING") + b"*-1\r\n", [[b"PING"]]),
    ("*-5 is skipped", b"*-5\r\n" + mb(b"PING"), [[b"PING"]]),
    ("only empty commands", b"*0\r\n*-1\r\n\r\n\n", []),
    ("100 args", mb(b"MSET", *[b"k%d" % i for i in range(99)]), [[b"MSET", *[b"k%d" % i for i in range(99)]]]),
    ("1025 args (beyond the count cache)", mb(*[b"x"] * 1025), [[b"x"] * 1025]),
    ("big arg", mb(b"SET", b"k", BIG), [[b"SET", b"k", BIG]]),
    ("big arg between small ones", mb(b"GET", b"a") + mb(b"SET", b"k", BIG) + mb(b"GET", b"b"),
     [[b"GET", b"a"], [b"SET", b"k", BIG], [b"GET", b"b"]]),
    # Redis skips the two bytes after a payload and the byte after a header's
    # CR without looking at them.
    ("bytes after payload not checked", b"*1\r\n$4\r\nPINGxy" + mb(b"PING"), [[b"PING"], [b"PING"]]),
    ("byte after header CR not checked", b"*1\rx$4\ryPING\r\n", [[b"PING"]]),
    # Inline commands.
    ("inline", b"PING\r\n", [[b"PING"]]),
    ("inline LF only", b"PING\n", [[b"PING"]]),
    ("inline args", b"set key value\r\n", [[b"set", b"key", b"value"]]),
    ("inline blanks", b"  SET \t k   v \t \r\n", [[b"SET", b"k", b"v"]]),
    ("inline empty lines", b"\r\n\n   \r\n\t\n" + b"PING\r\n", [[b"PING"]]),
    ("inline CR inside separates", b"ECHO a\rb\r\n", [[b"ECHO", b"a", b"b"]]),
    ("inline only one CR dropped", b"PING\r\r\n", [[b"PING"]]),
    ("inline double quotes", b'SET k "hello world"\r\n', [[b"SET", b"k", b"hello world"]]),
    (
        "inline escapes",
        b'ECHO "a\\nb\\r\\t\\b\\a\\\\\\"\\x41\\x7a\\xZZ\\q\'"\r\n',
        [[b"ECHO", b"a\nb\r\t\b\a" + b"\\" + b'"' + b"AzxZZq'"]],
    ),
    ("inline hex escapes", b'ECHO "\\x00\\xff\\xAb"\n', [[b"ECHO", b"\x00\xff\xab"]]),
    ("inline single quotes", b"ECHO 'it\\'s' 'a\\b' '\"'\r\n", [[b"ECHO", b"it's", b"a\\b", b'"']]),
    ("inline empty quoted", b"SET k \"\" ''\r\n", [[b"SET", b"k", b"", b""]]),
    ("inline bare then quoted", b'ECHO foo"bar baz" x\'y\'\r\n', [[b"ECHO", b"foobar baz", b"xy"]]),
    ("inline quote then tab", b'ECHO "a"\tb\r\n', [[b"ECHO", b"a", b"b"]]),
    ("inline vertical tab", b"\x0bECHO a\x0bb \x0cc\r\n", [[b"ECHO", b"a\x0bb", b"c"]]),
    ("inline quote then vertical tab", b'ECHO "a"\x0bb\r\n', [[b"ECHO", b"a", b"b"]]),
    ("inline NUL is an ordinary byte", b"ECHO a\x00b\r\n", [[b"ECHO", b"a\x00b"]]),
    ("inline non-ASCII", "ECHO héllo\r\n".encode(), [[b"ECHO", "héllo".encode()]]),
    (
        "inline and multibulk mixed",
        b"PING\r\n" + mb(b"GET", b"k") + b"ECHO 'x y'\n" + mb(b"PING") + b"QUIT\r\n",
        [[b"PING"], [b"GET", b"k"], [b"ECHO", b"x y"], [b"PING"], [b"QUIT"]],
    ),
]


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "general"])
@pytest.mark.parametrize("name,data,expected", VALID, ids=[case[0] for case in VALID])
def test_valid_input(name: str, data: bytes, expected: list[list[bytes]], fast: bool) -> None:
    for how, (commands, error) in all_ways(data, fast):
        assert error is None, how
        assert commands == expected, how


def test_inline_line_at_the_limit_is_accepted() -> None:
    line = b"ECHO " + b"x" * (LIMIT - 5)
    assert len(line) == LIMIT
    for how, result in all_ways(line + b"\n", True):
        assert result == ([[b"ECHO", b"x" * (LIMIT - 5)]], None), how
    # The limit counts everything before the LF, a CR included (as Redis
    # counts the bytes it holds while no LF has arrived).
    shorter = b"ECHO " + b"x" * (LIMIT - 6)
    assert run([shorter + b"\r\n"]) == ([[b"ECHO", b"x" * (LIMIT - 6)]], None)
    assert run([line + b"\r\n"]) == ([], proto(errors.PROTO_TOO_BIG_INLINE))


def test_bulk_at_max_len_is_accepted() -> None:
    for fast in (True, False):
        assert run([mb(b"x" * 10)], fast, max_bulk_len=10) == ([[b"x" * 10]], None)
        assert run([mb(b"a", b"b")], fast, max_multibulk_len=2) == ([[b"a", b"b"]], None)


def test_default_limits() -> None:
    assert DEFAULT_MAX_BULK_LEN == 512 * 1024 * 1024
    assert DEFAULT_MAX_MULTIBULK_LEN == 1024 * 1024
    assert INLINE_MAX_LEN == 64 * 1024
    parser = RequestParser()
    # Declaring the largest allowed bulk is not an error: the parser waits.
    assert parser.feed(b"*1\r\n$%d\r\nabc" % DEFAULT_MAX_BULK_LEN) == []
    assert parser.error is None
    assert parser.buffered == 3


def test_large_values_round_trip() -> None:
    value = bytes(random.Random(7).getrandbits(8) for _ in range(300_000))
    data = mb(b"SET", b"k", value) + mb(b"GET", b"k")
    expected = [[b"SET", b"k", value], [b"GET", b"k"]]
    rng = random.Random(3)
    for fast in (True, False):
        assert run([data], fast) == (expected, None)
        for _ in range(20):
            cuts = sorted(rng.sample(range(1, len(data)), rng.randrange(1, 30)))
            pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]
            assert run(pieces, fast) == (expected, None)


def test_accepts_bytearray_and_memoryview() -> None:
    parser = RequestParser()
    assert parser.feed(bytearray(b"*1\r\n$4\r\nPING\r\n")) == [[b"PING"]]
    commands = parser.feed(memoryview(b"ECHO hi\r\n"))
    assert commands == [[b"ECHO", b"hi"]]
    assert all(type(arg) is bytes for arg in commands[0])
    assert parser.feed(b"") == []


# -- errors -----------------------------------------------------------------------
ERRORS = [
    ("count not a number", b"*abc\r\n", [], errors.PROTO_INVALID_MULTIBULK),
    ("count empty", b"*\r\n", [], errors.PROTO_INVALID_MULTIBULK),
    ("count with plus", b"*+1\r\n$4\r\nPING\r\n", [], errors.PROTO_INVALID_MULTIBULK),
    ("count leading zero", b"*01\r\n$4\r\nPING\r\n", [], errors.PROTO_INVALID_MULTIBULK),
    ("count leading space", b"* 1\r\n$4\r\nPING\r\n", [], errors.PROTO_INVALID_MULTIBULK),
    ("count trailing space", b"*1 \r\n$4\r\nPING\r\n", [], errors.PROTO_INVALID_MULTIBULK),
    ("count minus zero", b"*-0\r\n", [], errors.PROTO_INVALID_MULTIBULK),
    ("count underscore", b"*1_0\r\n", [], errors.PROTO_INVALID_MULTIBULK),
    ("count LF before CR", b"*1\n$4\r\nPING\r\n", [], errors.PROTO_INVALID_MULTIBULK),
    ("count over the limit", b"*%d\r\n" % (DEFAULT_MAX_MULTIBULK_LEN + 1), [], errors.PROTO_INVALID_MULTIBULK),
    ("count overflows int64", b"*9223372036854775808\r\n", [], errors.PROTO_INVALID_MULTIBULK),
    ("count 21 digits", b"*-000000000000000000001\r\n", [], errors.PROTO_INVALID_MULTIBULK),
    ("count unicode digit", "*１\r\n".encode(), [], errors.PROTO_INVALID_MULTIBULK),
    ("integer element", b"*1\r\n:5\r\n", [], errors.proto_expected_dollar(b":")),
    ("inline element", b"*2\r\n$3\r\nGET\r\nfoo\r\n", [], errors.proto_expected_dollar(b"f")),
    ("array element", b"*1\r\n*1\r\n$4\r\nPING\r\n", [], errors.proto_expected_dollar(b"*")),
    ("bulk length negative", b"*1\r\n$-1\r\n", [], errors.PROTO_INVALID_BULK),
    ("bulk length not a number", b"*1\r\n$abc\r\n", [], errors.PROTO_INVALID_BULK),
    ("bulk length empty", b"*1\r\n$\r\nx\r\n", [], errors.PROTO_INVALID_BULK),
    ("bulk length leading zero", b"*1\r\n$04\r\nPING\r\n", [], errors.PROTO_INVALID_BULK),
    ("bulk length with plus", b"*1\r\n$+4\r\nPING\r\n", [], errors.PROTO_INVALID_BULK),
    ("bulk length over the limit", b"*1\r\n$%d\r\n" % (DEFAULT_MAX_BULK_LEN + 1), [], errors.PROTO_INVALID_BULK),
    ("bulk length huge", b"*1\r\n$999999999999\r\n", [], errors.PROTO_INVALID_BULK),
    ("unterminated double quote", b'ECHO "abc\r\n', [], errors.PROTO_UNBALANCED_QUOTES),
    ("unterminated single quote", b"ECHO 'abc\r\n", [], errors.PROTO_UNBALANCED_QUOTES),
    ("escaped closing quote", b'ECHO "abc\\"\r\n', [], errors.PROTO_UNBALANCED_QUOTES),
    ("escaped closing single quote", b"ECHO 'abc\\'\r\n", [], errors.PROTO_UNBALANCED_QUOTES),
    ("text after closing quote", b'ECHO "a"b\r\n', [], errors.PROTO_UNBALANCED_QUOTES),
    ("text after closing single quote", b"ECHO 'a'b\r\n", [], errors.PROTO_UNBALANCED_QUOTES),
    ("backslash at end of quote", b'ECHO "a\\\r\n', [], errors.PROTO_UNBALANCED_QUOTES),
    (
        "commands before the error are returned",
        mb(b"SET", b"k", b"v") + b"PING\r\n" + mb(b"GET", b"k") + b"*x\r\n" + mb(b"PING"),
        [[b"SET", b"k", b"v"], [b"PING"], [b"GET", b"k"]],
        errors.PROTO_INVALID_MULTIBULK,
    ),
    (
        "error in the middle of a command",
        mb(b"PING") + b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$x\r\nv\r\n",
        [[b"PING"]],
        errors.PROTO_INVALID_BULK,
    ),
    ("bad quotes after commands", b"PING\r\nECHO \"x\r\nPING\r\n", [[b"PING"]], errors.PROTO_UNBALANCED_QUOTES),
    ("too big inline request", b"x" * (LIMIT + 1), [], errors.PROTO_TOO_BIG_INLINE),
    ("too big inline after commands", b"PING\r\n" + b"x" * (LIMIT + 1), [[b"PING"]], errors.PROTO_TOO_BIG_INLINE),
    # A line longer than the limit is refused even when its end is there.
    ("too long inline line", b"x" * (LIMIT + 1) + b"\n", [], errors.PROTO_TOO_BIG_INLINE),
    ("too big mbulk count string", b"*" + b"1" * LIMIT, [], errors.PROTO_TOO_BIG_MBULK),
    ("too long mbulk count line", b"*" + b"1" * LIMIT + b"\r\n", [], errors.PROTO_TOO_BIG_MBULK),
    ("too big bulk count string", b"*1\r\n$" + b"1" * LIMIT, [], errors.PROTO_TOO_BIG_BULK),
    ("too long bulk count line", b"*1\r\n$" + b"1" * LIMIT + b"\r\n", [], errors.PROTO_TOO_BIG_BULK),
    ("too big bulk count, not a $", b"*1\r\n" + b"x" * (LIMIT + 1), [], errors.PROTO_TOO_BIG_BULK),
]


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "general"])
@pytest.mark.parametrize("name,data,before,detail", ERRORS, ids=[case[0] for case in ERRORS])
def test_protocol_errors(name: str, data: bytes, before: list[list[bytes]], detail: str, fast: bool) -> None:
    for how, (commands, error) in all_ways(data, fast):
        assert error == proto(detail), how
        assert commands == before, how


def test_error_texts() -> None:
    assert run([b"*x\r\n"])[1] == "ERR Protocol error: invalid multibulk length"
    assert run([b"*1\r\n$x\r\n"])[1] == "ERR Protocol error: invalid bulk length"
    assert run([b"*1\r\nx\r\n"])[1] == "ERR Protocol error: expected '$', got 'x'"
    assert run([b"A 'b\n"])[1] == "ERR Protocol error: unbalanced quotes in request"
    assert run([b"A" * (LIMIT + 1)])[1] == "ERR Protocol error: too big inline request"
    assert run([b"*" * (LIMIT + 1)])[1] == "ERR Protocol error: too big mbulk count string"
    assert run([b"*1\r\n" + b"$" * (LIMIT + 1)])[1] == "ERR Protocol error: too big bulk count string"


def test_custom_limits() -> None:
    for fast in (True, False):
        assert run([mb(b"x" * 11)], fast, max_bulk_len=10)[1] == proto(errors.PROTO_INVALID_BULK)
        assert run([mb(b"a", b"b", b"c")], fast, max_multibulk_len=2)[1] == proto(errors.PROTO_INVALID_MULTIBULK)
        assert run([mb(b"x" * 3000)], fast, max_bulk_len=2999)[1] == proto(errors.PROTO_INVALID_BULK)


@pytest.mark.parametrize(
    "header,detail",
    [
        (b"*1\r\n$999999999999\r\n", errors.PROTO_INVALID_BULK),
        (b"*1\r\n$536870913\r\n", errors.PROTO_INVALID_BULK),
        (b"*99999999999\r\n", errors.PROTO_INVALID_MULTIBULK),
        (b"*2147483648\r\n", errors.PROTO_INVALID_MULTIBULK),
    ],
)
def test_huge_declared_lengths_fail_at_once(header: bytes, detail: str) -> None:
    """The header alone is enough: nothing is buffered waiting for the payload."""
    for fast in (True, False):
        parser = make_parser(fast)
        assert parser.feed(header) == []
        assert parser.error is not None
        assert parser.error.text == proto(detail)
        assert parser.buffered == 0
        # Fed byte by byte, the error comes with the header's last byte.
        parser = make_parser(fast)
        for i in range(len(header) - 1):
            assert parser.feed(header[i : i + 1]) == []
            assert parser.error is None
        parser.feed(header[-1:])
        assert parser.error is not None and parser.error.text == proto(detail)


def test_error_is_sticky() -> None:
    parser = RequestParser()
    assert parser.feed(mb(b"PING") + b"*x\r\n") == [[b"PING"]]
    error = parser.error
    assert isinstance(error, ProtocolError)
    assert parser.feed(mb(b"PING")) == []
    assert parser.feed(b"PING\r\n") == []
    assert parser.error is error
    assert parser.buffered == 0


# -- trailing garbage and partial input --------------------------------------------
def test_trailing_garbage_without_newline_is_held() -> None:
    parser = RequestParser()
    assert parser.feed(mb(b"PING") + b"\x00\xffgarbage") == [[b"PING"]]
    assert parser.error is None
    assert parser.buffered == 9
    # It is an inline command once its line ends.
    assert parser.feed(b" more\r\n") == [[b"\x00\xffgarbage", b"more"]]
    assert parser.buffered == 0


def test_trailing_garbage_errors() -> None:
    assert run([mb(b"PING") + b"*garbage\r\n"]) == ([[b"PING"]], proto(errors.PROTO_INVALID_MULTIBULK))
    assert run([mb(b"PING") + b"'garbage\r\n"]) == ([[b"PING"]], proto(errors.PROTO_UNBALANCED_QUOTES))
    assert run([mb(b"PING") + b"*1\r\n#t\r\n"]) == ([[b"PING"]], proto(errors.proto_expected_dollar(b"#")))


def test_partial_command_is_held_and_counted() -> None:
    parser = RequestParser()
    assert parser.feed(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nab") == []
    # "SET" and "k" are parsed, "ab" waits for the rest of its payload.
    assert parser.buffered == 3 + 1 + 2
    assert parser.feed(b"cde\r") == []
    assert parser.feed(b"\n") == [[b"SET", b"k", b"abcde"]]
    assert parser.buffered == 0
    assert parser.feed(b"*2\r") == []
    assert parser.buffered == 3
    assert parser.feed(b"\n$4\r\nECHO\r\n$2\r\nhi\r\n") == [[b"ECHO", b"hi"]]
    assert parser.buffered == 0


# -- no quadratic work --------------------------------------------------------------
def test_10mb_bulk_in_4kb_chunks_is_linear() -> None:
    value = bytes(range(256)) * (10 * 1024 * 1024 // 256)
    data = mb(b"SET", b"key", value) + mb(b"GET", b"key")
    parser = RequestParser()
    commands = []
    start = time.perf_counter()
    for i in range(0, len(data), 4096):
        commands.extend(parser.feed(data[i : i + 4096]))
    elapsed = time.perf_counter() - start
    assert parser.error is None
    assert commands == [[b"SET", b"key", value], [b"GET", b"key"]]
    assert elapsed < 2.0, f"{elapsed:.2f}s"


def test_many_args_in_small_chunks_is_linear() -> None:
    count = 200_000
    data = b"*%d\r\n" % count + b"$1\r\nx\r\n" * count
    parser = RequestParser()
    commands = []
    start = time.perf_counter()
    for i in range(0, len(data), 1000):
        commands.extend(parser.feed(data[i : i + 1000]))
    elapsed = time.perf_counter() - start
    assert commands == [[b"x"] * count]
    assert elapsed < 2.0, f"{elapsed:.2f}s"


def test_long_lines_byte_by_byte_are_linear() -> None:
    for data in (b"ECHO " + b"x" * (LIMIT - 10) + b"\r\n", b"*1\r\n$" + b"9" * (LIMIT - 10)):
        parser = RequestParser()
        start = time.perf_counter()
        for i in range(len(data)):
            parser.feed(data[i : i + 1])
        assert time.perf_counter() - start < 2.0


def test_pipelined_small_commands_speed() -> None:
    """A coarse guard on the hot path (the target is well under 3 us each)."""
    commands = [mb(b"SET", b"key:%06d" % i, b"xxx") for i in range(50_000)]
    reads = [b"".join(commands[i : i + 16]) for i in range(0, len(commands), 16)]
    best = float("inf")
    for _ in range(3):
        parser = RequestParser()
        start = time.perf_counter()
        total = sum(len(parser.feed(read)) for read in reads)
        best = min(best, time.perf_counter() - start)
        assert total == len(commands)
    assert best / len(commands) < 3e-6, f"{best / len(commands) * 1e6:.2f} us per command"


# -- clients' encodings ---------------------------------------------------------------
_args = st.lists(st.binary(max_size=40) | st.text(max_size=10) | st.integers(), max_size=8)


@given(st.lists(_args, min_size=1, max_size=6), st.data())
def test_redis_py_requests_round_trip(commands: list, data: st.DataObject) -> None:
    # (redis-py splits a command name at spaces, so the name is fixed.)
    connection = Connection()
    wire = b"".join(b"".join(connection.pack_command(b"ECHO", *command)) for command in commands)
    expected = [[b"ECHO", *(connection.encoder.encode(arg) for arg in command)] for command in commands]
    cut = data.draw(st.integers(0, len(wire)))
    for fast in (True, False):
        assert run([wire[:cut], wire[cut:]], fast) == (expected, None)


# -- inline splitting against a plain port of sdssplitargs ------------------------------
_C_SPACE = b" \t\n\r\x0b\x0c"
_HEX = b"0123456789abcdefABCDEF"
_ESC = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}


def reference_splitargs(line: bytes) -> list[bytes] | None:
    """sdssplitargs (src/sds.c) written out character by character, for a
    length-delimited line (a NUL is an ordinary byte)."""

    def at(i: int) -> int | None:
        return line[i] if i < len(line) else None

    args: list[bytes] = []
    p = 0
    while True:
        while at(p) is not None and at(p) in _C_SPACE:
            p += 1
        if at(p) is None:
            return args
        current = bytearray()
        in_double = in_single = False
        while True:
            c = at(p)
            if in_double:
                if c == ord("\\") and at(p + 1) == ord("x") and at(p + 2) is not None and at(p + 2) in _HEX \
                        and at(p + 3) is not None and at(p + 3) in _HEX:
                    current.append(int(line[p + 2 : p + 4], 16))
                    p += 3
                elif c == ord("\\") and at(p + 1) is not None:
                    p += 1
                    current.append(_ESC.get(line[p], line[p]))
                elif c == ord('"'):
                    if at(p + 1) is not None and at(p + 1) not in _C_SPACE:
                        return None
                    p += 1
                    break
                elif c is None:
                    return None
                else:
                    current.append(c)
            elif in_single:
                if c == ord("\\") and at(p + 1) == ord("'"):
                    p += 1
                    current.append(ord("'"))
                elif c == ord("'"):
                    if at(p + 1) is not None and at(p + 1) not in _C_SPACE:
                        return None
                    p += 1
                    break
                elif c is None:
                    return None
                else:
                    current.append(c)
            else:
                if c is None:
                    break
                if c in b" \n\r\t":
                    p += 1
                    break
                if c == ord('"'):
                    in_double = True
                elif c == ord("'"):
                    in_single = True
                else:
                    current.append(c)
            p += 1
        args.append(bytes(current))


# \x1c-\x1f, \x85 and \xa0 are whitespace to str.split() but must not be here.
_INLINE_ALPHABET = b" \t\r\n\x0b\x0c\"'\\xnrtba0fFzG\x00\xff\x1c\x1f\x85\xa0"


@given(st.lists(st.sampled_from(list(_INLINE_ALPHABET)), max_size=40).map(bytes))
@example(b'a"b"')
@example(b"'\\\\'")
@example(b"'a\\'")
@example(b'"\\x4"')
@example(b'"\\x41"x')
@settings(max_examples=3000)
def test_split_inline_matches_sdssplitargs(line: bytes) -> None:
    assert split_inline(line) == reference_splitargs(line)


def test_reference_splitargs_sanity() -> None:
    assert reference_splitargs(b'set "a b" \'c\'') == [b"set", b"a b", b"c"]
    assert reference_splitargs(b'"a\\x41\\n"') == [b"aA\n"]
    assert reference_splitargs(b'"a"b') is None
    assert reference_splitargs(b"   ") == []


# -- fuzzing -------------------------------------------------------------------------
def check_invariants(data: bytes, cuts: list[int]) -> None:
    """Garbage parses or fails with ProtocolError, the same however it is
    split and with or without the fast path, and nothing beyond the input is
    ever held."""
    cuts = sorted(set(c for c in cuts if 0 < c < len(data)))
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]
    whole = run([data], True)
    assert run([data], False) == whole
    assert run(pieces, True) == whole
    assert run(pieces, False) == whole
    parser = RequestParser()
    fed = 0
    for piece in pieces:
        parser.feed(piece)
        fed += len(piece)
        assert 0 <= parser.buffered <= fed


_PROTO_ALPHABET = b"*$\r\n0123456789-+ \"'\\xaPING"
_fuzz_settings = settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])


@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=6))
@_fuzz_settings
def test_fuzz_random_bytes(data: bytes, cuts: list[int]) -> None:
    check_invariants(data, cuts)


@given(st.lists(st.sampled_from(list(_PROTO_ALPHABET)), max_size=200).map(bytes),
       st.lists(st.integers(0, 200), max_size=6))
@_fuzz_settings
def test_fuzz_protocol_alphabet(data: bytes, cuts: list[int]) -> None:
    check_invariants(data, cuts)


_command = st.lists(st.binary(max_size=12), min_size=1, max_size=5)
_inline_safe = st.lists(st.from_regex(rb"\A[A-Za-z0-9:_.-]{1,8}\Z"), min_size=1, max_size=4)


@st.composite
def requests_and_expected(draw: st.DrawFn) -> tuple[bytes, list[list[bytes]]]:
    wire, expected = [], []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["multibulk", "inline", "empty"]))
        if kind == "multibulk":
            command = draw(_command)
            wire.append(mb(*command))
            expected.append(command)
        elif kind == "inline":
            command = draw(_inline_safe)
            wire.append(b" ".join(command) + draw(st.sampled_from([b"\r\n", b"\n"])))
            expected.append(command)
        else:
            wire.append(draw(st.sampled_from([b"*0\r\n", b"*-1\r\n", b"\r\n", b"\n", b" \t\r\n"])))
    return b"".join(wire), expected


@given(requests_and_expected(), st.lists(st.integers(0, 400), max_size=6))
@_fuzz_settings
def test_fuzz_valid_requests(request: tuple[bytes, list[list[bytes]]], cuts: list[int]) -> None:
    data, expected = request
    assert run([data]) == (expected, None)
    check_invariants(data, cuts)


_mutation = st.tuples(
    st.sampled_from(["replace", "insert", "delete", "duplicate"]),
    st.integers(0, 10_000),
    st.integers(0, 8),
    st.sampled_from(list(_PROTO_ALPHABET) + [0, 255]),
)


@given(requests_and_expected(), st.lists(_mutation, min_size=1, max_size=4), st.lists(st.integers(0, 400), max_size=6))
@_fuzz_settings
def test_fuzz_mutated_requests(request: tuple[bytes, list[list[bytes]]], mutations: list, cuts: list[int]) -> None:
    data = bytearray(request[0])
    for op, where, length, byte in mutations:
        where %= len(data) + 1
        if op == "replace" and where < len(data):
            data[where] = byte
        elif op == "insert":
            data[where:where] = bytes([byte])
        elif op == "delete":
            del data[where : where + length]
        elif op == "duplicate":
            data[where:where] = data[where : where + length]
    assume(data)
    check_invariants(bytes(data), cuts)


@given(st.integers(0, 2**70), st.sampled_from([b"*", b"*1\r\n$"]), st.booleans())
def test_fuzz_declared_lengths(number: int, prefix: bytes, negative: bool) -> None:
    """Any declared length is accepted, skipped, or refused at once."""
    text = b"%d" % (-number if negative else number)
    commands, error = run([prefix + text + b"\r\n"])
    assert commands == []
    valid = re.fullmatch(rb"0|-?[1-9][0-9]*", text) is not None and -(2**63) <= int(text) < 2**63
    if prefix == b"*":
        refused = not valid or int(text) > DEFAULT_MAX_MULTIBULK_LEN
        assert error == (proto(errors.PROTO_INVALID_MULTIBULK) if refused else None)
    else:
        refused = not valid or not 0 <= int(text) <= DEFAULT_MAX_BULK_LEN
        assert error == (proto(errors.PROTO_INVALID_BULK) if refused else None)
