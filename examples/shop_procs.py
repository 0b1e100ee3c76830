"""Your own stored procedures: a small shop whose orders reserve stock.

A procedure is a Python function that makod runs as one transaction (same
protocol, same guarantees as MULTI/EXEC). List the module in the cluster
config and put it beside ``cluster.yaml`` in the data directory (or anywhere
on makod's Python path):

    procedure_modules: [shop_procs]

``footprint`` names the keys a call will touch before it runs, so a call
that spans shards fetches them in one round; keys found only while running
still work, they just cost another round trip.
"""

from __future__ import annotations

from typing import Any

from makod.core.procedures import ProcTxn, procedure


def stock_key(item: str) -> bytes:
    return f"shop:stock:{item}".encode()


def order_key(order_id: str) -> bytes:
    return f"shop:order:{order_id}".encode()


@procedure("shop.restock", footprint=lambda a: [stock_key(i) for i in a["items"]])
def restock(tx: ProcTxn, args: dict[str, Any]) -> dict[str, int]:
    """args: {"items": {item: quantity}}; returns the new stock levels."""
    levels = {}
    for item, quantity in args["items"].items():
        levels[item] = (tx.get(stock_key(item)) or 0) + int(quantity)
        tx.put(stock_key(item), levels[item])
    return levels


@procedure(
    "shop.order",
    footprint=lambda a: [order_key(a["order_id"])] + [stock_key(i) for i in a["lines"]],
)
def order(tx: ProcTxn, args: dict[str, Any]) -> dict[str, Any]:
    """args: {"order_id", "lines": {item: quantity}}. All lines or none:
    one item short aborts the whole order and nothing is reserved."""
    if tx.get(order_key(args["order_id"])) is not None:
        tx.abort("duplicate order")
    for item, quantity in args["lines"].items():
        have = tx.get(stock_key(item)) or 0
        if have < quantity:
            tx.abort(f"out of stock: {item}")
        tx.put(stock_key(item), have - quantity)
    tx.put(order_key(args["order_id"]), args["lines"])
    return {"order_id": args["order_id"], "lines": len(args["lines"])}


@procedure("shop.stock", readonly=True)
def stock(tx: ProcTxn, args: Any) -> dict[str, int]:
    """Every stock level, read as one snapshot (an ordered range scan)."""
    prefix = b"shop:stock:"
    return {key[len(prefix):].decode(): value for key, value in tx.scan(prefix, b"shop:stock;")}
