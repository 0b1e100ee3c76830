"""Keys to hash slots, exactly as Redis Cluster does (src/cluster.c keyHashSlot).

slot = CRC16/XMODEM(key) mod 16384, where only the part between the first
``{`` and the next ``}`` is hashed if that part is non-empty (a hash tag), so
applications can put related keys in one slot, hence on one shard.
"""

from __future__ import annotations

from makod.kv import dbs

NUM_SLOTS = 16384


def _table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_CRC_TABLE = _table()


def crc16(data: bytes) -> int:
    crc = 0
    table = _CRC_TABLE
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[((crc >> 8) ^ b) & 0xFF]
    return crc


def key_slot(key: bytes) -> int:
    start = key.find(b"{")
    if start != -1:
        end = key.find(b"}", start + 1)
        if end != -1 and end != start + 1:
            key = key[start + 1 : end]
    return crc16(key) & (NUM_SLOTS - 1)


class SlotMap:
    """Which shard owns each slot, from the config's inclusive slot ranges."""

    def __init__(self, ranges_by_shard: list[list[tuple[int, int]]]) -> None:
        bounds = sorted((lo, hi, shard) for shard, ranges in enumerate(ranges_by_shard) for lo, hi in ranges)
        self._ranges = bounds
        self.num_shards = len(ranges_by_shard)
        self._owner = [0] * NUM_SLOTS
        for lo, hi, shard in bounds:
            for slot in range(lo, hi + 1):
                self._owner[slot] = shard
        self._cache: dict[bytes, int] = {}

    def shard_of_slot(self, slot: int) -> int:
        return self._owner[slot]

    def shard_of(self, key: bytes) -> int:
        """The shard of an internal key (kv/dbs.py): its user key's, so a
        key's name lives on one shard in every database."""
        shard = self._cache.get(key)
        if shard is None:
            shard = self._owner[key_slot(dbs.user_key(key))]
            if len(self._cache) < 100_000:
                self._cache[key] = shard
        return shard

    def shard_of_user(self, db: int, key: bytes) -> int:
        return self.shard_of(dbs.encode(db, key))

    def range_shards(self, start: bytes, end: bytes | None) -> list[int]:
        """The shards that may hold keys k with start <= k < end.

        Keys are hashed, so a range holds keys of every shard, unless it stays
        inside one hash tag: then all its keys share one slot.
        """
        open_ = start.find(b"{")
        if open_ != -1 and end is not None:
            close = start.find(b"}", open_ + 1)
            if close > open_ + 1:
                prefix = start[: close + 1]
                if end.startswith(prefix) or end == _successor(prefix):
                    return [self.shard_of(start)]
        return list(range(self.num_shards))

    def first_slot(self, shard: int) -> int:
        for lo, _, owner in self._ranges:
            if owner == shard:
                return lo
        raise KeyError(shard)

    def tag_for_shard(self, shard: int, prefix: str = "t") -> str:
        """A hash tag (without braces) whose keys all live on ``shard``.

        Deterministic: the first of ``prefix0, prefix1, ...`` that lands there.
        """
        n = 0
        while True:
            tag = f"{prefix}{n}"
            if self._owner[key_slot(tag.encode())] == shard:
                return tag
            n += 1


def _successor(prefix: bytes) -> bytes:
    """The smallest byte string greater than every string starting with ``prefix``."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return prefix + b"\x00"
    return trimmed[:-1] + bytes([trimmed[-1] + 1])
