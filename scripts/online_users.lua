-- online_users: every user with at least one connection, sorted.
local hub = require "hub"

return function(conn, msg)
  return { users = hub.online_users() }
end
