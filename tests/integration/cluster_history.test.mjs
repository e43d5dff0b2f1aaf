// History and recovery with several nodes (PROTOCOL.md 1.1, "History and
// recovery" and "Several nodes"): each room's history in a Redis stream
// written by the publish script, recovered and read from any node, gap-free
// while others publish, and a Redis that lost its data never vouched for.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, sleep } from './lib/harness.mjs';
import { startCluster, waitReadyz } from './lib/redis.mjs';

const seqs = (messages) => messages.map((m) => m.seq);
const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const chat = (c, room, text) => c.request({ type: 'chat', room_id: room, payload: { text } });

// A client that also keeps every frame's text, in the order it came.
async function connect(node, user) {
  const c = await Client.connect(node, user);
  c.raw = [];
  c.ws.on('message', (d) => c.raw.push(d.toString()));
  return c;
}

describe('history and recovery across nodes', () => {
  let cl;
  let n1;
  let n2;
  before(async () => {
    cl = await startCluster(2, { args: ['--history-size', '1000', '--history-ttl', '300'] });
    [n1, n2] = cl.nodes;
  });
  after(() => cl && cl.stop());

  test('join_room with since on the other node recovers the frames delivered live, byte for byte', async () => {
    const alice = await connect(n1, 'xr-alice');
    let bob = await connect(n1, 'xr-bob');
    const first = await alice.request({ type: 'join_room', room_id: 'xr' });
    assert.equal(typeof first.epoch, 'string');
    assert.ok(first.epoch.length > 0);
    await bob.request({ type: 'join_room', room_id: 'xr' });
    for (let i = 1; i <= 3; i++) await chat(alice, 'xr', `before ${i}`);
    await bob.take((m) => m.type === 'chat', 3);
    await bob.close();
    for (let i = 4; i <= 6; i++) await chat(alice, 'xr', `missed ${i}`);
    await alice.take((m) => m.type === 'chat', 6);
    const live = alice.raw.filter((t) => JSON.parse(t).type === 'chat').slice(3);
    assert.equal(live.length, 3);

    bob = await connect(n2, 'xr-bob');
    const ack = await bob.request({ type: 'join_room', room_id: 'xr', payload: { since: 3, epoch: first.epoch } });
    assert.equal(ack.type, 'ack', JSON.stringify(ack));
    assert.equal(ack.recovered, true);
    assert.equal(ack.seq, 6);
    assert.equal(ack.epoch, first.epoch);
    assert.deepEqual(seqs(ack.messages), [4, 5, 6]);
    const ackText = bob.raw.find((t) => JSON.parse(t).id === ack.id);
    assert.ok(ackText.includes(`"messages":[${live.join(',')}]`), 'the very bytes delivered live');
    // room_info on either node carries the same epoch.
    assert.equal((await bob.request({ type: 'room_info', room_id: 'xr' })).epoch, first.epoch);
    assert.equal((await alice.request({ type: 'room_info', room_id: 'xr' })).epoch, first.epoch);
    // And bob is live again: the next chat reaches him once.
    await chat(alice, 'xr', 'after');
    const next = await bob.next((m) => m.type === 'chat');
    assert.equal(next.seq, 7);
    await alice.close();
    await bob.close();
  });

  test('the history request on the other node: a forward page, the newest, members only', async () => {
    const alice = await connect(n1, 'xh-alice');
    const bob = await connect(n2, 'xh-bob');
    const eve = await connect(n2, 'xh-eve');
    const j = await alice.request({ type: 'join_room', room_id: 'xh' });
    await bob.request({ type: 'join_room', room_id: 'xh' });
    for (let i = 1; i <= 12; i++) await chat(alice, 'xh', `m${i}`);
    let h = await bob.request({ type: 'history', room_id: 'xh', payload: { since: 5, limit: 3 } });
    assert.equal(h.type, 'ack', JSON.stringify(h));
    assert.deepEqual(seqs(h.messages), [6, 7, 8]);
    assert.equal(h.epoch, j.epoch);
    assert.equal(h.seq, 12);
    assert.equal(h.messages[0].from, 'xh-alice');
    assert.deepEqual(h.messages[0].payload, { text: 'm6' });
    h = await bob.request({ type: 'history', room_id: 'xh', payload: { limit: 2 } });
    assert.deepEqual(seqs(h.messages), [11, 12]);
    h = await bob.request({ type: 'history', room_id: 'xh' });
    assert.deepEqual(seqs(h.messages), range(1, 12), 'the default limit 50: all 12');
    h = await bob.request({ type: 'history', room_id: 'xh', payload: { since: 12 } });
    assert.deepEqual(h.messages, []);
    let e = await eve.request({ type: 'history', room_id: 'xh' });
    assert.equal(e.code, 'not_in_room');
    e = await eve.request({ type: 'history', room_id: 'no-such-room' });
    assert.equal(e.code, 'not_in_room');
    // typing and user_joined are not kept.
    alice.send({ type: 'typing', room_id: 'xh' });
    await bob.next((m) => m.type === 'typing');
    await eve.request({ type: 'join_room', room_id: 'xh' });
    h = await eve.request({ type: 'history', room_id: 'xh', payload: { since: 10 } });
    assert.deepEqual(h.messages.map((m) => m.type), ['chat', 'chat']);
    for (const c of [alice, bob, eve]) await c.close();
  });

  test('a join without since on the other node amid publishing: every chat after the ack is above its seq, in order', async () => {
    const room = 'xp';
    const alice = await connect(n1, 'xp-alice');
    await alice.request({ type: 'join_room', room_id: room });
    let amid = 0;
    for (let round = 0; round < 4; round++) {
      const N = 200;
      let sent = 0;
      const pump = (async () => {
        while (sent < N) {
          alice.send({ type: 'chat', id: `p${round}-${sent}`, room_id: room, payload: { n: sent } });
          sent++;
          if (sent % 10 === 0) await sleep(1);
        }
      })();
      await sleep(10);
      const bob = await connect(n2, `xp-bob${round}`);
      const ack = await bob.request({ type: 'join_room', room_id: room });
      await pump;
      const last = await alice.next((m) => m.type === 'ack' && m.id === `p${round}-${N - 1}`, 10000);
      await bob.take((m) => m.type === 'chat' && m.seq === last.seq, 1, 10000);
      const got = bob.raw.map((t) => JSON.parse(t));
      const at = got.findIndex((m) => m.type === 'ack' && m.id === ack.id);
      assert.equal(got.slice(0, at).filter((m) => m.type === 'chat').length, 0, 'no chat before the ack');
      const live = got.slice(at + 1).filter((m) => m.type === 'chat');
      if (ack.seq < last.seq && live.length) amid++;
      assert.deepEqual(seqs(live), range(ack.seq + 1, last.seq), `round ${round}, ack seq ${ack.seq}`);
      await bob.close();
    }
    assert.ok(amid > 0, 'a join fell amid the publishing');
    await alice.close();
  });

  test('recovery on another node while two nodes publish: ack messages then live frames are every seq once, in order', async () => {
    const room = 'xg';
    const alice = await connect(n1, 'xg-alice');
    const carol = await connect(n2, 'xg-carol');
    let bob = await connect(n1, 'xg-bob');
    const j = await alice.request({ type: 'join_room', room_id: room });
    await carol.request({ type: 'join_room', room_id: room });
    await bob.request({ type: 'join_room', room_id: room });
    for (let i = 0; i < 10; i++) await chat(alice, room, `m${i}`);
    await bob.take((m) => m.type === 'chat', 10);
    let since = 10;
    let amid = 0;
    // Several rejoins, alternating nodes, each amid the publishing.
    for (let round = 0; round < 4; round++) {
      // Gone from the room (his last connection closed) before he comes
      // back: else he is still a member, and his new connection gets the
      // room's frames from its welcome on, as his other one would.
      const left = alice.next((m) => m.type === 'user_left' && m.from === 'xg-bob');
      await bob.close();
      await left;
      const N = 300;
      let sent = 0;
      const pump = (async () => {
        while (sent < N) {
          const who = sent % 2 ? carol : alice;
          who.send({ type: 'chat', id: `r${round}-${sent}`, room_id: room, payload: { n: sent } });
          sent++;
          if (sent % 10 === 0) await sleep(1);
        }
      })();
      await sleep(15);
      bob = await connect(round % 2 ? n1 : n2, 'xg-bob');
      bob.send({ type: 'join_room', id: 'rejoin', room_id: room, payload: { since, epoch: j.epoch } });
      await pump;
      const lastA = await alice.next((m) => m.type === 'ack' && m.id === `r${round}-${N - 2}`, 10000);
      const lastC = await carol.next((m) => m.type === 'ack' && m.id === `r${round}-${N - 1}`, 10000);
      const final = Math.max(lastA.seq, lastC.seq);
      assert.equal(final, since + N, 'every chat took a seq');
      const deadline = Date.now() + 10000;
      for (;;) {
        const got = bob.raw.map((t) => JSON.parse(t));
        const at = got.findIndex((m) => m.type === 'ack' && m.id === 'rejoin');
        const liveAfter = at < 0 ? [] : got.slice(at + 1).filter((m) => m.type === 'chat');
        if (at >= 0 && ((liveAfter.length && liveAfter.at(-1).seq === final) || got[at].seq === final)) {
          const ack = got[at];
          assert.equal(ack.type, 'ack', JSON.stringify(ack));
          assert.equal(ack.recovered, true);
          if (ack.seq > since && ack.seq < final) amid++;
          assert.equal(got.slice(0, at).filter((m) => m.type === 'chat').length, 0, `no chat before the ack (round ${round}): ${JSON.stringify(got.slice(0, at + 1).map((m) => [m.type, m.seq, m.id]))} since ${since}`);
          assert.deepEqual([...seqs(ack.messages), ...seqs(liveAfter)], range(since + 1, final));
          break;
        }
        if (Date.now() > deadline) throw new Error(`bob never saw seq ${final} (round ${round})`);
        await sleep(20);
      }
      since = final;
    }
    assert.ok(amid > 0, 'a rejoin fell amid the publishing');
    for (const c of [alice, bob, carol]) await c.close();
  });

  test('a room left empty keeps its seq, epoch and history for --history-ttl on every node', async () => {
    const alice = await connect(n1, 'xe-alice');
    const j = await alice.request({ type: 'join_room', room_id: 'xe' });
    await chat(alice, 'xe', 'one');
    await chat(alice, 'xe', 'two');
    await alice.close();
    // Nobody is in it now; from the other node it is still there.
    const back = await connect(n2, 'xe-alice');
    const info = await back.request({ type: 'room_info', room_id: 'xe' });
    assert.deepEqual([info.members, info.seq, info.epoch], [[], 2, j.epoch]);
    const ack = await back.request({ type: 'join_room', room_id: 'xe', payload: { since: 0, epoch: j.epoch } });
    assert.deepEqual([ack.recovered, ack.seq, ack.epoch], [true, 2, j.epoch]);
    assert.deepEqual(seqs(ack.messages), [1, 2]);
    assert.equal((await chat(back, 'xe', 'three')).seq, 3);
    // Back in use, the room no longer expires.
    assert.equal(await cl.redis.cmd('PTTL', 'luahub:{xe}:info'), -1);
    await back.close();
  });
});

describe('what a room\'s stream keeps: --history-size and --history-ttl', () => {
  let cl;
  let n1;
  let n2;
  before(async () => {
    cl = await startCluster(2, { args: ['--history-size', '5', '--history-ttl', '1'] });
    [n1, n2] = cl.nodes;
  });
  after(() => cl && cl.stop());

  test('the newest --history-size frames: a since older than that is not recovered', async () => {
    const alice = await connect(n1, 'xs-alice');
    const bob = await connect(n2, 'xs-bob');
    const j = await alice.request({ type: 'join_room', room_id: 'xs' });
    await bob.request({ type: 'join_room', room_id: 'xs' });
    for (let i = 1; i <= 10; i++) await chat(alice, 'xs', `m${i}`);
    assert.equal(await cl.redis.cmd('XLEN', 'luahub:{xs}:history'), 5);
    const pttl = await cl.redis.cmd('PTTL', 'luahub:{xs}:history');
    assert.ok(pttl > 0 && pttl <= 1000, `the stream expires with --history-ttl (${pttl})`);
    let ack = await bob.request({ type: 'join_room', room_id: 'xs', payload: { since: 2, epoch: j.epoch } });
    assert.equal(ack.recovered, false);
    assert.deepEqual(seqs(ack.messages), [6, 7, 8, 9, 10]);
    ack = await bob.request({ type: 'join_room', room_id: 'xs', payload: { since: 7, epoch: j.epoch } });
    assert.equal(ack.recovered, true);
    assert.deepEqual(seqs(ack.messages), [8, 9, 10]);
    const h = await bob.request({ type: 'history', room_id: 'xs', payload: { since: 0, limit: 100 } });
    assert.deepEqual(seqs(h.messages), range(6, 10), 'limit capped by --history-size');
    await alice.close();
    await bob.close();
  });

  test('a frame older than --history-ttl is not handed out, though its stream lives on', async () => {
    const alice = await connect(n1, 'xa-alice');
    const bob = await connect(n2, 'xa-bob');
    const j = await alice.request({ type: 'join_room', room_id: 'xa' });
    await bob.request({ type: 'join_room', room_id: 'xa' });
    await chat(alice, 'xa', 'old');
    await sleep(700);
    await chat(alice, 'xa', 'new');
    await sleep(500);
    const h = await bob.request({ type: 'history', room_id: 'xa' });
    assert.deepEqual(h.messages.map((m) => m.payload.text), ['new']);
    assert.equal(h.seq, 2);
    const ack = await bob.request({ type: 'join_room', room_id: 'xa', payload: { since: 0, epoch: j.epoch } });
    assert.equal(ack.recovered, false);
    assert.deepEqual(seqs(ack.messages), [2]);
    await alice.close();
    await bob.close();
  });

  test('an empty room goes after it: a join makes it anew (seq from 0, a new epoch, nothing recovered)', async () => {
    const alice = await connect(n1, 'xt-alice');
    const j = await alice.request({ type: 'join_room', room_id: 'xt' });
    await chat(alice, 'xt', 'one');
    await alice.close();
    await sleep(1300);
    const back = await connect(n2, 'xt-alice');
    assert.equal((await back.request({ type: 'room_info', room_id: 'xt' })).code, 'not_found');
    const ack = await back.request({ type: 'join_room', room_id: 'xt', payload: { since: 1, epoch: j.epoch } });
    assert.equal(ack.recovered, false);
    assert.equal(ack.seq, 0);
    assert.notEqual(ack.epoch, j.epoch);
    assert.deepEqual(ack.messages, []);
    await back.close();
  });
});

describe('Redis that lost data', () => {
  let cl;
  after(() => cl && cl.stop());

  test('restarted empty: a new epoch, recovered false, never a wrong true', async () => {
    cl = await startCluster(2);
    const [n1, n2] = cl.nodes;
    const alice = await connect(n1, 'xl-alice');
    const bob = await connect(n2, 'xl-bob');
    const j = await alice.request({ type: 'join_room', room_id: 'xl' });
    await bob.request({ type: 'join_room', room_id: 'xl' });
    for (let i = 1; i <= 3; i++) await chat(alice, 'xl', `m${i}`);
    await bob.take((m) => m.type === 'chat', 3);
    await cl.redis.kill();
    await cl.redis.restart({ keepData: false });
    for (const n of [n1, n2]) await waitReadyz(n, 200, 5000);
    // The nodes registered the room's members again: it has a new epoch.
    const info = await bob.request({ type: 'room_info', room_id: 'xl' });
    assert.notEqual(info.epoch, j.epoch);
    assert.ok(info.epoch.length > 0);
    // Three chats again: the seqs 1-3 are new ones.
    for (let i = 1; i <= 3; i++) assert.equal((await chat(alice, 'xl', `new ${i}`)).seq, i);
    await bob.take((m) => m.type === 'chat' && m.payload.text.startsWith('new'), 3);
    for (const [c, since] of [[bob, 1], [bob, 3], [alice, 0]]) {
      const ack = await c.request({ type: 'join_room', room_id: 'xl', payload: { since, epoch: j.epoch } });
      assert.equal(ack.recovered, false, `since ${since} of the lost epoch`);
      assert.equal(ack.epoch, info.epoch);
    }
    const ack = await bob.request({ type: 'join_room', room_id: 'xl', payload: { since: 1, epoch: info.epoch } });
    assert.equal(ack.recovered, true);
    assert.deepEqual(ack.messages.map((m) => m.payload.text), ['new 2', 'new 3']);
    await alice.close();
    await bob.close();
  });

  test('restarted with older data: a since past the room\'s seq is not recovered, and the room gets a new epoch', async () => {
    await cl?.stop();
    cl = await startCluster(2);
    const [n1, n2] = cl.nodes;
    const alice = await connect(n1, 'xo-alice');
    const bob = await connect(n2, 'xo-bob');
    const j = await alice.request({ type: 'join_room', room_id: 'xo' });
    await bob.request({ type: 'join_room', room_id: 'xo' });
    for (let i = 1; i <= 3; i++) await chat(alice, 'xo', `m${i}`);
    await cl.redis.cmd('SAVE'); // what a lagging replica or the last fsync had
    for (let i = 4; i <= 6; i++) await chat(alice, 'xo', `m${i}`);
    await bob.take((m) => m.type === 'chat', 6);
    await cl.redis.kill();
    await cl.redis.restart({ keepData: true });
    for (const n of [n1, n2]) await waitReadyz(n, 200, 5000);
    // Redis says seq 3 in the old epoch; bob saw 6.
    const ack = await bob.request({ type: 'join_room', room_id: 'xo', payload: { since: 6, epoch: j.epoch } });
    assert.equal(ack.recovered, false);
    assert.notEqual(ack.epoch, j.epoch, 'a new epoch');
    assert.equal(ack.seq, 3);
    // The seqs given again are in the new epoch: nobody takes them for the old ones.
    assert.equal((await chat(alice, 'xo', 'again 4')).seq, 4);
    const again = await alice.request({ type: 'join_room', room_id: 'xo', payload: { since: 3, epoch: j.epoch } });
    assert.equal(again.recovered, false);
    const fresh = await alice.request({ type: 'join_room', room_id: 'xo', payload: { since: 3, epoch: ack.epoch } });
    assert.equal(fresh.recovered, true);
    assert.deepEqual(fresh.messages.map((m) => m.payload.text), ['again 4']);
    await alice.close();
    await bob.close();
  });
});
