-- status_update: online, away, busy or offline; subscribers are told.
local hub = require "hub"
local validate = require "validate"

local allowed = { online = true, away = true, busy = true, offline = true }

return function(conn, msg)
  local payload = validate.payload(msg)
  local status = payload.status
  if type(status) ~= "string" or not allowed[status] then
    hub.fail("bad_message", "payload.status must be online, away, busy or offline")
  end
  hub.presence_set(conn.user, status)
  return { status = status }
end
