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

-- Returns a `new_env(name)` function for one Lua state. search is a list
-- of "dir/?.lua" patterns for require; preload maps module names to values.
function M.new(search, preload, log)
  local loaded = {}
  local loading = {}
  local new_env

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

  local function sandboxed_require(name)
    if type(name) ~= "string" then error("bad argument #1 to 'require' (string expected)", 2) end
    if preload[name] ~= nil then return preload[name] end
    if loaded[name] ~= nil then return loaded[name] end
    if loading[name] then error("require loop on module '" .. name .. "'", 2) end
    local path = find(name)
    if not path then
      error("module '" .. name .. "' not found in scripts/lib or lua (the sandbox allows no other modules)", 2)
    end
    local chunk, err = loadfile(path, "t")
    if not chunk then error(err, 0) end
    setfenv(chunk, new_env(path))
    loading[name] = true
    local ok, result = pcall(chunk, name)
    loading[name] = nil
    if not ok then error(result, 0) end
    if result == nil then result = true end
    loaded[name] = result
    return result
  end

  function new_env(name)
    local env = {}
    for _, k in ipairs(BASE) do env[k] = _G[k] end
    for _, k in ipairs(LIBS) do env[k] = copy(_G[k]) end
    env.string.dump = nil
    env.os = { time = os.time, clock = os.clock, date = os.date, difftime = os.difftime }
    env.load, env.loadstring = text_loader(env)
    env.require = sandboxed_require
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

  return new_env
end

-- LuaJIT's string.rep takes its count as a 32-bit integer: a count of 2^31
-- or more wraps to a negative one, and the result is "" where it should be
-- out of memory. This version raises LuaJIT's own out-of-memory error for
-- such counts (no string can be that long). Installed in the state's
-- string table, which the string metatable's __index is too, so that
-- ("x"):rep(n) gets it as well.
function M.fix_string_rep()
  local rep = string.rep
  string.rep = function(s, n, sep)
    local count = tonumber(n)
    if count and count >= 2147483648 and (s ~= "" or (sep ~= nil and sep ~= "")) then
      error("not enough memory", 0)
    end
    return rep(s, n, sep)
  end
end

return M
