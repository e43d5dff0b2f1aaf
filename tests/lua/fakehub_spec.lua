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

-- A scripts directory of our own (removed when the specs end).
local scratch_dirs = {}
teardown(function()
  for _, dir in ipairs(scratch_dirs) do os.execute("rm -rf '" .. dir .. "'") end
end)
local function scratch(files)
  local dir = os.tmpname()
  scratch_dirs[#scratch_dirs + 1] = dir
  os.remove(dir)
  assert(os.execute("mkdir -p " .. dir .. "/hooks " .. dir .. "/lib"))
  for name, text in pairs(files) do
    local f = assert(io.open(dir .. "/" .. name, "w"))
    f:write(text)
    f:close()
  end
  return dir
end

describe("fakehub timers", function()
  it("hub.after fires once when the virtual clock reaches it, with hub.now() at its due time", function()
    local kit = fakehub.new({ now = 1000 })
    local hub = kit.hub
    local fired = {}
    local id = hub.after(50, function() fired[#fired + 1] = hub.now() end)
    assert.is_number(id)
    kit:advance(49)
    assert.same({}, fired)
    kit:advance(1)
    assert.same({ 1050 }, fired)
    kit:advance(1000)
    assert.same({ 1050 }, fired)
    assert.is_false(hub.cancel(id))
  end)

  it("hub.every repeats until cancelled; timers fire in due order, including ones set by timers", function()
    local kit = fakehub.new({ now = 0 })
    local hub = kit.hub
    local log = {}
    local tick = hub.every(30, function() log[#log + 1] = "tick@" .. hub.now() end)
    hub.after(45, function()
      log[#log + 1] = "after@" .. hub.now()
      hub.after(10, function() log[#log + 1] = "nested@" .. hub.now() end)
    end)
    kit:advance(100)
    assert.same({ "tick@30", "after@45", "nested@55", "tick@60", "tick@90" }, log)
    assert.equal(100, hub.now())
    assert.is_true(hub.cancel(tick))
    kit:advance(100)
    assert.equal(5, #log)
  end)

  it("an error in a timer is logged and stops nothing else", function()
    local kit = fakehub.new()
    local ran = false
    kit.hub.after(10, function() error("timer boom") end)
    kit.hub.after(20, function() ran = true end)
    kit:advance(20)
    assert.is_true(ran)
    assert.equal("error", kit.logs[1].level)
    assert.matches("timer 1 failed: .*timer boom", kit.logs[1].message)
  end)

  it("refuses what the core refuses", function()
    local hub = fakehub.new().hub
    assert.has_error(function() hub.after(0, function() end) end, "a timer's delay is 1 ms to a year")
    assert.has_error(function() hub.after(10, 42) end)
    assert.has_error(function() hub.after(10, "nodots") end)
  end)

  it("a named timer calls module.function with a copy of its argument, and survives a reload; closures do not", function()
    local dir = scratch({ ["lib/ticker.lua"] = [[
local hub = require "hub"
local M = {}
function M.tick(arg)
  arg.n = arg.n + 1 -- a copy: the next call gets the original again
  hub.send(arg.conn, { type = "tick", n = arg.n })
end
return M
]] })
    local kit = fakehub.new({ scripts_dir = dir })
    local a = kit:connect("a")
    local hub = kit.hub
    hub.every(100, "ticker.tick", { conn = a.id, n = 1 })
    local closure_ran = false
    hub.after(150, function() closure_ran = true end)
    assert.equal(1, kit:reload())
    kit:advance(250)
    assert.is_false(closure_ran)
    local ticks = kit:sent(a, "tick")
    assert.equal(2, #ticks)
    assert.equal(2, ticks[2].n)
    assert.has_error(function() hub.after(10, "ticker.tock") end,
      "timer 'ticker.tock': module 'ticker' has no function 'tock'")
  end)

  it("each kit has its own modules: a named timer reaches the kit that set it", function()
    local dir = scratch({ ["lib/pinger.lua"] = [[
local hub = require "hub"
return { ping = function(conn) hub.send(conn, { type = "ping" }) end }
]] })
    for _ = 1, 2 do
      local kit = fakehub.new({ scripts_dir = dir })
      local a = kit:connect("a")
      kit.hub.after(5, "pinger.ping", a.id)
      kit:advance(5)
      assert.equal(1, #kit:sent(a, "ping"))
    end
  end)

  it("a named timer whose function is gone when it fires is cancelled with a warning", function()
    local dir = scratch({ ["lib/fleeting.lua"] = "return { go = function() end }\n" })
    local kit = fakehub.new({ scripts_dir = dir })
    local id = kit.hub.every(10, "fleeting.go")
    local f = assert(io.open(dir .. "/lib/fleeting.lua", "w"))
    f:write("return {}\n")
    f:close()
    assert.equal(0, kit:reload())
    kit:advance(10)
    assert.is_false(kit.hub.cancel(id))
    assert.equal("warn", kit.logs[1].level)
    assert.matches("timer %d+ cancelled: timer 'fleeting.go': module 'fleeting' has no function 'go'", kit.logs[1].message)
  end)
end)

describe("fakehub dispatch", function()
  local dir = scratch({
    ["echo.lua"] = "return function(conn, msg) return { text = msg.payload.text } end\n",
    ["hooks/on_message.lua"] = [[
local hub = require "hub"
return function(conn, msg)
  local text = msg.payload and msg.payload.text
  if text == "drop" then return false end
  if text == "deny" then hub.fail("forbidden", "not that") end
  if text == "boom" then error("hook boom") end
  if text == "typeless" then return { payload = {} } end
  if msg.type == "shout" then
    -- No id here: the core carries the client's id over.
    return { type = "echo", payload = { text = text:upper() } }
  end
end
]],
  })

  it("runs the on_message hook before the handler, as the core does", function()
    local kit = fakehub.new({ scripts_dir = dir })
    local a = kit:connect("a")
    assert.same({ type = "ack", id = 1, text = "hi" }, kit:dispatch(a, { type = "echo", id = 1, payload = { text = "hi" } }))
    assert.same({ type = "ack", id = 2, text = "HI" }, kit:dispatch(a, { type = "shout", id = 2, payload = { text = "hi" } }))
    -- Dropped with an id: acked without fields, as the core does; without
    -- an id, nothing.
    assert.same({ type = "ack", id = 3 }, kit:dispatch(a, { type = "echo", id = 3, payload = { text = "drop" } }))
    assert.is_nil(kit:dispatch(a, { type = "echo", payload = { text = "drop" } }))
    assert.same({ type = "error", id = 4, code = "forbidden", message = "not that" },
      kit:dispatch(a, { type = "echo", id = 4, payload = { text = "deny" } }))
    local failed = kit:dispatch(a, { type = "echo", id = 5, payload = { text = "boom" } })
    assert.equal("handler_error", failed.code)
    assert.matches("hook on_message failed.*hook boom", kit.logs[1].message)
    assert.equal("handler_error", kit:dispatch(a, { type = "echo", id = 6, payload = { text = "typeless" } }).code)
    -- Everything the client got, in order; the dropped message without an
    -- id got nothing.
    local sent = kit:sent(a)
    assert.equal(6, #sent)
    assert.same({ 1, 2, 3, 4, 5, 6 }, { sent[1].id, sent[2].id, sent[3].id, sent[4].id, sent[5].id, sent[6].id })
  end)
end)

-- The kit runs the real runtime, sandbox and all, over a fake of the C
-- functions only: what the server does, the kit does.
describe("fakehub runs the server's runtime", function()
  local dir = scratch({
    ["leaky.lua"] = "return function() counter = 1 end\n",
    ["reader.lua"] = "return function() return { has_io = io ~= nil } end\n",
    ["lists.lua"] = "local hub = require 'hub'\n"
      .. "return function() return { none = hub.array(), big = 2 ^ 53, third = 1 / 3 } end\n",
    ["hooks/on_connect.lua"] = "return function(conn)\n"
      .. "  if conn.user == 'mallory' then return false, 'not you' end\n"
      .. "  return { role = 'member' }\n"
      .. "end\n",
    ["whoami.lua"] = "return function(conn) return { role = conn.meta.role } end\n",
  })

  it("enforces the sandbox: no io, no undeclared globals, a frozen hub", function()
    local kit = fakehub.new({ scripts_dir = dir })
    local a = kit:connect("a")
    assert.same({ type = "ack", id = 1, has_io = false }, kit:dispatch(a, { type = "reader", id = 1 }))
    local err = kit:dispatch(a, { type = "leaky", id = 2 })
    assert.equal("handler_error", err.code)
    assert.matches("undeclared global 'counter'", err.message)
    assert.matches("handler leaky failed", kit.logs[1].message)
    assert.has_error(function() kit.hub.send = print end, "attempt to write hub.send: hub is read-only")
  end)

  it("writes what the core writes: empty arrays, full-precision numbers, the id as sent", function()
    local kit = fakehub.new({ scripts_dir = dir })
    local a = kit:connect("a")
    kit:dispatch(a, '{"type":"lists","id":"x-1"}')
    local wire = kit:wire(a)[1]
    assert.matches('"none":%[%]', wire)
    assert.matches('"big":9007199254740992', wire)
    assert.matches('"third":0.3333333333333333[,}]', wire)
    assert.matches('^{"type":"ack","id":"x%-1",', wire)
  end)

  it("runs the on_connect hook: a refusal, or metadata handlers see as conn.meta", function()
    local kit = fakehub.new({ scripts_dir = dir })
    local conn, reason = kit:connect("mallory")
    assert.is_nil(conn)
    assert.equal("not you", reason)
    assert.same({}, kit.hub.online_users())
    local a = kit:connect("a", { ip = "198.51.100.7" })
    assert.same({ type = "ack", id = 1, role = "member" }, kit:dispatch(a, { type = "whoami", id = 1 }))
    assert.equal("198.51.100.7", kit.hub.conn_info(a.id).ip)
    assert.equal("127.0.0.1", kit.hub.conn_info(kit:connect("b").id).ip)
  end)

  it("reloads the scripts directory as SIGHUP does; a broken script keeps the old ones", function()
    local kit = fakehub.new({ scripts_dir = dir })
    local a = kit:connect("a")
    local f = assert(io.open(dir .. "/fresh.lua", "w"))
    f:write("return function() return { fresh = true } end\n")
    f:close()
    assert.equal("unknown_type", kit:dispatch(a, { type = "fresh", id = 1 }).code)
    assert.equal(0, kit:reload())
    assert.is_true(kit:dispatch(a, { type = "fresh", id = 2 }).fresh)
    f = assert(io.open(dir .. "/fresh.lua", "w"))
    f:write("return function( end\n")
    f:close()
    local ok, why = kit:reload()
    assert.is_nil(ok)
    assert.matches("fresh.lua:1:", why)
    assert.is_true(kit:dispatch(a, { type = "fresh", id = 3 }).fresh)
    os.remove(dir .. "/fresh.lua")
  end)
end)
