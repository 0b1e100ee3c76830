"""HyperLogLog commands (Redis 7.0 src/hyperloglog.c semantics).

An HLL is a string value in Redis's own format: a 16-byte header ("HYLL",
an encoding byte, 3 unused bytes, the cached cardinality as 8 little-endian
bytes whose top bit marks the cache invalid) and the registers. makodb always
writes the DENSE encoding: 16384 registers of 6 bits packed as Redis packs
them (register i starts at bit 6*i, least significant bits first), 12288
bytes. Elements are hashed with MurmurHash64A (seed 0xadc83b19) and counted
with Redis's estimator (Ertl's improved estimator), so PFCOUNT answers what
Redis answers for the same elements. A SPARSE HLL (as Redis writes it, e.g.
restored with SET) is read too; the first write turns it dense.

PFCOUNT is a read here: Redis also writes the computed cardinality back into
the header, makodb keeps it in a small in-process memo keyed by the value
instead (the value's bytes fully determine the count).
"""

from __future__ import annotations

import math
from collections import Counter

from makod.kv.errors import CommandError
from makod.kv.records import KIND_NATIVE, KIND_STRING
from makod.kv.replies import OK
from makod.kv.table import command
from makod.kv import errors

HLL_NOT_VALID = "WRONGTYPE Key is not a valid HyperLogLog string value."
HLL_CORRUPTED = "INVALIDOBJ Corrupted HLL object detected"

HLL_P = 14
HLL_Q = 64 - HLL_P
HLL_REGISTERS = 1 << HLL_P
HLL_P_MASK = HLL_REGISTERS - 1
HLL_BITS = 6
HLL_REGISTER_MAX = (1 << HLL_BITS) - 1
HLL_HDR_SIZE = 16
HLL_DENSE_BYTES = (HLL_REGISTERS * HLL_BITS + 7) // 8  # 12288
HLL_DENSE_SIZE = HLL_HDR_SIZE + HLL_DENSE_BYTES
HLL_DENSE = 0
HLL_SPARSE = 1
HLL_ALPHA_INF = 0.721347520444481703680  # 0.5/ln(2)

_MASK64 = (1 << 64) - 1
_M = 0xC6A4A7935BD1E995
_SEED = 0xADC83B19

# A new dense HLL: cached cardinality 0, valid.
_EMPTY_DENSE = b"HYLL" + bytes([HLL_DENSE, 0, 0, 0]) + bytes(8) + bytes(HLL_DENSE_BYTES)


def murmurhash64a(data: bytes, seed: int = _SEED) -> int:
    """Redis's MurmurHash64A (src/hyperloglog.c), little-endian reads."""
    n = len(data)
    h = (seed ^ (n * _M)) & _MASK64
    end = n - (n & 7)
    for i in range(0, end, 8):
        k = int.from_bytes(data[i : i + 8], "little")
        k = (k * _M) & _MASK64
        k ^= k >> 47
        k = (k * _M) & _MASK64
        h ^= k
        h = (h * _M) & _MASK64
    rest = n & 7
    if rest:
        h ^= int.from_bytes(data[end:], "little")
        h = (h * _M) & _MASK64
    h ^= h >> 47
    h = (h * _M) & _MASK64
    h ^= h >> 47
    return h


def pat_len(element: bytes) -> tuple[int, int]:
    """hllPatLen: (register index, run length of zeros + 1)."""
    h = murmurhash64a(element)
    index = h & HLL_P_MASK
    h >>= HLL_P
    h |= 1 << HLL_Q
    # Count trailing zeros + 1.
    count = (h & -h).bit_length()
    return index, count


def _get_register(regs, i: int) -> int:
    """HLL_DENSE_GET_REGISTER over the register bytes (past the end reads 0)."""
    pos = i * HLL_BITS
    byte = pos >> 3
    fb = pos & 7
    b0 = regs[byte]
    b1 = regs[byte + 1] if byte + 1 < len(regs) else 0
    return ((b0 >> fb) | (b1 << (8 - fb))) & HLL_REGISTER_MAX


def _set_register(regs: bytearray, i: int, v: int) -> None:
    """HLL_DENSE_SET_REGISTER (regs: the register bytes only)."""
    pos = i * HLL_BITS
    byte = pos >> 3
    fb = pos & 7
    regs[byte] = (regs[byte] & ~(HLL_REGISTER_MAX << fb) & 0xFF) | ((v << fb) & 0xFF)
    if byte + 1 < len(regs):
        fb8 = 8 - fb
        regs[byte + 1] = (regs[byte + 1] & ~(HLL_REGISTER_MAX >> fb8) & 0xFF) | (v >> fb8)


def dense_to_registers(regs: bytes) -> list[int]:
    """The 16384 register values of dense register bytes."""
    groups = [int.from_bytes(regs[i : i + 3], "little") for i in range(0, HLL_DENSE_BYTES, 3)]
    out = [0] * HLL_REGISTERS
    out[0::4] = [g & 63 for g in groups]
    out[1::4] = [(g >> 6) & 63 for g in groups]
    out[2::4] = [(g >> 12) & 63 for g in groups]
    out[3::4] = [g >> 18 for g in groups]
    return out


def registers_to_dense(values: list[int]) -> bytes:
    """Pack 16384 register values (each < 64) into dense register bytes."""
    groups = map(
        lambda a, b, c, d: a | (b << 6) | (c << 12) | (d << 18),
        values[0::4], values[1::4], values[2::4], values[3::4],
    )
    return b"".join(g.to_bytes(3, "little") for g in groups)


def sparse_to_registers(body: bytes) -> list[int] | None:
    """Decode SPARSE opcodes (ZERO, XZERO, VAL); None if they are invalid."""
    out = [0] * HLL_REGISTERS
    idx = 0
    p = 0
    n = len(body)
    while p < n:
        b = body[p]
        if b & 0xC0 == 0:  # ZERO: 00xxxxxx
            idx += (b & 0x3F) + 1
            p += 1
        elif b & 0xC0 == 0x40:  # XZERO: 01xxxxxx yyyyyyyy
            if p + 1 >= n:
                return None
            idx += (((b & 0x3F) << 8) | body[p + 1]) + 1
            p += 2
        else:  # VAL: 1vvvvvxx
            run = (b & 3) + 1
            val = ((b >> 2) & 0x1F) + 1
            if idx + run > HLL_REGISTERS:
                return None
            out[idx : idx + run] = [val] * run
            idx += run
            p += 1
        if idx > HLL_REGISTERS:
            return None
    if idx != HLL_REGISTERS:
        return None
    return out


def _sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y = 1.0
    z = x
    while True:
        x *= x
        z_prime = z
        z += x * y
        y += y
        if z_prime == z:
            return z


def _tau(x: float) -> float:
    if x == 0.0 or x == 1.0:
        return 0.0
    y = 1.0
    z = 1 - x
    while True:
        x = math.sqrt(x)
        z_prime = z
        y *= 0.5
        z -= math.pow(1 - x, 2) * y
        if z_prime == z:
            return z / 3


def count_histogram(histo: Counter | dict) -> int:
    """hllCount's estimate from the register histogram."""
    m = float(HLL_REGISTERS)
    z = m * _tau((m - histo.get(HLL_Q + 1, 0)) / m)
    for j in range(HLL_Q, 0, -1):
        z += histo.get(j, 0)
        z *= 0.5
    z += m * _sigma(histo.get(0, 0) / m)
    e = HLL_ALPHA_INF * m * m / z
    # llroundl: half away from zero (e >= 0).
    r = math.floor(e)
    if e - r >= 0.5:
        r += 1
    return int(r)


def count_registers(values: list[int]) -> int:
    return count_histogram(Counter(values))


# -- values --------------------------------------------------------------------------

_MEMO: dict[bytes, int] = {}
_MEMO_MAX = 256


def _hll_bytes(rec) -> bytes:
    """isHLLObjectOrReply: the value of a valid HLL, else WRONGTYPE errors."""
    if rec.kind == KIND_STRING:
        value = rec.value
    elif rec.kind == KIND_NATIVE:
        raise CommandError(HLL_NOT_VALID)
    else:
        raise CommandError(errors.WRONGTYPE)
    if (
        len(value) < HLL_HDR_SIZE
        or value[:4] != b"HYLL"
        or value[4] > HLL_SPARSE
        or (value[4] == HLL_DENSE and len(value) != HLL_DENSE_SIZE)
    ):
        raise CommandError(HLL_NOT_VALID)
    return value


def _registers(value: bytes) -> list[int]:
    if value[4] == HLL_DENSE:
        return dense_to_registers(value[HLL_HDR_SIZE:])
    regs = sparse_to_registers(value[HLL_HDR_SIZE:])
    if regs is None:
        raise CommandError(HLL_CORRUPTED)
    return regs


def _dense_registers(value: bytes) -> bytearray:
    """Writable dense register bytes of a valid HLL value."""
    if value[4] == HLL_DENSE:
        return bytearray(value[HLL_HDR_SIZE:])
    return bytearray(registers_to_dense(_registers(value)))


def _with_invalid_cache(regs: bytes | bytearray) -> bytes:
    return b"HYLL" + bytes([HLL_DENSE, 0, 0, 0]) + bytes(7) + b"\x80" + bytes(regs)


def cardinality(value: bytes) -> int:
    """PFCOUNT of one valid HLL value: the cached count if valid, else computed."""
    card = value[8:16]
    if not card[7] & 0x80:
        return int.from_bytes(card, "little")
    cached = _MEMO.get(value)
    if cached is not None:
        return cached
    result = count_registers(_registers(value))
    if len(_MEMO) >= _MEMO_MAX:
        _MEMO.pop(next(iter(_MEMO)))
    _MEMO[value] = result
    return result


# -- commands ------------------------------------------------------------------------


@command("pfadd", -2, "write denyoom fast", keys=(1, 1, 1), group="hyperloglog", summary="Adds the specified elements to the specified HyperLogLog.", since="2.8.9", complexity="O(1) to add every element.")
def pfadd(ctx, args):
    key = args[1]
    rec = ctx.get(key)
    updated = False
    if rec is None:
        regs = bytearray(HLL_DENSE_BYTES)
        expire = None
        updated = True
    else:
        value = _hll_bytes(rec)
        regs = _dense_registers(value)
        expire = rec.expire_ms
    for element in args[2:]:
        index, count = pat_len(element)
        if count > _get_register(regs, index):
            _set_register(regs, index, count)
            updated = True
    if updated:
        # A sparse value becomes dense here (Redis may keep it sparse: the
        # registers, and so the counts, are the same).
        ctx.set(key, KIND_STRING, _with_invalid_cache(regs), expire)
    return 1 if updated else 0


@command("pfcount", -2, "readonly", keys=(1, -1, 1), group="hyperloglog", summary="Return the approximated cardinality of the set(s) observed by the HyperLogLog at key(s).", since="2.8.9", complexity="O(1) with a very small average constant time when called with a single key. O(N) with N being the number of keys, and much bigger constant times, when called with multiple keys.")
def pfcount(ctx, args):
    if len(args) == 2:
        rec = ctx.get(args[1])
        if rec is None:
            return 0
        return cardinality(_hll_bytes(rec))
    merged = [0] * HLL_REGISTERS
    for key in args[1:]:
        rec = ctx.get(key)
        if rec is None:
            continue
        value = _hll_bytes(rec)
        merged = list(map(max, merged, _registers(value)))
    return count_registers(merged)


@command("pfmerge", -2, "write denyoom", keys=(1, -1, 1), group="hyperloglog", summary="Merge N different HyperLogLogs into a single one.", since="2.8.9", complexity="O(N) to merge N HyperLogLogs, but with high constant times.")
def pfmerge(ctx, args):
    dest = args[1]
    merged = [0] * HLL_REGISTERS
    dest_rec = None
    for j, key in enumerate(args[1:]):
        rec = ctx.get(key)
        if j == 0:
            dest_rec = rec
        if rec is None:
            continue
        value = _hll_bytes(rec)
        merged = list(map(max, merged, _registers(value)))
    expire = None if dest_rec is None else dest_rec.expire_ms
    ctx.set(dest, KIND_STRING, _with_invalid_cache(registers_to_dense(merged)), expire)
    return OK
