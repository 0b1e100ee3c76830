"""The RDB payload codec (makod/kv/rdb.py, rdb_compact.py) and DUMP/RESTORE on one shard.

Payloads redis-server 7.0 made are pinned here as bytes (captured with
DUMP), the encodings it no longer writes (ziplists, quicklist 1, text
scores) are built by hand, and hostile payloads (truncated, huge declared
sizes, random and mutated bytes with a valid CRC) must raise ``RdbError``
and nothing else.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from makod.kv.rdb import (
    BadChecksum,
    BadFormat,
    RdbError,
    crc64,
    decode_payload,
    encode_payload,
    with_footer,
)
from makod.kv.rdb_compact import _backlen_bytes, lzf_decompress
from makod.codec import pack
from makod.kv.errors import CommandError
from makod.kv.records import KIND_HASH, KIND_LIST, KIND_NATIVE, KIND_SET, KIND_STREAM, KIND_STRING, KIND_ZSET, Record
from makod.kv.types.dump import to_neutral
from tests.unit.harness import Harness

# DUMPs from redis-server 7.0.15.
REDIS_LIST = (  # RPUSH l a 1 -4096 70000 2**40 x*70: a quicklist 2 node, its listpack LZF-compressed
    b"\x12\x01\x02\xc3'@g\x13g\x00\x00\x00\x06\x00\x81a\x02\x01\x01\xd0\x00\x02\xf2p\x11\x01\x04\xf4 \x12"
    b"\x08\x00\x00\x01\x00\x00\t\xe0Fx\xe0<\x00\x01H\xff\n\x00\xbfc\xfe\xa3N\xec\x1a\x04"
)
REDIS_INTSET = (  # SADD i 1 2**40 -7: an intset of 8-byte members, LZF-compressed
    b"\x0b\xc3\x16 \x04\x08\x00\x00\x00\x03 \x03\x01\xf9\xff\x80\x00\x00\x01 \x0b\xe0\x00\x00 \x0c\n\x00"
    b"\x7fO\xd3\xd9\x82\x1e\xac\x11"
)
REDIS_ZSET = (  # ZADD z 1.5 a -3 b: a listpack
    b"\x11\x15\x15\x00\x00\x00\x04\x00\x81b\x02\xdf\xfd\x02\x81a\x02\x831.5\x04\xff\n\x00P\x07\xbaQ\x7f8\x90\xcd"
)
REDIS_HASH = (  # HSET h f v n 300: a listpack
    b"\x10\x13\x13\x00\x00\x00\x04\x00\x81f\x02\x81v\x02\x81n\x02\xc1,\x02\xff\n\x00\xb4\xbc/l[\\\xb19"
)
REDIS_LZF = b"\x00\xc3\x10@P\x08abcdefgha\xe0<\x07\x01gh\n\x00\r\xb0\xc4t]\x88\x8f<"  # SET lzf abcdefgh*10
REDIS_PAYLOADS = [REDIS_LIST, REDIS_INTSET, REDIS_ZSET, REDIS_HASH, REDIS_LZF]


def test_crc64_is_redis_jones() -> None:
    assert crc64(b"123456789") == 0xE9C6D914C4B8D9CA  # src/crc64.c's test vector


def test_redis_payloads_decode() -> None:
    assert decode_payload(REDIS_LIST) == (
        KIND_LIST, [b"a", b"1", b"-4096", b"70000", b"1099511627776", b"x" * 70]
    )
    assert decode_payload(REDIS_INTSET) == (KIND_SET, [b"-7", b"1", b"1099511627776"])
    assert decode_payload(REDIS_ZSET) == (KIND_ZSET, [(b"b", -3.0), (b"a", 1.5)])
    assert decode_payload(REDIS_HASH) == (KIND_HASH, {b"f": b"v", b"n": b"300"})
    assert decode_payload(REDIS_LZF) == (KIND_STRING, b"abcdefgh" * 10)


VALUES = [
    (KIND_STRING, b""),
    (KIND_STRING, b"-2147483648"),
    (KIND_STRING, b"2147483648"),
    (KIND_STRING, b"x" * 20000),
    (KIND_LIST, [b"a", b"", b"7", b"y" * 70000]),
    (KIND_SET, [b"1", b"a", b"-300"]),
    (KIND_ZSET, [(b"a", float("-inf")), (b"b", -0.5), (b"c", 1e300)]),
    (KIND_HASH, {b"f": b"1", b"": b"v" * 100}),
]


@pytest.mark.parametrize("kind,value", VALUES)
def test_encode_decode_round_trip(kind: int, value) -> None:
    assert decode_payload(encode_payload(kind, value)) == (kind, value)


# -- encodings Redis 7.0 reads but no longer writes, built by hand ----------------------------


def _string(s: bytes) -> bytes:
    assert len(s) < 64
    return bytes([len(s)]) + s


def _ziplist(entries: list) -> bytes:
    """A ziplist of short strings and small ints (immediates 0..12, else int16)."""
    body, prev, last = bytearray(), 0, 10
    for e in entries:
        last = 10 + len(body)
        entry = bytearray([prev])
        if isinstance(e, int) and 0 <= e <= 12:
            entry.append(0xF1 + e)
        elif isinstance(e, int):
            entry += b"\xc0" + e.to_bytes(2, "little", signed=True)
        else:
            entry += _string(e)
        body += entry
        prev = len(entry)
    total = 10 + len(body) + 1
    return total.to_bytes(4, "little") + last.to_bytes(4, "little") + len(entries).to_bytes(2, "little") + body + b"\xff"


def _listpack(items: list[bytes]) -> bytes:
    body = b"".join(bytes([0x80 | len(s)]) + s + _backlen_bytes(1 + len(s)) for s in items)
    return (6 + len(body) + 1).to_bytes(4, "little") + len(items).to_bytes(2, "little") + body + b"\xff"


def _zipmap(pairs: list[tuple[bytes, bytes]], free: int = 0, count: int | None = None) -> bytes:
    """A zipmap; every value followed by ``free`` unused bytes, a key of 254+ bytes with a 4-byte length."""
    out = bytearray([len(pairs) if count is None else count])
    for key, value in pairs:
        out += bytes([len(key)]) if len(key) < 254 else b"\xfe" + len(key).to_bytes(4, "little")
        out += key + bytes([len(value), free]) + value + b"\x00" * free
    return bytes(out) + b"\xff"


def _blob(b: bytes) -> bytes:
    assert len(b) < 16384
    return bytes([0x40 | (len(b) >> 8), len(b) & 0xFF]) + b


LEGACY = {
    "list_ziplist": (b"\x0a" + _blob(_ziplist([b"a", 5, -1234, b"bc"])), (KIND_LIST, [b"a", b"5", b"-1234", b"bc"])),
    "quicklist_1": (
        b"\x0e\x03" + _blob(_ziplist([b"a"])) + _blob(_ziplist([])) + _blob(_ziplist([b"b", 12])),
        (KIND_LIST, [b"a", b"b", b"12"]),
    ),
    "quicklist_2_plain": (
        b"\x12\x02\x01" + _blob(b"plain") + b"\x02" + _blob(_listpack([b"x", b"y"])),
        (KIND_LIST, [b"plain", b"x", b"y"]),
    ),
    "zset_ziplist": (b"\x0c" + _blob(_ziplist([b"a", 1, b"b", b"2.5"])), (KIND_ZSET, [(b"a", 1.0), (b"b", 2.5)])),
    "hash_ziplist": (b"\x0d" + _blob(_ziplist([b"f", b"v", b"n", 7])), (KIND_HASH, {b"f": b"v", b"n": b"7"})),
    "zset_text_scores": (
        b"\x03\x03" + _string(b"a") + b"\x031.5" + _string(b"b") + b"\xfe" + _string(b"c") + b"\xff",
        (KIND_ZSET, [(b"a", 1.5), (b"b", float("inf")), (b"c", float("-inf"))]),
    ),
    "lzf_overlapping_copy": (b"\x00\xc3\x06\x09\x02abc\x80\x02", (KIND_STRING, b"abcabcabc")),
    "int16_string": (b"\x00\xc1\x00\x80", (KIND_STRING, b"-32768")),
    "quicklist_2_empty_node": (
        b"\x12\x02\x02" + _blob(_listpack([])) + b"\x02" + _blob(_listpack([b"a"])), (KIND_LIST, [b"a"])
    ),
    "listpack_count_unknown": (
        b"\x12\x01\x02" + _blob(_listpack([b"x", b"y"])[:4] + b"\xff\xff" + _listpack([b"x", b"y"])[6:]),
        (KIND_LIST, [b"x", b"y"]),
    ),
    "zset_listpack_int_scores": (b"\x11" + _blob(_listpack([b"b", b"-2", b"a", b"1"])), (KIND_ZSET, [(b"b", -2.0), (b"a", 1.0)])),
    "lzf_empty": (b"\x00\xc3\x00\x00", (KIND_STRING, b"")),
    "zset_2_negative_zero": (b"\x05\x01" + _string(b"a") + b"\x00" * 7 + b"\x80", (KIND_ZSET, [(b"a", -0.0)])),
    "zset_text_inf": (b"\x03\x01" + _string(b"a") + b"\x03inf", (KIND_ZSET, [(b"a", float("inf"))])),
    "hash_zipmap": (
        b"\x09" + _blob(_zipmap([(b"f", b"v"), (b"k" * 300, b"12")], free=2)),
        (KIND_HASH, {b"f": b"v", b"k" * 300: b"12"}),
    ),
    "hash_zipmap_count_unknown": (b"\x09" + _blob(_zipmap([(b"f", b"v")], count=254)), (KIND_HASH, {b"f": b"v"})),
    # Redis reads an encoding byte where a count belongs as its low 6 bits.
    "count_as_an_encoding": (b"\x01\xc1" + _string(b"a"), (KIND_LIST, [b"a"])),
}


@pytest.mark.parametrize("name", sorted(LEGACY))
def test_legacy_encodings(name: str) -> None:
    body, expected = LEGACY[name]
    assert decode_payload(with_footer(body)) == expected


# -- rejected payloads -----------------------------------------------------------------------


def test_checksum_and_version() -> None:
    good = encode_payload(KIND_STRING, b"v")
    for bad in [b"", b"short", good[:-1] + bytes([good[-1] ^ 0x80]), with_footer(b"\x00\x01v", 11)]:
        with pytest.raises(BadChecksum):
            decode_payload(bad)


MALFORMED = {
    "stream": b"\x0f\x00",
    "module": b"\x07\x00",
    "unknown type": b"\xc8",
    "empty list": b"\x01\x00",
    "empty listpack hash": b"\x10" + _blob(_listpack([])),
    "duplicate set member": b"\x02\x02" + _string(b"a") + _string(b"a"),
    "duplicate hash field": b"\x10" + _blob(_listpack([b"f", b"1", b"f", b"2"])),
    "odd hash listpack": b"\x10" + _blob(_listpack([b"f", b"1", b"g"])),
    "NaN binary score": b"\x05\x01" + _string(b"a") + b"\x00\x00\x00\x00\x00\x00\xf8\x7f",
    "NaN text score": b"\x03\x01" + _string(b"a") + b"\xfd",
    "junk text score": b"\x03\x01" + _string(b"a") + b"\x02zz",
    "intset unsorted": b"\x0b" + _blob(b"\x02\x00\x00\x00\x02\x00\x00\x00\x02\x00\x01\x00"),
    "intset width": b"\x0b" + _blob(b"\x03\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00"),
    "listpack backlen": b"\x11" + _blob(_listpack([b"a", b"1"])[:-2] + b"\x05\xff"),
    "ziplist prevlen": b"\x0a" + _blob(_ziplist([b"a", b"b"]).replace(b"\x03\x01b", b"\x02\x01b")),
    "quicklist container": b"\x12\x01\x03" + _blob(b"x"),
    "lzf reference before start": b"\x00\xc3\x02\x03\x20\x05",
    "lzf too short": b"\x00\xc3\x02\x05\x01ab",
    "length byte 0x82": b"\x01\x82",
    "quicklist 2 only empty nodes": b"\x12\x01\x02" + _blob(_listpack([])),
    "quicklist 1 only empty nodes": b"\x0e\x01" + _blob(_ziplist([])),
    "empty ziplist list": b"\x0a" + _blob(_ziplist([])),
    "empty set": b"\x02\x00",
    "empty intset": b"\x0b" + _blob(b"\x02\x00\x00\x00\x00\x00\x00\x00"),
    "empty plain node": b"\x12\x01\x01" + _blob(b""),
    "duplicate zset listpack member": b"\x11" + _blob(_listpack([b"a", b"1", b"a", b"2"])),
    "duplicate plain hash field": b"\x04\x02" + _string(b"f") + _string(b"1") + _string(b"f") + _string(b"2"),
    "duplicate zset_2 member": b"\x05\x02" + (_string(b"a") + b"\x00" * 8) * 2,
    "zipmap count": b"\x09" + _blob(_zipmap([(b"f", b"v")], count=2)),
    "zipmap free past the end": b"\x09" + _blob(_zipmap([(b"f", b"v")])[:-3] + b"\x09v\xff"),
    "empty zipmap": b"\x09" + _blob(_zipmap([])),
    "empty text score": b"\x03\x01" + _string(b"a") + b"\x00",
    # A million elements declared, three bytes of data: refused before any loop.
    "million elements": b"\x01\x80\x00\x0f\x42\x40" + _string(b"ab"),
    # 4 GiB declared for a 2-byte LZF block: refused without allocating it.
    "huge lzf": b"\x00\xc3\x02\x80\xff\xff\xff\xff\x00a",
    "huge string": b"\x00\x81\x7f\xff\xff\xff\xff\xff\xff\xff" + b"ab",
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed(name: str) -> None:
    with pytest.raises(BadFormat):
        decode_payload(with_footer(MALFORMED[name]))


def test_every_truncation_is_refused() -> None:
    # Cut the value short anywhere. Redis reads the value from the whole
    # payload, so a cut string may still load, its end taken from the footer
    # (the RDB version bytes b"\n\x00"); every other cut is refused.
    for payload in REDIS_PAYLOADS:
        body = payload[:-10]
        for cut in range(len(body)):
            try:
                kind, value = decode_payload(with_footer(body[:cut]))
            except RdbError:
                continue
            assert kind == KIND_STRING and value.endswith((b"\n", b"\n\x00")), (cut, value)


def test_compressed_strings_inflate_to_the_limit_at_most() -> None:
    payload = with_footer(LEGACY["lzf_overlapping_copy"][0])
    assert decode_payload(payload, max_string_len=9) == (KIND_STRING, b"abcabcabc")
    with pytest.raises(BadFormat):
        decode_payload(payload, max_string_len=8)


def test_lzf_worst_case_expansion_is_fast() -> None:
    # One literal byte, then 264-byte back-references at distance 1: 88 times
    # the input, copied a run at a time, not a byte at a time (~3 s before).
    refs = 100_000
    started = time.perf_counter()
    out = lzf_decompress(b"\x00a" + b"\xe0\xff\x00" * refs, 1 + 264 * refs)
    assert time.perf_counter() - started < 1.5
    assert out == b"a" * (1 + 264 * refs)


def test_huge_declarations_fail_fast() -> None:
    started = time.perf_counter()
    for name in ("million elements", "huge lzf", "huge string"):
        with pytest.raises(BadFormat):
            decode_payload(with_footer(MALFORMED[name]))
    assert time.perf_counter() - started < 0.5


# -- fuzz: anything but a valid payload raises RdbError, and nothing else ----------------------

_SEEDS = (
    REDIS_PAYLOADS
    + [encode_payload(kind, value) for kind, value in VALUES[:3] + VALUES[4:]]
    + [with_footer(body) for body, _ in LEGACY.values()]
)


def _decodes_or_refuses(payload: bytes) -> None:
    try:
        kind, value = decode_payload(payload)
    except RdbError:
        return
    assert kind in (KIND_STRING, KIND_LIST, KIND_SET, KIND_ZSET, KIND_HASH)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_fuzz_random_bodies(body: bytes) -> None:
    _decodes_or_refuses(with_footer(body))


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(_SEEDS),
    st.lists(st.tuples(st.sampled_from(["flip", "insert", "delete"]), st.integers(0, 10**6), st.integers(0, 255)),
             min_size=1, max_size=4),
)
def test_fuzz_mutated_payloads(seed: bytes, edits: list) -> None:
    body = bytearray(seed[:-10])
    for op, where, byte in edits:
        i = where % (len(body) + 1)
        if op == "insert":
            body[i:i] = bytes([byte])
        elif body and op == "flip":
            body[i % len(body)] ^= byte or 1
        elif body:
            del body[i % len(body)]
    _decodes_or_refuses(with_footer(bytes(body)))
    _decodes_or_refuses(bytes(body) + seed[-10:])  # the old footer: a bad CRC


# -- the commands on one shard -----------------------------------------------------------------


def test_dump_restore_every_kind_and_ttl() -> None:
    h = Harness()
    h.run("RPUSH", "l", "a", "b")
    h.run("SADD", "s", "x")
    h.run("ZADD", "z", "1", "m")
    h.run("HSET", "h", "f", "v")
    h.run("SET", "str", "v", "PX", "5000")
    for key in ("l", "s", "z", "h", "str"):
        payload = h.run("DUMP", key)
        assert h.run("RESTORE", key + "2", "0", payload).text == "OK"
        assert h.run("DUMP", key + "2") == payload
    assert h.run("PTTL", "str2") == -1  # DUMP carries no TTL
    assert h.run("RESTORE", "t", "1500", h.run("DUMP", "l")).text == "OK"
    assert h.run("PTTL", "t") == 1500
    h.advance(1500)
    assert h.run("EXISTS", "t") == 0


def test_native_values_dump_as_their_string_form() -> None:
    h = Harness()
    ctx = h.context()
    ctx.set(b"n", KIND_NATIVE, {"x": [1, 2]}, None)
    ctx.finish()
    assert decode_payload(h.run("DUMP", "n")) == (KIND_STRING, pack({"x": [1, 2]}))


def test_kinds_without_an_encoding_are_a_clear_error() -> None:
    # Streams (kind 6) have no RDB encoding here yet: DUMP answers an error, never raises.
    with pytest.raises(CommandError, match="DUMP is not supported for"):
        to_neutral(Record(KIND_STREAM, object(), None, 1, None))
    with pytest.raises(BadFormat):
        encode_payload(KIND_STREAM, object())
