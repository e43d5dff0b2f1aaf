-- fakecore.lua: the test kit's fake of the C side of the scripts' API.
--
-- An in-memory stand-in for what core/script*.c put in `hub` (sending,
-- rooms, presence, connections, timers, JSON, hub.limits) and in the
-- runtime's private `core` table (answer, log, the store, set_fail,
-- set_array_mt, set_timer_runner), over one shared state of rooms,
-- connections, presence, the store and timers on a virtual clock, with
-- what the core writes on the wire recorded per connection. Nothing of
-- the Lua side is here: lua/fakehub.lua runs the real lua/runtime.lua (and
-- with it hub.lua, protocol.lua and the sandbox) on top of it.

local cjson = require "cjson"
local dkjson = require "dkjson"
local protocol = require "protocol"

local M = {}

-- The core's limits, as hub.limits gives them (core/room.h, core/conn.h,
-- core/script_int.h). The one copy in the kit; test_script.c checks that
-- it is the core's.
M.limits = {
  room_id_max = 128, user_id_max = 64, user_id_chars = "A-Z a-z 0-9 _ . @ -",
  timer_delay_max = 31536000000, timers_max = 10000, timer_name_max = 128, timer_arg_max = 65536,
  -- --max-listed-members's default; a kit's own is opts.max_listed_members
  -- (lua/fakehub.lua).
  max_listed_members = 1000,
}
local LIMITS = M.limits

function M.valid_user_id(s)
  return type(s) == "string" and #s >= 1 and #s <= LIMITS.user_id_max
    and not s:find("[^%w_.@%-]")
end

-- ---- JSON, as the core maps Lua values (core/script_json.c) ------------
--
-- The libraries write and read the text; what is written once here is the
-- core's mapping: a table with the array metatable, or with keys exactly
-- 1..n, is an array (an empty one too), any other an object; nil and
-- hub.null are null; numbers as the core writes them (integers exactly,
-- others in the shortest form that reads back the same); NaN, functions,
-- odd keys and nesting past 32 are errors. dkjson writes (a value may
-- write its own text, which cjson 2.1.0 cannot: it has no empty array and
-- 14 digits at most) and reads (arrays marked with the array metatable,
-- null as hub.null); cjson checks, strictly, that a text is JSON.

local MAX_DEPTH = 32
local strict = cjson.new()
strict.decode_invalid_numbers(false)
strict.decode_max_depth(MAX_DEPTH + 1)

local RAW = { __tojson = function(t) return t[1] end }
-- hub.history's raw frames ({raw = true}): the frames' own text, which
-- the encoder writes as an array, as script_history.c's userdata.
local FRAMES = { __metatable = "frames" }
local ARRAY = { __jsontype = "array" }
local OBJECT = { __jsontype = "object" }

local function number_text(v)
  if v ~= v or v == math.huge or v == -math.huge then error("cannot encode NaN or infinity", 0) end
  if v > -2 ^ 53 and v < 2 ^ 53 and v == math.floor(v) then return string.format("%d", v) end
  for _, f in ipairs({ "%.15g", "%.16g" }) do
    local s = f:format(v)
    if tonumber(s) == v then return s end
  end
  return ("%.17g"):format(v)
end

local as_json -- what dkjson writes for v (below)

-- Lazy payloads, as core/script_json.c makes them: a client's payload
-- reaches the handler as an empty table that fills itself at its first
-- read or write (the sandbox's raw functions fill it first). The core
-- keeps the client's text and writes it for an untouched one; the kit
-- keeps the decoded payload and writes that.
local LAZY = setmetatable({}, { __mode = "k" }) -- lazy table -> decoded
local LAZY_MT = {}

local function materialize(t)
  local src = LAZY[t]
  if src == nil or getmetatable(t) ~= LAZY_MT then return t end
  for k, v in pairs(src) do
    if rawget(t, k) == nil then rawset(t, k, v) end
  end
  LAZY[t] = nil
  setmetatable(t, nil)
  return t
end
LAZY_MT.__index = function(t, k) materialize(t) return rawget(t, k) end
LAZY_MT.__newindex = function(t, k, v) materialize(t) rawset(t, k, v) end

-- msg with its payload object made lazy (msg is changed).
function M.lazy_payload(msg, array_mt)
  local p = type(msg) == "table" and rawget(msg, "payload")
  if type(p) == "table" and getmetatable(p) ~= array_mt then
    local t = setmetatable({}, LAZY_MT)
    LAZY[t] = p
    msg.payload = t
  end
  return msg
end

-- The fields of table t as an object, keys in skip left out.
local function members(t, depth, array_mt, skip)
  materialize(t)
  local out = setmetatable({}, OBJECT)
  for k, v in pairs(t) do
    local kt = type(k)
    if kt ~= "string" and kt ~= "number" then error("cannot encode a table key of type " .. kt, 0) end
    k = tostring(k)
    if not (skip and skip[k]) then out[k] = as_json(v, depth + 1, array_mt) end
  end
  return out
end

function as_json(v, depth, array_mt)
  local t = type(v)
  if v == nil or v == protocol.null then return setmetatable({ "null" }, RAW) end
  if t == "boolean" or t == "string" then return v end
  if t == "number" then return setmetatable({ number_text(v) }, RAW) end
  if t ~= "table" then error("cannot encode a " .. t, 0) end
  if getmetatable(v) == "frames" and rawget(v, 0) == FRAMES then
    return setmetatable({ "[" .. table.concat(v, ",") .. "]" }, RAW)
  end
  if LAZY[v] ~= nil and getmetatable(v) == LAZY_MT then
    if next(v) == nil then v = LAZY[v] else materialize(v) end
  end
  if depth > MAX_DEPTH then error("cannot encode: nested too deeply (or a cycle)", 0) end
  local n, count = #v, 0
  local is_array = getmetatable(v) == array_mt
  if not is_array and n > 0 then
    for k in pairs(v) do
      if type(k) ~= "number" then count = -1 break end
      count = count + 1
    end
    is_array = count == n
  end
  if not is_array then return members(v, depth, array_mt) end
  local out = setmetatable({}, ARRAY)
  for i = 1, n do out[i] = as_json(v[i], depth + 1, array_mt) end
  return out
end

local function encode(v, array_mt)
  return dkjson.encode(as_json(v, 0, array_mt or protocol.array_mt))
end

-- A frame the core writes around a script's fields (an answer, publish's
-- stamp): "{" .. head, fields' members but those in skip, tail .. "}"
-- (head and tail JSON members, or "").
local function frame_around(head, fields, array_mt, skip, tail)
  local parts = { head ~= "" and head or nil }
  local body = fields and dkjson.encode(members(fields, 0, array_mt, skip)):sub(2, -2) or ""
  if body ~= "" then parts[#parts + 1] = body end
  if tail ~= "" then parts[#parts + 1] = tail end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- The id as the client wrote it, or "".
local function id_member(id_json)
  return id_json and '"id":' .. id_json or ""
end

local function decode(s, array_mt)
  local ok, err = pcall(strict.decode, s)
  if not ok then error("not JSON: " .. tostring(err):gsub("^.-: ", ""), 0) end
  return (dkjson.decode(s, 1, protocol.null, nil, array_mt or protocol.array_mt))
end


-- ---- the C side: `hub`'s C functions and the runtime's `core` ----------

local STATUSES = { online = true, away = true, busy = true, offline = true }
local LEVELS = { error = true, warn = true, info = true, debug = true }

local function arg_error(n, fname, expected, v)
  error(string.format("bad argument #%d to '%s' (%s expected, got %s)", n, fname, expected, type(v)), 0)
end

local function check_string(v, n, fname)
  if type(v) == "number" then return tostring(v) end
  if type(v) ~= "string" then arg_error(n, fname, "string", v) end
  return v
end

local function check_table(v, n, fname)
  if type(v) ~= "table" then arg_error(n, fname, "table", v) end
  return v
end

local function sorted_keys(set, array_mt)
  local out = {}
  for k in pairs(set or {}) do out[#out + 1] = k end
  table.sort(out)
  return setmetatable(out, array_mt)
end

-- What the core's side does with the kit's state, whoever asks (a
-- script through `hub`, or the kit for a connection that closes).

-- ephemeral: the frame's delivery class (core/frame.h), kept beside the
-- inbox for the specs (fakehub's :ephemeral).
local function deliver(kit, cid, text, ephemeral)
  local c = kit.conns[cid]
  if not c then return 0 end
  c.inbox[#c.inbox + 1] = text
  if ephemeral then c.ephemeral[#c.inbox] = true end
  c.bytes_out = c.bytes_out + #text
  return 1
end

-- A frame the core writes itself (hub_frames.c).
local function core_frame(kit, cid, t, ephemeral)
  return deliver(kit, cid, encode(t), ephemeral)
end

local function set_status(kit, uid, status)
  if (kit.status[uid] or "offline") == status then return false end
  kit.status[uid] = status ~= "offline" and status or nil
  for cid in pairs(kit.watchers[uid] or {}) do
    core_frame(kit, cid, { type = "presence", payload = { user_id = uid, status = status }, timestamp = kit.clock }, true)
  end
  return true
end

-- History, as core/room.c keeps it: each room's newest kit.history_size
-- published frames, none older than kit.history_ttl seconds; a room left
-- empty stays (seq, epoch, history) that long, then goes.
local function ttl_ms(kit) return kit.history_ttl * 1000 end

-- Drops what is past its time in room r (id) at the kit's clock; deletes
-- the room if it has been empty that long. Returns the room, or nil.
local function expire_room(kit, id, r)
  local h, keep = r.history, {}
  for _, e in ipairs(h) do
    if e.at > kit.clock - ttl_ms(kit) then keep[#keep + 1] = e end
  end
  r.history = keep
  if r.empty_since and kit.clock - r.empty_since >= ttl_ms(kit) then
    kit.rooms[id] = nil
    return nil
  end
  return r
end

-- What the server's once-a-second sweep does (hub_sweep).
local function sweep(kit)
  for id, r in pairs(kit.rooms) do expire_room(kit, id, r) end
end

local function count(set)
  local n = 0
  for _ in pairs(set) do n = n + 1 end
  return n
end

-- uid leaves room; a room left empty drops its stored state and stays,
-- empty, for the history's time. Returns whether uid left, and how many
-- members the room has then.
local function leave(kit, room, uid)
  local r = kit.rooms[room]
  if not r then return false, 0 end
  if not kit.users[uid] or not r.members[uid] then return false, count(r.members) end
  r.members[uid] = nil
  if next(r.members) == nil then
    kit.store.room[room] = nil
    r.empty_since = kit.clock
  end
  return true, count(r.members)
end

-- The fresh `hub` and `core` tables of one runtime state (state), over the
-- kit's shared state (kit), as script.c's injectors fill them.
local function c_side(kit, state)
  local hub, core = {}, {}
  local function fail(code, message) state.fail(code, message) end
  local function enc(v) return encode(v, state.array_mt) end
  local function dec(s) return decode(s, state.array_mt) end

  -- sending
  local function arg_frame(msg, n, fname)
    if type(msg) == "string" then
      local ok, err = pcall(strict.decode, msg)
      if not ok then error("message is not JSON: " .. tostring(err), 0) end
      return msg
    end
    return enc(check_table(msg, n, fname))
  end

  local function arg_opts(o, n, fname)
    if o == nil then return nil, nil, false end
    check_table(o, n, fname)
    local xc = o.except_conn ~= nil and check_string(o.except_conn, n, fname) or nil
    local xu = o.except_user ~= nil and check_string(o.except_user, n, fname) or nil
    if o.ephemeral ~= nil and type(o.ephemeral) ~= "boolean" then
      error("ephemeral must be a boolean", 0)
    end
    return xc, xu, o.ephemeral == true
  end

  -- host_send: to the user's connections but except_conn.
  local function to_user(uid, text, xc, eph)
    local u, n = kit.users[uid], 0
    for cid in pairs(u and u.conns or {}) do
      if cid ~= xc then n = n + deliver(kit, cid, text, eph) end
    end
    return n
  end

  function hub.send(cid, msg, o)
    cid = check_string(cid, 1, "send")
    local xc, xu, eph = arg_opts(o, 3, "send")
    local text, c = arg_frame(msg, 2, "send"), kit.conns[cid]
    if cid == xc or (c and c.user == xu) then return 0 end
    return deliver(kit, cid, text, eph)
  end

  local function send_users(ids, msg, o, fname, msg_n)
    local xc, xu, eph = arg_opts(o, msg_n + 1, fname)
    local text, seen, n = arg_frame(msg, msg_n, fname), {}, 0
    if xu and not kit.users[xu] then xu = nil end
    for _, uid in ipairs(ids) do
      if not seen[uid] and uid ~= xu then
        seen[uid] = true
        n = n + to_user(uid, text, xc, eph)
      end
    end
    return n
  end

  function hub.send_user(uid, msg, o)
    return send_users({ check_string(uid, 1, "send_user") }, msg, o, "send_user", 2)
  end

  function hub.send_users(ids, msg, o)
    check_table(ids, 1, "send_users")
    for i = 1, #ids do
      if type(ids[i]) ~= "string" then error("user ids must be strings", 0) end
    end
    return send_users(ids, msg, o, "send_users", 2)
  end

  function hub.send_room(room, msg, o)
    room = check_string(room, 1, "send_room")
    local xc, xu, eph = arg_opts(o, 3, "send_room")
    local text, r, n = arg_frame(msg, 2, "send_room"), kit.rooms[room], 0
    for uid in pairs(r and r.members or {}) do
      if uid ~= xu then n = n + to_user(uid, text, xc, eph) end
    end
    return n
  end

  function hub.broadcast(msg, o)
    local xc, xu, eph = arg_opts(o, 2, "broadcast")
    local text, n = arg_frame(msg, 1, "broadcast"), 0
    for cid, c in pairs(kit.conns) do
      if cid ~= xc and c.user ~= xu then n = n + deliver(kit, cid, text, eph) end
    end
    return n
  end

  local STAMPED = { seq = true, room_id = true }
  function hub.publish(room, msg, member)
    room = check_string(room, 1, "publish")
    check_table(msg, 2, "publish")
    if member ~= nil then member = check_string(member, 3, "publish") end
    -- Encoded before the seq is taken: no gap for a message that fails.
    local head = frame_around("", msg, state.array_mt, STAMPED, ""):sub(2, -2)
    local r = kit.rooms[room]
    if member and not (r and r.members[member]) then
      return fail("not_in_room", "you are not in room '" .. room .. "'")
    end
    if not r then return fail("not_found", "no room '" .. room .. "'") end
    r.seq = r.seq + 1
    r.message_count = r.message_count + 1
    local text = frame_around(head, nil, nil, nil, '"seq":' .. number_text(r.seq) .. ',"room_id":' .. enc(room))
    for uid in pairs(r.members) do to_user(uid, text) end
    -- The frame that went out, kept as it is.
    if kit.history_size > 0 then
      expire_room(kit, room, r)
      local h = r.history
      h[#h + 1] = { text = text, seq = r.seq, at = kit.clock }
      if #h > kit.history_size then table.remove(h, 1) end
    end
    return r.seq
  end

  local OWN = { type = true, id = true }
  function core.answer(type_name, fields)
    type_name = check_string(type_name, 1, "answer")
    local call = kit.call
    if not call then error("no frame to answer", 0) end
    local head = frame_around('"type":' .. enc(type_name), nil, nil, nil, id_member(call.id_json)):sub(2, -2)
    local text = frame_around(head, type(fields) == "table" and fields or nil, state.array_mt, OWN, "")
    deliver(kit, call.conn, text)
    call.answer = text
  end

  -- rooms
  function hub.join(room, uid)
    if type(room) ~= "string" and type(room) ~= "number" then arg_error(1, "join", "string", room) end
    room = tostring(room)
    if #room == 0 or #room > LIMITS.room_id_max or room:find("\0", 1, true) then
      return fail("bad_message", "room_id must be 1 to " .. LIMITS.room_id_max .. " characters")
    end
    uid = check_string(uid, 2, "join")
    if not kit.users[uid] then return fail("not_found", "user '" .. uid .. "' is not connected") end
    local r = kit.rooms[room] and expire_room(kit, room, kit.rooms[room])
    if not r then
      kit.epochs = kit.epochs + 1
      r = { members = {}, seq = 0, message_count = 0, created_at = kit.clock, history = {},
        epoch = string.format("%x-%x", kit.started, kit.epochs) }
      kit.rooms[room] = r
    end
    r.empty_since = nil
    if r.members[uid] then return false, count(r.members) end
    r.members[uid] = true
    return true, count(r.members)
  end

  function hub.leave(room, uid)
    room, uid = check_string(room, 1, "leave"), check_string(uid, 2, "leave")
    return leave(kit, room, uid)
  end

  function hub.is_member(room, uid)
    room, uid = check_string(room, 1, "is_member"), check_string(uid, 2, "is_member")
    local r = kit.rooms[room]
    return r ~= nil and r.members[uid] == true
  end

  -- room_members(room [, {after=, limit=, member=}]): with options, a
  -- page in byte order (the core keeps an ordered index; here, a sort).
  function hub.room_members(room, o)
    room = check_string(room, 1, "room_members")
    local r = kit.rooms[room]
    if o == nil then return r and sorted_keys(r.members, state.array_mt) or nil end
    check_table(o, 2, "room_members")
    for _, k in ipairs({ "after", "member" }) do
      if o[k] ~= nil and type(o[k]) ~= "string" then
        error("hub.room_members: " .. k .. " must be a string", 0)
      end
    end
    local limit = o.limit
    if limit ~= nil and (type(limit) ~= "number" or limit < 0 or limit > 2 ^ 53 or limit ~= math.floor(limit)) then
      error("hub.room_members: limit must be a whole number >= 0", 0)
    end
    if o.member and not (r and r.members[o.member]) then
      return fail("not_in_room", "you are not in room '" .. room .. "'")
    end
    if not r then return nil end
    local page = setmetatable({}, state.array_mt)
    for _, uid in ipairs(sorted_keys(r.members)) do
      if limit and #page >= limit then break end
      if not o.after or uid > o.after then page[#page + 1] = uid end
    end
    return page
  end

  function hub.room_info(room)
    room = check_string(room, 1, "room_info")
    local r = kit.rooms[room]
    if not r then return nil end
    local n = count(r.members)
    return {
      room_id = room, name = room, member_count = n,
      members = n <= kit.max_listed_members and sorted_keys(r.members, state.array_mt) or nil,
      created_at = r.created_at, message_count = r.message_count, seq = r.seq, epoch = r.epoch,
    }
  end

  -- hub.history (core/script_history.c over host_history)
  function hub.history(room, o)
    room = check_string(room, 1, "history")
    if o ~= nil then check_table(o, 2, "history") end
    o = o or {}
    for _, k in ipairs({ "since", "limit" }) do
      local v = o[k]
      if v ~= nil and (type(v) ~= "number" or v < 0 or v > 2 ^ 53 or v ~= math.floor(v)) then
        error("hub.history: " .. k .. " must be a whole number >= 0", 0)
      end
    end
    local member = o.member ~= nil and check_string(o.member, 2, "history") or nil
    local r = kit.rooms[room] and expire_room(kit, room, kit.rooms[room])
    if member and not (r and r.members[member]) then
      return fail("not_in_room", "you are not in room '" .. room .. "'")
    end
    if not r then return nil end
    local h, limit, from = r.history, o.limit or math.huge, 1
    if o.since then
      while from <= #h and h[from].seq <= o.since do from = from + 1 end
    else
      from = math.max(1, #h - limit + 1)
    end
    local texts = {}
    for i = from, math.min(#h, from + limit - 1) do texts[#texts + 1] = h[i].text end
    local messages
    if o.raw then
      texts[0] = FRAMES
      messages = setmetatable(texts, FRAMES)
    else
      messages = setmetatable({}, state.array_mt)
      for i, text in ipairs(texts) do messages[i] = dec(text) end
    end
    return { epoch = r.epoch, seq = r.seq, messages = messages }
  end

  function hub.user_rooms(uid)
    uid = check_string(uid, 1, "user_rooms")
    local set = {}
    for id, r in pairs(kit.rooms) do
      if r.members[uid] then set[id] = true end
    end
    return sorted_keys(set, state.array_mt)
  end

  -- presence
  function hub.presence_get(uid)
    return kit.status[check_string(uid, 1, "presence_get")] or "offline"
  end

  function hub.presence_set(uid, status)
    uid, status = check_string(uid, 1, "presence_set"), check_string(status, 2, "presence_set")
    if not STATUSES[status] then
      return fail("bad_message", "status must be online, away, busy or offline")
    end
    if not kit.users[uid] then return fail("not_found", "user '" .. uid .. "' is not connected") end
    return set_status(kit, uid, status)
  end

  function hub.presence_subscribe(cid, uids)
    cid = check_string(cid, 1, "presence_subscribe")
    check_table(uids, 2, "presence_subscribe")
    local statuses = {}
    for i = 1, #uids do
      local uid = uids[i]
      if type(uid) ~= "string" then return fail("bad_message", "user_ids must be strings") end
      if not kit.conns[cid] then
        return fail("rate_limited", "at most 10000 presence subscriptions per connection")
      end
      kit.watchers[uid] = kit.watchers[uid] or {}
      kit.watchers[uid][cid] = true
      statuses[uid] = hub.presence_get(uid)
    end
    return statuses
  end

  -- connections
  function hub.online_users() return sorted_keys(kit.users, state.array_mt) end

  function hub.user_connections(uid)
    local u = kit.users[check_string(uid, 1, "user_connections")]
    return sorted_keys(u and u.conns, state.array_mt)
  end

  function hub.conn_info(cid)
    cid = check_string(cid, 1, "conn_info")
    local c = kit.conns[cid]
    if not c then return nil end
    return {
      id = cid, user = c.user, connected_at = c.connected_at, last_activity = c.last_activity,
      messages_in = c.messages_in, messages_out = #c.inbox, bytes_in = c.bytes_in, bytes_out = c.bytes_out,
      ip = c.ip,
    }
  end

  hub.valid_user_id = M.valid_user_id
  function hub.now() return kit.clock end
  hub.limits = {}
  for k, v in pairs(LIMITS) do hub.limits[k] = v end
  hub.limits.max_listed_members = kit.max_listed_members

  -- timers, on the kit's virtual clock (kit:advance)
  local function start_timer(fname, ms, cb, arg, every)
    if type(ms) ~= "number" then arg_error(1, fname, "number", ms) end
    if type(cb) ~= "function" and type(cb) ~= "string" then
      error("a timer calls a function or a name 'module.function' (got " .. type(cb) .. ")", 0)
    end
    if not (ms >= 1 and ms <= LIMITS.timer_delay_max) then error("a timer's delay is 1 ms to a year", 0) end
    local n = 0
    for _ in pairs(kit.timers) do n = n + 1 end
    if n >= LIMITS.timers_max then error("at most " .. LIMITS.timers_max .. " timers", 0) end
    local t = { at = kit.clock + ms, every = every and ms or nil, state = state }
    if type(cb) == "string" then
      if #cb > LIMITS.timer_name_max then
        error("a timer's name is at most " .. LIMITS.timer_name_max .. " bytes", 0)
      end
      -- Resolved now, so that a misspelled name fails in the handler.
      local ok, why = state.run_timer(cb, nil, true)
      if not ok then error(why, 0) end
      t.name = cb
      if arg ~= nil then
        t.arg = enc(arg)
        if #t.arg > LIMITS.timer_arg_max then
          error("a timer's argument is at most " .. LIMITS.timer_arg_max .. " bytes of JSON", 0)
        end
      end
    else
      t.fn = cb
    end
    kit.last_timer = kit.last_timer + 1
    t.id, t.order = kit.last_timer, kit.last_timer
    kit.timers[t.id] = t
    return t.id
  end
  function hub.after(ms, cb, arg) return start_timer("after", ms, cb, arg, false) end
  function hub.every(ms, cb, arg) return start_timer("every", ms, cb, arg, true) end
  function hub.cancel(id)
    if type(id) ~= "number" then arg_error(1, "cancel", "number", id) end
    local had = kit.timers[id] ~= nil
    kit.timers[id] = nil
    return had
  end
  function core.set_timer_runner(fn) state.run_timer = fn end

  -- JSON
  hub.null = protocol.null
  function hub.encode(...)
    if select("#", ...) == 0 then error("bad argument #1 to 'encode' (value expected)", 0) end
    return enc((...))
  end
  function hub.decode(s) return dec(check_string(s, 1, "decode")) end
  function core.set_array_mt(mt) state.array_mt = check_table(mt, 1, "set_array_mt") end
  core.lazy_raw = LAZY
  function core.materialize(t)
    if type(t) == "table" then materialize(t) end
    return t
  end
  function core.set_lazy(on) state.lazy = on and true or nil end

  -- the store: values kept as JSON; a room's or user's scope only while
  -- the room or user exists
  local KINDS = { global = true, room = true, user = true }
  local function scope_of(kind, name, fname)
    if not KINDS[kind] then
      error("bad argument #1 to '" .. fname .. "' (invalid option '" .. tostring(kind) .. "')", 0)
    end
    return kit.store[kind][check_string(name, 2, fname)]
  end
  function core.store_get(kind, name, key)
    local s = scope_of(kind, name, "store_get")
    local v = s and s[check_string(key, 3, "store_get")]
    if v == nil then return nil end
    return dec(v)
  end
  function core.store_set(kind, name, key, value)
    if value == nil then return core.store_delete(kind, name, key) and nil end
    local s = scope_of(kind, name, "store_set")
    key = check_string(key, 3, "store_set")
    local text = enc(value)
    if not s then
      if (kind == "room" and not (kit.rooms[name] and next(kit.rooms[name].members))) or (kind == "user" and not kit.users[name]) then
        return fail("not_found", "no " .. kind .. " '" .. name .. "'")
      end
      s = {}
      kit.store[kind][name] = s
    end
    s[key] = text
  end
  function core.store_delete(kind, name, key)
    local s = scope_of(kind, name, "store_delete")
    key = check_string(key, 3, "store_delete")
    local had = s ~= nil and s[key] ~= nil
    if s then s[key] = nil end
    return had
  end

  -- waiting: the kit's host answers every call at once, so no call waits;
  -- the kit calls handlers directly (runtime.run), outside the runtime's
  -- coroutines
  core.WAIT = setmetatable({}, { __tostring = function() return "core.WAIT" end })
  core.DONE = setmetatable({}, { __tostring = function() return "core.DONE" end })
  function core.reply() error("no reply to push: the kit's host answers at once", 0) end

  -- logging, protocol.fail
  function core.log(level, msg)
    level, msg = check_string(level, 1, "log"), check_string(msg, 2, "log")
    if not LEVELS[level] then error("unknown log level '" .. level .. "'", 0) end
    kit.logs[#kit.logs + 1] = { level = level, message = msg }
  end
  function core.set_fail(fn) state.fail = fn end

  return hub, core
end

M.encode, M.decode, M.number_text = encode, decode, number_text
M.frame_around, M.id_member, M.sorted_keys = frame_around, id_member, sorted_keys
M.deliver, M.set_status, M.leave, M.core_frame = deliver, set_status, leave, core_frame
M.sweep = sweep
M.c_side = c_side

return M
