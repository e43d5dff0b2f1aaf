-- hub.lua: the `hub` module that handlers require.
--
--   local hub = require "hub"
--
-- Most functions are the core's own (hub.core, written in C); this file
-- adds the pure-Lua values of the handler contract (lua/protocol.lua) and
-- tells the core which metatable marks a JSON array and how a protocol
-- error is raised. docs/scripting.md is the reference.

local core = require "hub.core"
local protocol = require "protocol"

core.set_array_mt(protocol.array_mt)
core.set_fail(protocol.fail)

local hub = {}

for name, fn in pairs(core) do
  if type(fn) == "function" and not name:match("^set_") then
    hub[name] = fn
  end
end

hub.null = core.null
hub.array_mt = protocol.array_mt
hub.array = protocol.array
hub.NO_ACK = protocol.NO_ACK
hub.fail = protocol.fail

-- hub.log(level, fmt, ...): string.format-style; the log line names the
-- calling script and line.
function hub.log(level, fmt, ...)
  local msg = select("#", ...) > 0 and string.format(fmt, ...) or tostring(fmt)
  core.log(level, msg, 2)
end

return hub
