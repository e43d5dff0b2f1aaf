local fakehub = require "fakehub"

-- The example's modules live in examples/handlers/lib: the kit serves
-- examples/handlers, as the server would.

describe("moderation hook", function()
  local kit, hook, slow, alice, bob

  before_each(function()
    kit = fakehub.new({ scripts_dir = "examples/handlers" })
    alice, bob = kit:connect("alice"), kit:connect("bob")
    kit.hub.join("r", "alice")
    kit.hub.join("r", "bob")
    hook = kit:load("examples/handlers/hooks/on_message.lua")
    slow = kit:load("examples/handlers/slow_mode.lua")
  end)

  local function check(conn, text)
    return pcall(hook, conn, { type = "chat", room_id = "r", payload = { text = text } })
  end

  it("masks blocked words, whole words only", function()
    local ok, msg = check(alice, "well darn it, darned heck")
    assert.is_true(ok)
    assert.equal("well d*** it, darned h***", msg.payload.text)
  end)

  it("refuses a message of nothing but blocked words", function()
    local ok, err = check(alice, "darn heck")
    assert.is_false(ok)
    assert.equal("forbidden", err.code)
  end)

  it("lets other types through untouched", function()
    local msg = { type = "typing", room_id = "r" }
    assert.equal(msg, hook(alice, msg))
  end)

  it("slow mode: one message per user per interval", function()
    assert.same({ type = "ack", id = 1, seconds = 10 },
      kit:run(slow, alice, { type = "slow_mode", id = 1, room_id = "r", payload = { seconds = 10 } }))
    assert.is_true((check(alice, "one")))
    local ok, err = check(alice, "two")
    assert.is_false(ok)
    assert.equal("rate_limited", err.code)
    assert.is_true((check(bob, "bob may speak")))
    kit:advance(10000)
    assert.is_true((check(alice, "three")))
    kit:run(slow, alice, { type = "slow_mode", room_id = "r", payload = { seconds = 0 } })
    assert.is_true((check(alice, "four")))
    assert.is_true((check(alice, "five")))
  end)
end)
