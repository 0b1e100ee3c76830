"""Bank-account procedures: the smallest example of a stored-procedure transaction."""

from __future__ import annotations

from typing import Any

from makod.core.procedures import ProcTxn, procedure


def account_key(name: str) -> bytes:
    return f"acct:{name}".encode()


@procedure("bank.open")
def open_accounts(tx: ProcTxn, args: dict[str, Any]) -> int:
    """args: {"accounts": {name: balance}}; returns how many were opened."""
    for name, balance in args["accounts"].items():
        tx.put(account_key(name), int(balance))
    return len(args["accounts"])


@procedure("bank.transfer")
def transfer(tx: ProcTxn, args: dict[str, Any]) -> list[int]:
    """args: {"from", "to", "amount"}; aborts if the source would go negative."""
    src, dst, amount = account_key(args["from"]), account_key(args["to"]), int(args["amount"])
    src_balance = tx.get(src)
    dst_balance = tx.get(dst)
    if src_balance is None or dst_balance is None:
        tx.abort("no such account")
    if src_balance < amount:
        tx.abort("insufficient funds")
    tx.put(src, src_balance - amount)
    tx.put(dst, dst_balance + amount)
    return [src_balance - amount, dst_balance + amount]


@procedure("bank.total", readonly=True)
def total(tx: ProcTxn, args: Any) -> int:
    """The sum of every account: one consistent snapshot of all of them."""
    return sum(value for _, value in tx.scan(b"acct:", b"acct;"))
