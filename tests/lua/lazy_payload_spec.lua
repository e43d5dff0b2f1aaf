-- Lazy payloads (core/script_json.c; the kit fakes them in
-- lua/fakecore.lua): a handler's msg.payload fills itself at its first
-- read or write, and everything a script can do to it (read, write,
-- pairs, next, #, rawget, rawset, getmetatable, setmetatable, table
-- functions, cjson, hub.store) behaves as on the decoded table. The
-- bytes spliced into frames are tested on the real server
-- (tests/integration/lazy_payload.test.mjs).
local fakehub = require "fakehub"

local function handler(hub, body)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(body)
  f:close()
  local fn = hub:load(path)
  os.remove(path)
  return fn
end

local PAYLOAD = { text = "hi", n = 2, deep = { a = { 1, 2 } } }

describe("lazy payloads", function()
  local hub, alice, bob, join

  before_each(function()
    hub = fakehub.new()
    join = hub:load("scripts/join_room.lua")
    alice = hub:connect("alice")
    bob = hub:connect("bob")
    hub:run(join, alice, { type = "join_room", room_id = "r" })
    hub:run(join, bob, { type = "join_room", room_id = "r" })
    hub:clear()
  end)

  it("the shipped chat passes the payload on whole", function()
    local chat = hub:load("scripts/chat.lua")
    hub:run(chat, alice, { type = "chat", id = 1, room_id = "r", payload = PAYLOAD })
    assert.same(PAYLOAD, hub:sent(bob, "chat")[1].payload)
  end)

  it("a change to the payload is what goes out", function()
    local h = handler(hub, [[
local hub = require "hub"
return function(conn, msg)
  msg.payload.text = msg.payload.text .. "!"
  msg.payload.extra = true
  hub.publish("r", { type = "chat", payload = msg.payload }, conn.user)
  return {}
end
]])
    hub:run(h, alice, { type = "x", id = 1, payload = PAYLOAD })
    assert.same({ text = "hi!", n = 2, deep = { a = { 1, 2 } }, extra = true },
      hub:sent(bob, "chat")[1].payload)
  end)

  local cases = {
    { "a field", "return p.text", "hi" },
    { "a nested field", "return p.deep.a[2]", 2 },
    { "pairs", "local n = 0 for _ in pairs(p) do n = n + 1 end return n", 3 },
    { "next", "return next(p) ~= nil", true },
    { "#", "return #p", 0 },
    { "rawget", "return rawget(p, 'n')", 2 },
    { "rawset, then a read", "rawset(p, 'x', 1) return p.x + p.n", 3 },
    { "getmetatable", "return getmetatable(p) == nil", true },
    { "setmetatable", "setmetatable(p, { __index = function() return 9 end }) return p.n + p.zz", 11 },
    { "table.insert, then pairs", "table.insert(p, 'x') local n = 0 for _ in pairs(p) do n = n + 1 end return n", 4 },
    { "table.foreach", "local n = 0 table.foreach(p, function() n = n + 1 end) return n", 3 },
    { "cjson", "return require('cjson').decode(require('cjson').encode({ p }))[1].text", "hi" },
    { "type", "return type(p)", "table" },
  }
  for _, case in ipairs(cases) do
    it(case[1] .. " as the first thing done sees the decoded table", function()
      local h = handler(hub, "return function(conn, msg) local p = msg.payload\n"
        .. "return { result = (function() " .. case[2] .. " end)() } end\n")
      local ack = hub:run(h, alice, { type = "x", id = 1, payload = PAYLOAD })
      assert.same({ type = "ack", id = 1, result = case[3] }, ack)
    end)
  end

  it("a payload returned as the ack gives the ack its fields", function()
    local h = handler(hub, "return function(conn, msg) return msg.payload end\n")
    local ack = hub:run(h, alice, { type = "x", id = 1, payload = { text = "hi" } })
    assert.same({ type = "ack", id = 1, text = "hi" }, ack)
  end)

  it("a payload kept in hub.store reads back whole", function()
    local h = handler(hub, [[
local hub = require "hub"
return function(conn, msg)
  if msg.payload then hub.store.set("k", msg.payload) return {} end
  return { v = hub.store.get("k") }
end
]])
    hub:run(h, alice, { type = "x", id = 1, payload = PAYLOAD })
    assert.same(PAYLOAD, hub:run(h, alice, { type = "x", id = 2 }).v)
  end)
end)
