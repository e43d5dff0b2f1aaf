-- typing: an ephemeral hint to the other members; never echoed to the
-- sender's own connections, never sequenced, never kept, and the first
-- thing a member that falls behind loses (ephemeral = true).
local hub = require "hub"
local validate = require "validate"

return function(conn, msg)
  local room = validate.room_id(msg)
  validate.member(room, conn.user)
  hub.send_room(room, {
    type = "typing", room_id = room, from = conn.user, timestamp = hub.now(),
  }, { except_user = conn.user, ephemeral = true })
end
