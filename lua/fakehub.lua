-- fakehub.lua: the test kit for handlers, run with busted.
--
-- The kit fakes the C side of the scripts' API only (lua/fakecore.lua:
-- what core/script*.c put in `hub` and in the runtime's private `core`
-- table, over rooms, connections, the store and timers on a virtual
-- clock). On it runs the real lua/runtime.lua, as core/script.c runs it: the real
-- hub.lua, protocol.lua and sandbox, and the handlers of the scripts
-- directory, loaded all or nothing. So a spec runs the code users run,
-- and what the kit records is what the core would put on the wire.
--
--   local fakehub = require "fakehub"
--
--   describe("my handler", function()
--     it("answers", function()
--       local kit = fakehub.new()
--       local alice = kit:connect("alice")
--       local reply = kit:dispatch(alice, { type = "shout", id = 1, room_id = "r" })
--       assert.same("not_in_room", reply.code)
--     end)
--   end)
--
-- Run specs on LuaJIT, as the server runs handlers:
--   busted --lua=luajit --lpath="lua/?.lua;scripts/lib/?.lua" spec.lua
--
-- The kit's own methods use `:`; the hub API that handlers see uses `.`
-- (hub.send(...)), as in production. docs/scripting.md is the reference.

local lfs = require "lfs"
local protocol = require "protocol"
local fake = require "fakecore"

local M = {}
M.limits, M.valid_user_id = fake.limits, fake.valid_user_id
M.encode, M.decode = fake.encode, fake.decode

local encode, decode = fake.encode, fake.decode
local deliver, core_frame, set_status, leave = fake.deliver, fake.core_frame, fake.set_status, fake.leave
local frame_around, id_member, sorted_keys = fake.frame_around, fake.id_member, fake.sorted_keys

-- Where runtime.lua and its modules are: beside this file.
local LUA_DIR = (debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$")) or "."

-- ---- the kit -----------------------------------------------------------

local function exists(path)
  return lfs.attributes(path, "mode") ~= nil
end

-- The sorted names (without .lua) of the Lua files in dir, specs left
-- out, as script.c lists them: for handlers, only valid type names, and a
-- missing directory is an error.
local function lua_files(dir, handlers)
  local names = {}
  if handlers and lfs.attributes(dir, "mode") ~= "directory" then
    error("cannot read scripts directory " .. dir .. ": no such directory", 0)
  end
  if not exists(dir) then return names end
  for f in lfs.dir(dir) do
    local name = f:match("^(.+)%.lua$")
    if name and not f:find("_spec%.lua$") then
      if not handlers or (#name <= 64 and not name:find("[^%w_]")) then names[#names + 1] = name end
    end
  end
  table.sort(names)
  return names
end

-- A runtime state: lua/runtime.lua run over fresh hub and core tables, as
-- script_create does. Returns it, or nil and why.
local function start(kit)
  local state = { array_mt = protocol.array_mt }
  local hub, core = fake.c_side(kit, state)
  local ok, types = pcall(lua_files, kit.scripts_dir, true)
  if not ok then return nil, types end
  local chunk = assert(loadfile(LUA_DIR .. "/runtime.lua", "t"))
  local saved = package.loaded.hub
  local rt
  ok, rt = pcall(chunk, hub, core, kit.scripts_dir, types, LUA_DIR, kit.unsafe,
    lua_files(kit.scripts_dir .. "/hooks", false))
  if not kit.unsafe then package.loaded.hub = saved end
  if not ok then return nil, tostring(rt) end
  state.runtime, state.hub = rt, hub
  return state
end

-- A fresh kit over opts.scripts_dir (default "scripts"), whose handlers
-- and hooks it loads as the server does (an error if one fails to load).
-- opts.now sets the virtual clock (ms); opts.unsafe lifts the sandbox, as
-- --unsafe-lua does; opts.history_size and opts.history_ttl (seconds) are
-- --history-size and --history-ttl (default 100 and 300);
-- opts.max_listed_members is --max-listed-members (default 1000).
function M.new(opts)
  opts = opts or {}
  local kit = setmetatable({
    conns = {},     -- conn id -> { user, inbox = {JSON text, ...}, meta, counters }
    users = {},     -- user id -> { conns = { [conn id] = true } }
    rooms = {},     -- room id -> { members = set, seq, message_count, created_at, epoch,
                    --   history = { {text, seq, at}, ... }, empty_since }
    status = {},    -- user id -> status (absent = offline)
    watchers = {},  -- user id -> { [conn id] = true }
    store = { global = { [""] = {} }, room = {}, user = {} }, -- scope -> key -> JSON
    timers = {},    -- id -> { at, every, fn or name and arg (JSON), order, state }
    last_timer = 0,
    next_id = 0,
    clock = opts.now or 1700000000000,
    history_size = opts.history_size or 100,
    history_ttl = opts.history_ttl or 300,
    max_listed_members = opts.max_listed_members or fake.limits.max_listed_members,
    epochs = 0,
    scripts_dir = opts.scripts_dir or "scripts",
    unsafe = opts.unsafe or false,
    logs = {},
  }, { __index = M })
  -- The node's start: each room's epoch begins with it.
  kit.started = kit.clock
  local state, err = start(kit)
  if not state then error(err, 2) end
  kit.state, kit.hub = state, state.hub
  return kit
end

local function meta_of(c)
  return c.meta and decode(c.meta) or nil
end

-- A new connection of user, as hub_conn_open: the on_connect hook may
-- refuse it (nil and the reason) or attach metadata (conn.meta in
-- handlers); the user's first connection makes them online. opts.ip is
-- the client's address (hub.conn_info(id).ip), 127.0.0.1 by default.
function M:connect(user, opts)
  self.next_id = self.next_id + 1
  local id = tostring(self.next_id)
  local c = { user = user, inbox = {}, ephemeral = {}, connected_at = self.clock, last_activity = self.clock,
    messages_in = 0, bytes_in = 0, bytes_out = 0, ip = opts and opts.ip or "127.0.0.1" }
  self.conns[id] = c
  local u = self.users[user]
  local first = not u
  if first then
    u = { conns = {} }
    self.users[user] = u
  end
  u.conns[id] = true
  local ok, meta = self.state.runtime.connect(id, user)
  if not ok then
    self.conns[id], u.conns[id] = nil, nil
    if first then self.users[user] = nil end
    return nil, meta
  end
  if type(meta) == "table" then
    local encoded, text = pcall(encode, meta, self.state.array_mt)
    if encoded then
      c.meta = text
    else
      self.logs[#self.logs + 1] = { level = "error", message = "on_connect metadata is not JSON conn=" .. id .. ": " .. text }
    end
  end
  if first then set_status(self, user, "online") end
  return { id = id, user = user }
end

-- What the core does when a connection closes (hub_conn_closed): the
-- on_disconnect hook, then, on the user's last connection, leave every
-- room (user_left to those who remain, in a room that had at most
-- --max-listed-members, the user included) and go offline.
function M:disconnect(conn, code)
  local c = self.conns[conn.id]
  if not c then return end
  self.state.runtime.disconnect(conn.id, c.user, code or 1000, meta_of(c))
  for _, w in pairs(self.watchers) do w[conn.id] = nil end
  local u = self.users[c.user]
  self.conns[conn.id], u.conns[conn.id] = nil, nil
  if next(u.conns) ~= nil then return end
  for _, room in ipairs(sorted_keys(self.rooms)) do
    local left, n = leave(self, room, c.user)
    if left and self.rooms[room] and n < self.max_listed_members then
      for uid in pairs(self.rooms[room].members) do
        for cid in pairs(self.users[uid].conns) do
          core_frame(self, cid, { type = "user_left", room_id = room, from = c.user, timestamp = self.clock })
        end
      end
    end
  end
  set_status(self, c.user, "offline")
  self.users[c.user] = nil
  self.store.user[c.user] = nil
end

-- Loads a handler file (any path) in this kit's sandbox, as the runtime
-- loads one, and returns its function. Each call loads the file afresh.
function M:load(path)
  local fn, err = self.state.runtime.load(path)
  if not fn then error(err, 2) end
  return fn
end

-- A frame from a client: the message (a table, or JSON text) as the core
-- reads it, and its id as the client wrote it.
local function frame_in(msg, array_mt)
  local text = type(msg) == "string" and msg or encode(msg, array_mt)
  local decoded = decode(text, array_mt)
  local id = type(decoded) == "table" and decoded.id or nil
  return decoded, (type(id) == "number" or type(id) == "string") and encode(id) or nil, #text
end

-- Runs fn(decoded msg, c) as the frame being dispatched on conn; returns
-- the answer the client got (decoded), or nil when there was none.
local function as_frame(self, conn, msg, fn)
  -- A connection the kit does not know (closed, or made by hand) runs
  -- too; its answers go nowhere.
  local c = self.conns[conn.id] or { user = conn.user, messages_in = 0, bytes_in = 0 }
  local decoded, id_json, len = frame_in(msg, self.state.array_mt)
  if self.state.lazy then decoded = fake.lazy_payload(decoded, self.state.array_mt) end
  c.messages_in, c.bytes_in, c.last_activity = c.messages_in + 1, c.bytes_in + len, self.clock
  local call = { conn = conn.id, id_json = id_json }
  self.call = call
  local ok, err = pcall(fn, decoded, c, call)
  self.call = nil
  if not ok then error(err, 0) end
  return call.answer and decode(call.answer, self.state.array_mt) or nil
end

-- Runs handler for conn with msg as the runtime runs a handler, and
-- returns the reply the client gets (an ack, an error, the handler's own
-- answer), or nil when there is none. The reply also lands in the
-- connection's inbox, as on the wire.
function M:run(handler, conn, msg)
  return as_frame(self, conn, msg, function(m, c)
    self.state.runtime.run(handler, conn.id, c.user, m, meta_of(c))
  end)
end

-- Dispatches msg from conn as the core does: through the runtime's
-- dispatch (the on_message hook, then the handler of the message's type
-- in scripts_dir, or unknown_type). Returns the reply, or nil.
function M:dispatch(conn, msg)
  return as_frame(self, conn, msg, function(m, c, call)
    local why = type(m) ~= "table" and "a frame must be a JSON object"
      or m.type == nil and "no type" or type(m.type) ~= "string" and "type must be a string"
    local no_handler = not why and self.state.runtime.dispatch(conn.id, c.user, m.type, m, meta_of(c))
    if why or no_handler then
      local e = { code = why and "bad_message" or "unknown_type",
        message = why or "no handler for type '" .. no_handler .. "'" }
      -- As hub_send_error writes it.
      call.answer = frame_around('"type":"error"', nil, nil, nil, id_member(call.id_json)):sub(1, -2)
        .. ',"code":' .. encode(e.code) .. ',"message":' .. encode(e.message) .. "}"
      deliver(self, conn.id, call.answer)
    end
  end)
end

-- Fires timer t as script_timer.c does: a one-shot is gone before it
-- runs; an error is logged (kit.logs) and stops nothing else; a named
-- timer whose function is gone is cancelled with a warning.
local function fire(self, t)
  if not t.every then self.timers[t.id] = nil end
  local label = t.name and " (" .. t.name .. ")" or ""
  local fn = t.fn
  if t.name then
    local run, arg = self.state.run_timer, t.arg and decode(t.arg, self.state.array_mt) or nil
    fn = function() return run(t.name, arg) end
  end
  local ok, resolved, why = xpcall(fn, debug.traceback)
  if ok and not t.name then resolved = true end
  if not ok then
    self.logs[#self.logs + 1] = { level = "error", message = "timer " .. t.id .. label .. " failed: " .. tostring(resolved) }
  elseif not resolved then
    self.timers[t.id] = nil
    self.logs[#self.logs + 1] = { level = "warn", message = "timer " .. t.id .. " cancelled: " .. tostring(why) }
  end
end

-- Moves the virtual clock (hub.now()) forward by ms, firing every timer
-- that comes due on the way, in order of due time (then of setting), each
-- with hub.now() at its due time; timers set by timers fire too if they
-- come due within ms.
function M:advance(ms)
  local target = self.clock + ms
  while true do
    local due
    for _, t in pairs(self.timers) do
      if t.at <= target and (not due or t.at < due.at or (t.at == due.at and t.order < due.order)) then
        due = t
      end
    end
    if not due then break end
    self.clock = math.max(self.clock, due.at)
    if due.every then
      due.at = due.at + due.every
      self.last_timer = self.last_timer + 1
      due.order = self.last_timer
    end
    fire(self, due)
  end
  self.clock = target
  -- History and empty rooms past --history-ttl go, as the server's sweep
  -- does them once a second.
  fake.sweep(self)
end

-- A restart of the server, as far as rooms go: every room and its
-- history are gone, and the rooms made from now on have new epochs (the
-- connections are not touched: reconnect them as a client would).
function M:restart(ms)
  self.clock = self.clock + (ms or 1000)
  self.rooms, self.store.room = {}, {}
  self.started, self.epochs = self.clock, 0
end

-- A reload, as SIGHUP does: a new runtime state over the same core state
-- (rooms, connections, the store), loaded from scripts_dir afresh. Closures
-- set as timers are cancelled (their state is gone), named timers carry
-- on in the new state. Returns how many were cancelled; if a script fails
-- to load, the old state stays (as in the server) and this returns nil and
-- why, logged.
function M:reload()
  local state, err = start(self)
  if not state then
    self.logs[#self.logs + 1] = { level = "error", message = "reload failed, keeping the running scripts: " .. err }
    return nil, err
  end
  local n = 0
  for id, t in pairs(self.timers) do
    if t.fn then
      self.timers[id] = nil
      n = n + 1
    end
  end
  self.state, self.hub = state, state.hub
  return n
end

-- Everything conn received so far (server frames and replies), in order,
-- decoded as the client decodes it. With a type, only frames of that type.
function M:sent(conn, type_name)
  local c = self.conns[conn.id]
  local out = {}
  for _, text in ipairs(c and c.inbox or {}) do
    local m = decode(text)
    if not type_name or m.type == type_name then out[#out + 1] = m end
  end
  return out
end

-- What conn received as ephemeral frames (hub.send_room(..., {ephemeral =
-- true}) and the like, presence): those a connection that falls behind
-- loses first. With a type, only frames of that type.
function M:ephemeral(conn, type_name)
  local c = self.conns[conn.id]
  local out = {}
  for i, text in ipairs(c and c.inbox or {}) do
    local m = decode(text)
    if c.ephemeral[i] and (not type_name or m.type == type_name) then out[#out + 1] = m end
  end
  return out
end

-- What conn received, as the JSON text the core would have written.
function M:wire(conn)
  local c = self.conns[conn.id]
  local out = {}
  for i, text in ipairs(c and c.inbox or {}) do out[i] = text end
  return out
end

-- Forgets what every connection received.
function M:clear()
  for _, c in pairs(self.conns) do c.inbox, c.ephemeral = {}, {} end
end

return M
