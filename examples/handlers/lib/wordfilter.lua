-- wordfilter: masks blocked words in chat text ("darn" -> "d***"); a
-- message of nothing but blocked words is refused with `forbidden`.
local hub = require "hub"

local M = {}

M.BLOCKED = { "darn", "heck", "drat" }

local function mask(text)
  local changed = false
  for _, word in ipairs(M.BLOCKED) do
    text = text:gsub("%f[%a]" .. word .. "%f[%A]", function(w)
      changed = true
      return w:sub(1, 1) .. ("*"):rep(#w - 1)
    end)
  end
  return text, changed
end

-- For an on_message hook: returns the message, masked where needed.
function M.filter(msg)
  if msg.type ~= "chat" or type(msg.payload) ~= "table" or type(msg.payload.text) ~= "string" then
    return msg
  end
  local text, changed = mask(msg.payload.text)
  if changed and not text:gsub("%a%*+", ""):find("%w") then
    hub.fail("forbidden", "that message is all blocked words")
  end
  msg.payload.text = text
  return msg
end

return M
