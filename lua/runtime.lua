-- runtime.lua: loads the handlers and dispatches client messages to them.
--
-- The core (core/script.c) runs this file once per Lua state, with the
-- scripts directory and the sorted list of handler types found in it
-- (files <type>.lua). Loading is all or nothing: the first handler that
-- fails to load raises, with file:line, and the core keeps the previous
-- state in service. On success it returns { dispatch = fn, types = {...} }.

local scripts_dir, types = ...

local core = require "hub.core"
local hub = require "hub"
local protocol = require "protocol"

local handlers = {}

for _, t in ipairs(types) do
  local path = scripts_dir .. "/" .. t .. ".lua"
  -- Text only: precompiled bytecode can crash the VM.
  local chunk, err = loadfile(path, "t")
  if not chunk then
    -- Syntax errors name the file and line; some errors (bytecode refused)
    -- name nothing, so add the file.
    if not err:find(path, 1, true) then
      err = path .. ": " .. err
    end
    error(err, 0)
  end
  local ok, fn = xpcall(chunk, function(e)
    return type(e) == "string" and debug.traceback(e, 2) or e
  end)
  if not ok then
    error(tostring(fn), 0)
  end
  if type(fn) ~= "function" then
    error(path .. ": a handler must return a function (got " .. type(fn) .. ")", 0)
  end
  handlers[t] = fn
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
