// Messages of every size around the server's read size (256 bytes) and
// well past it (assembled from pieces) are answered at once: the flush
// that waits for more data from a fast sender never leaves a frame
// unsent when nothing more comes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, Server } from './lib/harness.mjs';

describe('message sizes', () => {
  let server;
  let a;
  let b;
  before(async () => {
    server = await new Server().start();
    a = await Client.connect(server, 'sizer');
    b = await Client.connect(server, 'reader');
    await a.request({ type: 'join_room', room_id: 'sizes' });
    await b.request({ type: 'join_room', room_id: 'sizes' });
  });
  after(() => server.stop());

  test('each size from 150 to 700 bytes, one at a time, answered within 500 ms', async () => {
    const frame = (id, text) => JSON.stringify({ type: 'chat', id, room_id: 'sizes', payload: { text } });
    const base = frame(0, '').length;
    for (let size = 150; size <= 700; size++) {
      const text = 'x'.repeat(size - base - String(size).length + 1);
      const t0 = Date.now();
      const ack = await a.request({ type: 'chat', id: size, room_id: 'sizes', payload: { text } }, 500);
      assert.equal(ack.type, 'ack', `size ${size}`);
      const got = await b.next((m) => m.type === 'chat' && m.payload.text.length === text.length, 500);
      assert.equal(got.from, 'sizer');
      assert.ok(Date.now() - t0 < 500, `size ${size} took ${Date.now() - t0} ms`);
    }
  });

  test('a burst of large messages arrives whole and in order', async () => {
    const texts = Array.from({ length: 50 }, (_, i) => `${i}:` + 'y'.repeat(1000 + i * 37));
    for (const text of texts) a.send({ type: 'chat', room_id: 'sizes', payload: { text } });
    const seen = [];
    while (seen.length < texts.length) {
      const m = await b.next((f) => f.type === 'chat' && f.payload.text.includes(':y'), 2000);
      seen.push(m.payload.text);
    }
    assert.deepEqual(seen, texts);
  });
});
