"""What a Paxos slot holds, and the reply values that travel between replicas.

A slot's value is bytes: empty for a no-op, else a msgpack array whose first
element says what it is:

* ``[ENTRY_BATCH, epoch, marker, txns, seq]``: installed transactions, each
  ``[version, deps, ops, record]`` (deps None when it is just this shard's
  clock; record: a coordinator's record, or None). ``seq`` numbers the
  epoch's batches 1, 2, 3, ...; ``marker``: every version of the epoch at or
  below it is in this batch or an earlier one (epochs.py says when that holds).
* ``[ENTRY_EPOCH, epoch, [closed, closed_below]]``: a new leader's first
  entry: ``closed`` is {previous epoch: its finalized watermark}, and every
  epoch below ``closed_below`` has ended.
"""

from __future__ import annotations

from typing import Any

import msgpack

from makod.codec import pack
from makod.kv.replies import (
    NULL_ARRAY,
    Blocked,
    Bool,
    Double,
    ErrorReply,
    Map,
    Pairs,
    Set,
    SimpleString,
    Verbatim,
)

ENTRY_BATCH = 1
ENTRY_EPOCH = 2


def encode_batch(epoch: int, marker: int, txns: list, seq: int) -> bytes:
    return pack([ENTRY_BATCH, epoch, marker, txns, seq])


def batch_seq(entry: list) -> int | None:
    """A decoded batch's number within its epoch (None: written before batches were numbered)."""
    return entry[4] if len(entry) > 4 else None


def encode_epoch(epoch: int, extra: Any = None) -> bytes:
    return pack([ENTRY_EPOCH, epoch, extra])


class MalformedEntry(ValueError):
    """A chosen value this version cannot read. Every replica reads the same
    bytes and so reaches the same verdict: the slot counts as a no-op, the
    replica stays up (a crash here would repeat at every restart)."""


def decode_entry(value: bytes) -> list | None:
    """None for a no-op; otherwise the decoded array (shape-checked). Ops come back as lists."""
    if not value:
        return None
    try:
        entry = msgpack.unpackb(value, raw=False, strict_map_key=False, use_list=True)
    except Exception as exc:  # msgpack raises several unrelated types
        raise MalformedEntry(f"undecodable: {exc}") from None
    _check_shape(entry)
    return entry


def _is_int(x: Any) -> bool:
    return type(x) is int and x >= 0


def _check_shape(entry: Any) -> None:
    if type(entry) is not list or not entry:
        raise MalformedEntry("not an array")
    if entry[0] == ENTRY_BATCH:
        if not (4 <= len(entry) <= 5 and _is_int(entry[1]) and _is_int(entry[2]) and type(entry[3]) is list):
            raise MalformedEntry("bad batch header")
        if len(entry) == 5 and not _is_int(entry[4]):
            raise MalformedEntry("bad batch number")
        for txn in entry[3]:
            if not (type(txn) is list and len(txn) == 4 and _is_int(txn[0]) and type(txn[2]) is list):
                raise MalformedEntry("bad transaction")
            if txn[1] is not None and not (type(txn[1]) is list and all(_is_int(d) for d in txn[1])):
                raise MalformedEntry("bad dependency vector")
            for op in txn[2]:
                if type(op) is not list or not op or type(op[0]) is not int:
                    raise MalformedEntry("bad op")
    elif entry[0] == ENTRY_EPOCH:
        if not (len(entry) == 3 and _is_int(entry[1]) and type(entry[2]) is list and len(entry[2]) == 2
                and type(entry[2][0]) is dict and _is_int(entry[2][1])):
            raise MalformedEntry("bad epoch entry")
    else:
        raise MalformedEntry(f"unknown entry kind {entry[0]!r}")


def op_from_wire(op: list) -> tuple:
    return tuple(op)


# -- reply values over the wire (forwarded requests) --------------------------------
_EXT_ERROR = 1
_EXT_SIMPLE = 2
_EXT_MAP = 3
_EXT_SET = 4
_EXT_DOUBLE = 5
_EXT_BOOL = 6
_EXT_VERBATIM = 7
_EXT_NULL_ARRAY = 8
_EXT_PAIRS = 9
_EXT_BLOCKED = 10
_EXT_MAP_NESTED = 11  # a Map that RESP2 sends as an array of pairs (XREAD)
_EXT_DOUBLE_TEXT = 12  # a Double with its own digits (GEOPOS): [value, text]


def _default(obj: Any) -> Any:
    t = type(obj)
    if t is ErrorReply:
        return msgpack.ExtType(_EXT_ERROR, obj.text.encode())
    if t is SimpleString:
        return msgpack.ExtType(_EXT_SIMPLE, obj.text.encode())
    if t is Map:
        return msgpack.ExtType(_EXT_MAP_NESTED if obj.nested else _EXT_MAP, pack_value(obj.items))
    if t is Set:
        return msgpack.ExtType(_EXT_SET, pack_value(obj.members))
    if t is Pairs:
        return msgpack.ExtType(_EXT_PAIRS, pack_value(obj.items))
    if t is Double:
        if obj.text is not None:
            return msgpack.ExtType(_EXT_DOUBLE_TEXT, msgpack.packb([obj.value, obj.text], use_bin_type=True))
        return msgpack.ExtType(_EXT_DOUBLE, msgpack.packb(obj.value))
    if t is Bool:
        return msgpack.ExtType(_EXT_BOOL, b"\x01" if obj.value else b"\x00")
    if t is Verbatim:
        return msgpack.ExtType(_EXT_VERBATIM, pack_value([obj.fmt, obj.data]))
    if obj is NULL_ARRAY:
        return msgpack.ExtType(_EXT_NULL_ARRAY, b"")
    if t is Blocked:
        return msgpack.ExtType(_EXT_BLOCKED, pack_value([obj.timeout_ms, obj.reply, obj.argv]))
    raise TypeError(f"cannot send {t.__name__} between replicas")


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _EXT_ERROR:
        return ErrorReply(data.decode())
    if code == _EXT_SIMPLE:
        return SimpleString(data.decode())
    if code == _EXT_MAP or code == _EXT_MAP_NESTED:
        return Map([tuple(pair) for pair in unpack_value(data)], code == _EXT_MAP_NESTED)
    if code == _EXT_SET:
        return Set(unpack_value(data))
    if code == _EXT_PAIRS:
        return Pairs([tuple(pair) for pair in unpack_value(data)])
    if code == _EXT_DOUBLE:
        return Double(msgpack.unpackb(data))
    if code == _EXT_DOUBLE_TEXT:
        value, text = msgpack.unpackb(data)
        return Double(value, text)
    if code == _EXT_BOOL:
        return Bool(data == b"\x01")
    if code == _EXT_VERBATIM:
        fmt, body = unpack_value(data)
        return Verbatim(body, fmt)
    if code == _EXT_NULL_ARRAY:
        return NULL_ARRAY
    if code == _EXT_BLOCKED:
        timeout_ms, reply, *argv = unpack_value(data)
        return Blocked(timeout_ms, reply, argv[0] if argv else None)
    return msgpack.ExtType(code, data)


def pack_value(value: Any) -> bytes:
    return msgpack.packb(value, default=_default, use_bin_type=True)


def unpack_value(data: bytes) -> Any:
    return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)
