"""Running a request's commands in a transaction context, one after
another, as the replica's single-shard execution does: WATCH checked
first, each command's errors its own reply, keyspace hits and misses
counted for read-only commands, keyspace notifications noted when asked."""

from __future__ import annotations

from typing import Any, Callable

from makod.core.context import DirectContext
from makod.kv import notify
from makod.kv.errors import CommandError
from makod.kv.replies import NULL_ARRAY, ErrorReply
from makod.kv.requests import TxnRequest


def run_commands(lookup: Callable[[list[bytes]], Any], ctx: DirectContext, request: TxnRequest) -> Any:
    if request.watches:
        for db, key, version in request.watch_items():
            ctx.db = db
            if ctx.version_of(key) != version:
                return NULL_ARRAY
    specs = request.specs
    ctx.may_block = not request.multi
    ctx.db = request.db
    noting = ctx.events is not None
    if specs is not None and not request.multi and not noting:
        ctx.count_lookups = "readonly" in specs[0].flags
        try:
            return specs[0].handler(ctx, request.commands[0])
        except CommandError as exc:
            return ErrorReply(exc.text)
    replies = []
    for i, argv in enumerate(request.commands):
        ctx.db = request.db_of(i)
        spec = lookup(argv)
        ctx.count_lookups = "readonly" in spec.flags
        start = len(ctx.ops)
        try:
            replies.append(spec.handler(ctx, argv))
        except CommandError as exc:
            replies.append(ErrorReply(exc.text))
        if noting:
            notify.collect(ctx, spec, start, argv)
    return replies if request.multi else replies[0]
