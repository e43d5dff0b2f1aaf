-- scaling-plan.lua -- the arithmetic of docs/scaling.md's plan to 10
-- million connections: nodes, rooms, what each node and each Redis shard
-- carries, and where it breaks first.
--
--   luajit docs/scaling-plan.lua [--name=value ...]
--
-- Every input below can be overridden by name (`--conns=2e6`); `--help`
-- lists them. The output is the Markdown that docs/scaling.md quotes, and
-- tests/lua/scaling_plan_spec.lua checks that it adds up and that the doc
-- quotes it exactly.

-- Inputs, with where each comes from (docs/scaling.md says more).
local inputs = {
  -- The load.
  { "conns", 10e6, "concurrent WebSocket connections (one per user)" },
  { "session_s", 1800, "mean connection lifetime, s (opens/s = conns / this)" },
  { "presence_watch", 20, "users whose presence each connection subscribes to" },
  -- Rooms in four classes: how many, members each, chat messages/s each.
  { "small_rooms", 2e6, "rooms of the small class (direct, groups)" },
  { "small_size", 5, "members of a small room" },
  { "small_rate", 0.01, "messages/s in one small room" },
  { "group_rooms", 50e3, "rooms of the group class" },
  { "group_size", 100, "members of a group room" },
  { "group_rate", 0.1, "messages/s in one group room" },
  { "large_rooms", 200, "rooms of the large class" },
  { "large_size", 10e3, "members of a large room" },
  { "large_rate", 1, "messages/s in one large room" },
  { "huge_rooms", 5, "rooms of the huge class (live events)" },
  { "huge_size", 200e3, "members of a huge room" },
  { "huge_rate", 2, "messages/s in one huge room" },
  { "announce_max", 0, "rooms above this size send no user_joined/left (0: all do, as today)" },
  -- A node: one core, one libuv thread.
  { "conns_per_node", 50e3, "connections per node" },
  { "nodes_per_machine", 16, "nodes per machine (one per core, --reuse-port)" },
  { "user_kib_per_conn", 2.0, "KiB of luahub RSS per idle connection (benchmarks: 0.86-1.97)" },
  { "kernel_kib_per_conn", 4.1, "KiB of kernel slab per idle TCP socket (measured)" },
  { "buffer_kib_per_conn", 4, "KiB of socket buffers in flight per connection (assumed)" },
  { "deliver_us", 7.1, "node CPU per delivery to a client, us (benchmarks: 100 msg/s -> 1000)" },
  { "handler_us", 15, "node CPU per chat from a client, us (benchmarks: rooms 500 x 4)" },
  { "redis_in_us", 5, "node CPU per frame from Redis, us (assumed: parse, frame once)" },
  { "connect_us", 71, "node CPU per connection opened, us (benchmarks: 14,110 handshakes/s)" },
  { "ping_interval", 25, "--ping-interval, s" },
  { "ping_us", 8, "node CPU per ping round trip, us (benchmarks: 123,500/s)" },
  -- A Redis shard: one core (tests/bench/redis_ops.sh on this machine).
  { "script_us", 7, "Redis CPU per publish/join/leave script, us (EVALSHA, pipelined)" },
  { "conn_script_us", 7.5, "Redis CPU per connection open/close script, us (taken as a join)" },
  { "subscribe_us", 3, "Redis CPU per SSUBSCRIBE or SUNSUBSCRIBE, us (pipelined)" },
  { "cmd_us", 8, "Redis CPU added to a command that arrives alone, us (PING: 9 against 0.8)" },
  { "delivery_us", 3, "Redis CPU per delivery to a subscribed node, us (assumed: 0.3 batched, 7 alone on loopback)" },
  { "shard_target", 0.5, "share of a shard's core to plan for (headroom for storms)" },
  { "shard_gib", 8, "GiB of data to plan for per shard (replication, fork for RDB)" },
  { "block_ms", 100, "longest a single script may hold a shard, ms" },
  { "user_bytes", 480, "Redis bytes per user: rooms set, conns hash, node users field" },
  { "online_bytes", 120, "Redis bytes per user in luahub:online and luahub:presence" },
  { "room_bytes", 640, "Redis bytes per room of 5: info hash and members set" },
  { "member_bytes", 56, "Redis bytes per further member of a room" },
  { "channel_bytes", 200, "Redis bytes per channel's first subscriber" },
  { "sub_bytes", 127, "Redis bytes per further subscriber of a channel" },
  -- Failures.
  { "storm_s", 10, "seconds over which a lost node's clients reconnect (jittered backoff)" },
  { "restart_s", 300, "seconds over which every client reconnects after a full outage" },
  { "recover_s", 10, "seconds for every node to register its users again when Redis is back" },
}

local P, doc = {}, {}
for _, i in ipairs(inputs) do
  P[i[1]], doc[i[1]] = i[2], i[3]
end

local function usage(out)
  out:write("usage: luajit docs/scaling-plan.lua [--name=value ...]\n\n")
  for _, i in ipairs(inputs) do
    out:write(string.format("  --%-20s %-10s %s\n", i[1], tostring(i[2]), i[3]))
  end
end

for _, a in ipairs(arg or {}) do
  if a == "--help" then
    usage(io.stdout)
    os.exit(0)
  end
  local name, value = a:match("^%-%-([%w_]+)=(.+)$")
  local n = value and tonumber(value)
  if not name or P[name] == nil or not n or n < 0 then
    io.stderr:write("scaling-plan.lua: bad argument '", a, "': ",
      not name and "expected --name=value"
        or P[name] == nil and "no input of that name"
        or "not a number >= 0", " (--help lists the inputs)\n")
    os.exit(2)
  end
  P[name] = n
end
if P.conns < 1 or P.conns_per_node < 1 or P.shard_target <= 0 or P.shard_gib <= 0
  or P.session_s <= 0 or P.storm_s <= 0 or P.restart_s <= 0 or P.recover_s <= 0
  or P.ping_interval <= 0 or P.block_ms <= 0 then
  io.stderr:write("scaling-plan.lua: conns and conns_per_node must be >= 1; shard_target,",
    " shard_gib, session_s, storm_s, restart_s, recover_s, ping_interval and block_ms > 0\n")
  os.exit(2)
end

-- Formatting: integers with thousands separators, else 3 significant digits.
local function fmt(x)
  if x ~= x then return "-" end
  if x == math.huge then return "inf" end
  local r = math.floor(x + 0.5)
  if math.abs(x) >= 100 or x == r then
    local s = tostring(r):reverse():gsub("(%d%d%d)", "%1,"):reverse()
    return (s:gsub("^(%-?),", "%1"))
  end
  return string.format("%.3g", x)
end

local out = {}
local function line(...)
  out[#out + 1] = table.concat({ ... }, " | ")
end
local function head(...)
  out[#out + 1] = ""
  line(...)
  local cols = {}
  for k = 1, select("#", ...) do cols[k] = "---" end
  line(unpack(cols))
end
local function row(label, ...)
  local cells = { label }
  for k = 1, select("#", ...) do cells[#cells + 1] = fmt((select(k, ...))) end
  line(unpack(cells))
end

-- Nodes.
local nodes = math.ceil(P.conns / P.conns_per_node)
local machines = math.ceil(nodes / P.nodes_per_machine)
local kib_per_conn = P.user_kib_per_conn + P.kernel_kib_per_conn + P.buffer_kib_per_conn
local node_mib = P.conns_per_node * kib_per_conn / 1024
local opens = P.conns / P.session_s -- and as many closes

-- How many of n bins get at least one of k balls thrown at random: the
-- nodes that hold a member of a room of k members (no sticky sessions),
-- or the distinct users among k picks.
local function hit(n, k)
  return n * (1 - (1 - 1 / n) ^ k)
end
local function nodes_hit(size)
  return hit(nodes, size)
end

-- Rooms. Per class: chat messages, membership changes (a user's last
-- connection closing leaves every room; coming back joins them again), the
-- deliveries each causes to clients and to nodes (Redis pub/sub).
local classes = { "small", "group", "large", "huge" }
local C, T = {}, { rooms = 0, members = 0, msgs = 0, member_ev = 0,
  client_dlv = 0, redis_dlv = 0, subs = 0, redis_us = 0 }
for _, name in ipairs(classes) do
  local rooms, size, rate = P[name .. "_rooms"], P[name .. "_size"], P[name .. "_rate"]
  local c = { rooms = rooms, size = size, rate = rate }
  c.members = rooms * size
  c.hit = nodes_hit(size)
  c.msgs = rooms * rate
  c.member_ev = 2 * c.members / P.session_s -- a leave and a join per session
  local announced = P.announce_max == 0 or size <= P.announce_max
  c.client_dlv = c.msgs * size + (announced and c.member_ev * size or 0)
  -- Every membership change still reaches the room's nodes (their mirror).
  c.redis_dlv = (c.msgs + c.member_ev) * c.hit
  c.subs = rooms * c.hit -- (node, room channel) subscriptions
  c.redis_us = (c.msgs + c.member_ev) * (P.script_us + P.cmd_us) + c.redis_dlv * P.delivery_us
  C[name] = c
  for k in pairs(T) do T[k] = T[k] + c[k] end
end

-- A node's second of work, us of CPU, by kind.
local node = {
  { "deliveries to clients", T.client_dlv / nodes, P.deliver_us },
  { "chats from clients", T.msgs / nodes, P.handler_us },
  { "frames from Redis", T.redis_dlv / nodes, P.redis_in_us },
  { "connections opened", opens / nodes, P.connect_us },
  { "pings", P.conns_per_node / P.ping_interval, P.ping_us },
}
local node_us = 0
for _, k in ipairs(node) do node_us = node_us + k[2] * k[3] end

-- Redis. Presence: a user's first connection and last close each publish
-- to luahub:presence:<uid>, which every node with a watcher subscribes to.
local presence_ev = 2 * opens
local presence_dlv = presence_ev * nodes_hit(P.presence_watch)
-- Subscriptions change as connections come and go: a node subscribes to
-- its user's channel and to each room the node had no member of yet (and
-- unsubscribes on the way out). Approximated by the chance that the
-- user's rooms are new to the node.
local rooms_per_conn = T.members / P.conns
local sub_ops = 2 * opens * (1 + rooms_per_conn + P.presence_watch)
local user_subs = P.conns
-- A node subscribes once to each user its connections watch.
local presence_subs = nodes * hit(P.conns, P.conns_per_node * P.presence_watch)
local redis = {
  { "room scripts (chat, join, leave) and their deliveries", T.redis_us },
  { "connection open/close scripts", 2 * opens * (P.conn_script_us + P.cmd_us) },
  { "presence deliveries", presence_dlv * P.delivery_us },
  { "subscribe/unsubscribe", sub_ops * (P.subscribe_us + P.cmd_us) },
}
local redis_us = 0
for _, k in ipairs(redis) do redis_us = redis_us + k[2] end

local mem_users = P.conns * P.user_bytes
local mem_online = P.conns * P.online_bytes
local mem_rooms = T.rooms * P.room_bytes + math.max(0, T.members - 5 * T.rooms) * P.member_bytes
local channels = T.rooms + P.conns + hit(P.conns, presence_subs) -- room, user, presence
local pairs_ = T.subs + user_subs + presence_subs
local mem_subs = channels * P.channel_bytes + math.max(0, pairs_ - channels) * P.sub_bytes
local mem_total = mem_users + mem_online + mem_rooms + mem_subs
local GiB = 2 ^ 30
local shards_cpu = math.ceil(redis_us / 1e6 / P.shard_target)
local shards_mem = math.ceil(mem_total / GiB / P.shard_gib)
local shards = math.max(shards_cpu, shards_mem)

-- Output.
line("## Nodes")
head("quantity", "value")
row("connections", P.conns)
row("connections per node", P.conns_per_node)
row("nodes = ceil(connections / connections per node)", nodes)
row("machines of " .. fmt(P.nodes_per_machine) .. " nodes", machines)
row("KiB per connection (luahub + kernel + buffers)", kib_per_conn)
row("MiB per node for its connections", node_mib)
row("connections opened per second (cluster)", opens)

line("")
line("## Rooms (per second, whole cluster)")
head("class", "rooms", "members", "nodes per room", "chats/s", "joins+leaves/s",
  "client deliveries/s", "Redis deliveries/s", "node subscriptions")
for _, name in ipairs(classes) do
  local c = C[name]
  row(name .. " (" .. fmt(c.size) .. ")", c.rooms, c.members, c.hit, c.msgs,
    c.member_ev, c.client_dlv, c.redis_dlv, c.subs)
end
row("total", T.rooms, T.members, 0 / 0, T.msgs, T.member_ev, T.client_dlv,
  T.redis_dlv, T.subs)

line("")
line("## One node (one core)")
head("work", "per second", "us each", "% of its core")
for _, k in ipairs(node) do row(k[1], k[2], k[3], k[2] * k[3] / 1e4) end
row("total", 0 / 0, 0 / 0, node_us / 1e4)

line("")
line("## Redis (all shards)")
head("work", "cores")
for _, k in ipairs(redis) do row(k[1], k[2] / 1e6) end
row("total", redis_us / 1e6)
head("memory", "GiB")
row("users (rooms set, conns hash, node users)", mem_users / GiB)
row("luahub:online and luahub:presence (one slot)", mem_online / GiB)
row("rooms (info, members)", mem_rooms / GiB)
row("subscriptions (" .. fmt(pairs_) .. " node-channel pairs)", mem_subs / GiB)
row("total", mem_total / GiB)
head("shards", "value")
row("shards for CPU (" .. fmt(P.shard_target * 100) .. "% of a core each)", shards_cpu)
row("shards for memory (" .. fmt(P.shard_gib) .. " GiB each)", shards_mem)
row("shards = the larger", shards)
row("% of a core per shard", redis_us / shards / 1e4)
row("GiB per shard", mem_total / shards / GiB)

-- Where it breaks: each limit as the share of its capacity the load uses.
-- A room's ceiling: the chat rate at which it alone fills its shard (at
-- shard_target) or a node's core. The reap runs inside one script: no
-- command overhead per user.
line("")
line("## Where it breaks first")
head("limit", "load", "capacity", "used %")
local limits = {}
local function limit(name, load, cap)
  limits[#limits + 1] = { name, load, cap }
end
limit("a node's core (us/s)", node_us, 1e6)
local conn_us = P.conn_script_us + P.cmd_us
local global = 2 * opens * conn_us
limit("the luahub:online shard (us/s)", global, P.shard_target * 1e6)
local storm = P.conns_per_node / P.storm_s
limit("the luahub:online shard, a lost node's users reconnecting (us/s)",
  global + 2 * storm * conn_us, P.shard_target * 1e6)
limit("a node's core, a lost node's users reconnecting (us/s)",
  node_us + storm / math.max(nodes - 1, 1) * (P.connect_us + rooms_per_conn * P.redis_in_us), 1e6)
limit("the luahub:online shard, every client reconnecting (us/s)",
  P.conns / P.restart_s * conn_us, P.shard_target * 1e6)
-- Redis back (empty or not): every node registers all its users again, at
-- once; the online shard takes one open each, at a whole core.
limit("the luahub:online shard, every user registered again when Redis is back (s)",
  P.conns * P.conn_script_us / 1e6, P.recover_s)
local reap = P.conns_per_node * (1 + rooms_per_conn) * P.conn_script_us
limit("a shard blocked by one script reaping a dead node (ms)", reap / 1e3, P.block_ms)
for _, name in ipairs(classes) do
  local c = C[name]
  local per_msg_shard = P.script_us + P.cmd_us + c.hit * P.delivery_us
  local local_members = c.size / c.hit
  local per_msg_node = P.redis_in_us + local_members * P.deliver_us
  local shard_cap, node_cap = P.shard_target * 1e6 / per_msg_shard, 1e6 / per_msg_node
  if shard_cap < node_cap then
    limit("one " .. name .. " room's chats on its shard (chats/s)", c.rate, shard_cap)
  else
    limit("one " .. name .. " room's chats on a node's core (chats/s)", c.rate, node_cap)
  end
end
table.sort(limits, function(a, b) return a[2] / a[3] > b[2] / b[3] end)
for _, l in ipairs(limits) do row(l[1], l[2], l[3], l[2] / l[3] * 100) end

io.write(table.concat(out, "\n"), "\n")
