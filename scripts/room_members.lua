-- room_members: a page of a room's members, for members, sorted by id:
-- at most payload.limit (default 100, at most 1000) after payload.after
-- (a user id; none: from the first). next is the last id of the page when
-- more follow (the after of the next page), null otherwise. Each page
-- costs the same however big the room: the way through a room too big
-- for the join_room and room_info acks to list (--max-listed-members).
local hub = require "hub"
local validate = require "validate"

local DEFAULT_LIMIT, MAX_LIMIT = 100, 1000

return function(conn, msg)
  local room = validate.room_id(msg)
  local payload = validate.optional_payload(msg)
  local after = payload.after
  if after ~= nil then validate.user_id(after, "payload.after") end
  local limit = math.min(validate.count(payload.limit, "payload.limit", 1) or DEFAULT_LIMIT, MAX_LIMIT)
  -- One more than asked: whether another page follows.
  local ids = hub.room_members(room, { after = after, limit = limit + 1, member = conn.user })
  local next_id = hub.null
  if #ids > limit then
    ids[limit + 1] = nil
    next_id = ids[limit]
  end
  return { room_id = room, members = ids, next = next_id }
end
