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

import makod.kv.types  # noqa: F401  (registers every data command)
import resp.commands.connection  # noqa: F401  (SELECT)
from makod.core.context import DirectContext
from makod.kv.keyspace import Keyspace
from makod.kv import errors, glob
from makod.kv.errors import CommandError
from resp.replies import ErrorReply, encode
from makod.kv.table import TABLE, resolve

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


KEYSPACE_CLASS = Keyspace


class Harness:
    def __init__(self, now_ms: int = DEFAULT_NOW_MS, seed: int = 0) -> None:
        self.ks = KEYSPACE_CLASS()
        self.now_ms = now_ms
        self.rng = random.Random(seed)
        self.version = 0
        self.last_ctx: DirectContext | None = None
        self.proto_max_bulk_len: int | None = None  # override for one harness
        self.db = 0  # the selected database: SELECT runs against the harness as its session
        self.databases = 16

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
            ctx.proto_max_bulk_len = self.proto_max_bulk_len  # as the replica sets its config
        ctx.db = self.db
        ctx.databases = self.databases
        return ctx

    def run(self, *argv: Any) -> Any:
        args = [as_bytes(a) for a in argv]
        spec = resolve(TABLE, args)
        if spec is None or spec.handler is None:
            return ErrorReply(errors.unknown_command(args[0], args[1:]))
        if not spec.arity_ok(len(args)):
            return ErrorReply(errors.wrong_arity(spec.name))
        if spec.name == "select":
            try:
                return spec.handler(self, args)  # a session command: it sets self.db
            except CommandError as exc:
                return ErrorReply(exc.text)
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

