"""Lua scripting (EVAL, FUNCTION) as Redis 7.0 runs it, on lupa's Lua 5.1.

A pure data-model layer: no sockets, threads, clocks or transactions. The
protocol layer wraps EVAL/EVALSHA/SCRIPT/FUNCTION/FCALL handlers around one
``ScriptEngine``; every run gets a ``ScriptCalls`` object through which the
script reaches the transaction it runs in.

The interface
=============

``ScriptCalls`` (given per run; ``engine.ScriptCalls``, a Protocol, duck-typed)::

    execute(spec: CommandSpec, argv: list[bytes]) -> reply value
        # a data command inside the transaction; may raise CommandError
        # (becomes a Lua error / error table) or ANY other exception (the
        # machinery's: re-raised from run_eval/run_function, never visible
        # to Lua's pcall/xpcall/redis.pcall/coroutine.resume)
    select(db: int) -> None        # SELECT inside a script (CommandError if out of range)
    time_us() -> int               # TIME inside a script
    log(level: int, text: str)     # redis.log (0 debug, 1 verbose, 2 notice, 3 warning)
    check() -> None                # every ``hook_every_instructions``; raise to stop the script

``ScriptEngine(memory_limit_bytes=64 MiB, hook_every_instructions=100_000, table=TABLE)``
(one LuaRuntime; ``memory_limit_bytes=None`` for no limit; ``table`` is the
command table redis.call resolves in)::

    eval_script(body: bytes) -> (sha: str, flags: frozenset[str] | None)
        # SCRIPT LOAD / EVAL: compile and cache; sha is lower-case hex; flags
        # are the ``#!lua flags=...`` shebang's (None: no shebang, Redis's
        # "eval compat mode"). CommandError with Redis's compile/shebang texts.
    has(sha) -> bool ; body(sha) -> bytes | None ; flags(sha) -> frozenset | None ; flush()
    run_eval(sha, keys: list[bytes], args: list[bytes], calls, readonly: bool = False) -> reply
        # EVAL/EVALSHA(_RO): readonly is also implied by a ``no-writes``
        # shebang. CommandError("NOSCRIPT ...") for an unknown sha. Script
        # errors are returned as ErrorReply (Redis's text, "script: <sha>,
        # on @user_script:<line>." included), not raised.
    load_library(code: bytes, replace: bool = False, check=None, log=None) -> Library
        # FUNCTION LOAD; check()/log() stand in for ScriptCalls while the
        # library's code runs (check may raise to stop a runaway load)
    libraries: dict[str, Library]            # name -> Library(name, code, functions)
    function(name) -> Function | None        # Function(name, library, flags, description, callback)
    delete_library(name) ; flush_libraries()
    list_libraries(pattern: bytes | None = None, withcode: bool = False) -> list[Map]   # FUNCTION LIST's reply
    function_stats(running_script=None) -> Map                                          # FUNCTION STATS's reply
    run_function(name, keys, args, calls, readonly: bool = False) -> reply            # FCALL / FCALL_RO
    dump_libraries() -> bytes                                                           # FUNCTION DUMP payload
    restore_libraries(payload: bytes, policy: str = "APPEND")   # "APPEND" | "REPLACE" | "FLUSH"

Replies are makod.kv.replies values; encode them with resp/replies.py for
the client's protocol (a Lua ``{big_number=...}`` is the new ``BigNumber``).

Modules
=======

engine.py     ScriptEngine: runtime, compile cache, runs, result conversion
sandbox.py    the Lua prelude: read-only globals and libraries, the redis table,
              the error handler, fatal-exit plumbing, FLATTEN (Lua -> tokens)
redis_api.py  the Python half of redis.call/pcall (dispatch, argument rules)
convert.py    reply values -> Lua (RESP2/RESP3 rules), Lua tokens -> replies
functions.py  FUNCTION libraries, FCALL, DUMP/RESTORE payloads
libs.py       cjson (in Lua) and the Lua wrappers of bit, struct, cmsgpack
libs_py.py    the Python halves of bit and struct
msgpack.py    the Python half of cmsgpack
rand48.py     Redis's rand48 behind math.random
bytecode.py   rewrites tail calls as calls (so errors name the script's line)
"""

__all__ = ["Function", "Library", "ScriptCalls", "ScriptEngine"]


def __getattr__(name: str):
    # Imported on first use: the data types import library_store from this
    # package, and the engine imports the data types (the command table).
    if name in ("ScriptCalls", "ScriptEngine"):
        from makod.kv.scripting import engine

        return getattr(engine, name)
    if name in ("Function", "Library"):
        from makod.kv.scripting import functions

        return getattr(functions, name)
    raise AttributeError(name)
