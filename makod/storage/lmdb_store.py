"""LMDB storage for one replica.

One environment per replica with three named databases: ``meta`` (promised
ballot, applied slot, clock, identity), ``log`` (slot as 8 big-endian bytes ->
[ballot, value]) and ``state`` (key -> [kind, value, expire_ms, version]).
Every write transaction commits with a sync, so when ``persist`` or
``checkpoint`` returns the data survives a crash; group commit comes from the
caller putting many client writes in each call.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Iterable, Iterator

import lmdb
import msgpack

from makod.core.durability import Checkpoint
from makod.core.keyspace import Keyspace
from makod.storage.base import (
    LoadedState,
    decode_log_entry,
    decode_record,
    encode_log_entry,
    encode_record,
)

_SLOT = struct.Struct(">Q")
_INT = struct.Struct(">q")

# The map is virtual address space, not disk: start big, grow if ever full.
DEFAULT_MAP_SIZE = 1 << 36


class StoreError(Exception):
    pass


class LmdbStore:
    def __init__(self, path: str, identity: dict, map_size: int = DEFAULT_MAP_SIZE) -> None:
        os.makedirs(path, exist_ok=True)
        self.path = path
        self.env = lmdb.open(
            path,
            map_size=map_size,
            max_dbs=4,
            subdir=True,
            sync=True,
            metasync=True,
            readahead=False,
            max_readers=64,
        )
        self.meta = self.env.open_db(b"meta")
        self.log = self.env.open_db(b"log")
        self.state = self.env.open_db(b"state")
        self._check_identity(identity)

    def _check_identity(self, identity: dict) -> None:
        want = json.dumps(identity, sort_keys=True).encode()
        with self.env.begin(write=True, db=self.meta) as txn:
            have = txn.get(b"identity")
            if have is None:
                txn.put(b"identity", want)
            elif have != want:
                raise StoreError(
                    f"{self.path} holds data of {have.decode()}, not of {want.decode()}: "
                    "refusing to start on another replica's data"
                )

    # -- loading ------------------------------------------------------------------------
    def load(self) -> LoadedState:
        state = LoadedState()
        with self.env.begin() as txn:
            state.promised = self._get_int(txn, b"promised")
            state.applied_slot = self._get_int(txn, b"applied_slot")
            state.clock = self._get_int(txn, b"clock")
            raw_marks = txn.get(b"marks", db=self.meta)
            state.marks = msgpack.unpackb(raw_marks, strict_map_key=False) if raw_marks else None
            state.keyspace = Keyspace.from_records(
                (bytes(key), decode_record(value)) for key, value in txn.cursor(db=self.state)
            )
            for key, value in txn.cursor(db=self.log):
                slot = _SLOT.unpack(key)[0]
                if slot > state.applied_slot:
                    state.log[slot] = decode_log_entry(value)
        return state

    def _get_int(self, txn: lmdb.Transaction, key: bytes) -> int:
        raw = txn.get(key, db=self.meta)
        return _INT.unpack(raw)[0] if raw is not None else 0

    # -- writing ------------------------------------------------------------------------
    def _write(self, fn) -> None:
        while True:
            try:
                with self.env.begin(write=True) as txn:
                    fn(txn)
                return
            except lmdb.MapFullError:
                self.env.set_mapsize(self.env.info()["map_size"] * 2)

    def persist(self, promised: int | None, entries: list[tuple[int, int, bytes]]) -> None:
        if promised is None and not entries:
            return

        def write(txn: lmdb.Transaction) -> None:
            if promised is not None:
                txn.put(b"promised", _INT.pack(promised), db=self.meta)
            for slot, ballot, value in entries:
                txn.put(_SLOT.pack(slot), encode_log_entry(ballot, value), db=self.log)

        self._write(write)

    def checkpoint(self, ckpt: Checkpoint) -> None:
        self.checkpoint_job(ckpt)()

    def checkpoint_job(self, ckpt: Checkpoint):
        """Encode the checkpoint now (its records are live objects) and return
        the write, which may then run on another thread."""
        puts = [(key, None if rec is None else encode_record(rec)) for key, rec in ckpt.puts]
        applied, clock, flush = ckpt.applied_slot, ckpt.clock, ckpt.flush
        marks = msgpack.packb(ckpt.marks) if ckpt.marks is not None else None

        def write(txn: lmdb.Transaction) -> None:
            if flush:
                txn.drop(self.state, delete=False)
            for key, data in puts:
                if data is None:
                    txn.delete(key, db=self.state)
                else:
                    txn.put(key, data, db=self.state)
            txn.put(b"applied_slot", _INT.pack(applied), db=self.meta)
            txn.put(b"clock", _INT.pack(clock), db=self.meta)
            if marks is not None:
                txn.put(b"marks", marks, db=self.meta)

        return lambda: self._write(write)

    def compact(self, upto_slot: int) -> None:
        self._write(lambda txn: self._delete_log_upto(txn, upto_slot))

    def _delete_log_upto(self, txn: lmdb.Transaction, upto_slot: int) -> None:
        cursor = txn.cursor(db=self.log)
        if not cursor.first():
            return
        while True:
            key = cursor.key()
            if not key or _SLOT.unpack(key)[0] > upto_slot:
                return
            if not cursor.delete():  # moves to the next entry; False at the end
                return

    # -- snapshots (catch-up of a lagging replica) ------------------------------------------
    def snapshot_chunks(self, max_bytes: int) -> Iterator[tuple[int, int, list[tuple[bytes, bytes]]]]:
        with self.env.begin(buffers=False) as txn:
            applied = self._get_int(txn, b"applied_slot")
            clock = self._get_int(txn, b"clock")
            chunk: list[tuple[bytes, bytes]] = []
            size = 0
            for key, value in txn.cursor(db=self.state):
                chunk.append((key, value))
                size += len(key) + len(value)
                if size >= max_bytes:
                    yield applied, clock, chunk
                    chunk, size = [], 0
            yield applied, clock, chunk

    def install_snapshot(
        self, applied_slot: int, clock: int, chunks: Iterable[list[tuple[bytes, bytes]]]
    ) -> None:
        def write(txn: lmdb.Transaction) -> None:
            txn.drop(self.state, delete=False)
            # Entries above the snapshot stay: this replica may have
            # acknowledged them, and a chosen value needs every such copy.
            self._delete_log_upto(txn, applied_slot)
            for chunk in chunks:
                for key, value in chunk:
                    txn.put(key, value, db=self.state)
            txn.put(b"applied_slot", _INT.pack(applied_slot), db=self.meta)
            txn.put(b"clock", _INT.pack(clock), db=self.meta)

        self._write(write)

    def stats(self) -> dict:
        info = self.env.info()
        stat = self.env.stat()
        return {
            "map_size": info["map_size"],
            "last_pgno": info["last_pgno"],
            "page_size": stat["psize"],
            "used_bytes": (info["last_pgno"] + 1) * stat["psize"],
        }

    def close(self) -> None:
        self.env.close()
