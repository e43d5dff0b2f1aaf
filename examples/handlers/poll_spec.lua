local fakehub = require "fakehub"

-- The example's module lives in examples/handlers/lib: the kit serves
-- examples/handlers, as the server would.

describe("poll", function()
  local kit, poll, alice, bob

  before_each(function()
    kit = fakehub.new({ scripts_dir = "examples/handlers" })
    alice, bob = kit:connect("alice"), kit:connect("bob")
    kit.hub.join("lobby", "alice")
    kit.hub.join("lobby", "bob")
    poll = kit:load("examples/handlers/poll.lua")
  end)

  it("opens a poll, counts one vote per user, and closes it after its seconds", function()
    local ack = kit:run(poll, alice, { type = "poll", id = 1, room_id = "lobby",
      payload = { question = "Lunch?", options = { "pizza", "sushi" }, seconds = 2 } })
    assert.same({ type = "ack", id = 1, poll = 1 }, ack)
    assert.equal("Lunch?", kit:sent(bob, "poll")[1].payload.question)
    kit:run(poll, bob, { type = "poll", room_id = "lobby", payload = { poll = 1, vote = 1 } })
    kit:run(poll, alice, { type = "poll", room_id = "lobby", payload = { poll = 1, vote = 1 } })
    local changed = kit:run(poll, alice, { type = "poll", id = 2, room_id = "lobby", payload = { poll = 1, vote = 2 } })
    assert.same({ 1, 1 }, changed.votes)

    kit:advance(1999)
    assert.equal(0, #kit:sent(bob, "poll_closed"))
    kit:advance(1)
    local closed = kit:sent(bob, "poll_closed")
    assert.equal(1, #closed)
    assert.same({ 1, 1 }, closed[1].payload.votes)
    assert.equal("not_found", kit:run(poll, bob, { type = "poll", room_id = "lobby", payload = { poll = 1, vote = 1 } }).code)
  end)

  it("still closes after a reload (a named timer, state in hub.store)", function()
    kit:run(poll, alice, { type = "poll", room_id = "lobby",
      payload = { question = "Tea?", options = { "yes", "no" }, seconds = 2 } })
    assert.equal(0, kit:reload())
    kit:advance(2000)
    assert.equal(1, #kit:sent(alice, "poll_closed"))
  end)

  it("refuses bad polls and non-members", function()
    assert.equal("bad_message", kit:run(poll, alice, { type = "poll", room_id = "lobby",
      payload = { question = "?", options = { "only one" } } }).code)
    local carol = kit:connect("carol")
    assert.equal("not_in_room", kit:run(poll, carol, { type = "poll", room_id = "lobby",
      payload = { question = "?", options = { "a", "b" } } }).code)
  end)
end)
