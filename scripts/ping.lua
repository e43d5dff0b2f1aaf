-- ping: answered with a pong instead of an ack.
local hub = require "hub"

return function(conn, msg)
  hub.send(conn.id, { type = "pong", id = msg.id, timestamp = hub.now() })
  return hub.NO_ACK
end
