"""Keys to hash slots, exactly as Redis Cluster does (src/cluster.c keyHashSlot).

slot = CRC16/XMODEM(key) mod 16384, where only the part between the first
``{`` and the next ``}`` is hashed if that part is non-empty (a hash tag), so
applications can put related keys in one slot, hence on one shard.

It lives in the data model, below both the cores (routing, core/slots.py)
and the RESP layer (CLUSTER KEYSLOT), which must not import each other.
"""

from __future__ import annotations

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
