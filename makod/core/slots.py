"""Which shard owns each slot (the slot of a key: makod/kv/hashslot.py,
exactly as Redis Cluster computes it)."""

from __future__ import annotations

from makod.kv import dbs
from makod.kv.hashslot import NUM_SLOTS, crc16, key_slot  # noqa: F401  (re-exported)


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
