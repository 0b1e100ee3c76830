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
  timestamp before running them, so it must know their keys): a list (all
  written unless the procedure is read-only) or ``{"reads": [...], "writes":
  [...]}``, which lets transactions that only read the same keys run side by
  side.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

import msgpack

from makod.kv import dbs, errors
from makod.kv.errors import CommandError
from makod.codec import pack
from makod.kv.errors import Abort  # noqa: F401  (re-exported: the cores catch it)
from makod.kv.records import KIND_NATIVE, KIND_STRING, Record

# Values msgpack gives back as they were, and that nothing can change in place.
_SCALARS = frozenset((int, float, str, bytes, bool, type(None)))


class ProcedureFailed(Exception):
    """A procedure broke a rule of the interface (e.g. put a value msgpack cannot encode)."""


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
        if proc.name in self._by_name:
            raise ValueError(f"procedure {proc.name!r} is registered twice")
        self._by_name[proc.name] = proc
        return proc

    def get(self, name: str) -> Procedure | None:
        return self._by_name.get(name)

    def names(self) -> list[str]:
        return sorted(self._by_name)


PROCEDURES = ProcedureRegistry()
FOOTPRINT_KEYS_MAX = 10_000


def call_args(rest: list[bytes]) -> Any:
    """A ``MAKO CALL name ...``'s arguments: msgpack (what makod.client
    sends), or ``JSON <text>`` so that redis-cli can call a procedure too.
    Raises CommandError (the text says why)."""
    if not rest:
        return None
    if len(rest) == 2 and rest[0].upper() == b"JSON":
        try:
            return json.loads(rest[1])
        except ValueError as exc:
            raise CommandError(f"ERR MAKO CALL JSON arguments do not parse: {exc}") from None
    if len(rest) != 1:
        raise CommandError(errors.SYNTAX)
    try:
        return msgpack.unpackb(rest[0], raw=False, strict_map_key=False)
    except (ValueError, msgpack.UnpackException):
        raise CommandError(errors.PROCEDURE_BAD_ARGS) from None


def footprint_keys(argv: list[bytes], registry: ProcedureRegistry = PROCEDURES) -> list[bytes]:
    """The keys a ``MAKO CALL name args`` declares it may touch ([] if it declares none).

    Only a hint (the coordinator fetches them up front): a footprint that
    raises or is wrong costs extra rounds, never correctness, since every
    key a run touches is fetched and validated anyway.
    """
    if len(argv) < 3 or argv[0].lower() != b"mako" or argv[1].lower() != b"call":
        return []
    proc = registry.get(argv[2].decode("utf-8", "replace"))
    if proc is None or proc.footprint is None:
        return []
    try:
        items = proc.footprint(call_args(argv[3:]))
        if isinstance(items, dict):
            items = list(items.get("reads") or []) + list(items.get("writes") or [])
        return [item for item in items[:FOOTPRINT_KEYS_MAX] if type(item) is bytes]
    except Exception:  # user code: a broken footprint only loses the prefetch
        return []


def procedure_footprint(argv: list[bytes], registry: ProcedureRegistry = PROCEDURES) -> tuple[list, list, list, list]:
    """A ``MAKO CALL name args``'s whole declared footprint, for protocols
    that order transactions before running them: (read keys, read ranges,
    write keys, write ranges), ranges as (start, end).

    A footprint is either a list of keys and ``[start, end]`` ranges (all
    written, unless the procedure is read-only) or a dict ``{"reads": [...],
    "writes": [...]}`` of such lists. Raises ValueError (the text says why)
    when there is none or it is malformed.
    """
    if len(argv) < 3 or argv[0].lower() != b"mako" or argv[1].lower() != b"call":
        raise ValueError("not a procedure call")
    name = argv[2].decode("utf-8", "replace")
    proc = registry.get(name)
    if proc is None:
        raise ValueError(f"unknown procedure '{name}'")
    if proc.footprint is None:
        raise ValueError(f"procedure '{name}' declares no footprint")
    try:
        declared = proc.footprint(call_args(argv[3:]))
    except Exception as exc:  # user code
        raise ValueError(f"the footprint of procedure '{name}' failed: {type(exc).__name__}") from None
    if isinstance(declared, dict):
        reads, writes = declared.get("reads") or [], declared.get("writes") or []
    elif proc.readonly:
        reads, writes = declared, []
    else:
        reads, writes = [], declared
    out: list[list] = [[], [], [], []]
    for base, items in ((0, reads), (2, writes)):
        if not isinstance(items, (list, tuple)):
            raise ValueError(f"the footprint of procedure '{name}' is not a list of keys and ranges")
        for item in items[: FOOTPRINT_KEYS_MAX + 1]:
            if type(item) is bytes:
                out[base].append(item)
            elif type(item) in (list, tuple) and len(item) == 2 and type(item[0]) is bytes and (
                item[1] is None or type(item[1]) is bytes
            ):
                out[base + 1].append((item[0], item[1]))
            else:
                raise ValueError(f"the footprint of procedure '{name}' holds {type(item).__name__}, "
                                 "not a key or range")
    if sum(len(part) for part in out) > FOOTPRINT_KEYS_MAX:
        raise ValueError(f"the footprint of procedure '{name}' is longer than {FOOTPRINT_KEYS_MAX} items")
    if proc.readonly and (out[2] or out[3]):
        raise ValueError(f"read-only procedure '{name}' declares writes")
    return out[0], out[1], out[2], out[3]


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
        ctx.db = 0  # procedures' keys are database 0's, whatever the caller SELECTed
        self.ctx = ctx

    @property
    def now_ms(self) -> int:
        return self.ctx.now_ms

    def get(self, key: bytes) -> Any:
        rec = self.ctx.get(key)
        return None if rec is None else _native(rec)

    def put(self, key: bytes, value: Any) -> None:
        # Every value is encoded later, in a Paxos batch with other clients'
        # transactions: a value msgpack cannot encode must fail this
        # transaction now, not that batch.
        # The bytes are kept: the next checkpoint stores them as they are.
        try:
            packed = pack(value)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ProcedureFailed(f"cannot store {type(value).__name__} value under {key!r}: {exc}") from None
        if type(value) not in _SCALARS:
            # What is stored is decoded from those bytes, as a follower decodes
            # it from the log: a later change to the caller's list cannot
            # reach the stored row (or make it differ from the bytes).
            value = msgpack.unpackb(packed, raw=False, strict_map_key=False, use_list=True)
        self.ctx.set(key, KIND_NATIVE, value, None, packed)

    def delete(self, key: bytes) -> bool:
        return self.ctx.delete(key)

    def scan(
        self, start: bytes, end: bytes | None, limit: int | None = None, reverse: bool = False
    ) -> list[tuple[bytes, Any]]:
        """Rows with start <= key < end, in key order (or reverse), at most ``limit``.

        Ranges are over stored keys: database 0's, as long as they stay below
        dbs.MARK (the other databases' keys all sort after it, and are cut off)."""
        if end is None or end > dbs.MARK:
            end = dbs.MARK
        if start >= end:
            return []
        return [(key, _native(rec)) for key, rec in self.ctx.range(start, end, limit, reverse)]

    def abort(self, reason: str) -> None:
        raise Abort(reason)


def _native(rec: Record) -> Any:
    if rec.kind == KIND_NATIVE:
        return rec.value
    if rec.kind == KIND_STRING:
        return rec.value
    return dict(rec.value)
