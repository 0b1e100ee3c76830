"""The TPC-C procedures run in-process on a real Keyspace (no server): load one warehouse,
run the mix, check every consistency condition; footprints cover every key touched;
rollback, idempotent Payment, Delivery and Stock-Level semantics."""

from __future__ import annotations

import gc
import random
from typing import Any

import msgpack
import pytest

import makod.procs  # noqa: F401  (registers the procedures)
from makod.core.context import DirectContext
from makod.kv.keyspace import Keyspace
from makod.core.procedures import PROCEDURES, Abort, ProcTxn
from makod.kv.records import OP_DEL
from makod.core.slots import SlotMap
from makod.procs.tpcc_check import CONDITIONS, evaluate
from makod.procs.tpcc_schema import (
    B_BALANCE,
    DISTRICTS,
    O_CARRIER_ID,
    Q_ORDER_CNT,
    Q_QUANTITY,
    Q_REMOTE_CNT,
    k_b,
    k_dn,
    k_dy,
    k_h,
    k_no,
    k_o,
    k_q,
    k_wy,
    item_prefix,
    warehouse_prefix,
)
from makoctl.bench.tpcc.gen import DECK, NURandC, TxnInputs
from makoctl.bench.tpcc.load import Generator, LoadPlan

ITEMS = 1000


class Db:
    """One shard's keyspace; ``call`` runs a procedure as the server does (msgpack in and out)."""

    def __init__(self) -> None:
        self.ks = Keyspace()
        # No ticks here to make indexes a slice at a time (kv/key_indexes.py):
        # range scans make theirs at once, whatever the keyspace's size.
        self.ks.indexes.build_at_once_keys = 1 << 40
        self.version = 0
        self.touched: list[bytes] | None = None

    def call(self, name: str, args: Any) -> Any:
        proc = PROCEDURES.get(name)
        assert proc is not None, name
        args = msgpack.unpackb(msgpack.packb(args, use_bin_type=True), raw=False, strict_map_key=False)
        self.version += 1
        ctx = DirectContext(self.ks, self.version, (self.version,), (self.version - 1,), 0, random.Random(0))
        tx = _Recorder(ctx, self) if self.touched is not None else ProcTxn(ctx)
        try:
            result = proc.fn(tx, args)
        except Abort:
            self.ks.rollback(ctx.undo)
            raise
        ctx.finish()
        return msgpack.unpackb(msgpack.packb(result, use_bin_type=True), raw=False, strict_map_key=False)

    def get(self, key: bytes) -> Any:
        rec = self.ks.get(key)
        return None if rec is None else rec.value


class _Recorder(ProcTxn):
    """A ProcTxn that notes every key it reads or writes (and every scanned range)."""

    __slots__ = ("db",)

    def __init__(self, ctx: Any, db: Db) -> None:
        super().__init__(ctx)
        self.db = db

    def get(self, key: bytes) -> Any:
        self.db.touched.append(key)
        return super().get(key)

    def put(self, key: bytes, value: Any) -> None:
        self.db.touched.append(key)
        super().put(key, value)

    def delete(self, key: bytes) -> bool:
        self.db.touched.append(key)
        return super().delete(key)

    def scan(self, start: bytes, end: bytes | None, limit: int | None = None, reverse: bool = False):
        rows = super().scan(start, end, limit, reverse)
        self.db.touched.append((start, end))
        self.db.touched.extend(k for k, _ in rows)
        return rows


class World:
    """W warehouses on one shard, loaded with the real generator."""

    def __init__(self, warehouses: int, seed: int = 7) -> None:
        self.W = warehouses
        self.slots = SlotMap([[(0, 16383)]])
        self.prefixes = {w: warehouse_prefix(self.slots, w, warehouses) for w in range(1, warehouses + 1)}
        self.item_prefixes = [item_prefix(self.slots, 0)]
        self.plan = LoadPlan(warehouses, ITEMS, 1, c_load=100, seed=seed, now=1_700_000_000)
        self.db = Db()
        gen = Generator(self.plan, self.prefixes, self.item_prefixes)
        for unit in self.plan.units():
            for _, rows, _ in gen.batches(unit):
                self.db.call("tpcc.load", {"rows": rows})
        self.consts = NURandC.for_run(random.Random(seed), 100)

    def terminal(self, idx: int, seed: int = 1) -> TxnInputs:
        w = idx % self.W + 1
        return TxnInputs(random.Random(seed * 1000 + idx), w, self.W, ITEMS, self.prefixes, self.item_prefixes[0],
                         self.consts, stock_level_d=idx % DISTRICTS + 1, uid_base=b"%012x" % idx)

    def check(self, fresh: bool = False) -> tuple[dict, list]:
        figures = [self.db.call("tpcc.check_district", {"p": self.prefixes[w], "w": w, "d": d})
                   for w in self.prefixes for d in range(1, DISTRICTS + 1)]
        return evaluate(figures, CONDITIONS, fresh)


def run_mix(world: World, n: int, terminals: int = 4, seed: int = 1) -> dict[str, int]:
    gens = [world.terminal(i, seed) for i in range(terminals)]
    rng = random.Random(seed)
    counts = {"new_order": 0, "payment": 0, "order_status": 0, "delivery": 0, "stock_level": 0, "rollback": 0}
    now = 1_700_000_100
    for i in range(n):
        gen = gens[i % terminals]
        kind = rng.choice(DECK)
        counts[kind] += 1
        if kind == "new_order":
            args, _ = gen.new_order(now)
            try:
                world.db.call("tpcc.new_order", args)
            except Abort:
                counts["rollback"] += 1
        elif kind == "payment":
            world.db.call("tpcc.payment", gen.payment(now)[0])
        elif kind == "order_status":
            world.db.call("tpcc.order_status", gen.order_status())
        elif kind == "delivery":
            world.db.call("tpcc.delivery", gen.delivery(now))
        else:
            world.db.call("tpcc.stock_level", gen.stock_level())
    return counts


@pytest.fixture(scope="module")
def world() -> World:
    # A keyspace of a million objects makes CPython's default GC thresholds dominate the load.
    old = gc.get_threshold()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield World(2)
    finally:
        gc.set_threshold(*old)


def test_fresh_database_passes_every_condition(world: World) -> None:
    results, violations = world.check(fresh=True)
    assert violations == []
    assert sorted(results) == CONDITIONS and all(results.values())


def test_mix_keeps_every_condition(world: World) -> None:
    counts = run_mix(world, 3000)
    assert counts["rollback"] > 0  # the 1% rollback happened and was undone cleanly
    results, violations = world.check()
    assert violations == [], violations[:3]
    assert all(results.values())
    assert 11 not in results  # only on a fresh database


def test_new_order_reads_and_increments_d_next_o_id(world: World) -> None:
    gen = world.terminal(0)
    args, _ = gen.new_order(1)
    args["l"] = [line for line in args["l"] if line[0] <= ITEMS] or [[1, args["w"], 1]]
    p, d = args["p"], args["d"]
    before = world.db.get(k_dn(p, d))
    o_id, n, _total, bg = world.db.call("tpcc.new_order", args)
    assert o_id == before and world.db.get(k_dn(p, d)) == before + 1
    assert n == len(args["l"]) == len(bg)
    assert world.db.get(k_no(p, d, o_id)) == 1
    assert world.db.get(k_o(p, d, o_id))[O_CARRIER_ID] is None


def test_order_status_finds_the_latest_order(world: World) -> None:
    p = world.prefixes[2]
    args = {"p": p, "w": 2, "d": 6, "c": 2999, "it": world.item_prefixes[0], "t": 42, "l": [[5, 2, 4], [6, 2, 1]]}
    o_id = world.db.call("tpcc.new_order", args)[0]
    c, balance, got, entry_d, carrier, lines = world.db.call("tpcc.order_status", {"p": p, "d": 6, "c": 2999})
    assert (c, got, entry_d, carrier) == (2999, o_id, 42, None)
    assert balance == world.db.get(k_b(p, 6, 2999))[B_BALANCE]
    assert [(i, sw, qty, delivery) for i, sw, qty, _, delivery in lines] == [(5, 2, 4, None), (6, 2, 1, None)]


def test_rolled_back_new_order_leaves_nothing(world: World) -> None:
    gen = world.terminal(1)
    args, _ = gen.new_order(1)
    args["l"][-1][0] = ITEMS + 1  # the unused item id
    p, d = args["p"], args["d"]
    before = world.db.get(k_dn(p, d))
    stock_before = {line[0]: world.db.get(k_q(p, line[0])) for line in args["l"][:-1] if line[1] == args["w"]}
    keys_before = len(world.db.ks)
    with pytest.raises(Abort, match="Item number is not valid"):
        world.db.call("tpcc.new_order", args)
    assert world.db.get(k_dn(p, d)) == before
    assert world.db.get(k_o(p, d, before)) is None
    assert len(world.db.ks) == keys_before
    for i_id, row in stock_before.items():
        assert world.db.get(k_q(p, i_id)) == row


def test_remote_stock_counts_as_remote(world: World) -> None:
    p1, p2 = world.prefixes[1], world.prefixes[2]
    args = {"p": p1, "w": 1, "d": 1, "c": 1, "it": world.item_prefixes[0], "t": 5,
            "l": [[7, 2, 3], [8, 1, 2]], "sp": {2: p2}}
    remote_before = world.db.get(k_q(p2, 7))
    local_before = world.db.get(k_q(p1, 8))
    world.db.call("tpcc.new_order", args)
    remote_after, local_after = world.db.get(k_q(p2, 7)), world.db.get(k_q(p1, 8))
    assert remote_after[Q_REMOTE_CNT] == remote_before[Q_REMOTE_CNT] + 1
    assert remote_after[Q_ORDER_CNT] == remote_before[Q_ORDER_CNT] + 1
    assert local_after[Q_REMOTE_CNT] == local_before[Q_REMOTE_CNT]
    q = remote_before[Q_QUANTITY]
    assert remote_after[Q_QUANTITY] == (q - 3 if q >= 13 else q - 3 + 91)


def test_payment_by_name_picks_the_middle_match_and_is_idempotent(world: World) -> None:
    p = world.prefixes[1]
    # every district has customers 1..1000 with the 1000 distinct names, so "BARBARBAR" (0) exists
    rows = world.db.call("tpcc.scan", {"start": p + b"c03BARBARBAR:", "end": p + b"c03BARBARBAR:\xff"})
    matches = sorted(v for _, v in rows)
    want = matches[(len(matches) - 1) // 2][1]
    args = {"p": p, "w": 1, "d": 3, "cp": p, "cw": 1, "cd": 3, "last": "BARBARBAR", "h": 12345, "t": 9,
            "u": b"feedfeedfeed00000001"}
    balance = world.db.get(k_b(p, 3, want))[B_BALANCE]
    wytd = world.db.get(k_wy(p))
    c, new_balance, dup = world.db.call("tpcc.payment", args)
    assert (c, new_balance, dup) == (want, balance - 12345, 0)
    assert world.db.get(k_h(p, 3, want, args["u"]))[3] == 12345
    # the same payment again (a retry after an ambiguous failure) changes nothing
    assert world.db.call("tpcc.payment", args) == [want, balance - 12345, 1]
    assert world.db.get(k_wy(p)) == wytd + 12345
    assert world.db.get(k_dy(p, 3)) is not None


def test_delivery_takes_the_oldest_new_order_of_each_district(world: World) -> None:
    p = world.prefixes[2]
    oldest = []
    for d in range(1, DISTRICTS + 1):
        rows = world.db.call("tpcc.scan", {"start": p + b"N%02d" % d, "end": p + b"N%02d\xff" % d, "limit": 1})
        oldest.append(int(rows[0][0][-8:]))
    delivered = world.db.call("tpcc.delivery", {"p": p, "o": 4, "t": 77})
    assert delivered == oldest
    for d, o in zip(range(1, DISTRICTS + 1), oldest):
        assert world.db.get(k_no(p, d, o)) is None
        assert world.db.get(k_o(p, d, o))[O_CARRIER_ID] == 4


def test_stock_level_counts_distinct_low_items(world: World) -> None:
    p, d = world.prefixes[1], 5
    nxt = world.db.get(k_dn(p, d))
    rows = world.db.call("tpcc.scan", {"start": p + b"L%02d%08d" % (d, nxt - 20), "end": p + b"L%02d%08d" % (d, nxt)})
    items = {v[0] for _, v in rows}
    for threshold in (10, 15, 20, 101):
        want = sum(1 for i in items if world.db.get(k_q(p, i))[Q_QUANTITY] < threshold)
        assert world.db.call("tpcc.stock_level", {"p": p, "d": d, "th": threshold}) == want
    assert world.db.call("tpcc.stock_level", {"p": p, "d": d, "th": 101}) == len(items)


def _covered(key: bytes, footprint: list) -> bool:
    for entry in footprint:
        if isinstance(entry, (bytes, bytearray)):
            if key == entry:
                return True
        else:
            start, end = entry
            if start <= key < end:
                return True
    return False


def test_footprints_cover_every_key_touched(world: World) -> None:
    gens = [world.terminal(i, seed=5) for i in range(4)]
    makers = {
        "tpcc.new_order": lambda g: g.new_order(1)[0],
        "tpcc.payment": lambda g: g.payment(1)[0],
        "tpcc.order_status": lambda g: g.order_status(),
        "tpcc.delivery": lambda g: g.delivery(1),
        "tpcc.stock_level": lambda g: g.stock_level(),
    }
    for name, make in makers.items():
        proc = PROCEDURES.get(name)
        assert proc.footprint is not None, name
        for i in range(40):
            args = make(gens[i % 4])
            fp = proc.footprint(msgpack.unpackb(msgpack.packb(args), raw=False, strict_map_key=False))
            if isinstance(fp, dict):  # {"reads": [...], "writes": [...]}
                fp = list(fp["reads"]) + list(fp["writes"])
            world.db.touched = []
            try:
                world.db.call(name, args)
            except Abort:
                pass
            touched, world.db.touched = world.db.touched, None
            for key in touched:
                if isinstance(key, tuple):  # a scanned range must lie inside one footprint range
                    start, end = key
                    assert any(not isinstance(e, bytes) and e[0] <= start and end <= e[1] for e in fp), (name, key)
                else:
                    assert _covered(key, fp), (name, key)


def test_corrupted_d_ytd_fails_conditions_1_and_9(world: World) -> None:
    p = world.prefixes[2]
    good = world.db.get(k_dy(p, 4))
    world.db.call("tpcc.load", {"rows": [[k_dy(p, 4), good + 1]]})
    try:
        results, violations = world.check()
    finally:
        world.db.call("tpcc.load", {"rows": [[k_dy(p, 4), good]]})
    assert not results[1] and not results[9]
    assert all(results[c] for c in CONDITIONS if c not in (1, 9, 11))
    assert {(v["condition"], v["w"], v["d"]) for v in violations} == {(1, 2, None), (9, 2, 4)}


def test_corrupted_order_line_fails_conditions_4_and_6(world: World) -> None:
    p = world.prefixes[1]
    key, row = world.db.call("tpcc.scan", {"start": p + b"L07", "end": p + b"L07\xff", "limit": 1})[0]
    world.db.ks.apply((OP_DEL, key), world.db.version + 1, None)  # delete the row behind the procedures' back
    results, violations = world.check()
    world.db.call("tpcc.load", {"rows": [[key, row]]})
    got = {(v["condition"], v["w"], v["d"]) for v in violations}
    assert (4, 1, 7) in got and (6, 1, 7) in got
    assert world.check()[1] == []

