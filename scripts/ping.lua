-- ping: answered with a pong instead of an ack (with or without an id).
local hub = require "hub"

return function()
  return hub.reply("pong", { timestamp = hub.now() })
end
