-- history: a page of a room's kept chat messages, for members: with
-- payload.since the first payload.limit after that seq, without it the
-- newest; limit 50 by default, at most --history-size (what a room keeps).
local hub = require "hub"
local validate = require "validate"

local DEFAULT_LIMIT = 50

return function(conn, msg)
  local room = validate.room_id(msg)
  local since, limit
  if msg.payload ~= nil then
    local payload = validate.payload(msg)
    if payload.since ~= nil then since = validate.count(payload.since, "payload.since") end
    if payload.limit ~= nil then limit = validate.count(payload.limit, "payload.limit", 1) end
  end
  local h = hub.history(room, {
    since = since, limit = limit or DEFAULT_LIMIT, member = conn.user, raw = true,
  })
  return { room_id = room, epoch = h.epoch, seq = h.seq, messages = h.messages }
end
