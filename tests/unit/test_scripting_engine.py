"""The Lua engine with a fake ScriptCalls over a dict: the machinery's contract
(uncatchable exceptions, the instruction hook, memory), the sandbox, isolation
between runs, conversions, FUNCTION bookkeeping."""

from __future__ import annotations

import importlib

from typing import Any

import pytest

from makod.kv.errors import CommandError
from makod.kv.replies import NULL_ARRAY, BigNumber, Bool, Double, ErrorReply, Map, Pairs, Set, SimpleString, Verbatim
from makod.kv.scripting.bytecode import without_tail_calls
from makod.kv.scripting.engine import ScriptEngine, parse_shebang
from makod.kv.scripting.rand48 import Rand48
from resp.replies import encode

importlib.import_module("makod.commands")  # fills the command table


class Moved(Exception):
    """Stands for the machinery's "this key lives elsewhere, fetch and rerun"."""


class FakeCalls:
    def __init__(self, data: dict[bytes, Any] | None = None, check_limit: int | None = None) -> None:
        self.data = data if data is not None else {}
        self.executed: list[list[bytes]] = []
        self.logged: list[tuple[int, str]] = []
        self.selected: list[int] = []
        self.checks = 0
        self.check_limit = check_limit
        self.reply: Any = None

    def execute(self, spec: Any, argv: list[bytes]) -> Any:
        self.executed.append(argv)
        name = spec.name
        if argv[1:2] == [b"remote"]:
            raise Moved("fetch remote and rerun")
        if name == "get":
            return self.data.get(argv[1])
        if name == "set":
            self.data[argv[1]] = argv[2]
            return SimpleString("OK")
        if name == "incr":
            try:
                v = int(self.data.get(argv[1], b"0")) + 1
            except ValueError:
                raise CommandError("ERR value is not an integer or out of range") from None
            self.data[argv[1]] = b"%d" % v
            return v
        return self.reply

    def select(self, db: int) -> None:
        if not 0 <= db < 16:
            raise CommandError("ERR DB index is out of range")
        self.selected.append(db)

    def time_us(self) -> int:
        return 1_700_000_000_250_000

    def log(self, level: int, text: str) -> None:
        self.logged.append((level, text))

    def check(self) -> None:
        self.checks += 1
        if self.check_limit is not None and self.checks > self.check_limit:
            raise TimeoutError("script killed")


@pytest.fixture(scope="module")
def engine() -> ScriptEngine:
    return ScriptEngine(memory_limit_bytes=16 * 1024 * 1024, hook_every_instructions=1000)


def run(engine: ScriptEngine, body: str, calls: FakeCalls | None = None, keys: list[bytes] = (), args: list[bytes] = (), readonly: bool = False) -> Any:
    sha, _ = engine.eval_script(body.encode())
    return engine.run_eval(sha, list(keys), list(args), calls or FakeCalls(), readonly)


# -- the machinery's exceptions cannot be caught by the script ---------------------------

UNCATCHABLE = [
    "return redis.call('get', 'remote')",
    "local ok = pcall(redis.call, 'get', 'remote') return 'caught'",
    "local r = redis.pcall('get', 'remote') return 'caught'",
    "local ok = xpcall(function() redis.call('get', 'remote') end, function() return 'h' end) return 'caught'",
    "local co = coroutine.create(function() redis.call('get', 'remote') end) coroutine.resume(co) return 'caught'",
    "local f = coroutine.wrap(function() redis.call('get', 'remote') end) pcall(f) return 'caught'",
    "pcall(function() pcall(redis.call, 'get', 'remote') end) return redis.call('get', 'local')",
    "pcall(redis.call, 'get', 'remote') while true do end",
    "pcall(redis.call, 'get', 'remote') return redis.pcall('get', 'other')",
    "local ok = pcall(function() local x = redis.call('get', 'remote') end) local t = {} for i = 1, 100 do t[i] = i end return t",
]


@pytest.mark.parametrize("body", UNCATCHABLE)
def test_machinery_exceptions_are_reraised_as_the_same_object(engine: ScriptEngine, body: str) -> None:
    calls = FakeCalls()
    with pytest.raises(Moved) as info:
        run(engine, body, calls)
    assert str(info.value) == "fetch remote and rerun"
    assert calls.executed == [[b"get", b"remote"]]  # nothing ran after it
    assert run(engine, "return redis.call('get', 'k')", FakeCalls({b"k": b"v"})) == b"v"  # still usable


def test_the_hook_stops_loops_even_inside_pcall(engine: ScriptEngine) -> None:
    for body in [
        "while true do end",
        "while true do pcall(function() while true do end end) end",
        "local ok = pcall(function() while true do end end) return 'escaped'",
        "xpcall(function() while true do end end, function() while true do end end)",
        "local co = coroutine.create(function() while true do end end) coroutine.resume(co) return 1",
        "local f = coroutine.wrap(function() while true do end end) pcall(f) return 1",
        "local co = coroutine.create(function() local c2 = coroutine.create(function() while true do end end) coroutine.resume(c2) end) coroutine.resume(co)",
        "local s = 'x' for i = 1, 1e9 do s = s .. 'y' s = 'x' end",
    ]:
        calls = FakeCalls(check_limit=3)
        with pytest.raises(TimeoutError):
            run(engine, body, calls)
        assert calls.checks == 4
    calls = FakeCalls()
    assert run(engine, "local n = 0 for i = 1, 20000 do n = n + i end return n", calls) == 200010000
    assert calls.checks >= 10


def test_memory_limit_is_an_error_reply_and_the_engine_recovers() -> None:
    engine = ScriptEngine(memory_limit_bytes=4 * 1024 * 1024, hook_every_instructions=0)
    for body in [
        "local t = {} for i = 1, 1e8 do t[i] = string.rep('x', 100) .. i end return #t",
        "local ok = pcall(function() local t = {} for i = 1, 1e8 do t[i] = {} end end) return 'caught'",
        "return string.rep('x', 2^30)",
    ]:
        reply = run(engine, body)
        assert isinstance(reply, ErrorReply) and "out of memory" in reply.text, reply
        assert run(engine, "return {1, 2, 3}") == [1, 2, 3]


# -- sandbox and isolation -----------------------------------------------------------------

ESCAPES = [
    "return os.execute('id')",
    "return io.open('/etc/passwd')",
    "return loadfile('/etc/passwd')",
    "return dofile('/etc/passwd')",
    "return require('os')",
    "return package.loadlib('x', 'y')",
    "return python.eval('1')",
    "return python",
    "return redis.call.__globals__",
    "return getfenv(redis.call)",
    "return setfenv(redis.call, {})",
    "return debug.getinfo(1)",
    "return newproxy(true)",
    "x = 1",
    "rawset(_G, 'x', 1)",
    "setmetatable(_G, nil)",
    "string.rep = nil",
    "rawset(string, 'rep', nil)",
    "getmetatable('').__index = nil",
    "getmetatable('').__index.rep = nil",
    "setmetatable(string, {__index = function() return 1 end})",
    "redis.call = function() return 'mine' end",
    "loadstring('x = 1')()",
    "return loadstring(string.dump(function() return 1 end))()",
    "local f = loadstring('return getfenv') return f()",
    "rawset(getmetatable(_G) or {}, '__index', nil) return undefined_name",
]


@pytest.mark.parametrize("body", ESCAPES)
def test_escapes_fail(engine: ScriptEngine, body: str) -> None:
    reply = run(engine, body)
    assert isinstance(reply, ErrorReply), reply


def test_one_script_changes_nothing_the_next_sees(engine: ScriptEngine) -> None:
    attempts = [
        "string.rep = nil", "rawset(string, 'rep', nil)", "getmetatable('').__index = {}",
        "getmetatable('').__index.rep = nil", "setmetatable(string, {})", "cjson.encode_number_precision(3)",
        "math.randomseed(99)", "KEYS[1] = 'changed'", "table.insert(string, 'x')", "table.insert(_G, 'x')", "redis.setresp(3)", "coroutine.create = nil",
        "local mt = getmetatable(_G) if mt then mt.__index = nil end",
    ]
    probe = ("return {string.rep('a', 2), ('b'):rep(2), cjson.encode(1/3), tostring(math.random()), KEYS[1], "
             "type(redis.call), tostring(string[1]), tostring(_G[1]), true}")
    expected = run(engine, probe, keys=[b"k"])
    for attempt in attempts:
        run(engine, attempt, keys=[b"k"])
        assert run(engine, probe, keys=[b"k"]) == expected, attempt


def test_globals_and_arguments(engine: ScriptEngine) -> None:
    assert run(engine, "return {KEYS[1], KEYS[2], ARGV[1], #ARGV}", keys=[b"a", b"b"], args=[b"x"]) == [b"a", b"b", b"x", 1]
    assert run(engine, "return KEYS[1]") is None
    reply = run(engine, "return undefined")
    assert "Script attempted to access nonexistent global variable 'undefined'" in reply.text
    assert run(engine, "local t = {} for k in pairs(_G) do t[#t + 1] = k end return #t") == 35


def test_python_attributes_are_refused() -> None:
    engine = ScriptEngine()
    f = engine.lua.eval("function(o) return o.__class__ end")
    with pytest.raises(Exception):
        f(object())


# -- redis.call ------------------------------------------------------------------------------


def test_call_dispatch(engine: ScriptEngine) -> None:
    calls = FakeCalls()
    assert run(engine, "return redis.call('SET', 'k', 1.5)", calls) == SimpleString("OK")
    assert run(engine, "redis.call('set', 'n', 7) return redis.call('incr', 'n')", calls) == 8
    assert run(engine, "return redis.call('set', 'big', 0.1)", calls) == SimpleString("OK")
    assert calls.data[b"k"] == b"1.5" and calls.data[b"big"] == b"0.10000000000000001"
    assert run(engine, "return redis.call('time')", calls) == [b"1700000000", b"250000"]
    assert run(engine, "return redis.call('select', 3)", calls) == SimpleString("OK") and calls.selected == [3]
    assert run(engine, "redis.log(redis.LOG_NOTICE, 'a', 1.5, {}, 'b') return 1", calls) == 1
    assert calls.logged == [(2, "a 1.5  b")]
    reply = run(engine, "return redis.call('incr', 'k')", calls)
    assert reply.text.startswith("ERR value is not an integer or out of range script: ")
    assert run(engine, "return redis.pcall('incr', 'k')", calls).text == "ERR value is not an integer or out of range"


def test_readonly_runs_refuse_writes(engine: ScriptEngine) -> None:
    calls = FakeCalls()
    reply = run(engine, "return redis.call('set', 'k', 'v')", calls, readonly=True)
    assert reply.text.startswith("ERR Write commands are not allowed from read-only scripts. script:")
    assert run(engine, "return redis.call('get', 'k')", calls, readonly=True) is None
    reply = run(engine, "#!lua flags=no-writes\nreturn redis.call('set', 'k', 'v')", calls)
    assert "Write commands are not allowed" in reply.text and calls.executed == [[b"get", b"k"]]


def test_reply_conversions_both_ways(engine: ScriptEngine) -> None:
    calls = FakeCalls()
    cases = [
        (Map([(b"a", 1), (b"b", b"x")]), "return redis.call('hgetall', 'h')", [b"a", 1, b"b", b"x"]),
        (Set([b"m"]), "return redis.call('smembers', 's')", [b"m"]),
        (Pairs([(b"f", b"v")]), "return redis.call('hgetall', 'h')", [b"f", b"v"]),
        (Double(1.5), "return redis.call('zscore', 'z', 'm')", b"1.5"),
        (Bool(True), "return redis.call('exists', 'k')", 1),
        (NULL_ARRAY, "return {redis.call('lrange', 'l', 0, 1)}", [None]),
        (Verbatim(b"text"), "return redis.call('lcs', 'a', 'b')", b"text"),
        ([b"a", None, b"c"], "return redis.call('mget', 'a', 'b', 'c')", [b"a", None, b"c"]),
        ([b"a", None, b"c"], "redis.setresp(3) return redis.call('mget', 'a', 'b', 'c')", [b"a"]),
        (Map([(b"a", 1)]), "redis.setresp(3) return redis.call('hgetall', 'h').map.a", 1),
        (Set([b"m"]), "redis.setresp(3) return tostring(redis.call('smembers', 's').set.m)", b"true"),
        (Double(2.5), "redis.setresp(3) return redis.call('zscore', 'z', 'm').double * 2", 5),
        (Bool(False), "redis.setresp(3) return redis.call('exists', 'k')", Bool(False)),
        (None, "redis.setresp(3) return redis.call('get', 'k') == nil", Bool(True)),
        (BigNumber(b"123"), "redis.setresp(3) return redis.call('lindex', 'l', 0).big_number", b"123"),
    ]
    for reply, body, expected in cases:
        calls.reply = reply
        got = run(engine, body, calls)
        assert encode(got, 2) == encode(expected, 2) and encode(got, 3) == encode(expected, 3), (reply, body, got)


def test_big_number_reply_encoding() -> None:
    assert encode(BigNumber(b"1234"), 3) == b"(1234\r\n"
    assert encode(BigNumber(b"1234"), 2) == b"$4\r\n1234\r\n"


def test_math_random_is_the_same_on_every_run(engine: ScriptEngine) -> None:
    body = "return {tostring(math.random()), math.random(100), math.random(3, 9)}"
    first = run(engine, body)
    assert first == [b"0.39646477363839", 85, 5]  # a fresh redis-server 7.0's first EVAL
    assert run(engine, body) == first
    r = Rand48(7)
    assert "%.14g" % r.random() == "0.26644419658298"


# -- compile cache, shebang, tail calls ---------------------------------------------------


def test_cache_and_shebang(engine: ScriptEngine) -> None:
    sha, flags = engine.eval_script(b"return 'cached'")
    assert sha == "2b0b0a9e8ad7d3ef3f5a3cd9bc8cca6e8a4ad1d5" or len(sha) == 40
    assert flags is None and engine.has(sha) and engine.body(sha) == b"return 'cached'"
    assert parse_shebang(b"#!lua flags=no-writes,allow-oom\nreturn 1") == (frozenset({"no-writes", "allow-oom"}), 31)
    assert parse_shebang(b"#!lua\nreturn 1") == (frozenset(), 5)
    for bad, text in [
        (b"#!lua flags=bad\n", "ERR Unexpected flag in script shebang: bad"),
        (b"#!luax\n", "ERR Unexpected engine in script shebang: #!luax"),
        (b"#!lua x=1\n", "ERR Unknown lua shebang option: x=1"),
    ]:
        with pytest.raises(CommandError) as info:
            engine.eval_script(bad)
        assert info.value.text == text
    with pytest.raises(CommandError) as info:
        engine.run_eval("0" * 40, [], [], FakeCalls())
    assert info.value.text.startswith("NOSCRIPT")
    other = ScriptEngine()
    sha, _ = other.eval_script(b"return 1")
    other.flush()
    assert not other.has(sha)


def test_tail_calls_keep_their_results_and_lines(engine: ScriptEngine) -> None:
    assert run(engine, "local function f(...) return ... end return {f(1, 2, 3)}") == [1, 2, 3]
    assert run(engine, "local function f(n) if n == 0 then return 'done' end return f(n - 1) end return f(100)") == b"done"
    reply = run(engine, "\n\nreturn redis.call('nosuch')")
    assert reply.text.endswith("on @user_script:3.")
    chunk = engine.lua.eval("function() return string.dump(function() return f() end) end")()
    assert without_tail_calls(chunk) != chunk and len(without_tail_calls(chunk)) == len(chunk)


# -- functions ---------------------------------------------------------------------------------

LIB = b"""#!lua name=lib
redis.register_function{function_name='ro', callback=function(keys, args) return {keys[1], args[1]} end,
  flags={'no-writes'}, description='reads'}
redis.register_function('rw', function(keys) return redis.call('set', keys[1], 'v') end)
"""


def test_functions_load_call_list_dump_restore() -> None:
    engine = ScriptEngine()
    lib = engine.load_library(LIB)
    assert lib.name == "lib" and set(lib.functions) == {"ro", "rw"}
    assert lib.functions["ro"].flags == {"no-writes"} and lib.functions["ro"].description == b"reads"
    calls = FakeCalls()
    assert engine.run_function("ro", [b"k"], [b"a"], calls, readonly=True) == [b"k", b"a"]
    assert engine.run_function("rw", [b"k"], [], calls) == SimpleString("OK")
    with pytest.raises(CommandError, match="Can not execute a script with write flag using"):
        engine.run_function("rw", [b"k"], [], calls, readonly=True)
    with pytest.raises(CommandError, match="Function not found"):
        engine.run_function("nope", [], [], calls)
    with pytest.raises(CommandError, match="Library 'lib' already exists"):
        engine.load_library(LIB)
    engine.load_library(LIB, replace=True)
    listing = engine.list_libraries(withcode=True)
    assert encode(listing, 2).startswith(b"*1\r\n*8\r\n$12\r\nlibrary_name\r\n$3\r\nlib\r\n")
    assert engine.list_libraries(b"nomatch*") == []
    assert encode(engine.function_stats(), 2).endswith(b"$15\r\nlibraries_count\r\n:1\r\n$15\r\nfunctions_count\r\n:2\r\n")
    payload = engine.dump_libraries()
    other = ScriptEngine()
    other.restore_libraries(payload)
    assert other.libraries["lib"].code == LIB
    with pytest.raises(CommandError, match="Library lib already exists"):
        other.restore_libraries(payload, "APPEND")
    other.restore_libraries(payload, "REPLACE")
    other.restore_libraries(payload, "FLUSH")
    with pytest.raises(CommandError, match="payload version or checksum are wrong"):
        other.restore_libraries(payload[:-1] + b"\x00")
    other.delete_library("lib")
    assert other.libraries == {}
    with pytest.raises(CommandError, match="Library not found"):
        other.delete_library("lib")
    engine.flush_libraries()
    assert engine.function("ro") is None


def test_function_machinery_exception_and_loading_checks() -> None:
    engine = ScriptEngine(hook_every_instructions=100)
    engine.load_library(b"#!lua name=m\nredis.register_function('f', function() pcall(redis.call, 'get', 'remote') return 1 end)")
    with pytest.raises(Moved):
        engine.run_function("f", [], [], FakeCalls())
    ticks = []

    def check() -> None:
        ticks.append(1)
        if len(ticks) > 2:
            raise TimeoutError("load took too long")

    with pytest.raises(TimeoutError):
        engine.load_library(b"#!lua name=slow\nlocal n = 0 while true do n = n + 1 end", check=check)
    assert "slow" not in engine.libraries


def test_function_upvalues_start_over_on_every_call() -> None:
    engine = ScriptEngine()
    engine.load_library(
        b"#!lua name=counter\nlocal n = 0\n"
        b"redis.register_function('bump', function() n = n + 1 return {n, tostring(math.random())} end)"
    )
    first = engine.run_function("bump", [], [], FakeCalls())
    assert engine.run_function("bump", [], [], FakeCalls()) == first == [1, b"0.39646477363839"]
