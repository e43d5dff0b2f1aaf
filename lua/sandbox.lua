-- sandbox.lua: the environment each script runs in.
--
-- A handler (and every module it requires from scripts/lib/) gets its own
-- global table holding only safe things: the base functions that cannot
-- reach outside the state, copies of string, table, math, bit and
-- coroutine, a few clock functions of os, `hub`, `cjson` (the safe
-- variant: decode errors come back as nil, message), and a `require` that
-- finds modules in scripts/lib/ and lua/ only, loaded as text. There is no
-- io, no os.execute, no ffi, no debug, no package, no loading of bytecode,
-- and writing a global the script did not declare is an error that names
-- it. `--unsafe-lua` turns all of this off for owners who want ffi.
--
-- Nothing one script does reaches another's view. The only tables they
-- share are `hub` and what hangs off it (hub.store, hub.array_mt,
-- hub.NO_ACK), and those are frozen (M.freeze): a write raises an error
-- naming the field. Everything else a script can reach is its own: each
-- handler file gets its own instance of every module it requires (loaded
-- afresh for it, shared only with the modules that file requires) and its
-- own cjson, whose settings (cjson.encode_max_depth, ...) are per
-- instance.
local M = {}

local BASE = {
  "assert", "error", "ipairs", "next", "pairs", "pcall", "xpcall", "select",
  "tonumber", "tostring", "type", "unpack", "rawequal", "rawget", "rawset",
  "rawlen", "setmetatable", "getmetatable", "_VERSION",
}
local LIBS = { "string", "table", "math", "bit", "coroutine" }

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- Frozen tables: each maps to { name = "hub.store", fields = <its fields> }.
local frozen = setmetatable({}, { __mode = "k" })

local function read_only(f, k)
  return string.format("attempt to write %s.%s: %s is read-only", f.name, tostring(k), f.name)
end

-- Makes t read-only in place, and every table in its string-keyed fields
-- (named name.key in errors). t keeps its identity, so that comparisons
-- (getmetatable(list) == hub.array_mt) and the C side's references still
-- hold: its fields move to a table of their own, which t reads through
-- __index, and writing to t raises. A metatable t already had keeps its
-- metamethods. t's new metatable is protected, and the sandbox's rawset,
-- rawget, next, pairs, ipairs, setmetatable and table functions know
-- frozen tables; `#t` is 0 (LuaJIT's tables have no __len).
function M.freeze(t, name)
  if frozen[t] then return t end
  local fields = copy(t)
  for k in pairs(fields) do t[k] = nil end
  local mt = copy(getmetatable(t) or {})
  local f = { name = name, fields = fields }
  mt.__index = fields
  mt.__newindex = function(_, k) error(read_only(f, k), 2) end
  mt.__metatable = false
  setmetatable(t, mt)
  frozen[t] = f
  for k, v in pairs(fields) do
    if type(v) == "table" and type(k) == "string" then M.freeze(v, name .. "." .. k) end
  end
  return t
end

-- Lazy payloads (core/script_json.c): a client's payload reaches a
-- handler as an empty table that decodes itself into itself at its first
-- read or write (__index, __newindex), so that one passed on untouched is
-- sent as the client's text. What reads or writes raw, around those
-- metamethods, decodes it first here, so no script can tell: a table is
-- lazy while it is a key of lazy_raw (weak), and materialize(t) decodes
-- it. Set by the runtime (M.set_lazy) when the core has them.
local lazy_raw, materialize = {}, function(t) return t end

function M.set_lazy(raw, fn)
  lazy_raw, materialize = raw, fn
end

-- Decodes every lazy table reachable from v (for C code that walks
-- tables raw: cjson.encode), down to cjson's own nesting limit (past it
-- cjson refuses the value anyway).
local function unlazy(v, seen, depth)
  if type(v) ~= "table" or seen[v] or frozen[v] or depth > 1000 then return end
  seen[v] = true
  if lazy_raw[v] then materialize(v) end
  for k, x in next, v do
    unlazy(k, seen, depth + 1)
    unlazy(x, seen, depth + 1)
  end
end

function M.unlazy(v)
  unlazy(v, {}, 1)
  return v
end

-- The base and table functions that write or read raw, taught about
-- frozen tables (writes raise, reads see the fields; an iterator never
-- hands out the fields table itself) and lazy ones (decoded first).
local function frozen_aware(env)
  local function iterate(fields, step)
    local k
    return function()
      local v
      k, v = step(fields, k)
      return k, v
    end
  end
  local function inext(t, i)
    i = (i or 0) + 1
    local v = t[i]
    if v ~= nil then return i, v end
  end
  env.rawset = function(t, k, v)
    local f = frozen[t]
    if f then error(read_only(f, k), 2) end
    if lazy_raw[t] then materialize(t) end
    return rawset(t, k, v)
  end
  env.rawget = function(t, k)
    local f = frozen[t]
    if f then return f.fields[k] end
    if lazy_raw[t] then materialize(t) end
    return rawget(t, k)
  end
  env.next = function(t, k)
    local f = frozen[t]
    if f then return next(f.fields, k) end
    if lazy_raw[t] then materialize(t) end
    return next(t, k)
  end
  env.pairs = function(t)
    local f = frozen[t]
    if f then return iterate(f.fields, next) end
    if lazy_raw[t] then materialize(t) end
    return pairs(t)
  end
  env.getmetatable = function(t)
    if lazy_raw[t] then return nil end
    return getmetatable(t)
  end
  env.ipairs = function(t)
    local f = frozen[t]
    if f then return iterate(f.fields, inext) end
    return ipairs(t)
  end
  env.setmetatable = function(t, mt)
    local f = frozen[t]
    if f then error(f.name .. " is read-only: its metatable cannot change", 2) end
    if lazy_raw[t] then materialize(t) end
    return setmetatable(t, mt)
  end
  for _, name in ipairs({ "insert", "remove", "sort", "foreach", "foreachi" }) do
    local fn = table[name]
    local writes = name == "insert" or name == "remove" or name == "sort"
    env.table[name] = function(t, ...)
      local f = frozen[t]
      if f and writes then error(f.name .. " is read-only: table." .. name .. " cannot change it", 2) end
      if lazy_raw[t] then materialize(t) end
      return fn(t, ...)
    end
  end
end

-- load/loadstring that refuse bytecode and run in env.
local function text_loader(env)
  local function load_text(chunk, name, _, custom_env)
    if type(chunk) == "string" and chunk:byte(1) == 27 then
      return nil, "loading bytecode is not allowed"
    end
    local fn, err = load(chunk, name, "t")
    if not fn then return nil, err end
    return setfenv(fn, custom_env or env)
  end
  return load_text, function(s, name) return load_text(s, name) end
end

-- Returns a `new_env(name)` function for one Lua state: each call makes
-- the environment of one handler file, with a `require` of its own. search
-- is a list of "dir/?.lua" patterns for require; preload maps module names
-- to a function that returns the module for one handler file (called once
-- per file that requires it).
function M.new(search, preload, log)
  local make_env

  local function find(name)
    if not name:match("^[%w_%.]+$") then return nil end
    local rel = name:gsub("%.", "/")
    for _, pattern in ipairs(search) do
      local path = pattern:gsub("%?", rel)
      local f = io.open(path, "r")
      if f then
        f:close()
        return path
      end
    end
    return nil
  end

  -- The require of one handler file and of the modules it loads: a module
  -- is loaded once per handler file, so that what one script does to a
  -- module's tables stays in its own copy.
  local function new_require()
    local loaded, loading = {}, {}
    local function sandboxed_require(name)
      if type(name) ~= "string" then error("bad argument #1 to 'require' (string expected)", 2) end
      if loaded[name] ~= nil then return loaded[name] end
      if preload[name] then
        loaded[name] = preload[name]()
        return loaded[name]
      end
      if loading[name] then error("require loop on module '" .. name .. "'", 2) end
      local path = find(name)
      if not path then
        error("module '" .. name .. "' not found in scripts/lib or lua (the sandbox allows no other modules)", 2)
      end
      local chunk, err = loadfile(path, "t")
      if not chunk then error(err, 0) end
      setfenv(chunk, make_env(path, sandboxed_require))
      loading[name] = true
      local ok, result = pcall(chunk, name)
      loading[name] = nil
      if not ok then error(result, 0) end
      if result == nil then result = true end
      loaded[name] = result
      return result
    end
    return sandboxed_require
  end

  function make_env(name, require)
    local env = {}
    for _, k in ipairs(BASE) do env[k] = _G[k] end
    for _, k in ipairs(LIBS) do env[k] = copy(_G[k]) end
    env.string.dump = nil
    frozen_aware(env)
    env.os = { time = os.time, clock = os.clock, date = os.date, difftime = os.difftime }
    env.load, env.loadstring = text_loader(env)
    env.require = require
    env.print = function(...)
      local parts = {}
      for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
      log(table.concat(parts, "\t"))
    end
    env._G = env
    return setmetatable(env, {
      __newindex = function(_, k)
        error("assignment to undeclared global '" .. tostring(k) .. "' (declare it local)", 2)
      end,
      __metatable = false,
    })
  end

  -- One shared metatable for all strings: scripts must not change it under
  -- each other's feet.
  local smt = getmetatable("")
  if smt then smt.__metatable = false end

  return function(name) return make_env(name, new_require()) end
end

-- LuaJIT's string.rep takes its count as a 32-bit integer: a count of 2^31
-- or more wraps to a negative one, and the result is "" where it should be
-- out of memory. This version raises LuaJIT's own out-of-memory error for
-- such counts (no string can be that long). Installed in the state's
-- string table, which the string metatable's __index is too, so that
-- ("x"):rep(n) gets it as well. Once per state: the test kit starts many
-- runtimes in one state, and a second call leaves the first fix alone.
local fixed_rep
function M.fix_string_rep()
  if string.rep == fixed_rep then return end
  local rep = string.rep
  fixed_rep = function(s, n, sep)
    local count = tonumber(n)
    if count and count >= 2147483648 and (s ~= "" or (sep ~= nil and sep ~= "")) then
      error("not enough memory", 0)
    end
    return rep(s, n, sep)
  end
  string.rep = fixed_rep
end

return M
