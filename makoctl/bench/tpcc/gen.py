"""TPC-C random numbers (clause 2.1.6, 4.3.2) and transaction inputs (clauses 2.4.1-2.8.1).

Everything random is made here, on the client, and shipped in the call's
arguments: the procedures in makod are deterministic.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

from makod.procs.tpcc_schema import CUSTOMERS, DISTRICTS

SYLLABLES = ["BAR", "OUGHT", "ABLE", "PRI", "PRES", "ESE", "ANTI", "CALLY", "ATION", "EING"]

# NURand A values (clause 2.1.6)
A_C_LAST = 255
A_C_ID = 1023
A_OL_I_ID = 8191

# The mix (clause 5.2.3): per deck of 100 cards, shuffled (clause 5.2.4).
NEW_ORDER, PAYMENT, ORDER_STATUS, DELIVERY, STOCK_LEVEL = "new_order", "payment", "order_status", "delivery", "stock_level"
TYPES = [NEW_ORDER, PAYMENT, ORDER_STATUS, DELIVERY, STOCK_LEVEL]
MIX = {NEW_ORDER: 45, PAYMENT: 43, ORDER_STATUS: 4, DELIVERY: 4, STOCK_LEVEL: 4}
DECK = [kind for kind, n in MIX.items() for _ in range(n)]

REMOTE_LINE_PCT = 1  # clause 2.4.1.5: 1% of order lines supplied by a remote warehouse
REMOTE_PAYMENT_PCT = 15  # clause 2.5.1.2: 15% of payments for a remote warehouse's customer
BY_NAME_PCT = 60  # clauses 2.5.1.2 and 2.6.1.2
ROLLBACK_PCT = 1  # clause 2.4.1.4


def c_last(num: int) -> str:
    """C_LAST for a number 0..999 (clause 4.3.2.3)."""
    return SYLLABLES[num // 100] + SYLLABLES[(num // 10) % 10] + SYLLABLES[num % 10]


def nurand(rng: random.Random, a: int, x: int, y: int, c: int) -> int:
    """NURand(A, x, y) = (((random(0, A) | random(x, y)) + C) % (y - x + 1)) + x."""
    return (((rng.randint(0, a) | rng.randint(x, y)) + c) % (y - x + 1)) + x


def c_delta_ok(c_load: int, c_run: int) -> bool:
    """Clause 2.1.6.1: |C-Run - C-Load| for C_LAST in [65, 119], and not 96 or 112."""
    delta = abs(c_run - c_load)
    return 65 <= delta <= 119 and delta not in (96, 112)


@dataclass(frozen=True)
class NURandC:
    c_last: int
    c_id: int
    ol_i_id: int

    @classmethod
    def for_load(cls, rng: random.Random) -> "NURandC":
        return cls(rng.randint(0, A_C_LAST), rng.randint(0, A_C_ID), rng.randint(0, A_OL_I_ID))

    @classmethod
    def for_run(cls, rng: random.Random, c_load: int) -> "NURandC":
        """Run-time constants: C for C_LAST obeys the C-Delta rule against the load's C."""
        while True:
            c = rng.randint(0, A_C_LAST)
            if c_delta_ok(c_load, c):
                return cls(c, rng.randint(0, A_C_ID), rng.randint(0, A_OL_I_ID))


class Strings:
    """Random a-strings / n-strings (clause 4.3.2.2): slices of a big random pool at random offsets."""

    ALNUM = string.ascii_letters + string.digits
    POOL = 1 << 16

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.alnum = "".join(rng.choices(self.ALNUM, k=self.POOL))
        self.digits = "".join(rng.choices(string.digits, k=self.POOL))
        self.letters = "".join(rng.choices(string.ascii_uppercase, k=4096))

    def a(self, lo: int, hi: int) -> str:
        n = self.rng.randint(lo, hi) if lo != hi else lo
        off = self.rng.randrange(self.POOL - n)
        return self.alnum[off : off + n]

    def n(self, length: int) -> str:
        off = self.rng.randrange(self.POOL - length)
        return self.digits[off : off + length]

    def state(self) -> str:
        off = self.rng.randrange(4094)
        return self.letters[off : off + 2]

    def zip(self) -> str:
        return self.n(4) + "11111"

    def data(self, lo: int, hi: int) -> str:
        """I_DATA / S_DATA: an a-string, 10% of them with "ORIGINAL" at a random position."""
        s = self.a(lo, hi)
        if self.rng.randrange(10) == 0:
            pos = self.rng.randint(0, len(s) - 8)
            s = s[:pos] + "ORIGINAL" + s[pos + 8 :]
        return s


class TxnInputs:
    """Inputs of the five transactions for one terminal bound to home warehouse ``w``.

    ``prefixes[w]`` is warehouse w's key prefix; ``item_prefix`` the ITEM
    prefix of the home warehouse's shard; ``items`` the ITEM count (100,000
    per the spec; smaller only in tests).
    """

    def __init__(
        self,
        rng: random.Random,
        w: int,
        warehouses: int,
        items: int,
        prefixes: dict[int, bytes],
        item_prefix: bytes,
        consts: NURandC,
        stock_level_d: int,
        uid_base: bytes,
    ) -> None:
        self.rng = rng
        self.w = w
        self.warehouses = warehouses
        self.items = items
        self.prefixes = prefixes
        self.p = prefixes[w]
        self.route = self.p + b"W"
        self.it = item_prefix
        self.C = consts
        self.stock_level_d = stock_level_d
        self.uid_base = uid_base
        self.seq = 0

    def _other_warehouse(self) -> int:
        other = self.rng.randint(1, self.warehouses - 1)
        return other + 1 if other >= self.w else other

    def new_order(self, now: int) -> tuple[dict, int]:
        """(args, remote line count)."""
        rng = self.rng
        randint = rng.randint
        w, items, c_ol = self.w, self.items, self.C.ol_i_id
        n = randint(5, 15)
        rollback = randint(1, 100) <= ROLLBACK_PCT
        lines = []
        sp: dict[int, bytes] = {}
        remote = 0
        multi = self.warehouses > 1
        for number in range(n):
            if rollback and number == n - 1:
                i_id = items + 1  # an unused item id: the transaction rolls back (clause 2.4.1.5)
            else:
                i_id = (((randint(0, A_OL_I_ID) | randint(1, items)) + c_ol) % items) + 1
            sw = w
            if multi and randint(1, 100) <= REMOTE_LINE_PCT:
                sw = self._other_warehouse()
                sp[sw] = self.prefixes[sw]
                remote += 1
            lines.append([i_id, sw, randint(1, 10)])
        args = {
            "p": self.p,
            "w": w,
            "d": randint(1, DISTRICTS),
            "c": nurand(rng, A_C_ID, 1, CUSTOMERS, self.C.c_id),
            "it": self.it,
            "l": lines,
            "t": now,
        }
        if sp:
            args["sp"] = sp
        return args, remote

    def _customer(self, args: dict) -> None:
        if self.rng.randint(1, 100) <= BY_NAME_PCT:
            args["last"] = c_last(nurand(self.rng, A_C_LAST, 0, 999, self.C.c_last))
        else:
            args["c"] = nurand(self.rng, A_C_ID, 1, CUSTOMERS, self.C.c_id)

    def payment(self, now: int) -> tuple[dict, bool]:
        """(args, remote customer?)."""
        rng = self.rng
        d = rng.randint(1, DISTRICTS)
        remote = self.warehouses > 1 and rng.randint(1, 100) <= REMOTE_PAYMENT_PCT
        if remote:
            cw = self._other_warehouse()
            cd = rng.randint(1, DISTRICTS)
        else:
            cw, cd = self.w, d
        self.seq += 1
        args = {
            "p": self.p,
            "w": self.w,
            "d": d,
            "cp": self.prefixes[cw],
            "cw": cw,
            "cd": cd,
            "h": rng.randint(100, 500_000),
            "t": now,
            "u": b"%s%08x" % (self.uid_base, self.seq),
        }
        self._customer(args)
        return args, remote

    def order_status(self) -> dict:
        args = {"p": self.p, "d": self.rng.randint(1, DISTRICTS)}
        self._customer(args)
        return args

    def delivery(self, now: int) -> dict:
        return {"p": self.p, "o": self.rng.randint(1, 10), "t": now}

    def stock_level(self) -> dict:
        return {"p": self.p, "d": self.stock_level_d, "th": self.rng.randint(10, 20)}
