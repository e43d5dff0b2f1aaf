-- runtime.lua: loads the handlers and dispatches client messages to them.
--
-- The core (core/script.c) runs this file once per Lua state, with the
-- scripts directory, the sorted list of handler types found in it (files
-- <type>.lua), the runtime directory, and whether the sandbox is lifted.
-- Loading is all or nothing: if any handler fails to load, this raises
-- with every failure (file:line each) and the core keeps the previous state
-- in service. On success it returns { dispatch = fn, types = {...} }.

local scripts_dir, types, lua_dir, unsafe = ...

local core = require "hub.core"
local hub = require "hub"
local protocol = require "protocol"

local new_env
if not unsafe then
  local search = { scripts_dir .. "/lib/?.lua", lua_dir .. "/?.lua" }
  local preload = { hub = hub, cjson = require "cjson.safe" }
  new_env = require("sandbox").new(search, preload, function(line)
    core.log("info", line, 3)
  end)
end

local handlers = {}
local failures = {}

local function load_handler(t)
  local path = scripts_dir .. "/" .. t .. ".lua"
  -- Text only: precompiled bytecode can crash the VM.
  local chunk, err = loadfile(path, "t")
  if not chunk then
    -- Syntax errors name the file and line; some errors (bytecode refused)
    -- name nothing, so add the file.
    if not err:find(path, 1, true) then
      err = path .. ": " .. err
    end
    return nil, err
  end
  if new_env then setfenv(chunk, new_env(path)) end
  local ok, fn = pcall(chunk)
  if not ok then
    return nil, tostring(fn)
  end
  if type(fn) ~= "function" then
    return nil, path .. ": a handler must return a function (got " .. type(fn) .. ")"
  end
  return fn
end

for _, t in ipairs(types) do
  local fn, err = load_handler(t)
  if fn then
    handlers[t] = fn
  else
    failures[#failures + 1] = err
  end
end
if #failures > 0 then
  error(table.concat(failures, "\n"), 0)
end

-- Adds the traceback to a runtime error so that the log shows file:line of
-- every frame; protocol errors (hub.fail) pass through untouched.
local function traceback(e)
  if type(e) == "string" then
    return debug.traceback(e, 2)
  end
  return e
end

local function dispatch(conn_id, user_id, type_name, msg)
  local handler = handlers[type_name]
  local reply, logline
  if handler then
    reply, logline = protocol.run(handler, { id = conn_id, user = user_id }, msg, traceback)
  else
    reply = {
      type = "error", id = msg.id, code = "unknown_type",
      message = "no handler for type '" .. type_name .. "'",
    }
  end
  if logline then
    core.log("error", string.format("handler %s failed conn=%s user=%s: %s",
      type_name, conn_id, user_id, logline), 0)
  end
  if reply then
    local ok, err = pcall(core.send, conn_id, reply)
    if not ok then
      core.log("error", string.format("handler %s reply cannot be sent conn=%s: %s",
        type_name, conn_id, tostring(err)), 0)
      core.send(conn_id, {
        type = "error", id = msg.id, code = "handler_error",
        message = "the handler's reply cannot be encoded as JSON",
      })
    end
  end
end

local loaded = {}
for _, t in ipairs(types) do
  loaded[#loaded + 1] = t
end

return { dispatch = dispatch, types = loaded, hub = hub }
