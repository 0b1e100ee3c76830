"""Redis 7.0 functions: FUNCTION LOAD/DELETE/FLUSH/LIST/STATS/DUMP/RESTORE and FCALL.

A library is its code (``#!lua name=<lib>`` first line) run once in a
restricted environment where ``redis.register_function`` records functions
(sandbox.py: ``library_env``). The engine keeps libraries by name and
functions by name (function names are global, as in Redis).

DUMP/RESTORE payloads are Redis 7.0's: for each library the opcode
RDB_OPCODE_FUNCTION2 (245) and the code as an RDB string, then the RDB
version (2 bytes LE) and the CRC64 (8 bytes LE).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from makod.kv import errors
from makod.kv.errors import CommandError
from makod.kv.glob import match
from makod.kv.rdb import RDB_VERSION, BadFormat, _put_string, _Reader, crc64, with_footer
from makod.kv.replies import Map, Set

RDB_OPCODE_FUNCTION_PRE_GA = 246
RDB_OPCODE_FUNCTION2 = 245
FUNCTION_FLAG_ORDER = ("no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys")


@dataclass
class Function:
    name: str
    library: str
    flags: frozenset[str]
    description: bytes | None
    callback: Any = field(repr=False)


@dataclass
class Library:
    name: str
    code: bytes
    functions: dict[str, Function]
    chunk: Any = field(default=None, repr=False)  # the compiled code, rerun for each FCALL


def parse_library_metadata(code: bytes) -> tuple[str, int]:
    """(library name, length of the shebang line) of FUNCTION LOAD's code."""
    if not code.startswith(b"#!"):
        raise CommandError(errors.LIBRARY_MISSING_METADATA)
    end = code.find(b"\n")
    if end < 0:
        raise CommandError(errors.LIBRARY_INVALID_METADATA)
    parts = code[:end].decode("utf-8", "replace").split()
    if not parts:
        raise CommandError(errors.LIBRARY_INVALID_METADATA)
    engine = parts[0][2:]
    name = None
    for part in parts[1:]:
        if part[:5].lower() == "name=":
            if name is not None:
                raise CommandError(errors.LIBRARY_NAME_TWICE)
            name = part[5:]
        else:
            raise CommandError(errors.LIBRARY_BAD_METADATA.format(part))
    if name is None:
        raise CommandError(errors.LIBRARY_NO_NAME)
    if engine.lower() != "lua":
        raise CommandError(errors.LIBRARY_ENGINE_NOT_FOUND.format(engine))
    if not name or not all(c.isascii() and (c.isalnum() or c == "_") for c in name):
        raise CommandError(errors.LIBRARY_BAD_NAME)
    return name, end


class _LoadCalls:
    """What a library's loading code may reach: only the time check and the log."""

    def __init__(self, check: Callable[[], None] | None, log: Callable[[int, str], None] | None) -> None:
        self._check = check
        self._log = log

    def check(self) -> None:
        if self._check is not None:
            self._check()

    def log(self, level: int, text: str) -> None:
        if self._log is not None:
            self._log(level, text)


class FunctionsMixin:
    """The FUNCTION half of ScriptEngine (needs its ``lua``, ``I``, ``bridge``, ``_run``)."""

    lua: Any
    I: Any
    bridge: Any
    hook_every: int
    memory_limit_bytes: int | None

    def _init_functions(self) -> None:
        self.libraries: dict[str, Library] = {}
        self._functions: dict[str, Function] = {}

    # -- loading -----------------------------------------------------------------------

    def _build_library(self, code: bytes, check: Callable[[], None] | None = None, log: Any = None) -> Library:
        name, skip = parse_library_metadata(code)
        return self._compile_library(name, code, skip, check, log)

    def _compile_library(self, name: str, code: bytes, skip: int, check: Any, log: Any) -> Library:
        env, finish, registered = self.I[b"library_env"]()
        fn, err = self._compile(code[skip:], b"@user_function", env)  # type: ignore[attr-defined]
        if fn is None:
            raise CommandError(errors.LIBRARY_COMPILE.format(err))
        result = self._run_library_code(fn, _LoadCalls(check, log))
        status = result[0] if isinstance(result, tuple) else result
        if status == b"err":
            msg = result[1] if isinstance(result, tuple) and len(result) > 1 else None
            text = msg.decode("utf-8", "replace") if msg is not None else "unknown error"
            raise CommandError(errors.LIBRARY_REGISTER.format(text))
        if status != b"ok":
            raise CommandError(errors.SCRIPT_OOM.format(self.memory_limit_bytes))
        finish()
        functions: dict[str, Function] = {}
        for i in range(1, len(registered) + 1):
            entry = registered[i]
            flags = entry[b"flags"]
            names = {flags[j].decode() for j in range(1, len(flags) + 1)}
            fname = entry[b"name"].decode("utf-8", "replace")
            functions[fname] = Function(fname, name, frozenset(names), entry[b"description"], entry[b"callback"])
        if not functions:
            raise CommandError(errors.LIBRARY_NO_FUNCTIONS)
        return Library(name, code, functions, fn)

    def _run_library_code(self, fn: Any, calls: Any) -> Any:
        bridge = self.bridge
        bridge.begin(calls, True)
        try:
            result = self.I[b"load"](fn, self.hook_every)
            if bridge.fatal is not None:
                raise bridge.fatal
        finally:
            bridge.end()
        return result

    def _fresh_callback(self, fn: Function, calls: Any) -> Any:
        """The function's callback from a fresh run of its library's code: a
        library's upvalues (``local counter = 0``) start over on every FCALL,
        so a rerun of a discarded call does what the first run did. (Redis
        keeps them between calls.)"""
        lib = self.libraries[fn.library]
        env, finish, registered = self.I[b"library_env"]()
        chunk = self.I[b"rebind"](lib.chunk, env)
        result = self._run_library_code(chunk, _LoadCalls(getattr(calls, "check", None), None))
        status = result[0] if isinstance(result, tuple) else result
        if status != b"ok":
            return fn.callback
        finish()
        for i in range(1, len(registered) + 1):
            if registered[i][b"name"].decode("utf-8", "replace") == fn.name:
                return registered[i][b"callback"]
        return fn.callback

    def load_library(
        self,
        code: bytes,
        replace: bool = False,
        check: Callable[[], None] | None = None,
        log: Callable[[int, str], None] | None = None,
    ) -> Library:
        """FUNCTION LOAD [REPLACE]: the new library (CommandError with Redis's texts)."""
        name, skip = parse_library_metadata(code)
        if name in self.libraries and not replace:
            raise CommandError(errors.LIBRARY_EXISTS.format(name))
        lib = self._compile_library(name, code, skip, check, log)
        self._install([lib], replace_names={name})
        return lib

    def _install(self, libs: list[Library], replace_names: set[str], flush: bool = False) -> None:
        """Check function-name collisions, then add ``libs`` (replacing ``replace_names``)."""
        keep = {} if flush else {n: lib for n, lib in self.libraries.items() if n not in replace_names}
        taken = {f for lib in keep.values() for f in lib.functions}
        for lib in libs:
            for fname in lib.functions:
                if fname in taken:
                    raise CommandError(errors.LIBRARY_FUNCTION_EXISTS.format(fname))
                taken.add(fname)
        for lib in libs:
            keep[lib.name] = lib
        self.libraries = keep
        self._functions = {f.name: f for lib in keep.values() for f in lib.functions.values()}

    def delete_library(self, name: str) -> None:
        """FUNCTION DELETE."""
        if name not in self.libraries:
            raise CommandError(errors.LIBRARY_NOT_FOUND)
        self._install([], replace_names={name})

    def flush_libraries(self) -> None:
        """FUNCTION FLUSH."""
        self._install([], set(), flush=True)

    # -- replies -----------------------------------------------------------------------

    def list_libraries(self, pattern: bytes | None = None, withcode: bool = False) -> list[Map]:
        """FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE]'s reply."""
        out = []
        for lib in self.libraries.values():
            if pattern is not None and not match(pattern, lib.name.encode(), nocase=True):
                continue
            functions = [
                Map(
                    [
                        (b"name", f.name.encode()),
                        (b"description", f.description),
                        (b"flags", Set([flag.encode() for flag in FUNCTION_FLAG_ORDER if flag in f.flags])),
                    ]
                )
                for f in lib.functions.values()
            ]
            items: list[tuple[Any, Any]] = [
                (b"library_name", lib.name.encode()),
                (b"engine", b"LUA"),
                (b"functions", functions),
            ]
            if withcode:
                items.append((b"library_code", lib.code))
            out.append(Map(items))
        return out

    def function_stats(self, running_script: Any = None) -> Map:
        """FUNCTION STATS's reply (``running_script``: the machinery's, None when idle)."""
        counts = Map([(b"libraries_count", len(self.libraries)), (b"functions_count", len(self._functions))])
        return Map([(b"running_script", running_script), (b"engines", Map([(b"LUA", counts)]))])

    def function(self, name: str) -> Function | None:
        return self._functions.get(name)

    # -- FCALL -------------------------------------------------------------------------

    def run_function(self, name: str, keys: list[bytes], args: list[bytes], calls: Any, readonly: bool = False) -> Any:
        """FCALL / FCALL_RO (``readonly``): the function's reply value."""
        fn = self._functions.get(name)
        if fn is None:
            raise CommandError(errors.FUNCTION_NOT_FOUND)
        no_writes = "no-writes" in fn.flags
        if readonly and not no_writes:
            raise CommandError(errors.FUNCTION_RO_WRITE)
        callback = self._fresh_callback(fn, calls)
        return self._run(callback, name, keys, args, calls, readonly or no_writes, as_function=True)  # type: ignore[attr-defined]

    # -- DUMP / RESTORE ----------------------------------------------------------------

    def dump_libraries(self) -> bytes:
        """FUNCTION DUMP's payload."""
        out = bytearray()
        for lib in self.libraries.values():
            out.append(RDB_OPCODE_FUNCTION2)
            _put_string(out, lib.code)
        return with_footer(bytes(out))

    def restore_libraries(self, payload: bytes, policy: str = "APPEND") -> None:
        """FUNCTION RESTORE payload [FLUSH|APPEND|REPLACE]; nothing changes on error."""
        if len(payload) < 10:
            raise CommandError(errors.FUNCTION_RESTORE_PAYLOAD)
        version = int.from_bytes(payload[-10:-8], "little")
        if version > RDB_VERSION or crc64(payload[:-8]) != int.from_bytes(payload[-8:], "little"):
            raise CommandError(errors.FUNCTION_RESTORE_PAYLOAD)
        reader = _Reader(payload[:-10], 512 * 1024 * 1024)
        libs: dict[str, Library] = {}
        try:
            while reader.left():
                opcode = reader.byte()
                if opcode == RDB_OPCODE_FUNCTION_PRE_GA:
                    raise CommandError(errors.FUNCTION_RESTORE_PREGA)
                if opcode != RDB_OPCODE_FUNCTION2:
                    raise CommandError(errors.FUNCTION_RESTORE_TYPE)
                code = reader.string()
                lib = self._build_library(code)
                if lib.name in libs:
                    raise CommandError(errors.LIBRARY_EXISTS.format(lib.name))
                taken = {f for other in libs.values() for f in other.functions}
                for fname in lib.functions:
                    if fname in taken:
                        raise CommandError(errors.LIBRARY_FUNCTION_EXISTS.format(fname))
                libs[lib.name] = lib
        except BadFormat:
            raise CommandError(errors.FUNCTION_RESTORE_PAYLOAD) from None
        policy = policy.upper()
        if policy == "FLUSH":
            self._install(list(libs.values()), set(), flush=True)
        elif policy == "REPLACE":
            self._install(list(libs.values()), set(libs))
        else:
            for name in libs:
                if name in self.libraries:
                    raise CommandError(errors.FUNCTION_RESTORE_EXISTS.format(name))
            self._install(list(libs.values()), set())
