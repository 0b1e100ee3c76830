"""Replies travel between nodes (a request forwarded to the leader that owns
its keys) as msgpack with extension types: every reply value must come back
as it left, down to the digits a Double is written with."""

from __future__ import annotations

import pytest

from makod.core.entries import pack_value, unpack_value
from makod.kv.replies import (
    NULL_ARRAY, Blocked, Bool, Double, ErrorReply, Map, Pairs, Set, SimpleString, Verbatim,
)
from resp.replies import encode

REPLIES = [
    Double(1.5), Double(13.361389338970184, b"13.36138933897018433"), Double(float("inf")),
    [Double(0.1, b"0.10000000000000001"), None, b"x", 7], ErrorReply("ERR boom"), SimpleString("OK"),
    Map([(b"k", Double(2.0, b"2"))]), Map([(b"s", [[b"1-0", [b"f", b"v"]]])], nested=True), Set([b"a", b"b"]),
    Pairs([(b"m", Double(1.0))]), Bool(True), Verbatim(b"text", "txt"), NULL_ARRAY,
    Blocked(100, None, [b"XREAD", b"STREAMS", b"s", b"1-0"]),
]


@pytest.mark.parametrize("reply", REPLIES, ids=repr)
def test_a_reply_crosses_nodes_unchanged(reply) -> None:
    back = unpack_value(pack_value(reply))
    if isinstance(reply, Blocked):
        assert (back.timeout_ms, back.reply, back.argv) == (reply.timeout_ms, reply.reply, reply.argv)
        return
    for proto in (2, 3):
        assert encode(back, proto) == encode(reply, proto)
