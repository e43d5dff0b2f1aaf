// A client's payload reaches a handler undecoded (decoded at its first
// read or write): one passed on untouched goes out as the client's own
// bytes, and a handler that reads, iterates, stores or changes it sees the
// table it always saw (docs/scripting.md, "The payload").
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Client, Server, tempScripts } from './lib/harness.mjs';

// Spacing, escapes and number forms a re-encoding would not keep.
const PAYLOAD = '{ "text" : "h\\u00e9llo \\/ \\"q\\"", "n": 1.50, "deep": {"a": [1, 2 ,{}], "z": null} }';

describe('lazy payloads', () => {
  let server;
  let a;
  let b;
  const raw = [];
  before(async () => {
    const dir = tempScripts();
    const write = (name, body) => fs.writeFileSync(path.join(dir, name), body);
    write('mutate.lua', `
local hub = require "hub"
return function(conn, msg)
  local p = msg.payload
  p.text = p.text:upper()
  p.added = true
  hub.publish(msg.room_id, { type = "chat", from = conn.user, payload = p }, conn.user)
  return {}
end
`);
    write('inserted.lua', `
local hub = require "hub"
return function(conn, msg)
  local p = msg.payload
  table.insert(p, "x")
  hub.publish(msg.room_id, { type = "chat", from = conn.user, payload = p }, conn.user)
  return {}
end
`);
    // Each op is the first thing done to the payload.
    write('look.lua', `
local cjson = require "cjson"
local ops = {
  pairs = function(p)
    local keys = {}
    for k in pairs(p) do keys[#keys + 1] = k end
    table.sort(keys)
    return table.concat(keys, ",")
  end,
  next = function(p) return next(p) ~= nil end,
  len = function(p) return #p end,
  rawget = function(p) return rawget(p, "text") end,
  getmetatable = function(p) return getmetatable(p) == nil end,
  setmetatable = function(p) setmetatable(p, { __index = function() return "dflt" end }) return p.text .. p.nope end,
  cjson = function(p) return cjson.decode(cjson.encode({ inner = p })).inner.text end,
  foreach = function(p) local n = 0 table.foreach(p, function() n = n + 1 end) return n end,
  type = function(p) return type(p) end,
}
return function(conn, msg) return { result = ops[msg.op](msg.payload) } end
`);
    write('nest.lua', `
local hub = require "hub"
return function(conn, msg)
  local v = msg.payload
  for _ = 1, msg.levels do v = { v } end
  local ok, r = pcall(hub.encode, v)
  return { ok = ok, len = ok and #r or nil }
end
`);
    write('read.lua', 'return function(conn, msg) return { text = msg.payload.text, n = msg.payload.n, a2 = msg.payload.deep.a[2] } end\n');
    write('echo.lua', 'return function(conn, msg) return msg.payload end\n');
    write('fields.lua', `
return function(conn, msg)
  return { seen = msg.type, inner = msg.x and msg.x.type, nested = msg.x and msg.x.payload and msg.x.payload.a,
    room = msg.room_id, to = msg.to, text = msg.payload and msg.payload.text }
end
`);
    write('keep.lua', `
local hub = require "hub"
return function(conn, msg)
  if msg.payload then hub.store.set("kept", msg.payload) return {} end
  local v = hub.store.get("kept")
  return { text = v.text, deep = v.deep }
end
`);
    server = await new Server([], { scripts: dir }).start();
    a = await Client.connect(server, 'alice');
    b = await Client.connect(server, 'bob');
    b.ws.on('message', (data) => raw.push(data.toString()));
    await a.request({ type: 'join_room', room_id: 'r' });
    await b.request({ type: 'join_room', room_id: 'r' });
  });
  after(() => server.stop());

  test('a payload passed on untouched goes out as the client sent it, byte for byte', async () => {
    raw.length = 0;
    a.send(`{"type":"chat","id":"x1","room_id":"r","payload":${PAYLOAD}}`);
    const m = await b.next((f) => f.type === 'chat' && f.payload.n === 1.5);
    assert.equal(m.payload.text, 'héllo / "q"');
    const frame = raw.find((s) => s.includes('"type":"chat"'));
    assert.ok(frame.includes(`"payload":${PAYLOAD}`), frame);
  });

  test('a handler that changes the payload has its change sent, not the old bytes', async () => {
    raw.length = 0;
    a.send(`{"type":"mutate","id":"x2","room_id":"r","payload":${PAYLOAD}}`);
    const m = await b.next((f) => f.type === 'chat' && f.payload.added === true);
    assert.equal(m.payload.text, 'HéLLO / "Q"');
    assert.deepEqual(m.payload.deep, { a: [1, 2, {}], z: null });
    assert.ok(!raw.some((s) => s.includes(PAYLOAD)));
  });

  test('fields given raw (table.insert) are written with the decoded ones', async () => {
    a.send(`{"type":"inserted","id":"x3","room_id":"r","payload":{"text":"t"}}`);
    const m = await b.next((f) => f.type === 'chat' && f.payload.text === 't' && f.payload[1] === 'x');
    assert.equal(m.payload.text, 't');
  });

  test('reading fields works, nested ones too', async () => {
    const r = await a.request({ type: 'read', payload: JSON.parse(PAYLOAD) });
    assert.equal(r.type, 'ack', JSON.stringify(r));
    assert.equal(r.text, 'héllo / "q"');
    assert.equal(r.n, 1.5);
    assert.equal(r.a2, 2);
  });

  test('pairs, next, #, rawget, getmetatable, setmetatable, table.foreach and cjson see the decoded table', async () => {
    const want = {
      pairs: 'deep,n,text', next: true, len: 0, rawget: 'héllo / "q"', getmetatable: true,
      setmetatable: 'héllo / "q"dflt', cjson: 'héllo / "q"', foreach: 3, type: 'table',
    };
    for (const [op, result] of Object.entries(want)) {
      const r = await a.request({ type: 'look', op, payload: JSON.parse(PAYLOAD) });
      assert.equal(r.type, 'ack', `${op}: ${JSON.stringify(r)}`);
      assert.equal(r.result, result, op);
    }
  });

  test('a payload nested deeper than the frame it came in is refused as a decoded one would be', async () => {
    // 31 levels: with the frame, the 32 a frame may have.
    let deep = '{}';
    for (let i = 1; i < 31; i++) deep = `{"a":${deep}}`;
    const frame = (levels) => `{"type":"nest","id":"n${levels}","levels":${levels},"payload":${deep}}`;
    a.send(frame(2));
    const fits = await a.next((f) => f.id === 'n2');
    assert.deepEqual([fits.type, fits.ok, fits.len], ['ack', true, deep.length + 4]);
    a.send(frame(3));
    const deeper = await a.next((f) => f.id === 'n3');
    assert.deepEqual([deeper.type, deeper.ok], ['ack', false]);
  });

  // The decoder pushes the envelope's keys from references and hands the
  // top-level type to the dispatch: a key of the same name deeper down, a
  // repeated type, or the keys in any order change nothing.
  test('the envelope keys and the type a handler is chosen by are the top-level ones, last one wins', async () => {
    a.send('{"x":{"type":"ping","payload":{"a":7}},"id":"k1","room_id":"r","to":"u","payload":{"text":"t"},"type":"fields"}');
    const r1 = await a.next((f) => f.id === 'k1');
    assert.deepEqual(r1, { type: 'ack', id: 'k1', seen: 'fields', inner: 'ping', nested: 7, room: 'r', to: 'u', text: 't' });
    a.send('{"type":"ping","id":"k2","type":"fields"}');
    const r2 = await a.next((f) => f.id === 'k2');
    assert.deepEqual(r2, { type: 'ack', id: 'k2', seen: 'fields' });
    a.send('{"type":"fields","id":"k3","type":"ping"}');
    const r3 = await a.next((f) => f.id === 'k3');
    assert.equal(r3.type, 'pong');
  });

  test('the payload returned as the ack gives the ack its fields', async () => {
    const r = await a.request({ type: 'echo', payload: { text: 'hi', n: 2 } });
    assert.equal(r.type, 'ack', JSON.stringify(r));
    assert.equal(r.text, 'hi');
    assert.equal(r.n, 2);
  });

  test('a payload kept in hub.store reads back whole', async () => {
    assert.equal((await a.request({ type: 'keep', payload: JSON.parse(PAYLOAD) })).type, 'ack');
    const r = await a.request({ type: 'keep' });
    assert.equal(r.text, 'héllo / "q"');
    assert.deepEqual(r.deep, { a: [1, 2, {}], z: null });
  });
});
