-- react: message reactions with per-message counts.
--   {"type":"react","room_id":"lobby","payload":{"seq":12,"emoji":"👍"}}
-- Every member gets {"type":"reaction","room_id":…,"from":…,
-- "payload":{"seq":12,"emoji":"👍","count":3}}. Counts live in the room's
-- hub.store scope: they survive reloads and go away with the room.
local hub = require "hub"

return function(conn, msg)
  local room = msg.room_id
  if type(room) ~= "string" or not hub.is_member(room, conn.user) then
    hub.fail("not_in_room", "react in a room you are in")
  end
  local p = msg.payload or {}
  if type(p.seq) ~= "number" or p.seq < 1 or p.seq % 1 ~= 0 then
    hub.fail("bad_message", "payload.seq must be a message's seq")
  end
  if p.seq > hub.room_info(room).seq then
    hub.fail("not_found", "no message " .. p.seq .. " in this room")
  end
  if type(p.emoji) ~= "string" or #p.emoji == 0 or #p.emoji > 16 then
    hub.fail("bad_message", "payload.emoji must be a short string")
  end
  local store = hub.store.room(room)
  -- One reaction per user per message and emoji.
  local who = "by:" .. p.seq .. ":" .. p.emoji .. ":" .. conn.user
  if store.get(who) then
    return { count = store.get("n:" .. p.seq .. ":" .. p.emoji) }
  end
  store.set(who, true)
  local count = store.incr("n:" .. p.seq .. ":" .. p.emoji)
  hub.send_room(room, {
    type = "reaction", room_id = room, from = conn.user, timestamp = hub.now(),
    payload = { seq = p.seq, emoji = p.emoji, count = count },
  })
  return { count = count }
end
