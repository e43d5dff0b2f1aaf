// Rooms and messaging: the shipped handlers over the real server.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, Server, sleep } from './lib/harness.mjs';

describe('rooms and messages', () => {
  let server;
  const open = [];
  const connect = async (user) => {
    const c = await Client.connect(server, user);
    open.push(c);
    return c;
  };
  before(async () => { server = await new Server().start(); });
  after(async () => {
    for (const c of open) c.ws.terminate();
    await server.stop();
  });

  test('join_room acks sorted members and the last seq; others get user_joined, not the joiner', async () => {
    const zed = await connect('zed');
    const amy = await connect('amy');
    const ack1 = await zed.request({ type: 'join_room', room_id: 'j1' });
    assert.deepEqual(ack1.members, ['zed']);
    assert.equal(ack1.seq, 0);
    assert.equal(ack1.room_id, 'j1');
    await zed.request({ type: 'chat', room_id: 'j1', payload: { text: 'before' } });
    const ack2 = await amy.request({ type: 'join_room', room_id: 'j1' });
    assert.deepEqual(ack2.members, ['amy', 'zed']);
    assert.equal(ack2.seq, 1);
    const joined = await zed.next((m) => m.type === 'user_joined');
    assert.equal(joined.from, 'amy');
    assert.equal(joined.room_id, 'j1');
    assert.ok(Number.isInteger(joined.timestamp));
    await sleep(100);
    assert.equal(amy.seen('user_joined').length, 0, 'the joiner is not told of itself');
  });

  test('one user on two connections gets room and unicast frames on both', async () => {
    const p1 = await connect('pat');
    const p2 = await connect('pat');
    const q = await connect('quinn');
    await p1.request({ type: 'join_room', room_id: 'multi' });
    await q.request({ type: 'join_room', room_id: 'multi' });
    await q.request({ type: 'chat', room_id: 'multi', payload: { text: 'to the room' } });
    for (const c of [p1, p2]) {
      const m = await c.next((f) => f.type === 'chat' && f.room_id === 'multi');
      assert.equal(m.payload.text, 'to the room');
      assert.equal(m.from, 'quinn');
      assert.equal(m.seq, 1);
    }
    const ack = await q.request({ type: 'chat', to: 'pat', payload: { text: 'dm' } });
    assert.equal(ack.delivered, 2);
    for (const c of [p1, p2]) {
      const m = await c.next((f) => f.type === 'chat' && f.to === 'pat');
      assert.equal(m.from, 'quinn');
      assert.deepEqual(m.payload, { text: 'dm' });
    }
    // A connection opened after the join gets the room's frames too.
    const p3 = await connect('pat');
    await q.request({ type: 'chat', room_id: 'multi', payload: { text: 'later' } });
    const m = await p3.next((f) => f.type === 'chat' && f.room_id === 'multi');
    assert.equal(m.seq, 2);
  });

  test('a burst of 1,000 messages reaches every member connection in seq order, no gaps', async () => {
    const sender = await connect('burst-a');
    const b1 = await connect('burst-b');
    const b2 = await connect('burst-b');
    const c = await connect('burst-c');
    for (const x of [sender, b1, c]) await x.request({ type: 'join_room', room_id: 'burst' });
    const N = 1000;
    for (let i = 1; i <= N; i++) {
      sender.send({ type: 'chat', id: i, room_id: 'burst', payload: { n: i } });
    }
    const acks = [];
    for (let i = 1; i <= N; i++) acks.push(await sender.next((m) => m.type === 'ack' && m.id === i, 10000));
    assert.deepEqual(acks.map((a) => a.seq), Array.from({ length: N }, (_, i) => i + 1));
    for (const x of [sender, b1, b2, c]) {
      const seqs = [];
      while (seqs.length < N) {
        const m = await x.next((f) => f.type === 'chat' && f.room_id === 'burst', 10000);
        seqs.push(m.seq);
        assert.equal(m.payload.n, m.seq, 'each message carries its own seq');
      }
      assert.deepEqual(seqs, Array.from({ length: N }, (_, i) => i + 1));
    }
  });

  test('unicast: the target and the sender\'s other connections get it, the sending connection does not', async () => {
    const s1 = await connect('uni-s');
    const s2 = await connect('uni-s');
    const t = await connect('uni-t');
    const ack = await s1.request({ type: 'chat', to: 'uni-t', payload: { text: 'hello' } });
    assert.equal(ack.delivered, 1);
    const got = await t.next((m) => m.type === 'chat');
    assert.equal(got.from, 'uni-s');
    assert.equal(got.to, 'uni-t');
    assert.ok(Number.isInteger(got.timestamp));
    assert.equal(got.seq, undefined);
    const copy = await s2.next((m) => m.type === 'chat');
    assert.deepEqual(copy.payload, { text: 'hello' });
    await sleep(100);
    assert.equal(s1.seen('chat').length, 0);
  });

  test('unicast to a user with no connection is not_found', async () => {
    const s = await connect('uni-lonely');
    const err = await s.request({ type: 'chat', to: 'nobody-here', payload: { text: 'x' } });
    assert.equal(err.type, 'error');
    assert.equal(err.code, 'not_found');
  });

  test('multicast reaches each listed user and counts their connections', async () => {
    const s = await connect('mc-s');
    const a1 = await connect('mc-a');
    const a2 = await connect('mc-a');
    const b = await connect('mc-b');
    const ack = await s.request({ type: 'chat', to: ['mc-a', 'mc-b', 'mc-offline', 'mc-a'], payload: { text: 'all' } });
    assert.equal(ack.delivered, 3);
    for (const x of [a1, a2, b]) {
      const m = await x.next((f) => f.type === 'chat');
      assert.deepEqual(m.to, ['mc-a', 'mc-b', 'mc-offline', 'mc-a']);
      assert.equal(m.from, 'mc-s');
    }
    await sleep(100);
    assert.equal(a1.seen('chat').length, 0, 'listed twice, received once');
  });

  test('the server sets from and timestamp; the client cannot forge them', async () => {
    const a = await connect('forger');
    const b = await connect('victim');
    await a.request({ type: 'join_room', room_id: 'forge' });
    await b.request({ type: 'join_room', room_id: 'forge' });
    await a.request({ type: 'chat', room_id: 'forge', from: 'victim', seq: 99, timestamp: 1, payload: { t: 1 } });
    const m = await b.next((f) => f.type === 'chat' && f.room_id === 'forge');
    assert.equal(m.from, 'forger');
    assert.equal(m.seq, 1);
    assert.ok(m.timestamp > 1000);
  });

  test('typing reaches other members and is not echoed to any of the sender\'s connections', async () => {
    const t1 = await connect('typer');
    const t2 = await connect('typer');
    const o = await connect('watcher');
    await t1.request({ type: 'join_room', room_id: 'typing' });
    await o.request({ type: 'join_room', room_id: 'typing' });
    t1.send({ type: 'typing', room_id: 'typing' });
    const m = await o.next((f) => f.type === 'typing');
    assert.equal(m.from, 'typer');
    assert.equal(m.room_id, 'typing');
    assert.equal(m.seq, undefined);
    await sleep(150);
    assert.equal(t1.seen('typing').length + t2.seen('typing').length, 0);
  });

  test('leave_room: remaining members get user_left; leaving again is not_in_room', async () => {
    const a = await connect('leaver');
    const b = await connect('stayer');
    await a.request({ type: 'join_room', room_id: 'lv' });
    await b.request({ type: 'join_room', room_id: 'lv' });
    const ack = await a.request({ type: 'leave_room', room_id: 'lv' });
    assert.equal(ack.type, 'ack');
    assert.equal(ack.room_id, 'lv');
    const left = await b.next((m) => m.type === 'user_left');
    assert.equal(left.from, 'leaver');
    const again = await a.request({ type: 'leave_room', room_id: 'lv' });
    assert.equal(again.code, 'not_in_room');
    const chat = await a.request({ type: 'chat', room_id: 'lv', payload: { text: 'x' } });
    assert.equal(chat.code, 'not_in_room');
  });

  test('room_info reports the room, and not_found for no room', async () => {
    const a = await connect('info-a');
    const t0 = Date.now();
    await a.request({ type: 'join_room', room_id: 'info' });
    await a.request({ type: 'chat', room_id: 'info', payload: { x: 1 } });
    await a.request({ type: 'chat', room_id: 'info', payload: { x: 2 } });
    const info = await a.request({ type: 'room_info', room_id: 'info' });
    assert.equal(info.room_id, 'info');
    assert.equal(info.name, 'info');
    assert.deepEqual(info.members, ['info-a']);
    assert.equal(info.message_count, 2);
    assert.equal(info.seq, 2);
    assert.ok(Math.abs(info.created_at - t0) < 5000);
    const none = await a.request({ type: 'room_info', room_id: 'no-such-room' });
    assert.equal(none.code, 'not_found');
  });

  test('online_users lists every user with a connection, sorted', async () => {
    const a = await connect('online-b');
    await connect('online-a');
    const ack = await a.request({ type: 'online_users' });
    assert.ok(Array.isArray(ack.users));
    assert.deepEqual(ack.users, [...ack.users].sort());
    assert.ok(ack.users.includes('online-a') && ack.users.includes('online-b'));
  });

  test('chat without a payload, or without room_id or to, is bad_message', async () => {
    const a = await connect('sloppy');
    await a.request({ type: 'join_room', room_id: 'sl' });
    assert.equal((await a.request({ type: 'chat', room_id: 'sl' })).code, 'bad_message');
    assert.equal((await a.request({ type: 'chat', payload: { text: 'x' } })).code, 'bad_message');
    assert.equal((await a.request({ type: 'join_room' })).code, 'bad_message');
  });
});
