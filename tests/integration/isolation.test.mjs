// One script cannot change what another does: `hub` (and hub.store,
// hub.array_mt, hub.NO_ACK) is read-only, with an error naming the field;
// modules from scripts/lib and cjson are each handler file's own. The
// shipped chat still works after a hostile handler tried every way in.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Client, Server, tempScripts } from './lib/harness.mjs';

describe('script isolation', () => {
  let server;
  let a;
  let b;
  before(async () => {
    const dir = tempScripts();
    const write = (name, body) => fs.writeFileSync(path.join(dir, name), body);
    // Each attack runs on its own and reports the error it got, or "wrote".
    write('hostile.lua', `
local hub = require "hub"
local validate = require "validate"
local cjson = require "cjson"
local attacks = {
  publish = function() hub.publish = function() return 4242 end end,
  new_field = function() hub.extra = true end,
  store = function() hub.store.set = function() end end,
  rawset = function() rawset(hub, "publish", function() return 4242 end) end,
  rawset_store = function() rawset(hub.store, "get", nil) end,
  setmetatable = function() setmetatable(hub, nil) end,
  array_mt = function() hub.array_mt.__index = function() return "x" end end,
  array_mt_via_list = function(msg) getmetatable(msg.list).__newindex = error end,
  no_ack = function() hub.NO_ACK.x = 1 end,
  insert = function() table.insert(hub.store, "x") end,
  reply_mt = function() getmetatable(hub.reply("pong")).__index = {} end,
  fail_mt = function()
    local _, e = pcall(hub.fail, "x", "y")
    getmetatable(e).__tostring = nil
  end,
}
return function(conn, msg)
  local out = {}
  for name, attack in pairs(attacks) do
    local ok, err = pcall(attack, msg)
    out[name] = ok and "wrote" or tostring(err):gsub("^[^:]*:%d+: ", "")
  end
  -- Writes to a module and to cjson stay in this file's own copies.
  validate.member = function() end
  validate.room_id = function() return "elsewhere" end
  rawset(validate, "payload", function() return {} end)
  cjson.encode_max_depth(1)
  return out
end
`);
    write('encode.lua', 'local cjson = require "cjson"\nreturn function() return { json = cjson.encode({ a = { b = 1 } }) } end\n');
    server = await new Server([], { scripts: dir }).start();
    a = await Client.connect(server, 'mallory');
    b = await Client.connect(server, 'bob');
    await b.request({ type: 'join_room', room_id: 'r' });
  });
  after(() => server.stop());

  test('every write to hub is an error naming the field', async () => {
    const out = await a.request({ type: 'hostile', list: [1] });
    assert.equal(out.type, 'ack', JSON.stringify(out));
    assert.equal(out.publish, 'attempt to write hub.publish: hub is read-only');
    assert.equal(out.new_field, 'attempt to write hub.extra: hub is read-only');
    assert.equal(out.store, 'attempt to write hub.store.set: hub.store is read-only');
    assert.equal(out.rawset, 'attempt to write hub.publish: hub is read-only');
    assert.equal(out.rawset_store, 'attempt to write hub.store.get: hub.store is read-only');
    assert.equal(out.setmetatable, 'hub is read-only: its metatable cannot change');
    assert.equal(out.array_mt, 'attempt to write hub.array_mt.__index: hub.array_mt is read-only');
    assert.equal(out.array_mt_via_list, 'attempt to write hub.array_mt.__newindex: hub.array_mt is read-only');
    assert.equal(out.no_ack, 'attempt to write hub.NO_ACK.x: hub.NO_ACK is read-only');
    assert.equal(out.insert, 'hub.store is read-only: table.insert cannot change it');
    // The metatables that mark replies and protocol errors are out of reach.
    assert.equal(out.reply_mt, 'attempt to index a boolean value');
    assert.equal(out.fail_mt, 'attempt to index a boolean value');
  });

  test('the shipped chat still works after the hostile handler ran', async () => {
    await a.request({ type: 'hostile', list: [] });
    // validate.member was replaced in the hostile file's copy only: mallory
    // is still not in room r.
    const refused = await a.request({ type: 'chat', room_id: 'r', payload: { text: 'sneak' } });
    assert.equal(refused.code, 'not_in_room');
    await a.request({ type: 'join_room', room_id: 'r' });
    const ack = await a.request({ type: 'chat', room_id: 'r', payload: { text: 'hello' } });
    assert.equal(ack.type, 'ack');
    assert.notEqual(ack.seq, 4242);
    const got = await b.next((m) => m.type === 'chat' && m.payload.text === 'hello');
    assert.equal(got.seq, ack.seq);
    assert.equal(got.room_id, 'r');
    assert.equal((await a.request({ type: 'ping' })).type, 'pong');
    // cjson's settings are per file: another file's encoder is untouched.
    assert.equal((await a.request({ type: 'encode' })).json, '{"a":{"b":1}}');
  });
});
