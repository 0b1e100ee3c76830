"""The storage interface one replica needs, and the record encoding both stores share.

A replica persists three things: the Paxos promise and log (before it sends
anything that depends on them), and checkpoints of its applied state (with
the applied slot and clock in the same atomic write, so applying is
idempotent across restarts: entries above the applied slot are replayed).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Protocol

import msgpack

from makod.codec import pack

from makod.core.durability import Checkpoint
from makod.kv.keyspace import Keyspace
from makod.kv.records import KIND_NATIVE, KIND_STRING, Record, kind_name, value_from_wire, value_to_wire


@dataclass
class LoadedState:
    promised: int = 0
    log: dict[int, tuple[int, bytes]] = field(default_factory=dict)
    applied_slot: int = 0
    clock: int = 0
    keyspace: Keyspace = field(default_factory=Keyspace)
    marks: list | None = None  # see durability.Checkpoint.marks
    records: list[tuple[bytes, bytes]] = field(default_factory=list)  # coordinator records, encoded
    damaged_log_slots: list[int] = field(default_factory=list)  # applied entries that failed checksums (dropped)


# Stored records and log entries carry a CRC-32 of their bytes, so a flipped
# bit on disk is caught when it is read instead of being served. The tag byte
# 0xc1 is one msgpack never uses: data written before checksums (which starts
# with a msgpack array) still reads.
_SUMMED = 0xC1
_SUMMED_TAG = bytes((_SUMMED,))
_CRC = struct.Struct(">I")
# Kinds whose values msgpack takes as they are (ValueType.to_wire is the identity).
_PLAIN_WIRE_KINDS = frozenset((KIND_STRING, KIND_NATIVE))
_NATIVE_HEAD = bytes((0x94, KIND_NATIVE))  # fixarray of 4, then the kind as a positive fixint


class CorruptData(Exception):
    """Stored bytes that fail their checksum or do not decode."""


def _sealed(data: bytes) -> bytes:
    return _SUMMED_TAG + _CRC.pack(zlib.crc32(data)) + data


def _unsealed(data: bytes, what: str) -> bytes:
    if data[:1] != b"\xc1":
        return data  # written before checksums
    body = data[5:]
    if len(data) < 5 or _CRC.unpack_from(data, 1)[0] != zlib.crc32(body):
        raise CorruptData(f"{what} fails its checksum")
    return body


def encode_record(rec: Record) -> bytes:
    """A record's stored bytes: checksum-sealed ``[kind, wire value, expire_ms, version]``.

    The hottest encoder of a checkpoint (one call per changed key), so the
    usual cases skip the type table: strings and procedure rows are their
    own wire form, and a row its writer already packed is not packed again
    (Record.packed)."""
    kind = rec.kind
    packed = rec.packed
    if packed is not None and kind == KIND_NATIVE:
        # The row's bytes as its writer packed them: the same array, with
        # msgpack's header for four elements and the kind (a fixint) before it.
        body = _NATIVE_HEAD + packed + pack((rec.expire_ms, rec.version))[1:]
    else:
        value = rec.value if kind in _PLAIN_WIRE_KINDS else value_to_wire(kind, rec.value)
        body = pack([kind, value, rec.expire_ms, rec.version])
    return _sealed(body)


def encode_for_checkpoint(rec: Record) -> bytes:
    """encode_record for a checkpoint, which writes the record to disk: the
    writer's packed bytes are then dropped, not kept in memory beside the value."""
    data = encode_record(rec)
    rec.packed = None
    return data


def decode_record(data: bytes, what: str = "a stored record") -> Record:
    body = _unsealed(bytes(data), what)
    try:
        kind, value, expire_ms, version = msgpack.unpackb(body, raw=False, strict_map_key=False)
    except Exception as exc:
        raise CorruptData(f"{what} does not decode ({type(exc).__name__})") from None
    try:
        value = value_from_wire(kind, value)
    except Exception as exc:
        raise CorruptData(f"{what} holds a {kind_name(kind)} value that does not decode ({type(exc).__name__})") from None
    return Record(kind, value, expire_ms, version, None)


def encode_snapshot_meta(marks: list | None, records: list[tuple[bytes, bytes]]) -> bytes:
    return pack([marks, records])


def decode_snapshot_meta(meta: bytes | None) -> tuple[list | None, list[tuple[bytes, bytes]]]:
    if not meta:
        return None, []
    marks, records = msgpack.unpackb(meta, raw=False, strict_map_key=False)
    return marks, [(bytes(k), bytes(v)) for k, v in records]


def encode_log_entry(ballot: int, value: bytes) -> bytes:
    return _sealed(pack([ballot, value]))


def decode_log_entry(data: bytes, what: str = "a log entry") -> tuple[int, bytes]:
    body = _unsealed(bytes(data), what)
    try:
        ballot, value = msgpack.unpackb(body, raw=False)
    except Exception as exc:
        raise CorruptData(f"{what} does not decode ({type(exc).__name__})") from None
    return ballot, value


class ReplicaStore(Protocol):
    def load(self) -> LoadedState: ...

    def persist(self, promised: int | None, entries: list[tuple[int, int, bytes]]) -> None:
        """Durable when it returns."""

    def persist_job(self, promised: int | None, entries: list[tuple[int, int, bytes]]) -> Callable[[], None]:
        """persist(), with whatever can be done at once done now: the job
        returned does the rest (on the writer thread)."""

    def checkpoint(self, ckpt: Checkpoint) -> None:
        """Durable when it returns."""

    def compact(self, upto_slot: int) -> None: ...

    def snapshot_chunks(self, max_bytes: int) -> Iterator[tuple[int, int, list[tuple[bytes, bytes]], bytes | None]]:
        """(applied_slot, clock, [(key, encoded record)], meta) chunks of one consistent
        state; the first chunk's ``meta`` holds the marks and coordinator records
        (encode_snapshot_meta), the others None."""

    def install_snapshot(
        self, applied_slot: int, clock: int, chunks: Iterable[list[tuple[bytes, bytes]]], meta: bytes | None
    ) -> None: ...

    def close(self) -> None: ...
