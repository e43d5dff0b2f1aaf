local fakehub = require "fakehub"

describe("roll", function()
  it("rolls NdM and tells the room", function()
    local hub = fakehub.new()
    local alice = hub:connect("alice")
    hub.hub.join("r", "alice")
    local roll = hub:load("examples/handlers/roll.lua")
    local ack = hub:run(roll, alice, { type = "roll", id = 1, room_id = "r", payload = { dice = "2d6" } })
    assert.equal(2, #ack.rolls)
    local sum = 0
    for _, v in ipairs(ack.rolls) do
      assert.is_true(v >= 1 and v <= 6)
      sum = sum + v
    end
    assert.equal(sum, ack.total)
    local m = hub:sent(alice, "chat")[1]
    assert.matches("alice rolled 2d6: ", m.payload.text)
    assert.equal(1, m.seq)
  end)

  it("refuses silly dice", function()
    local hub = fakehub.new()
    local alice = hub:connect("alice")
    hub.hub.join("r", "alice")
    local roll = hub:load("examples/handlers/roll.lua")
    for _, d in ipairs({ "0d6", "99d6", "2d1", "dice" }) do
      assert.equal("bad_message", hub:run(roll, alice, { type = "roll", id = 1, room_id = "r", payload = { dice = d } }).code)
    end
  end)
end)
