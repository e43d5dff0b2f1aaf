// The flags of several nodes: --redis in each of its forms (host and
// port, password and DB, unix socket, nothing listening yet), --node-id,
// --presence-ttl, --reuse-port, and /readyz.
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { BIN, Client, Server, runToExit, sleep } from './lib/harness.mjs';
import { Redis, freePort, joined, makeNode, startNode, waitReadyz } from './lib/redis.mjs';

// What a test started, stopped after it whatever happened.
let started = [];
afterEach(async () => {
  const all = started.reverse();
  started = [];
  const results = await Promise.allSettled(all.map((x) => (x instanceof Redis ? x.destroy() : x.stop())));
  const bad = results.find((r) => r.status === 'rejected');
  if (bad) throw bad.reason;
});
const track = (x) => { started.push(x); return x; };

// alice on one node and bob on the other chat in a room: both see it.
async function chatAcross(na, nb, room) {
  const [a, b] = await joined(room, [na, 'fl-alice'], [nb, 'fl-bob']);
  const ack = await a.request({ type: 'chat', room_id: room, payload: { text: 'across' } });
  assert.equal(ack.seq, 1, JSON.stringify(ack));
  const m = await b.next((f) => f.type === 'chat' && f.room_id === room);
  assert.deepEqual([m.from, m.seq, m.payload.text], ['fl-alice', 1, 'across']);
  await a.close();
  await b.close();
}

test('--help lists --redis, --node-id, --presence-ttl and --reuse-port', () => {
  const r = spawnSync(BIN, ['--help'], { encoding: 'utf8', timeout: 5000 });
  assert.equal(r.status, 0);
  for (const flag of ['--redis', '--node-id', '--presence-ttl', '--reuse-port']) {
    assert.match(r.stdout, new RegExp(`${flag}\\b`));
  }
});

for (const [flag, value] of [['--redis', 'ftp://x'], ['--redis', 'redis://127.0.0.1:99999'],
  ['--presence-ttl', '0'], ['--presence-ttl', '1'], ['--presence-ttl', 'soon'],
  ['--node-id', 'has space'], ['--node-id', 'n'.repeat(65)]]) {
  test(`${flag} ${value.length > 20 ? `${value.slice(0, 8)}…` : value} exits 2 naming the flag and the value`, () => {
    const r = spawnSync(BIN, ['--host', '127.0.0.1', '--port', '0', flag, value], { encoding: 'utf8', timeout: 5000 });
    assert.equal(r.status, 2, r.stderr);
    assert.doesNotMatch(r.stderr, /unknown option/);
    assert.ok(r.stderr.includes(`luahub: ${flag}: '${value}'`), r.stderr);
    assert.match(r.stderr, /luahub --help/);
  });
}

test('without --redis the node is ready at once: /readyz 200', async () => {
  const s = track(await new Server().start());
  const r = await s.get('/readyz');
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.body), { ready: true });
});

test('--redis where nothing listens: the node starts, not ready, and becomes ready when Redis comes up', async () => {
  const port = await freePort();
  const node = track(makeNode(`redis://127.0.0.1:${port}`, 'n1'));
  await startNode(node, { ready: false });
  const r = await waitReadyz(node, 503, 2000);
  assert.equal(JSON.parse(r.body).ready, false);
  assert.equal((await node.get('/healthz')).status, 200);
  // The log says what it cannot reach.
  await node.waitLog(new RegExp(`redis.*127\\.0\\.0\\.1:${port}`, 'i'));
  const redis = track(await new Redis({ port }).start());
  // The reconnect backoff tops out at 2 s.
  await waitReadyz(node, 200, 4000);
  const c = await Client.connect(node, 'fl-late');
  await c.request({ type: 'join_room', room_id: 'fl-late-room' });
  assert.equal((await c.request({ type: 'chat', room_id: 'fl-late-room', payload: {} })).seq, 1);
  assert.ok(await redis.cmd('DBSIZE') > 0, 'the node keeps its state in this Redis');
  await c.close();
});

test('--redis redis://:password@HOST:PORT/DB: the nodes use that DB; a wrong password is never ready', async () => {
  const redis = track(await new Redis({ password: 'pw-4711' }).start());
  const n1 = track(makeNode(redis.url({ db: 3 }), 'n1'));
  const n2 = track(makeNode(redis.url({ db: 3 }), 'n2'));
  await startNode(n1);
  await startNode(n2);
  await chatAcross(n1, n2, 'fl-db-room');
  assert.ok(await redis.cmdIn(3, 'DBSIZE') > 0, 'keys in DB 3');
  assert.equal(await redis.cmdIn(0, 'DBSIZE'), 0, 'nothing in DB 0');
  const wrong = track(makeNode(redis.url({ db: 3, password: 'not-it' }), 'n3'));
  await startNode(wrong, { ready: false });
  await sleep(1000);
  const r = await wrong.get('/readyz');
  assert.equal(r.status, 503, r.body);
});

test('--redis over a unix socket, as a path or a unix:// URL', async () => {
  const redis = track(await new Redis({ unixSocket: true }).start());
  const n1 = track(makeNode(redis.url(), 'n1'));
  const n2 = track(makeNode(`unix://${redis.url()}`, 'n2'));
  await startNode(n1);
  await startNode(n2);
  await chatAcross(n1, n2, 'fl-unix-room');
});

test('--reuse-port: two nodes share one port; without it the second cannot start', async () => {
  const redis = track(await new Redis().start());
  const n1 = track(makeNode(redis.url(), 'n1', { args: ['--reuse-port'] }));
  await startNode(n1);
  const n2 = track(makeNode(redis.url(), 'n2', { args: ['--reuse-port', '--port', String(n1.port)] }));
  await startNode(n2);
  assert.equal(n2.port, n1.port);
  // The kernel spreads new connections over both: 24 of them land on both
  // nodes (all on one: a chance of 2^-23).
  const clients = [];
  for (let i = 0; i < 24; i++) clients.push(await Client.connect(n1, `rp-${i}`));
  const onNode = new Set(clients.map((c) => c.connId.split('.')[0]));
  assert.deepEqual([...onNode].sort(), ['n1', 'n2']);
  // One server to the clients: a room across whichever nodes they landed on.
  for (const c of clients) await c.request({ type: 'join_room', room_id: 'rp-room' });
  await clients[0].request({ type: 'chat', room_id: 'rp-room', payload: { text: 'all of you' } });
  for (const c of clients) assert.equal((await c.next((m) => m.type === 'chat')).seq, 1);
  for (const c of clients) await c.close();
  const r = await runToExit(['--host', '127.0.0.1', '--port', String(n1.port), '--redis', redis.url(), '--node-id', 'n3']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`port ${n1.port} is in use on 127\\.0\\.0\\.1`));
});
