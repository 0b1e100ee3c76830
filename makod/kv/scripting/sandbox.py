"""The Lua side of the sandbox: run once per LuaRuntime by the engine.

``PRELUDE`` receives the table of Python callbacks (``P``) and returns a
table of internals (``I``): the script environment, the runners, the
library-loading environment maker. Scripts never see ``P``, the real
globals, ``debug`` or any Python object: every global a script can reach is
a Lua value built here from an allow list (Redis 7.0's), every library table
is a read-only proxy (``protect``), and the builtins that could bypass a
proxy (rawset, rawget, next, pairs, ipairs, setmetatable, getmetatable) are
wrapped to honour it.

Fatal exits (an exception from the transaction machinery, the time check,
out of memory) set ``STATE.fatal`` and raise a marker; pcall, xpcall and
coroutine.resume re-raise it after they return, so no Lua code can catch it.
"""

PRELUDE = r"""
local P, HOOK_N, LIBS, LIBS_RESET = ...
local _rawset, _rawget, _rawequal, _setmt, _getmt = rawset, rawget, rawequal, setmetatable, getmetatable
local _next, _pairs, _ipairs, _pcall, _xpcall, _error = next, pairs, ipairs, pcall, xpcall, error
local _type, _tostring, _tonumber, _select, _unpack = type, tostring, tonumber, select, unpack
local _loadstring, _setfenv, _getfenv, _newproxy = loadstring, setfenv, getfenv, newproxy
local _sethook, _getinfo = debug.sethook, debug.getinfo
local _resume = coroutine.resume
local _concat, _sub, _floor, _ceil = table.concat, string.sub, math.floor, math.ceil
local _format = string.format
local _gc = collectgarbage

local FATAL = "makodb: script aborted"
local RO_MSG = "Attempt to modify a readonly table"
local STATE = {fatal = false, oom = false, resp = 2, hook_n = 0}
local RO = _setmt({}, {__mode = "k"})   -- read-only proxy -> the real table
local I = {STATE = STATE}

local function ro_newindex() _error(RO_MSG, 2) end
local function protect(real)
  local p = {}
  _setmt(p, {__index = real, __newindex = ro_newindex, __metatable = false})
  RO[p] = real
  return p
end
I.protect = protect

local function die() STATE.fatal = true; _error(FATAL, 0) end
local function after(ok, ...)
  if STATE.fatal then _error(FATAL, 0) end
  if not ok and (...) == "not enough memory" then STATE.oom = true; die() end
  return ok, ...
end

-- raise at the first frame outside this chunk (as luaL_argerror names the caller's line)
local function outside_level()
  local level = 3
  while true do
    local info = _getinfo(level, "S")
    if not info or (info.source ~= "=makod" and info.what ~= "tail") then return level - 1 end
    level = level + 1
  end
end
local function argerr(n, fname, msg)
  _error(_format("bad argument #%d to '%s' (%s)", n, fname, msg), outside_level())
end
local function need_table(t, fname)
  if _type(t) ~= "table" then
    argerr(1, fname, "table expected, got " .. (t == nil and "no value" or _type(t)))
  end
end

-- builtins honouring the read-only proxies ------------------------------------
local B = {}
-- Redis's pcall answers an error table's ``err`` string instead of the table
local function pcall_result(ok, ...)
  if not ok then
    local e = ...
    if _type(e) == "table" then
      local msg = e.err
      if _type(msg) == "string" or _type(msg) == "number" then return false, msg end
    end
  end
  return ok, ...
end
B.pcall = function(...)
  if _select("#", ...) == 0 then argerr(1, "pcall", "value expected") end
  return pcall_result(after(_pcall(...)))
end
B.xpcall = function(f, h)
  return after(_xpcall(f, function(e) if STATE.fatal then return e end return h(e) end))
end
B.rawset = function(t, k, v)
  need_table(t, "rawset")
  if RO[t] then _error(RO_MSG, 0) end
  return _rawset(t, k, v)
end
B.rawget = function(t, k)
  need_table(t, "rawget")
  return _rawget(RO[t] or t, k)
end
B.next = function(t, k)
  need_table(t, "next")
  return _next(RO[t] or t, k)
end
B.pairs = function(t)
  need_table(t, "pairs")
  if RO[t] then return B.next, t, nil end
  return _next, t, nil
end
B.ipairs = function(t)
  need_table(t, "ipairs")
  return _ipairs(RO[t] or t)
end
local STRING_MT = _getmt("")
local STRING_MT_PROXY
local ENV_REF, ENV_MT_PROXY = {}, nil
B.getmetatable = function(...)
  if _select("#", ...) == 0 then argerr(1, "getmetatable", "value expected") end
  local t = ...
  if t == ENV_REF[1] then return ENV_MT_PROXY end
  if RO[t] then return nil end
  local mt = _getmt(t)
  if mt == STRING_MT then return STRING_MT_PROXY end
  return mt
end
B.setmetatable = function(t, mt)
  need_table(t, "setmetatable")
  if mt ~= nil and _type(mt) ~= "table" then argerr(2, "setmetatable", "nil or table expected") end
  if RO[t] then _error(RO_MSG, 0) end
  return _setmt(t, mt)
end

-- loading code from a script: same environment as the caller, no bytecode
local function binary(s) return _type(s) == "string" and _sub(s, 1, 1) == "\27" end
local function refuse(s, chunkname)
  return nil, _format('[string "%s"]:1: unexpected symbol near \'<\\27>\'', chunkname or "?")
end
B.loadstring = function(s, chunkname)
  if _type(s) ~= "string" and _type(s) ~= "number" then
    argerr(1, "loadstring", "string expected, got " .. (s == nil and "no value" or _type(s)))
  end
  if binary(s) then return refuse(s, chunkname) end
  local f, err = _loadstring(s, chunkname)
  if f then _setfenv(f, _getfenv(2)) end
  return f, err
end
B.load = function(reader, chunkname)
  if _type(reader) ~= "function" then
    argerr(1, "load", "function expected, got " .. (reader == nil and "no value" or _type(reader)))
  end
  local parts = {}
  while true do
    local piece = reader()
    if piece == nil or piece == "" then break end
    if _type(piece) ~= "string" then return nil, "reader function must return a string" end
    parts[#parts + 1] = piece
  end
  local s = _concat(parts)
  if binary(s) then return refuse(s, chunkname or "=(load)") end
  local f, err = _loadstring(s, chunkname or "=(load)")
  if f then _setfenv(f, _getfenv(2)) end
  return f, err
end

-- math.random / math.randomseed over Redis's rand48 (src/script_lua.c) ---------
local function toint(x, n, fname)
  local v = _tonumber(x)
  if v == nil then
    argerr(n, fname, "number expected, got " .. (x == nil and "no value" or _type(x)))
  end
  if v >= 2147483648 or v < -2147483648 or v ~= v then return -2147483648 end  -- C's (int) on x86
  if v >= 0 then return _floor(v) end
  return _ceil(v)
end
local M = {}
for k, v in _pairs(math) do M[k] = v end
M.random = function(...)
  local r = P.rand()
  local argc = _select("#", ...)
  if argc == 0 then return r end
  if argc == 1 then
    local u = toint((...), 1, "random")
    if u < 1 then argerr(1, "random", "interval is empty") end
    return _floor(r * u) + 1
  end
  if argc == 2 then
    local l, u = ...
    l = toint(l, 1, "random"); u = toint(u, 2, "random")
    if l > u then argerr(2, "random", "interval is empty") end
    return _floor(r * (u - l + 1)) + l
  end
  _error("wrong number of arguments", 2)
end
M.randomseed = function(s) P.seed(toint(s, 1, "randomseed")) end

-- debug.sethook's Lua hook is per thread: a coroutine gets the run's hook too
local hook
local _cocreate, _cowrap = coroutine.create, coroutine.wrap
local CO = {}
for k, v in _pairs(coroutine) do CO[k] = v end
CO.resume = function(co, ...) return after(_resume(co, ...)) end
CO.create = function(f)
  local co = _cocreate(f)
  if STATE.hook_n > 0 then _sethook(co, hook, "", STATE.hook_n) end
  return co
end
CO.wrap = function(f)
  local co = CO.create(f)
  return function(...)
    local r = {_resume(co, ...)}
    if STATE.fatal then _error(FATAL, 0) end
    if not r[1] then
      local e = r[2]
      if _type(e) == "string" then _error(e, 2) end
      _error(e, 0)
    end
    return _unpack(r, 2, table.maxn(r))
  end
end

-- the Redis API ---------------------------------------------------------------
local function raise(msg) _error({err = "ERR " .. msg}, 0) end
local function pycall(raise_error, ...)
  if STATE.fatal then _error(FATAL, 0) end
  local st, v = P.call(...)
  if st == 0 then return v end
  if st == 2 then die() end
  local e = {err = v}
  if raise_error then _error(e, 0) end
  return e
end
local R = {}
R.call = function(...) return pycall(true, ...) end
R.pcall = function(...) return pycall(false, ...) end
R.setresp = function(...)
  if _select("#", ...) ~= 1 then raise("redis.setresp() requires one argument.") end
  local resp = _tonumber((...))
  if resp ~= 2 and resp ~= 3 then raise("RESP version must be 2 or 3.") end
  STATE.resp = resp
end
R.log = function(...)
  local argc = _select("#", ...)
  if argc < 2 then raise("redis.log() requires two arguments or more.") end
  local level = _tonumber((...))
  if level == nil then raise("First argument must be a number (log level).") end
  level = toint(level, 1, "log")
  if level < 0 or level > 3 then raise("Invalid debug level.") end
  local parts = {}
  for j = 2, argc do
    local s = _select(j, ...)
    local t = _type(s)
    if j ~= 2 then parts[#parts + 1] = " " end
    if t == "string" or t == "number" then parts[#parts + 1] = _tostring(s) end
  end
  if not P.log(level, _concat(parts)) then die() end
end
R.sha1hex = function(...)
  if _select("#", ...) ~= 1 then raise("wrong number of arguments") end
  local s = ...
  if _type(s) ~= "string" and _type(s) ~= "number" then s = "" end
  return P.sha1hex(_tostring(s))
end
local function single_field(field, ...)
  local s = ...
  if _select("#", ...) ~= 1 or _type(s) ~= "string" then return {err = "ERR wrong number or type of arguments"} end
  if field == "err" then
    if _sub(s, 1, 1) ~= "-" then s = "-" .. s end
    return {err = P.errtext(s)}
  end
  return {ok = s}
end
R.error_reply = function(...) return single_field("err", ...) end
R.status_reply = function(...) return single_field("ok", ...) end
R.set_repl = function(...)
  if _select("#", ...) ~= 1 then raise("redis.set_repl() requires two arguments.") end
  local flags = _tonumber((...))
  if flags == nil or flags ~= _floor(flags) or flags < 0 or flags > 3 then
    raise("Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.")
  end
end
R.replicate_commands = function() return true end
R.breakpoint = function() return false end
R.debug = function() end
R.acl_check_cmd = function(...)
  if _select("#", ...) < 1 then raise("Please specify at least one argument for this redis lib call") end
  local ok = P.known_command(...)
  if not ok then raise("Invalid command passed to redis.acl_check_cmd()") end
  return true
end
R.REPL_NONE = 0; R.REPL_AOF = 1; R.REPL_SLAVE = 2; R.REPL_REPLICA = 2; R.REPL_ALL = 3
R.LOG_DEBUG = 0; R.LOG_VERBOSE = 1; R.LOG_NOTICE = 2; R.LOG_WARNING = 3
R.REDIS_VERSION = P.version
R.REDIS_VERSION_NUM = P.version_num

-- the error handler (__redis__err__handler) -----------------------------------
local function handler(err)
  if STATE.fatal then return FATAL end
  local level, info = 2, nil
  while true do
    info = _getinfo(level, "nSl")
    if not info then break end
    if info.what ~= "C" and info.what ~= "tail" and info.source ~= "=makod" then break end
    level = level + 1
  end
  if _type(err) ~= "table" then err = {err = "ERR " .. _tostring(err)} end
  if info then err.source = info.source; err.line = info.currentline end
  return err
end

-- the environments ---------------------------------------------------------------
local function nonexistent(t, k)
  _error("Script attempted to access nonexistent global variable '" .. _tostring(k) .. "'", 2)
end
local G = {}
for _, name in _ipairs({"assert", "collectgarbage", "error", "gcinfo", "rawequal", "select",
                        "tonumber", "tostring", "type", "unpack"}) do
  G[name] = _G[name]
end
for name, f in _pairs(B) do G[name] = f end
G._VERSION = _VERSION
G.string = protect(string)
STRING_MT_PROXY = protect({__index = G.string})
local TB = {}
for k, v in _pairs(table) do TB[k] = v end
local _tinsert = table.insert
TB.insert = function(t, ...)
  if RO[t] then _error(RO_MSG, 0) end
  return _tinsert(t, ...)
end
G.table = protect(TB)
G.math = protect(M)
G.coroutine = protect(CO)
for name, lib in _pairs(LIBS) do G[name] = protect(lib) end
G.redis = protect(R)
G.__redis__err__handler = handler
_setmt(G, {__index = nonexistent})
local ENV = protect(G)
G._G = ENV
ENV_REF[1] = ENV
ENV_MT_PROXY = protect({__index = nonexistent})
I.ENV = ENV

-- A library's own environment. While its code loads, the only global is a
-- ``redis`` with register_function, log, LOG_* and REDIS_VERSION(_NUM) (as
-- Redis 7.0); ``finish`` then opens every global to its functions.
local FUNCTION_FLAGS = {["no-writes"] = true, ["allow-oom"] = true, ["allow-stale"] = true,
                        ["no-cluster"] = true, ["allow-cross-slot-keys"] = true}
local function isstr(v) return _type(v) == "string" or _type(v) == "number" end
function I.library_env()
  local registered, seen = {}, {}
  local function register(...)
    local argc = _select("#", ...)
    local name, callback, flags, desc
    if argc == 1 then
      local t = ...
      if _type(t) ~= "table" then
        raise("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).")
      end
      for k, v in _next, t do
        if not isstr(k) then raise("named argument key given to redis.register_function must be a string") end
        k = _tostring(k)
        if k == "function_name" then
          if not isstr(v) then raise("function_name argument given to redis.register_function must be a string") end
          name = _tostring(v)
        elseif k == "description" then
          if not isstr(v) then raise("description argument given to redis.register_function must be a string") end
          desc = _tostring(v)
        elseif k == "callback" then
          if _type(v) ~= "function" then raise("callback argument given to redis.register_function must be a function") end
          callback = v
        elseif k == "flags" then
          if _type(v) ~= "table" then raise("flags argument to redis.register_function must be a table representing function flags") end
          for _, f in _next, v do
            if _type(f) ~= "string" or not FUNCTION_FLAGS[f] then raise("unknown flag given") end
          end
          flags = v
        else
          raise("unknown argument given to redis.register_function")
        end
      end
      if not name then raise("redis.register_function must get a function name argument") end
      if not callback then raise("redis.register_function must get a callback argument") end
    elseif argc == 2 then
      name, callback = ...
      if not isstr(name) then raise("first argument to redis.register_function must be a string") end
      name = _tostring(name)
      if _type(callback) ~= "function" then raise("second argument to redis.register_function must be a function") end
    else
      raise("wrong number of arguments to redis.register_function")
    end
    if not string.find(name, "^[%w_]+$") then
      raise("Library names can only contain letters, numbers, or underscores(_) and must be at least one character long")
    end
    if seen[name] then raise("Function already exists in the library") end
    seen[name] = true
    local fl = {}
    if flags then for _, f in _next, flags do fl[#fl + 1] = f end end
    registered[#registered + 1] = {name = name, callback = callback, flags = fl, description = desc}
  end
  local LR = _setmt({register_function = register}, {__index = nonexistent})
  for _, k in _ipairs({"log", "LOG_DEBUG", "LOG_VERBOSE", "LOG_NOTICE", "LOG_WARNING",
                       "REDIS_VERSION", "REDIS_VERSION_NUM"}) do LR[k] = R[k] end
  local LOADG = _setmt({redis = protect(LR)}, {__index = nonexistent})
  local mt = {__index = LOADG}
  local LG = _setmt({}, mt)
  local env = protect(LG)
  local function finish() mt.__index = G end
  return env, finish, registered
end

function I.rebind(f, env) _setfenv(f, env) return f end

function I.compile(body, chunkname, env)
  if binary(body) then return nil, refuse(body, chunkname) end
  local f, err = _loadstring(body, chunkname)
  if not f then return nil, err end
  f = _loadstring(P.untail(string.dump(f)), chunkname)
  _setfenv(f, env or ENV)
  return f
end

-- the result as flat tokens (luaReplyToRedisReply's rules: rawget, lua_next order)
local function flatten(v, out)
  local t = _type(v)
  local n = #out
  if t == "string" then out[n + 1] = "s"; out[n + 2] = v
  elseif t == "number" then out[n + 1] = "i"; out[n + 2] = v
  elseif t == "boolean" then out[n + 1] = v and "t" or "f"
  elseif t == "table" then
    local f = _rawget(v, "err")
    if _type(f) == "string" then out[n + 1] = "e"; out[n + 2] = f; return end
    f = _rawget(v, "ok")
    if _type(f) == "string" then out[n + 1] = "o"; out[n + 2] = f; return end
    f = _rawget(v, "double")
    if _type(f) == "number" then out[n + 1] = "d"; out[n + 2] = f; return end
    f = _rawget(v, "big_number")
    if _type(f) == "string" then out[n + 1] = "B"; out[n + 2] = f; return end
    f = _rawget(v, "verbatim_string")
    if _type(f) == "table" then
      local fmt, s = _rawget(f, "format"), _rawget(f, "string")
      if _type(fmt) == "string" and _type(s) == "string" then
        out[n + 1] = "V"; out[n + 2] = fmt; out[n + 3] = s; return
      end
    end
    f = _rawget(v, "map")
    if _type(f) == "table" then
      out[n + 1] = "M"; out[n + 2] = 0
      local count = 0
      for k, x in _next, f do flatten(k, out); flatten(x, out); count = count + 1 end
      out[n + 2] = count
      return
    end
    f = _rawget(v, "set")
    if _type(f) == "table" then
      out[n + 1] = "S"; out[n + 2] = 0
      local count = 0
      for k in _next, f do flatten(k, out); count = count + 1 end
      out[n + 2] = count
      return
    end
    out[n + 1] = "A"; out[n + 2] = 0
    local j = 1
    while true do
      local x = _rawget(v, j)
      if x == nil then break end
      flatten(x, out)
      j = j + 1
    end
    out[n + 2] = j - 1
  else out[n + 1] = "n" end
end

hook = function()
  if STATE.fatal then _error(FATAL, 0) end
  if not P.check() then die() end
end

-- One run: returns a status and its details.
--   "ok", tokens, resp | "err", msg-or-nil, source, line | "fatal" | "oom" | "stack"
function I.run(f, keys, argv, as_function, hook_n)
  STATE.fatal = false; STATE.oom = false; STATE.resp = 2
  _gc("restart"); _gc("setpause", 200); _gc("setstepmul", 200)
  LIBS_RESET()
  local main = f
  if as_function then
    main = function() return f(keys, argv) end
  else
    _rawset(G, "KEYS", keys); _rawset(G, "ARGV", argv)
  end
  STATE.hook_n = hook_n
  if hook_n > 0 then _sethook(hook, "", hook_n) end
  local ok, res = _xpcall(main, handler)
  _sethook()
  _rawset(G, "KEYS", nil); _rawset(G, "ARGV", nil)
  if STATE.oom or res == "not enough memory" then main = nil; res = nil; _gc("collect"); return "oom" end
  if STATE.fatal then return "fatal" end
  if not ok then
    if _type(res) ~= "table" then return "err", "ERR " .. _tostring(res) end
    local msg = _rawget(res, "err")
    if _type(msg) ~= "string" then msg = nil end
    local src, line = _rawget(res, "source"), _rawget(res, "line")
    return "err", msg, src and _tostring(src), line and _tostring(line)
  end
  local out = {}
  local fok, ferr = _pcall(flatten, res, out)
  if not fok then
    if ferr == "not enough memory" then out = nil; res = nil; _gc("collect"); return "oom" end
    return "stack"
  end
  return "ok", out, STATE.resp
end

-- Load a library: run its code with a hook (FUNCTION LOAD's time limit).
function I.load(f, hook_n)
  STATE.fatal = false; STATE.oom = false; STATE.resp = 2
  LIBS_RESET()
  STATE.hook_n = hook_n
  if hook_n > 0 then _sethook(hook, "", hook_n) end
  local ok, res = _xpcall(f, handler)
  _sethook()
  if STATE.fatal then return STATE.oom and "oom" or "fatal" end
  if not ok then
    if res == "not enough memory" then return "oom" end
    if _type(res) ~= "table" then return "err", "ERR " .. _tostring(res) end
    local msg = _rawget(res, "err")
    return "err", _type(msg) == "string" and msg or nil
  end
  return "ok"
end

function I.table() return {} end
function I.errtable(text) return {err = text} end
return I
"""
