"""Where FUNCTION libraries live: one record per shard, in the keyspace.

Every shard keeps a copy of all libraries (name -> code) under one internal
key of a database no SELECT reaches (``dbs.FUNCTIONS_DB``), ``ctx.home_tag``
(``{fn}``): a hidden key, each shard's own, never moved with its slot (a
name that no reshard, restore or added shard changes). So the libraries
are replicated through the shard's log, survive restarts and snapshots like
any record, and an FCALL reads its own shard's copy without a round trip.
FUNCTION LOAD/DELETE/FLUSH/RESTORE are whole-keyspace commands: they run on
every shard (makod/core/fanout.py), each writing its copy; the copies agree
unless one shard's part failed, and the next successful FUNCTION write makes
them agree again (the command answers the failure, as a partial FLUSHALL
does).

The engine (one per process) holds compiled libraries; ``sync`` reloads it
when the copy a command read differs from what it holds.
"""

from __future__ import annotations

from typing import Any

from makod.kv import dbs
from makod.kv.records import KIND_NATIVE


def read(ctx: Any) -> dict[str, bytes]:
    """The libraries of the shard ``ctx`` runs on (name -> code)."""
    saved, ctx.db = ctx.db, dbs.FUNCTIONS_DB
    try:
        rec = ctx.get(ctx.home_tag)
    finally:
        ctx.db = saved
    if rec is None or rec.kind != KIND_NATIVE or type(rec.value) is not dict:
        return {}
    return rec.value


def write(ctx: Any, libs: dict[str, bytes]) -> None:
    saved, ctx.db = ctx.db, dbs.FUNCTIONS_DB
    try:
        if libs:
            ctx.set(ctx.home_tag, KIND_NATIVE, dict(libs), None)
        else:
            ctx.delete(ctx.home_tag)
    finally:
        ctx.db = saved


class Synced:
    """What the engine holds, so ``sync`` reloads only on a change."""

    def __init__(self) -> None:
        self.libs: tuple = ()

    def sync(self, engine: Any, libs: dict[str, bytes]) -> None:
        wanted = tuple(sorted(libs.items()))
        if wanted == self.libs:
            return
        engine.flush_libraries()
        self.libs = ()
        for _name, code in wanted:
            engine.load_library(code, replace=True)
        self.libs = wanted

    def forget(self) -> None:
        self.libs = ()
