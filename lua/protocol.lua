-- protocol.lua: the pure-Lua part of the handler contract, used by the
-- runtime (which the test kit, lua/fakehub.lua, runs too).
--
-- It turns one handler call into the frame the client gets back: an ack
-- with the handler's fields merged in, an error with a protocol code, the
-- handler's own answer (hub.reply), or nothing at all.

local M = {}

-- JSON null, as the core's decoder produces it (the NULL light userdata,
-- the same value as cjson.null).
M.null = require("cjson").null

-- A table with this metatable encodes as a JSON array even when empty.
M.array_mt = { __name = "hub.array" }

function M.array(t)
  return setmetatable(t or {}, M.array_mt)
end

-- Returned by a handler that answered by itself (with hub.send).
M.NO_ACK = setmetatable({}, { __tostring = function() return "hub.NO_ACK" end })

-- The metatables of replies and of protocol errors are protected: a
-- script that gets hold of one cannot reach a metatable every script's
-- replies or errors share. The runtime still tells them
-- by their metatable, read past the protection with debug.getmetatable.
-- (A copy of this module a script requires has no debug library, and
-- knows neither.)
local metatable_of = debug and debug.getmetatable or getmetatable
local reply_mt = { __metatable = false }

-- Returned by a handler whose answer is not an ack (ping answers with
-- pong): the client gets {type = type_name, id = <the frame's id>} with
-- fields merged in, also when the frame had no id. The runtime writes the
-- id as the client wrote it, which a handler cannot do with hub.send.
function M.reply(type_name, fields)
  if type(type_name) ~= "string" then
    error("bad argument #1 to 'reply' (string expected, got " .. type(type_name) .. ")", 2)
  end
  if fields ~= nil and type(fields) ~= "table" then
    error("bad argument #2 to 'reply' (table expected, got " .. type(fields) .. ")", 2)
  end
  return setmetatable({ type = type_name, fields = fields }, reply_mt)
end

local fail_mt = {
  __tostring = function(e) return e.code .. ": " .. e.message end,
  __metatable = false,
}

-- Raises a protocol error: the client gets {"type":"error","code":code,...}.
function M.fail(code, message)
  error(setmetatable({ code = tostring(code), message = tostring(message or code) }, fail_mt), 0)
end

function M.is_fail(e)
  return metatable_of(e) == fail_mt
end

-- "scripts/chat.lua:12: boom" -> "boom": the client never sees file:line.
local function strip_position(s)
  return (s:gsub("^[^:\n]*:%d+: ", ""))
end

local function error_fields(code, message)
  return { code = code, message = message }
end

-- Runs handler(conn, msg) and says how the client is answered: the answer
-- frame's type and the fields that go into it beside type and id.
--   "ack", result      an ack with result's fields (a table, or nil), only
--                      when the frame has an id;
--   "error", {code=, message=}, logline
--                      an error; logline, when the handler failed, is for
--                      the server log (file:line);
--   type, fields       the handler's own answer (M.reply), id or not;
--   nil                nothing is sent (NO_ACK, or no id to ack).
-- The traceback argument, when given, is used as the xpcall message
-- handler (the server passes one that adds file:line of the failing frame).
function M.call(handler, conn, msg, traceback)
  local id = msg.id
  local ok, res = xpcall(handler, traceback or function(e) return e end, conn, msg)
  if not ok then
    if M.is_fail(res) then
      return "error", error_fields(res.code, res.message)
    end
    local text = type(res) == "string" and res or tostring(res)
    if text:match("^[^\n]*") == "not enough memory" then
      -- LuaJIT's out-of-memory error: the state hit --script-memory (or
      -- string.rep was asked for more than any string can hold; that
      -- error, raised from Lua, comes with a traceback).
      return "error", error_fields("handler_error", "out of memory"),
        "out of memory (the --script-memory cap)"
    end
    return "error", error_fields("handler_error", strip_position(text:match("^[^\n]*"))), text
  end
  if res == M.NO_ACK then
    return nil
  end
  if metatable_of(res) == reply_mt then
    return res.type, res.fields
  end
  if res ~= nil and type(res) ~= "table" then
    return "error", error_fields("handler_error", "handler returned a " .. type(res)),
      "handler returned a " .. type(res) .. " (expected a table or nil)"
  end
  if id == nil then
    return nil
  end
  return "ack", res
end

-- The answer frame of type type_name for id, with fields' members merged
-- in (type and id are the frame's own).
function M.answer(type_name, id, fields)
  local out = { type = type_name, id = id }
  if fields then
    for k, v in pairs(fields) do
      if k ~= "type" and k ~= "id" then
        out[k] = v
      end
    end
  end
  return out
end

-- M.call, with the answer built as a table: returns the reply table (or
-- nil when there is none to send) and the log line when the handler failed.
function M.run(handler, conn, msg, traceback)
  local id = msg.id
  local kind, v, logline = M.call(handler, conn, msg, traceback)
  if kind then
    return M.answer(kind, id, v), logline
  end
  return nil, logline
end

-- The function a named timer calls: name is "module.function", a function
-- of the module require_module(module) returns (a module of scripts/lib).
-- Returns it, or nil and why.
function M.timer_function(name, require_module)
  local module, fname = name:match("^([%w_%.]+)%.([%w_]+)$")
  if not module then
    return nil, "a timer's name is 'module.function' (a function of a module in scripts/lib), not '" .. name .. "'"
  end
  local ok, mod = pcall(require_module, module)
  if not ok then
    return nil, "timer '" .. name .. "': " .. tostring(mod)
  end
  local fn = type(mod) == "table" and mod[fname]
  if type(fn) ~= "function" then
    return nil, "timer '" .. name .. "': module '" .. module .. "' has no function '" .. fname .. "'"
  end
  return fn
end

return M
