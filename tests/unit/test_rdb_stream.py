"""Streams in DUMP payloads (makod/kv/rdb_stream.py): Redis's own, hand-made, hostile.

``STREAM_LEGACY`` and ``STREAM_MALFORMED`` are also RESTOREd into
redis-server 7.0 with ``sanitize-dump-payload yes`` (tests/compat/
test_diff_dump_streams.py), which must load and refuse the same;
``STREAM_STRICTER`` are payloads Redis loads but makodb refuses (they break
invariants makodb's stream keeps; Redis never writes them).
"""

from __future__ import annotations

import struct

import pytest

from makod.kv.rdb import BadFormat, RdbError, _put_length, decode_payload, encode_payload, with_footer
from makod.kv.records import KIND_STREAM
from tests.unit.harness import Harness
from tests.unit.test_rdb import REDIS_STREAM, _blob, _listpack, _string

# -- building stream bodies by hand ---------------------------------------------------------


def _len(*ns: int) -> bytes:
    out = bytearray()
    for n in ns:
        _put_length(out, n % 2**64)
    return bytes(out)


def _id16(sid: tuple) -> bytes:
    return struct.pack(">QQ", *sid)


def _ints(*xs: int) -> list[bytes]:
    return [b"%d" % x for x in xs]


def _node(master: tuple, items: list[bytes]) -> bytes:
    return _string(_id16(master)) + _blob(_listpack(items))


def _group(name: bytes, last: tuple, read, pel: list, consumers: list) -> bytes:
    """A group; ``read`` None for type 15. pel: (id, time, count); consumers: (name, seen, [id])."""
    out = _string(name) + _len(*last) + (b"" if read is None else _len(read))
    out += _len(len(pel)) + b"".join(_id16(i) + struct.pack("<q", t) + _len(c) for i, t, c in pel)
    out += _len(len(consumers))
    for cname, seen, ids in consumers:
        out += _string(cname) + struct.pack("<q", seen) + _len(len(ids)) + b"".join(map(_id16, ids))
    return out


# Every element is a listpack string, the integers too (Redis reads those as
# integers: lpGetIntegerIfValid). One node, master 1-1 with field f: 1-1 {f: v} (same fields), 2-5 {g: w}, 3-0 deleted {f: z}.
ITEMS = (
    _ints(2, 1, 1) + [b"f"] + _ints(0)
    + _ints(2, 0, 0) + [b"v"] + _ints(4)
    + _ints(0, 1, 4, 1) + [b"g", b"w"] + _ints(6)
    + _ints(3, 2, -1) + [b"z"] + _ints(4)
)
PEL = [((1, 1), 1000, 2), ((2, 5), 2000, 1)]
CONSUMERS = [(b"c1", 1500, [(2, 5)]), (b"c2", 900, [(1, 1)])]
GROUP = _group(b"g", (2, 5), 2, PEL, CONSUMERS)


def _body(nodes=None, length=2, last=(3, 0), first=(1, 1), maxdel=(3, 0), added=3, groups=None, v1=False) -> bytes:
    nodes = [_node((1, 1), ITEMS)] if nodes is None else nodes
    groups = [GROUP] if groups is None else groups
    out = bytes([15 if v1 else 19]) + _len(len(nodes)) + b"".join(nodes) + _len(length, *last)
    if not v1:
        out += _len(*first, *maxdel, added)
    return out + _len(len(groups)) + b"".join(groups)


BASE_WIRE = [
    [[1, 1, [b"f", b"v"]], [2, 5, [b"g", b"w"]]], [3, 0], [3, 0], 3,
    [[b"g", [2, 5], 2, [[1, 1, b"c2", 1000, 2], [2, 5, b"c1", 2000, 1]], [[b"c1", 1500], [b"c2", 900]]]],
]


def _items(**at: bytes) -> list[bytes]:
    """ITEMS with some elements replaced: ``at={"i3": b"x"}`` sets element 3."""
    items = list(ITEMS)
    for where, value in at.items():
        items[int(where[1:])] = value
    return items


STREAM_LEGACY = {
    "listpacks_2": (_body(), BASE_WIRE),
    # Type 15 (Redis 5/6): no first/deleted IDs, entries-added or read counters.
    "listpacks_1": (
        _body(v1=True, groups=[_group(b"g", (1, 1), None, PEL[:1], [(b"c2", 900, [(1, 1)])])]),
        [BASE_WIRE[0], [3, 0], [0, 0], 2, [[b"g", [1, 1], None, [[1, 1, b"c2", 1000, 2]], [[b"c2", 900]]]]],
    ),
    "empty_with_group": (
        _body(nodes=[], length=0, first=(0, 0), added=5, groups=[_group(b"g", (0, 0), -1, [], [])]),
        [[], [3, 0], [3, 0], 5, [[b"g", [0, 0], -1, [], []]]],
    ),
}

STREAM_MALFORMED = {  # Redis 7.0 refuses these too
    "node key of 15 bytes": _body(nodes=[_string(b"\x00" * 15) + _blob(_listpack(ITEMS))]),
    "lp-count wrong": _body(nodes=[_node((1, 1), _items(i9=b"5"))]),
    "master terminator": _body(nodes=[_node((1, 1), _items(i4=b"1"))]),
    "empty listpack node": _body(nodes=[_string(_id16((1, 1))) + _blob(_listpack([]))]),
    "length without nodes": _body(nodes=[], first=(0, 0)),
    "node twice": _body(nodes=[_node((1, 1), ITEMS)] * 2),
    "more entries than the listpack": _body(nodes=[_node((1, 1), _items(i0=b"3"))]),
    "fewer entries than the listpack": _body(nodes=[_node((1, 1), _items(i0=b"1"))]),
    "flags not an integer": _body(nodes=[_node((1, 1), _items(i5=b"x"))]),
    "consumer PEL ID not in the group PEL": _body(groups=[_group(b"g", (2, 5), 2, PEL[:1], CONSUMERS)]),
    "duplicate group PEL ID": _body(groups=[_group(b"g", (2, 5), 2, PEL + PEL[:1], CONSUMERS)]),
    "duplicate consumer": _body(groups=[_group(b"g", (2, 5), 2, PEL, CONSUMERS + [(b"c1", 1, [])])]),
    "duplicate group": _body(groups=[GROUP, GROUP]),
    "group PEL entry without a consumer": _body(groups=[_group(b"g", (2, 5), 2, PEL, CONSUMERS[:1])]),
    "huge node count": b"\x13\x80\x00\x0f\x42\x40" + _node((1, 1), ITEMS),
    "huge PEL count": _body(groups=[_string(b"g") + _len(1, 1, 0) + b"\x80\x00\x0f\x42\x40" + b"\x00" * 30]),
    "truncated group": _body()[:-3],
    "stream 7.2 (type 21)": b"\x15" + _body()[1:],
}

# Redis 7.0.15 refuses this one too, but frees the PEL entry its group still
# holds: a later free crashes the server, so the compat test leaves it out.
STREAM_MALFORMED_UNSAFE = {
    "consumer PEL ID twice": _body(groups=[_group(b"g", (2, 5), 2, PEL, [(b"c1", 1, [(2, 5), (2, 5)]), CONSUMERS[1]])]),
}

STREAM_STRICTER = {  # Redis 7.0 loads these; makodb refuses
    "length mismatch": _body(length=3),
    "master counts mismatch": _body(nodes=[_node((1, 1), _items(i0=b"1", i1=b"2"))]),
    "nodes out of order": _body(
        nodes=[_node((5, 0), _ints(1, 0, 1) + [b"f"] + _ints(0, 2, 0, 0) + [b"v"] + _ints(4)), _node((1, 1), ITEMS)],
        length=3, last=(5, 0),
    ),
    "entry below its master ID": _body(nodes=[_node((1, 1), _items(i6=b"-1"))]),
    "ID owned by two consumers": _body(groups=[_group(b"g", (2, 5), 2, PEL, CONSUMERS + [(b"c3", 1, [(1, 1)])])]),
    "last ID below an entry": _body(last=(2, 9), maxdel=(0, 0)),
    "max deleted ID above the last ID": _body(maxdel=(4, 0)),
    "entries-added below the length": _body(added=1),
    "read counter -2": _body(groups=[_group(b"g", (2, 5), -2, PEL, CONSUMERS)]),
    "entry flags 4": _body(nodes=[_node((1, 1), _items(i5=b"6"))]),
    "entry without fields": _body(nodes=[_node((1, 1), ITEMS[:13] + _ints(0, 4) + ITEMS[17:])]),
}


@pytest.mark.parametrize("name", sorted(STREAM_LEGACY))
def test_hand_made_streams_decode(name: str) -> None:
    body, wire = STREAM_LEGACY[name]
    assert decode_payload(with_footer(body)) == (KIND_STREAM, wire)


_REFUSED = {**STREAM_MALFORMED, **STREAM_MALFORMED_UNSAFE, **STREAM_STRICTER}


@pytest.mark.parametrize("name", sorted(_REFUSED))
def test_malformed_streams_are_refused(name: str) -> None:
    with pytest.raises(BadFormat):
        decode_payload(with_footer(_REFUSED[name]))


def test_redis_stream_decodes() -> None:
    t1, t2, t3 = 1795735878615, 1795735878618, 1795735878621
    assert decode_payload(REDIS_STREAM) == (KIND_STREAM, [
        [[1, 1, [b"a", b"1"]], [5, 0, [b"b", b"x", b"c", b"300"]], [6, 0, [b"a", b"-7"]]], [6, 0], [1, 2], 4,
        [
            [b"g", [6, 0], 4, [[1, 1, b"alice", t1, 1], [5, 0, b"alice", t1, 1], [6, 0, b"bob", t2, 1]],
             [[b"alice", t1], [b"bob", t2], [b"carol", t3]]],
            [b"h", [6, 0], -1, [], []],
        ],
    ])


def test_every_truncation_is_refused() -> None:
    # Redis reads the value from the whole payload: cut right before
    # entries-added (then the group count), the footer's b"\n\x00" reads as entries-added 10 and no
    # groups (Redis loads that too). Every other cut is refused.
    body = REDIS_STREAM[:-10]
    loaded = []
    for cut in range(len(body)):
        try:
            decode_payload(with_footer(body[:cut]))
        except RdbError:
            continue
        loaded.append(cut)
    assert loaded == [body.index(b"\x04\x02\x01g")]


U64 = 2**64 - 1
WIRES = [
    [[], [0, 0], [0, 0], 0, []],
    BASE_WIRE,
    # Extreme IDs: 64-bit wrapping ms and seq differences from the master ID.
    [[[0, 1, [b"a", b"1"]], [5, U64, [b"a", b"2"]], [U64, 0, [b"b", b""]]], [U64, 0], [0, 0], 3, []],
    # Several nodes, field sets changing, integers, long and binary values, a read counter of -1.
    [
        [[i, i % 3, [b"f%d" % (i % 4), b"v" * (i * 13 % 5000), b"n", b"%d" % (i * 997 - 2**62)]] for i in range(1, 260)],
        [300, 0], [0, 0], 259,
        [[b"g", [7, 1], -1, [[3, 0, b"c", -5, 2**40]], [[b"c", 0], [b"idle", 2**62]]], [b"h", [0, 0], 0, [], []]],
    ],
]


@pytest.mark.parametrize("wire", WIRES)
def test_encode_decode_round_trip(wire) -> None:
    payload = encode_payload(KIND_STREAM, wire)
    assert payload[0] == 19
    assert decode_payload(payload) == (KIND_STREAM, wire)


def test_dump_restore_on_a_shard() -> None:
    h = Harness()
    for i in range(1, 150):
        h.run("XADD", "s", f"{i}-0", "f", i, *(["x", "y"] if i % 7 else []))
    h.run("XDEL", "s", "3-0", "77-0")
    h.run("XGROUP", "CREATE", "s", "g", "0")
    h.run("XREADGROUP", "GROUP", "g", "a", "COUNT", "5", "STREAMS", "s", ">")
    h.run("XACK", "s", "g", "2-0")
    payload = h.run("DUMP", "s")
    assert h.run("RESTORE", "t", "0", payload).text == "OK"
    assert h.run("DUMP", "t") == payload
    for cmd in (["XINFO", "STREAM", "{}", "FULL", "COUNT", "0"], ["XPENDING", "{}", "g", "-", "+", "10"]):
        assert h.run(*[a.format("t") for a in cmd]) == h.run(*[a.format("s") for a in cmd])
    h.advance(10)
    for key in ("s", "t"):  # both go on alike: the next undelivered entry, then a new one
        assert h.run("XREADGROUP", "GROUP", "g", "b", "COUNT", "1", "STREAMS", key, ">").items[0][1][0][0] == b"7-0"
        assert h.run("XADD", key, "*", "k", "v") == b"%d-0" % h.now_ms


def test_type_15_groups_get_an_estimated_read_counter() -> None:
    h = Harness()
    assert h.run("RESTORE", "s", "0", with_footer(STREAM_LEGACY["listpacks_1"][0])).text == "OK"
    assert dict(h.run("XINFO", "GROUPS", "s")[0].items)[b"entries-read"] == 1  # its last ID is the first entry
