"""The simulator's stored procedure: list-append transactions on native values.

``sim.append_read`` takes ``{"mops": [[kind, key, arg], ...]}``: "append"
adds ``arg`` (a mark) to the list stored under ``key``, "read" returns the
list, "scan" reads every list with ``key <= k < arg[0]`` in key order, at
most ``arg[1]`` of them, as [[k, list], ...]. Its result holds, per mop,
what it read (None for an append), so the history checker (elle.py) can
check procedures like MULTI transactions. It runs whichever way the node
routes it: on one shard's fast path, through the coordinator when its keys
or ranges span shards, retried after a locked key.
"""

from __future__ import annotations

from typing import Any

from makod.core.procedures import PROCEDURES, ProcTxn, procedure

NAME = "sim.append_read"


def _footprint(args: dict) -> list:
    # Keys, then the ranges scanned (Mako only prefetches the keys; Luigi
    # orders by all of it).
    keys = sorted({mop[1] for mop in args["mops"] if mop[0] != "scan"})
    return keys + [[mop[1], mop[2][0]] for mop in args["mops"] if mop[0] == "scan"]


def append_read(tx: ProcTxn, args: dict) -> list[Any]:
    out: list[Any] = []
    for kind, key, arg in args["mops"]:
        if kind == "scan":
            end, limit = arg
            out.append([[k, v] for k, v in tx.scan(key, end, limit)])
            continue
        current = tx.get(key) or []
        if kind == "append":
            tx.put(key, current + [arg])
            out.append(None)
        else:
            out.append(current)
    return out


if PROCEDURES.get(NAME) is None:  # imported once per process, but be safe under reloads
    procedure(NAME, footprint=_footprint)(append_read)
