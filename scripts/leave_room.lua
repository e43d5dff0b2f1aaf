-- leave_room: ends the user's membership; the others are told, in a room
-- that had at most --max-listed-members (the user included), as a join
-- into it would have been announced.
local hub = require "hub"
local validate = require "validate"

return function(conn, msg)
  local room = validate.room_id(msg)
  local left, count = hub.leave(room, conn.user)
  if not left then
    hub.fail("not_in_room", "you are not in room '" .. room .. "'")
  end
  if count < hub.limits.max_listed_members then
    hub.send_room(room, {
      type = "user_left", room_id = room, from = conn.user, timestamp = hub.now(),
    })
  end
  return { room_id = room }
end
