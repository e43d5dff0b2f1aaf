-- The spec of the worked example: busted --lua=luajit examples/handlers
local fakehub = require "fakehub"

describe("shout", function()
  it("sends the room a message in capitals", function()
    local hub = fakehub.new()
    local alice, bob = hub:connect("alice"), hub:connect("bob")
    hub.hub.join("lobby", "alice")
    hub.hub.join("lobby", "bob")
    local shout = hub:load("examples/handlers/shout.lua")

    local ack = hub:run(shout, alice, { type = "shout", id = 1, room_id = "lobby", payload = { text = "hi" } })

    assert.same({ type = "ack", id = 1, seq = 1 }, ack)
    assert.equal("HI!", hub:sent(bob, "chat")[1].payload.text)
  end)

  it("refuses someone outside the room", function()
    local hub = fakehub.new()
    local eve = hub:connect("eve")
    local shout = hub:load("examples/handlers/shout.lua")
    local err = hub:run(shout, eve, { type = "shout", id = 1, room_id = "lobby", payload = { text = "x" } })
    assert.equal("not_in_room", err.code)
  end)
end)
