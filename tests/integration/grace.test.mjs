// --presence-grace (issue 12): a user whose last connection closes is
// shown offline (presence subscribers told, gone from online_users, out of
// their rooms with user_left) only if no connection of theirs comes back
// within the grace, so a page reload does not flap presence for everyone.
// On one node, and on two over Redis, where coming back on the other node
// counts too.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, Server, sleep } from './lib/harness.mjs';
import { startCluster } from './lib/redis.mjs';

const GRACE = 1; // seconds

const left = (user) => (m) => (m.type === 'presence' && m.payload.user_id === user && m.payload.status === 'offline') ||
  (m.type === 'user_left' && m.from === user);

async function online(c) {
  return (await c.request({ type: 'online_users' })).users;
}

// The watcher (on first) subscribes to user's presence and shares a room
// with them; user connects on first, closes, and comes back on second
// (the same node or another) within the grace: nothing is announced, and
// the user is still a member. Then the user leaves for good: offline and
// user_left, after the grace and not before.
async function reloadThenLeave(first, second, tag) {
  const user = `${tag}-alice`;
  const room = `${tag}-room`;
  const w = await Client.connect(first, `${tag}-watch`);
  await w.request({ type: 'presence_subscribe', payload: { user_ids: [user] } });
  const a1 = await Client.connect(first, user);
  assert.equal((await w.next((m) => m.type === 'presence')).payload.status, 'online');
  await w.request({ type: 'join_room', room_id: room });
  await a1.request({ type: 'join_room', room_id: room });
  await w.next((m) => m.type === 'user_joined' && m.from === user);

  // A reload: closed, and back within the grace.
  await a1.close();
  await sleep(100);
  const a2 = await Client.connect(second, user);
  await sleep((GRACE + 1.5) * 1000); // past the grace and a reap or two
  assert.deepEqual(w.frames.filter(left(user)), [], 'no offline, no user_left');
  assert.deepEqual(w.seen('presence'), [], 'nothing announced on the way back');
  assert.ok((await online(w)).includes(user));
  // Still a member: the room's chats reach the new connection unasked.
  const ack = await w.request({ type: 'chat', room_id: room, payload: { text: 'still here?' } });
  const got = await a2.next((m) => m.type === 'chat' && m.room_id === room);
  assert.equal(got.seq, ack.seq);

  // Gone for good: online during the grace, offline after it.
  const closedAt = Date.now();
  await a2.close();
  await sleep(200);
  assert.deepEqual(w.frames.filter(left(user)), [], 'nothing yet, within the grace');
  assert.ok((await online(w)).includes(user), 'online within the grace');
  const off = await w.next((m) => m.type === 'presence' && m.payload.user_id === user, (GRACE + 4) * 1000);
  assert.equal(off.payload.status, 'offline');
  assert.ok(Date.now() - closedAt >= GRACE * 1000 - 50, `offline after ${Date.now() - closedAt} ms`);
  await w.next((m) => m.type === 'user_left' && m.from === user && m.room_id === room, 3000);
  assert.ok(!(await online(w)).includes(user));
  const info = await w.request({ type: 'room_info', room_id: room });
  assert.deepEqual(info.members, [`${tag}-watch`]);
  await w.close();
}

describe('--presence-grace, one node', () => {
  let server;
  before(async () => { server = await new Server(['--presence-grace', String(GRACE)]).start(); });
  after(() => server.stop());

  test('a reload within the grace announces nothing; leaving for good is announced after it', async () => {
    await reloadThenLeave(server, server, 'pg1');
  });
});

describe('--presence-grace, stopping', () => {
  test('a server told to stop does not wait out the grace of its users', async () => {
    const server = await new Server(['--presence-grace', '60']).start();
    try {
      const gone = await Client.connect(server, 'pgs-gone');
      await Client.connect(server, 'pgs-here');
      await gone.close(); // waits out its grace
      await sleep(100);
      const t0 = Date.now();
      server.signal('SIGTERM');
      const { code } = await Promise.race([server.exited, sleep(5000).then(() => ({ code: 'still running' }))]);
      assert.equal(code, 0);
      assert.ok(Date.now() - t0 < 3000, `stopped in ${Date.now() - t0} ms`);
    } finally {
      await server.stop();
    }
  });
});

describe('--presence-grace, two nodes', () => {
  let cl;
  before(async () => { cl = await startCluster(2, { args: ['--presence-grace', String(GRACE)] }); });
  after(() => cl && cl.stop());

  test('back on the other node within the grace announces nothing; leaving for good is announced after it', async () => {
    const [n1, n2] = cl.nodes;
    await reloadThenLeave(n1, n2, 'pg2');
  });

  test('back on the same node within the grace counts as well', async () => {
    const [n1, n2] = cl.nodes;
    await reloadThenLeave(n2, n2, 'pg3');
  });
});
