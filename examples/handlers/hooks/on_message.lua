-- A word filter, as an on_message hook: it runs before every handler.
-- Copy to scripts/hooks/on_message.lua and send SIGHUP.
--
-- A chat whose text contains a blocked word is masked ("darn" -> "d***");
-- one that is nothing but blocked words is refused with `forbidden`.
local hub = require "hub"

local BLOCKED = { "darn", "heck", "drat" }

local function mask(text)
  local changed = false
  for _, word in ipairs(BLOCKED) do
    text = text:gsub("%f[%a]" .. word .. "%f[%A]", function(w)
      changed = true
      return w:sub(1, 1) .. ("*"):rep(#w - 1)
    end)
  end
  return text, changed
end

return function(conn, msg)
  if msg.type ~= "chat" or type(msg.payload) ~= "table" or type(msg.payload.text) ~= "string" then
    return true
  end
  local text, changed = mask(msg.payload.text)
  if not changed then return true end
  if not text:find("[%w]") or not text:gsub("%a%*+", ""):find("%w") then
    hub.fail("forbidden", "that message is all blocked words")
  end
  msg.payload.text = text
  return msg
end
