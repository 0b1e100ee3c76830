"""EVAL, EVALSHA, SCRIPT, FUNCTION and FCALL: the scripting commands.

A script is one command of one transaction, like a stored procedure (MAKO
CALL): its declared KEYS and every key it touches may live on any shard.
The node runs it at its own leader; when it touches another shard's key the
run ends (the protocol's NeedRemote), the coordinator fetches the key and
runs it again from the start, so a run must not be observable: randomness is
Redis's fixed sequence, time is the transaction's, and the engine re-raises
the protocol's signals past any ``pcall`` (engine.py). Its writes are then
all-or-nothing, serializable, replicated and rolled back with their
dependents on failover, like any transaction's.

The script cache (EVAL, SCRIPT LOAD) is the node's: EVALSHA of a script this
node knows is rewritten to EVAL before it is routed (``prepare``), so the
leader or coordinator that runs it need not know the SHA1. FUNCTION
libraries are data, replicated to every shard (library_store.py).
"""

from __future__ import annotations

import logging
from typing import Any

from makod.kv import errors, notify
from makod.kv.args import int_arg, is_opt
from makod.kv.errors import CommandError
from makod.kv.replies import OK
from makod.kv.scripting import guard, library_store
from makod.kv.table import command, container, numkeys_finder, subcommand

log = logging.getLogger("makod.script")

# Lua's memory for all scripts and libraries of one process (lupa's
# max_memory): past it a script fails with an out-of-memory error.
LUA_MEMORY_LIMIT_BYTES = 256 << 20

_ENGINE: list[Any] = []
_SYNCED = library_store.Synced()


def engine() -> Any:
    """The process's Lua engine (one interpreter, as Redis has one)."""
    if not _ENGINE:
        from makod.kv.scripting.engine import ScriptEngine

        _ENGINE.append(ScriptEngine(memory_limit_bytes=LUA_MEMORY_LIMIT_BYTES))
    return _ENGINE[0]


class _Calls:
    """What a running script reaches: the transaction's context (ScriptCalls)."""

    __slots__ = ("ctx",)

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    def execute(self, spec: Any, argv: list[bytes]) -> Any:
        ctx = self.ctx
        if ctx.events is None:
            return spec.handler(ctx, argv)
        start = len(ctx.ops)
        try:
            return spec.handler(ctx, argv)
        finally:
            notify.collect(ctx, spec, start, argv)  # each command of a script raises its own events

    def select(self, db: int) -> None:
        if not 0 <= db < self.ctx.databases:
            raise CommandError(errors.DB_INDEX_OUT_OF_RANGE)
        self.ctx.db = db

    def time_us(self) -> int:
        return self.ctx.now_ms * 1000

    def log(self, level: int, text: str) -> None:
        log.log(_LOG_LEVELS.get(level, logging.INFO), "script: %s", text)

    def check(self) -> None:
        guard.current().check()


_LOG_LEVELS = {0: logging.DEBUG, 1: logging.INFO, 2: logging.INFO, 3: logging.WARNING}


def _keys_and_args(args: list[bytes], at: int = 2) -> tuple[list[bytes], list[bytes]]:
    numkeys = int_arg(args[at])
    if numkeys < 0:
        raise CommandError(errors.NUMKEYS_NEGATIVE)
    if numkeys > len(args) - at - 1:
        raise CommandError(errors.NUMKEYS_TOO_MANY)
    return args[at + 1 : at + 1 + numkeys], args[at + 1 + numkeys :]


def _run(ctx: Any, kind: str, name: str, body: Any) -> Any:
    """Run ``body(calls)`` as the script: blocking commands answer at once
    inside it, and SELECT in it does not change the caller's database (both
    as in Redis 7)."""
    saved_db, saved_block = ctx.db, ctx.may_block
    ctx.may_block = False
    watch = guard.current()
    watch.begin(kind, name)
    try:
        return body(_Calls(ctx))
    finally:
        watch.end()
        ctx.db, ctx.may_block = saved_db, saved_block


def _eval(ctx: Any, args: list[bytes], readonly: bool) -> Any:
    keys, argv = _keys_and_args(args)
    eng = engine()
    sha, _flags = eng.eval_script(args[1])  # a no-writes shebang: run_eval makes the run read-only
    return _run(ctx, "eval", sha, lambda calls: eng.run_eval(sha, keys, argv, calls, readonly))


def _evalsha_to_eval(args: list[bytes]) -> list[bytes]:
    """EVALSHA of a script this node knows becomes EVAL (see the module doc)."""
    body = engine().body(args[1].lower().decode("utf-8", "replace"))
    if body is None:
        raise CommandError(errors.SCRIPT_NOSCRIPT)
    name = b"eval_ro" if args[0].lower() == b"evalsha_ro" else b"eval"
    return [name, body, *args[2:]]


_EVAL_FLAGS = "noscript stale skip_monitor may_replicate no_mandatory_keys movablekeys"
_ANY_KEY = lambda args: True  # noqa: E731  (a script may touch any key, not just KEYS)


@command("eval", -3, _EVAL_FLAGS, key_finder=numkeys_finder(2), reads_data_keys=_ANY_KEY, keys_declared=True, group="scripting", summary="Executes a server-side Lua script.", since="2.6.0", complexity="Depends on the script that is executed.")
def eval_(ctx, args):
    return _eval(ctx, args, False)


@command("eval_ro", -3, "readonly noscript stale skip_monitor no_mandatory_keys movablekeys", key_finder=numkeys_finder(2), reads_data_keys=_ANY_KEY, keys_declared=True, group="scripting", summary="Executes a read-only server-side Lua script.", since="7.0.0", complexity="Depends on the script that is executed.")
def eval_ro(ctx, args):
    return _eval(ctx, args, True)


@command("evalsha", -3, _EVAL_FLAGS, key_finder=numkeys_finder(2), reads_data_keys=_ANY_KEY, keys_declared=True, prepare=_evalsha_to_eval, group="scripting", summary="Executes a server-side Lua script by SHA1 digest.", since="2.6.0", complexity="Depends on the script that is executed.")
def evalsha(ctx, args):
    return _eval(ctx, _evalsha_to_eval(args), False)


@command("evalsha_ro", -3, "readonly noscript stale skip_monitor no_mandatory_keys movablekeys", key_finder=numkeys_finder(2), reads_data_keys=_ANY_KEY, keys_declared=True, prepare=_evalsha_to_eval, group="scripting", summary="Executes a read-only server-side Lua script by SHA1 digest.", since="7.0.0", complexity="Depends on the script that is executed.")
def evalsha_ro(ctx, args):
    return _eval(ctx, _evalsha_to_eval(args), True)


# -- SCRIPT (the node's script cache) ---------------------------------------------------------
def _script_load(session, args):
    return engine().eval_script(args[2])[0]


def _script_exists(session, args):
    eng = engine()
    return [int(eng.has(sha.lower().decode("utf-8", "replace"))) for sha in args[2:]]


def _flush_option(args: list[bytes], at: int, text: str) -> None:
    if len(args) > at + 1 or (len(args) == at + 1 and not (is_opt(args[at], b"SYNC") or is_opt(args[at], b"ASYNC"))):
        raise CommandError(text)


def _script_flush(session, args):
    _flush_option(args, 2, errors.SCRIPT_FLUSH_OPTION)
    engine().flush()
    return OK


def _not_busy(session, args):
    # A script runs on the event loop's thread, so a KILL that reaches a
    # session finds none running: while one runs, KILL is answered by the
    # server's busy responder (makod/net/script_busy.py).
    raise CommandError(errors.NOTBUSY)


container(
    "script",
    scope="server",
    group="scripting",
    summary="A container for Lua scripts management commands.",
    since="2.6.0",
    subcommands=[
        subcommand("script", "load", 3, _script_load, "noscript stale", scope="server", group="scripting", summary="Loads a server-side Lua script to the script cache.", since="2.6.0", complexity="O(N) with N being the length in bytes of the script body."),
        subcommand("script", "exists", -3, _script_exists, "noscript", scope="server", group="scripting", summary="Determines whether server-side Lua scripts exist in the script cache.", since="2.6.0", complexity="O(N) with N being the number of scripts to check (so checking a single script is an O(1) operation)."),
        subcommand("script", "flush", -2, _script_flush, "noscript", scope="server", group="scripting", summary="Removes all server-side Lua scripts from the script cache.", since="2.6.0", complexity="O(N) with N being the number of scripts in cache"),
        subcommand("script", "kill", 2, _not_busy, "noscript allow_busy", scope="server", group="scripting", summary="Terminates a server-side Lua script during execution.", since="2.6.0"),
    ],
)


# -- FUNCTION and FCALL -----------------------------------------------------------------------
def _libraries(ctx: Any) -> dict[str, bytes]:
    libs = library_store.read(ctx)
    _SYNCED.sync(engine(), libs)
    return libs


def _store_engine_libraries(ctx: Any) -> None:
    """Write what the engine now holds as this shard's copy."""
    libs = {name: lib.code for name, lib in engine().libraries.items()}
    library_store.write(ctx, libs)
    _SYNCED.libs = tuple(sorted(libs.items()))


def _function_load(ctx, args):
    replace = False
    for opt in args[2:-1]:
        if is_opt(opt, b"REPLACE"):
            replace = True
        else:
            raise CommandError(errors.FUNCTION_LIST_UNKNOWN.format(opt.decode("utf-8", "replace")))
    _libraries(ctx)
    try:
        name = engine().load_library(args[-1], replace).name
    except BaseException:
        _SYNCED.forget()  # what the engine holds is unknown now: reload next time
        raise
    _store_engine_libraries(ctx)
    return name.encode() if isinstance(name, str) else name


def _function_delete(ctx, args):
    libs = _libraries(ctx)
    name = args[2].decode("utf-8", "surrogateescape")
    if name not in libs:
        raise CommandError(errors.LIBRARY_NOT_FOUND)
    rest = dict(libs)
    del rest[name]
    library_store.write(ctx, rest)
    _SYNCED.forget()
    return OK


def _function_flush(ctx, args):
    _flush_option(args, 2, errors.FUNCTION_FLUSH_OPTION)
    library_store.write(ctx, {})
    engine().flush_libraries()
    _SYNCED.libs = ()
    return OK


def _function_dump(ctx, args):
    _libraries(ctx)
    return engine().dump_libraries()


def _function_restore(ctx, args):
    policy = "APPEND"
    if len(args) > 4:
        raise CommandError(errors.SYNTAX)
    if len(args) == 4:
        policy = args[3].upper().decode("utf-8", "replace")
        if policy not in ("FLUSH", "APPEND", "REPLACE"):
            raise CommandError(errors.FUNCTION_RESTORE_POLICY)
    _libraries(ctx)
    try:
        engine().restore_libraries(args[2], policy)
    except BaseException:
        _SYNCED.forget()
        raise
    _store_engine_libraries(ctx)
    return OK


def _function_list(ctx, args):
    pattern = None
    withcode = False
    i = 2
    while i < len(args):
        opt = args[i]
        if is_opt(opt, b"WITHCODE") and not withcode:
            withcode = True
        elif is_opt(opt, b"LIBRARYNAME") and pattern is None:
            if i + 1 >= len(args):
                raise CommandError(errors.FUNCTION_LIST_NO_PATTERN)
            i += 1
            pattern = args[i]
        else:
            raise CommandError(errors.FUNCTION_LIST_UNKNOWN.format(opt.decode("utf-8", "replace")))
        i += 1
    _libraries(ctx)
    return engine().list_libraries(pattern, withcode)


def _function_stats(ctx, args):
    _libraries(ctx)
    # A script runs on the event loop's thread: none is running when a
    # command is served (the busy responder answers during one).
    return engine().function_stats(None)


def _fcall(ctx: Any, args: list[bytes], readonly: bool) -> Any:
    _libraries(ctx)
    eng = engine()
    name = args[1]
    fname = name.decode("utf-8", "surrogateescape")
    if eng.function(fname) is None:  # checked before the key count, as in Redis
        raise CommandError(errors.FUNCTION_NOT_FOUND)
    keys, argv = _keys_and_args(args)
    return _run(ctx, "function", fname, lambda calls: eng.run_function(fname, keys, argv, calls, readonly))


@command("fcall", -3, "noscript stale skip_monitor may_replicate no_mandatory_keys movablekeys", key_finder=numkeys_finder(2), reads_data_keys=_ANY_KEY, group="scripting", summary="Invokes a function.", since="7.0.0", complexity="Depends on the function that is executed.")
def fcall(ctx, args):
    return _fcall(ctx, args, False)


@command("fcall_ro", -3, "readonly noscript stale skip_monitor no_mandatory_keys movablekeys", key_finder=numkeys_finder(2), reads_data_keys=_ANY_KEY, group="scripting", summary="Invokes a read-only function.", since="7.0.0", complexity="Depends on the function that is executed.")
def fcall_ro(ctx, args):
    return _fcall(ctx, args, True)


container(
    "function",
    scope="server",
    group="scripting",
    summary="A container for function commands.",
    since="7.0.0",
    subcommands=[
        subcommand("function", "load", -3, _function_load, "write denyoom noscript", scope="keyspace", merge="first", group="scripting", summary="Creates a library.", since="7.0.0", complexity="O(1) (considering compilation time is redundant)"),
        subcommand("function", "delete", 3, _function_delete, "write noscript", scope="keyspace", merge="first", group="scripting", summary="Deletes a library and its functions.", since="7.0.0"),
        subcommand("function", "flush", -2, _function_flush, "write noscript", scope="keyspace", merge="first", group="scripting", summary="Deletes all libraries and functions.", since="7.0.0", complexity="O(N) where N is the number of functions deleted"),
        subcommand("function", "dump", 2, _function_dump, "noscript", scope="keyspace", merge="first", group="scripting", summary="Dumps all libraries into a serialized binary payload.", since="7.0.0", complexity="O(N) where N is the number of functions"),
        subcommand("function", "restore", -3, _function_restore, "write denyoom noscript", scope="keyspace", merge="first", group="scripting", summary="Restores all libraries from a payload.", since="7.0.0", complexity="O(N) where N is the number of functions on the payload"),
        subcommand("function", "list", -2, _function_list, "noscript", scope="keyspace", merge="first", group="scripting", summary="Returns information about all libraries.", since="7.0.0", complexity="O(N) where N is the number of functions"),
        subcommand("function", "stats", 2, _function_stats, "noscript allow_busy", scope="keyspace", merge="first", group="scripting", summary="Returns information about a function during execution.", since="7.0.0"),
        subcommand("function", "kill", 2, _not_busy, "noscript allow_busy", scope="server", group="scripting", summary="Terminates a function during execution.", since="7.0.0"),
    ],
)
