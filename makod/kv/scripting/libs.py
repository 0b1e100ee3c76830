"""The libraries Redis 7.0 bundles: ``bit``, ``struct``, ``cmsgpack``, ``cjson``.

``LIBS_LUA`` runs once per runtime (chunk "=makod", so error positions skip
it) with the Python halves from libs_py.py; it returns the library tables
(the prelude makes them read-only) and a function resetting cjson's settings
(``encode_number_precision`` and the like), which every run calls: in Redis
those settings would leak from one script to the next.

cjson is written in Lua (lua-cjson 2.1.0's rules: "%.14g" numbers, sparse
array detection, ``lua_next`` key order, its parse error texts); bit, struct
and cmsgpack call Python.
"""

from __future__ import annotations

from typing import Any, Callable

from makod.kv.scripting import msgpack
from makod.kv.scripting.libs_py import _wrap, bit_op, bit_tohex, struct_functions


def python_side(table: Callable[[], Any]) -> dict[str, Any]:
    """The Python functions LIBS_LUA calls (``table()`` makes a Lua table)."""
    side: dict[str, Any] = {"bit_op": bit_op, "bit_tohex": bit_tohex, "msgpack_pack": _wrap("pack", msgpack._cmsgpack_pack)}
    for name, fn in struct_functions().items():
        side["struct_" + name] = fn
    for name, fn in msgpack._unpacker(table).items():
        side["msgpack_" + name] = _wrap(name, fn)
    return side


LIBS_LUA = r"""
local PY = ...
local _type, _tonumber, _tostring, _select, _unpack, _error = type, tonumber, tostring, select, unpack, error
local _next, _rawget, _rawset, _format, _byte, _char, _sub, _find, _gsub, _match, _concat, _floor =
  next, rawget, rawset, string.format, string.byte, string.char, string.sub, string.find, string.gsub,
  string.match, table.concat, math.floor
local huge = math.huge
local null = newproxy(false)

local function pack(...) return {n = _select("#", ...), ...} end
local function tname(v, present) if not present then return "no value" end return _type(v) end
local _getinfo = debug.getinfo
local function argerr(n, fname, msg)
  local level = 3
  while true do
    local info = _getinfo(level, "S")
    if not info or (info.source ~= "=makod" and info.what ~= "tail") then break end
    level = level + 1
  end
  _error(_format("bad argument #%d to '%s' (%s)", n, fname, msg), level)
end

-- Python-backed functions: (true, values...) or (false, message at the caller's line)
local function py(f)
  return function(...)
    local r = pack(f(...))
    if not r[1] then _error(r[2], 2) end
    return _unpack(r, 2, r.n)
  end
end

local function checknum(fname, i, ...)
  local v = _select(i, ...)
  local n = _tonumber(v)
  if n == nil or (_type(v) ~= "number" and _type(v) ~= "string") then
    argerr(i, fname, "number expected, got " .. tname(v, _select("#", ...) >= i))
  end
  return n
end

-- bit (LuaBitOp) ----------------------------------------------------------------
local bit = {}
local function bitfn(name, nargs)
  bit[name] = function(...)
    local args = {}
    local count = nargs or _select("#", ...)
    if count == 0 then count = 1 end
    for i = 1, count do args[i] = checknum(name, i, ...) end
    local ok, v = PY.bit_op(name, _unpack(args, 1, count))
    return v
  end
end
bitfn("tobit", 1); bitfn("bnot", 1); bitfn("bswap", 1)
bitfn("band"); bitfn("bor"); bitfn("bxor")
bitfn("lshift", 2); bitfn("rshift", 2); bitfn("arshift", 2); bitfn("rol", 2); bitfn("ror", 2)
bit.tohex = function(...)
  local x = checknum("tohex", 1, ...)
  local n = _select(2, ...)
  if n ~= nil then n = checknum("tohex", 2, ...) end
  local ok, v = PY.bit_tohex(x, n)
  return v
end

-- struct (lua-struct) -------------------------------------------------------------
local struct = {pack = py(PY.struct_pack), unpack = py(PY.struct_unpack), size = py(PY.struct_size)}

-- cmsgpack (lua-cmsgpack) ---------------------------------------------------------
local cmsgpack = {
  pack = py(PY.msgpack_pack),
  unpack = py(PY.msgpack_unpack),
  unpack_one = py(PY.msgpack_unpack_one),
  unpack_limit = py(PY.msgpack_unpack_limit),
  _NAME = "cmsgpack", _VERSION = "lua-cmsgpack 0.4.0",
  _COPYRIGHT = "Copyright (C) 2012, Salvatore Sanfilippo", _DESCRIPTION = "MessagePack C implementation for Lua",
}

-- cjson (lua-cjson 2.1.0) ---------------------------------------------------------
local cfg
local function reset()
  cfg = {precision = 14, max_depth = 1000, decode_max_depth = 1000, sparse_convert = false,
         sparse_ratio = 2, sparse_safe = 10, encode_invalid = false, decode_invalid = true, keep = true}
end
reset()

local ESC = {['"'] = '\\"', ["\\"] = "\\\\", ["/"] = "\\/", ["\b"] = "\\b", ["\f"] = "\\f",
             ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t"}
for i = 0, 31 do local c = _char(i); if not ESC[c] then ESC[c] = _format("\\u%04x", i) end end
ESC["\127"] = "\\u007f"
local function quote(s) return '"' .. _gsub(s, '[%c"\\/]', ESC) .. '"' end

local function fmtnum(n)
  if n ~= n or n == huge or n == -huge then
    if cfg.encode_invalid == "null" then return "null" end
    if not cfg.encode_invalid then return nil, "Cannot serialise number: must not be NaN or Inf" end
    if n ~= n then return "nan" end
    return n > 0 and "inf" or "-inf"
  end
  return _format("%." .. cfg.precision .. "g", n)
end

local function array_length(t)
  local max, items = 0, 0
  for k in _next, t do
    if _type(k) == "number" and k >= 1 and _floor(k) == k then
      if k > max then max = k end
      items = items + 1
    else
      return -1
    end
  end
  if cfg.sparse_ratio > 0 and max > items * cfg.sparse_ratio and max > cfg.sparse_safe then
    if not cfg.sparse_convert then return nil, "Cannot serialise table: excessively sparse array" end
    return -1
  end
  return max
end

local encode_value
local function encode_table(t, depth, buf)
  if depth > cfg.max_depth then return _format("Cannot serialise, excessive nesting (%d)", depth) end
  local len, err = array_length(t)
  if err then return err end
  if len > 0 then
    buf[#buf + 1] = "["
    for i = 1, len do
      if i > 1 then buf[#buf + 1] = "," end
      err = encode_value(_rawget(t, i), depth, buf)
      if err then return err end
    end
    buf[#buf + 1] = "]"
    return
  end
  buf[#buf + 1] = "{"
  local first = true
  for k, v in _next, t do
    if not first then buf[#buf + 1] = "," end
    first = false
    if _type(k) == "string" then buf[#buf + 1] = quote(k)
    elseif _type(k) == "number" then
      local s, e = fmtnum(k)
      if not s then return e end
      buf[#buf + 1] = '"' .. s .. '"'
    else
      return "Cannot serialise " .. _type(k) .. ": table key must be a number or string"
    end
    buf[#buf + 1] = ":"
    err = encode_value(v, depth, buf)
    if err then return err end
  end
  buf[#buf + 1] = "}"
end

encode_value = function(v, depth, buf)
  local t = _type(v)
  if t == "string" then buf[#buf + 1] = quote(v)
  elseif t == "number" then
    local s, e = fmtnum(v)
    if not s then return e end
    buf[#buf + 1] = s
  elseif t == "boolean" then buf[#buf + 1] = v and "true" or "false"
  elseif t == "nil" or v == null then buf[#buf + 1] = "null"
  elseif t == "table" then return encode_table(v, depth + 1, buf)
  else return "Cannot serialise " .. t .. ": type not supported" end
end

local cjson = {null = null, _NAME = "cjson", _VERSION = "2.1.0"}
cjson.encode = function(...)
  if _select("#", ...) ~= 1 then _error("bad argument #1 to 'encode' (expected 1 argument)", 2) end
  local buf = {}
  local err = encode_value((...), 0, buf)
  if err then _error(err, 2) end
  return _concat(buf)
end

-- decoding: lua-cjson's tokens and messages
local TOKENS = {["{"] = "T_OBJ_BEGIN", ["}"] = "T_OBJ_END", ["["] = "T_ARR_BEGIN", ["]"] = "T_ARR_END",
                [":"] = "T_COLON", [","] = "T_COMMA"}
local UNESC = {['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t"}

local function utf8(cp)
  if cp < 0x80 then return _char(cp) end
  if cp < 0x800 then return _char(0xC0 + _floor(cp / 64), 0x80 + cp % 64) end
  if cp < 0x10000 then
    return _char(0xE0 + _floor(cp / 4096), 0x80 + _floor(cp / 64) % 64, 0x80 + cp % 64)
  end
  return _char(0xF0 + _floor(cp / 262144), 0x80 + _floor(cp / 4096) % 64, 0x80 + _floor(cp / 64) % 64, 0x80 + cp % 64)
end

-- next token at pos: kind, value, start index (0-based as lua-cjson counts), next pos
local function next_token(s, pos)
  pos = _find(s, "[^ \t\n\r]", pos) or #s + 1
  local idx = pos - 1
  if pos > #s then return "T_END", nil, idx, pos end
  local c = _sub(s, pos, pos)
  if TOKENS[c] then return TOKENS[c], nil, idx, pos + 1 end
  if c == '"' then
    local parts, i = {}, pos + 1
    while true do
      local j = _find(s, '["\\]', i)
      if not j then return "T_ERROR", "unexpected end of string", #s, #s + 1 end
      parts[#parts + 1] = _sub(s, i, j - 1)
      if _sub(s, j, j) == '"' then return "T_STRING", _concat(parts), idx, j + 1 end
      local e = _sub(s, j + 1, j + 1)
      if e == "u" then
        local hex = _match(s, "^%x%x%x%x", j + 2)
        if not hex then return "T_ERROR", "invalid unicode escape code", j - 1, j end
        local cp = _tonumber(hex, 16)
        i = j + 6
        if cp >= 0xD800 and cp <= 0xDBFF then
          local lo = _match(s, "^\\u(%x%x%x%x)", i)
          local lv = lo and _tonumber(lo, 16)
          if not lv or lv < 0xDC00 or lv > 0xDFFF then return "T_ERROR", "invalid unicode escape code", j - 1, j end
          cp = 0x10000 + (cp - 0xD800) * 1024 + (lv - 0xDC00)
          i = i + 6
        elseif cp >= 0xDC00 and cp <= 0xDFFF then
          return "T_ERROR", "invalid unicode escape code", j - 1, j
        end
        parts[#parts + 1] = utf8(cp)
      elseif UNESC[e] then
        parts[#parts + 1] = UNESC[e]
        i = j + 2
      else
        return "T_ERROR", "invalid escape code", j - 1, j
      end
    end
  end
  for word, kind in _next, {["true"] = "T_BOOLEAN", ["false"] = "T_BOOLEAN", null = "T_NULL"} do
    if _sub(s, pos, pos + #word - 1) == word then
      return kind, word == "true", idx, pos + #word
    end
  end
  if c == "-" or _find(c, "%d") or (cfg.decode_invalid and _find(c, "[iInN+]")) then
    local text = _match(s, "^[-+]?0[xX]%x+", pos)
    if not text and cfg.decode_invalid then
      local low = string.lower(_sub(s, pos, pos + 8))
      for _, w in ipairs({"-infinity", "+infinity", "infinity", "-inf", "+inf", "inf", "-nan", "+nan", "nan"}) do
        if _sub(low, 1, #w) == w then text = _sub(s, pos, pos + #w - 1); break end
      end
    end
    if not text then
      text = _match(s, "^[-+]?%d*%.?%d*", pos)
      if text == "" or text == "-" or text == "+" or text == "." or text == "-." or text == "+." then
        return "T_ERROR", "invalid number", idx, pos
      end
      local exp = _match(s, "^[eE][-+]?%d+", pos + #text)
      if exp then text = text .. exp end
    end
    local n = _tonumber(text)
    if n == nil then
      local l = string.lower(text)
      if _find(l, "nan") then n = 0 / 0 elseif _find(l, "^%-") then n = -huge else n = huge end
    end
    return "T_NUMBER", n, idx, pos + #text
  end
  return "T_ERROR", "invalid token", idx, pos
end

local function fail(what, kind, value, idx)
  local found = kind == "T_ERROR" and value or kind
  return _format("Expected %s but found %s at character %d", what, found, idx + 1)
end

local decode_value
local function decode_object(s, pos, depth)
  local t = {}
  local kind, value, idx
  kind, value, idx, pos = next_token(s, pos)
  if kind == "T_OBJ_END" then return t, pos end
  while true do
    if kind ~= "T_STRING" then return nil, fail("object key string", kind, value, idx) end
    local key = value
    kind, value, idx, pos = next_token(s, pos)
    if kind ~= "T_COLON" then return nil, fail("colon", kind, value, idx) end
    local v
    v, pos = decode_value(s, pos, depth)
    if v == nil then return nil, pos end
    _rawset(t, key, v)
    kind, value, idx, pos = next_token(s, pos)
    if kind == "T_OBJ_END" then return t, pos end
    if kind ~= "T_COMMA" then return nil, fail("comma or object end", kind, value, idx) end
    kind, value, idx, pos = next_token(s, pos)
  end
end

local function decode_array(s, pos, depth)
  local t = {}
  local kind, value, idx, npos = next_token(s, pos)
  if kind == "T_ARR_END" then return t, npos end
  local i = 1
  while true do
    local v
    v, pos = decode_value(s, pos, depth)
    if v == nil then return nil, pos end
    _rawset(t, i, v)
    i = i + 1
    kind, value, idx, pos = next_token(s, pos)
    if kind == "T_ARR_END" then return t, pos end
    if kind ~= "T_COMMA" then return nil, fail("comma or array end", kind, value, idx) end
  end
end

decode_value = function(s, pos, depth)
  local kind, value, idx, npos = next_token(s, pos)
  if kind == "T_STRING" or kind == "T_NUMBER" or kind == "T_BOOLEAN" then return value, npos end
  if kind == "T_NULL" then return null, npos end
  if kind == "T_OBJ_BEGIN" or kind == "T_ARR_BEGIN" then
    if depth + 1 > cfg.decode_max_depth then
      return nil, _format("Found too many nested data structures (%d) at character %d", depth + 1, idx + 1)
    end
    if kind == "T_OBJ_BEGIN" then return decode_object(s, npos, depth + 1) end
    return decode_array(s, npos, depth + 1)
  end
  return nil, fail("value", kind, value, idx)
end

cjson.decode = function(...)
  if _select("#", ...) ~= 1 then _error("bad argument #1 to 'decode' (expected 1 argument)", 2) end
  local s = ...
  if _type(s) ~= "string" and _type(s) ~= "number" then
    _error("bad argument #1 to 'decode' (string expected, got " .. _type(s) .. ")", 2)
  end
  s = _tostring(s)
  local v, pos = decode_value(s, 1, 0)
  if v == nil then _error(pos, 2) end
  local kind, value, idx = next_token(s, pos)
  if kind ~= "T_END" then _error(fail("the end", kind, value, idx), 2) end
  return v
end

local function intarg(fname, i, v, lo, hi)
  if v == nil then return nil end
  local n = _tonumber(v)
  if n == nil or n < lo or n > hi or _floor(n) ~= n then
    argerr(i, fname, _format("expected integer between %d and %d", lo, hi))
  end
  return n
end
local function boolarg(v, allow_null)
  if v == nil then return nil end
  if allow_null and v == "null" then return "null" end
  if v == "on" then return true elseif v == "off" then return false end
  return not not v
end
cjson.encode_keep_buffer = function(v)
  local b = boolarg(v); if b ~= nil then cfg.keep = b end
  return cfg.keep
end
cjson.encode_max_depth = function(v)
  cfg.max_depth = intarg("encode_max_depth", 1, v, 1, 2147483647) or cfg.max_depth
  return cfg.max_depth
end
cjson.decode_max_depth = function(v)
  cfg.decode_max_depth = intarg("decode_max_depth", 1, v, 1, 2147483647) or cfg.decode_max_depth
  return cfg.decode_max_depth
end
cjson.encode_number_precision = function(v)
  cfg.precision = intarg("encode_number_precision", 1, v, 1, 14) or cfg.precision
  return cfg.precision
end
cjson.encode_sparse_array = function(convert, ratio, safe)
  local b = boolarg(convert); if b ~= nil then cfg.sparse_convert = b end
  cfg.sparse_ratio = intarg("encode_sparse_array", 2, ratio, 0, 2147483647) or cfg.sparse_ratio
  cfg.sparse_safe = intarg("encode_sparse_array", 3, safe, 0, 2147483647) or cfg.sparse_safe
  return cfg.sparse_convert, cfg.sparse_ratio, cfg.sparse_safe
end
cjson.encode_invalid_numbers = function(v)
  local b = boolarg(v, true); if b ~= nil then cfg.encode_invalid = b end
  return cfg.encode_invalid
end
cjson.decode_invalid_numbers = function(v)
  local b = boolarg(v); if b ~= nil then cfg.decode_invalid = b end
  return cfg.decode_invalid
end

return {bit = bit, struct = struct, cmsgpack = cmsgpack, cjson = cjson}, reset
"""
