"""EVAL and FUNCTION against redis-server 7.0: the same scripts, the same bytes.

A redis-server runs for the module; each script is sent to it as
``EVAL script 0`` on two raw connections (RESP2, and RESP3 after HELLO 3)
and run here by the ScriptEngine in-process with a ScriptCalls over the unit
test Harness; our reply is encoded with resp/replies.py for the same
protocol and the bytes must be equal. The scripts are pure Lua (conversions,
the bundled libraries, math.random, the sandbox, error texts) plus a few
data commands (the harness runs them).

Redis 7.0 never reseeds math.random (a fresh server starts at redisSrand48
(0x1234ABCD)); makodb starts every run there, so random cases seed Redis
first with math.randomseed(305441741).
"""

from __future__ import annotations

import importlib

import shutil
import socket
import subprocess
import time
from typing import Any

import hiredis
import pytest

from makod.kv.errors import CommandError
from makod.kv.scripting.engine import ScriptEngine
from resp.replies import encode
from tests.compat.test_differential import _free_port
from tests.unit.harness import Harness

importlib.import_module("makod.commands")  # fills the command table


def _command(*args: Any) -> bytes:
    parts = [a if isinstance(a, bytes) else str(a).encode() for a in args]
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


class Raw:
    """One connection speaking raw RESP: replies come back as their bytes."""

    def __init__(self, port: int, proto: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.file = self.sock.makefile("rb")
        if proto == 3:
            self.call("HELLO", "3")

    def call(self, *args: Any) -> bytes:
        self.sock.sendall(_command(*args))
        return self._reply()

    def _reply(self) -> bytes:
        line = self.file.readline()
        kind, head = line[:1], line[1:-2]
        if kind in (b"$", b"=", b"!"):
            n = int(head)
            return line if n < 0 else line + self.file.read(n + 2)
        if kind in (b"*", b"~", b">"):
            n = int(head)
            return line + b"".join(self._reply() for _ in range(max(n, 0)))
        if kind in (b"%", b"|"):
            body = line + b"".join(self._reply() for _ in range(2 * int(head)))
            return body + self._reply() if kind == b"|" else body
        return line

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@pytest.fixture(scope="module")
def server() -> Any:
    assert shutil.which("redis-server"), "redis-server is not installed"
    port = _free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            conns = {2: Raw(port, 2), 3: Raw(port, 3)}
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise
            time.sleep(0.02)
    try:
        yield conns
    finally:
        for c in conns.values():
            c.close()
        proc.terminate()
        proc.wait(5)


class HarnessCalls:
    """ScriptCalls over the unit-test harness (data commands run for real)."""

    def __init__(self, h: Harness) -> None:
        self.h = h
        self.logged: list[tuple[int, str]] = []

    def execute(self, spec: Any, argv: list[bytes]) -> Any:
        return self.h.run(*argv)

    def select(self, db: int) -> None:
        if not 0 <= db < 16:
            raise CommandError("ERR DB index is out of range")
        self.h.db = db

    def time_us(self) -> int:
        return 1_700_000_000_000_000

    def log(self, level: int, text: str) -> None:
        self.logged.append((level, text))

    def check(self) -> None:
        pass


@pytest.fixture(scope="module")
def engine() -> ScriptEngine:
    return ScriptEngine(memory_limit_bytes=64 * 1024 * 1024)


def ours(engine: ScriptEngine, script: bytes, keys: list[bytes], args: list[bytes], proto: int) -> bytes:
    try:
        sha, _flags = engine.eval_script(script)
        reply = engine.run_eval(sha, keys, args, HarnessCalls(Harness()))
    except CommandError as exc:
        return b"-" + exc.text.encode() + b"\r\n"
    return encode(reply, proto)


def same(server: Any, engine: ScriptEngine, script: str | bytes, keys: list = (), args: list = (), seed: bool = False) -> None:
    body = script.encode() if isinstance(script, str) else script
    keys = [k.encode() if isinstance(k, str) else k for k in keys]
    args = [a.encode() if isinstance(a, str) else a for a in args]
    for proto in (2, 3):
        conn = server[proto]
        conn.call("FLUSHALL")
        if seed:
            conn.call("EVAL", "math.randomseed(305441741)", "0")
        theirs = conn.call("EVAL", body, str(len(keys)), *keys, *args)
        assert ours(engine, body, keys, args, proto) == theirs, (proto, body)


CONVERSIONS = [
    "return 1",
    "return 3.99",
    "return -3.99",
    "return 2^53",
    "return -2^63",
    "return 'str'",
    "return ''",
    "return true",
    "return false",
    "return nil",
    "return {}",
    "return {1, 2, nil, 3}",
    "return {1, 'a', {2, {3, false, 4}}, true}",
    "return {ok = 'fine'}",
    "return {ok = 'two\\r\\nlines'}",
    "return {err = 'bad'}",
    "return {err = 'CODE detail'}",
    "return {1, {err = 'nested'}, {ok = 'st'}}",
    "return redis.error_reply('My err')",
    "return redis.error_reply('boom')",
    "return redis.error_reply('-WRONG thing')",
    "return redis.status_reply('fine')",
    "return {double = 3.5}",
    "return {map = {a = 1, b = 'x'}}",
    "return {set = {a = true, b = true}}",
    "return {big_number = '12345678901234567890'}",
    "return {verbatim_string = {format = 'txt', string = 'hello'}}",
    "redis.setresp(3) return true",
    "redis.setresp(3) return false",
    "redis.setresp(3) return {double = 3.5}",
    "redis.setresp(3) return {double = 1/3}",
    "redis.setresp(3) return {map = {a = 1, b = {1, 2}, c = {map = {x = 'y'}}}}",
    "redis.setresp(3) return {set = {a = true, b = true, c = true}}",
    "redis.setresp(3) return {big_number = '123'}",
    "redis.setresp(3) return {verbatim_string = {format = 'txt', string = 'hello'}}",
    "redis.setresp(3) return {1, true, false, {double = 0.1}}",
    "return redis.sha1hex('')",
    "return redis.sha1hex('abc')",
    "return redis.sha1hex(12)",
    "return {redis.REDIS_VERSION, redis.REDIS_VERSION_NUM}",
    "return {redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING}",
    "return {redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL}",
    "return redis.replicate_commands()",
    "return redis.breakpoint()",
    "return redis.set_repl(redis.REPL_ALL)",
    "redis.log(redis.LOG_WARNING, 'hello', 1, 'x') return 1",
    "return type(redis.call)",
    "return {type(math.random), type(cjson.null), type(string.len)}",
    "return {KEYS[1], ARGV[1], #KEYS, #ARGV}",
    "return _VERSION",
]

COMMANDS = [
    "return redis.call('ping')",
    "return redis.call('ping', 'x')",
    "return redis.call('PING', 'a', 'b')",
    "return redis.call('echo', 'x')",
    "return redis.call('nosuch')",
    "return redis.pcall('nosuch')",
    "return redis.call('get')",
    "return redis.pcall('get')",
    "return redis.call()",
    "return redis.pcall()",
    "return redis.call('set', 'a', {})",
    "return redis.call('set', 'a', true)",
    "return redis.call('multi')",
    "return redis.call('eval', 'return 1', '0')",
    "return redis.call('subscribe', 'x')",
    "return redis.call('select', '99')",
    "return redis.call('select', 'x')",
    "redis.call('select', '2') return redis.call('get', 'k')",
    "return redis.call('set', 'k', 'v')",
    "redis.call('set', 'k', 3.5) return redis.call('get', 'k')",
    "redis.call('set', 'k', 0.1) return redis.call('get', 'k')",
    "redis.call('set', 'k', 1e300) return redis.call('get', 'k')",
    "redis.call('set', 'k', 7) return redis.call('incr', 'k')",
    "redis.call('set', 's', 'a') return redis.call('incr', 's')",
    "redis.call('set', 's', 'a') return redis.pcall('incr', 's')",
    "redis.call('set', 's', 'a') local r = redis.pcall('incr', 's') return r.err",
    "return redis.call('get', 'missing')",
    "return {redis.call('get', 'missing')}",
    "redis.setresp(3) return redis.call('get', 'missing')",
    "redis.call('rpush', 'l', 'a', 'b') return redis.call('lrange', 'l', 0, -1)",
    "redis.call('hset', 'h', 'f', 'v') return redis.call('hgetall', 'h')",
    "redis.setresp(3) redis.call('hset', 'h', 'f', 'v') return redis.call('hgetall', 'h')",
    "redis.setresp(3) redis.call('hset', 'h', 'f', 'v') local r = redis.call('hgetall', 'h') return r.map.f",
    "redis.setresp(3) redis.call('sadd', 's', 'm') local r = redis.call('smembers', 's') return {r.set.m}",
    "redis.call('zadd', 'z', 1.5, 'm') return redis.call('zscore', 'z', 'm')",
    "redis.setresp(3) redis.call('zadd', 'z', 1.5, 'm') return redis.call('zscore', 'z', 'm')",
    "redis.setresp(3) redis.call('zadd', 'z', 1.5, 'm') local r = redis.call('zscore', 'z', 'm') return r.double * 2",
    "return redis.call('exists', 'a', 'b')",
    "redis.call('set', 'k', 'v') return redis.call('type', 'k')",
    "return redis.pcall('type', 'k')['ok']",
    "redis.setresp(4)",
    "redis.setresp()",
    "redis.log(1)",
    "redis.log('x', 'y')",
    "redis.log(9, 'y')",
    "redis.set_repl(9)",
    "redis.set_repl()",
    "return redis.error_reply(1)",
    "return redis.status_reply()",
    "return redis.sha1hex()",
]

ERRORS = [
    "error('boom')",
    "error({err = 'X boom'})",
    "error(nil)",
    "error('boom', 0)",
    "error('boom', 2)",
    "local x = nil + 1",
    "local t = nil; return t.x",
    "return #nil",
    "\n\nlocal function f()\n  error('deep')\nend\nf()",
    "\nlocal function f()\n  return redis.call('nosuch')\nend\nreturn f()",
    "return pcall(redis.call, 'nosuch')",
    "return {pcall(error, {err = 'x'})}",
    "local ok, e = pcall(error, {err = 'x'}) return type(e)",
    "local ok, e = pcall(error, {err = 'x', y = 1}) return {ok, e}",
    "return {pcall(redis.call, 'nosuch')}",
    "return {xpcall(function() redis.call('nosuch') end, function(e) return type(e) end)}",
    "local ok, e = pcall(error, setmetatable({}, {__index = function() return 'via index' end})) return e",
    "return {pcall(error, 'x')}",
    "return {xpcall(function() error('x') end, function(e) return 'handled: ' .. e end)}",
    "local x = 1 +",
    "return 'unterminated",
    "for",
    "\n\n  return (",
    "#!lua\nreturn 1",
    "#!lua flags=no-writes\nreturn 2",
    "#!lua flags=no-writes,allow-oom\nreturn 3",
    "#!lua flags=bad\nreturn 1",
    "#!luax\nreturn 1",
    "#!lua x=1\nreturn 1",
    "#!lua flags=no-writes\nreturn redis.call('set', 'a', 'b')",
    "#!lua\nerror('line two')",
    "return string.rep('x', -1)",
    "return ('x'):rep(3)",
    "return math.random(0)",
    "return math.random(5, 1)",
    "return math.random(1, 2, 3)",
    "return tostring(math.huge)",
]

SANDBOX = [
    "return os.execute('id')",
    "return os.clock()",
    "return io.open('/etc/passwd')",
    "return loadfile('/etc/passwd')",
    "return dofile('/etc/passwd')",
    "return require('os')",
    "return package.loadlib('x', 'y')",
    "return python.eval('1')",
    "return debug.getinfo(1)",
    "return getfenv(redis.call)",
    "return setfenv(1, {})",
    "return newproxy(true)",
    "return print('x')",
    "return module('x')",
    "return redis.call.__globals__",
    "return redis.call['__class__']",
    "x = 1",
    "return undefined_global",
    "_G.x = 1",
    "rawset(_G, 'x', 1)",
    "setmetatable(_G, {})",
    "string.x = 1",
    "string.len = nil",
    "rawset(string, 'len', nil)",
    "redis.call = nil",
    "cjson.encode = nil",
    "math.random = nil",
    "getmetatable('').__index = nil",
    "getmetatable('').__index.upper = nil",
    "return getmetatable(string)",
    "return getmetatable(_G)",
    "return tostring(getmetatable('').__index == string)",
    "loadstring('x=1')()",
    "return loadstring('return 1')()",
    "return load('return 2')",
    "return loadstring(string.dump(function() return 1 end))",
    "local t = {} for k in pairs(_G) do t[#t + 1] = k end table.sort(t) return t",
    "local t = {} for k in pairs(redis) do t[#t + 1] = k end table.sort(t) return t",
    "local t = {} for k in pairs(string) do t[#t + 1] = k end table.sort(t) return t",
    "local t = {} for k in pairs(math) do t[#t + 1] = k end table.sort(t) return t",
    "local t = {} for k in pairs(table) do t[#t + 1] = k end table.sort(t) return t",
    "local t = {} for k in pairs(bit) do t[#t + 1] = k end table.sort(t) return t",
    "local t = {} for k in pairs(struct) do t[#t + 1] = k end table.sort(t) return t",
    "return rawget(string, 'len') == string.len",
    "return next(redis) ~= nil",
    "return #KEYS",
    "KEYS[1] = 'x' return KEYS[1]",
    "table.insert(string, 'x')",
    "table.insert(_G, 'x')",
    "return {table.insert(KEYS, 'x'), #KEYS}",
    "return table.remove(string)",
]

LIBS = [
    # bit
    "return {bit.tobit(2^32 + 5), bit.tobit(1.5), bit.tobit(2.5), bit.tobit(-1)}",
    "return {bit.bnot(0), bit.band(7, 3), bit.bor(1, 2, 4), bit.bxor(5, 3), bit.band(-1, 0xff)}",
    "return {bit.lshift(1, 31), bit.lshift(1, 32), bit.rshift(-1, 28), bit.arshift(-256, 4), bit.rol(0x12345678, 12), bit.ror(0x12345678, 12)}",
    "return {bit.bswap(0x12345678), bit.tohex(65535), bit.tohex(65535, -4), bit.tohex(-1), bit.tohex(255, 2), bit.tohex(1, 20)}",
    "return bit.band()",
    "return bit.band('a')",
    "return bit.bor('0x10', ' 3 ')",
    # struct
    "return struct.pack('>i2s', 5, 'ab')",
    "return struct.pack('<I4hbB', 1, -2, -3, 250)",
    "return struct.pack('>d<f', 1.5, -2.25)",
    "return struct.pack('c3x', 'abcdef')",
    "return struct.pack('!4bi', 1, 2)",
    "return struct.pack('q', 5)",
    "return struct.pack('i3', -1)",
    "return {struct.unpack('<I4', 'abcd')}",
    "return {struct.unpack('>i2i2', '\\255\\254\\0\\1')}",
    "return {struct.unpack('bc0', '\\3abcd')}",
    "return {struct.unpack('s', 'hi\\0rest')}",
    "return {struct.unpack('>I2', 'abcdef', 3)}",
    "return {struct.unpack('>I4', 'ab')}",
    "return {struct.size('i4d'), struct.size('!8bd'), struct.size('bhl')}",
    "return tostring(struct.unpack('d', struct.pack('d', 0.1)))",
    # cjson
    "return cjson.encode({1, 2, 3, {a = 1.5}})",
    "return cjson.encode({[1] = 1, [3] = 3})",
    "return cjson.encode({[1] = 1, [12] = 3})",
    "return cjson.encode(1/3)",
    "return cjson.encode(1e20)",
    "return cjson.encode(-0)",
    "return cjson.encode(12345678901234)",
    "return cjson.encode('a/\"\\\\\\n\\1\\127\\200')",
    "return cjson.encode({})",
    "return cjson.encode(cjson.null)",
    "return cjson.encode({a = {b = {c = {true, false, cjson.null}}}})",
    "return cjson.encode({[1.5] = 'x'})",
    "return cjson.encode({[true] = 1})",
    "return cjson.encode(0/0)",
    "return cjson.encode(function() end)",
    "return cjson.encode()",
    "return cjson.decode('[1,2,null,\"x\"]')",
    "return cjson.decode('{\"a\": [1, 2.5, {\"b\": \"c\"}], \"d\": true}').a[3].b",
    "return cjson.decode('\"\\\\u00e9\\\\ud83d\\\\ude00\\\\n\"')",
    "return {cjson.decode('1e2'), cjson.decode(' -3 '), cjson.decode('0.5') * 4}",
    "return type(cjson.decode('null'))",
    "return cjson.decode('{')",
    "return cjson.decode('[1,]')",
    "return cjson.decode('[1 2]')",
    "return cjson.decode('{\"a\" 1}')",
    "return cjson.decode('{1: 2}')",
    "return cjson.decode('tru')",
    "return cjson.decode('')",
    "return cjson.decode('[1] x')",
    "return cjson.decode('\"abc')",
    "return cjson.decode('\"\\\\q\"')",
    "return cjson.decode('-')",
    "return cjson.decode(12)",
    "return cjson.decode({})",
    "return cjson.encode(cjson.decode('{\"k\":[1,2,3]}'))",
    "return {cjson.encode_number_precision(), cjson.encode_max_depth(), cjson.decode_max_depth()}",
    # cmsgpack
    "return cmsgpack.pack(1, 'a', {1, 2}, {a = 1}, 1.5, -1, true, false, nil)",
    "return cmsgpack.pack(0, 127, 128, 255, 256, 65535, 65536, 2^32, -32, -33, -128, -129, -32768, -32769, -2^31, -2^31 - 1)",
    "return cmsgpack.pack(0.1, 1e300, 1/0, -1/0, 3.25)",
    "return cmsgpack.pack(string.rep('x', 31), string.rep('y', 32), string.rep('z', 300))",
    "return cmsgpack.pack({}, {1, nil, 3}, {[2] = 'x'}, {a = {b = {c = {}}}})",
    "local t = {} for i = 1, 20 do t[i] = i end return cmsgpack.pack(t)",
    "return {cmsgpack.unpack(cmsgpack.pack(1, 2, 3))}",
    "return cmsgpack.unpack(cmsgpack.pack({1, {2, 'x'}, {a = 'b'}}))",
    "local t = cmsgpack.unpack(cmsgpack.pack({a = 1, b = {1, 2}})) return {t.a, t.b[2]}",
    "return {cmsgpack.unpack(cmsgpack.pack(0.1, -1, 2^40, true, false))}",
    "return {cmsgpack.unpack_one(cmsgpack.pack(7, 8, 9))}",
    "return {cmsgpack.unpack_limit(cmsgpack.pack(7, 8, 9), 2)}",
    "return cmsgpack.unpack('\\193')",
    "return cmsgpack.unpack('\\146\\1')",
    "return cmsgpack.pack()",
]

MORE = [
    "return cjson.encode({a=1, b=2, c={1,2}, d='x'})",
    "return cjson.encode({1, 'a', {}, {b={}}})",
    'return cjson.encode(0.1)',
    'return cjson.encode(123456789012345678)',
    'return cjson.encode({[1]=1,[2]=2,[3]=3,[4]=4,[5]=5,[6]=6,[7]=7,[8]=8,[9]=9,[10]=10,[20]=20})',
    'return cjson.encode({[1]=1,[11]=2})',
    'return cjson.encode({[-1]=1})',
    'return cjson.encode({[0]=1})',
    "return cjson.decode('[1.5e300, -0, 0.1]')[1]",
    'return cjson.decode(\'{"a":{"b":[]}}\').a.b[1]',
    "return cjson.decode('  [ ]  ')",
    "return cjson.decode('0x10')",
    "return cjson.decode('[NaN]')",
    'return cjson.decode(\'"\\\\u0000x"\')',
    "return cjson.decode('[1,2')",
    'return cjson.decode(\'{"a":1,}\')',
    "return cjson.decode('[true, false]')",
    'return cjson.decode(\'"\\\\ud800"\')',
    'return cjson.encode(cjson.decode(\'[1,{"a":null}]\'))',
    'return cmsgpack.pack({a={b={c={d={e={f={g={h={i={j={k={l={m={n={o={p={q={r=1}}}}}}}}}}}}}}}}})',
    'return cmsgpack.pack(-0.0, 2^63, -2^63, 2^64)',
    "return {cmsgpack.unpack('\\\\202\\\\63\\\\192\\\\0\\\\0')}",
    "return {cmsgpack.unpack('\\\\217\\\\3abc')}",
    "return {cmsgpack.unpack('\\\\196\\\\3abc')}",
    "return cmsgpack.unpack('')",
    "return {cmsgpack.unpack_one('\\\\1\\\\2', 1)}",
    "return {cmsgpack.unpack_limit('\\\\1\\\\2\\\\3', 0)}",
    "return {cmsgpack.unpack_limit('\\\\1\\\\2\\\\3', 5)}",
    "return struct.pack('>l', -1)",
    "return struct.pack('<L', 2^40)",
    "return struct.pack('b', 300)",
    "return struct.pack('i', 1.9)",
    "return struct.pack('i', -1.9)",
    "return struct.pack('s', 'a\\\\0b')",
    "return struct.pack('c', 'xyz')",
    "return struct.pack('c2', 'x')",
    "return struct.pack('=h', 1)",
    "return struct.pack('!2bh', 1, 2)",
    "return struct.pack('i40', 1)",
    "return struct.pack('f', 1/3)",
    "return struct.pack('>i')",
    "return {struct.unpack('c0', 'abc')}",
    "return {struct.unpack('B', '')}",
    "return {struct.unpack('<i3', '\\\\255\\\\255\\\\255')}",
    "return {struct.unpack('b', 'x', 0)}",
    "return struct.size('s')",
    "return struct.size('c0')",
    "return struct.size('c5')",
    'return bit.tobit(2^52)',
    'return bit.tobit(0/0)',
    'return bit.tobit(-2^31 - 1)',
    'return bit.tohex(1, 0)',
    'return bit.tohex(1, -20)',
    'return bit.lshift(1, -1)',
    'return bit.bswap(-1)',
    "return bit.tobit('0x10')",
    'return bit.tobit({})',
    'return tostring(1e15)',
    "return string.format('%d', 3.7)",
    "return table.concat({1, 2, 'a'}, ',')",
    "return select('#', 1, nil, 3)",
    'return unpack({1, 2, 3})',
    'return #redis',
    'return tostring(redis.call == redis.call)',
    'return type(_G)',
    'return rawequal(_G, _G._G)',
    'return next({})',
    "return {tonumber('0x1f'), tonumber('z', 36)}",
    "local t = setmetatable({}, {__index = function(t, k) return k .. '!' end}) return t.x",
    "local t = setmetatable({}, {__tostring = function() return 'custom' end}) return tostring(t)",
    'return ipairs(string)',
    "return {pcall(rawset, string, 'x', 1)}",
    'return {pcall(setmetatable, _G, {})}',
    "return redis.status_reply('a\\\\r\\\\nb')",
    "return redis.error_reply('a\\\\r\\\\nb')",
    "return {err = 'x\\\\ny'}",
    "error('multi\\\\nline')",
    'return redis.setresp(2)',
    "return redis.acl_check_cmd('get', 'x')",
    "return redis.acl_check_cmd('nosuch')",
    "return coroutine.wrap(function() error('in co') end)()",
    "return coroutine.wrap(function() error({err='tbl'}) end)()",
    "return {coroutine.resume(coroutine.create(function() error('in co') end))}",
    "return string.rep('ab', 3, ',')",
    "return ('%5.2f'):format(1/3)",
    "return string.byte('A')",
    'return math.fmod(7, 3)',
    'return math.huge',
    'return -math.huge',
    'return 0/0',
    'return {1/0}',
]

RANDOM = [
    "return {math.random(), math.random(100), math.random(3, 9)}",
    "return {tostring(math.random()), tostring(math.random())}",
    "local t = {} for i = 1, 50 do t[i] = math.random(1000) end return t",
    "math.randomseed(7) return {tostring(math.random()), math.random(10)}",
    "math.randomseed(-3) return {math.random(1, 1000000)}",
    "return math.random(2^31)",
    "return math.random(1.9)",
    "return math.random('3')",
    "return math.random('x')",
    "return math.randomseed()",
    "return math.random(-5, -1)",
]


@pytest.mark.parametrize("script", CONVERSIONS)
def test_conversions(server: Any, engine: ScriptEngine, script: str) -> None:
    same(server, engine, script, keys=["k1"], args=["a1", "a2"])


@pytest.mark.parametrize("script", COMMANDS)
def test_commands(server: Any, engine: ScriptEngine, script: str) -> None:
    same(server, engine, script)


@pytest.mark.parametrize("script", ERRORS)
def test_errors(server: Any, engine: ScriptEngine, script: str) -> None:
    same(server, engine, script)


@pytest.mark.parametrize("script", SANDBOX)
def test_sandbox(server: Any, engine: ScriptEngine, script: str) -> None:
    same(server, engine, script, keys=["k"])


@pytest.mark.parametrize("script", LIBS)
def test_libraries(server: Any, engine: ScriptEngine, script: str) -> None:
    same(server, engine, script)


@pytest.mark.parametrize("script", MORE)
def test_more(server: Any, engine: ScriptEngine, script: str) -> None:
    same(server, engine, script.encode().decode("unicode_escape").encode("latin-1"))


@pytest.mark.parametrize("script", RANDOM)
def test_math_random(server: Any, engine: ScriptEngine, script: str) -> None:
    same(server, engine, script, seed=True)


def test_library_changes_are_not_seen_by_the_next_script(server: Any, engine: ScriptEngine) -> None:
    for attempt in ["string.upper = nil", "rawset(string, 'upper', nil)", "getmetatable('').__index = {}",
                    "setmetatable(string, {})", "getmetatable('').__index.upper = nil"]:
        same(server, engine, attempt)
        same(server, engine, "return {string.upper('a'), ('b'):upper(), cjson.encode(1/3)}")


# -- functions -----------------------------------------------------------------------------

LIBRARY_CODES = [
    "return 1",
    "#!lua\n",
    "#!lua name=l1\nreturn 1",
    "#!lua name=l1\nlocal x = ",
    "#!lua name=l1\nerror('boom')",
    "#!lua name=l1\nx = 1",
    "#!lua name=l1\nredis.call('ping')",
    "#!lua name=a-b\nredis.register_function('f', function() end)",
    "#!lua name=l1 foo=bar\nredis.register_function('f', function() end)",
    "#!lua name=l1 name=l2\nredis.register_function('f', function() end)",
    "#!py name=l1\nredis.register_function('f', function() end)",
    "#!lua name=l1\nredis.register_function('f-1', function() end)",
    "#!lua name=l1\nredis.register_function('f1', function() end) redis.register_function('f1', function() end)",
    "#!lua name=l1\nredis.register_function{function_name='f1', callback=function() end, flags={'no-writes','bad'}}",
    "#!lua name=l1\nredis.register_function{function_name='f1', callback=function() end, extra=1}",
    "#!lua name=l1\nredis.register_function{callback=function() end}",
    "#!lua name=l1\nredis.register_function{function_name='a'}",
    "#!lua name=l1\nredis.register_function{function_name='a', callback=1}",
    "#!lua name=l1\nredis.register_function{function_name='a', callback=function() end, flags='no-writes'}",
    "#!lua name=l1\nredis.register_function('f1')",
    "#!lua name=l1\nredis.register_function(1, 2)",
    "#!lua name=l1\nredis.register_function('a', 1)",
    "#!lua name=l1\nredis.register_function()",
    "#!lua name=l1\nredis.setresp(3)",
]


def _load_ours(engine: ScriptEngine, code: bytes, replace: bool = False) -> bytes:
    try:
        return encode(engine.load_library(code, replace).name.encode(), 2)
    except CommandError as exc:
        return b"-" + exc.text.encode() + b"\r\n"


@pytest.mark.parametrize("code", LIBRARY_CODES)
def test_function_load_errors(server: Any, code: str) -> None:
    engine = ScriptEngine()
    server[2].call("FUNCTION", "FLUSH")
    assert _load_ours(engine, code.encode()) == server[2].call("FUNCTION", "LOAD", code)


LIBS_FOR_CALLS = [
    "#!lua name=mylib\n"
    "redis.register_function{function_name='echo_all', callback=function(keys, args) return {keys, args, #keys} end,"
    " flags={'no-writes', 'allow-stale'}, description='echo'}\n"
    "redis.register_function('fail', function() error('x') end)\n"
    "redis.register_function('write', function(keys) return redis.call('set', keys[1], 'v') end)\n"
    "redis.register_function('bad_call', function() return redis.call('nosuch') end)",
    "#!lua name=other\nredis.register_function('rnd', function() return {tostring(math.random()), math.random(10)} end)",
]


def _parsed_library(wire: bytes) -> Any:
    reader = hiredis.Reader()
    reader.feed(wire)
    reply = reader.gets()
    (lib,) = reply
    fields = dict(lib) if isinstance(lib, dict) else dict(zip(lib[0::2], lib[1::2]))
    fields[b"functions"] = sorted(map(repr, fields[b"functions"]))
    return fields


def _fcall_ours(engine: ScriptEngine, name: str, keys: list, args: list, proto: int, ro: bool = False) -> bytes:
    try:
        reply = engine.run_function(name, keys, args, HarnessCalls(Harness()), readonly=ro)
    except CommandError as exc:
        return b"-" + exc.text.encode() + b"\r\n"
    return encode(reply, proto)


def test_functions_list_fcall_dump_restore(server: Any) -> None:
    engine = ScriptEngine()
    for proto in (2, 3):
        conn = server[proto]
        conn.call("FUNCTION", "FLUSH")
        engine.flush_libraries()
        for code in LIBS_FOR_CALLS:
            assert _load_ours(engine, code.encode()) == conn.call("FUNCTION", "LOAD", code)
        # one library per reply; functions compared as a set (Redis lists them in hash order)
        for lib in ("mylib", "other"):
            mine = encode(engine.list_libraries(lib.encode(), withcode=True), proto)
            theirs = conn.call("FUNCTION", "LIST", "LIBRARYNAME", lib, "WITHCODE")
            if lib == "other":
                assert mine == theirs
            else:
                assert _parsed_library(mine) == _parsed_library(theirs)
        assert encode(engine.function_stats(), proto) == conn.call("FUNCTION", "STATS")
        for name, keys, args, ro in [
            ("echo_all", [b"k1", b"k2"], [b"a"], False),
            ("echo_all", [], [], True),
            ("fail", [], [], False),
            ("write", [b"k"], [], False),
            ("write", [b"k"], [], True),
            ("bad_call", [], [], False),
            ("nosuch", [], [], False),
        ]:
            cmd = "FCALL_RO" if ro else "FCALL"
            theirs = conn.call(cmd, name, str(len(keys)), *keys, *args)
            assert _fcall_ours(engine, name, keys, args, proto, ro) == theirs, (name, proto)
        # the restore error texts
        ours_dump = engine.dump_libraries()
        theirs_dump = conn.call("FUNCTION", "DUMP")
        for policy in ("APPEND", "REPLACE"):
            try:
                engine.restore_libraries(ours_dump, policy)
                mine = b"+OK\r\n"
            except CommandError as exc:
                mine = b"-" + exc.text.encode() + b"\r\n"
            theirs = conn.call("FUNCTION", "RESTORE", ours_dump, policy)
            if policy == "APPEND":  # both libraries collide: each side names the first in its own order
                assert mine.startswith(b"-ERR Library ") and theirs.startswith(b"-ERR Library "), (mine, theirs)
            else:
                assert mine == theirs, policy
        assert theirs_dump.startswith(b"$")


def test_function_dump_payloads_travel_both_ways(server: Any) -> None:
    conn = server[2]
    code = "#!lua name=only\nredis.register_function('f', function() return 'from ' .. 'lib' end)\n" + "-- padding\n" * 20
    conn.call("FUNCTION", "FLUSH")
    conn.call("FUNCTION", "LOAD", code)
    dump = conn.call("FUNCTION", "DUMP")
    payload = dump[dump.index(b"\r\n") + 2 : -2]  # LZF-compressed by Redis
    engine = ScriptEngine()
    engine.restore_libraries(payload, "APPEND")
    assert list(engine.libraries) == ["only"]
    assert engine.libraries["only"].code == code.encode()
    assert encode(engine.list_libraries(withcode=True), 2) == conn.call("FUNCTION", "LIST", "WITHCODE")
    assert _fcall_ours(engine, "f", [], [], 2) == conn.call("FCALL", "f", "0")
    # ours into Redis
    ours_payload = engine.dump_libraries()
    conn.call("FUNCTION", "FLUSH")
    assert conn.call("FUNCTION", "RESTORE", ours_payload) == b"+OK\r\n"
    assert conn.call("FUNCTION", "LIST", "WITHCODE") == encode(engine.list_libraries(withcode=True), 2)
    # damaged payloads
    for bad in (ours_payload[:-1] + bytes([ours_payload[-1] ^ 1]), b"\xf5\x00\x0a\x00", b"\x01" + ours_payload[1:]):
        try:
            engine.restore_libraries(bad)
            mine = b"+OK\r\n"
        except CommandError as exc:
            mine = b"-" + exc.text.encode() + b"\r\n"
        assert mine == conn.call("FUNCTION", "RESTORE", bad, "REPLACE"), bad
