-- join_room: membership belongs to the user (every connection of theirs,
-- present and future, gets the room's frames). With payload.since (and
-- payload.epoch), the ack also carries what the room published after
-- since: recovery after a reconnect.
--
-- Big rooms: the ack always carries member_count, and members only while
-- the room has at most --max-listed-members (hub.limits.max_listed_members);
-- the others hear of the join (user_joined) only in such a room too. So a
-- join into a room of 100,000 costs what a join into a room of 1,000 does
-- (room_members pages through any room).
local hub = require "hub"
local validate = require "validate"

return function(conn, msg)
  local room = validate.room_id(msg)
  local payload = validate.optional_payload(msg)
  local since, epoch = validate.count(payload.since, "payload.since"), payload.epoch
  if epoch ~= nil and type(epoch) ~= "string" then
    hub.fail("bad_message", "payload.epoch must be a string")
  end
  local joined, count = hub.join(room, conn.user)
  if joined and count <= hub.limits.max_listed_members then
    hub.send_room(room, {
      type = "user_joined", room_id = room, from = conn.user, timestamp = hub.now(),
    }, { except_user = conn.user })
  end
  local info = hub.room_info(room)
  local ack = {
    room_id = room, member_count = info.member_count, members = info.members,
    seq = info.seq, epoch = info.epoch,
  }
  if since ~= nil then
    -- The seq, the frames and the membership of one moment (one look-up
    -- in the core): the member gets every frame after h.seq live. The
    -- frames go into the ack as they were delivered (raw), untouched.
    -- The client's epoch lets the core see a since past the room's seq in
    -- that epoch (a store that lost writes): the room then gets a new one.
    local h = hub.history(room, { since = since, member = conn.user, raw = true, epoch = epoch })
    ack.seq, ack.epoch, ack.messages = h.seq, h.epoch, h.messages
    -- The kept frames run without a gap up to h.seq: all of since+1 ..
    -- h.seq are there when there are that many.
    ack.recovered = epoch == h.epoch and since <= h.seq and #h.messages == h.seq - since
  end
  return ack
end
