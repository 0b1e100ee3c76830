"""DUMP and RESTORE of streams against redis-server 7.0, both ways.

A stream built on one side is DUMPed there and RESTOREd on the other; both
then show the same XINFO STREAM FULL (all entries, groups, PELs with their
delivery times and counts, consumers with their seen-times; radix-tree-*
aside, see streams_info.py), XRANGE and XPENDING (idle times aside: each
server reads its own clock). Then the same commands run on both (reads
through the groups, claims, acks, new entries) and answer alike, compared
as tests/compat/test_diff_streams.py compares (times by kind). A property
sends random streams makodb -> redis -> makodb, and the hand-made payloads
of tests/unit/test_rdb_stream.py load, or are refused, as Redis does with
``sanitize-dump-payload yes``.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from makod.kv.rdb import with_footer
from tests.compat.test_diff_dump import _sides
from tests.compat.test_diff_dump import _transfer as dump_transfer
from tests.compat.test_diff_streams import _RADIX, _normalise, _pairs
from tests.compat.test_differential import B, Err, real, run_ours, run_real  # noqa: F401
from tests.unit.harness import Harness
from tests.unit.test_rdb_stream import STREAM_LEGACY, STREAM_MALFORMED, STREAM_STRICTER

U64 = 2**64 - 1


def _groups_setup() -> list[list[bytes]]:
    return [
        B("XADD", "k", "1-1", "a", 1, "b", 2), B("XADD", "k", "1-2", "a", 3, "b", 4), B("XADD", "k", "5-0", "c", "x"),
        B("XADD", "k", "6-0", "a", 5, "b", 6), B("XGROUP", "CREATE", "k", "g", "0"),
        B("XREADGROUP", "GROUP", "g", "alice", "COUNT", 2, "STREAMS", "k", ">"),
        B("XREADGROUP", "GROUP", "g", "bob", "COUNT", 1, "STREAMS", "k", ">"), B("XACK", "k", "g", "1-1"),
        B("XGROUP", "CREATECONSUMER", "k", "g", "carol"), B("XGROUP", "CREATE", "k", "h", "$"),
        B("XCLAIM", "k", "g", "bob", 0, "1-2"), B("XREADGROUP", "GROUP", "g", "bob", "STREAMS", "k", "0"),
        B("XGROUP", "CREATE", "k", "old", "1-2"), B("XDEL", "k", "6-0"),
    ]


def _many_nodes() -> list[list[bytes]]:
    setup = []
    for i in range(1, 251):
        extra = ["n", i * 7919 - 10**6] if i % 3 else ["other", "y" * (i % 70)]
        setup.append(B("XADD", "k", f"{i // 4}-{i % 4}", f"f{i % 5}", i, *extra))
    setup += [B("XDEL", "k", "2-1", "30-0", "62-2"), B("XGROUP", "CREATE", "k", "g", "0")]
    setup += [B("XREADGROUP", "GROUP", "g", f"c{j}", "COUNT", 60, "STREAMS", "k", ">") for j in range(3)]
    return setup + [B("XACK", "k", "g", *[f"{i}-0" for i in range(5, 40)])]


CASES: dict[str, list[list[bytes]]] = {
    "plain": [B("XADD", "k", "1-1", "a", 1, "b", 2), B("XADD", "k", "1-2", "a", 3, "b", 4), B("XADD", "k", "2-0", "c", "x")],
    "deletions": [B("XADD", "k", f"{i}-0", "f", i) for i in range(1, 11)] + [B("XDEL", "k", "1-0", "5-0", "10-0")],
    "maxlen": [B("XADD", "k", "MAXLEN", 10, f"{i}-0", "f", i, "g", "v") for i in range(1, 31)],
    "minid": [B("XADD", "k", f"{i}-{i}", "f", i) for i in range(1, 21)] + [B("XTRIM", "k", "MINID", "12-0")],
    "groups": _groups_setup(),
    "empty_with_groups": [B("XGROUP", "CREATE", "k", "g", "$", "MKSTREAM"), B("XGROUP", "CREATE", "k", "g2", "0")],
    "emptied_with_pending": [
        B("XADD", "k", "1-0", "a", 1), B("XADD", "k", "2-0", "a", 2), B("XGROUP", "CREATE", "k", "g", "0"),
        B("XREADGROUP", "GROUP", "g", "alice", "STREAMS", "k", ">"), B("XDEL", "k", "1-0", "2-0"),
    ],
    "many_nodes": _many_nodes(),
    "field_sets": [
        B("XADD", "k", "1-0", "a", 1), B("XADD", "k", "2-0", "a", 1, "a", 2), B("XADD", "k", "3-0", "123", "-5", "007", 2**63 - 1),
        B("XADD", "k", "4-0", "a", "z" * 5000), B("XADD", "k", "5-0", "", ""), B("XADD", "k", "6-0", "a", -(2**63)),
        B("XADD", "k", "7-0", "b", "\x00\xff"),
    ],
    "extreme_ids": [
        B("XADD", "k", "0-1", "a", 1), B("XADD", "k", f"5-{U64}", "a", 2), B("XADD", "k", f"{U64}-0", "b", 3),
        B("XGROUP", "CREATE", "k", "g", f"5-{U64}"),
    ],
    "xsetid": [B("XADD", "k", "1-0", "a", 1), B("XSETID", "k", "100-5", "ENTRIESADDED", 50, "MAXDELETEDID", "10-0")],
}

# Run on both sides after the transfer: they must go on alike.
FOLLOW_UP = [
    B("XREADGROUP", "GROUP", "g", "zed", "COUNT", 2, "STREAMS", "k", ">"),
    B("XREADGROUP", "GROUP", "g", "alice", "STREAMS", "k", "0"),
    B("XACK", "k", "g", "1-2", "5-0"), B("XCLAIM", "k", "g", "zed", 0, "6-0", "1-1", "JUSTID"),
    B("XAUTOCLAIM", "k", "g", "carol", 0, "0-0", "COUNT", 3), B("XPENDING", "k", "g"),
    B("XPENDING", "k", "g", "-", "+", 100), B("XINFO", "GROUPS", "k"), B("XINFO", "CONSUMERS", "k", "g"),
    B("XADD", "k", "MAXLEN", 50, "9000000000000-0", "new", "entry"), B("XINFO", "STREAM", "k", "FULL"), B("XLEN", "k"),
    B("XREADGROUP", "GROUP", "h", "hank", "STREAMS", "k", ">"), B("XINFO", "STREAM", "k", "FULL", "COUNT", 0),
]


def _state(run, key: bytes) -> list:
    """Everything a stream shows, idle times and radix-tree-* aside."""
    info = run(B("XINFO", "STREAM", key, "FULL", "COUNT", 0))
    out = [_pairs(info, lambda k, v: "radix" if k in _RADIX else v), run(B("XRANGE", key, "-", "+"))]
    for group in run(B("XINFO", "GROUPS", key)):
        name = group[1]
        out.append(run(B("XPENDING", key, name)))
        pending = run(B("XPENDING", key, name, "-", "+", 1000))
        out.append([[sid, owner, "idle", count] for sid, owner, idle, count in pending])
    return out


def _transfer(source, dest, setup: list[list[bytes]]) -> bytes:
    payload = dump_transfer(source, dest, setup, _state)
    for number, args in enumerate(FOLLOW_UP):
        assert _normalise(args, dest(args)) == _normalise(args, source(args)), (number, args)
    return payload


@pytest.mark.parametrize("name", sorted(CASES))
def test_redis_to_makodb(real: Any, name: str) -> None:  # noqa: F811
    theirs, ours = _sides(real, Harness())
    theirs([b"FLUSHALL"])
    assert _transfer(theirs, ours, CASES[name])[0] == 19


@pytest.mark.parametrize("name", sorted(CASES))
def test_makodb_to_redis(real: Any, name: str) -> None:  # noqa: F811
    theirs, ours = _sides(real, Harness())
    theirs([b"FLUSHALL"])
    _transfer(ours, theirs, CASES[name])


# -- property: makodb -> redis -> makodb --------------------------------------------------------

_field = st.sampled_from([b"a", b"b", b"c", b"12", b"-7", b"", b"x" * 70])


@st.composite
def _stream_setups(draw) -> list[list[bytes]]:
    setup, ms = [], 0
    for _ in range(draw(st.integers(0, 160))):
        ms += draw(st.sampled_from([0, 1, 1, 2, 1000]))
        kv = draw(st.lists(st.tuples(_field, _field), min_size=1, max_size=4))
        setup.append([b"XADD", b"k", b"%d-*" % ms, *[x for p in kv for x in p]])
    if not setup:
        setup.append(B("XGROUP", "CREATE", "k", "g0", "$", "MKSTREAM"))
    for i in range(draw(st.integers(0, 10))):  # XDEL by position: IDs are known only by their order
        setup.append([b"XDEL-NTH", b"%d" % draw(st.integers(0, 200))])
    for g in range(draw(st.integers(0, 2))):
        setup.append(B("XGROUP", "CREATE", "k", f"g{g}", "0", "MKSTREAM"))
        for c in draw(st.lists(st.sampled_from(["c1", "c2", "c3"]), max_size=4)):
            setup.append(B("XREADGROUP", "GROUP", f"g{g}", c, "COUNT", draw(st.integers(1, 60)), "STREAMS", "k", ">"))
        if draw(st.booleans()):
            setup.append(B("XACK", "k", f"g{g}", *[f"{ms // 2}-{i}" for i in range(3)]))
    if draw(st.booleans()):
        setup.append(B("XTRIM", "k", "MAXLEN", draw(st.integers(0, 100))))
    return setup


def _build(ours, setup: list[list[bytes]]) -> None:
    for args in setup:
        if args[0] == b"XDEL-NTH":
            ids = [e[0] for e in ours(B("XRANGE", "k", "-", "+"))]
            if ids:
                ours([b"XDEL", b"k", ids[int(args[1]) % len(ids)]])
        else:
            ours(args)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(setup=_stream_setups())
def test_round_trip_through_redis(real: Any, setup: list[list[bytes]]) -> None:  # noqa: F811
    theirs, ours = _sides(real, Harness())
    _build(ours, setup)
    payload = ours(B("DUMP", "k"))
    assert theirs([b"RESTORE", b"k", b"0", payload, b"REPLACE"]) == b"OK"
    assert _state(theirs, b"k") == _state(ours, b"k")
    assert ours([b"RESTORE", b"k2", b"0", theirs(B("DUMP", "k"))]) == b"OK"
    assert _state(ours, b"k2") == _state(ours, b"k")


# -- hand-made payloads, as Redis loads or refuses them ----------------------------------------


def test_hand_made_payloads_as_sanitizing_redis(real: Any) -> None:  # noqa: F811
    theirs, ours = _sides(real, Harness())
    real.execute_command("CONFIG", "SET", "sanitize-dump-payload", "yes")
    try:
        for name, body in [(n, b) for n, (b, _) in STREAM_LEGACY.items()] + list(STREAM_MALFORMED.items()):
            args = [b"RESTORE", b"k", b"0", with_footer(body), b"REPLACE"]
            reply = theirs(args)
            assert ours(args) == reply, name
            if reply == b"OK":
                assert _state(ours, b"k") == _state(theirs, b"k"), name
        for name, body in STREAM_STRICTER.items():  # Redis loads these; makodb refuses them
            args = [b"RESTORE", b"k", b"0", with_footer(body), b"REPLACE"]
            # Debian's later builds of 7.0.15 (deb12u10) refuse "ID owned by two consumers" too.
            assert theirs(args) in (b"OK", Err("ERR Bad data format")), name
            assert ours(args) == Err("ERR Bad data format"), name
    finally:
        real.execute_command("CONFIG", "SET", "sanitize-dump-payload", "no")
