-- poll: a room poll that closes by itself, even across a reload.
--   {"type":"poll","room_id":"lobby","payload":{"question":"Lunch?","options":["pizza","sushi"],"seconds":2}}
--     opens a poll: every member gets {"type":"poll","room_id":…,"from":…,
--     "payload":{"poll":1,"question":…,"options":[…]}}; the ack has "poll".
--   {"type":"poll","room_id":"lobby","payload":{"poll":1,"vote":2}}
--     votes for the second option (one vote per user; a new vote replaces it).
-- After `seconds` (default 60) the room gets {"type":"poll_closed",
-- "payload":{"poll":1,"question":…,"options":[…],"votes":[0,1]}}. The
-- timer is named ("polls.close", in lib/polls.lua) and the poll lives in
-- the room's hub.store scope, so an edit of these files (a --watch or
-- SIGHUP reload) does not stop the poll from closing.
local hub = require "hub"
local polls = require "polls"

return function(conn, msg)
  local room = msg.room_id
  if type(room) ~= "string" or not hub.is_member(room, conn.user) then
    hub.fail("not_in_room", "polls are for rooms you are in")
  end
  local p = msg.payload or {}
  if p.poll ~= nil then
    return { votes = polls.vote(room, conn.user, p.poll, p.vote) }
  end
  if type(p.question) ~= "string" or #p.question == 0 or #p.question > 200 then
    hub.fail("bad_message", "payload.question must be 1 to 200 characters")
  end
  if type(p.options) ~= "table" or #p.options < 2 or #p.options > 10 then
    hub.fail("bad_message", "payload.options must list 2 to 10 choices")
  end
  for _, o in ipairs(p.options) do
    if type(o) ~= "string" or #o == 0 or #o > 100 then
      hub.fail("bad_message", "each option must be 1 to 100 characters")
    end
  end
  local seconds = p.seconds or 60
  if type(seconds) ~= "number" or seconds < 1 or seconds > 86400 then
    hub.fail("bad_message", "payload.seconds must be 1 to 86400")
  end
  local id = polls.open(room, conn.user, p.question, p.options)
  -- Named, not a closure: the core keeps the name and the argument, and
  -- calls polls.close({ room = …, poll = … }) in whatever state then serves.
  hub.after(seconds * 1000, "polls.close", { room = room, poll = id })
  return { poll = id }
end
