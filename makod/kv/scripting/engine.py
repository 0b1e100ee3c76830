"""ScriptEngine: one Lua 5.1 runtime, its sandbox, the EVAL script cache, runs.

See the package docstring for the interface. The engine knows nothing of
transactions: each run gets a ScriptCalls object and returns a reply value
(or raises the machinery's exception that stopped it).
"""

from __future__ import annotations

import hashlib
from typing import Any, Protocol

from lupa.lua51 import LuaError, LuaMemoryError
from lupa import lua51

from makod.kv import errors
from makod.kv.errors import CommandError
from makod.kv.scripting import libs
from makod.kv.scripting.convert import flat_to_reply, raw_error
from makod.kv.scripting.functions import FunctionsMixin
from makod.kv.scripting.redis_api import Bridge
from makod.kv.scripting.sandbox import PRELUDE
from makod.kv.table import TABLE, CommandTable

class ScriptCalls(Protocol):
    """What one run reaches the transaction through (see the package docstring)."""

    def execute(self, spec: Any, argv: list[bytes]) -> Any: ...
    def select(self, db: int) -> None: ...
    def time_us(self) -> int: ...
    def log(self, level: int, text: str) -> None: ...
    def check(self) -> None: ...


SCRIPT_FLAGS = ("no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys")


def _deny_attributes(obj: Any, name: Any, is_setting: bool) -> Any:
    raise AttributeError("access to Python attributes is not allowed from scripts")


def parse_shebang(body: bytes) -> tuple[frozenset[str] | None, int]:
    """(flags, shebang length) of an EVAL body; flags None without a shebang."""
    if not body.startswith(b"#!"):
        return None, 0
    end = body.find(b"\n")
    if end < 0:
        raise CommandError(errors.SCRIPT_SHEBANG_INVALID)
    parts = body[:end].decode("utf-8", "replace").split()
    if parts[0] != "#!lua":
        raise CommandError(errors.SCRIPT_SHEBANG_ENGINE.format(parts[0]))
    flags: set[str] = set()
    for part in parts[1:]:
        if not part.startswith("flags="):
            raise CommandError(errors.SCRIPT_SHEBANG_OPTION.format(part))
        for flag in part[6:].split(",") if part[6:] else []:
            if flag not in SCRIPT_FLAGS:
                raise CommandError(errors.SCRIPT_SHEBANG_FLAG.format(flag))
            flags.add(flag)
    return frozenset(flags), end


class ScriptEngine(FunctionsMixin):
    def __init__(
        self,
        memory_limit_bytes: int | None = 64 * 1024 * 1024,
        hook_every_instructions: int = 100_000,
        table: CommandTable = TABLE,
    ) -> None:
        self.memory_limit_bytes = memory_limit_bytes
        self.hook_every = hook_every_instructions
        self.lua = lua51.LuaRuntime(
            encoding=None,
            register_eval=False,
            register_builtins=False,
            unpack_returned_tuples=True,
            attribute_filter=_deny_attributes,
            max_memory=memory_limit_bytes,
        )
        self.bridge = Bridge(self.lua, table)
        g = self.lua.globals()
        loadstring = g[b"loadstring"]
        py = self.lua.table_from({k.encode(): v for k, v in self.bridge.callbacks().items()})
        lib_chunk = loadstring(libs.LIBS_LUA.encode(), b"=makod")
        side = libs.python_side(self.bridge._new_table)
        lib_tables, lib_reset = lib_chunk(self.lua.table_from({k.encode(): v for k, v in side.items()}))
        prelude = loadstring(PRELUDE.encode(), b"=makod")
        self.I = prelude(py, self.hook_every, lib_tables, lib_reset)
        self.bridge.state = self.I[b"STATE"]
        self._lua_run = self.I[b"run"]
        self._lua_gc = g[b"collectgarbage"]
        self._scripts: dict[str, tuple[Any, bytes, frozenset[str] | None]] = {}
        self._init_functions()

    # -- the EVAL script cache ----------------------------------------------------------

    def eval_script(self, body: bytes) -> tuple[str, frozenset[str] | None]:
        """Compile and cache ``body``: (SHA1 hex, shebang flags or None without a shebang)."""
        sha = hashlib.sha1(body).hexdigest()
        cached = self._scripts.get(sha)
        if cached is not None:
            return sha, cached[2]
        flags, skip = parse_shebang(body)
        fn, err = self._compile(body[skip:], b"@user_script", None)
        if fn is None:
            raise CommandError(errors.SCRIPT_COMPILE.format(err))
        self._scripts[sha] = (fn, body, flags)
        return sha, flags

    def _compile(self, code: bytes, chunkname: bytes, env: Any) -> tuple[Any, str]:
        try:
            res = self.I[b"compile"](code, chunkname, env)
            fn, err = res if isinstance(res, tuple) else (res, None)
        except LuaMemoryError:
            self._collect()
            raise CommandError(errors.SCRIPT_OOM.format(self.memory_limit_bytes)) from None
        if fn is None:
            return None, err.decode("utf-8", "replace") if isinstance(err, bytes) else str(err)
        return fn, ""

    def has(self, sha: str) -> bool:
        return sha.lower() in self._scripts

    def body(self, sha: str) -> bytes | None:
        cached = self._scripts.get(sha.lower())
        return cached[1] if cached else None

    def flags(self, sha: str) -> frozenset[str] | None:
        cached = self._scripts.get(sha.lower())
        return cached[2] if cached else None

    def flush(self) -> None:
        """SCRIPT FLUSH: forget every cached script."""
        self._scripts.clear()
        self._collect()

    # -- runs ----------------------------------------------------------------------------

    def run_eval(self, sha: str, keys: list[bytes], args: list[bytes], calls: ScriptCalls, readonly: bool = False) -> Any:
        """Run a cached script (EVAL/EVALSHA and their _RO forms): its reply value.

        Raises CommandError(NOSCRIPT) for an unknown SHA, and re-raises any
        exception other than CommandError that ``calls`` raised."""
        cached = self._scripts.get(sha.lower())
        if cached is None:
            raise CommandError(errors.SCRIPT_NOSCRIPT)
        fn, _body, flags = cached
        readonly = readonly or (flags is not None and "no-writes" in flags)
        return self._run(fn, sha.lower(), keys, args, calls, readonly, as_function=False)

    def _run(self, fn: Any, name: str, keys: list[bytes], args: list[bytes], calls: Any, readonly: bool, as_function: bool) -> Any:
        bridge = self.bridge
        bridge.begin(calls, readonly)
        try:
            try:
                result = self._lua_run(
                    fn, self.lua.table_from(list(keys)), self.lua.table_from(list(args)), as_function, self.hook_every
                )
            except LuaMemoryError:
                self._collect()
                result = (b"oom",)
            if bridge.fatal is not None and not isinstance(bridge.fatal, LuaMemoryError):
                raise bridge.fatal
            if not isinstance(result, tuple):
                result = (result,)
            status = result[0]
            if status == b"ok":
                tokens, resp = result[1], int(result[2])
                try:
                    return flat_to_reply([tokens[i] for i in range(1, len(tokens) + 1)], resp)
                except RecursionError:
                    return raw_error(errors.SCRIPT_STACK_LIMIT)
            if status == b"err":
                msg, source, line = (list(result[1:]) + [None, None, None])[:3]
                if msg is None:
                    return raw_error(errors.SCRIPT_ERROR_NOT_STRING)
                text = msg.decode("utf-8", "replace")
                if source is not None and line is not None:
                    text += f" script: {name}, on {source.decode('utf-8', 'replace')}:{line.decode()}."
                return raw_error(text)
            if status == b"stack":
                return raw_error(errors.SCRIPT_STACK_LIMIT)
            self._collect()
            return raw_error(errors.SCRIPT_OOM.format(self.memory_limit_bytes))
        finally:
            bridge.end()

    def _collect(self) -> None:
        """A full collection with the memory limit lifted (Lua 5.1 has no
        emergency collection: after an out-of-memory error the garbage stays
        until a collection that must not itself fail)."""
        if self.memory_limit_bytes:
            self.lua.set_max_memory(0)
        try:
            self._lua_gc(b"collect")
        except LuaError:
            pass
        finally:
            if self.memory_limit_bytes:
                self.lua.set_max_memory(self.memory_limit_bytes)
