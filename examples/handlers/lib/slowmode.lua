-- slowmode: one message per user per N seconds in rooms that turn it on.
-- The interval lives in the room's hub.store scope (set by slow_mode.lua),
-- and each user's last message time in the same scope, so both survive
-- reloads and vanish with the room.
local hub = require "hub"

local M = {}

-- For an on_message hook: raises rate_limited when conn's user spoke in
-- msg's room less than the room's interval ago.
function M.check(conn, msg)
  if msg.type ~= "chat" or type(msg.room_id) ~= "string" then return end
  if not hub.room_info(msg.room_id) then return end
  local store = hub.store.room(msg.room_id)
  local seconds = store.get("slow_mode")
  if not seconds then return end
  local now = hub.now()
  local last = store.get("last:" .. conn.user)
  if last and now - last < seconds * 1000 then
    local wait = math.ceil((seconds * 1000 - (now - last)) / 1000)
    hub.fail("rate_limited", string.format("slow mode: wait %d s", wait))
  end
  store.set("last:" .. conn.user, now)
end

return M
