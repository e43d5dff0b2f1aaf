-- status_update, presence_subscribe, online_users, ping.
local fakehub = require "fakehub"

describe("presence", function()
  local hub, status, subscribe, online, ping, alice, bob

  before_each(function()
    hub = fakehub.new()
    status = hub:load("scripts/status_update.lua")
    subscribe = hub:load("scripts/presence_subscribe.lua")
    online = hub:load("scripts/online_users.lua")
    ping = hub:load("scripts/ping.lua")
    alice = hub:connect("alice")
    bob = hub:connect("bob")
  end)

  it("subscribe acks current statuses, offline for unknown users", function()
    local ack = hub:run(subscribe, bob, { type = "presence_subscribe", id = 1, payload = { user_ids = { "alice", "zed" } } })
    assert.same({ alice = "online", zed = "offline" }, ack.statuses)
  end)

  it("subscribers hear every status change", function()
    hub:run(subscribe, bob, { type = "presence_subscribe", payload = { user_ids = { "alice" } } })
    hub:clear()
    assert.same({ type = "ack", id = 1, status = "away" },
      hub:run(status, alice, { type = "status_update", id = 1, payload = { status = "away" } }))
    local ev = hub:sent(bob, "presence")
    assert.equal(1, #ev)
    assert.same({ user_id = "alice", status = "away" }, ev[1].payload)
    hub:disconnect(alice)
    ev = hub:sent(bob, "presence")
    assert.same({ user_id = "alice", status = "offline" }, ev[2].payload)
  end)

  it("refuses a status outside online, away, busy, offline", function()
    assert.equal("bad_message", hub:run(status, alice, { type = "status_update", id = 1, payload = { status = "zzz" } }).code)
    assert.equal("bad_message", hub:run(status, alice, { type = "status_update", id = 1 }).code)
  end)

  it("refuses user_ids that are not an array of user ids", function()
    for _, bad in ipairs({ "alice", { "ok", 5 }, { "bad id" } }) do
      local reply = hub:run(subscribe, bob, { type = "presence_subscribe", id = 1, payload = { user_ids = bad } })
      assert.equal("bad_message", reply.code)
    end
  end)

  it("online_users lists connected users, sorted", function()
    hub:connect("aaron")
    assert.same({ "aaron", "alice", "bob" }, hub:run(online, bob, { type = "online_users", id = 1 }).users)
  end)

  it("ping answers pong, not ack, with or without an id", function()
    local pong = hub:run(ping, bob, { type = "ping", id = 7 })
    assert.same(pong, hub:sent(bob, "pong")[1])
    assert.equal(7, pong.id)
    assert.is_number(pong.timestamp)
    assert.equal(0, #hub:sent(bob, "ack"))
    assert.same({ type = "pong", timestamp = pong.timestamp }, hub:run(ping, bob, { type = "ping" }))
  end)
end)
