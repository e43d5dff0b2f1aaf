local fakehub = require "fakehub"

describe("word filter hook", function()
  local hub, filter, conn

  before_each(function()
    hub = fakehub.new()
    conn = hub:connect("alice")
    filter = hub:load("examples/handlers/hooks/on_message.lua")
  end)

  it("lets clean messages and other types through", function()
    assert.is_true(filter(conn, { type = "chat", payload = { text = "hello there" } }))
    assert.is_true(filter(conn, { type = "typing", room_id = "r" }))
  end)

  it("masks blocked words, whole words only", function()
    local msg = filter(conn, { type = "chat", payload = { text = "well darn it, darned heck" } })
    assert.equal("well d*** it, darned h***", msg.payload.text)
  end)

  it("refuses a message of nothing but blocked words", function()
    local ok, err = pcall(filter, conn, { type = "chat", payload = { text = "darn heck" } })
    assert.is_false(ok)
    assert.equal("forbidden", err.code)
  end)
end)
