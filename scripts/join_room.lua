-- join_room: membership belongs to the user (every connection of theirs,
-- present and future, gets the room's frames).
local hub = require "hub"
local validate = require "validate"

return function(conn, msg)
  local room = validate.room_id(msg)
  if hub.join(room, conn.user) then
    hub.send_room(room, {
      type = "user_joined", room_id = room, from = conn.user, timestamp = hub.now(),
    }, { except_user = conn.user })
  end
  local info = hub.room_info(room)
  return { room_id = room, members = info.members, seq = info.seq }
end
