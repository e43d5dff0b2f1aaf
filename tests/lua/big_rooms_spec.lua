-- Big rooms: --max-listed-members (the kit's opts.max_listed_members) in
-- join_room, leave_room, room_info and a closing connection, and the
-- room_members handler.
local fakehub = require "fakehub"

describe("big rooms", function()
  local hub, join, leave, info, members

  -- Connects each user and has it join room r; returns the connections.
  local function fill(...)
    local conns = {}
    for i, u in ipairs({ ... }) do
      conns[i] = hub:connect(u)
      hub:run(join, conns[i], { type = "join_room", room_id = "r" })
    end
    return conns
  end

  before_each(function()
    hub = fakehub.new({ max_listed_members = 2 })
    join = hub:load("scripts/join_room.lua")
    leave = hub:load("scripts/leave_room.lua")
    info = hub:load("scripts/room_info.lua")
    members = hub:load("scripts/room_members.lua")
  end)

  it("gives scripts the limit in hub.limits", function()
    assert.equal(2, hub.hub.limits.max_listed_members)
    assert.equal(1000, fakehub.new().hub.limits.max_listed_members)
  end)

  it("lists members in the join ack up to the limit, counts them always", function()
    local c = fill("bob", "amy")
    local ack = hub:run(join, c[1], { type = "join_room", id = 1, room_id = "r" })
    assert.same({ "amy", "bob" }, ack.members)
    assert.equal(2, ack.member_count)
    local cy = hub:connect("cy")
    ack = hub:run(join, cy, { type = "join_room", id = 2, room_id = "r" })
    assert.equal(3, ack.member_count)
    assert.is_nil(ack.members)
    local i = hub:run(info, cy, { type = "room_info", id = 3, room_id = "r" })
    assert.equal(3, i.member_count)
    assert.is_nil(i.members)
    assert.equal(0, i.seq)
  end)

  it("announces joins and leaves only in a room of at most the limit", function()
    local c = fill("a1", "a2")
    assert.equal(1, #hub:sent(c[1], "user_joined"))
    hub:clear()
    local a3 = fill("a3")[1]
    assert.equal(0, #hub:sent(c[1], "user_joined"))
    assert.equal(0, #hub:sent(c[2], "user_joined"))
    -- A room of 3 left: not told; of 2: told.
    hub:run(leave, a3, { type = "leave_room", room_id = "r" })
    assert.equal(0, #hub:sent(c[1], "user_left"))
    hub:run(leave, c[2], { type = "leave_room", room_id = "r" })
    assert.equal("a2", hub:sent(c[1], "user_left")[1].from)
  end)

  it("a closing connection is announced only in a room of at most the limit", function()
    local c = fill("b1", "b2", "b3")
    hub:clear()
    hub:disconnect(c[3])
    assert.equal(0, #hub:sent(c[1], "user_left"))
    hub:disconnect(c[2])
    assert.equal("b2", hub:sent(c[1], "user_left")[1].from)
  end)

  it("room_members pages in order with next", function()
    local c = fill("d", "b", "e", "a", "c")
    local p = hub:run(members, c[1], { type = "room_members", id = 1, room_id = "r", payload = { limit = 2 } })
    assert.same({ type = "ack", id = 1, room_id = "r", members = { "a", "b" }, next = "b" }, p)
    p = hub:run(members, c[1], { type = "room_members", id = 2, room_id = "r", payload = { after = "b", limit = 2 } })
    assert.same({ "c", "d" }, p.members)
    assert.equal("d", p.next)
    p = hub:run(members, c[1], { type = "room_members", id = 3, room_id = "r", payload = { after = "d", limit = 2 } })
    assert.same({ "e" }, p.members)
    assert.equal(hub.hub.null, p.next)
    local wire = hub:wire(c[1])
    assert.matches('"next":null', wire[#wire], 1, true)
  end)

  it("room_members defaults to 100 and caps at 1000", function()
    hub = fakehub.new({ max_listed_members = 2 })
    join = hub:load("scripts/join_room.lua")
    members = hub:load("scripts/room_members.lua")
    local ids = {}
    for i = 1, 1001 do ids[i] = string.format("u%04d", i) end
    local c = fill(unpack(ids))
    local p = hub:run(members, c[1], { type = "room_members", id = 1, room_id = "r" })
    assert.equal(100, #p.members)
    assert.equal("u0100", p.next)
    p = hub:run(members, c[1], { type = "room_members", id = 2, room_id = "r", payload = { limit = 100000 } })
    assert.equal(1000, #p.members)
    assert.equal("u1000", p.next)
  end)

  it("room_members is for members; bad payloads are bad_message", function()
    fill("m")
    local out = hub:connect("out")
    assert.equal("not_in_room", hub:run(members, out, { type = "room_members", id = 1, room_id = "r" }).code)
    assert.equal("not_in_room", hub:run(members, out, { type = "room_members", id = 2, room_id = "none" }).code)
    local m = hub:connect("m")
    for _, payload in ipairs({ { after = 5 }, { after = "a b" }, { limit = 0 }, { limit = 1.5 }, { limit = "x" } }) do
      local e = hub:run(members, m, { type = "room_members", id = 3, room_id = "r", payload = payload })
      assert.equal("bad_message", e.code)
    end
  end)
end)
