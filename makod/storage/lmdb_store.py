"""LMDB storage for one replica, in two environments.

* ``log/``: ``meta`` (promised ballot, identity) and ``log`` (slot as 8
  big-endian bytes -> [ballot, value]). Written on the path of every
  acknowledgement, so nothing else may queue in front of it.
* ``state/``: ``meta`` (applied slot, clock, marks of the shard's epochs,
  identity, key format), ``state`` (stored key -> record, see ``_db_key``) and
  ``coord`` (coordinator records, see core/coord_records.py). Checkpoints
  write here; the applied slot is stored in the same transaction as the
  state's last part, so applying is idempotent across restarts (the log is
  replayed from it).

LMDB allows one writer per environment: two environments let a big
checkpoint proceed without delaying log writes (each has its own writer
thread in the server). Every write transaction commits with a sync, so when
a call returns its data survives a crash. The log is compacted only below a
checkpoint that is already durable.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zlib
from functools import partial
from typing import Callable, Iterable, Iterator

import lmdb
import msgpack

from makod.codec import pack
from makod.core.durability import Checkpoint
from makod.kv.keyspace import Keyspace
from makod.storage.base import (
    CorruptData,
    LoadedState,
    decode_log_entry,
    decode_record,
    decode_snapshot_meta,
    encode_for_checkpoint,
    encode_log_entry,
    encode_snapshot_meta,
)

_SLOT = struct.Struct(">Q")
_CRC = struct.Struct(">I")
_INT = struct.Struct(">q")

# The map is virtual address space, not disk: start big, grow if ever full.
DEFAULT_MAP_SIZE = 1 << 36

# LMDB keys are 1..511 bytes; Redis keys are 0 bytes to 512 MB. A key that
# fits is stored after a one-byte tag; any other key is stored under the
# SHA-256 of itself, and its record carries the whole key. The tags keep the
# two forms from ever colliding (a short key cannot forge a hashed one).
KEY_FORMAT = 1
MAX_INLINE_KEY_BYTES = 400
_INLINE, _HASHED = b"k", b"h"


def _db_key(key: bytes) -> bytes:
    if 0 < len(key) <= MAX_INLINE_KEY_BYTES:
        return _INLINE + key
    return _HASHED + hashlib.sha256(key).digest()


def _db_value(key: bytes, record: bytes) -> bytes:
    return record if 0 < len(key) <= MAX_INLINE_KEY_BYTES else pack([key, record])


def _from_db(db_key: bytes, db_value: bytes) -> tuple[bytes, bytes]:
    """(key, encoded record) of one stored entry."""
    if db_key[:1] == _INLINE:
        return bytes(db_key[1:]), bytes(db_value)
    if db_key[:1] == _HASHED:
        try:
            key, record = msgpack.unpackb(db_value, raw=True)
            return bytes(key), bytes(record)
        except Exception:
            raise CorruptData(f"the entry stored under {bytes(db_key[:16])!r}... does not decode") from None
    raise CorruptData(f"a stored key of unknown form {bytes(db_key[:16])!r}")


class StoreError(Exception):
    pass


class DamagedState(StoreError):
    """The checkpointed state fails its checksums. The log (and with it this
    replica's promises) is intact, so the state can be rebuilt from peers:
    see LmdbStore.quarantine_state."""


class _Env:
    def __init__(self, path: str, dbs: list[bytes], identity: dict, map_size: int) -> None:
        os.makedirs(path, exist_ok=True)
        self.path = path
        try:
            self.env = lmdb.open(
                path, map_size=map_size, max_dbs=len(dbs) + 1, subdir=True, sync=True, metasync=True,
                readahead=False, max_readers=64,
            )
            # A file shorter than its own last page was truncated (reading
            # past its end would be a SIGBUS, not an error).
            data_file = os.path.join(path, "data.mdb")
            need = (self.env.info()["last_pgno"] + 1) * self.env.stat()["psize"]
            if os.path.getsize(data_file) < need:
                self.env.close()
                raise StoreError(
                    f"{data_file}: truncated ({os.path.getsize(data_file)} bytes, its pages need {need}). "
                    "See 'Repairing a replica' in docs/OPERATIONS.md"
                )
            self.dbs = {name: self.env.open_db(name) for name in dbs}
        except lmdb.Error as exc:
            raise StoreError(
                f"{os.path.join(path, 'data.mdb')}: cannot open it ({exc}). The file is damaged or truncated: "
                "see 'Repairing a replica' in docs/OPERATIONS.md"
            ) from None
        want = json.dumps(identity, sort_keys=True).encode()
        with self.env.begin(write=True, db=self.dbs[b"meta"]) as txn:
            have = txn.get(b"identity")
            if have is None:
                txn.put(b"identity", want)
            elif have != want:
                raise StoreError(
                    f"{path} holds data of {have.decode()}, not of {want.decode()}: "
                    "refusing to start on another replica's data"
                )

    def write(self, fn: Callable[[lmdb.Transaction], None]) -> None:
        while True:
            try:
                with self.env.begin(write=True) as txn:
                    fn(txn)
                return
            except lmdb.MapFullError:
                self.env.set_mapsize(self.env.info()["map_size"] * 2)

    def get_int(self, txn: lmdb.Transaction, key: bytes) -> int:
        raw = txn.get(key, db=self.dbs[b"meta"])
        return _INT.unpack(raw)[0] if raw is not None else 0

    def used_bytes(self) -> int:
        info, stat = self.env.info(), self.env.stat()
        return (info["last_pgno"] + 1) * stat["psize"]


def _nothing() -> None:
    pass


class LmdbStore:
    def __init__(self, path: str, identity: dict, map_size: int = DEFAULT_MAP_SIZE) -> None:
        self.path = path
        self.identity, self.map_size = identity, map_size
        log_file = os.path.join(path, "log", "data.mdb")
        if os.path.exists(os.path.join(path, "state", "data.mdb")) and not os.path.exists(log_file):
            # The log holds this replica's promises and votes: starting without
            # it would let it vote as if it had never promised anything.
            raise StoreError(
                f"{log_file} is missing but the state beside it exists: this replica has lost its Paxos log "
                "and must not vote. See 'Repairing a replica' in docs/OPERATIONS.md"
            )
        self.logs = _Env(os.path.join(path, "log"), [b"meta", b"log"], identity, map_size)
        self.states = _Env(os.path.join(path, "state"), [b"meta", b"state", b"coord"], identity, map_size)
        self.log_db = self.logs.dbs[b"log"]
        self.log_meta = self.logs.dbs[b"meta"]
        self.state_db = self.states.dbs[b"state"]
        self.state_meta = self.states.dbs[b"meta"]
        self.coord_db = self.states.dbs[b"coord"]
        self._upgrade_key_format()

    def _upgrade_key_format(self) -> None:
        """Data written before KEY_FORMAT 1 stored raw keys: tag them, once."""

        def write(txn: lmdb.Transaction) -> None:
            if txn.get(b"key_format", db=self.state_meta) is not None:
                return
            old = [(bytes(k), bytes(v)) for k, v in txn.cursor(db=self.state_db)]
            txn.drop(self.state_db, delete=False)
            for key, value in old:
                txn.put(_db_key(key), _db_value(key, value), db=self.state_db)
            txn.put(b"key_format", _INT.pack(KEY_FORMAT), db=self.state_meta)

        self.states.write(write)

    # -- loading ------------------------------------------------------------------------
    def load(self) -> LoadedState:
        state = LoadedState()
        try:
            self._load_state(state)
        except CorruptData as exc:
            raise DamagedState(str(exc)) from None
        except lmdb.Error as exc:
            raise DamagedState(f"{self.states.path}: unreadable ({exc})") from None
        try:
            self._load_log(state)
        except lmdb.Error as exc:
            raise StoreError(f"{self.logs.path}: unreadable ({exc}). See 'Repairing a replica' in "
                             "docs/OPERATIONS.md") from None
        return state

    def quarantine_state(self) -> str:
        """Move the damaged state aside (kept for a post-mortem) and start an empty
        one: the replica then catches up from its peers by snapshot."""
        import time

        self.states.env.close()
        aside = f"{self.states.path}.damaged-{int(time.time())}"
        os.rename(self.states.path, aside)
        self.states = _Env(self.states.path, [b"meta", b"state", b"coord"], self.identity, self.map_size)
        self.state_db = self.states.dbs[b"state"]
        self.state_meta = self.states.dbs[b"meta"]
        self.coord_db = self.states.dbs[b"coord"]
        self._upgrade_key_format()
        return aside

    def _load_state(self, state: LoadedState) -> None:
        state_file = os.path.join(self.states.path, "data.mdb")
        with self.states.env.begin() as txn:
            state.applied_slot = self.states.get_int(txn, b"applied_slot")
            state.clock = self.states.get_int(txn, b"clock")
            raw_marks = txn.get(b"marks", db=self.state_meta)
            state.marks = msgpack.unpackb(raw_marks, strict_map_key=False) if raw_marks else None
            state.keyspace = Keyspace.from_records(
                (key, decode_record(record, f"{state_file}: the record of key {key[:40]!r}"))
                for key, record in (_from_db(k, v) for k, v in txn.cursor(db=self.state_db))
            )
            state.records = [(bytes(key), bytes(value)) for key, value in txn.cursor(db=self.coord_db)]

    def _load_log(self, state: LoadedState) -> None:
        log_file = os.path.join(self.logs.path, "data.mdb")
        with self.logs.env.begin() as txn:
            state.promised = self._read_promised(txn, log_file)
            # The retained entries at or below the applied slot too: they let
            # this replica answer a candidate that is a little behind.
            for key, value in txn.cursor(db=self.log_db):
                slot = _SLOT.unpack(key)[0]
                try:
                    state.log[slot] = decode_log_entry(value, f"{log_file}: the entry of slot {slot}")
                except CorruptData as exc:
                    if slot > state.applied_slot:
                        # An accepted value this replica may have voted for: it
                        # must not vote on without it (Paxos would break).
                        raise StoreError(
                            f"{exc}, above the applied slot {state.applied_slot}: this replica's Paxos log is "
                            "damaged and it must not vote with it. See 'Repairing a replica' in docs/OPERATIONS.md"
                        ) from None
                    state.damaged_log_slots.append(slot)  # applied and checkpointed: only kept for peers

    # -- the log ----------------------------------------------------------------------------
    def _read_promised(self, txn: lmdb.Transaction, log_file: str) -> int:
        """The promised ballot (8 bytes, then their CRC-32; older data has no CRC)."""
        raw = txn.get(b"promised", db=self.log_meta)
        if raw is None:
            return 0
        raw = bytes(raw)
        if len(raw) == 12 and _CRC.unpack_from(raw, 8)[0] == zlib.crc32(raw[:8]):
            return _INT.unpack_from(raw)[0]
        if len(raw) == 8:
            return _INT.unpack(raw)[0]
        raise StoreError(f"{log_file}: the promised ballot fails its checksum: this replica must not vote with a "
                         "promise it cannot read. See 'Repairing a replica' in docs/OPERATIONS.md")

    def persist(self, promised: int | None, entries: list[tuple[int, int, bytes]]) -> None:
        self.persist_job(promised, entries)()

    def persist_job(self, promised: int | None, entries: list[tuple[int, int, bytes]]) -> Callable[[], None]:
        """Encode now (on the event loop) and return the write, which then
        runs on the writer thread with as few Python steps as possible: each
        one there must win the GIL back from the event loop."""
        if promised is None and not entries:
            return _nothing
        meta = None
        if promised is not None:
            packed = _INT.pack(promised)
            meta = packed + _CRC.pack(zlib.crc32(packed))
        items = [(_SLOT.pack(slot), encode_log_entry(ballot, value)) for slot, ballot, value in entries]
        log_meta, log_db = self.log_meta, self.log_db

        def write(txn: lmdb.Transaction) -> None:
            if meta is not None:
                txn.put(b"promised", meta, db=log_meta)
            if items:
                consumed, _added = txn.cursor(db=log_db).putmulti(items)
                # Each put either lands or raises; anything else would lose a vote silently.
                assert consumed == len(items), f"putmulti wrote {consumed} of {len(items)} log entries"

        return partial(self.logs.write, write)

    def compact(self, upto_slot: int) -> None:
        self.logs.write(lambda txn: self._delete_log_upto(txn, upto_slot))

    def _delete_log_upto(self, txn: lmdb.Transaction, upto_slot: int) -> None:
        cursor = txn.cursor(db=self.log_db)
        if not cursor.first():
            return
        while True:
            key = cursor.key()
            if not key or _SLOT.unpack(key)[0] > upto_slot:
                return
            if not cursor.delete():  # moves to the next entry; False at the end
                return

    # -- the state ------------------------------------------------------------------------------
    def checkpoint(self, ckpt: Checkpoint) -> None:
        self.checkpoint_job(ckpt)()

    def checkpoint_job(self, ckpt: Checkpoint) -> Callable[[], None]:
        """Encode the whole checkpoint now and return its write (to run on any thread)."""
        value_of = ckpt.value_of
        puts = [(key, None if rec is None else encode_for_checkpoint(rec)) for key in ckpt.keys for rec in (value_of(key),)]
        return self.checkpoint_chunk_job(puts, ckpt.flush, ckpt)

    def checkpoint_chunk_job(self, puts: list, flush: bool, final: Checkpoint | None) -> Callable[[], None]:
        """One part of a checkpoint written over several ticks (see server._checkpoint).

        ``puts`` are (key, encoded record or None). Only the ``final`` part
        moves the applied slot: until then a crash replays from the previous one.
        """
        marks = msgpack.packb(final.marks) if final is not None and final.marks is not None else None

        def write(txn: lmdb.Transaction) -> None:
            if flush:
                txn.drop(self.state_db, delete=False)
            for key, data in puts:
                if data is None:
                    txn.delete(_db_key(key), db=self.state_db)
                else:
                    txn.put(_db_key(key), _db_value(key, data), db=self.state_db)
            if final is not None:
                txn.put(b"applied_slot", _INT.pack(final.applied_slot), db=self.state_meta)
                txn.put(b"clock", _INT.pack(final.clock), db=self.state_meta)
                if marks is not None:
                    txn.put(b"marks", marks, db=self.state_meta)
                for key, value in final.records_put:
                    txn.put(key, value, db=self.coord_db)
                for key in final.records_del:
                    txn.delete(key, db=self.coord_db)

        return lambda: self.states.write(write)

    # -- snapshots (catch-up of a lagging replica) ------------------------------------------
    def snapshot_chunks(self, max_bytes: int) -> Iterator[tuple[int, int, list[tuple[bytes, bytes]], bytes | None]]:
        with self.states.env.begin(buffers=False) as txn:
            applied = self.states.get_int(txn, b"applied_slot")
            clock = self.states.get_int(txn, b"clock")
            raw_marks = txn.get(b"marks", db=self.state_meta)
            marks = msgpack.unpackb(raw_marks, strict_map_key=False) if raw_marks else None
            records = [(key, value) for key, value in txn.cursor(db=self.coord_db)]
            meta: bytes | None = encode_snapshot_meta(marks, records)
            chunk: list[tuple[bytes, bytes]] = []
            size = 0
            for key, value in txn.cursor(db=self.state_db):
                # Never send damaged data to a peer (the stream stops; the peer asks again).
                decode_record(_from_db(key, value)[1], f"{self.states.path}: a record sent in a snapshot")
                chunk.append((key, value))
                size += len(key) + len(value)
                if size >= max_bytes:
                    yield applied, clock, chunk, meta
                    chunk, size, meta = [], 0, None
            yield applied, clock, chunk, meta

    def install_snapshot(
        self, applied_slot: int, clock: int, chunks: Iterable[list[tuple[bytes, bytes]]], meta: bytes | None = None
    ) -> None:
        """``chunks`` hold stored entries as snapshot_chunks read them (tagged keys)."""
        marks, records = decode_snapshot_meta(meta)

        def write_state(txn: lmdb.Transaction) -> None:
            txn.drop(self.state_db, delete=False)
            for chunk in chunks:
                for db_key, value in chunk:
                    txn.put(db_key, value, db=self.state_db)
            txn.put(b"applied_slot", _INT.pack(applied_slot), db=self.state_meta)
            txn.put(b"clock", _INT.pack(clock), db=self.state_meta)
            # The snapshot's epochs and records: the slots it covers will never
            # be replayed here. Our own records stay (the log above may need them).
            if marks is not None:
                txn.put(b"marks", msgpack.packb(marks), db=self.state_meta)
            else:
                txn.delete(b"marks", db=self.state_meta)
            for key, value in records:
                txn.put(key, value, db=self.coord_db)

        self.states.write(write_state)
        # Entries above the snapshot stay: this replica may have acknowledged
        # them, and a chosen value needs every such copy.
        self.compact(applied_slot)

    def stats(self) -> dict:
        return {"used_bytes": self.logs.used_bytes() + self.states.used_bytes()}

    def close(self) -> None:
        self.logs.env.close()
        self.states.env.close()
