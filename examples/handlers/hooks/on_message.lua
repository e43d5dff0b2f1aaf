-- A moderation hook: runs before every handler. Copy it, with the modules
-- in lib/, into scripts/hooks/ and scripts/lib/, and send SIGHUP.
--   - lib/wordfilter.lua masks blocked words (forbidden if nothing else);
--   - lib/slowmode.lua enforces rooms' slow mode (rate_limited).
local wordfilter = require "wordfilter"
local slowmode = require "slowmode"

return function(conn, msg)
  slowmode.check(conn, msg)
  return wordfilter.filter(msg)
end
