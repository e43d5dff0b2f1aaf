-- validate.lua: checks shared by the shipped handlers. Each raises
-- bad_message with a sentence a client developer can act on.
-- The limits are the core's (hub.limits, hub.valid_user_id): written once,
-- in C.
local hub = require "hub"

local limits = hub.limits

local M = {}

local is_user_id = hub.valid_user_id
M.is_user_id = is_user_id

function M.room_id(msg)
  local r = msg.room_id
  if type(r) ~= "string" or r == "" then
    hub.fail("bad_message", "room_id is required")
  end
  if #r > limits.room_id_max then
    hub.fail("bad_message", "room_id must be at most " .. limits.room_id_max .. " bytes")
  end
  return r
end

function M.payload(msg)
  local p = msg.payload
  if type(p) ~= "table" or getmetatable(p) == hub.array_mt then
    hub.fail("bad_message", "payload must be an object")
  end
  return p
end

function M.user_id(s, what)
  if not is_user_id(s) then
    hub.fail("bad_message", (what or "user id") .. " must be 1 to " .. limits.user_id_max
      .. " of " .. limits.user_id_chars)
  end
  return s
end

-- The payload, or an empty table when the frame has none (a payload
-- whose fields are all optional).
function M.optional_payload(msg)
  if msg.payload == nil then return {} end
  return M.payload(msg)
end

-- nil, or a whole number from min (default 0) to 2^53, such as a seq.
function M.count(v, what, min)
  if v == nil then return nil end
  min = min or 0
  if type(v) ~= "number" or v ~= math.floor(v) or v < min or v > 2 ^ 53 then
    hub.fail("bad_message", what .. " must be a whole number from " .. min .. " to 2^53")
  end
  return v
end

-- A membership check that answers not_in_room.
function M.member(room, user)
  if not hub.is_member(room, user) then
    hub.fail("not_in_room", "you are not in room '" .. room .. "'")
  end
end

return M
