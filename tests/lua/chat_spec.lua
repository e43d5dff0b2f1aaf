-- chat: room messages with seq, unicast and multicast.
local fakehub = require "fakehub"

describe("chat", function()
  local hub, chat, join, alice, alice2, bob, carol

  before_each(function()
    hub = fakehub.new()
    chat = hub:load("scripts/chat.lua")
    join = hub:load("scripts/join_room.lua")
    alice = hub:connect("alice")
    alice2 = hub:connect("alice")
    bob = hub:connect("bob")
    carol = hub:connect("carol")
  end)

  describe("to a room", function()
    before_each(function()
      hub:run(join, alice, { type = "join_room", room_id = "r" })
      hub:run(join, bob, { type = "join_room", room_id = "r" })
      hub:clear()
    end)

    it("reaches every connection of every member, the sender's included, with seq", function()
      local ack = hub:run(chat, alice, { type = "chat", id = 1, room_id = "r", payload = { text = "hi" } })
      assert.same({ type = "ack", id = 1, seq = 1 }, ack)
      for _, c in ipairs({ alice, alice2, bob }) do
        local got = hub:sent(c, "chat")
        assert.equal(1, #got)
        assert.same({ text = "hi" }, got[1].payload)
        assert.equal("alice", got[1].from)
        assert.equal("r", got[1].room_id)
        assert.equal(1, got[1].seq)
        assert.is_number(got[1].timestamp)
      end
      assert.equal(0, #hub:sent(carol, "chat"))
    end)

    it("numbers messages 1, 2, 3 with no gaps", function()
      for i = 1, 3 do
        assert.equal(i, hub:run(chat, bob, { type = "chat", id = i, room_id = "r", payload = {} }).seq)
      end
      local seqs = {}
      for _, m in ipairs(hub:sent(alice, "chat")) do seqs[#seqs + 1] = m.seq end
      assert.same({ 1, 2, 3 }, seqs)
    end)

    it("takes from and timestamp from the server, never the client", function()
      hub:run(chat, alice, { type = "chat", room_id = "r", from = "bob", seq = 9, timestamp = 1, payload = {} })
      local m = hub:sent(bob, "chat")[1]
      assert.equal("alice", m.from)
      assert.equal(1, m.seq)
      assert.not_equal(1, m.timestamp)
    end)

    it("refuses a sender who is not a member", function()
      local err = hub:run(chat, carol, { type = "chat", id = 2, room_id = "r", payload = {} })
      assert.equal("not_in_room", err.code)
      assert.equal(2, err.id)
      assert.equal(0, #hub:sent(bob, "chat"))
    end)

    it("needs a payload object and a room", function()
      assert.equal("bad_message", hub:run(chat, alice, { type = "chat", id = 1, room_id = "r" }).code)
      assert.equal("bad_message", hub:run(chat, alice, { type = "chat", id = 1, payload = {} }).code)
      assert.equal("bad_message",
        hub:run(chat, alice, { type = "chat", id = 1, room_id = "", payload = {} }).code)
    end)
  end)

  describe("to users", function()
    it("unicast reaches the target and the sender's other connections only", function()
      local ack = hub:run(chat, alice, { type = "chat", id = 1, to = "bob", payload = { text = "dm" } })
      assert.same({ type = "ack", id = 1, delivered = 1 }, ack)
      local m = hub:sent(bob, "chat")[1]
      assert.equal("alice", m.from)
      assert.equal("bob", m.to)
      assert.is_nil(m.seq)
      assert.equal(1, #hub:sent(alice2, "chat"))
      assert.equal(0, #hub:sent(alice, "chat"))
      assert.equal(0, #hub:sent(carol, "chat"))
    end)

    it("unicast to a user with no connection is not_found", function()
      local err = hub:run(chat, alice, { type = "chat", id = 1, to = "zed", payload = {} })
      assert.equal("not_found", err.code)
    end)

    it("multicast counts the listed users' connections, each reached once", function()
      local bob2 = hub:connect("bob")
      local ack = hub:run(chat, alice,
        { type = "chat", id = 1, to = { "bob", "carol", "zed", "bob" }, payload = { t = 1 } })
      assert.equal(3, ack.delivered)
      for _, c in ipairs({ bob, bob2, carol, alice2 }) do
        assert.equal(1, #hub:sent(c, "chat"))
      end
    end)

    it("refuses bad user ids and empty lists", function()
      assert.equal("bad_message", hub:run(chat, alice, { type = "chat", id = 1, to = { "bad id" }, payload = {} }).code)
      assert.equal("bad_message", hub:run(chat, alice, { type = "chat", id = 1, to = {}, payload = {} }).code)
    end)
  end)
end)
