"""Streams in DUMP payloads: RDB_TYPE_STREAM_LISTPACKS (15) and _2 (19), Redis 7.0's.

The neutral value is the stream's wire form (``StreamType.to_wire``)::

    [entries, last_id, max_deleted, entries_added, groups]
    entries: [[ms, seq, [field, value, ...]], ...]         ascending IDs
    groups:  [[name, last_id, entries_read, pel, consumers], ...]
    pel:     [[ms, seq, consumer, delivery_ms, delivery_count], ...]
    consumers: [[name, seen_ms], ...]

(IDs as ``[ms, seq]``.) A type 15 payload has no read counters: its groups
carry ``None`` there, which the caller replaces by Redis's estimate.

The value, as Redis 7.0 writes it (src/rdb.c, src/t_stream.c):

* the number of listpack nodes, then per node its master ID (a 16-byte
  string: ms and seq, big-endian) and a listpack: ``count, deleted,
  n, field_1 .. field_n, 0`` (the master entry), then per entry ``flags,
  ms - master ms, seq - master seq`` (64-bit wrapping differences),
  ``n, field, value, ...`` or, with flag SAMEFIELDS (2), the master's fields'
  values only, and the number of listpack elements the entry spans before
  the lp-count itself (its "lp-count", for walking backwards). Flag
  DELETED (1) marks an entry XDEL removed;
* the number of live entries, the last ID; for type 19 also the first ID
  (ignored: makodb derives it), the largest deleted ID and entries-added;
* the groups: name, last-delivered ID, (19) the read counter (-1 unknown,
  written as 2^64 - 1), the group PEL (count, then 16-byte raw ID, delivery
  time as a little-endian int64, delivery count), the consumers (count,
  then name, seen-time as an int64, their PEL as 16-byte raw IDs).

Decoding checks what Redis 7.0 checks with ``sanitize-dump-payload yes``
(every listpack entry's shape and lp-count, duplicate groups, consumers and
PEL IDs, consumer PEL IDs missing from the group PEL, group PEL entries no
consumer owns) and more, since makodb's stream keeps invariants Redis's
loader does not verify: entry IDs strictly ascending across nodes and not
below their node's master ID, master entry counts and the stream length
equal to the entries present, the last ID not below any entry or the
largest deleted ID, entries-added not below the length, no entry without
fields, no PEL ID owned by two consumers, no read counter below -1.
Encoding writes type 19 with one node per ``NODE_ENTRIES`` entries.
"""

from __future__ import annotations

import struct
from typing import Any

from makod.kv.args import parse_int
from makod.kv.rdb_compact import BadFormat, _backlen_bytes, parse_listpack

NODE_ENTRIES = 100  # entries per listpack node written (Redis's stream-node-max-entries)
_U64 = 1 << 64
_FLAG_DELETED = 1
_FLAG_SAMEFIELDS = 2
_RAW_ID = struct.Struct(">QQ")
_MS_TIME = struct.Struct("<q")


# -- encoding ---------------------------------------------------------------------------------


def _lp_int(v: int) -> bytes:
    """A listpack integer element, its back-length included (the narrowest encoding)."""
    if 0 <= v < 128:
        body = bytes([v])
    elif -4096 <= v < 4096:
        v &= 0x1FFF
        body = bytes([0xC0 | (v >> 8), v & 0xFF])
    else:
        for tag, width in ((0xF1, 2), (0xF2, 3), (0xF3, 4), (0xF4, 8)):
            if -(1 << (8 * width - 1)) <= v < 1 << (8 * width - 1):
                break
        body = bytes([tag]) + v.to_bytes(width, "little", signed=True)
    return body + _backlen_bytes(len(body))


def _lp_str(s: bytes) -> bytes:
    """A listpack string element (an integer's canonical text as the integer, as Redis does)."""
    v = parse_int(s)
    if v is not None:
        return _lp_int(v)
    n = len(s)
    if n < 64:
        head = bytes([0x80 | n])
    elif n < 4096:
        head = bytes([0xE0 | (n >> 8), n & 0xFF])
    else:
        head = b"\xf0" + n.to_bytes(4, "little")
    return head + s + _backlen_bytes(len(head) + n)


def _as_i64(v: int) -> int:
    """A 64-bit wrapping difference as the int64 Redis stores it."""
    v %= _U64
    return v - _U64 if v >= 1 << 63 else v


def _node(entries: list) -> tuple[bytes, bytes]:
    """(master ID key, listpack) of one node holding ``entries`` (live, ascending)."""
    master_ms, master_seq, master_kv = entries[0]
    master_fields = master_kv[0::2]
    elems = [_lp_int(len(entries)), _lp_int(0), _lp_int(len(master_fields))]
    elems += [_lp_str(f) for f in master_fields]
    elems.append(_lp_int(0))
    for ms, seq, kv in entries:
        fields = kv[0::2]
        same = fields == master_fields
        elems.append(_lp_int(_FLAG_SAMEFIELDS if same else 0))
        elems.append(_lp_int(_as_i64(ms - master_ms)))
        elems.append(_lp_int(_as_i64(seq - master_seq)))
        if same:
            elems += [_lp_str(v) for v in kv[1::2]]
            used = len(fields) + 3
        else:
            elems.append(_lp_int(len(fields)))
            elems += [_lp_str(x) for x in kv]
            used = len(kv) + 4
        elems.append(_lp_int(used))
    body = b"".join(elems)
    count = min(len(elems), 0xFFFF)  # 0xFFFF: "unknown", as Redis writes past it
    blob = (len(body) + 7).to_bytes(4, "little") + count.to_bytes(2, "little") + body + b"\xff"
    return _RAW_ID.pack(master_ms, master_seq), blob


def _put_ms(out: bytearray, v: int) -> None:
    out += _MS_TIME.pack(_as_i64(v))


def encode_stream(out: bytearray, value: Any, put_length, put_string) -> None:
    """Append a type 19 stream body (everything after the type byte) for a wire-form stream."""
    entries, last_id, max_deleted, entries_added, groups = value
    nodes = [entries[i : i + NODE_ENTRIES] for i in range(0, len(entries), NODE_ENTRIES)]
    put_length(out, len(nodes))
    for chunk in nodes:
        key, blob = _node(chunk)
        put_string(out, key)
        put_string(out, blob)
    put_length(out, len(entries))
    first = entries[0][:2] if entries else [0, 0]
    for n in (*last_id, *first, *max_deleted, entries_added):
        put_length(out, n)
    put_length(out, len(groups))
    for name, glast, entries_read, pel, consumers in groups:
        put_string(out, name)
        put_length(out, glast[0])
        put_length(out, glast[1])
        put_length(out, entries_read % _U64)  # -1 (unknown) as Redis writes it
        put_length(out, len(pel))
        owned: dict[bytes, list] = {cname: [] for cname, _ in consumers}
        for ms, seq, cname, when, count in pel:
            out += _RAW_ID.pack(ms, seq)
            _put_ms(out, when)
            put_length(out, count)
            owned[cname].append(_RAW_ID.pack(ms, seq))
        put_length(out, len(consumers))
        for cname, seen in consumers:
            put_string(out, cname)
            _put_ms(out, seen)
            put_length(out, len(owned[cname]))
            out += b"".join(owned[cname])


# -- decoding ---------------------------------------------------------------------------------


def _count(r, min_item_bytes: int) -> int:
    """A count (0 allowed), refused at once if the bytes left cannot hold that many items."""
    n = r.plain_length()
    if n * min_item_bytes > r.left():
        raise BadFormat("stream count larger than the payload")
    return n


def _raw_id(r) -> tuple[int, int]:
    return _RAW_ID.unpack(r.take(16))


def _ms_time(r) -> int:
    return _MS_TIME.unpack(r.take(8))[0]


def _id(r) -> tuple[int, int]:
    return r.plain_length(), r.plain_length()


class _Elems:
    """A cursor over one node's listpack elements."""

    __slots__ = ("items", "pos")

    def __init__(self, items: list[bytes]) -> None:
        self.items = items
        self.pos = 0

    def take(self, n: int) -> list[bytes]:
        if n < 0 or n > len(self.items) - self.pos:
            raise BadFormat("stream node runs past its listpack")
        self.pos += n
        return self.items[self.pos - n : self.pos]

    def int(self) -> int:
        (item,) = self.take(1)
        v = parse_int(item)  # lpGetIntegerIfValid: an integer, or a string that spells one
        if v is None:
            raise BadFormat("stream node integer expected")
        return v


def _read_node(key: bytes, blob: bytes, prev: tuple, entries: list) -> tuple:
    """Append one node's live entries to ``entries``; the node's last ID (deleted ones too)."""
    if len(key) != 16:
        raise BadFormat("stream node key is not a stream ID")
    master = _RAW_ID.unpack(key)
    if master <= prev:
        raise BadFormat("stream nodes out of order")
    e = _Elems(parse_listpack(blob))
    live, deleted, nfields = e.int(), e.int(), e.int()
    if live < 0 or deleted < 0 or nfields < 1 or live + deleted < 1:
        raise BadFormat("stream master entry")
    master_fields = e.take(nfields)
    if e.int() != 0:
        raise BadFormat("stream master entry terminator")
    seen_live = seen_deleted = 0
    last = prev
    while e.pos < len(e.items):
        flags, dms, dseq = e.int(), e.int(), e.int()
        if flags & ~(_FLAG_DELETED | _FLAG_SAMEFIELDS):
            raise BadFormat("stream entry flags")
        sid = ((master[0] + dms) % _U64, (master[1] + dseq) % _U64)
        if sid <= last or sid < master:
            raise BadFormat("stream entries out of order")
        last = sid
        if flags & _FLAG_SAMEFIELDS:
            values = e.take(nfields)
            kv = [x for pair in zip(master_fields, values) for x in pair]
            used = nfields + 3
        else:
            n = e.int()
            if n < 1:
                raise BadFormat("stream entry without fields")
            kv = e.take(2 * n)
            used = 2 * n + 4
        if e.int() != used:
            raise BadFormat("stream entry lp-count")
        if flags & _FLAG_DELETED:
            seen_deleted += 1
        else:
            seen_live += 1
            entries.append([sid[0], sid[1], kv])
    if (seen_live, seen_deleted) != (live, deleted):
        raise BadFormat("stream node counts do not match its entries")
    return last


def _read_group(r, version: int) -> list:
    name = r.string()
    glast = _id(r)
    entries_read = None
    if version == 2:
        entries_read = r.plain_length()
        if entries_read >= 1 << 63:
            entries_read -= _U64
        if entries_read < -1:
            raise BadFormat("stream group read counter")
    pel: dict[tuple, list] = {}
    for _ in range(_count(r, 25)):  # a raw ID, a time, a count
        sid = _raw_id(r)
        if sid in pel:
            raise BadFormat("duplicate stream group PEL entry")
        when = _ms_time(r)
        pel[sid] = [None, when, r.plain_length()]
    consumers: dict[bytes, int] = {}
    for _ in range(_count(r, 10)):  # a name, a time, a PEL count
        cname = r.string()
        if cname in consumers:
            raise BadFormat("duplicate stream consumer")
        consumers[cname] = _ms_time(r)
        for _ in range(_count(r, 16)):
            nack = pel.get(_raw_id(r))
            if nack is None or nack[0] is not None:
                raise BadFormat("stream consumer PEL entry not in the group PEL, or owned twice")
            nack[0] = cname
    if any(nack[0] is None for nack in pel.values()):
        raise BadFormat("stream group PEL entry without a consumer")
    return [
        name,
        list(glast),
        entries_read,
        [[sid[0], sid[1], *nack] for sid, nack in sorted(pel.items())],
        [[cname, seen] for cname, seen in consumers.items()],
    ]


def decode_stream(r, version: int) -> list:
    """A stream body of type 15 (``version`` 1) or 19 (2) read from ``r`` (rdb._Reader)."""
    entries: list = []
    last = (-1, -1)
    for _ in range(_count(r, 2)):
        key = r.string()
        last = _read_node(key, r.string(), last, entries)
    length = r.plain_length()
    last_id = _id(r)
    if version == 2:
        _id(r)  # the first entry's ID: derived from the entries instead
        max_deleted = _id(r)
        entries_added = r.plain_length()
    else:
        max_deleted, entries_added = (0, 0), length
    if length != len(entries):
        raise BadFormat("stream length does not match its entries")
    if last_id < last or last_id < max_deleted or entries_added < length:
        raise BadFormat("stream metadata inconsistent with its entries")
    groups: dict[bytes, list] = {}
    for _ in range(_count(r, 4 + version)):  # a name, an ID, (19) a counter, two counts
        group = _read_group(r, version)
        if group[0] in groups:
            raise BadFormat("duplicate stream group")
        groups[group[0]] = group
    return [entries, list(last_id), list(max_deleted), entries_added, list(groups.values())]
