-- leave_room: ends the user's membership; the others are told.
local hub = require "hub"
local validate = require "validate"

return function(conn, msg)
  local room = validate.room_id(msg)
  if not hub.leave(room, conn.user) then
    hub.fail("not_in_room", "you are not in room '" .. room .. "'")
  end
  hub.send_room(room, {
    type = "user_left", room_id = room, from = conn.user, timestamp = hub.now(),
  })
  return { room_id = room }
end
