// The Lua-vs-C comparison is only fair if the C handlers (natives.c) do
// what the Lua ones do. The same conversation against luahub and against
// luahub-native must give the same frames (timestamps aside), errors
// included; and the in-process handler benchmark must count every frame.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import { BIN, Client, ROOT, Server } from '../integration/lib/harness.mjs';

const DIR = path.dirname(BIN);

async function conversation(server) {
  const a = await Client.connect(server, 'ann');
  const b = await Client.connect(server, 'bob');
  const out = [];
  const keep = (m) => { const c = { ...m }; delete c.timestamp; out.push(c); };
  await a.request({ type: 'join_room', room_id: 'r1' });
  await b.request({ type: 'join_room', room_id: 'r1' });
  keep(await a.request({ type: 'ping' }));
  keep(await a.request({ type: 'chat', room_id: 'r1', payload: { text: 'hé "x"', n: [1, 2.5, true, null, {}], e: [] } }));
  keep(await b.next((m) => m.type === 'chat'));
  keep(await a.request({ type: 'chat', room_id: 'r2', payload: { text: 'x' } }));
  keep(await a.request({ type: 'chat', room_id: 'r1' }));
  keep(await a.request({ type: 'chat', room_id: 'r1', payload: [1] }));
  keep(await a.request({ type: 'chat', room_id: '', payload: {} }));
  keep(await a.request({ type: 'chat', room_id: 'x'.repeat(129), payload: {} }));
  a.close();
  b.close();
  return out;
}

describe('C handlers (the Lua-vs-C baseline)', () => {
  test('luahub-native answers exactly as the Lua handlers do', async () => {
    const lua = await new Server().start();
    const want = await conversation(lua);
    await lua.stop();
    const native = await new Server([], { bin: path.join(DIR, 'luahub-native') }).start();
    const got = await conversation(native);
    await native.stop();
    // Key order may differ (deepEqual ignores it); error messages may be
    // worded apart.
    const norm = (fs) => fs.map((f) => {
      const o = { ...f };
      if (o.type === 'error') delete o.message;
      return o;
    });
    assert.deepEqual(norm(got), norm(want));
    assert.equal(want[1].type, 'ack');
    assert.equal(want[2].payload.text, 'hé "x"');
    assert.deepEqual(want.slice(3).map((f) => f.code),
      ['not_in_room', 'bad_message', 'bad_message', 'bad_message', 'bad_message']);
  });

  test('luahub-handler-bench counts every frame on both paths', async () => {
    const { stdout } = await promisify(execFile)(path.join(DIR, 'luahub-handler-bench'),
      ['--rooms', '20', '--members', '4', '--messages', '2000', '--json'],
      { cwd: ROOT, encoding: 'utf8', timeout: 60000 });
    const o = JSON.parse(stdout);
    for (const k of ['ping', 'chat']) {
      assert.ok(o[k].lua_msgs_per_s > 0 && o[k].c_msgs_per_s > 0);
      assert.ok(o[k].ratio > 0);
    }
  });
});
