// --script-memory: a handler (or timer) that allocates without end is
// stopped with handler_error "out of memory"; the server, its rooms, its
// connections and hub.store carry on. A state whose scripts keep the
// memory is replaced by a fresh load.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Client, Server, tempScripts } from './lib/harness.mjs';

describe('script memory cap', () => {
  let server;
  let a;
  let b;
  before(async () => {
    const dir = tempScripts();
    const write = (name, body) => fs.writeFileSync(path.join(dir, name), body);
    // Garbage without end: the call fails, a collection frees it all.
    write('hog.lua', 'return function() local t = {} while true do t[#t + 1] = string.rep("x", 1000) .. #t end end\n');
    // One allocation far over the cap.
    write('huge.lua', 'return function() return { n = #string.rep("x", 1e9) } end\n');
    // Memory the script keeps: only a fresh state gets it back.
    write('leak.lua', 'local keep = {}\nreturn function() while true do keep[#keep + 1] = string.rep("y", 1000) .. #keep end end\n');
    write('timer_leak.lua', [
      'local hub = require "hub"',
      'local keep = {}',
      'return function()',
      '  hub.after(1, function() while true do keep[#keep + 1] = string.rep("z", 1000) .. #keep end end)',
      '  return {}',
      'end', ''].join('\n'));
    write('remember.lua', 'local hub = require "hub"\nreturn function(conn, msg) hub.store.set("k", msg.v) return {} end\n');
    write('recall.lua', 'local hub = require "hub"\nreturn function() return { v = hub.store.get("k") } end\n');
    server = await new Server(['--script-memory', '16', '--script-timeout', '3000'], { scripts: dir }).start();
    a = await Client.connect(server, 'greedy');
    b = await Client.connect(server, 'bystander');
    await b.request({ type: 'join_room', room_id: 'calm' });
    await a.request({ type: 'join_room', room_id: 'calm' });
    await a.request({ type: 'remember', v: 'kept' });
  });
  after(() => server.stop());

  async function everythingStillWorks() {
    await a.alive();
    await b.alive();
    const info = await b.request({ type: 'room_info', room_id: 'calm' });
    assert.deepEqual(info.members, ['bystander', 'greedy'], 'rooms survive');
    const sent = await a.request({ type: 'chat', room_id: 'calm', payload: { text: 'still here' } });
    assert.equal(sent.type, 'ack');
    const got = await b.next((m) => m.type === 'chat' && m.payload.text === 'still here');
    assert.equal(got.from, 'greedy');
    assert.equal((await a.request({ type: 'recall' })).v, 'kept', 'hub.store survives');
  }

  for (const type of ['hog', 'huge']) {
    test(`${type}: handler_error "out of memory", the state goes on`, async () => {
      const err = await a.request({ type }, 5000);
      assert.equal(err.code, 'handler_error');
      assert.equal(err.message, 'out of memory');
      await everythingStillWorks();
      assert.match(server.log, /ran into the 16 MB memory cap/);
    });
  }

  test('memory the scripts keep: the state is replaced, twice over', async () => {
    for (let round = 1; round <= 2; round++) {
      const err = await a.request({ type: 'leak' }, 5000);
      assert.equal(err.message, 'out of memory');
      await everythingStillWorks();
    }
    assert.equal(server.log.match(/replacing the Lua state: the memory cap is used up/g).length, 2);
  });

  test('a timer that hogs memory is contained; the next message gets a fresh state', async () => {
    const before = (server.log.match(/replacing the Lua state/g) || []).length;
    await a.request({ type: 'timer_leak' });
    await server.waitLog(/timer \d+ failed: out of memory/);
    await everythingStillWorks();
    assert.equal(server.log.match(/replacing the Lua state/g).length, before + 1);
    assert.equal(a.seen('error').length, 0);
  });
});
