-- The test kit itself behaves like the core.
local fakehub = require "fakehub"

describe("fakehub", function()
  it("dispatches by type and answers unknown_type for a missing handler", function()
    local hub = fakehub.new()
    local a = hub:connect("a")
    assert.equal("pong", (function() hub:dispatch(a, { type = "ping", id = 1 }); return hub:sent(a)[1].type end)())
    assert.equal("unknown_type", hub:dispatch(a, { type = "nope", id = 2 }).code)
  end)

  it("encodes like the core: empty marked arrays, errors on functions", function()
    local hub = fakehub.new().hub
    assert.equal("[]", hub.encode(hub.array()))
    assert.equal("{}", hub.encode({}))
    assert.equal("[1,2]", hub.encode({ 1, 2 }))
    assert.has_error(function() hub.encode({ f = print }) end)
    assert.equal(hub.null, hub.decode("null"))
    assert.equal(hub.array_mt, getmetatable(hub.decode("[1]")))
  end)

  it("publish sends seq and room_id, leaves msg alone, counts the message", function()
    local kit = fakehub.new()
    local hub = kit.hub
    local a = kit:connect("a")
    hub.join("r", "a")
    local msg = { type = "x", seq = 99 }
    assert.equal(1, hub.publish("r", msg))
    assert.same({ type = "x", seq = 99 }, msg)
    assert.equal(1, hub.room_info("r").message_count)
    local sent = kit:sent(a, "x")
    assert.equal(1, #sent)
    assert.equal(1, sent[1].seq)
    assert.equal("r", sent[1].room_id)
    assert.has_error(function() hub.publish("nope", {}) end)
  end)

  it("join refuses users with no connection; presence_set refuses bad statuses", function()
    local hub = fakehub.new().hub
    assert.has_error(function() hub.join("r", "ghost") end)
    assert.has_error(function() hub.presence_set("ghost", "away") end)
  end)
end)
