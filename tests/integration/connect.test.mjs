// Connecting: identity, the welcome frame, HTTP on the same port.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { Client, Server, withTimeout } from './lib/harness.mjs';

describe('connecting', () => {
  let server;
  let staticDir;
  before(async () => {
    staticDir = fs.mkdtempSync(path.join(os.tmpdir(), 'luahub-static-'));
    fs.writeFileSync(path.join(staticDir, 'index.html'), '<h1>hello luahub</h1>');
    server = await new Server(['--static', staticDir]).start();
  });
  after(() => server.stop());

  test('the first frame is a welcome with conn_id, user_id and timestamp', async () => {
    const before = Date.now();
    const c = await Client.connect(server, 'alice');
    assert.equal(c.welcome.user_id, 'alice');
    assert.equal(typeof c.welcome.conn_id, 'string');
    assert.ok(c.welcome.conn_id.length > 0);
    assert.ok(Number.isInteger(c.welcome.timestamp));
    assert.ok(c.welcome.timestamp >= before - 1000 && c.welcome.timestamp <= Date.now() + 1000);
    const d = await Client.connect(server, 'alice');
    assert.notEqual(d.welcome.conn_id, c.welcome.conn_id, 'each connection has its own id');
    await c.close();
    await d.close();
  });

  test('a client without user= is a guest', async () => {
    const a = await Client.connect(server, undefined);
    const b = await Client.connect(server, undefined);
    assert.match(a.user, /^guest-\d+$/);
    assert.match(b.user, /^guest-\d+$/);
    assert.notEqual(a.user, b.user);
    await a.close();
    await b.close();
  });

  for (const bad of ['bad id', 'x'.repeat(65), 'a/b', '']) {
    test(`a bad user id (${JSON.stringify(bad.slice(0, 10))}) is closed with 4001`, async () => {
      const c = await Client.connect(server, bad, { expectWelcome: false });
      const { code } = await c.closed();
      assert.equal(code, 4001);
      assert.equal(c.seen('welcome').length, 0);
    });
  }

  test('a user id of 64 allowed characters is accepted', async () => {
    const id = 'a.b@c-d_' + 'x'.repeat(56);
    const c = await Client.connect(server, id);
    assert.equal(c.user, id);
    await c.close();
  });

  test('GET /healthz answers 200 with JSON', async () => {
    const res = await fetch(`http://127.0.0.1:${server.port}/healthz`);
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.status, 'ok');
    assert.equal(typeof body.connections, 'number');
  });

  test('static files are served at /', async () => {
    const res = await fetch(`http://127.0.0.1:${server.port}/`);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /hello luahub/);
    const missing = await fetch(`http://127.0.0.1:${server.port}/nope.html`);
    assert.equal(missing.status, 404);
  });

  test('a WebSocket upgrade at another path than /ws is refused', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/other?user=x`);
    const outcome = await withTimeout(new Promise((resolve) => {
      ws.on('open', () => resolve('open'));
      ws.on('error', () => resolve('refused'));
      ws.on('unexpected-response', () => resolve('refused'));
    }), 3000, 'upgrade outcome');
    assert.equal(outcome, 'refused');
    ws.terminate();
  });
  // TCP_NODELAY on every accepted socket (set on the listening socket,
  // which Linux copies to each): a client that only listens acknowledges
  // late (delayed ACK, 40 ms), and with Nagle's algorithm each small frame
  // written while the one before is unacknowledged would wait for that.
  test('frames reach a client that only listens at once, one after another (no Nagle delay)', async () => {
    const sub = await Client.connect(server, 'nd-sub');
    const pub = await Client.connect(server, 'nd-pub');
    await sub.request({ type: 'join_room', room_id: 'nodelay' });
    await pub.request({ type: 'join_room', room_id: 'nodelay' });
    const late = [];
    for (let i = 0; i < 40; i++) {
      // The listener answers something now and then (its acknowledgments
      // then wait to ride on what it sends: delayed, up to 40 ms), and a
      // frame follows the pong before it is acknowledged.
      await sub.alive();
      const t0 = performance.now();
      await pub.request({ type: 'chat', room_id: 'nodelay', payload: { i } });
      await sub.next((m) => m.type === 'chat' && m.payload.i === i);
      const ms = performance.now() - t0;
      if (ms >= 30) late.push(Math.round(ms));
    }
    assert.ok(late.length < 8, `frames held back: ${late.length} of 40 took 30 ms or more (${late})`);
    await sub.close();
    await pub.close();
  });
});
