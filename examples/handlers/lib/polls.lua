-- polls: the state of room polls (see poll.lua), kept in the room's
-- hub.store scope so that it survives reloads and goes away with the room.
local hub = require "hub"

local M = {}

function M.open(room, user, question, options)
  local store = hub.store.room(room)
  local id = store.incr("poll:last")
  local votes = {}
  for i = 1, #options do votes[i] = 0 end
  store.set("poll:" .. id, { question = question, options = options, votes = votes, by = {} })
  hub.send_room(room, {
    type = "poll", room_id = room, from = user, timestamp = hub.now(),
    payload = { poll = id, question = question, options = options },
  })
  return id
end

function M.vote(room, user, id, option)
  local store = hub.store.room(room)
  local poll = store.get("poll:" .. tostring(id))
  if not poll then hub.fail("not_found", "no open poll " .. tostring(id)) end
  if type(option) ~= "number" or not poll.votes[option] then
    hub.fail("bad_message", "payload.vote must be an option's number, 1 to " .. #poll.options)
  end
  local before = poll.by[user]
  if before then poll.votes[before] = poll.votes[before] - 1 end
  poll.votes[option] = poll.votes[option] + 1
  poll.by[user] = option
  store.set("poll:" .. id, poll)
  return poll.votes
end

-- The timer's function: hub.after(ms, "polls.close", { room =, poll = }).
function M.close(arg)
  if not hub.room_info(arg.room) then return end -- the room is gone
  local store = hub.store.room(arg.room)
  local poll = store.get("poll:" .. arg.poll)
  if not poll then return end
  store.delete("poll:" .. arg.poll)
  hub.send_room(arg.room, {
    type = "poll_closed", room_id = arg.room, timestamp = hub.now(),
    payload = { poll = arg.poll, question = poll.question, options = poll.options, votes = poll.votes },
  })
end

return M
