"""Redis's ``redisLrand48`` (src/rand.c): the generator behind Lua's math.random.

A 48-bit linear congruential generator, X' = (0x5DEECE66D * X + 0xB) mod 2**48,
whose draws are the top 31 bits of X. Redis reseeds it with 0 before every
EVAL, so scripts see the same sequence on every run (and on every replica).
"""

from __future__ import annotations

_A = 0x5DEECE66D
_C = 0xB
_MASK = (1 << 48) - 1
LRAND48_MAX = 2**31 - 1  # REDIS_LRAND48_MAX (INT32_MAX)


class Rand48:
    __slots__ = ("x",)

    def __init__(self, seed: int = 0) -> None:
        self.x = 0
        self.seed(seed)

    def seed(self, seedval: int) -> None:
        """redisSrand48: X = seed (low 32 bits) << 16 | 0x330E."""
        self.x = (((seedval & 0xFFFFFFFF) << 16) | 0x330E) & _MASK

    def lrand48(self) -> int:
        self.x = (_A * self.x + _C) & _MASK
        return self.x >> 17

    def random(self) -> float:
        """math.random()'s r in [0, 1): lrand48() % MAX / MAX (src/script_lua.c)."""
        return (self.lrand48() % LRAND48_MAX) / LRAND48_MAX
