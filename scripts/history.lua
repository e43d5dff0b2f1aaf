-- history: a page of a room's kept chat messages, for members: with
-- payload.since the first payload.limit after that seq, without it the
-- newest; limit 50 by default, at most --history-size (what a room keeps).
local hub = require "hub"
local validate = require "validate"

local DEFAULT_LIMIT = 50

return function(conn, msg)
  local room = validate.room_id(msg)
  local payload = validate.optional_payload(msg)
  local h = hub.history(room, {
    since = validate.count(payload.since, "payload.since"),
    limit = validate.count(payload.limit, "payload.limit", 1) or DEFAULT_LIMIT,
    member = conn.user, raw = true,
  })
  return { room_id = room, epoch = h.epoch, seq = h.seq, messages = h.messages }
end
