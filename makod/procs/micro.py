"""Micro-benchmark procedures (``makoctl bench micro``): reads and read-modify-writes of counters.

Keys are ``{<tag of shard s>}k<10 digits>``; the driver picks which keys a
transaction touches (its shard mix, Zipf skew, read ratio), so the procedure
only executes: it reads every key in ``r`` and increments every key in ``w``
(a key absent reads as 0). Every counter starts at 0, so after a run the sum
of all counters equals the number of committed increments.
"""

from __future__ import annotations

from makod.core.procedures import ProcTxn, procedure


@procedure("micro.txn", footprint=lambda a: list(a.get("r", ())) + list(a.get("w", ())))
def txn(tx: ProcTxn, a: dict) -> int:
    """Reads ``r``, increments ``w``; returns the sum of the values read."""
    get = tx.get
    total = 0
    for key in a.get("r", ()):
        total += get(key) or 0
    for key in a.get("w", ()):
        tx.put(key, (get(key) or 0) + 1)
    return total


@procedure("micro.load", footprint=lambda a: [key for key, _ in a["rows"]])
def load(tx: ProcTxn, a: dict) -> int:
    for key, value in a["rows"]:
        tx.put(key, value)
    return len(a["rows"])


@procedure("micro.sum", footprint=lambda a: [[a["start"], a["end"]]], readonly=True)
def sum_range(tx: ProcTxn, a: dict) -> list:
    """[count, sum] of the counters with start <= key < end."""
    rows = tx.scan(a["start"], a["end"])
    return [len(rows), sum(value for _, value in rows)]
