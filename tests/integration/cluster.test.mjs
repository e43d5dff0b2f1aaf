// Several nodes over one real redis-server (issue 11, "Several nodes" in
// PROTOCOL.md): every rule of the protocol across nodes, as if they were
// one server. Failures (a node killed, Redis killed or its subscribers
// cut) are in cluster_failures.test.mjs, flags and ways to reach Redis in
// cluster_flags.test.mjs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Client, ROOT, sleep, tempScripts } from './lib/harness.mjs';
import { joined, restartNode, startCluster } from './lib/redis.mjs';

const chatsIn = (room) => (m) => m.type === 'chat' && m.room_id === room;
const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

// Proves that nothing more matching pred arrives within ms.
async function nothingMore(c, pred, ms = 300) {
  await sleep(ms);
  assert.deepEqual(c.frames.filter(pred), [], 'no further frame');
}

describe('three nodes over one Redis', () => {
  let cl;
  let n1;
  let n2;
  let n3;
  before(async () => {
    cl = await startCluster(3);
    [n1, n2, n3] = cl.nodes;
  });
  after(() => cl && cl.stop());

  test('connection ids name their node, so they are unique across nodes', async () => {
    const a = await Client.connect(n1, 'id-a');
    const b = await Client.connect(n2, 'id-b');
    assert.match(a.connId, /^n1\.\d+$/);
    assert.match(b.connId, /^n2\.\d+$/);
    await a.close();
    await b.close();
  });

  test('a room chat reaches every connection of every member on every node, seq gap-free', async () => {
    const room = 'rc-room';
    const alice = await Client.connect(n1, 'rc-alice');
    const bob2 = await Client.connect(n2, 'rc-bob');
    const bob3 = await Client.connect(n3, 'rc-bob');
    const carol = await Client.connect(n3, 'rc-carol');
    assert.equal((await alice.request({ type: 'join_room', room_id: room })).seq, 0);
    await bob2.request({ type: 'join_room', room_id: room });
    await carol.request({ type: 'join_room', room_id: room });
    for (let i = 1; i <= 3; i++) {
      const ack = await alice.request({ type: 'chat', room_id: room, payload: { text: `m${i}` } });
      assert.equal(ack.type, 'ack', JSON.stringify(ack));
      assert.equal(ack.seq, i);
    }
    for (const c of [alice, bob2, bob3, carol]) {
      const got = await c.take(chatsIn(room), 3);
      assert.deepEqual(got.map((m) => m.seq), [1, 2, 3]);
      assert.deepEqual(got.map((m) => m.payload.text), ['m1', 'm2', 'm3']);
      for (const m of got) {
        assert.equal(m.from, 'rc-alice');
        assert.ok(Number.isInteger(m.timestamp));
      }
    }
    // bob's second device, on a node where bob never joined, publishes too.
    const ack = await bob3.request({ type: 'chat', room_id: room, payload: { text: 'from bob' } });
    assert.equal(ack.seq, 4);
    for (const c of [alice, bob2, bob3, carol]) {
      const [m] = await c.take(chatsIn(room), 1);
      assert.deepEqual([m.seq, m.from, m.payload.text], [4, 'rc-bob', 'from bob']);
    }
    // typing crosses nodes too, without seq, and not to the typist's own connections.
    carol.send({ type: 'typing', room_id: room });
    for (const c of [alice, bob2, bob3]) {
      const m = await c.next((f) => f.type === 'typing');
      assert.deepEqual([m.room_id, m.from, m.seq], [room, 'rc-carol', undefined]);
    }
    await nothingMore(carol, (f) => f.type === 'typing');
    for (const c of [alice, bob2, bob3, carol]) await c.close();
  });

  test('two publishers on two nodes, subscribers on three: every one sees seq 1..2N once, in one order', async () => {
    const room = 'rc-race';
    const N = 100;
    const p1 = await Client.connect(n1, 'race-p1');
    const p2 = await Client.connect(n2, 'race-p2');
    const subs = [await Client.connect(n1, 'race-s1'), await Client.connect(n2, 'race-s2'),
      await Client.connect(n3, 'race-s3')];
    const all = [p1, p2, ...subs];
    for (const c of all) assert.equal((await c.request({ type: 'join_room', room_id: room })).type, 'ack');
    // Both publishers fire all their messages at once, interleaved.
    for (let i = 0; i < N; i++) {
      p1.send({ type: 'chat', room_id: room, id: `a${i}`, payload: { i } });
      p2.send({ type: 'chat', room_id: room, id: `b${i}`, payload: { i } });
    }
    const answers = (c, prefix) => c.take((m) => (m.type === 'ack' || m.type === 'error') &&
      String(m.id).startsWith(prefix), N, 15000);
    const [acks1, acks2] = await Promise.all([answers(p1, 'a'), answers(p2, 'b')]);
    for (const a of [...acks1, ...acks2]) assert.equal(a.type, 'ack', JSON.stringify(a));
    const seen = await Promise.all(all.map((c) => c.take(chatsIn(room), 2 * N, 15000)));
    const order = seen[0].map((m) => `${m.from}:${m.payload.i}`);
    for (const [k, frames] of seen.entries()) {
      assert.deepEqual(frames.map((m) => m.seq), range(1, 2 * N), `connection ${k}: seq 1..${2 * N} in order`);
      assert.deepEqual(frames.map((m) => `${m.from}:${m.payload.i}`), order, `connection ${k}: the same order`);
    }
    // Each publisher's messages keep the order it sent them in, and each
    // ack's seq is the seq its frame carries.
    for (const [user, acks] of [['race-p1', acks1], ['race-p2', acks2]]) {
      const mine = seen[0].filter((m) => m.from === user);
      assert.deepEqual(mine.map((m) => m.payload.i), range(0, N - 1));
      for (const a of acks) {
        const i = Number(String(a.id).slice(1));
        assert.equal(a.seq, mine[i].seq, `ack ${a.id}`);
      }
    }
    // Exactly once: nothing after the 2N.
    await nothingMore(subs[2], chatsIn(room));
    for (const c of all) await c.close();
  });

  test('join_room and room_info list members of every node; user_joined and user_left cross nodes', async () => {
    const room = 'rc-members';
    const a = await Client.connect(n1, 'm-a');
    const b = await Client.connect(n2, 'm-b');
    const c = await Client.connect(n3, 'm-c');
    const outsider = await Client.connect(n2, 'm-z');
    let ack = await a.request({ type: 'join_room', room_id: room });
    assert.deepEqual(ack.members, ['m-a']);
    ack = await c.request({ type: 'join_room', room_id: room });
    assert.deepEqual([ack.room_id, ack.members, ack.seq], [room, ['m-a', 'm-c'], 0]);
    let ev = await a.next((m) => m.type === 'user_joined');
    assert.deepEqual([ev.room_id, ev.from], [room, 'm-c']);
    ack = await b.request({ type: 'join_room', room_id: room });
    assert.deepEqual(ack.members, ['m-a', 'm-b', 'm-c']);
    for (const x of [a, c]) {
      ev = await x.next((m) => m.type === 'user_joined' && m.from === 'm-b');
      assert.equal(ev.room_id, room);
      assert.ok(Number.isInteger(ev.timestamp));
    }
    await nothingMore(b, (m) => m.type === 'user_joined');
    await a.request({ type: 'chat', room_id: room, payload: { text: 'one' } });
    // room_info from a node where no member is (n2's outsider) and from n3.
    for (const x of [outsider, c]) {
      const info = await x.request({ type: 'room_info', room_id: room });
      assert.equal(info.type, 'ack', JSON.stringify(info));
      assert.deepEqual(info.members, ['m-a', 'm-b', 'm-c']);
      assert.deepEqual([info.room_id, info.seq, info.message_count], [room, 1, 1]);
      assert.ok(Number.isInteger(info.created_at));
    }
    const none = await outsider.request({ type: 'room_info', room_id: 'rc-no-such-room' });
    assert.equal(none.code, 'not_found');
    // A non-member cannot chat into the room, from any node.
    const denied = await outsider.request({ type: 'chat', room_id: room, payload: { text: 'x' } });
    assert.equal(denied.code, 'not_in_room');
    // leave_room on n2: the members on n1 and n3 get user_left.
    assert.deepEqual(await b.request({ type: 'leave_room', room_id: room }).then((m) => [m.type, m.room_id]),
      ['ack', room]);
    for (const x of [a, c]) {
      ev = await x.next((m) => m.type === 'user_left');
      assert.deepEqual([ev.room_id, ev.from], [room, 'm-b']);
    }
    assert.equal((await b.request({ type: 'leave_room', room_id: room })).code, 'not_in_room');
    assert.equal((await b.request({ type: 'chat', room_id: room, payload: {} })).code, 'not_in_room');
    assert.deepEqual((await a.request({ type: 'room_info', room_id: room })).members, ['m-a', 'm-c']);
    // The seq of the next chat proves no failed attempt took one.
    assert.equal((await c.request({ type: 'chat', room_id: room, payload: { text: 'two' } })).seq, 2);
    for (const x of [a, b, c, outsider]) await x.close();
  });

  test('unicast and multicast reach every connection of a user on any node; delivered counts them all', async () => {
    const alice1 = await Client.connect(n1, 'uc-alice');
    const alice2 = await Client.connect(n2, 'uc-alice');
    const bob2 = await Client.connect(n2, 'uc-bob');
    const bob3 = await Client.connect(n3, 'uc-bob');
    const carol = await Client.connect(n1, 'uc-carol');
    let ack = await alice1.request({ type: 'chat', to: 'uc-bob', payload: { text: 'hi bob' } });
    assert.equal(ack.type, 'ack', JSON.stringify(ack));
    assert.equal(ack.delivered, 2);
    const isChat = (m) => m.type === 'chat' && m.room_id === undefined;
    // Both of bob's devices, and alice's other device (on another node).
    for (const c of [bob2, bob3, alice2]) {
      const m = await c.next(isChat);
      assert.deepEqual([m.from, m.to, m.payload.text, m.seq], ['uc-alice', 'uc-bob', 'hi bob', undefined]);
      assert.ok(Number.isInteger(m.timestamp));
    }
    ack = await alice1.request({ type: 'chat', to: ['uc-bob', 'uc-carol', 'uc-nobody'], payload: { text: 'all' } });
    assert.equal(ack.delivered, 3);
    for (const c of [bob2, bob3, carol, alice2]) {
      const m = await c.next(isChat);
      assert.deepEqual([m.from, m.to, m.payload.text], ['uc-alice', ['uc-bob', 'uc-carol', 'uc-nobody'], 'all']);
    }
    await nothingMore(alice1, isChat);
    // A user connected nowhere.
    const err = await bob3.request({ type: 'chat', to: 'uc-nobody', payload: {} });
    assert.equal(err.code, 'not_found');
    // bob's n3 device gone: one left to deliver to, on n2.
    await bob3.close();
    // n3 tells Redis of the departure just after the close handshake, so
    // a send right behind it may still count the device gone (2, never
    // more); within moments it counts 1, and bob2 gets every one.
    let sent = 0;
    for (const t0 = Date.now(); ;) {
      ack = await carol.request({ type: 'chat', to: 'uc-bob', payload: { text: 'later' } });
      sent++;
      if (ack.delivered === 1) break;
      assert.equal(ack.delivered, 2);
      assert.ok(Date.now() - t0 < 3000, 'the device that left was still counted after 3 s');
      await sleep(20);
    }
    for (let i = 0; i < sent; i++) assert.equal((await bob2.next(isChat)).payload.text, 'later');
    await nothingMore(bob2, isChat);
    for (const c of [alice1, alice2, bob2, carol]) await c.close();
  });

  test('presence and online_users across nodes', async () => {
    const w = await Client.connect(n2, 'pr-watch');
    let ack = await w.request({ type: 'presence_subscribe', payload: { user_ids: ['pr-x', 'pr-y'] } });
    assert.deepEqual(ack.statuses, { 'pr-x': 'offline', 'pr-y': 'offline' });
    const x = await Client.connect(n1, 'pr-x');
    let ev = await w.next((m) => m.type === 'presence');
    assert.deepEqual(ev.payload, { user_id: 'pr-x', status: 'online' });
    const y = await Client.connect(n3, 'pr-y');
    ev = await w.next((m) => m.type === 'presence');
    assert.deepEqual(ev.payload, { user_id: 'pr-y', status: 'online' });
    ack = await x.request({ type: 'status_update', payload: { status: 'busy' } });
    assert.equal(ack.status, 'busy');
    ev = await w.next((m) => m.type === 'presence');
    assert.deepEqual(ev.payload, { user_id: 'pr-x', status: 'busy' });
    // A status set on n1 read by a subscription made on n3.
    const w3 = await Client.connect(n3, 'pr-watch3');
    ack = await w3.request({ type: 'presence_subscribe', payload: { user_ids: ['pr-x', 'pr-y'] } });
    assert.deepEqual(ack.statuses, { 'pr-x': 'busy', 'pr-y': 'online' });
    // online_users, asked on any node, lists the users of every node, sorted.
    for (const node of [n1, n2, n3]) {
      const q = node === n2 ? w : node === n3 ? w3 : x;
      const { users } = await q.request({ type: 'online_users' });
      for (const u of ['pr-watch', 'pr-watch3', 'pr-x', 'pr-y']) assert.ok(users.includes(u), `${u} in ${users}`);
      assert.deepEqual(users, [...users].sort());
    }
    await x.close();
    for (const c of [w, w3]) {
      ev = await c.next((m) => m.type === 'presence' && m.payload.user_id === 'pr-x');
      assert.equal(ev.payload.status, 'offline');
    }
    assert.ok(!(await y.request({ type: 'online_users' })).users.includes('pr-x'));
    for (const c of [w, w3, y]) await c.close();
  });

  test('a user\'s new connection on another node gets the rooms the user is in; the last one leaves them', async () => {
    const room = 'rc-devices';
    const u1 = await Client.connect(n1, 'md-user');
    const other = await Client.connect(n2, 'md-other');
    await u1.request({ type: 'join_room', room_id: room });
    await other.request({ type: 'join_room', room_id: room });
    // n3 has no member of the room until this connection opens.
    const u3 = await Client.connect(n3, 'md-user');
    await other.request({ type: 'chat', room_id: room, payload: { text: 'to both devices' } });
    for (const c of [u1, u3]) {
      const [m] = await c.take(chatsIn(room), 1);
      assert.deepEqual([m.seq, m.from, m.payload.text], [1, 'md-other', 'to both devices']);
    }
    const ack = await u3.request({ type: 'chat', room_id: room, payload: { text: 'from the new device' } });
    assert.equal(ack.seq, 2);
    assert.equal((await other.take(chatsIn(room), 2)).at(-1).payload.text, 'from the new device');
    // One device closing is not leaving.
    await u1.close();
    await nothingMore(other, (m) => m.type === 'user_left');
    await other.request({ type: 'chat', room_id: room, payload: { text: 'still here?' } });
    assert.equal((await u3.take(chatsIn(room), 2)).at(-1).payload.text, 'still here?');
    // The last one, anywhere, is.
    await u3.close();
    const ev = await other.next((m) => m.type === 'user_left');
    assert.deepEqual([ev.room_id, ev.from], [room, 'md-user']);
    assert.deepEqual((await other.request({ type: 'room_info', room_id: room })).members, ['md-other']);
    await other.close();
  });
});

describe('hub.store shared by the nodes (examples/handlers/poll.lua)', () => {
  let cl;
  let scripts;
  before(async () => {
    scripts = tempScripts();
    const ex = path.join(ROOT, 'examples/handlers');
    fs.copyFileSync(path.join(ex, 'poll.lua'), path.join(scripts, 'poll.lua'));
    fs.copyFileSync(path.join(ex, 'lib/polls.lua'), path.join(scripts, 'lib/polls.lua'));
    cl = await startCluster(2, { scripts });
  });
  after(async () => {
    if (cl) await cl.stop();
    fs.rmSync(scripts, { recursive: true, force: true });
  });

  test('a poll opened on node 1 is voted on from node 2, and survives a restart of node 1', async () => {
    const [n1, n2] = cl.nodes;
    const room = 'poll-room';
    let [alice, bob] = await joined(room, [n1, 'poll-alice'], [n2, 'poll-bob']);
    const opened = await alice.request({ type: 'poll', room_id: room,
      payload: { question: 'Lunch?', options: ['pizza', 'sushi'], seconds: 3600 } });
    assert.equal(opened.type, 'ack', JSON.stringify(opened));
    assert.equal(opened.poll, 1);
    const shown = await bob.next((m) => m.type === 'poll');
    assert.deepEqual(shown.payload, { poll: 1, question: 'Lunch?', options: ['pizza', 'sushi'] });
    let ack = await bob.request({ type: 'poll', room_id: room, payload: { poll: 1, vote: 2 } });
    assert.deepEqual(ack.votes, [0, 1]);
    // Node 1 restarts (its users reconnect); bob kept the room alive on n2.
    await restartNode(n1);
    await alice.closed();
    [alice] = await joined(room, [n1, 'poll-alice']);
    ack = await alice.request({ type: 'poll', room_id: room, payload: { poll: 1, vote: 1 } });
    assert.equal(ack.type, 'ack', JSON.stringify(ack));
    assert.deepEqual(ack.votes, [1, 1]);
    // The poll counter is shared too: the next poll, opened on n2, is 2.
    const second = await bob.request({ type: 'poll', room_id: room,
      payload: { question: 'Tea?', options: ['yes', 'no'], seconds: 3600 } });
    assert.equal(second.poll, 2);
    await alice.close();
    await bob.close();
  });
});
