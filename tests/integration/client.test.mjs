// The JavaScript client (clients/js/luahub.js) in Node against the real
// server: served at /luahub.js, requests answered and refused, and rooms
// that come back gap-free after the network fails under them (a proxy the
// test cuts). Node 20 has no global WebSocket: the library gets ws's.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { Client, ROOT, Server, sleep, withTimeout } from './lib/harness.mjs';
import { Proxy } from './lib/proxy.mjs';
import { connect, LuahubError } from '../../clients/js/luahub.js';

const until = async (fn, ms, what) => {
  const t0 = Date.now();
  while (!fn()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms: ${what}`);
    await sleep(10);
  }
};

const opened = (hub) => (hub.state === 'open' ? Promise.resolve()
  : withTimeout(new Promise((r) => { const off = hub.on('state', (s) => { if (s === 'open') { off(); r(); } }); }), 5000, 'open'));

describe('the JavaScript client in Node', () => {
  let server;
  before(async () => { server = await new Server().start(); });
  after(async () => { await server?.stop(); });

  test('GET /luahub.js serves the client, as JavaScript, whatever --static holds', async () => {
    const res = await server.get('/luahub.js');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/javascript/);
    assert.equal(res.body, fs.readFileSync(path.join(ROOT, 'clients/js/luahub.js'), 'utf8'));
    assert.equal((await server.get('/luahub.jsx')).status, 404);
  });

  test('requests: the ack resolves, the error frame rejects with its code', async () => {
    const hub = connect(`ws://127.0.0.1:${server.port}/ws`, { user: 'nadia', WebSocket });
    try {
      await opened(hub);
      assert.equal(hub.user, 'nadia');
      await assert.rejects(hub.request('chat', { room_id: 'nowhere', payload: { text: 'x' } }),
        (e) => e instanceof LuahubError && e.code === 'not_in_room' && /nowhere|member/.test(e.message));
      await assert.rejects(hub.request('no_such_handler'), (e) => e.code === 'unknown_type');
      const room = await hub.join('n-room');
      assert.deepEqual(room.members, ['nadia']);
      const ack = await room.send({ text: 'hi' });
      assert.equal(ack.seq, 1);
      const info = await hub.request('room_info', { room_id: 'n-room' });
      assert.equal(info.seq, 1);
    } finally {
      hub.close();
    }
  });

  test('reconnect through a failing network: every seq once, in order, while another publishes', async () => {
    const proxy = await new Proxy(server.port).start();
    const pub = await Client.connect(server, 'pub');
    await pub.request({ type: 'join_room', room_id: 'live' });
    const seqs = [];
    const resets = [];
    const states = [];
    const hub = connect(`ws://127.0.0.1:${proxy.port}/ws`, {
      user: 'sub', WebSocket, backoff: { base: 20, cap: 200 },
    });
    hub.on('state', (s) => states.push(s));
    try {
      await opened(hub);
      await hub.join('live', { onMessage: (f) => seqs.push(f.seq), onReset: (i) => resets.push(i) });
      const N = 150;
      let sent = 0;
      const publishing = (async () => {
        for (; sent < N; sent++) {
          pub.send({ type: 'chat', room_id: 'live', payload: { n: sent } });
          await sleep(4);
        }
      })();
      for (let cut = 0; cut < 4; cut++) {
        await sleep(80 + cut * 30);
        proxy.drop();
      }
      await publishing;
      await until(() => seqs.length >= N, 8000, `all ${N} seqs (got ${seqs.length})`);
      await sleep(100);
      assert.deepEqual(seqs, Array.from({ length: N }, (_, i) => i + 1));
      assert.deepEqual(resets, []);
      assert.ok(proxy.drops >= 3, `the network was cut (${proxy.drops})`);
      assert.ok(states.filter((s) => s === 'open').length >= 4, states.join(' '));
    } finally {
      hub.close();
      await pub.close();
      await proxy.stop();
    }
  });
});

describe('the JavaScript client in Node: more missed than history keeps', () => {
  let server;
  before(async () => { server = await new Server(['--history-size', '3']).start(); });
  after(async () => { await server?.stop(); });

  test('a reset is reported, then what history still has arrives, then live frames', async () => {
    const proxy = await new Proxy(server.port).start();
    const pub = await Client.connect(server, 'pub');
    await pub.request({ type: 'join_room', room_id: 'r' });
    const seqs = [];
    const resets = [];
    const hub = connect(`ws://127.0.0.1:${proxy.port}/ws`, { user: 'sub', WebSocket, backoff: { base: 20, cap: 100 } });
    try {
      await opened(hub);
      await hub.join('r', { onMessage: (f) => seqs.push(f.seq), onReset: (i) => resets.push(i) });
      await pub.request({ type: 'chat', room_id: 'r', payload: { n: 1 } });
      await until(() => seqs.length === 1, 3000, 'seq 1');
      proxy.refuse();
      proxy.drop();
      for (let i = 2; i <= 8; i++) await pub.request({ type: 'chat', room_id: 'r', payload: { n: i } });
      proxy.allow();
      await until(() => seqs.length >= 4, 5000, `recovery (${seqs})`);
      await pub.request({ type: 'chat', room_id: 'r', payload: { n: 9 } });
      await until(() => seqs.length >= 5, 3000, 'seq 9');
      assert.deepEqual(seqs, [1, 6, 7, 8, 9]);
      assert.equal(resets.length, 1);
      assert.equal(resets[0].room, 'r');
      assert.equal(resets[0].since, 1);
      assert.equal(resets[0].seq, 8);
    } finally {
      hub.close();
      await pub.close();
      await proxy.stop();
    }
  });
});

describe('the JavaScript client in a big room', () => {
  let server;
  before(async () => { server = await new Server(['--max-listed-members', '2']).start(); });
  after(async () => { await server?.stop(); });

  test('past --max-listed-members: members null (onMembers says so), memberCount kept, listMembers pages sorted', async () => {
    const url = `ws://127.0.0.1:${server.port}/ws`;
    const hubs = ['bq-carol', 'bq-alice', 'bq-bob'].map((user) => connect(url, { user, WebSocket }));
    try {
      const seen = [];
      const first = await hubs[0].join('bq');
      assert.deepEqual(first.members, ['bq-carol']);
      first.on('members', (m) => seen.push(m));
      await hubs[1].join('bq');
      await until(() => seen.length === 1, 2000, 'user_joined keeps the list while listed');
      assert.deepEqual(seen[0], ['bq-alice', 'bq-carol']);
      const third = await hubs[2].join('bq');
      assert.equal(third.members, null);
      assert.equal(third.memberCount, 3);
      const p1 = await third.listMembers({ limit: 2 });
      assert.deepEqual(p1.members, ['bq-alice', 'bq-bob']);
      assert.equal(p1.next, 'bq-bob');
      const p2 = await third.listMembers({ after: p1.next, limit: 2 });
      assert.deepEqual(p2.members, ['bq-carol']);
      assert.equal(p2.next, null);
      // The first member's list would go stale (no user_joined past the
      // limit): after a rejoin it is dropped, not kept wrong.
      hubs[0].reconnect();
      await until(() => first.members === null, 5000, 'members dropped after the rejoin');
      assert.equal(first.memberCount, 3);
      assert.equal(seen.at(-1), null);
    } finally {
      for (const h of hubs) h.close();
    }
  });
});
