-- hub.lua: the pure-Lua part of the `hub` table that handlers require.
--
--   local hub = require "hub"
--
-- The core builds `hub` in C, one injector per area (core/script_api.c and
-- its siblings: sending, rooms, presence, connections, timers, JSON,
-- hub.limits). The runtime runs this chunk once per state with that table,
-- the runtime's private functions (`core`, which no script can reach) and
-- lua/protocol.lua; it adds the values of the handler contract, hub.store
-- and hub.log, and tells the core which metatable marks a JSON array and
-- how a protocol error is raised. The runtime then freezes `hub`.
-- docs/scripting.md is the reference.

local hub, core, protocol = ...

core.set_array_mt(protocol.array_mt)
core.set_fail(protocol.fail)

-- The functions that may wait for the host (a cluster's round trip). Each
-- C function answers at once, or returns core.WAIT when the host will
-- answer later: its wrapper then yields the call's coroutine (the
-- runtime's, lua/runtime.lua) and, once resumed, has core.reply push the
-- reply with the function's own arguments, as the function would have
-- pushed it at once (raising what it raises); core.reply answers WAIT
-- again to a resume that did not come with the reply (a script's own
-- coroutine.resume of the call's coroutine), and the call waits on. One wrapper, made from one
-- template per function so that an argument error still names the
-- function ("bad argument #1 to 'publish'"). hub.join and hub.leave give
-- two results (the room's member count after the call), the others one.
local WAITING = {
  hub = { "send", "send_user", "send_users", "send_room", "broadcast", "publish",
    "join", "leave", "is_member", "room_info", "history", "room_members", "user_rooms",
    "online_users", "user_connections", "presence_get", "presence_set",
    "presence_subscribe" },
  core = { "store_get", "store_set", "store_delete" },
}
local TEMPLATE = [[
local fns, WAIT, yield, reply = ...
return function(...)
  local r = fns.NAME(...)
  while r == WAIT do
    yield(WAIT)
    r = reply(...)
  end
  return r
end
]]
local TEMPLATE2 = [[
local fns, WAIT, yield, reply = ...
return function(...)
  local r, n = fns.NAME(...)
  while r == WAIT do
    yield(WAIT)
    r, n = reply(...)
  end
  return r, n
end
]]
local TWO = { join = true, leave = true }
for where, names in pairs(WAITING) do
  local t = where == "hub" and hub or core
  local fns = {}
  for _, name in ipairs(names) do
    fns[name] = t[name]
    local make = assert(loadstring((TWO[name] and TEMPLATE2 or TEMPLATE):gsub("NAME", name),
      "=hub." .. name))
    t[name] = make(fns, core.WAIT, coroutine.yield, core.reply)
  end
end

hub.array_mt = protocol.array_mt
hub.array = protocol.array
hub.NO_ACK = protocol.NO_ACK
hub.reply = protocol.reply
hub.fail = protocol.fail

-- hub.store: state that outlives reloads, kept in C. hub.store itself is
-- the global scope; hub.store.room(id) and hub.store.user(id) are scopes
-- dropped when the room is deleted or the user's last connection closes.
local function scope(kind, name)
  local s = {}
  function s.get(key) return core.store_get(kind, name, key) end
  function s.set(key, value) core.store_set(kind, name, key, value) end
  function s.delete(key) return core.store_delete(kind, name, key) end
  -- Adds n (default 1) to a number stored at key (0 when absent).
  function s.incr(key, n)
    local v = (core.store_get(kind, name, key) or 0) + (n or 1)
    core.store_set(kind, name, key, v)
    return v
  end
  return s
end
hub.store = scope("global", "")
function hub.store.room(id) return scope("room", id) end
function hub.store.user(id) return scope("user", id) end

-- hub.log(level, fmt, ...): string.format-style; the log line names the
-- calling script and line.
function hub.log(level, fmt, ...)
  local msg = select("#", ...) > 0 and string.format(fmt, ...) or tostring(fmt)
  core.log(level, msg, 2)
end

return hub
