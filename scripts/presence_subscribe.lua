-- presence_subscribe: this connection hears every later status change of
-- the listed users; the ack carries their statuses now.
local hub = require "hub"
local validate = require "validate"

local MAX = 1000

return function(conn, msg)
  local payload = validate.payload(msg)
  local ids = payload.user_ids
  if type(ids) ~= "table" or getmetatable(ids) ~= hub.array_mt then
    hub.fail("bad_message", "payload.user_ids must be an array of user ids")
  end
  if #ids > MAX then
    hub.fail("bad_message", "payload.user_ids may hold at most " .. MAX .. " ids")
  end
  for _, u in ipairs(ids) do
    validate.user_id(u, "each of payload.user_ids")
  end
  return { statuses = hub.presence_subscribe(conn.id, ids) }
end
