-- runtime.lua: loads the handlers and dispatches client messages to them.
--
-- The core (core/script.c) runs this file once per Lua state, with the
-- `hub` table it built in C, the runtime's private functions (`core`:
-- answer, log, the store, set_fail, set_array_mt, set_timer_runner; they
-- stay in this file's locals, never in a table a script can reach), the
-- scripts directory, the sorted list of handler types found in it (files
-- <type>.lua), the runtime directory, whether the sandbox is lifted, and
-- the names of the Lua files in scripts/hooks/. Loading is all or
-- nothing: if any handler fails to load, this raises with every failure
-- (file:line each) and the core keeps the previous state in service. On
-- success it returns { dispatch = fn, types = {...}, hooks = {...}, ... }.
--
-- Every call (a message's dispatch, the on_message hook with it, a
-- timer's callback) runs in a coroutine, so that a hub function may wait
-- for the host (a cluster's round trip) without blocking the server: the
-- function's wrapper (lua/hub.lua) yields core.WAIT to C, which keeps the
-- coroutine and resumes it later. on_connect and on_disconnect run outside: they cannot wait.

local hub, core, scripts_dir, types, lua_dir, unsafe, hook_files = ...

local protocol = require "protocol"

-- The pure-Lua part of the API, added to the one table before it is
-- frozen.
assert(loadfile(lua_dir .. "/hub.lua", "t"))(hub, core, protocol)
package.loaded.hub = hub

local sandbox = require "sandbox"
sandbox.fix_string_rep()

local new_env
if not unsafe then
  local search = { scripts_dir .. "/lib/?.lua", lua_dir .. "/?.lua" }
  -- hub is the one table every script shares, so nobody may change it;
  -- each handler file gets a cjson of its own (its settings are per
  -- instance).
  sandbox.freeze(hub, "hub")
  local cjson = require "cjson.safe"
  -- Client payloads decoded lazily (core/script_json.c): the sandbox
  -- hides it, so only with the sandbox on.
  if core.set_lazy then
    sandbox.set_lazy(core.lazy_raw, core.materialize)
    core.set_lazy(true)
  end
  local function new_cjson()
    local c = cjson.new()
    local encode = c.encode
    c.encode = function(v, ...) return encode(sandbox.unlazy(v), ...) end
    return c
  end
  local preload = { hub = function() return hub end, cjson = new_cjson }
  new_env = sandbox.new(search, preload, function(line)
    core.log("info", line, 3)
  end)
end

-- Named timers, hub.after(ms, "module.function", arg): the core keeps the
-- name and the argument (as JSON), not a function, so that the timer
-- outlives a reload; when it fires, the state then in service calls
-- require("module").function(arg). run_timer(name, arg, check) returns
-- false and why when the name does not resolve; with check it only
-- resolves. Set before the handlers load: their top level may set timers.
local require_module = new_env and new_env("timer").require or require
local function run_timer(name, arg, check)
  local fn, why = protocol.timer_function(name, require_module)
  if not fn then return false, why end
  if not check then fn(arg) end
  return true
end
core.set_timer_runner(run_timer)

local handlers = {}
local failures = {}

-- Loads the handler file at path in a sandbox of its own: its function,
-- or nil and why.
local function load_file(path)
  -- Text only: precompiled bytecode can crash the VM.
  local chunk, err = loadfile(path, "t")
  if not chunk then
    -- Syntax errors name the file and line; some errors (bytecode refused)
    -- name nothing, so add the file.
    if not err:find(path, 1, true) then
      err = path .. ": " .. err
    end
    return nil, err
  end
  if new_env then setfenv(chunk, new_env(path)) end
  local ok, fn = pcall(chunk)
  if not ok then
    return nil, tostring(fn)
  end
  if type(fn) ~= "function" then
    return nil, path .. ": a handler must return a function (got " .. type(fn) .. ")"
  end
  return fn
end

local function load_handler(t)
  return load_file(scripts_dir .. "/" .. t .. ".lua")
end

for _, t in ipairs(types) do
  local fn, err = load_handler(t)
  if fn then
    handlers[t] = fn
  else
    failures[#failures + 1] = err
  end
end
-- Optional lifecycle hooks: scripts/hooks/on_connect.lua, on_message.lua,
-- on_disconnect.lua, loaded like handlers (same sandbox, same all or
-- nothing). hook_files lists the Lua files the core found in hooks/ (specs
-- left out); one that is no hook is reported, not loaded.
local HOOKS = { "on_connect", "on_message", "on_disconnect" }
local hooks, hooks_loaded, stray = {}, {}, {}
local present = {}
for _, f in ipairs(hook_files) do present[f] = true end
for _, name in ipairs(HOOKS) do
  if present[name] then
    present[name] = nil
    local fn, err = load_handler("hooks/" .. name)
    if fn then
      hooks[name] = fn
      hooks_loaded[#hooks_loaded + 1] = name
    else
      failures[#failures + 1] = err
    end
  end
end
for _, f in ipairs(hook_files) do
  if present[f] then stray[#stray + 1] = scripts_dir .. "/hooks/" .. f .. ".lua" end
end
local stray_hooks
if #stray > 0 then
  stray_hooks = table.concat(stray, ", ") .. (#stray > 1 and " are" or " is")
    .. " not a hook and not loaded (the hooks are " .. table.concat(HOOKS, ", ") .. ")"
end

if #failures > 0 then
  error(table.concat(failures, "\n"), 0)
end

-- Adds the traceback to a runtime error so that the log shows file:line of
-- every frame; protocol errors (hub.fail) pass through untouched.
local function traceback(e)
  if type(e) == "string" then
    -- An error raised in a hub function is positioned in its wrapper
    -- (lua/hub.lua, "hub.send:3: ..."): name the script's line that
    -- called it instead.
    local msg = e:match("^hub%.[%w_]+:%d+: (.*)$")
    for level = 3, msg and 12 or 0 do
      local info = debug.getinfo(level, "Sl")
      if not info then break end
      if info.what ~= "C" and not info.source:find("^=hub%.") then
        e = info.short_src .. ":" .. info.currentline .. ": " .. msg
        break
      end
    end
    return debug.traceback(e, 2)
  end
  return e
end

-- Answers the frame being dispatched: {type = type_name, id = <the frame's
-- id as the client wrote it>} with fields' members, built in C (the id
-- never passes through a Lua number). Fields that cannot be encoded turn
-- into handler_error, so the frame still gets its one answer.
local function answer(conn_id, type_name, fields, what, handler)
  local ok, err = pcall(core.answer, type_name, fields)
  if not ok then
    -- "handler chat": made here, not for every call's answer.
    if handler then what = "handler " .. what end
    core.log("error", string.format("%s reply cannot be sent conn=%s: %s",
      what, conn_id, tostring(err)), 0)
    core.answer("error", {
      code = "handler_error", message = "the handler's reply cannot be encoded as JSON",
    })
  end
end

-- Runs hook(conn, ...) contained; returns ok and what the hook returned.
local function run_hook(name, conn, ...)
  local results = { xpcall(hooks[name], traceback, conn, ...) }
  if not results[1] and not protocol.is_fail(results[2]) then
    core.log("error", string.format("hook %s failed conn=%s user=%s: %s",
      name, conn.id, conn.user, tostring(results[2])), 0)
  end
  return unpack(results, 1, 3)
end

-- Runs handler(conn, msg) and answers the frame as its result says.
local function call(handler, conn, msg, type_name)
  local kind, v, logline = protocol.call(handler, conn, msg, traceback)
  if logline then
    core.log("error", string.format("handler %s failed conn=%s user=%s: %s",
      type_name, conn.id, conn.user, logline), 0)
  end
  if kind then
    -- Encoded straight from the handler's table, in C.
    answer(conn.id, kind, v, type_name, true)
  end
end

local function dispatch(conn_id, user_id, type_name, msg, meta)
  local conn = { id = conn_id, user = user_id, meta = meta }
  local id = msg.id
  if hooks.on_message then
    -- Before every handler: nil or true goes on, false drops the message,
    -- a table replaces it, hub.fail answers with an error.
    local ok, res = run_hook("on_message", conn, msg)
    if not ok then
      local e = protocol.is_fail(res) and res or { code = "handler_error", message = "message hook failed" }
      answer(conn_id, "error", { code = e.code, message = e.message }, "on_message")
      return
    end
    if res == false then
      -- Dropped: no handler runs and nothing goes on. The sender is told
      -- no more than that the frame was received: an ack without fields,
      -- when the frame has an id to answer (docs/scripting.md says why).
      if id ~= nil then answer(conn_id, "ack", nil, "on_message") end
      return
    end
    if type(res) == "table" then
      msg = res
      -- The replacement answers the client's frame: it carries the
      -- frame's id, whatever the hook put there.
      msg.id = id
      if type(msg.type) ~= "string" then
        answer(conn_id, "error", { code = "handler_error",
          message = "the message hook returned a message without a type" }, "on_message")
        return
      end
      type_name = msg.type
    end
  end
  local handler = handlers[type_name]
  if not handler then
    -- The core answers unknown_type, in the one place it answers a type
    -- that cannot name a handler.
    return type_name
  end
  call(handler, conn, msg, type_name)
end

-- on_connect(conn): return false, reason to refuse (closed 4003 with the
-- reason); return a table to attach it to the connection as conn.meta.
-- A hook that fails refuses: a broken gate stays closed.
local function connect(conn_id, user_id)
  if not hooks.on_connect then return true end
  local ok, res, reason = run_hook("on_connect", { id = conn_id, user = user_id })
  if not ok then
    return false, protocol.is_fail(res) and res.message or "connection hook failed"
  end
  if res == false then return false, tostring(reason or "refused") end
  if type(res) == "table" then return true, res end
  return true
end

-- on_disconnect(conn, info): info = { code = close code }.
local function disconnect(conn_id, user_id, code, meta)
  if not hooks.on_disconnect then return end
  run_hook("on_disconnect", { id = conn_id, user = user_id, meta = meta }, { code = code })
end

-- ---- calls in coroutines ---------------------------------------------------
--
-- Every call runs in a coroutine whose body is worker, started and resumed
-- from C (core/script_wait.c, script__start): a call that ends leaves its
-- coroutine suspended in worker, which C keeps among the idle ones (a few
-- are kept), so a message costs no new coroutine and no Lua frame of the
-- runtime's around it. C knows which coroutine runs, so that only a call's
-- own coroutine waits (one a script makes itself cannot: its resume would
-- get the marker).

local yield = coroutine.yield
local DONE = core.DONE

-- A coroutine between calls waits for the next one, which comes with the
-- key DONE (a value only C has): a resume of a script's that got hold of
-- the coroutine (coroutine.running() in a handler) runs nothing. A call
-- over yields DONE and the body's results.
local function worker(key, fn, a, b, c, d, e)
  while true do
    if key == DONE then
      key, fn, a, b, c, d, e = yield(DONE, fn(a, b, c, d, e))
    else
      key, fn, a, b, c, d, e = yield()
    end
  end
end

-- A timer's call (the body C runs in a coroutine): fn, or the function a named timer names (resolved
-- afresh: the scripts may have been reloaded since it was set) called
-- with arg. Returns nothing, "failed" and the error, or "gone" and why the
-- name does not resolve.
local function timer(fn, name, arg)
  if name then
    local why
    fn, why = protocol.timer_function(name, require_module)
    if not fn then return "gone", why end
  end
  local ok, err = xpcall(fn, traceback, arg)
  if not ok then
    err = tostring(err)
    -- LuaJIT's out-of-memory error: the state hit --script-memory.
    if err:match("^[^\n]*") == "not enough memory" then err = "out of memory: " .. err end
    return "failed", err
  end
end

local loaded = {}
for _, t in ipairs(types) do
  loaded[#loaded + 1] = t
end

-- For the test kit (lua/fakehub.lua), which runs a handler file a spec
-- names: load(path) loads it in this state's sandbox (its function, or nil
-- and why); run(handler, conn_id, user_id, msg, meta) runs it on the frame
-- being dispatched and answers as dispatch does. The core uses neither.
local function run(handler, conn_id, user_id, msg, meta)
  call(handler, { id = conn_id, user = user_id, meta = meta }, msg, tostring(msg.type))
end

return {
  worker = worker, dispatch = dispatch, timer = timer,
  connect = connect, disconnect = disconnect,
  load = load_file, run = run,
  types = loaded, hooks = hooks_loaded, stray_hooks = stray_hooks,
  has_connect_hook = hooks.on_connect ~= nil,
  has_disconnect_hook = hooks.on_disconnect ~= nil,
}
