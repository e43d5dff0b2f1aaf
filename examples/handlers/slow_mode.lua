-- slow_mode: turns slow mode on or off for a room.
--   {"type":"slow_mode","room_id":"lobby","payload":{"seconds":10}}  (0: off)
-- Enforced by hooks/on_message.lua through lib/slowmode.lua. Copy all
-- three (slow_mode.lua, lib/slowmode.lua, hooks/on_message.lua) into
-- scripts/ and send SIGHUP.
local hub = require "hub"

return function(conn, msg)
  local room = msg.room_id
  if type(room) ~= "string" or not hub.is_member(room, conn.user) then
    hub.fail("not_in_room", "set slow mode in a room you are in")
  end
  local seconds = msg.payload and msg.payload.seconds
  if type(seconds) ~= "number" or seconds < 0 or seconds > 3600 then
    hub.fail("bad_message", "payload.seconds must be 0 to 3600")
  end
  hub.store.room(room).set("slow_mode", seconds > 0 and seconds or nil)
  hub.send_room(room, {
    type = "slow_mode", room_id = room, from = conn.user, timestamp = hub.now(),
    payload = { seconds = seconds },
  })
  return { seconds = seconds }
end
