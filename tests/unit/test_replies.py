"""Tests for resp.replies: exact RESP2/RESP3 bytes for every reply type, and
a round trip through hiredis (the parser redis-py uses) to prove clients read
them back as intended."""

from __future__ import annotations

import math

import hiredis
import pytest
from hypothesis import given
from hypothesis import strategies as st

from resp.replies import (
    NULL_ARRAY,
    OK,
    PONG,
    QUEUED,
    Bool,
    Double,
    ErrorReply,
    Map,
    Pairs,
    Set,
    SimpleString,
    Verbatim,
    encode,
    format_double,
)

INF = float("inf")


# gets() returns False for "no reply yet" by default, which a RESP3 boolean
# false would be mistaken for; ask for a sentinel instead.
INCOMPLETE = object()


def reader() -> hiredis.Reader:
    return hiredis.Reader(notEnoughData=INCOMPLETE)


def parse(wire: bytes):
    """Parse exactly one reply with hiredis; fail if bytes are left over."""
    r = reader()
    r.feed(wire)
    value = r.gets()
    assert value is not INCOMPLETE, f"incomplete reply: {wire!r}"
    assert r.gets() is INCOMPLETE, f"trailing bytes after one reply: {wire!r}"
    return value


# reply, RESP2 bytes, RESP3 bytes, what hiredis gives for RESP2, for RESP3
CASES = [
    ("bytes", b"abc", b"$3\r\nabc\r\n", b"$3\r\nabc\r\n", b"abc", b"abc"),
    ("empty bytes", b"", b"$0\r\n\r\n", b"$0\r\n\r\n", b"", b""),
    ("binary bytes", b"a\r\nb\x00", b"$5\r\na\r\nb\x00\r\n", b"$5\r\na\r\nb\x00\r\n", b"a\r\nb\x00", b"a\r\nb\x00"),
    ("str", "héllo", b"$6\r\nh\xc3\xa9llo\r\n", b"$6\r\nh\xc3\xa9llo\r\n", "héllo".encode(), "héllo".encode()),
    ("bytearray", bytearray(b"ba"), b"$2\r\nba\r\n", b"$2\r\nba\r\n", b"ba", b"ba"),
    ("memoryview", memoryview(b"mv"), b"$2\r\nmv\r\n", b"$2\r\nmv\r\n", b"mv", b"mv"),
    ("zero", 0, b":0\r\n", b":0\r\n", 0, 0),
    ("small int", 42, b":42\r\n", b":42\r\n", 42, 42),
    ("int at table start", -16, b":-16\r\n", b":-16\r\n", -16, -16),
    ("int below table", -17, b":-17\r\n", b":-17\r\n", -17, -17),
    ("int at table end", 1024, b":1024\r\n", b":1024\r\n", 1024, 1024),
    ("int above table", 1025, b":1025\r\n", b":1025\r\n", 1025, 1025),
    ("int64 max", 2**63 - 1, b":9223372036854775807\r\n", b":9223372036854775807\r\n", 2**63 - 1, 2**63 - 1),
    ("int64 min", -(2**63), b":-9223372036854775808\r\n", b":-9223372036854775808\r\n", -(2**63), -(2**63)),
    ("None", None, b"$-1\r\n", b"_\r\n", None, None),
    ("NULL_ARRAY", NULL_ARRAY, b"*-1\r\n", b"_\r\n", None, None),
    ("empty list", [], b"*0\r\n", b"*0\r\n", [], []),
    (
        "nested list",
        [b"a", 1, [None, b"b"]],
        b"*3\r\n$1\r\na\r\n:1\r\n*2\r\n$-1\r\n$1\r\nb\r\n",
        b"*3\r\n$1\r\na\r\n:1\r\n*2\r\n_\r\n$1\r\nb\r\n",
        [b"a", 1, [None, b"b"]],
        [b"a", 1, [None, b"b"]],
    ),
    ("tuple", (1, b"x"), b"*2\r\n:1\r\n$1\r\nx\r\n", b"*2\r\n:1\r\n$1\r\nx\r\n", [1, b"x"], [1, b"x"]),
    ("simple string", SimpleString("OK"), b"+OK\r\n", b"+OK\r\n", b"OK", b"OK"),
    ("OK", OK, b"+OK\r\n", b"+OK\r\n", b"OK", b"OK"),
    ("PONG", PONG, b"+PONG\r\n", b"+PONG\r\n", b"PONG", b"PONG"),
    ("QUEUED", QUEUED, b"+QUEUED\r\n", b"+QUEUED\r\n", b"QUEUED", b"QUEUED"),
    ("simple string CRLF", SimpleString("a\r\nb"), b"+a  b\r\n", b"+a  b\r\n", b"a  b", b"a  b"),
    (
        "map",
        Map({b"a": 1, b"b": b"x"}),
        b"*4\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n$1\r\nx\r\n",
        b"%2\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n$1\r\nx\r\n",
        [b"a", 1, b"b", b"x"],
        {b"a": 1, b"b": b"x"},
    ),
    ("map from pairs", Map([(b"k", None)]), b"*2\r\n$1\r\nk\r\n$-1\r\n", b"%1\r\n$1\r\nk\r\n_\r\n", [b"k", None], {b"k": None}),
    ("empty map", Map({}), b"*0\r\n", b"%0\r\n", [], {}),
    (
        "map of maps",
        Map({b"m": Map({b"x": 1})}),
        b"*2\r\n$1\r\nm\r\n*2\r\n$1\r\nx\r\n:1\r\n",
        b"%1\r\n$1\r\nm\r\n%1\r\n$1\r\nx\r\n:1\r\n",
        [b"m", [b"x", 1]],
        {b"m": {b"x": 1}},
    ),
    (
        "set",
        Set([b"a", b"b"]),
        b"*2\r\n$1\r\na\r\n$1\r\nb\r\n",
        b"~2\r\n$1\r\na\r\n$1\r\nb\r\n",
        [b"a", b"b"],
        [b"a", b"b"],
    ),
    ("empty set", Set([]), b"*0\r\n", b"~0\r\n", [], []),
    (
        "pairs",
        Pairs([(b"f", b"v"), (b"g", 2)]),
        b"*4\r\n$1\r\nf\r\n$1\r\nv\r\n$1\r\ng\r\n:2\r\n",
        b"*2\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n*2\r\n$1\r\ng\r\n:2\r\n",
        [b"f", b"v", b"g", 2],
        [[b"f", b"v"], [b"g", 2]],
    ),
    ("empty pairs", Pairs([]), b"*0\r\n", b"*0\r\n", [], []),
    ("double", Double(1.5), b"$3\r\n1.5\r\n", b",1.5\r\n", b"1.5", 1.5),
    ("double integral", Double(3.0), b"$1\r\n3\r\n", b",3\r\n", b"3", 3.0),
    ("double negative", Double(-2.25), b"$5\r\n-2.25\r\n", b",-2.25\r\n", b"-2.25", -2.25),
    ("double inf", Double(INF), b"$3\r\ninf\r\n", b",inf\r\n", b"inf", INF),
    ("double -inf", Double(-INF), b"$4\r\n-inf\r\n", b",-inf\r\n", b"-inf", -INF),
    ("plain float", 0.5, b"$3\r\n0.5\r\n", b",0.5\r\n", b"0.5", 0.5),
    ("bool true", Bool(True), b":1\r\n", b"#t\r\n", 1, True),
    ("bool false", Bool(False), b":0\r\n", b"#f\r\n", 0, False),
    ("bool from int", Bool(7), b":1\r\n", b"#t\r\n", 1, True),
    (
        "verbatim",
        Verbatim(b"a\r\nb"),
        b"$4\r\na\r\nb\r\n",
        b"=8\r\ntxt:a\r\nb\r\n",
        b"a\r\nb",
        b"a\r\nb",  # hiredis drops the format
    ),
    ("verbatim mkd", Verbatim(b"# x", fmt="mkd"), b"$3\r\n# x\r\n", b"=7\r\nmkd:# x\r\n", b"# x", b"# x"),
    (
        "mixed RESP3 types in an array",
        [Bool(True), Double(2.5), None, Set([1]), Map({1: 2})],
        b"*5\r\n:1\r\n$3\r\n2.5\r\n$-1\r\n*1\r\n:1\r\n*2\r\n:1\r\n:2\r\n",
        b"*5\r\n#t\r\n,2.5\r\n_\r\n~1\r\n:1\r\n%1\r\n:1\r\n:2\r\n",
        [1, b"2.5", None, [1], [1, 2]],
        [True, 2.5, None, [1], {1: 2}],
    ),
]


@pytest.mark.parametrize("name,reply,resp2,resp3,parsed2,parsed3", CASES, ids=[c[0] for c in CASES])
def test_encode(name, reply, resp2, resp3, parsed2, parsed3) -> None:
    assert encode(reply, 2) == resp2
    assert encode(reply, 3) == resp3
    assert encode(reply) == resp2  # RESP2 is the default
    value2, value3 = parse(resp2), parse(resp3)
    assert value2 == parsed2 and type(value2) is type(parsed2)
    assert value3 == parsed3 and type(value3) is type(parsed3)


def test_double_nan() -> None:
    assert encode(Double(math.nan), 2) == b"$3\r\nnan\r\n"
    assert encode(Double(math.nan), 3) == b",nan\r\n"
    assert math.isnan(parse(encode(Double(math.nan), 3)))


@pytest.mark.parametrize(
    "text,wire,code",
    [
        ("WRONGTYPE Operation against a key holding the wrong kind of value",
         b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n", "WRONGTYPE"),
        ("ERR syntax error", b"-ERR syntax error\r\n", "ERR"),
        ("value is wrong", b"-ERR value is wrong\r\n", "ERR"),
        ("Protocol error: x", b"-ERR Protocol error: x\r\n", "ERR"),
        ("NOAUTH Authentication required.", b"-NOAUTH Authentication required.\r\n", "NOAUTH"),
        ("bad\r\nline", b"-ERR bad  line\r\n", "ERR"),
        ("ERR unknown command 'a\nb'", b"-ERR unknown command 'a b'\r\n", "ERR"),
    ],
)
def test_error_reply(text: str, wire: bytes, code: str) -> None:
    reply = ErrorReply(text)
    assert reply.code == code
    assert encode(reply, 2) == wire
    assert encode(reply, 3) == wire
    parsed = parse(wire)
    assert isinstance(parsed, hiredis.ReplyError)
    assert str(parsed) == wire[1:-2].decode()


def test_reply_equality() -> None:
    assert SimpleString("OK") == OK and hash(SimpleString("OK")) == hash(OK)
    assert ErrorReply("x") == ErrorReply("ERR x")
    assert Map({b"a": 1}) == Map([(b"a", 1)])
    assert Pairs([(1, 2)]) == Pairs([(1, 2)])


@pytest.mark.parametrize("value", [True, False])
def test_bool_is_refused(value: bool) -> None:
    with pytest.raises(TypeError):
        encode(value)
    with pytest.raises(TypeError):
        encode([b"ok", value], 3)


@pytest.mark.parametrize("value", [object(), {b"a": 1}, {1, 2}, 1j, b"x".decode])
def test_unknown_types_are_refused(value) -> None:
    with pytest.raises(TypeError):
        encode(value)


# -- format_double ---------------------------------------------------------------
@pytest.mark.parametrize(
    "value,text",
    [
        (INF, b"inf"),
        (-INF, b"-inf"),
        (0.0, b"0"),
        (3.0, b"3"),
        (-2.0, b"-2"),
        (1e16, b"10000000000000000"),
        (2.0**53, b"9007199254740992"),
        (1.5, b"1.5"),
        (-2.25, b"-2.25"),
        (0.1, b"0.1"),
        (0.30000000000000004, b"0.30000000000000004"),
        (123.456, b"123.456"),
        (3.141592653589793, b"3.141592653589793"),
        (0.0001, b"0.0001"),
        (1e21, b"1e+21"),
        (1e300, b"1e+300"),
        (1.2345e-10, b"1.2345e-10"),
        (5e-324, b"5e-324"),
    ],
)
def test_format_double(value: float, text: bytes) -> None:
    assert format_double(value) == text
    assert float(text) == value


def test_format_double_nan() -> None:
    assert format_double(math.nan) == b"nan"


# What Redis 7.2+ sends (src/util.c d2string: "-0" for negative zero, plain
# digits for integral values up to LLONG_MAX/2, otherwise fpconv_dtoa, which
# writes exponents without zero padding and small numbers like 1e-05 as
# 0.00001).
@pytest.mark.parametrize(
    "value,redis_text",
    [
        (-0.0, b"-0"), (1e17, b"100000000000000000"), (1e-05, b"0.00001"), (1.5e-07, b"1.5e-7"),
        (1e20, b"1e+20"), (-2.5e-300, b"-2.5e-300"), (0.1, b"0.1"), (3.5, b"3.5"), (-1.25, b"-1.25"),
        (123456.789, b"123456.789"), (0.30000000000000004, b"0.30000000000000004"),
        (4.611686018427388e18, b"4611686018427387904"), (1e19, b"1e+19"),
        (1.7976931348623157e308, b"1.7976931348623157e+308"), (1.2345e-4, b"1.2345e-4"), (0.0012345, b"0.0012345"),
    ],
)
def test_format_double_matches_redis_d2string(value: float, redis_text: bytes) -> None:
    assert format_double(value) == redis_text


@given(st.floats(allow_nan=False))
def test_format_double_round_trips(value: float) -> None:
    text = format_double(value)
    assert float(text) == value
    assert parse(encode(Double(value), 3)) == value
    assert parse(encode(Double(value), 2)) == text


# -- random reply trees through hiredis ---------------------------------------------
_scalars = (
    st.binary(max_size=20)
    | st.integers(-(2**63), 2**63 - 1)
    | st.none()
    | st.text(max_size=5).map(lambda t: SimpleString(t.replace("\r", "").replace("\n", "")))
    | st.booleans().map(Bool)
    | st.floats(allow_nan=False).map(Double)
    | st.binary(max_size=10).map(Verbatim)
)
_replies = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.binary(max_size=5), children, max_size=3).map(Map)
    | st.lists(st.tuples(st.binary(max_size=5), children), max_size=3).map(Pairs)
    | st.lists(st.binary(max_size=5) | st.integers(0, 9), max_size=3).map(Set),
    max_leaves=12,
)


def expected(reply, proto: int):
    """What hiredis should give for ``reply`` encoded in ``proto``."""
    t = type(reply)
    if t is list:
        return [expected(item, proto) for item in reply]
    if t is SimpleString:
        return reply.text.encode()
    if t is Bool:
        return reply.value if proto == 3 else int(reply.value)
    if t is Double:
        return reply.value if proto == 3 else format_double(reply.value)
    if t is Verbatim:
        return reply.data
    if t is Set:
        return [expected(item, proto) for item in reply.members]
    if t is Map:
        if proto == 3:
            return {key: expected(value, proto) for key, value in reply.items}
        return [x for key, value in reply.items for x in (key, expected(value, proto))]
    if t is Pairs:
        if proto == 3:
            return [[key, expected(value, proto)] for key, value in reply.items]
        return [x for key, value in reply.items for x in (key, expected(value, proto))]
    return reply


@given(_replies)
def test_random_replies_round_trip_through_hiredis(reply) -> None:
    for proto in (2, 3):
        wire = encode(reply, proto)
        assert parse(wire) == expected(reply, proto)
        # A reply split anywhere still parses the same (framing is exact).
        r = reader()
        middle = len(wire) // 2
        r.feed(wire[:middle])
        assert r.gets() is INCOMPLETE
        r.feed(wire[middle:])
        assert r.gets() == expected(reply, proto)
