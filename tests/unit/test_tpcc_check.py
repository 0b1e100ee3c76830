"""The consistency checker on hand-built tiny data: each corruption fails the conditions it should."""

from __future__ import annotations

import copy

import pytest

from makod.procs.tpcc_check import CONDITIONS, district_figures, evaluate

W = 1


def tiny_district(d: int) -> dict:
    """Orders 1-2 delivered, 3-5 undelivered; customers 1 and 2 with one payment each.

    c1: delivered 100 + 200, paid 1000 -> balance -700, ytd 1000
    c2: delivered 50, paid 500 -> balance -450, ytd 500
    """
    return {
        "w_ytd": 15_000,
        "d_ytd": 1_500,
        "d_next_o_id": 6,
        "orders": [
            (1, [1, 0, 3, 2, 1]),
            (2, [2, 0, 5, 1, 1]),
            (3, [1, 0, None, 1, 1]),
            (4, [2, 0, None, 2, 1]),
            (5, [1, 0, None, 1, 1]),
        ],
        "new_orders": [3, 4, 5],
        "lines": [
            (1, [10, 1, 99, 5, 100, "x"]),
            (1, [11, 1, 99, 5, 200, "x"]),
            (2, [12, 1, 99, 5, 50, "x"]),
            (3, [13, 1, None, 5, 0, "x"]),
            (4, [14, 1, None, 5, 70, "x"]),
            (4, [15, 1, None, 5, 80, "x"]),
            (5, [16, 1, None, 5, 90, "x"]),
        ],
        "balances": [(1, [-700, 1000, 1, 1]), (2, [-450, 500, 1, 1])],
        "histories": [(1, [W, d, 0, 1000, "h"]), (2, [W, d, 0, 500, "h"])],
    }


def figures_of(districts: dict[int, dict]) -> list[dict]:
    return [
        district_figures(W, d, t["w_ytd"], t["d_ytd"], t["d_next_o_id"], t["orders"], t["new_orders"], t["lines"],
                         t["balances"], t["histories"])
        for d, t in sorted(districts.items())
    ]


def failing(districts: dict[int, dict], fresh: bool = False) -> set[tuple[int, int | None]]:
    results, violations = evaluate(figures_of(districts), CONDITIONS, fresh)
    assert {v["condition"] for v in violations} == {c for c, ok in results.items() if not ok}
    return {(v["condition"], v["d"]) for v in violations}


@pytest.fixture
def tiny() -> dict[int, dict]:
    return {d: tiny_district(d) for d in range(1, 11)}


def test_consistent_data_passes(tiny) -> None:
    results, violations = evaluate(figures_of(tiny), CONDITIONS, fresh=False)
    assert violations == []
    assert sorted(results) == [c for c in CONDITIONS if c != 11]


def _with(tiny, d: int, fn) -> dict:
    out = copy.deepcopy(tiny)
    fn(out[d])
    return out


def _set_order(t: dict, o_id: int, index: int, value) -> None:
    t["orders"] = [(o, [*row[:index], value, *row[index + 1:]]) if o == o_id else (o, row) for o, row in t["orders"]]


def test_w_ytd(tiny) -> None:
    data = copy.deepcopy(tiny)
    for t in data.values():
        t["w_ytd"] += 1
    assert failing(data) == {(1, None), (8, None)}


def test_d_ytd(tiny) -> None:
    assert failing(_with(tiny, 4, lambda t: t.update(d_ytd=t["d_ytd"] + 1))) == {(1, None), (9, 4)}


def test_d_next_o_id(tiny) -> None:
    assert failing(_with(tiny, 7, lambda t: t.update(d_next_o_id=7))) == {(2, 7)}


def test_missing_new_order_row(tiny) -> None:
    assert failing(_with(tiny, 2, lambda t: t.update(new_orders=[3, 5]))) == {(3, 2), (5, 2)}


def test_extra_line(tiny) -> None:
    data = _with(tiny, 9, lambda t: t["lines"].append((5, [17, 1, None, 5, 0, "x"])))
    assert failing(data) == {(4, 9), (6, 9)}


def test_ol_cnt(tiny) -> None:
    assert failing(_with(tiny, 3, lambda t: _set_order(t, 3, 3, 2))) == {(4, 3), (6, 3)}


def test_carrier_set_while_new_order_row_remains(tiny) -> None:
    assert failing(_with(tiny, 5, lambda t: _set_order(t, 4, 2, 7))) == {(5, 5), (7, 5)}


def test_delivery_date_on_undelivered_line(tiny) -> None:
    def deliver_line(t):
        t["lines"][3] = (3, [13, 1, 99, 5, 0, "x"])  # amount 0: balances unaffected

    assert failing(_with(tiny, 6, deliver_line)) == {(7, 6)}


def test_history_amount(tiny) -> None:
    def change(t):
        t["histories"][0] = (1, [W, 8, 0, 1001, "h"])

    assert failing(_with(tiny, 8, change)) == {(8, None), (9, 8), (10, 8)}


def test_balance(tiny) -> None:
    def change(t):
        t["balances"][1] = (2, [-451, 500, 1, 1])

    assert failing(_with(tiny, 1, change)) == {(10, 1), (12, 1)}


def test_ytd_payment(tiny) -> None:
    def change(t):
        t["balances"][0] = (1, [-700, 999, 1, 1])

    assert failing(_with(tiny, 10, change)) == {(12, 10)}


def test_condition_11_only_when_fresh(tiny) -> None:
    assert (11, 1) in failing(tiny, fresh=True)  # 5 orders - 3 new orders != 2100
    figures = figures_of(tiny)
    for f in figures:
        f["n_orders"], f["n_new_orders"] = 3000, 900
        f["max_no_o_id"], f["min_no_o_id"], f["max_o_id"] = 3000, 2101, 3000
        f["d_next_o_id"] = 3001
    results, violations = evaluate(figures, CONDITIONS, fresh=True)
    assert results[11] and violations == []
    results, _ = evaluate(figures, [1, 2, 3, 4], fresh=True)
    assert sorted(results) == [1, 2, 3, 4]


def test_remote_history_counts_for_the_paying_warehouse() -> None:
    """A payment at warehouse 2 for a customer of warehouse 1: the row lives with the customer."""
    data = {d: tiny_district(d) for d in range(1, 11)}
    data[3]["histories"].append((1, [2, 6, 0, 250, "h"]))
    data[3]["balances"][0] = (1, [-950, 1250, 2, 1])
    figs = figures_of(data)
    assert figs[2]["n_remote_payments"] == 1
    results, violations = evaluate(figs, CONDITIONS)
    # warehouse 2's W_YTD/D_YTD do not include it here (no warehouse 2 rows in this data): only
    # warehouse 1's own sums are checked, and they are unchanged
    assert violations == []
    # with warehouse 2 present, its district 6 must have D_YTD covering the 250
    other = [dict(f, w=2, w_ytd=15_000, hist=[[2, f["d"], 1500]]) for f in figures_of(
        {d: tiny_district(d) for d in range(1, 11)})]
    results, violations = evaluate(figs + other, CONDITIONS)
    assert {(v["condition"], v["w"], v["d"]) for v in violations} == {(8, 2, None), (9, 2, 6)}
