// History and recovery with several nodes (PROTOCOL.md 1.1, "History and
// recovery" and "Several nodes"): each room's history in a Redis stream
// written by the publish script, recovered and read from any node, gap-free
// while others publish, and a Redis that lost its data never vouched for.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, sleep } from './lib/harness.mjs';
import { startCluster, waitFor, waitReadyz } from './lib/redis.mjs';

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
});
