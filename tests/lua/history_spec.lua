-- History and recovery in the test kit: hub.history, join_room with
-- since/epoch, and the history request, as the server keeps them.
local fakehub = require "fakehub"

describe("history", function()
  local kit, join, leave, chat, typing, history, alice, bob

  local function setup(opts)
    kit = fakehub.new(opts)
    join = kit:load("scripts/join_room.lua")
    leave = kit:load("scripts/leave_room.lua")
    chat = kit:load("scripts/chat.lua")
    typing = kit:load("scripts/typing.lua")
    history = kit:load("scripts/history.lua")
    alice = kit:connect("alice")
    bob = kit:connect("bob")
    kit:run(join, alice, { type = "join_room", id = 9, room_id = "r" })
    kit:run(join, bob, { type = "join_room", id = 9, room_id = "r" })
  end

  local function say(n)
    for i = 1, n do
      kit:run(chat, alice, { type = "chat", room_id = "r", payload = { n = i } })
    end
  end

  local function seqs(messages)
    local out = {}
    for i, m in ipairs(messages) do out[i] = m.seq end
    return out
  end

  before_each(function() setup() end)

  it("hub.history returns the frames decoded, so a handler can see who wrote each", function()
    say(3)
    local h = kit.hub.history("r", { since = 1 })
    assert.same({ 2, 3 }, seqs(h.messages))
    assert.equal("alice", h.messages[1].from)
    assert.equal(3, h.seq)
    assert.equal(kit.hub.room_info("r").epoch, h.epoch)
    assert.is_nil(kit.hub.history("nowhere"))
  end)

  it("raw frames are written into an answer as the very text delivered live", function()
    say(2)
    local live = {}
    for _, text in ipairs(kit:wire(bob)) do
      if text:find('"type":"chat"', 1, true) then live[#live + 1] = text end
    end
    local h = kit.hub.history("r", { raw = true })
    assert.equal(2, #h.messages)
    assert.equal("[" .. table.concat(live, ",") .. "]", kit.hub.encode(h.messages))
  end)

  it("join_room with since and the epoch recovers every frame after since", function()
    say(3)
    local epoch = kit.hub.room_info("r").epoch
    kit:run(leave, bob, { type = "leave_room", room_id = "r" })
    say(2)
    local ack = kit:run(join, bob, { type = "join_room", id = 1, room_id = "r", payload = { since = 3, epoch = epoch } })
    assert.is_true(ack.recovered)
    assert.same({ 4, 5 }, seqs(ack.messages))
    assert.equal(5, ack.seq)
    assert.equal(epoch, ack.epoch)
  end)

  it("a wrong epoch, or a since older than what is kept, is not recovered", function()
    setup({ history_size = 3 })
    say(5)
    local epoch = kit.hub.room_info("r").epoch
    local ack = kit:run(join, bob, { type = "join_room", id = 9, room_id = "r", payload = { since = 4, epoch = "old" } })
    assert.is_false(ack.recovered)
    assert.same({ 5 }, seqs(ack.messages))
    ack = kit:run(join, bob, { type = "join_room", id = 9, room_id = "r", payload = { since = 1, epoch = epoch } })
    assert.is_false(ack.recovered)
    assert.same({ 3, 4, 5 }, seqs(ack.messages))
    assert.equal("bad_message", kit:run(join, bob, { type = "join_room", id = 9, room_id = "r", payload = { since = -1 } }).code)
  end)

  it("keeps room chats only, and drops them after --history-ttl", function()
    setup({ history_ttl = 10 })
    say(1)
    kit:run(typing, alice, { type = "typing", room_id = "r" })
    assert.same({ 1 }, seqs(kit.hub.history("r").messages))
    kit:advance(10 * 1000)
    assert.same({}, seqs(kit.hub.history("r").messages))
    assert.equal(1, kit.hub.history("r").seq)
  end)

  it("a room left empty keeps its seq and history for --history-ttl, then comes back new", function()
    setup({ history_ttl = 10 })
    say(2)
    local epoch = kit.hub.room_info("r").epoch
    kit:run(leave, alice, { type = "leave_room", room_id = "r" })
    kit:run(leave, bob, { type = "leave_room", room_id = "r" })
    kit:advance(5 * 1000)
    local ack = kit:run(join, alice, { type = "join_room", id = 9, room_id = "r", payload = { since = 0, epoch = epoch } })
    assert.is_true(ack.recovered)
    assert.same({ 1, 2 }, seqs(ack.messages))
    kit:run(leave, alice, { type = "leave_room", room_id = "r" })
    kit:advance(10 * 1000)
    ack = kit:run(join, alice, { type = "join_room", id = 9, room_id = "r", payload = { since = 2, epoch = epoch } })
    assert.is_false(ack.recovered)
    assert.equal(0, ack.seq)
    assert.are_not.equal(epoch, ack.epoch)
  end)

  it("a restart gives every room a new epoch", function()
    say(2)
    local epoch = kit.hub.room_info("r").epoch
    kit:restart()
    local ack = kit:run(join, bob, { type = "join_room", id = 9, room_id = "r", payload = { since = 2, epoch = epoch } })
    assert.is_false(ack.recovered)
    assert.are_not.equal(epoch, ack.epoch)
  end)

  it("the history request pages forward with since, gives the newest without, members only", function()
    say(6)
    local ack = kit:run(history, bob, { type = "history", id = 1, room_id = "r", payload = { since = 2, limit = 3 } })
    assert.same({ 3, 4, 5 }, seqs(ack.messages))
    assert.equal("r", ack.room_id)
    assert.equal(6, ack.seq)
    assert.is_string(ack.epoch)
    ack = kit:run(history, bob, { type = "history", id = 9, room_id = "r", payload = { limit = 2 } })
    assert.same({ 5, 6 }, seqs(ack.messages))
    ack = kit:run(history, bob, { type = "history", id = 9, room_id = "r" })
    assert.same({ 1, 2, 3, 4, 5, 6 }, seqs(ack.messages))
    local eve = kit:connect("eve")
    assert.equal("not_in_room", kit:run(history, eve, { type = "history", id = 9, room_id = "r" }).code)
    assert.equal("bad_message", kit:run(history, bob, { type = "history", id = 9, room_id = "r", payload = { limit = 0 } }).code)
    assert.equal("bad_message", kit:run(history, bob, { type = "history", id = 9, room_id = "r", payload = { since = "x" } }).code)
  end)
end)
