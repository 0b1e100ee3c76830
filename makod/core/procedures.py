"""Stored procedures: transaction programs registered by name and run inside makod.

A procedure is a plain function ``fn(tx, args) -> result``. ``tx`` offers
``get``, ``put``, ``delete``, ordered ``scan`` and ``abort``; values are
msgpack-able Python objects (numbers, strings, bytes, lists, dicts). The
coordinator runs it under the cluster's protocol:

* it may run a procedure more than once (a first run can discover that it
  needs rows held by another shard; the next run has them), so a procedure
  must be deterministic and touch nothing but ``tx``: randomness comes in
  ``args``;
* values read with ``tx.get`` are shared with the store: never change one in
  place, ``put`` a new object (the old one may still be needed to undo, or
  to replicate, the transaction that wrote it);
* ``tx.abort(reason)`` undoes everything the run wrote and answers the
  client ``ABORT <reason>`` (TPC-C's 1% New-Order rollback uses this);
* an optional ``footprint(args)`` lists the keys and ranges a call may touch,
  for protocols that need them up front (Luigi orders transactions by
  timestamp before running them, so it must know their keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from makod.core.records import KIND_NATIVE, KIND_STRING, Record


class Abort(Exception):
    """Raised through ``tx.abort``: the transaction's writes are undone."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Procedure:
    name: str
    fn: Callable[["ProcTxn", Any], Any]
    footprint: Callable[[Any], list] | None = None
    readonly: bool = False


class ProcedureRegistry:
    def __init__(self) -> None:
        self._by_name: dict[str, Procedure] = {}

    def register(self, proc: Procedure) -> Procedure:
        assert proc.name not in self._by_name, f"procedure {proc.name} registered twice"
        self._by_name[proc.name] = proc
        return proc

    def get(self, name: str) -> Procedure | None:
        return self._by_name.get(name)

    def names(self) -> list[str]:
        return sorted(self._by_name)


PROCEDURES = ProcedureRegistry()


def procedure(
    name: str,
    footprint: Callable[[Any], list] | None = None,
    readonly: bool = False,
    registry: ProcedureRegistry = PROCEDURES,
) -> Callable[[Callable], Callable]:
    def register(fn: Callable) -> Callable:
        registry.register(Procedure(name, fn, footprint, readonly))
        return fn

    return register


class ProcTxn:
    """What a procedure sees: a transaction over native values."""

    __slots__ = ("ctx",)

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    @property
    def now_ms(self) -> int:
        return self.ctx.now_ms

    def get(self, key: bytes) -> Any:
        rec = self.ctx.get(key)
        return None if rec is None else _native(rec)

    def put(self, key: bytes, value: Any) -> None:
        self.ctx.set(key, KIND_NATIVE, value, None)

    def delete(self, key: bytes) -> bool:
        return self.ctx.delete(key)

    def scan(
        self, start: bytes, end: bytes | None, limit: int | None = None, reverse: bool = False
    ) -> list[tuple[bytes, Any]]:
        """Rows with start <= key < end, in key order (or reverse), at most ``limit``."""
        return [(key, _native(rec)) for key, rec in self.ctx.range(start, end, limit, reverse)]

    def abort(self, reason: str) -> None:
        raise Abort(reason)


def _native(rec: Record) -> Any:
    if rec.kind == KIND_NATIVE:
        return rec.value
    if rec.kind == KIND_STRING:
        return rec.value
    return dict(rec.value)
