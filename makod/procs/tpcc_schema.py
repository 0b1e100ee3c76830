"""TPC-C schema: key layout and row layouts, shared by the procedures (server) and the driver.

Keys
----
Every row of warehouse ``w`` starts with the warehouse's hash tag, ``{w<w>.<n>}``
(chosen so that the slot lands on shard ``(w-1) * S // W``), so a whole
warehouse lives on one shard and a key's prefix alone routes it. After the tag
comes a table letter and fixed-width zero-padded decimal fields, so byte order
is numeric order and range scans work::

    W                    warehouse (static columns)         [name, street_1, street_2, city, state, zip, tax]
    Wy                   warehouse W_YTD                    int cents
    D<dd>                district (static columns)          [name, street_1, street_2, city, state, zip, tax]
    Dn<dd>               district D_NEXT_O_ID               int
    Dy<dd>               district D_YTD                     int cents
    C<dd><cccc>          customer (static columns + C_DATA) see C_*
    B<dd><cccc>          customer balance columns           [balance, ytd_payment, payment_cnt, delivery_cnt]
    c<dd><LAST>:<FIRST>:<cccc>   customer by last name      [c_first, c_id]
    H<dd><cccc><uid>     history, under the CUSTOMER's warehouse   see H_*
    O<dd><oooooooo>      order                              see O_*
    o<dd><cccc><oooooooo>  order by customer (latest order)  o_id
    N<dd><oooooooo>      new-order                          1
    L<dd><oooooooo><nn>  order-line                         see OL_*
    S<iiiiii>            stock (static: S_DATA, S_DIST_01..10)
    Q<iiiiii>            stock counters                     [quantity, ytd, order_cnt, remote_cnt]

ITEM is read-only and loaded once per shard under that shard's own tag
(``{item.<n>}I<iiiiii>``: [im_id, name, price, data]), so item reads are
always local to the shard a transaction runs on.

Vertical partitioning (allowed by TPC-C clause 1.6, partitioning): columns that one
transaction type updates are kept apart from columns another type only reads,
so that Payment (W_YTD, D_YTD, C_BALANCE...) and New-Order (D_NEXT_O_ID,
S_QUANTITY...) never write a key the other merely reads. Under an optimistic
protocol that removes conflicts the spec does not call for.

Money is integer cents; tax and discount rates are integer units of 1/10000.
"""

from __future__ import annotations

DISTRICTS = 10
CUSTOMERS = 3000  # per district
ORDERS = 3000  # per district, initially
FIRST_UNDELIVERED = 2101  # orders 2101..3000 start undelivered (in NEW-ORDER)
ITEMS = 100_000
MAX_OL_CNT = 15

# WAREHOUSE (static part)
W_NAME, W_STREET_1, W_STREET_2, W_CITY, W_STATE, W_ZIP, W_TAX = range(7)
# DISTRICT (static part)
D_NAME, D_STREET_1, D_STREET_2, D_CITY, D_STATE, D_ZIP, D_TAX = range(7)
# CUSTOMER (static part, plus C_DATA which only bad-credit Payments rewrite)
(
    C_FIRST, C_MIDDLE, C_LAST, C_STREET_1, C_STREET_2, C_CITY, C_STATE, C_ZIP, C_PHONE,
    C_SINCE, C_CREDIT, C_CREDIT_LIM, C_DISCOUNT, C_DATA,
) = range(14)
# CUSTOMER balance part
B_BALANCE, B_YTD_PAYMENT, B_PAYMENT_CNT, B_DELIVERY_CNT = range(4)
# HISTORY (stored under the paying customer's warehouse and id)
H_W_ID, H_D_ID, H_DATE, H_AMOUNT, H_DATA = range(5)
# ORDER
O_C_ID, O_ENTRY_D, O_CARRIER_ID, O_OL_CNT, O_ALL_LOCAL = range(5)
# ORDER-LINE
OL_I_ID, OL_SUPPLY_W_ID, OL_DELIVERY_D, OL_QUANTITY, OL_AMOUNT, OL_DIST_INFO = range(6)
# STOCK static part: S_DATA at 0, S_DIST_xx at index xx (1..10)
S_DATA = 0
# STOCK counters
Q_QUANTITY, Q_YTD, Q_ORDER_CNT, Q_REMOTE_CNT = range(4)
# ITEM
I_IM_ID, I_NAME, I_PRICE, I_DATA = range(4)

META_KEY = b"{tpcc}meta"
# Loaded HISTORY rows use this uid; run-time uids are 20 lowercase hex digits.
LOAD_UID = b"L0000000000000000000"

# Byte after every key of a prefix (keys are printable ASCII).
END = b"\xff"


# -- tags -------------------------------------------------------------------------------------
def home_shard(w: int, warehouses: int, shards: int) -> int:
    """The shard warehouse ``w`` (1-based) lives on: (w-1) * S // W."""
    return (w - 1) * shards // warehouses


def warehouse_prefix(slots, w: int, warehouses: int) -> bytes:
    """``{tag}`` for warehouse ``w``, its tag chosen so the slot lands on its home shard."""
    shard = home_shard(w, warehouses, slots.num_shards)
    return b"{" + slots.tag_for_shard(shard, f"w{w}.").encode() + b"}"


def item_prefix(slots, shard: int) -> bytes:
    return b"{" + slots.tag_for_shard(shard, "item.").encode() + b"}"


# -- keys -------------------------------------------------------------------------------------
def k_w(p: bytes) -> bytes:
    return p + b"W"


def k_wy(p: bytes) -> bytes:
    return p + b"Wy"


def k_d(p: bytes, d: int) -> bytes:
    return b"%sD%02d" % (p, d)


def k_dn(p: bytes, d: int) -> bytes:
    return b"%sDn%02d" % (p, d)


def k_dy(p: bytes, d: int) -> bytes:
    return b"%sDy%02d" % (p, d)


def k_c(p: bytes, d: int, c: int) -> bytes:
    return b"%sC%02d%04d" % (p, d, c)


def k_b(p: bytes, d: int, c: int) -> bytes:
    return b"%sB%02d%04d" % (p, d, c)


def k_cname(p: bytes, d: int, last: str, first: str, c: int) -> bytes:
    return b"%sc%02d%s:%s:%04d" % (p, d, last.encode(), first.encode(), c)


def cname_range(p: bytes, d: int, last: str) -> tuple[bytes, bytes]:
    """Every name-index key of customers of district ``d`` whose C_LAST is exactly ``last``."""
    start = b"%sc%02d%s:" % (p, d, last.encode())
    return start, start + END


def k_h(p: bytes, d: int, c: int, uid: bytes) -> bytes:
    return b"%sH%02d%04d%s" % (p, d, c, uid)


def k_o(p: bytes, d: int, o: int) -> bytes:
    return b"%sO%02d%08d" % (p, d, o)


def k_oc(p: bytes, d: int, c: int, o: int) -> bytes:
    return b"%so%02d%04d%08d" % (p, d, c, o)


def oc_range(p: bytes, d: int, c: int) -> tuple[bytes, bytes]:
    start = b"%so%02d%04d" % (p, d, c)
    return start, start + END


def k_no(p: bytes, d: int, o: int) -> bytes:
    return b"%sN%02d%08d" % (p, d, o)


def k_ol(p: bytes, d: int, o: int, n: int) -> bytes:
    return b"%sL%02d%08d%02d" % (p, d, o, n)


def ol_range(p: bytes, d: int, o: int) -> tuple[bytes, bytes]:
    """The lines of order ``o``."""
    start = b"%sL%02d%08d" % (p, d, o)
    return start, start + END


def k_s(p: bytes, i: int) -> bytes:
    return b"%sS%06d" % (p, i)


def k_q(p: bytes, i: int) -> bytes:
    return b"%sQ%06d" % (p, i)


def k_i(ip: bytes, i: int) -> bytes:
    return b"%sI%06d" % (ip, i)


def table_range(p: bytes, letter: bytes, d: int | None = None) -> tuple[bytes, bytes]:
    """All rows of one table of a warehouse (or of one district of it)."""
    start = p + letter if d is None else b"%s%s%02d" % (p, letter, d)
    return start, start + END


# -- parsing keys back ----------------------------------------------------------------------------
def o_id_of_order_key(key: bytes) -> int:
    """o_id from an O, N or o key (the last 8 digits)."""
    return int(key[-8:])


def o_id_of_line_key(key: bytes) -> int:
    return int(key[-10:-2])


def c_id_of_customer_key(key: bytes) -> int:
    """c_id from a C or B key (the last 4 digits)."""
    return int(key[-4:])


def c_id_of_history_key(p: bytes, key: bytes) -> int:
    off = len(p) + 3  # tag, "H", dd
    return int(key[off : off + 4])


def middle_match(matches: list) -> int:
    """Index of the customer TPC-C picks among ``n`` name matches sorted by C_FIRST.

    Clause 2.5.2.2: the row at position n/2 rounded up (1-based).
    """
    return (len(matches) - 1) // 2
