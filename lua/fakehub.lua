-- fakehub.lua: an in-memory `hub` for testing handlers with busted.
--
-- It implements the whole hub API (docs/scripting.md) with the semantics of
-- the C core, and records what every connection receives, so that a spec
-- can run a handler exactly as the server would and check who got what:
--
--   local fakehub = require "fakehub"
--
--   describe("my handler", function()
--     it("answers", function()
--       local hub = fakehub.new()
--       local alice = hub:connect("alice")
--       local handler = hub:load("scripts/shout.lua")
--       local reply = hub:run(handler, alice, { type = "shout", id = 1, room_id = "r" })
--       assert.same("not_in_room", reply.code)
--     end)
--   end)
--
-- Run specs on LuaJIT, as the server runs handlers:
--   busted --lua=luajit --lpath="lua/?.lua;scripts/lib/?.lua" spec.lua
--
-- The kit's own methods use `:`; the hub API that handlers see uses `.`
-- (hub.send(...)), as in production.

local cjson = require "cjson"
local protocol = require "protocol"

local M = {}

local STATUSES = { online = true, away = true, busy = true, offline = true }

local function sorted_array(set)
  local out = {}
  for k in pairs(set) do out[#out + 1] = k end
  table.sort(out)
  return protocol.array(out)
end

-- cjson decoding with arrays marked as the core marks them.
local function mark_arrays(v)
  if type(v) ~= "table" then return v end
  local n, count = #v, 0
  for _ in pairs(v) do count = count + 1 end
  for k, x in pairs(v) do v[k] = mark_arrays(x) end
  if n > 0 and n == count then setmetatable(v, protocol.array_mt) end
  return v
end

-- Encodes like the core: arrays marked by metatable (even empty) or with
-- keys 1..n; errors on functions and other unencodable values.
local function encode(v, depth)
  depth = depth or 0
  if depth > 32 then error("cannot encode: nested too deeply (or a cycle)", 0) end
  local t = type(v)
  if v == nil or v == protocol.null then return "null" end
  if t == "boolean" then return tostring(v) end
  if t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then
      error("cannot encode NaN or infinity", 0)
    end
    if v == math.floor(v) and math.abs(v) < 2 ^ 53 then
      return string.format("%d", v)
    end
    return string.format("%.17g", v)
  end
  if t == "string" then return cjson.encode(v) end
  if t ~= "table" then error("cannot encode a " .. t, 0) end
  local n, count = #v, 0
  for _ in pairs(v) do count = count + 1 end
  if getmetatable(v) == protocol.array_mt or (n > 0 and n == count) then
    local parts = {}
    for i = 1, n do parts[i] = encode(v[i], depth + 1) end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  local parts = {}
  for k, x in pairs(v) do
    if type(k) ~= "string" and type(k) ~= "number" then
      error("cannot encode a table key of type " .. type(k), 0)
    end
    parts[#parts + 1] = cjson.encode(tostring(k)) .. ":" .. encode(x, depth + 1)
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

local function decode(s)
  local ok, v = pcall(cjson.decode, s)
  if not ok then error("not JSON: " .. tostring(v), 0) end
  return mark_arrays(v)
end

-- A message argument (table or JSON string) as what a client would decode.
local function as_received(msg)
  if type(msg) == "string" then return decode(msg) end
  return decode(encode(msg))
end

function M.new(opts)
  opts = opts or {}
  local kit = {
    conns = {},     -- conn id -> { id, user, inbox = {} , connected_at }
    users = {},     -- user id -> { conns = { [conn id] = true }, n }
    rooms = {},     -- room id -> { members = set, seq, message_count, created_at }
    status = {},    -- user id -> status (absent = offline)
    watchers = {},  -- user id -> { [conn id] = true }
    next_id = 0,
    clock = opts.now or 1700000000000,
    scripts_dir = opts.scripts_dir or "scripts",
    logs = {},
    store = { global = { [""] = {} }, room = {}, user = {} },
    timers = {},    -- id -> { id, at, every, fn or name, arg (JSON), order }
    next_timer = 0,
    modules = {},   -- modules loaded under this kit (see M:with_hub)
  }
  local hub = {}
  kit.hub = hub

  local function now() return kit.clock end

  local function deliver(conn_id, received)
    local c = kit.conns[conn_id]
    if not c then return 0 end
    c.inbox[#c.inbox + 1] = received
    return 1
  end

  local function notify_presence(user, status)
    local w = kit.watchers[user]
    if not w then return end
    for cid in pairs(w) do
      deliver(cid, { type = "presence", payload = { user_id = user, status = status }, timestamp = now() })
    end
  end

  -- The hub API, as handlers see it --------------------------------------

  hub.null = protocol.null
  hub.array_mt = protocol.array_mt
  hub.array = protocol.array
  hub.NO_ACK = protocol.NO_ACK
  hub.reply = protocol.reply
  hub.fail = protocol.fail
  hub.encode = function(v) return encode(v) end
  hub.decode = decode
  hub.now = now

  -- The core's limits (core/room.h, core/conn.h), as the server's
  -- hub.limits gives them; test_script.c checks that they agree.
  hub.limits = { room_id_max = 128, user_id_max = 64, user_id_chars = "A-Z a-z 0-9 _ . @ -" }
  function hub.valid_user_id(s)
    return type(s) == "string" and #s >= 1 and #s <= hub.limits.user_id_max
      and not s:find("[^%w_.@%-]")
  end

  function hub.log(level, fmt, ...)
    local msg = select("#", ...) > 0 and string.format(fmt, ...) or tostring(fmt)
    kit.logs[#kit.logs + 1] = { level = level, message = msg }
  end

  local function to_user(user, received, except_conn)
    local u = kit.users[user]
    if not u then return 0 end
    local n = 0
    for cid in pairs(u.conns) do
      if cid ~= except_conn then n = n + deliver(cid, received) end
    end
    return n
  end

  function hub.send(conn_id, msg)
    return deliver(conn_id, as_received(msg))
  end

  function hub.send_user(user, msg, o)
    o = o or {}
    if user == o.except_user then return 0 end
    return to_user(user, as_received(msg), o.except_conn)
  end

  function hub.send_users(users, msg, o)
    o = o or {}
    local received, seen, n = as_received(msg), {}, 0
    for _, u in ipairs(users) do
      if type(u) ~= "string" then error("user ids must be strings", 0) end
      if not seen[u] and u ~= o.except_user then
        seen[u] = true
        n = n + to_user(u, received, o.except_conn)
      end
    end
    return n
  end

  function hub.send_room(room_id, msg, o)
    o = o or {}
    local r = kit.rooms[room_id]
    if not r then return 0 end
    local received, n = as_received(msg), 0
    for u in pairs(r.members) do
      if u ~= o.except_user then n = n + to_user(u, received, o.except_conn) end
    end
    return n
  end

  function hub.broadcast(msg, o)
    o = o or {}
    local received, n = as_received(msg), 0
    for cid, c in pairs(kit.conns) do
      if cid ~= o.except_conn and c.user ~= o.except_user then n = n + deliver(cid, received) end
    end
    return n
  end

  function hub.publish(room_id, msg, member)
    local r = kit.rooms[room_id]
    if member ~= nil and not (r and r.members[member]) then
      protocol.fail("not_in_room", "you are not in room '" .. room_id .. "'")
    end
    if not r then protocol.fail("not_found", "no room '" .. room_id .. "'") end
    r.seq = r.seq + 1
    r.message_count = r.message_count + 1
    -- As the server does: the frame carries seq and room_id; msg itself
    -- is left alone.
    local out = {}
    for k, v in pairs(msg) do out[k] = v end
    out.seq = r.seq
    out.room_id = room_id
    hub.send_room(room_id, out)
    return r.seq
  end

  function hub.join(room_id, user)
    local max = hub.limits.room_id_max
    if type(room_id) ~= "string" or #room_id == 0 or #room_id > max then
      protocol.fail("bad_message", "room_id must be 1 to " .. max .. " characters")
    end
    if not kit.users[user] then protocol.fail("not_found", "user '" .. user .. "' is not connected") end
    local r = kit.rooms[room_id]
    if not r then
      r = { members = {}, seq = 0, message_count = 0, created_at = now() }
      kit.rooms[room_id] = r
    end
    if r.members[user] then return false end
    r.members[user] = true
    return true
  end

  function hub.leave(room_id, user)
    local r = kit.rooms[room_id]
    if not r or not r.members[user] then return false end
    r.members[user] = nil
    if next(r.members) == nil then
      kit.rooms[room_id] = nil
      kit.store.room[room_id] = nil
    end
    return true
  end

  -- hub.store, as the core keeps it: JSON values, room and user scopes
  -- only while the room or user exists, dropped with them.
  local function scope(kind, name)
    local s = {}
    local function values(create)
      local t = kit.store[kind][name]
      if not t and create then
        if kind == "room" and not kit.rooms[name] then protocol.fail("not_found", "no room '" .. name .. "'") end
        if kind == "user" and not kit.users[name] then protocol.fail("not_found", "no user '" .. name .. "'") end
        t = {}
        kit.store[kind][name] = t
      end
      return t
    end
    function s.get(key)
      local t = values(false)
      return t and t[key] ~= nil and decode(t[key]) or nil
    end
    function s.set(key, value)
      if value == nil then
        local t = values(false)
        if t then t[key] = nil end
        return
      end
      values(true)[key] = encode(value)
    end
    function s.delete(key)
      local t = values(false)
      local had = t and t[key] ~= nil
      if t then t[key] = nil end
      return had or false
    end
    function s.incr(key, n)
      local v = (s.get(key) or 0) + (n or 1)
      s.set(key, v)
      return v
    end
    return s
  end
  hub.store = scope("global", "")
  function hub.store.room(id) return scope("room", id) end
  function hub.store.user(id) return scope("user", id) end

  function hub.is_member(room_id, user)
    local r = kit.rooms[room_id]
    return r ~= nil and r.members[user] == true
  end

  function hub.room_members(room_id)
    local r = kit.rooms[room_id]
    return r and sorted_array(r.members) or nil
  end

  function hub.room_info(room_id)
    local r = kit.rooms[room_id]
    if not r then return nil end
    return {
      room_id = room_id, name = room_id, members = sorted_array(r.members),
      created_at = r.created_at, message_count = r.message_count, seq = r.seq,
    }
  end

  function hub.user_rooms(user)
    local set = {}
    for id, r in pairs(kit.rooms) do
      if r.members[user] then set[id] = true end
    end
    return sorted_array(set)
  end

  function hub.online_users()
    return sorted_array(kit.users)
  end

  function hub.user_connections(user)
    local u = kit.users[user]
    return u and sorted_array(u.conns) or protocol.array()
  end

  function hub.presence_get(user)
    return kit.status[user] or "offline"
  end

  function hub.presence_set(user, status)
    if not STATUSES[status] then
      protocol.fail("bad_message", "status must be online, away, busy or offline")
    end
    if not kit.users[user] then protocol.fail("not_found", "user '" .. user .. "' is not connected") end
    local old = kit.status[user] or "offline"
    if old == status then return false end
    kit.status[user] = status ~= "offline" and status or nil
    notify_presence(user, status)
    return true
  end

  function hub.presence_subscribe(conn_id, users)
    local statuses = {}
    for _, u in ipairs(users) do
      if type(u) ~= "string" then protocol.fail("bad_message", "user_ids must be strings") end
      kit.watchers[u] = kit.watchers[u] or {}
      kit.watchers[u][conn_id] = true
      statuses[u] = hub.presence_get(u)
    end
    return statuses
  end

  -- Timers, on the kit's virtual clock: kit:advance(ms) fires them. As in
  -- the core, the callback is a function (a closure, cancelled by
  -- kit:reload()) or a name "module.function" with a JSON-able argument,
  -- resolved when set and again each time it fires.
  local function start_timer(ms, cb, arg, every)
    if type(ms) ~= "number" then error("bad argument #1 (number expected)", 3) end
    if type(cb) ~= "function" and type(cb) ~= "string" then
      error("a timer calls a function or a name 'module.function' (got " .. type(cb) .. ")", 3)
    end
    if not (ms >= 1 and ms <= 86400000 * 365) then error("a timer's delay is 1 ms to a year", 3) end
    local n = 0
    for _ in pairs(kit.timers) do n = n + 1 end
    if n >= 10000 then error("at most 10000 timers", 3) end
    local t = { at = kit.clock + ms, every = every and ms or nil }
    if type(cb) == "string" then
      if #cb > 128 then error("a timer's name is at most 128 bytes", 3) end
      local ok, why = kit:resolve_timer(cb)
      if not ok then error(why, 3) end
      t.name = cb
      if arg ~= nil then
        t.arg = encode(arg)
        if #t.arg > 65536 then error("a timer's argument is at most 65536 bytes of JSON", 3) end
      end
    else
      t.fn = cb
    end
    kit.next_timer = kit.next_timer + 1
    t.id, t.order = kit.next_timer, kit.next_timer
    kit.timers[t.id] = t
    return t.id
  end
  function hub.after(ms, cb, arg) return start_timer(ms, cb, arg, false) end
  function hub.every(ms, cb, arg) return start_timer(ms, cb, arg, true) end
  function hub.cancel(id)
    local had = kit.timers[id] ~= nil
    kit.timers[id] = nil
    return had
  end

  function hub.conn_info(conn_id)
    local c = kit.conns[conn_id]
    if not c then return nil end
    return {
      id = conn_id, user = c.user, connected_at = c.connected_at, last_activity = now(),
      messages_in = 0, messages_out = #c.inbox, bytes_in = 0, bytes_out = 0,
      ip = c.ip or "127.0.0.1",
    }
  end

  return setmetatable(kit, { __index = M })
end

-- The kit ----------------------------------------------------------------

-- A new connection of user (created on its first connection, made online
-- with subscribers told). Returns the conn table handlers get.
function M:connect(user)
  self.next_id = self.next_id + 1
  local id = tostring(self.next_id)
  self.conns[id] = { id = id, user = user, inbox = {}, connected_at = self.clock }
  local u = self.users[user]
  if not u then
    u = { conns = {} }
    self.users[user] = u
    self.hub.presence_set(user, "online")
  end
  u.conns[id] = true
  return { id = id, user = user }
end

-- What the core does when a connection closes: on the user's last one,
-- leave every room (user_left to those who remain) and go offline.
function M:disconnect(conn)
  local c = self.conns[conn.id]
  if not c then return end
  for _, w in pairs(self.watchers) do w[conn.id] = nil end
  local u = self.users[c.user]
  u.conns[conn.id] = nil
  if next(u.conns) == nil then
    for _, room in ipairs(self.hub.user_rooms(c.user)) do
      self.hub.leave(room, c.user)
      self.hub.send_room(room, { type = "user_left", room_id = room, from = c.user, timestamp = self.clock })
    end
    self.conns[conn.id] = nil
    self.hub.presence_set(c.user, "offline")
    self.users[c.user] = nil
    self.store.user[c.user] = nil
  end
  self.conns[conn.id] = nil
end

-- Runs fn(...) with this kit's hub as `require "hub"` and this kit's own
-- modules in package.loaded: a module a script requires under one kit
-- (bound to that kit's hub) is not the one another kit gets, so specs that
-- make a fresh kit each time do not share scripts/lib modules either.
function M:with_hub(fn, ...)
  local loaded = package.loaded
  local before = {}
  for k, v in pairs(loaded) do before[k] = v end
  for k, v in pairs(self.modules) do loaded[k] = v end
  loaded.hub = self.hub
  local results = { pcall(fn, ...) }
  for k, v in pairs(loaded) do
    -- Lua modules only: a C module (cjson) is the same for every kit.
    if before[k] ~= v and k ~= "hub" and (self.modules[k] ~= nil or package.searchpath(k, package.path)) then
      self.modules[k] = v
    end
  end
  for k in pairs(self.modules) do loaded[k] = before[k] end
  loaded.hub = before.hub
  if not results[1] then error(results[2], 0) end
  return unpack(results, 2, table.maxn(results))
end

-- Loads a handler file with this fake as `require "hub"`. Each call loads
-- the file afresh.
function M:load(path)
  local chunk, err = loadfile(path, "t")
  if not chunk then error(err, 2) end
  local ok, fn = pcall(self.with_hub, self, chunk)
  if not ok then error(fn, 2) end
  assert(type(fn) == "function", path .. ": a handler must return a function")
  return fn
end

-- The reply as the client decodes it, added to the connection's inbox.
local function answer(self, conn, msg, reply)
  local ok, encoded = pcall(encode, reply)
  if not ok then
    reply = { type = "error", id = msg.id, code = "handler_error",
              message = "the handler's reply cannot be encoded as JSON" }
    encoded = encode(reply)
  end
  reply = decode(encoded)
  local c = self.conns[conn.id]
  if c then c.inbox[#c.inbox + 1] = reply end
  return reply
end

-- Runs handler for conn with msg and returns the reply the client would get
-- (an ack or error table), or nil when there is none. The reply also lands
-- in the connection's inbox, as on the wire. The message goes through a
-- JSON round trip first, as a client frame does.
function M:run(handler, conn, msg)
  local reply = self:with_hub(protocol.run, handler, { id = conn.id, user = conn.user, meta = conn.meta },
    as_received(msg))
  if reply then return answer(self, conn, msg, reply) end
  return nil
end

local function exists(path)
  local f = io.open(path, "r")
  if f then f:close() end
  return f ~= nil
end

-- Dispatches as the core does: <scripts_dir>/hooks/on_message.lua first,
-- if there is one (nil or true goes on, false drops the message, a table
-- replaces it, hub.fail answers with that error), then the handler
-- <scripts_dir>/<type>.lua, or unknown_type if there is none. Returns the
-- reply, or nil when there is none.
function M:dispatch(conn, msg)
  msg = as_received(msg)
  local hook_path = self.scripts_dir .. "/hooks/on_message.lua"
  if exists(hook_path) then
    local hook = self:load(hook_path)
    local c = { id = conn.id, user = conn.user, meta = conn.meta }
    local ok, res = pcall(self.with_hub, self, hook, c, msg)
    if not ok then
      local e = protocol.is_fail(res) and res or { code = "handler_error", message = "message hook failed" }
      if not protocol.is_fail(res) then
        self.hub.log("error", "hook on_message failed conn=%s user=%s: %s", conn.id, conn.user, tostring(res))
      end
      return answer(self, conn, msg, { type = "error", id = msg.id, code = e.code, message = e.message })
    end
    if res == false then
      -- Dropped, as in the core: an ack without fields when the frame has
      -- an id to answer.
      if msg.id == nil then return nil end
      return answer(self, conn, msg, { type = "ack", id = msg.id })
    end
    if type(res) == "table" then
      -- The replacement answers the client's frame: it carries its id.
      res.id = msg.id
      msg = res
      if type(msg.type) ~= "string" then
        return answer(self, conn, msg, { type = "error", id = msg.id, code = "handler_error",
          message = "the message hook returned a message without a type" })
      end
    end
  end
  local path = self.scripts_dir .. "/" .. tostring(msg.type) .. ".lua"
  if not exists(path) then
    return answer(self, conn, msg, { type = "error", id = msg.id, code = "unknown_type",
      message = "no handler for type '" .. tostring(msg.type) .. "'" })
  end
  return self:run(self:load(path), conn, msg)
end

-- Resolves a timer's name "module.function" as the core does: the
-- function, or nil and why.
function M:resolve_timer(name)
  return protocol.timer_function(name, function(module)
    return self:with_hub(require, module)
  end)
end

-- Fires one timer as the core does: a one-shot is gone before it runs; an
-- error is logged (kit.logs) and stops nothing else; a named timer whose
-- function is gone is cancelled with a warning.
local function fire(self, t)
  if not t.every then self.timers[t.id] = nil end
  local fn, arg = t.fn, nil
  if t.name then
    local why
    fn, why = self:resolve_timer(t.name)
    if not fn then
      self.timers[t.id] = nil
      self.hub.log("warn", "timer %d cancelled: %s", t.id, why)
      return
    end
    if t.arg then arg = decode(t.arg) end
  end
  local ok, err = pcall(self.with_hub, self, fn, arg)
  if not ok then
    self.hub.log("error", "timer %d%s failed: %s", t.id, t.name and " (" .. t.name .. ")" or "", tostring(err))
  end
end

-- Moves the fake clock (hub.now()) forward by ms, firing every timer that
-- comes due on the way, in order of due time (then of setting), each with
-- hub.now() at its due time; timers set by timers fire too if they come
-- due within ms.
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
      self.next_timer = self.next_timer + 1
      due.order = self.next_timer
    end
    fire(self, due)
  end
  self.clock = target
end

-- What a reload does to timers: closures are cancelled (their state is
-- gone), named timers carry on. Returns how many were cancelled.
function M:reload()
  local n = 0
  for id, t in pairs(self.timers) do
    if t.fn then
      self.timers[id] = nil
      n = n + 1
    end
  end
  return n
end

-- Everything conn received so far (server frames and replies), in order.
-- With a type, only frames of that type.
function M:sent(conn, type_name)
  local c = self.conns[conn.id]
  local out = {}
  for _, m in ipairs(c and c.inbox or {}) do
    if not type_name or m.type == type_name then out[#out + 1] = m end
  end
  return out
end

-- Forgets what every connection received.
function M:clear()
  for _, c in pairs(self.conns) do c.inbox = {} end
end

M.encode = encode
M.decode = decode

return M
