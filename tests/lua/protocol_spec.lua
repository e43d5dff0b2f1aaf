-- lua/protocol.lua: how a handler's result becomes the client's reply.
local protocol = require "protocol"

describe("protocol.run", function()
  local conn = { id = "1", user = "alice" }

  it("merges a returned table into the ack, keeping type and id", function()
    local r = protocol.run(function() return { x = 1, type = "nope", id = 99 } end, conn, { id = 5 })
    assert.same({ type = "ack", id = 5, x = 1 }, r)
  end)

  it("acks nil as an empty ack", function()
    assert.same({ type = "ack", id = "a" }, protocol.run(function() end, conn, { id = "a" }))
  end)

  it("sends no ack for a frame without id", function()
    assert.is_nil(protocol.run(function() return { x = 1 } end, conn, {}))
  end)

  it("sends nothing for NO_ACK", function()
    assert.is_nil(protocol.run(function() return protocol.NO_ACK end, conn, { id = 1 }))
  end)

  it("turns hub.fail into its code", function()
    local r = protocol.run(function() protocol.fail("forbidden", "no") end, conn, { id = 1 })
    assert.same({ type = "error", id = 1, code = "forbidden", message = "no" }, r)
  end)

  it("turns other errors into handler_error without file or line", function()
    local r, log = protocol.run(function() error("boom") end, conn, { id = 1 })
    assert.equal("handler_error", r.code)
    assert.equal("boom", r.message)
    assert.matches("boom", log)
  end)

  it("errors without id still answer", function()
    local r = protocol.run(function() error({}) end, conn, {})
    assert.equal("handler_error", r.code)
    assert.is_nil(r.id)
  end)

  it("answers hub.reply with its own type, id or not", function()
    local pong = function() return protocol.reply("pong", { t = 1, id = 9, type = "x" }) end
    assert.same({ type = "pong", id = 5, t = 1 }, protocol.run(pong, conn, { id = 5 }))
    assert.same({ type = "pong", t = 1 }, protocol.run(pong, conn, {}))
    assert.has_error(function() protocol.reply(42) end)
  end)

  it("treats a junk return value as handler_error", function()
    for _, junk in ipairs({ 42, "str", true, print }) do
      local r = protocol.run(function() return junk end, conn, { id = 1 })
      assert.equal("handler_error", r.code)
    end
  end)
end)
