// History and recovery on one node (PROTOCOL.md 1.1, "History and
// recovery"): join_room with since/epoch, the history request, epochs,
// --history-size and --history-ttl, over the real server.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, Server, sleep } from './lib/harness.mjs';

// A client that also keeps every frame's text, in the order it came.
async function connect(server, user, open) {
  const c = await Client.connect(server, user);
  c.raw = [];
  c.ws.on('message', (d) => c.raw.push(d.toString()));
  open.push(c);
  return c;
}

const seqs = (messages) => messages.map((m) => m.seq);
const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const chat = (c, room, text) => c.request({ type: 'chat', room_id: room, payload: { text } });

describe('history and recovery', () => {
  const servers = [];
  const open = [];
  const start = async (args = []) => {
    const s = await new Server(args).start();
    servers.push(s);
    return s;
  };
  after(async () => {
    for (const c of open) c.ws.terminate();
    for (const s of servers) await s.stop();
  });

  test('after a reconnect, join_room with since recovers the frames delivered live, byte for byte', async () => {
    const s = await start();
    const alice = await connect(s, 'rc-alice', open);
    let bob = await connect(s, 'rc-bob', open);
    const first = await alice.request({ type: 'join_room', room_id: 'rc' });
    assert.equal(typeof first.epoch, 'string');
    assert.ok(first.epoch.length > 0);
    await bob.request({ type: 'join_room', room_id: 'rc' });
    for (let i = 1; i <= 3; i++) await chat(alice, 'rc', `before ${i}`);
    await bob.take((m) => m.type === 'chat', 3);
    await bob.close();
    for (let i = 4; i <= 6; i++) await chat(alice, 'rc', `missed ${i}`);
    await alice.take((m) => m.type === 'chat', 6);
    const live = alice.raw.filter((t) => JSON.parse(t).type === 'chat').slice(3);
    assert.equal(live.length, 3);

    bob = await connect(s, 'rc-bob', open);
    const ack = await bob.request({ type: 'join_room', room_id: 'rc', payload: { since: 3, epoch: first.epoch } });
    assert.equal(ack.recovered, true);
    assert.equal(ack.seq, 6);
    assert.equal(ack.epoch, first.epoch);
    assert.deepEqual(seqs(ack.messages), [4, 5, 6]);
    assert.deepEqual(ack.messages, live.map((t) => JSON.parse(t)));
    const ackText = bob.raw.find((t) => JSON.parse(t).type === 'ack' && JSON.parse(t).id === ack.id);
    assert.ok(ackText.includes(`"messages":[${live.join(',')}]`), 'the very bytes delivered live');
    // room_info carries the epoch too.
    const info = await bob.request({ type: 'room_info', room_id: 'rc' });
    assert.equal(info.epoch, first.epoch);
  });

  test('recovery while another client publishes: ack messages and live frames are every seq once, in order', async () => {
    const s = await start(['--history-size', '1000']);
    const alice = await connect(s, 'gf-alice', open);
    let bob = await connect(s, 'gf-bob', open);
    const j = await alice.request({ type: 'join_room', room_id: 'gf' });
    await bob.request({ type: 'join_room', room_id: 'gf' });
    for (let i = 0; i < 10; i++) await chat(alice, 'gf', `m${i}`);
    await bob.take((m) => m.type === 'chat', 10);
    await bob.close();
    // alice publishes without pause while bob comes back.
    const N = 400;
    let sent = 0;
    const pump = (async () => {
      while (sent < N) {
        alice.send({ type: 'chat', id: 10000 + sent, room_id: 'gf', payload: { n: sent } });
        sent++;
        if (sent % 5 === 0) await sleep(1);
      }
    })();
    await sleep(20);
    bob = await connect(s, 'gf-bob', open);
    bob.send({ type: 'join_room', id: 'rejoin', room_id: 'gf', payload: { since: 10, epoch: j.epoch } });
    await pump;
    const last = await alice.next((m) => m.type === 'ack' && m.id === 10000 + N - 1, 10000);
    const final = last.seq;
    assert.equal(final, 10 + N);
    // Every frame bob got, in order: the ack, then live chats.
    const deadline = Date.now() + 10000;
    for (;;) {
      const got = bob.raw.map((t) => JSON.parse(t));
      const at = got.findIndex((m) => m.type === 'ack' && m.id === 'rejoin');
      const liveAfter = at < 0 ? [] : got.slice(at + 1).filter((m) => m.type === 'chat');
      if (at >= 0 && (liveAfter.length && liveAfter.at(-1).seq === final || got[at].seq === final)) {
        const ack = got[at];
        assert.equal(ack.recovered, true);
        assert.ok(ack.seq > 10 && ack.seq < final, `the rejoin fell amid the publishing (ack.seq ${ack.seq})`);
        assert.equal(got.slice(0, at).filter((m) => m.type === 'chat').length, 0);
        assert.deepEqual([...seqs(ack.messages), ...seqs(liveAfter)], range(11, final));
        break;
      }
      if (Date.now() > deadline) throw new Error('bob never saw the last seq');
      await sleep(20);
    }
  });

  test('a since older than what is kept, or a wrong epoch, is not recovered: messages hold what is kept after since', async () => {
    const s = await start(['--history-size', '5']);
    const alice = await connect(s, 'old-alice', open);
    const j = await alice.request({ type: 'join_room', room_id: 'old' });
    for (let i = 1; i <= 10; i++) await chat(alice, 'old', `m${i}`);
    let ack = await alice.request({ type: 'join_room', room_id: 'old', payload: { since: 2, epoch: j.epoch } });
    assert.equal(ack.recovered, false);
    assert.deepEqual(seqs(ack.messages), [6, 7, 8, 9, 10]);
    assert.equal(ack.seq, 10);
    ack = await alice.request({ type: 'join_room', room_id: 'old', payload: { since: 7, epoch: j.epoch } });
    assert.equal(ack.recovered, true);
    assert.deepEqual(seqs(ack.messages), [8, 9, 10]);
    ack = await alice.request({ type: 'join_room', room_id: 'old', payload: { since: 7, epoch: 'not-the-epoch' } });
    assert.equal(ack.recovered, false);
    assert.deepEqual(seqs(ack.messages), [8, 9, 10]);
    ack = await alice.request({ type: 'join_room', room_id: 'old', payload: { since: 7 } });
    assert.equal(ack.recovered, false, 'no epoch given: nothing to vouch for');
    ack = await alice.request({ type: 'join_room', room_id: 'old', payload: { since: 10, epoch: j.epoch } });
    assert.equal(ack.recovered, true);
    assert.deepEqual(ack.messages, []);
    for (const bad of [-1, 1.5, 'x', 2 ** 60]) {
      const e = await alice.request({ type: 'join_room', room_id: 'old', payload: { since: bad } });
      assert.equal(e.code, 'bad_message', `since ${JSON.stringify(bad)}`);
      // The sentence names the range, so a client sending a seq past 2^53
      // is not told its number is below zero.
      assert.match(e.message, /payload\.since must be a whole number from 0 to 2\^53/);
    }
    const e = await alice.request({ type: 'join_room', room_id: 'old', payload: { since: 1, epoch: 5 } });
    assert.equal(e.code, 'bad_message');
  });

  test('history expires by age (--history-ttl)', async () => {
    const s = await start(['--history-ttl', '1']);
    const alice = await connect(s, 'ttl-alice', open);
    const j = await alice.request({ type: 'join_room', room_id: 'ttl' });
    for (let i = 1; i <= 3; i++) await chat(alice, 'ttl', `m${i}`);
    let h = await alice.request({ type: 'history', room_id: 'ttl' });
    assert.deepEqual(seqs(h.messages), [1, 2, 3]);
    await sleep(1300);
    h = await alice.request({ type: 'history', room_id: 'ttl' });
    assert.deepEqual(h.messages, []);
    assert.equal(h.seq, 3);
    const ack = await alice.request({ type: 'join_room', room_id: 'ttl', payload: { since: 1, epoch: j.epoch } });
    assert.equal(ack.recovered, false);
    assert.deepEqual(ack.messages, []);
  });

  test('the history request: a forward page with since, the newest without, limits, members only', async () => {
    const s = await start(['--history-size', '8']);
    const alice = await connect(s, 'hr-alice', open);
    const eve = await connect(s, 'hr-eve', open);
    const j = await alice.request({ type: 'join_room', room_id: 'hr' });
    for (let i = 1; i <= 12; i++) await chat(alice, 'hr', `m${i}`);
    let h = await alice.request({ type: 'history', room_id: 'hr', payload: { since: 5, limit: 3 } });
    assert.deepEqual(seqs(h.messages), [6, 7, 8]);
    assert.equal(h.room_id, 'hr');
    assert.equal(h.epoch, j.epoch);
    assert.equal(h.seq, 12);
    assert.equal(h.messages[0].from, 'hr-alice');
    assert.deepEqual(h.messages[0].payload, { text: 'm6' });
    h = await alice.request({ type: 'history', room_id: 'hr', payload: { limit: 2 } });
    assert.deepEqual(seqs(h.messages), [11, 12]);
    h = await alice.request({ type: 'history', room_id: 'hr' });
    assert.deepEqual(seqs(h.messages), range(5, 12), 'limit capped by --history-size');
    h = await alice.request({ type: 'history', room_id: 'hr', payload: { since: 0, limit: 100 } });
    assert.deepEqual(seqs(h.messages), range(5, 12));
    h = await alice.request({ type: 'history', room_id: 'hr', payload: { since: 12 } });
    assert.deepEqual(h.messages, []);
    let e = await eve.request({ type: 'history', room_id: 'hr' });
    assert.equal(e.code, 'not_in_room');
    e = await eve.request({ type: 'history', room_id: 'no-such-room' });
    assert.equal(e.code, 'not_in_room');
    for (const payload of [{ limit: 0 }, { limit: -3 }, { since: 'a' }, { since: 2.5 }]) {
      e = await alice.request({ type: 'history', room_id: 'hr', payload });
      assert.equal(e.code, 'bad_message', JSON.stringify(payload));
    }
  });

  test('the default limit is 50', async () => {
    const s = await start();
    const alice = await connect(s, 'dl-alice', open);
    await alice.request({ type: 'join_room', room_id: 'dl' });
    for (let i = 1; i <= 60; i++) alice.send({ type: 'chat', id: 500 + i, room_id: 'dl', payload: { i } });
    await alice.next((m) => m.type === 'ack' && m.id === 560);
    const h = await alice.request({ type: 'history', room_id: 'dl' });
    assert.deepEqual(seqs(h.messages), range(11, 60));
  });

  test('typing is never kept', async () => {
    const s = await start();
    const alice = await connect(s, 'ty-alice', open);
    const bob = await connect(s, 'ty-bob', open);
    await alice.request({ type: 'join_room', room_id: 'ty' });
    await bob.request({ type: 'join_room', room_id: 'ty' });
    await chat(alice, 'ty', 'one');
    alice.send({ type: 'typing', room_id: 'ty' });
    await bob.next((m) => m.type === 'typing');
    await chat(alice, 'ty', 'two');
    const h = await bob.request({ type: 'history', room_id: 'ty' });
    assert.deepEqual(h.messages.map((m) => m.type), ['chat', 'chat']);
    assert.deepEqual(seqs(h.messages), [1, 2]);
  });

  test('a room left empty keeps its seq and history for --history-ttl, then goes (a new epoch)', async () => {
    const s = await start(['--history-ttl', '2']);
    const alice = await connect(s, 'em-alice', open);
    const j = await alice.request({ type: 'join_room', room_id: 'em' });
    await chat(alice, 'em', 'one');
    await chat(alice, 'em', 'two');
    await alice.request({ type: 'leave_room', room_id: 'em' });
    const info = await alice.request({ type: 'room_info', room_id: 'em' });
    assert.deepEqual(info.members, []);
    assert.equal(info.seq, 2);
    let ack = await alice.request({ type: 'join_room', room_id: 'em', payload: { since: 0, epoch: j.epoch } });
    assert.equal(ack.recovered, true);
    assert.deepEqual(seqs(ack.messages), [1, 2]);
    assert.equal(ack.epoch, j.epoch);
    // Alone again, the user's last connection closes: the room empties.
    await alice.close();
    await sleep(3300);
    const back = await connect(s, 'em-alice', open);
    const gone = await back.request({ type: 'room_info', room_id: 'em' });
    assert.equal(gone.code, 'not_found');
    ack = await back.request({ type: 'join_room', room_id: 'em', payload: { since: 2, epoch: j.epoch } });
    assert.equal(ack.recovered, false);
    assert.equal(ack.seq, 0);
    assert.notEqual(ack.epoch, j.epoch);
    assert.deepEqual(ack.messages, []);
  });

  test('a restarted server has new epochs: recovery across it is never claimed', async () => {
    let s = await start();
    let alice = await connect(s, 'rs-alice', open);
    const j = await alice.request({ type: 'join_room', room_id: 'rs' });
    await chat(alice, 'rs', 'before the restart');
    await s.stop();
    s = await start();
    alice = await connect(s, 'rs-alice', open);
    const ack = await alice.request({ type: 'join_room', room_id: 'rs', payload: { since: 0, epoch: j.epoch } });
    assert.equal(ack.recovered, false);
    assert.notEqual(ack.epoch, j.epoch);
    assert.equal(ack.seq, 0);
    assert.deepEqual(ack.messages, []);
  });
});
