"""Receiving a snapshot: collect one stream's chunks, then hand them over whole.

Shared by the real driver and the simulator. Chunks of a stream arrive in
order on one connection; a chunk out of order (a lost message in between),
or a newer stream, discards what was collected. Bounded: one stream at a time.

A record bigger than a chunk (a collection grown by many small writes) goes
in pieces, one message each: ``[key, piece, True]`` continues in the next
item, and the item without the flag ends it. Whole, it would make a message
past the peers' frame limit (256 MB), and no snapshot of its shard could
ever be sent.
"""

from __future__ import annotations

from makod.core.messages import SnapshotChunk

SNAPSHOT_CHUNK_BYTES = 1024 * 1024


class SnapshotReceiver:
    def __init__(self) -> None:
        self.key: tuple[int, int] | None = None  # (src, applied_slot)
        self.next_index = 0
        self.chunks: list[list] = []
        self.meta: bytes | None = None

    def receive(self, msg: SnapshotChunk, applied_slot: int) -> tuple[int, int, list[list], bytes | None] | None:
        """Returns (applied_slot, clock, chunks, meta) when a whole snapshot newer than ours arrived."""
        if msg.applied_slot <= applied_slot:
            return None
        key = (msg.src, msg.applied_slot)
        if key != self.key or msg.index != self.next_index:
            if msg.index != 0:
                self.key, self.next_index, self.chunks = None, 0, []
                return None
            self.key, self.next_index, self.chunks = key, 0, []
            self.meta = msg.meta
        self.chunks.append(msg.items)
        self.next_index += 1
        if not msg.last:
            return None
        chunks, meta = self.chunks, self.meta
        self.key, self.next_index, self.chunks, self.meta = None, 0, [], None
        joined = _joined(chunks)
        if joined is None:
            return None  # a piece that nothing ends: not a snapshot to install
        return msg.applied_slot, msg.clock, joined, meta


def _joined(chunks: list[list]) -> list[list] | None:
    """The chunks with every record's pieces put back together (None: malformed)."""
    out: list[list] = []
    parts: list[bytes] = []
    part_key = None
    for items in chunks:
        fixed = []
        if type(items) is not list:
            return None
        for item in items:
            if type(item) not in (list, tuple) or len(item) not in (2, 3) or type(item[1]) is not bytes:
                return None
            if len(item) == 3:
                if parts and item[0] != part_key:
                    return None
                part_key = item[0]
                parts.append(item[1])
                continue
            if parts:
                if item[0] != part_key:
                    return None
                item = (part_key, b"".join(parts) + item[1])
                parts = []
            fixed.append(item)
        out.append(fixed)
    return None if parts else out


def _split(chunk_iter, max_bytes: int):
    """The store's chunks, with each record over ``max_bytes`` cut into pieces of
    one chunk each (the first chunk keeps the stream's meta)."""
    for applied, clock, items, meta in chunk_iter:
        if all(len(item[1]) <= max_bytes for item in items):
            yield applied, clock, items, meta
            continue
        small: list = []
        for key, value in items:
            if len(value) <= max_bytes:
                small.append((key, value))
                continue
            if small:
                yield applied, clock, small, meta
                small, meta = [], None
            for start in range(0, len(value), max_bytes):
                piece = value[start:start + max_bytes]
                more = start + max_bytes < len(value)
                yield applied, clock, [(key, piece, True) if more else (key, piece)], meta
                meta = None
        if small:
            yield applied, clock, small, meta


def snapshot_messages(shard: int, src: int, chunk_iter, max_bytes: int = SNAPSHOT_CHUNK_BYTES) -> list[SnapshotChunk]:
    """Turn a store's snapshot_chunks() into the messages of one stream."""
    chunks = list(_split(chunk_iter, max_bytes))
    out = []
    for i, (applied, clock, items, meta) in enumerate(chunks):
        out.append(SnapshotChunk(shard, src, applied, clock, i, i == len(chunks) - 1, items, meta))
    return out
