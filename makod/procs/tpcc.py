"""TPC-C as stored procedures: the five transactions, the loader and read helpers.

Key and row layouts are in ``tpcc_schema``; the consistency checker is in
``tpcc_check`` (imported at the bottom so that importing this module
registers every TPC-C procedure).

Every random input (districts, customers, items, quantities, amounts, dates,
history ids) comes in ``args`` from the driver: a procedure is deterministic
because the server may run it more than once. Values read with ``tx.get`` are
the stored objects themselves, so a procedure never mutates them: it builds a
new row and ``put``s it.

Arguments use short names (one msgpack map per call):

* ``p``: the home warehouse's key prefix (``{tag}``), ``w``: its number;
* ``it``: the ITEM prefix of the shard the call runs on (home warehouse's shard);
* ``sp``: {supply warehouse number: prefix} for remote supply warehouses;
* ``t``: the transaction's date/time (seconds since the epoch).

Footprints (for protocols that must know a transaction's keys up front, such
as Luigi): ``footprint(args)`` returns keys (``bytes``) and half-open ranges
``[start, end]`` of keys the call may touch: New-Order and Payment split them
into ``{"reads": [...], "writes": [...]}`` (so that, say, both read the
warehouse row and only Payment writes its year-to-date, a separate key); the
others list everything (Delivery writes all it names; Order-Status and
Stock-Level are read-only). Rows whose key depends on data read inside the transaction (the new
order's o_id, a customer found by last name) are covered by the range of
their district.
"""

from __future__ import annotations

from makod.core.procedures import ProcTxn, procedure
from makod.procs.tpcc_schema import (
    B_BALANCE,
    B_DELIVERY_CNT,
    B_PAYMENT_CNT,
    B_YTD_PAYMENT,
    C_CREDIT,
    C_DATA,
    C_DISCOUNT,
    D_NAME,
    D_TAX,
    DISTRICTS,
    END,
    I_DATA,
    I_PRICE,
    O_ALL_LOCAL,
    O_C_ID,
    O_CARRIER_ID,
    O_ENTRY_D,
    O_OL_CNT,
    OL_AMOUNT,
    OL_DELIVERY_D,
    OL_I_ID,
    OL_QUANTITY,
    OL_SUPPLY_W_ID,
    Q_QUANTITY,
    S_DATA,
    W_NAME,
    W_TAX,
    middle_match,
)

# -- helpers -------------------------------------------------------------------------------------


def _customer_by_name(tx: ProcTxn, cp: bytes, d: int, last: str) -> int | None:
    """c_id of the middle customer (by C_FIRST) among those of district ``d`` named ``last``."""
    start = b"%sc%02d%s:" % (cp, d, last.encode())
    matches = [value for _, value in tx.scan(start, start + END)]
    if not matches:
        return None
    matches.sort()  # [c_first, c_id]: by first name, ties by id
    return matches[middle_match(matches)][1]


def _district_range(p: bytes, letter: bytes, d: int) -> list:
    start = b"%s%s%02d" % (p, letter, d)
    return [start, start + END]


# -- New-Order (clause 2.4) ------------------------------------------------------------------------


def _fp_new_order(a: dict) -> dict:
    p, d, it, sp, w = a["p"], a["d"], a["it"], a.get("sp") or {}, a["w"]
    reads: list = [p + b"W", b"%sD%02d" % (p, d), b"%sC%02d%04d" % (p, d, a["c"])]
    writes: list = [b"%sDn%02d" % (p, d)]
    for i_id, sw, _qty in a["l"]:
        spx = p if sw == w else sp[sw]
        reads += [b"%sI%06d" % (it, i_id), b"%sS%06d" % (spx, i_id)]
        writes.append(b"%sQ%06d" % (spx, i_id))
    # The new order's rows: their o_id is read inside (d_next_o_id).
    writes += [_district_range(p, letter, d) for letter in (b"O", b"N", b"L")]
    start = b"%so%02d%04d" % (p, a["d"], a["c"])
    writes.append([start, start + END])
    return {"reads": reads, "writes": writes}


@procedure("tpcc.new_order", footprint=_fp_new_order)
def new_order(tx: ProcTxn, a: dict) -> list:
    """Returns [o_id, ol_cnt, total_cents, brand_generic]; aborts on an unused item id (1%)."""
    p, w, d, c, it, lines, now = a["p"], a["w"], a["d"], a["c"], a["it"], a["l"], a["t"]
    sp = a.get("sp") or {}
    w_tax = tx.get(p + b"W")[W_TAX]
    d_tax = tx.get(b"%sD%02d" % (p, d))[D_TAX]
    dnk = b"%sDn%02d" % (p, d)
    o_id = tx.get(dnk)
    tx.put(dnk, o_id + 1)
    c_discount = tx.get(b"%sC%02d%04d" % (p, d, c))[C_DISCOUNT]
    n = len(lines)
    all_local = 1
    for line in lines:
        if line[1] != w:
            all_local = 0
            break
    tx.put(b"%sO%02d%08d" % (p, d, o_id), [c, now, None, n, all_local])
    tx.put(b"%sN%02d%08d" % (p, d, o_id), 1)
    tx.put(b"%so%02d%04d%08d" % (p, d, c, o_id), o_id)
    total = 0
    bg = []
    get, put = tx.get, tx.put
    for number, (i_id, sw, qty) in enumerate(lines, 1):
        item = get(b"%sI%06d" % (it, i_id))
        if item is None:
            tx.abort("Item number is not valid")
        spx = p if sw == w else sp[sw]
        srow = get(b"%sS%06d" % (spx, i_id))
        qk = b"%sQ%06d" % (spx, i_id)
        q = get(qk)
        s_qty = q[0]
        s_qty = s_qty - qty if s_qty >= qty + 10 else s_qty - qty + 91
        put(qk, [s_qty, q[1] + qty, q[2] + 1, q[3] + (sw != w)])
        amount = qty * item[I_PRICE]
        total += amount
        bg.append("B" if "ORIGINAL" in item[I_DATA] and "ORIGINAL" in srow[S_DATA] else "G")
        put(b"%sL%02d%08d%02d" % (p, d, o_id, number), [i_id, sw, None, qty, amount, srow[d]])
    total = total * (10000 - c_discount) * (10000 + w_tax + d_tax) // 100_000_000
    return [o_id, n, total, "".join(bg)]


# -- Payment (clause 2.5) ---------------------------------------------------------------------------


def _fp_payment(a: dict) -> dict:
    p, d, cp, cd = a["p"], a["d"], a["cp"], a["cd"]
    reads: list = [p + b"W", b"%sD%02d" % (p, d)]
    writes: list = [p + b"Wy", b"%sDy%02d" % (p, d)]
    c = a.get("c")
    if c:
        writes += [b"%sC%02d%04d" % (cp, cd, c), b"%sB%02d%04d" % (cp, cd, c)]
        start = b"%sH%02d%04d" % (cp, cd, c)
        writes.append([start, start + END])
    else:
        # The customer is found by last name inside: their rows are the district's.
        start = b"%sc%02d%s:" % (cp, cd, a["last"].encode())
        reads.append([start, start + END])
        writes += [_district_range(cp, letter, cd) for letter in (b"C", b"B", b"H")]
    return {"reads": reads, "writes": writes}


@procedure("tpcc.payment", footprint=_fp_payment)
def payment(tx: ProcTxn, a: dict) -> list:
    """Returns [c_id, c_balance, 0], or [c_id, c_balance, 1] if this payment (uid) was already made.

    The HISTORY row's key carries the client-made uid, so a retried call whose
    first attempt did commit (an ambiguous failure) changes nothing.
    """
    p, w, d, cp, cw, cd, amount, now = a["p"], a["w"], a["d"], a["cp"], a["cw"], a["cd"], a["h"], a["t"]
    c = a.get("c")
    if not c:
        c = _customer_by_name(tx, cp, cd, a["last"])
        if c is None:
            tx.abort("no customer named " + a["last"])
    hk = b"%sH%02d%04d%s" % (cp, cd, c, a["u"])
    bk = b"%sB%02d%04d" % (cp, cd, c)
    if tx.get(hk) is not None:
        return [c, tx.get(bk)[B_BALANCE], 1]
    wyk = p + b"Wy"
    tx.put(wyk, tx.get(wyk) + amount)
    dyk = b"%sDy%02d" % (p, d)
    tx.put(dyk, tx.get(dyk) + amount)
    w_name = tx.get(p + b"W")[W_NAME]
    d_name = tx.get(b"%sD%02d" % (p, d))[D_NAME]
    ck = b"%sC%02d%04d" % (cp, cd, c)
    crow = tx.get(ck)
    b = tx.get(bk)
    balance = b[B_BALANCE] - amount
    tx.put(bk, [balance, b[B_YTD_PAYMENT] + amount, b[B_PAYMENT_CNT] + 1, b[B_DELIVERY_CNT]])
    if crow[C_CREDIT] == "BC":
        entry = "%d %d %d %d %d %d.%02d " % (c, cd, cw, d, w, amount // 100, amount % 100)
        new = list(crow)
        new[C_DATA] = (entry + crow[C_DATA])[:500]
        tx.put(ck, new)
    tx.put(hk, [w, d, now, amount, w_name + "    " + d_name])
    return [c, balance, 0]


# -- Order-Status (clause 2.6) ------------------------------------------------------------------------


def _fp_order_status(a: dict) -> list:
    p, d = a["p"], a["d"]
    out = [_district_range(p, letter, d) for letter in (b"C", b"B", b"o", b"O", b"L")]
    if not a.get("c"):
        start = b"%sc%02d%s:" % (p, d, a["last"].encode())
        out.append([start, start + END])
    return out


@procedure("tpcc.order_status", footprint=_fp_order_status, readonly=True)
def order_status(tx: ProcTxn, a: dict) -> list:
    """Returns [c_id, c_balance, o_id, o_entry_d, o_carrier_id, [[i_id, supply_w, qty, amount, delivery_d], ...]]."""
    p, d = a["p"], a["d"]
    c = a.get("c")
    if not c:
        c = _customer_by_name(tx, p, d, a["last"])
        if c is None:
            tx.abort("no customer named " + a["last"])
    tx.get(b"%sC%02d%04d" % (p, d, c))  # c_first, c_middle, c_last: read, not returned
    balance = tx.get(b"%sB%02d%04d" % (p, d, c))[B_BALANCE]
    start = b"%so%02d%04d" % (p, d, c)
    latest = tx.scan(start, start + END, limit=1, reverse=True)
    if not latest:
        return [c, balance, None, None, None, []]
    o_id = latest[0][1]
    order = tx.get(b"%sO%02d%08d" % (p, d, o_id))
    start = b"%sL%02d%08d" % (p, d, o_id)
    lines = [
        [ol[OL_I_ID], ol[OL_SUPPLY_W_ID], ol[OL_QUANTITY], ol[OL_AMOUNT], ol[OL_DELIVERY_D]]
        for _, ol in tx.scan(start, start + END)
    ]
    return [c, balance, o_id, order[O_ENTRY_D], order[O_CARRIER_ID], lines]


# -- Delivery (clause 2.7) ---------------------------------------------------------------------------


def _fp_delivery(a: dict) -> list:
    p = a["p"]
    return [
        _district_range(p, letter, d) for d in range(1, DISTRICTS + 1) for letter in (b"N", b"O", b"L", b"B")
    ]


@procedure("tpcc.delivery", footprint=_fp_delivery)
def delivery(tx: ProcTxn, a: dict) -> list:
    """Delivers the oldest undelivered order of each district; returns their o_ids (0: none, skipped)."""
    p, carrier, now = a["p"], a["o"], a["t"]
    get, put = tx.get, tx.put
    delivered = []
    for d in range(1, DISTRICTS + 1):
        start = b"%sN%02d" % (p, d)
        oldest = tx.scan(start, start + END, limit=1)
        if not oldest:
            delivered.append(0)
            continue
        nk = oldest[0][0]
        o_id = int(nk[-8:])
        tx.delete(nk)
        ok = b"%sO%02d%08d" % (p, d, o_id)
        order = get(ok)
        c = order[O_C_ID]
        put(ok, [c, order[O_ENTRY_D], carrier, order[O_OL_CNT], order[O_ALL_LOCAL]])
        start = b"%sL%02d%08d" % (p, d, o_id)
        total = 0
        for lk, ol in tx.scan(start, start + END):
            total += ol[OL_AMOUNT]
            new = list(ol)
            new[OL_DELIVERY_D] = now
            put(lk, new)
        bk = b"%sB%02d%04d" % (p, d, c)
        b = get(bk)
        put(bk, [b[B_BALANCE] + total, b[B_YTD_PAYMENT], b[B_PAYMENT_CNT], b[B_DELIVERY_CNT] + 1])
        delivered.append(o_id)
    return delivered


# -- Stock-Level (clause 2.8) ------------------------------------------------------------------------


def _fp_stock_level(a: dict) -> list:
    p, d = a["p"], a["d"]
    return [b"%sDn%02d" % (p, d), _district_range(p, b"L", d), [p + b"Q", p + b"Q" + END]]


@procedure("tpcc.stock_level", footprint=_fp_stock_level, readonly=True)
def stock_level(tx: ProcTxn, a: dict) -> int:
    """Distinct items of the district's last 20 orders whose home stock is below ``th``."""
    p, d, threshold = a["p"], a["d"], a["th"]
    next_o_id = tx.get(b"%sDn%02d" % (p, d))
    lines = tx.scan(b"%sL%02d%08d" % (p, d, max(0, next_o_id - 20)), b"%sL%02d%08d" % (p, d, next_o_id))
    items = {ol[OL_I_ID] for _, ol in lines}
    get = tx.get
    low = 0
    for i_id in items:
        q = get(b"%sQ%06d" % (p, i_id))
        if q is not None and q[Q_QUANTITY] < threshold:
            low += 1
    return low


# -- loading and reading ------------------------------------------------------------------------------


def _fp_rows(a: dict) -> list:
    return [key for key, _ in a["rows"]]


@procedure("tpcc.load", footprint=_fp_rows)
def load(tx: ProcTxn, a: dict) -> int:
    """Puts every [key, value] of ``rows`` (one batch of the initial population)."""
    put = tx.put
    for key, value in a["rows"]:
        put(key, value)
    return len(a["rows"])


@procedure("tpcc.get", footprint=lambda a: list(a["keys"]), readonly=True)
def get_rows(tx: ProcTxn, a: dict) -> list:
    """The values of ``keys`` (None where absent): one consistent read."""
    return [tx.get(key) for key in a["keys"]]


@procedure("tpcc.scan", footprint=lambda a: [[a["start"], a["end"]]], readonly=True)
def scan_rows(tx: ProcTxn, a: dict) -> list:
    """[[key, value], ...] for start <= key < end, at most ``limit`` (tests and tools)."""
    return [[k, v] for k, v in tx.scan(a["start"], a["end"], a.get("limit"), bool(a.get("reverse")))]


from makod.procs import tpcc_check  # noqa: E402,F401  (registers the checker procedures)

__all__ = ["new_order", "payment", "order_status", "delivery", "stock_level", "load", "get_rows", "tpcc_check"]
