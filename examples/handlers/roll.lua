-- roll: a dice command, "/roll 2d6" as a message type.
--   {"type":"roll","room_id":"lobby","payload":{"dice":"2d6"}}
-- The room sees {"type":"chat",…,"payload":{"text":"alice rolled 2d6: 3 + 5 = 8",
-- "dice":"2d6","rolls":[3,5],"total":8}} with a seq like any chat message.
local hub = require "hub"

return function(conn, msg)
  local room = msg.room_id
  if type(room) ~= "string" or not hub.is_member(room, conn.user) then
    hub.fail("not_in_room", "roll in a room you are in")
  end
  local dice = msg.payload and msg.payload.dice or "1d6"
  local n, sides = tostring(dice):match("^(%d+)d(%d+)$")
  n, sides = tonumber(n), tonumber(sides)
  if not n or n < 1 or n > 20 or sides < 2 or sides > 1000 then
    hub.fail("bad_message", "dice are NdM, with N from 1 to 20 and M from 2 to 1000")
  end
  local rolls, total = {}, 0
  for i = 1, n do
    rolls[i] = math.random(sides)
    total = total + rolls[i]
  end
  local text = string.format("%s rolled %s: %s = %d", conn.user, dice, table.concat(rolls, " + "), total)
  local seq = hub.publish(room, {
    type = "chat", from = conn.user, timestamp = hub.now(),
    payload = { text = text, dice = dice, rolls = hub.array(rolls), total = total },
  })
  return { seq = seq, rolls = hub.array(rolls), total = total }
end
