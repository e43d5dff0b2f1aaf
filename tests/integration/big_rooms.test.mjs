// Big rooms ("Big rooms" in PROTOCOL.md): past --max-listed-members the
// join_room and room_info acks carry member_count but no members, nobody
// is told user_joined or user_left, and room_members pages through the
// room. The same tests run on one node and on two nodes over one Redis
// (members joining on alternating nodes), with a limit of 3 so that a big
// room costs a handful of sockets.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { BIN, Client, Server, runToExit, sleep } from './lib/harness.mjs';
import { startCluster } from './lib/redis.mjs';

const LIMIT = 3;
const ARGS = ['--max-listed-members', String(LIMIT)];
const events = (room) => (m) => (m.type === 'user_joined' || m.type === 'user_left') && m.room_id === room;
const chatsIn = (room) => (m) => m.type === 'chat' && m.room_id === room;

function bigRoomTests(name, setup) {
  describe(name, () => {
    let env;
    const open = [];
    // The i-th client connects to the i-th node in turn.
    let turn = 0;
    const connect = async (user) => {
      const nodes = env.nodes;
      const c = await Client.connect(nodes[turn++ % nodes.length], user);
      open.push(c);
      return c;
    };
    const join = async (c, room) => {
      const ack = await c.request({ type: 'join_room', room_id: room });
      assert.equal(ack.type, 'ack', JSON.stringify(ack));
      return ack;
    };
    // Every frame to room sent before this reached c: a chat from c
    // itself goes through the room's one order (on one node, and through
    // the room's channel with several).
    const sync = async (c, room, text) => {
      await c.request({ type: 'chat', room_id: room, payload: { text } });
      await c.next((m) => chatsIn(room)(m) && m.payload.text === text);
    };
    before(async () => { env = await setup(); });
    after(async () => {
      for (const c of open) c.ws.terminate();
      if (env) await env.stop();
    });

    test('the acks carry member_count always, and members only up to --max-listed-members', async () => {
      const room = 'count-room';
      const users = ['cr-e', 'cr-c', 'cr-a', 'cr-d', 'cr-b'];
      const clients = [];
      const acks = [];
      for (const u of users) {
        const c = await connect(u);
        clients.push(c);
        acks.push(await join(c, room));
      }
      assert.deepEqual(acks.map((a) => a.member_count), [1, 2, 3, 4, 5]);
      assert.deepEqual(acks[0].members, ['cr-e']);
      assert.deepEqual(acks[2].members, ['cr-a', 'cr-c', 'cr-e'], 'sorted, all listed at the limit');
      for (const a of acks.slice(3)) {
        assert.equal('members' in a, false, `no members above the limit: ${JSON.stringify(a)}`);
        assert.equal(a.room_id, room);
        assert.equal(a.seq, 0);
        assert.equal(typeof a.epoch, 'string');
      }
      // Joining again changes nothing and is answered alike.
      const again = await join(clients[0], room);
      assert.equal(again.member_count, 5);
      assert.equal('members' in again, false);

      const info = await clients[1].request({ type: 'room_info', room_id: room });
      assert.equal(info.type, 'ack');
      assert.equal(info.member_count, 5);
      assert.equal('members' in info, false, JSON.stringify(info));
      assert.equal(info.room_id, room);
      assert.ok(Number.isInteger(info.created_at));

      // Back at the limit, members are listed again.
      for (const c of clients.slice(3)) {
        assert.equal((await c.request({ type: 'leave_room', room_id: room })).type, 'ack');
      }
      const small = await clients[0].request({ type: 'room_info', room_id: room });
      assert.equal(small.member_count, 3);
      assert.deepEqual(small.members, ['cr-a', 'cr-c', 'cr-e']);
    });

    test('user_joined and user_left only in rooms of at most --max-listed-members', async () => {
      const room = 'event-room';
      const first = await connect('ev-1');
      await join(first, room);
      const rest = [];
      for (const u of ['ev-2', 'ev-3', 'ev-4', 'ev-5']) {
        const c = await connect(u);
        rest.push(c);
        await join(c, room);
      }
      await sync(first, room, 'after the joins');
      // Joins that made a room of 2 and 3 were told; of 4 and 5, not.
      assert.deepEqual(first.frames.filter(events(room)).map((m) => `${m.type} ${m.from}`),
        ['user_joined ev-2', 'user_joined ev-3']);
      first.frames = first.frames.filter((m) => !events(room)(m));

      // Leaving a room of 5 and of 4: not told; of 3: told.
      const [, c3, c4, c5] = rest;
      for (const c of [c5, c4, c3]) {
        assert.equal((await c.request({ type: 'leave_room', room_id: room })).type, 'ack');
      }
      await sync(first, room, 'after the leaves');
      assert.deepEqual(first.frames.filter(events(room)).map((m) => `${m.type} ${m.from}`),
        ['user_left ev-3']);
    });

    test('a user whose last connection closes is announced only in rooms of at most the limit', async () => {
      const big = 'gone-big';
      const small = 'gone-small';
      const watcher = await connect('gn-w');
      await join(watcher, big);
      await join(watcher, small);
      const others = [];
      for (const u of ['gn-1', 'gn-2', 'gn-3']) {
        const c = await connect(u);
        others.push(c);
        await join(c, big);
      }
      // gn-3 is in the big room (4 members) and the small one (2).
      const leaver = others[2];
      await join(leaver, small);
      await watcher.next((m) => events(small)(m) && m.type === 'user_joined' && m.from === 'gn-3');
      await sync(watcher, big, 'after the joins');
      watcher.frames = watcher.frames.filter((m) => !events(big)(m));
      await leaver.close();
      const left = await watcher.next((m) => events(small)(m), 3000);
      assert.equal(left.type, 'user_left');
      assert.equal(left.from, 'gn-3');
      await sync(watcher, big, 'after the close');
      assert.deepEqual(watcher.frames.filter(events(big)), [], 'no user_left in a room of 4');
      // The big room is now 3: the next one gone is told there.
      await others[1].close();
      const left2 = await watcher.next((m) => events(big)(m), 3000);
      assert.equal(left2.type, 'user_left');
      assert.equal(left2.from, 'gn-2');
    });

    test('room_members pages through a room, sorted, with next', async () => {
      const room = 'page-room';
      const users = ['pg-dan', 'pg-bob', 'pg-eve', 'pg-amy', 'pg-cat'];
      const clients = [];
      for (const u of users) {
        const c = await connect(u);
        clients.push(c);
        await join(c, room);
      }
      const asker = clients[4];
      const ask = (payload) => asker.request({ type: 'room_members', room_id: room, ...(payload ? { payload } : {}) });
      const all = await ask();
      assert.equal(all.type, 'ack', JSON.stringify(all));
      assert.equal(all.room_id, room);
      assert.deepEqual(all.members, ['pg-amy', 'pg-bob', 'pg-cat', 'pg-dan', 'pg-eve']);
      assert.equal(all.next, null);

      const pages = [];
      let after;
      for (;;) {
        const p = await ask(after === undefined ? { limit: 2 } : { after, limit: 2 });
        assert.equal(p.type, 'ack', JSON.stringify(p));
        pages.push(p.members);
        if (p.next === null) break;
        assert.equal(p.next, p.members.at(-1));
        after = p.next;
      }
      assert.deepEqual(pages, [['pg-amy', 'pg-bob'], ['pg-cat', 'pg-dan'], ['pg-eve']]);

      // after need not be a member; a page that ends the room exactly has no next.
      const mid = await ask({ after: 'pg-bz', limit: 3 });
      assert.deepEqual(mid.members, ['pg-cat', 'pg-dan', 'pg-eve']);
      assert.equal(mid.next, null);
      const end = await ask({ after: 'pg-eve' });
      assert.deepEqual(end.members, []);
      assert.equal(end.next, null);

      // The order follows joins and leaves between pages.
      const p1 = await ask({ limit: 2 });
      assert.deepEqual(p1.members, ['pg-amy', 'pg-bob']);
      await clients[2].request({ type: 'leave_room', room_id: room }); // pg-eve
      const late = await connect('pg-cab');
      await join(late, room);
      const p2 = await ask({ after: p1.next, limit: 2 });
      assert.deepEqual(p2.members, ['pg-cab', 'pg-cat']);
      const p3 = await ask({ after: p2.next, limit: 2 });
      assert.deepEqual(p3.members, ['pg-dan']);
      assert.equal(p3.next, null);
    });

    test('room_members: members only, and a bad payload is bad_message', async () => {
      const room = 'guard-room';
      const member = await connect('gd-in');
      await join(member, room);
      const outsider = await connect('gd-out');
      const no = await outsider.request({ type: 'room_members', room_id: room });
      assert.equal(no.type, 'error');
      assert.equal(no.code, 'not_in_room');
      const none = await outsider.request({ type: 'room_members', room_id: 'no-such-room' });
      assert.equal(none.code, 'not_in_room');
      for (const payload of [{ after: 5 }, { after: 'a b' }, { after: '' }, { limit: 0 }, { limit: -1 },
        { limit: 1.5 }, { limit: 'ten' }, [1]]) {
        const e = await member.request({ type: 'room_members', room_id: room, payload });
        assert.equal(e.type, 'error', JSON.stringify(payload));
        assert.equal(e.code, 'bad_message', JSON.stringify(payload));
        assert.match(e.message, /payload/);
      }
      const noRoom = await member.request({ type: 'room_members' });
      assert.equal(noRoom.code, 'bad_message');
      await member.alive();
    });
  });
}

bigRoomTests('big rooms on one node', async () => {
  const server = await new Server(ARGS).start();
  return { nodes: [server], stop: () => server.stop() };
});

bigRoomTests('big rooms on two nodes over Redis', async () => {
  const cl = await startCluster(2, { args: ARGS });
  return { nodes: cl.nodes, stop: cl.stop };
});

describe('room_members limit', () => {
  let server;
  const open = [];
  before(async () => { server = await new Server(ARGS).start(); });
  after(async () => {
    for (const c of open) c.ws.terminate();
    await server.stop();
  });

  test('a page holds at most 1000 members whatever limit asks, 100 by default', async () => {
    const room = 'cap-room';
    const ids = Array.from({ length: 1003 }, (_, i) => `cap-${String(i).padStart(4, '0')}`);
    const batch = 50;
    for (let i = 0; i < ids.length; i += batch) {
      await Promise.all(ids.slice(i, i + batch).map(async (u) => {
        const c = await Client.connect(server, u);
        open.push(c);
        const ack = await c.request({ type: 'join_room', room_id: room });
        assert.equal(ack.type, 'ack');
        assert.equal('members' in ack, ack.member_count <= LIMIT);
      }));
    }
    const asker = open[0];
    const def = await asker.request({ type: 'room_members', room_id: room });
    assert.deepEqual(def.members, ids.slice(0, 100));
    assert.equal(def.next, ids[99]);
    const big = await asker.request({ type: 'room_members', room_id: room, payload: { limit: 5000 } });
    assert.deepEqual(big.members, ids.slice(0, 1000));
    assert.equal(big.next, ids[999]);
    const rest = await asker.request({ type: 'room_members', room_id: room, payload: { after: big.next, limit: 1000 } });
    assert.deepEqual(rest.members, ids.slice(1000));
    assert.equal(rest.next, null);
    const info = await asker.request({ type: 'room_info', room_id: room });
    assert.equal(info.member_count, 1003);
    assert.equal('members' in info, false);
  });
});

test('--max-listed-members takes 0 to 10000000 and is in --help', async () => {
  const help = spawnSync(BIN, ['--help'], { encoding: 'utf8', timeout: 5000 });
  assert.match(help.stdout, /--max-listed-members N[\s\S]*default:\s*1000\)/);
  for (const bad of ['-1', 'x', '10000001', '']) {
    const r = await runToExit(['--max-listed-members', bad]);
    assert.equal(r.code, 2, bad);
    assert.match(r.stderr, /--max-listed-members/);
  }
  await sleep(0);
});
