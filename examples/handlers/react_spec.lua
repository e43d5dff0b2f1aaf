local fakehub = require "fakehub"

describe("react", function()
  local hub, react, chat, alice, bob

  before_each(function()
    hub = fakehub.new()
    react = hub:load("examples/handlers/react.lua")
    chat = hub:load("scripts/chat.lua")
    alice, bob = hub:connect("alice"), hub:connect("bob")
    hub.hub.join("r", "alice")
    hub.hub.join("r", "bob")
    hub:run(chat, alice, { type = "chat", room_id = "r", payload = { text = "hi" } })
    hub:clear()
  end)

  it("counts reactions per message and emoji, once per user", function()
    local msg = { type = "react", id = 1, room_id = "r", payload = { seq = 1, emoji = "+1" } }
    assert.equal(1, hub:run(react, alice, msg).count)
    assert.equal(1, hub:run(react, alice, msg).count)
    assert.equal(2, hub:run(react, bob, msg).count)
    local seen = hub:sent(alice, "reaction")
    assert.equal(2, #seen)
    assert.same({ seq = 1, emoji = "+1", count = 2 }, seen[2].payload)
  end)

  it("refuses a message that does not exist yet", function()
    local err = hub:run(react, alice, { type = "react", id = 1, room_id = "r", payload = { seq = 9, emoji = "x" } })
    assert.equal("not_found", err.code)
  end)

  it("forgets the counts when the room goes away", function()
    hub:run(react, alice, { type = "react", room_id = "r", payload = { seq = 1, emoji = "x" } })
    hub.hub.leave("r", "alice")
    hub.hub.leave("r", "bob")
    assert.is_nil(hub.store.room.r)
  end)
end)
