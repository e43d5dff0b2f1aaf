// Presence and liveness: statuses, subscriptions, the last disconnect,
// heartbeats and the idle timeout.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, Server, rawSocket, sleep } from './lib/harness.mjs';

describe('presence', () => {
  let server;
  before(async () => { server = await new Server().start(); });
  after(() => server.stop());

  test('subscribe acks current statuses; offline for unknown users', async () => {
    const w = await Client.connect(server, 'ps-watch');
    const x = await Client.connect(server, 'ps-x');
    const ack = await w.request({ type: 'presence_subscribe', payload: { user_ids: ['ps-x', 'ps-ghost'] } });
    assert.deepEqual(ack.statuses, { 'ps-x': 'online', 'ps-ghost': 'offline' });
    await w.close();
    await x.close();
  });

  test('a subscriber sees online, away and offline; offline only after the last connection', async () => {
    const w = await Client.connect(server, 'pw');
    await w.request({ type: 'presence_subscribe', payload: { user_ids: ['pb'] } });
    const b1 = await Client.connect(server, 'pb');
    let ev = await w.next((m) => m.type === 'presence');
    assert.deepEqual(ev.payload, { user_id: 'pb', status: 'online' });
    assert.ok(Number.isInteger(ev.timestamp));
    const b2 = await Client.connect(server, 'pb');
    const ack = await b1.request({ type: 'status_update', payload: { status: 'away' } });
    assert.equal(ack.status, 'away');
    ev = await w.next((m) => m.type === 'presence');
    assert.deepEqual(ev.payload, { user_id: 'pb', status: 'away' });
    await b1.close();
    await sleep(200);
    assert.equal(w.seen('presence').length, 0, 'still online through the second connection');
    await b2.close();
    ev = await w.next((m) => m.type === 'presence');
    assert.deepEqual(ev.payload, { user_id: 'pb', status: 'offline' });
    await w.close();
  });

  test('a bad status is bad_message', async () => {
    const a = await Client.connect(server, 'ps-bad');
    assert.equal((await a.request({ type: 'status_update', payload: { status: 'sleepy' } })).code, 'bad_message');
    assert.equal((await a.request({ type: 'status_update' })).code, 'bad_message');
    assert.equal((await a.request({ type: 'presence_subscribe', payload: { user_ids: 'x' } })).code, 'bad_message');
    await a.close();
  });

  test('the last disconnect leaves every room, and the others get user_left', async () => {
    const a = await Client.connect(server, 'gone');
    const b = await Client.connect(server, 'remains');
    for (const r of ['g1', 'g2']) {
      await a.request({ type: 'join_room', room_id: r });
      await b.request({ type: 'join_room', room_id: r });
    }
    await a.close();
    const rooms = [];
    for (let i = 0; i < 2; i++) {
      const m = await b.next((f) => f.type === 'user_left');
      assert.equal(m.from, 'gone');
      rooms.push(m.room_id);
    }
    assert.deepEqual(rooms.sort(), ['g1', 'g2']);
    const info = await b.request({ type: 'room_info', room_id: 'g1' });
    assert.deepEqual(info.members, ['remains']);
    await b.close();
  });
});

describe('heartbeat', () => {
  let server;
  before(async () => { server = await new Server(['--ping-interval', '0.2', '--idle-timeout', '1']).start(); });
  after(() => server.stop());

  test('a client that answers pings stays connected past the idle timeout', async () => {
    const c = await Client.connect(server, 'hb-alive');
    let pings = 0;
    c.ws.on('ping', () => { pings++; });
    await sleep(2500);
    assert.ok(pings >= 5, `server pinged ${pings} times`);
    await c.alive();
    await c.close();
  });

  test('a silent client is dropped after the idle timeout and goes offline', async () => {
    const w = await Client.connect(server, 'hb-watch');
    const raw = await rawSocket(server, 'hb-silent');
    await w.request({ type: 'presence_subscribe', payload: { user_ids: ['hb-silent'] } });
    const t0 = Date.now();
    await Promise.race([raw.ended, sleep(4000)]);
    const took = Date.now() - t0;
    assert.ok(raw.destroyed || raw.readyState === 'closed', 'the silent socket was closed');
    assert.ok(took < 2500, `closed after ${took} ms`);
    const ev = await w.next((m) => m.type === 'presence' && m.payload.user_id === 'hb-silent');
    assert.equal(ev.payload.status, 'offline');
    await w.close();
  });
});
