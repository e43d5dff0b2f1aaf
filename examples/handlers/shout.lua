-- shout: a room message in capitals. The worked example of
-- docs/scripting.md: copy it into scripts/, send SIGHUP, and clients can
-- send {"type":"shout","room_id":"lobby","payload":{"text":"hi"}}.
local hub = require "hub"

return function(conn, msg)
  local room = msg.room_id
  if type(room) ~= "string" or room == "" then
    hub.fail("bad_message", "room_id is required")
  end
  if not hub.is_member(room, conn.user) then
    hub.fail("not_in_room", "you are not in room '" .. room .. "'")
  end
  local text = msg.payload and msg.payload.text
  if type(text) ~= "string" then
    hub.fail("bad_message", "payload.text must be a string")
  end
  local seq = hub.publish(room, {
    type = "chat", from = conn.user, timestamp = hub.now(),
    payload = { text = text:upper() .. "!" },
  })
  return { seq = seq }
end
