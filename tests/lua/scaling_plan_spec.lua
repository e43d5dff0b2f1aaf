-- docs/scaling-plan.lua: the table docs/scaling.md quotes adds up, follows
-- its inputs, and is quoted exactly; the systemd unit the page shows is
-- the one in examples/.

local function run(args)
  local p = assert(io.popen("luajit docs/scaling-plan.lua " .. (args or "")
    .. " 2>&1; echo \"exit=$?\""))
  local out = p:read("*a")
  p:close()
  local text, code = out:match("^(.*)exit=(%d+)\n$")
  return text, tonumber(code)
end

local function num(cell)
  if cell == "-" then return nil end
  local n = tonumber((cell:gsub(",", "")))
  return assert(n, "not a number: " .. cell) and n
end

-- The output's tables, each named "<section>/<first header>": rows in
-- order ({label, cells}) and by label.
local function parse(text)
  local tables, section, cur = {}, nil, nil
  for l in (text .. "\n"):gmatch("(.-)\n") do
    if l:find("^## ") then
      section = l:sub(4)
    elseif l == "" then
      cur = nil
    elseif not l:find("^%-%-%-") then
      local cells = {}
      for c in (l .. " | "):gmatch("(.-) | ") do cells[#cells + 1] = c end
      local label = table.remove(cells, 1)
      if not cur then
        cur = { rows = {}, by = {} }
        tables[section .. "/" .. label] = cur
      else
        cur.rows[#cur.rows + 1] = { label, cells }
        cur.by[label] = cells
      end
    end
  end
  return tables
end

-- Values are printed to 3 significant digits or as whole numbers.
local function assert_near(want, got, what)
  local tol = 0.01 * math.max(math.abs(want), math.abs(got))
    + ((math.abs(want) >= 10 or math.abs(got) >= 10) and 1 or 0.005)
  assert(math.abs(want - got) <= tol,
    string.format("%s: printed %s, adds up to %s", what, tostring(got), tostring(want)))
end

local function plan(args)
  local text, code = run(args)
  assert.equal(0, code, text)
  local t = parse(text)
  local function get(name, label, k)
    local tab = assert(t[name], "no table " .. name)
    return num(assert(tab.by[label], "no row " .. label .. " in " .. name)[k or 1])
  end
  return t, get
end

-- What holds for any inputs.
local function check(args, conns, cpn, per_machine)
  local t, get = plan(args)
  local N = "Nodes/quantity"
  local nodes = get(N, "nodes = ceil(connections / connections per node)")
  assert.equal(conns, get(N, "connections"))
  assert.equal(cpn, get(N, "connections per node"))
  assert.equal(math.ceil(conns / cpn), nodes)
  assert.equal(math.ceil(nodes / per_machine), get(N, "machines of " .. per_machine .. " nodes"))
  assert_near(get(N, "KiB per connection (luahub + kernel + buffers)") * cpn / 1024,
    get(N, "MiB per node for its connections"), "MiB per node")

  -- Rooms: each column's total is the sum of the classes; members follow
  -- rooms and sizes; a room reaches no more nodes than there are, nor than
  -- it has members; each chat and membership change costs one Redis
  -- delivery per node of the room.
  local R = t["Rooms (per second, whole cluster)/class"]
  assert.equal(5, #R.rows)
  local total = R.by.total
  for k = 1, 8 do
    if k ~= 3 then
      local sum = 0
      for i = 1, 4 do sum = sum + num(R.rows[i][2][k]) end
      assert_near(sum, num(total[k]), "rooms, total of column " .. k)
    end
  end
  for i = 1, 4 do
    local label, c = R.rows[i][1], R.rows[i][2]
    local size = num(assert(label:match("%(([%d,]+)%)$"), label))
    assert_near(num(c[1]) * size, num(c[2]), label .. " members")
    assert(num(c[3]) <= math.min(nodes, size) * 1.001, label .. " nodes per room")
    assert_near((num(c[4]) + num(c[5])) * num(c[3]), num(c[7]), label .. " Redis deliveries")
  end

  -- A node: each part is rate x cost, the total their sum, and the node's
  -- share of the cluster's deliveries and Redis frames is 1/nodes of them.
  local node = t["One node (one core)/work"]
  local sum = 0
  for _, r in ipairs(node.rows) do
    if r[1] ~= "total" then
      assert_near(num(r[2][1]) * num(r[2][2]) / 1e4, num(r[2][3]), r[1])
      sum = sum + num(r[2][3])
    end
  end
  assert_near(sum, num(node.by.total[3]), "node total")
  assert_near(num(total[6]) / nodes, num(node.by["deliveries to clients"][1]), "deliveries per node")
  assert_near(num(total[7]) / nodes, num(node.by["frames from Redis"][1]), "Redis frames per node")
  assert_near(num(total[4]) / nodes, num(node.by["chats from clients"][1]), "chats per node")

  -- Redis: totals are sums; shards are the larger need, and share the load.
  local cpu, mem = t["Redis (all shards)/work"], t["Redis (all shards)/memory"]
  for _, tab in ipairs({ cpu, mem }) do
    local s = 0
    for _, r in ipairs(tab.rows) do
      if r[1] ~= "total" then s = s + num(r[2][1]) end
    end
    assert_near(s, num(tab.by.total[1]), "Redis total")
  end
  local S = t["Redis (all shards)/shards"]
  local shards = num(S.by["shards = the larger"][1])
  assert.equal(math.max(num(S.rows[1][2][1]), num(S.rows[2][2][1])), shards)
  assert_near(num(cpu.by.total[1]) * 100 / shards, num(S.by["% of a core per shard"][1]), "CPU per shard")
  assert_near(num(mem.by.total[1]) / shards, num(S.by["GiB per shard"][1]), "GiB per shard")

  -- Where it breaks: used % is load over capacity, worst first.
  local last = math.huge
  for _, r in ipairs(t["Where it breaks first/limit"].rows) do
    local load, cap, used = num(r[2][1]), num(r[2][2]), num(r[2][3])
    assert_near(load / cap * 100, used, r[1])
    assert(used <= last * 1.01, r[1] .. " is out of order")
    last = used
  end
  return t, get
end

describe("docs/scaling-plan.lua", function()
  it("prints a table that adds up, with its defaults", function()
    local _, get = check("", 10e6, 50e3, 16)
    assert.equal(200, get("Nodes/quantity", "nodes = ceil(connections / connections per node)"))
  end)

  it("follows its inputs", function()
    check("--conns=1e6 --conns_per_node=30000 --nodes_per_machine=4", 1e6, 30e3, 4)
    check("--conns=12345 --conns_per_node=1000 --announce_max=1000", 12345, 1000, 16)
    check("--conns=1 --conns_per_node=1", 1, 1, 16)
  end)

  it("stops announcing joins in rooms above announce_max", function()
    local _, all = plan("")
    local _, capped = plan("--announce_max=1000")
    local R = "Rooms (per second, whole cluster)/class"
    -- A huge room's deliveries shrink to its chats alone; a small room's stay.
    assert.equal(10 * 200e3, capped(R, "huge (200,000)", 6))
    assert.is_true(all(R, "huge (200,000)", 6) > 100 * capped(R, "huge (200,000)", 6))
    assert.equal(all(R, "small (5)", 6), capped(R, "small (5)", 6))
  end)

  it("refuses an input it does not know, and a bad value", function()
    local text, code = run("--conn=5")
    assert.equal(2, code)
    assert.matches("bad argument '--conn=5': no input of that name", text, 1, true)
    text, code = run("--conns=many")
    assert.equal(2, code)
    assert.matches("not a number", text, 1, true)
    text, code = run("--conns_per_node=0")
    assert.equal(2, code)
    assert.matches("conns and conns_per_node must be >= 1", text, 1, true)
  end)

  it("is quoted exactly by docs/scaling.md", function()
    local f = assert(io.open("docs/scaling.md"))
    local doc = f:read("*a")
    f:close()
    local quoted = 0
    local marker = "<!%-%- luajit docs/scaling%-plan%.lua([^\n]-) %-%->\n(.-)<!%-%- end of output %-%->"
    for args, block in doc:gmatch(marker) do
      assert(args:match("^[%w %-%._=]*$"), "arguments a shell would read: " .. args)
      local text, code = run(args)
      assert.equal(0, code, text)
      -- A quote may sit in a list item (indented) or a code fence.
      block = ("\n" .. block):gsub("\n[ \t]*```[^\n]*", ""):gsub("\n[ \t]+", "\n")
      block = block:gsub("^%s+", ""):gsub("%s+$", "")
      assert(text:find(block, 1, true), "docs/scaling.md quotes output that `luajit "
        .. "docs/scaling-plan.lua " .. args .. "` does not print:\n" .. block)
      quoted = quoted + 1
    end
    local _, ends = doc:gsub("<!%-%- end of output %-%->", "")
    assert(quoted >= 1, "docs/scaling.md quotes no output of the script")
    assert.equal(ends, quoted, "a quote whose opening marker does not name the command")
  end)
end)

describe("examples/systemd/luahub@.service", function()
  it("is the unit docs/scaling.md shows, but for comments", function()
    local function lines(text)
      local t = {}
      for l in text:gmatch("[^\n]+") do
        if not l:find("^#") then t[#t + 1] = l end
      end
      return t
    end
    local f = assert(io.open("examples/systemd/luahub@.service"))
    local unit = f:read("*a")
    f:close()
    f = assert(io.open("docs/scaling.md"))
    local shown = assert(f:read("*a"):match("```ini\n(.-)```"), "no ini block in docs/scaling.md")
    f:close()
    assert.same(lines(unit), lines(shown))
  end)
end)
