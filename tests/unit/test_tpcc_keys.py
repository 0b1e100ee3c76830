"""TPC-C keys: byte order is numeric order, prefixes keep a warehouse on its home shard."""

from __future__ import annotations

import random

import pytest

from makod.config import default_config_dict, parse_config
from makod.core.slots import SlotMap, key_slot
from makod.procs.tpcc_schema import (
    LOAD_UID,
    c_id_of_customer_key,
    c_id_of_history_key,
    cname_range,
    home_shard,
    item_prefix,
    k_b,
    k_c,
    k_cname,
    k_d,
    k_dn,
    k_dy,
    k_h,
    k_i,
    k_no,
    k_o,
    k_oc,
    k_ol,
    k_q,
    k_s,
    k_w,
    k_wy,
    middle_match,
    o_id_of_line_key,
    o_id_of_order_key,
    oc_range,
    ol_range,
    table_range,
    warehouse_prefix,
)

P = b"{w1.0}"


def test_numeric_order_is_byte_order() -> None:
    rng = random.Random(4)
    ids = [rng.randint(1, 99_999_999) for _ in range(2000)] + [1, 9, 10, 99, 100, 3000, 3001, 99_999_999]
    assert sorted(ids) == [o_id_of_order_key(k) for k in sorted(k_o(P, 3, o) for o in ids)]
    assert sorted(ids) == [o_id_of_order_key(k) for k in sorted(k_no(P, 3, o) for o in ids)]
    lines = [(rng.randint(1, 5000), rng.randint(1, 15)) for _ in range(2000)]
    keys = sorted({k_ol(P, 2, o, n) for o, n in lines})
    assert [(o_id_of_line_key(k), int(k[-2:])) for k in keys] == sorted(set(lines))
    stock = sorted(k_s(P, i) for i in (1, 2, 10, 99_999, 100_000))
    assert [int(k[-6:]) for k in stock] == [1, 2, 10, 99_999, 100_000]


def test_district_ranges_hold_exactly_their_district() -> None:
    keys = [k_o(P, d, o) for d in (1, 2, 9, 10) for o in (1, 5, 3000, 12_345_678)]
    for d in (1, 2, 9, 10):
        start, end = table_range(P, b"O", d)
        assert sorted(k for k in keys if start <= k < end) == sorted(k_o(P, d, o) for o in (1, 5, 3000, 12_345_678))
    start, end = ol_range(P, 4, 17)
    inside = [k_ol(P, 4, 17, n) for n in range(1, 16)]
    outside = [k_ol(P, 4, 16, 15), k_ol(P, 4, 18, 1), k_ol(P, 5, 17, 1), k_ol(P, 4, 170, 1)]
    assert all(start <= k < end for k in inside) and not any(start <= k < end for k in outside)
    start, end = oc_range(P, 4, 12)
    assert start <= k_oc(P, 4, 12, 99) < end and not start <= k_oc(P, 4, 120, 1) < end
    # the latest order of a customer is the last key of its range
    assert max(k_oc(P, 4, 12, o) for o in (7, 3001, 12, 500)) == k_oc(P, 4, 12, 3001)


def test_customer_name_range_is_exact() -> None:
    start, end = cname_range(P, 3, "ABLE")
    assert start <= k_cname(P, 3, "ABLE", "zz9", 7) < end
    assert start <= k_cname(P, 3, "ABLE", "A", 3000) < end
    for other in (k_cname(P, 3, "ABLEBAR", "x", 1), k_cname(P, 3, "ABL", "x", 1), k_cname(P, 4, "ABLE", "x", 1)):
        assert not start <= other < end


def test_tables_do_not_overlap() -> None:
    keys = {
        b"W": [k_w(P)], b"Wy": [k_wy(P)], b"D": [k_d(P, 3)], b"Dn": [k_dn(P, 3)], b"Dy": [k_dy(P, 3)],
        b"C": [k_c(P, 3, 7)], b"B": [k_b(P, 3, 7)], b"c": [k_cname(P, 3, "BAR", "x", 7)],
        b"H": [k_h(P, 3, 7, LOAD_UID)], b"O": [k_o(P, 3, 7)], b"o": [k_oc(P, 3, 7, 7)], b"N": [k_no(P, 3, 7)],
        b"L": [k_ol(P, 3, 7, 1)], b"S": [k_s(P, 7)], b"Q": [k_q(P, 7)],
    }
    all_keys = [k for ks in keys.values() for k in ks]
    assert len(set(all_keys)) == len(all_keys)
    for letter in (b"C", b"B", b"c", b"H", b"O", b"o", b"N", b"L"):
        start, end = table_range(P, letter, 3)
        assert [k for k in all_keys if start <= k < end] == keys[letter]


def test_parsers() -> None:
    assert c_id_of_customer_key(k_c(P, 3, 2999)) == 2999
    assert c_id_of_customer_key(k_b(P, 10, 1)) == 1
    assert c_id_of_history_key(P, k_h(P, 3, 1234, b"0123456789abcdef0123")) == 1234
    assert o_id_of_order_key(k_oc(P, 1, 2, 3456)) == 3456


def test_middle_match() -> None:
    # n/2 rounded up, 1-based: 1->1, 2->1, 3->2, 4->2, 5->3
    assert [middle_match(list(range(n))) for n in range(1, 6)] == [0, 0, 1, 1, 2]


@pytest.mark.parametrize("shards", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("warehouses", [1, 2, 5, 10, 16])
def test_warehouses_land_on_their_home_shard(shards: int, warehouses: int) -> None:
    cfg = parse_config(default_config_dict(shards, 1, 20000), "<test>")
    slots = SlotMap([s.slots for s in cfg.shards])
    seen = set()
    for w in range(1, warehouses + 1):
        p = warehouse_prefix(slots, w, warehouses)
        assert p not in seen
        seen.add(p)
        want = (w - 1) * shards // warehouses
        assert home_shard(w, warehouses, shards) == want
        for key in (k_w(p), k_o(p, 10, 3001), k_ol(p, 1, 1, 15), k_s(p, 100_000), k_h(p, 4, 7, LOAD_UID)):
            assert slots.shard_of(key) == want
            assert key_slot(key) == key_slot(k_w(p))
    for shard in range(shards):
        ip = item_prefix(slots, shard)
        assert slots.shard_of(k_i(ip, 1)) == shard == slots.shard_of(k_i(ip, 100_000))
