// The HTTP API for backends: POST /api/publish (a room chat with its seq
// and history, or to users), GET /api/rooms/ID and /api/users/ID, behind
// an API key; on one node and across two over Redis.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client, Server, runToExit, sleep, withTimeout } from './lib/harness.mjs';
import { joined, startCluster, waitFor, waitReadyz } from './lib/redis.mjs';
import { scrape, value } from './lib/prom.mjs';

const KEY = 'api-test-key-0123456789abcdef';

// A request to the API: { status, headers, body (parsed when JSON) }.
async function api(server, method, p, { body, key = KEY, headers = {} } = {}) {
  const h = { ...headers };
  if (key !== null) h.authorization = `Bearer ${key}`;
  if (body !== undefined) h['content-type'] = 'application/json';
  const res = await fetch(`http://127.0.0.1:${server.port}${p}`, {
    method,
    headers: h,
    body: body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)),
  });
  const text = await res.text();
  let parsed = text;
  if ((res.headers.get('content-type') || '').startsWith('application/json')) parsed = JSON.parse(text);
  return { status: res.status, headers: res.headers, body: parsed };
}

// A raw HTTP exchange, for what fetch will not send.
function rawHttp(server, text) {
  return withTimeout(new Promise((resolve, reject) => {
    const s = net.connect(server.port, '127.0.0.1', () => s.write(text));
    let got = '';
    s.setEncoding('utf8');
    s.on('data', (d) => { got += d; });
    s.on('end', () => { resolve(got); s.destroy(); });
    s.on('error', reject);
  }), 5000, 'raw http');
}

const isError = (res, status, code) => {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.equal(res.body.error.code, code);
  assert.equal(typeof res.body.error.message, 'string');
};

describe('the API is off without a key', () => {
  test('every /api/ path is 404; /metrics is served', async () => {
    const s = await new Server([], { env: { LUAHUB_API_KEY: '' } }).start();
    try {
      // An empty LUAHUB_API_KEY is as none.
      isError(await api(s, 'POST', '/api/publish', { body: { room_id: 'r', payload: {} } }), 404, 'not_found');
      isError(await api(s, 'GET', '/api/rooms/r'), 404, 'not_found');
      assert.equal((await s.get('/metrics')).status, 200);
    } catch (e) {
      throw new Error(`${e.message}\n${s.log.slice(-2000)}`);
    } finally {
      await s.stop();
    }
  });
});

describe('API on one node', () => {
  let server;
  before(async () => {
    server = await new Server(['--max-message', '4k'], { env: { LUAHUB_API_KEY: KEY } }).start();
  });
  after(() => server.stop());

  test('401 without the key or with a wrong one; nothing is published', async () => {
    const [m] = await joined('auth-room', [server, 'auth-m']);
    for (const key of [null, 'wrong-key-wrong-key-wrong', `${KEY}x`, KEY.slice(0, -1)]) {
      const res = await api(server, 'POST', '/api/publish', { key, body: { room_id: 'auth-room', payload: { x: 1 } } });
      isError(res, 401, 'forbidden');
      assert.equal(res.headers.get('www-authenticate'), 'Bearer');
    }
    isError(await api(server, 'GET', '/api/rooms/auth-room', { key: null }), 401, 'forbidden');
    await sleep(100);
    assert.equal(m.seen('chat').length, 0);
    await m.close();
  });

  test('publish to a room: members get the chat with its seq, no from; it is kept in history', async () => {
    const [a, b] = await joined('pub-room', [server, 'pub-a'], [server, 'pub-b']);
    const ack = await a.request({ type: 'chat', room_id: 'pub-room', payload: { text: 'first' } });
    const payload = { text: 'from the backend', n: 1.5, list: [1, { deep: [true, null] }], empty: {}, s: 'é"\\' };
    const res = await api(server, 'POST', '/api/publish', { body: { room_id: 'pub-room', payload } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body, { seq: ack.seq + 1 });
    for (const c of [a, b]) {
      const m = await c.next((f) => f.type === 'chat' && f.payload.text === 'from the backend');
      assert.equal(m.room_id, 'pub-room');
      assert.equal(m.seq, ack.seq + 1);
      assert.deepEqual(m.payload, payload);
      assert.equal(typeof m.timestamp, 'number');
      assert.ok(Math.abs(m.timestamp - Date.now()) < 5000);
      assert.equal('from' in m, false);
    }
    // Recoverable: a user joining with since gets it from the history.
    const late = await Client.connect(server, 'pub-late');
    const j = await late.request({ type: 'join_room', room_id: 'pub-room', payload: { since: ack.seq } });
    assert.equal(j.type, 'ack');
    assert.equal(j.messages.length, 1);
    assert.deepEqual(j.messages[0].payload, payload);
    assert.equal(j.messages[0].seq, ack.seq + 1);
    // And the history request.
    const h = await a.request({ type: 'history', room_id: 'pub-room' });
    assert.deepEqual(h.messages.map((x) => x.seq), [ack.seq, ack.seq + 1]);
    for (const c of [a, b, late]) await c.close();
  });

  test('publish to a room that does not exist: 404 not_found (as hub.publish)', async () => {
    isError(await api(server, 'POST', '/api/publish', { body: { room_id: 'no-such-room', payload: {} } }), 404, 'not_found');
    // Publishing does not create it.
    isError(await api(server, 'GET', '/api/rooms/no-such-room'), 404, 'not_found');
  });

  test('publish to users: every connection of each gets it once, to as given', async () => {
    const bob1 = await Client.connect(server, 'to-bob');
    const bob2 = await Client.connect(server, 'to-bob');
    const carol = await Client.connect(server, 'to-carol');
    const other = await Client.connect(server, 'to-other');
    let res = await api(server, 'POST', '/api/publish', { body: { to: ['to-bob', 'to-carol', 'to-bob', 'to-nobody'], payload: { k: 'multi' } } });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { delivered: 3 });
    for (const c of [bob1, bob2, carol]) {
      const m = await c.next((f) => f.type === 'chat' && f.payload.k === 'multi');
      assert.deepEqual(m.to, ['to-bob', 'to-carol', 'to-bob', 'to-nobody']);
      assert.equal('from' in m, false);
      assert.equal('room_id' in m, false);
      assert.equal(typeof m.timestamp, 'number');
    }
    res = await api(server, 'POST', '/api/publish', { body: { to: 'to-carol', payload: { k: 'uni' } } });
    assert.deepEqual(res.body, { delivered: 1 });
    assert.equal((await carol.next((f) => f.type === 'chat' && f.payload.k === 'uni')).to, 'to-carol');
    await sleep(100);
    assert.equal(other.seen('chat').length, 0);
    assert.equal(bob1.seen('chat').length, 0, 'bob got it once per connection');
    for (const c of [bob1, bob2, carol, other]) await c.close();
  });

  test('bad bodies: 400 bad_message with a reason; too large 413; wrong method 405', async () => {
    const bad = [
      '{nope',
      '[1,2]',
      '"x"',
      { payload: { a: 1 } },
      { room_id: 'r', payload: [1] },
      { room_id: 'r', payload: 'text' },
      { room_id: 'r' },
      { room_id: 'r', to: 'bob', payload: {} },
      { room_id: '', payload: {} },
      { room_id: 7, payload: {} },
      { to: [], payload: {} },
      { to: ['ok', 'not valid!'], payload: {} },
      { to: [['nested']], payload: {} },
      { to: { a: 1 }, payload: {} },
      { room_id: 'x'.repeat(200), payload: {} },
    ];
    for (const body of bad) {
      const res = await api(server, 'POST', '/api/publish', { body });
      isError(res, 400, 'bad_message');
    }
    const big = await api(server, 'POST', '/api/publish', { body: { room_id: 'r', payload: { pad: 'x'.repeat(5000) } } });
    isError(big, 413, 'bad_message');
    const get = await api(server, 'GET', '/api/publish');
    isError(get, 405, 'bad_message');
    assert.equal(get.headers.get('allow'), 'POST');
    isError(await api(server, 'DELETE', '/api/rooms/r'), 405, 'bad_message');
    isError(await api(server, 'GET', '/api/nothing'), 404, 'not_found');
    // Chunked (no Content-Length): 411.
    const chunked = await rawHttp(server, `POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\n` +
      'Transfer-Encoding: chunked\r\n\r\n5\r\n{"a":\r\n0\r\n\r\n');
    assert.match(chunked, /^HTTP\/1\.1 411 /);
    // The server is fine after all that.
    assert.equal((await server.get('/healthz')).status, 200);
  });

  test('a body that arrives slowly in pieces is read; one that never ends is answered 408', async () => {
    const [m] = await joined('slow-room', [server, 'slow-m']);
    const body = JSON.stringify({ room_id: 'slow-room', payload: { slow: true } });
    const answer = await withTimeout(new Promise((resolve, reject) => {
      const s = net.connect(server.port, '127.0.0.1', async () => {
        s.write(`POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\nContent-Length: ${body.length}\r\n\r\n`);
        for (let i = 0; i < body.length; i += 7) {
          s.write(body.slice(i, i + 7));
          await sleep(5);
        }
      });
      let got = '';
      s.setEncoding('utf8');
      s.on('data', (d) => { got += d; });
      s.on('end', () => { resolve(got); s.destroy(); });
      s.on('error', reject);
    }), 5000, 'slow body');
    assert.match(answer, /^HTTP\/1\.1 200 /);
    assert.match(answer, /\{"seq":1\}/);
    assert.equal((await m.next((f) => f.type === 'chat')).payload.slow, true);
    const short = await new Server(['--handshake-timeout', '0.3'], { env: { LUAHUB_API_KEY: KEY } }).start();
    try {
      const got = await rawHttp(short, `POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\nContent-Length: 100\r\n\r\n{"room_id"`);
      assert.match(got, /^HTTP\/1\.1 408 /);
      assert.match(got, /request body not received/);
    } finally {
      await short.stop();
    }
    await m.close();
  });

  test('GET /api/rooms/ID and /api/users/ID', async () => {
    const [a, b] = await joined('info room/1', [server, 'info-a'], [server, 'info-b']);
    const a2 = await Client.connect(server, 'info-a');
    await a.request({ type: 'chat', room_id: 'info room/1', payload: {} });
    const room = await api(server, 'GET', `/api/rooms/${encodeURIComponent('info room/1')}`);
    assert.equal(room.status, 200);
    assert.equal(room.body.room_id, 'info room/1');
    assert.deepEqual([...room.body.members].sort(), ['info-a', 'info-b']);
    assert.equal(room.body.member_count, 2);
    assert.equal(room.body.seq, 1);
    assert.equal(typeof room.body.epoch, 'string');
    assert.ok(room.body.epoch.length > 0);
    const user = await api(server, 'GET', '/api/users/info-a');
    assert.equal(user.status, 200);
    assert.equal(user.body.user_id, 'info-a');
    assert.equal(user.body.online, true);
    assert.equal(user.body.status, 'online');
    assert.deepEqual([...user.body.connections].sort(), [a.connId, a2.connId].sort());
    await b.request({ type: 'status_update', payload: { status: 'away' } });
    assert.equal((await api(server, 'GET', '/api/users/info-b')).body.status, 'away');
    isError(await api(server, 'GET', '/api/users/nobody-here'), 404, 'not_found');
    isError(await api(server, 'GET', '/api/users/bad%20id!'), 400, 'bad_message');
    isError(await api(server, 'GET', '/api/rooms/never'), 404, 'not_found');
    isError(await api(server, 'GET', '/api/rooms/%zz'), 400, 'bad_message');
    for (const c of [a, a2, b]) await c.close();
  });
});

describe('--api-key-file', () => {
  test('the key is read from the file (whitespace trimmed); a short key stops the start', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'luahub-key-'));
    const file = path.join(dir, 'key');
    fs.writeFileSync(file, `  ${KEY}\n`);
    const s = await new Server(['--api-key-file', file]).start();
    try {
      const [m] = await joined('file-room', [s, 'file-m']);
      assert.deepEqual((await api(s, 'POST', '/api/publish', { body: { room_id: 'file-room', payload: {} } })).body, { seq: 1 });
      assert.equal((await api(s, 'GET', '/api/rooms/file-room', { key: 'x'.repeat(30) })).status, 401);
      await m.close();
    } finally {
      await s.stop();
    }
    fs.writeFileSync(file, 'short\n');
    const bad = await runToExit(['--port', '0', '--api-key-file', file]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /at least 16 bytes/);
    const missing = await runToExit(['--port', '0', '--api-key-file', path.join(dir, 'nope')]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /--api-key-file .*nope/);
    fs.rmSync(dir, { recursive: true });
  });
});

describe('API and metrics with two nodes over Redis', () => {
  let cluster;
  let n1;
  let n2;
  let keyDir;
  before(async () => {
    keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'luahub-key-'));
    fs.writeFileSync(path.join(keyDir, 'key'), KEY);
    cluster = await startCluster(2, { args: ['--api-key-file', path.join(keyDir, 'key')] });
    [n1, n2] = cluster.nodes;
  });
  after(async () => {
    await cluster.stop();
    fs.rmSync(keyDir, { recursive: true, force: true });
  });

  test('a publish on n1 reaches the room\'s members on both nodes with one seq, recoverable on n2', async () => {
    const [a, b] = await joined('c-room', [n1, 'c-a'], [n2, 'c-b']);
    const first = await a.request({ type: 'chat', room_id: 'c-room', payload: { n: 0 } });
    await b.next((f) => f.type === 'chat' && f.seq === first.seq);
    const res = await api(n1, 'POST', '/api/publish', { body: { room_id: 'c-room', payload: { n: 1 } } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body, { seq: first.seq + 1 });
    for (const c of [a, b]) {
      const m = await c.next((f) => f.type === 'chat' && f.payload.n === 1);
      assert.equal(m.seq, first.seq + 1);
      assert.equal(m.room_id, 'c-room');
      assert.equal('from' in m, false);
    }
    const late = await Client.connect(n2, 'c-late');
    const j = await late.request({ type: 'join_room', room_id: 'c-room', payload: { since: first.seq } });
    assert.deepEqual(j.messages.map((x) => x.payload), [{ n: 1 }]);
    isError(await api(n2, 'POST', '/api/publish', { body: { room_id: 'c-nowhere', payload: {} } }), 404, 'not_found');
    // A chat waits on Redis: timed to its answer, counted on its node,
    // and so is the error its wait ended in.
    assert.equal((await a.request({ type: 'chat', room_id: 'c-nowhere', payload: {} })).code, 'not_in_room');
    const m = await scrape(n1);
    assert.equal(value(m, 'luahub_messages_received_total', { type: 'chat' }), 2);
    assert.equal(value(m, 'luahub_handler_errors_total', { type: 'chat', code: 'not_in_room' }), 1);
    assert.equal(value(m, 'luahub_handler_duration_seconds_count', { type: 'chat' }), 2);
    assert.ok(value(m, 'luahub_handler_duration_seconds_sum', { type: 'chat' }) > 0);
    assert.equal(value(await scrape(n2), 'luahub_messages_received_total', { type: 'chat' }), 0);
    for (const c of [a, b, late]) await c.close();
  });

  test('to users on both nodes; rooms and users read from either node', async () => {
    const bob = await Client.connect(n2, 'x-bob');
    const carol = await Client.connect(n1, 'x-carol');
    const carol2 = await Client.connect(n2, 'x-carol');
    const res = await api(n1, 'POST', '/api/publish', { body: { to: ['x-bob', 'x-carol'], payload: { hi: true } } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body, { delivered: 3 });
    for (const c of [bob, carol, carol2]) {
      const m = await c.next((f) => f.type === 'chat' && f.payload.hi === true);
      assert.deepEqual(m.to, ['x-bob', 'x-carol']);
    }
    await bob.request({ type: 'join_room', room_id: 'x-room' });
    await carol.request({ type: 'join_room', room_id: 'x-room' });
    for (const node of [n1, n2]) {
      const room = await api(node, 'GET', '/api/rooms/x-room');
      assert.equal(room.status, 200);
      assert.deepEqual([...room.body.members].sort(), ['x-bob', 'x-carol']);
      assert.equal(room.body.member_count, 2);
      assert.equal(room.body.seq, 0);
      assert.equal(typeof room.body.epoch, 'string');
      const user = await api(node, 'GET', '/api/users/x-carol');
      assert.equal(user.status, 200);
      assert.equal(user.body.online, true);
      assert.deepEqual([...user.body.connections].sort(), [carol.connId, carol2.connId].sort());
      isError(await api(node, 'GET', '/api/users/x-nobody'), 404, 'not_found');
      isError(await api(node, 'GET', '/api/rooms/x-never'), 404, 'not_found');
    }
    for (const c of [bob, carol, carol2]) await c.close();
  });

  test('luahub_redis_up is 1, then 0 with Redis stopped, when the API answers 503 unavailable', async () => {
    assert.equal(value(await scrape(n1), 'luahub_redis_up'), 1);
    await cluster.redis.stop();
    await waitFor(async () => value(await scrape(n1), 'luahub_redis_up') === 0, 10000, 'redis_up 0');
    const res = await api(n1, 'POST', '/api/publish', { body: { room_id: 'c-room', payload: {} } });
    isError(res, 503, 'unavailable');
    isError(await api(n2, 'GET', '/api/users/x-carol'), 503, 'unavailable');
    await cluster.redis.start();
    await waitReadyz(n1, 200, 15000);
    await waitFor(async () => value(await scrape(n1), 'luahub_redis_up') === 1, 10000, 'redis_up 1 again');
  });
});
