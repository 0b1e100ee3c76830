"""Receiving a snapshot: collect one stream's chunks, then hand them over whole.

Shared by the real driver and the simulator. Chunks of a stream arrive in
order on one connection; a chunk out of order (a lost message in between),
or a newer stream, discards what was collected. Bounded: one stream at a time.
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
        return msg.applied_slot, msg.clock, chunks, meta


def snapshot_messages(shard: int, src: int, chunk_iter) -> list[SnapshotChunk]:
    """Turn a store's snapshot_chunks() into the messages of one stream."""
    chunks = list(chunk_iter)
    out = []
    for i, (applied, clock, items, meta) in enumerate(chunks):
        out.append(SnapshotChunk(shard, src, applied, clock, i, i == len(chunks) - 1, items, meta))
    return out
