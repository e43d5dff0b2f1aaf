-- room_info: what the server knows of a room.
local hub = require "hub"
local validate = require "validate"

return function(conn, msg)
  local room = validate.room_id(msg)
  local info = hub.room_info(room)
  if not info then
    hub.fail("not_found", "no room '" .. room .. "'")
  end
  return info
end
