"""TPC-C random inputs: NURand, the C-Load/C-Run rule, C_LAST, the mix deck, remote shares."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from makod.core.slots import SlotMap
from makod.procs.tpcc_schema import CUSTOMERS, item_prefix, warehouse_prefix
from makoctl.bench.tpcc.gen import (
    A_C_ID,
    A_C_LAST,
    A_OL_I_ID,
    DECK,
    MIX,
    SYLLABLES,
    NURandC,
    Strings,
    TxnInputs,
    c_delta_ok,
    c_last,
    nurand,
)
from makoctl.bench.tpcc.load import Generator, LoadPlan


@pytest.mark.parametrize("a,x,y", [(A_C_LAST, 0, 999), (A_C_ID, 1, 3000), (A_OL_I_ID, 1, 100_000)])
def test_nurand_stays_in_range_and_is_skewed(a: int, x: int, y: int) -> None:
    rng = random.Random(1)
    for c in (0, a // 2, a):
        values = [nurand(rng, a, x, y, c) for _ in range(20_000)]
        assert min(values) >= x and max(values) <= y
        # non-uniform: the most frequent value is far above the uniform expectation
        top = Counter(values).most_common(1)[0][1]
        assert top > 3 * 20_000 / (y - x + 1)


def test_nurand_formula() -> None:
    class Fixed(random.Random):
        def __init__(self, values):
            super().__init__()
            self.values = list(values)

        def randint(self, a, b):
            return self.values.pop(0)

    # ((random(0, A) | random(x, y)) + C) % (y - x + 1) + x
    assert nurand(Fixed([5, 10]), 255, 0, 999, 7) == ((5 | 10) + 7) % 1000
    assert nurand(Fixed([1023, 3000]), 1023, 1, 3000, 100) == ((1023 | 3000) + 100) % 3000 + 1


def test_c_delta_rule() -> None:
    assert c_delta_ok(0, 65) and c_delta_ok(200, 81) and c_delta_ok(0, 119)
    assert not c_delta_ok(0, 64) and not c_delta_ok(0, 120)
    assert not c_delta_ok(10, 106) and not c_delta_ok(130, 18)  # delta 96, 112 are excluded
    rng = random.Random(3)
    for _ in range(500):
        load = NURandC.for_load(rng)
        assert 0 <= load.c_last <= A_C_LAST and 0 <= load.c_id <= A_C_ID and 0 <= load.ol_i_id <= A_OL_I_ID
        run = NURandC.for_run(rng, load.c_last)
        delta = abs(run.c_last - load.c_last)
        assert 65 <= delta <= 119 and delta not in (96, 112)
        assert 0 <= run.c_last <= A_C_LAST


def test_c_last_syllables() -> None:
    assert SYLLABLES == ["BAR", "OUGHT", "ABLE", "PRI", "PRES", "ESE", "ANTI", "CALLY", "ATION", "EING"]
    assert c_last(0) == "BARBARBAR"
    assert c_last(371) == "PRICALLYOUGHT"
    assert c_last(999) == "EINGEINGEING"
    assert len({c_last(n) for n in range(1000)}) == 1000


def test_deck_is_the_mix() -> None:
    assert len(DECK) == 100
    assert Counter(DECK) == Counter(MIX)
    assert MIX == {"new_order": 45, "payment": 43, "order_status": 4, "delivery": 4, "stock_level": 4}


def _inputs(w: int, warehouses: int, items: int = 100_000, seed: int = 1) -> TxnInputs:
    slots = SlotMap([[(0, 16383)]])
    prefixes = {i: warehouse_prefix(slots, i, warehouses) for i in range(1, warehouses + 1)}
    return TxnInputs(random.Random(seed), w, warehouses, items, prefixes, item_prefix(slots, 0),
                     NURandC.for_run(random.Random(seed), 10), stock_level_d=3, uid_base=b"000000000001")


def test_new_order_inputs() -> None:
    gen = _inputs(2, 5, items=100_000)
    n, lines, remote, rollbacks = 20_000, 0, 0, 0
    for _ in range(n):
        args, r = gen.new_order(1)
        assert 5 <= len(args["l"]) <= 15
        assert 1 <= args["d"] <= 10 and 1 <= args["c"] <= CUSTOMERS
        lines += len(args["l"])
        remote += r
        assert r == sum(1 for line in args["l"] if line[1] != 2)
        for i_id, sw, qty in args["l"][:-1]:
            assert 1 <= i_id <= 100_000 and 1 <= qty <= 10 and 1 <= sw <= 5
        if args["l"][-1][0] == 100_001:
            rollbacks += 1
        for sw in {line[1] for line in args["l"]} - {2}:
            assert args["sp"][sw] == gen.prefixes[sw]
    assert 0.8 < 100 * remote / lines < 1.2
    assert 0.7 < 100 * rollbacks / n < 1.3
    assert 9.8 < lines / n < 10.2


def test_single_warehouse_never_goes_remote() -> None:
    gen = _inputs(1, 1)
    for _ in range(3000):
        args, remote = gen.new_order(1)
        assert remote == 0 and "sp" not in args
        pay, remote = gen.payment(1)
        assert not remote and pay["cw"] == 1 and pay["cd"] == pay["d"]


def test_payment_inputs() -> None:
    gen = _inputs(3, 4)
    n = 20_000
    remote = by_name = 0
    uids = set()
    for _ in range(n):
        args, r = gen.payment(1)
        assert 100 <= args["h"] <= 500_000
        uids.add(args["u"])
        assert len(args["u"]) == 20
        if r:
            remote += 1
            assert args["cw"] != 3 and args["cp"] == gen.prefixes[args["cw"]]
        else:
            assert args["cw"] == 3 and args["cd"] == args["d"]
        if "last" in args:
            by_name += 1
            assert "c" not in args
        else:
            assert 1 <= args["c"] <= CUSTOMERS
    assert len(uids) == n
    assert 14 < 100 * remote / n < 16
    assert 58.5 < 100 * by_name / n < 61.5


def test_strings() -> None:
    s = Strings(random.Random(2))
    for _ in range(1000):
        assert 26 <= len(s.a(26, 50)) <= 50
        assert s.n(16).isdigit() and len(s.n(16)) == 16
        z = s.zip()
        assert len(z) == 9 and z.endswith("11111")
    original = sum("ORIGINAL" in s.data(26, 50) for _ in range(20_000))
    assert 0.09 < original / 20_000 < 0.11


def test_generator_population_of_one_district() -> None:
    slots = SlotMap([[(0, 16383)]])
    prefixes = {1: warehouse_prefix(slots, 1, 1)}
    plan = LoadPlan(1, 1000, 1, c_load=42, seed=1, now=1)
    gen = Generator(plan, prefixes, [item_prefix(slots, 0)])
    counts: Counter = Counter()
    keys = 0
    lasts = []
    for _, rows, c in gen.batches(("customer", 1, 4)):
        counts.update(c)
        keys += len(rows)
        lasts += [v[2] for k, v in rows if k[len(prefixes[1]):].startswith(b"C")]
    assert counts == {"customer": 3000, "history": 3000}
    assert keys == 4 * 3000  # C, B, name index, H
    assert lasts[:1000] == [c_last(n) for n in range(1000)]
    counts.clear()
    for _, rows, c in gen.batches(("order", 1, 4)):
        counts.update(c)
    assert counts["order"] == 3000 and counts["new_order"] == 900
    assert 5 * 3000 <= counts["order_line"] <= 15 * 3000
