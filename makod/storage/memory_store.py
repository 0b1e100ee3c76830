"""The in-memory twin of LmdbStore, for the simulator.

Same interface, same encoding (records and log entries go through the same
msgpack functions, so encoding bugs show up in simulation too). What it holds
is what "the disk" holds: a simulated crash keeps it and throws away the
replica's memory.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Iterable, Iterator

from makod.core.durability import Checkpoint
from makod.kv.keyspace import Keyspace
from makod.storage.base import (
    LoadedState,
    decode_log_entry,
    decode_record,
    decode_snapshot_meta,
    encode_for_checkpoint,
    encode_log_entry,
    encode_snapshot_meta,
)


class MemoryStore:
    def __init__(self) -> None:
        self.promised = 0
        self.applied_slot = 0
        self.clock = 0
        self.log: dict[int, bytes] = {}
        self.state: dict[bytes, bytes] = {}
        self.marks: list | None = None
        self.records: dict[bytes, bytes] = {}  # coordinator records, encoded
        self.writes = 0  # number of durable write transactions (tests count syncs)

    def load(self) -> LoadedState:
        ks = Keyspace.from_records((key, decode_record(value)) for key, value in self.state.items())
        # The retained entries at or below the applied slot too: they let this
        # replica answer a candidate that is a little behind.
        log = {slot: decode_log_entry(value) for slot, value in self.log.items()}
        return LoadedState(self.promised, log, self.applied_slot, self.clock, ks, self.marks, list(self.records.items()))

    def persist_job(self, promised: int | None, entries: list[tuple[int, int, bytes]]) -> Callable[[], None]:
        return partial(self.persist, promised, entries)

    def persist(self, promised: int | None, entries: list[tuple[int, int, bytes]]) -> None:
        if promised is None and not entries:
            return
        self.writes += 1
        if promised is not None:
            assert promised >= self.promised, "a promised ballot never decreases"
            self.promised = promised
        for slot, ballot, value in entries:
            self.log[slot] = encode_log_entry(ballot, value)

    def checkpoint(self, ckpt: Checkpoint) -> None:
        self.writes += 1
        assert ckpt.applied_slot >= self.applied_slot, "applied slot never goes back"
        if ckpt.flush:
            self.state.clear()
        for key in ckpt.keys:
            rec = ckpt.value_of(key)
            if rec is None:
                self.state.pop(key, None)
            else:
                self.state[key] = encode_for_checkpoint(rec)
        self._finish_checkpoint(ckpt)

    def _finish_checkpoint(self, ckpt: Checkpoint) -> None:
        assert ckpt.applied_slot >= self.applied_slot, "applied slot never goes back"
        self.applied_slot = ckpt.applied_slot
        self.clock = ckpt.clock
        if ckpt.marks is not None:
            self.marks = ckpt.marks
        for key, value in ckpt.records_put:
            self.records[key] = value
        for key in ckpt.records_del:
            self.records.pop(key, None)

    def checkpoint_chunk_job(self, puts: list, flush: bool, final: Checkpoint | None):
        """One part of a checkpoint written in parts (driver.maybe_checkpoint): the
        same contract as LmdbStore's. ``puts`` are (key, encoded record or None);
        only the ``final`` part moves the applied slot."""

        def write() -> None:
            self.writes += 1
            if flush:
                self.state.clear()
            for key, data in puts:
                if data is None:
                    self.state.pop(key, None)
                else:
                    self.state[key] = data
            if final is not None:
                self._finish_checkpoint(final)

        return write

    def compact(self, upto_slot: int) -> None:
        for slot in [s for s in self.log if s <= upto_slot]:
            del self.log[slot]

    def snapshot_chunks(self, max_bytes: int) -> Iterator[tuple[int, int, list[tuple[bytes, bytes]], bytes | None]]:
        items = list(self.state.items())
        meta: bytes | None = encode_snapshot_meta(self.marks, list(self.records.items()))
        chunk: list[tuple[bytes, bytes]] = []
        size = 0
        for key, value in items:
            chunk.append((key, value))
            size += len(key) + len(value)
            if size >= max_bytes:
                yield self.applied_slot, self.clock, chunk, meta
                chunk, size, meta = [], 0, None
        yield self.applied_slot, self.clock, chunk, meta

    def install_snapshot(
        self, applied_slot: int, clock: int, chunks: Iterable[list[tuple[bytes, bytes]]], meta: bytes | None = None
    ) -> None:
        self.writes += 1
        self.state = {}
        self.log = {slot: v for slot, v in self.log.items() if slot > applied_slot}
        for chunk in chunks:
            for key, value in chunk:
                self.state[key] = value
        marks, records = decode_snapshot_meta(meta)
        self.marks = marks
        self.records.update(records)  # ours stay: the log above the snapshot may need them
        self.applied_slot = applied_slot
        self.clock = clock

    def close(self) -> None:
        pass
