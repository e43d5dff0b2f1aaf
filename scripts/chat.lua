-- chat: a message to a room (with a per-room seq), to one user, or to a
-- list of users. The server stamps `from` and `timestamp`; nothing of the
-- client's beyond room_id, to and payload is passed on.
local hub = require "hub"
local validate = require "validate"

local function to_room(conn, msg, payload)
  local room = validate.room_id(msg)
  -- Only a member may publish (not_in_room otherwise): checked by
  -- hub.publish in the same look-up of the room that takes the seq.
  local seq = hub.publish(room, {
    type = "chat", from = conn.user, payload = payload, timestamp = hub.now(),
  }, conn.user)
  return { seq = seq }
end

local function to_users(conn, msg, payload)
  local targets = msg.to
  local unicast = type(targets) == "string"
  if unicast then
    targets = { targets }
  end
  if #targets == 0 then
    hub.fail("bad_message", "to must name at least one user")
  end
  if #targets > 1000 then
    hub.fail("bad_message", "to may name at most 1000 users")
  end
  for _, u in ipairs(targets) do
    validate.user_id(u, "each user in to")
  end
  if unicast and #hub.user_connections(targets[1]) == 0 then
    hub.fail("not_found", "user '" .. targets[1] .. "' is not connected")
  end
  local out = {
    type = "chat", from = conn.user, to = msg.to, payload = payload,
    timestamp = hub.now(),
  }
  -- Encoded once, sent twice: to the targets, and to the sender's other
  -- devices so that every screen of the sender shows the conversation.
  local frame = hub.encode(out)
  local delivered = hub.send_users(targets, frame, { except_conn = conn.id })
  local to_self = false
  for _, u in ipairs(targets) do
    if u == conn.user then to_self = true end
  end
  if not to_self then
    hub.send_user(conn.user, frame, { except_conn = conn.id })
  end
  return { delivered = delivered }
end

return function(conn, msg)
  local payload = validate.payload(msg)
  if msg.to ~= nil then
    return to_users(conn, msg, payload)
  end
  return to_room(conn, msg, payload)
end
