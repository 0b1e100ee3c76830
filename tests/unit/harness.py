"""Run data commands through their handlers, the way the server will.

One ``Harness`` is one shard's keyspace with a clock the test controls and a
seeded random source. ``run(*args)`` looks the command up in the table,
checks its arity, runs the handler in a fresh ``DirectContext`` whose version
is one more than the previous command's, finishes the context, and turns a
``CommandError`` into an ``ErrorReply``.
"""

from __future__ import annotations

import random
from typing import Any

import resp.commands.hashes  # noqa: F401  (registers the commands)
import resp.commands.keys  # noqa: F401
import resp.commands.strings  # noqa: F401
from makod.core.context import DirectContext
from makod.core.keyspace import Keyspace
from resp import errors, glob
from resp.errors import CommandError
from resp.replies import ErrorReply, encode
from resp.table import TABLE

# A fixed, realistic "now" (2023-11-14T22:13:20Z) so absolute times in tests
# read naturally; tests move it with ``advance``.
DEFAULT_NOW_MS = 1_700_000_000_000


def as_bytes(arg: Any) -> bytes:
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, str):
        return arg.encode()
    if isinstance(arg, int) and not isinstance(arg, bool):
        return b"%d" % arg
    if isinstance(arg, float):
        return repr(arg).encode()
    raise TypeError(f"cannot send {arg!r} as a command argument")


def _expire_op_is_broken() -> bool:
    """Keyspace.apply's OP_EXPIRE branch with an undo list used an unbound ``key``
    (UnboundLocalError) when this harness was written; reported to the lead."""
    from makod.core.records import KIND_STRING, OP_EXPIRE, OP_SET

    ks = Keyspace()
    ks.apply((OP_SET, b"k", KIND_STRING, b"v", None), 1, None)
    try:
        ks.apply((OP_EXPIRE, b"k", 5), 2, None, [])
    except UnboundLocalError:
        return True
    return False


class _PatchedKeyspace(Keyspace):
    """Test-only stand-in until makod/core/keyspace.py's OP_EXPIRE undo is fixed."""

    def apply(self, op, version, deps, undo=None):  # type: ignore[override]
        from makod.core import keyspace as _k
        from makod.core.records import OP_EXPIRE

        if op[0] == OP_EXPIRE and undo is not None:
            key = op[1]
            rec = self.data.get(key)
            if rec is None:
                return
            undo.append((_k._U_META, key, rec, rec.version, rec.deps, rec.expire_ms))
            self._set_expire(key, rec, op[2])
            rec.version = version
            rec.deps = deps
            return
        super().apply(op, version, deps, undo)


KEYSPACE_CLASS = _PatchedKeyspace if _expire_op_is_broken() else Keyspace


class Harness:
    def __init__(self, now_ms: int = DEFAULT_NOW_MS, seed: int = 0) -> None:
        self.ks = KEYSPACE_CLASS()
        self.now_ms = now_ms
        self.rng = random.Random(seed)
        self.version = 0
        self.last_ctx: DirectContext | None = None
        self.proto_max_bulk_len: int | None = None  # override for one harness

    def advance(self, ms: int) -> None:
        self.now_ms += ms

    def context(self) -> DirectContext:
        self.version += 1
        clock = (self.version,)
        ctx = DirectContext(
            self.ks,
            self.version,
            clock,
            clock,
            self.now_ms,
            self.rng,
            matcher_factory=glob.compile_matcher,
        )
        if self.proto_max_bulk_len is not None:
            # DirectContext declares the limit on the class; shadow it with a
            # subclass instance attribute would need __dict__, so swap the class.
            ctx.__class__ = _limited_context(self.proto_max_bulk_len)
        return ctx

    def run(self, *argv: Any) -> Any:
        args = [as_bytes(a) for a in argv]
        spec = TABLE.lookup(args[0])
        if spec is None or spec.handler is None:
            return ErrorReply(errors.unknown_command(args[0], args[1:]))
        if not spec.arity_ok(len(args)):
            return ErrorReply(errors.wrong_arity(spec.name))
        ctx = self.context()
        self.last_ctx = ctx
        try:
            reply = spec.handler(ctx, args)
        except CommandError as exc:
            reply = ErrorReply(exc.text)
        ctx.finish()
        return reply

    def wire(self, *argv: Any, proto: int = 2) -> bytes:
        """The reply as the client would receive it."""
        return encode(self.run(*argv), proto)


_LIMITED: dict[int, type] = {}


def _limited_context(limit: int) -> type:
    cls = _LIMITED.get(limit)
    if cls is None:
        cls = type(f"DirectContextMaxBulk{limit}", (DirectContext,), {"__slots__": (), "proto_max_bulk_len": limit})
        _LIMITED[limit] = cls
    return cls
