// Unit tests of the client's own logic (node --test clients/js/test/):
// the backoff's bounds, the dedupe and ordering of a room's seqs, the
// answers matched to requests. The server's side is played by a scripted
// socket (FakeSocket) that records what the client sends; the tests
// against the real server are tests/integration/client.test.mjs and
// tests/browser/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay, connect, LuahubError, SeqTracker } from '../luahub.js';

test('backoff: full jitter, from 0 up to min(cap, base * 2^attempt), never past the cap', () => {
  for (let attempt = 0; attempt < 40; attempt++) {
    const ceiling = Math.min(15000, 500 * 2 ** attempt);
    assert.equal(backoffDelay(attempt, { random: () => 0 }), 0);
    assert.equal(backoffDelay(attempt, { random: () => 0.999999 }), Math.floor(0.999999 * ceiling));
    for (let i = 0; i < 50; i++) {
      const d = backoffDelay(attempt);
      assert.ok(d >= 0 && d < ceiling && d < 15000, `attempt ${attempt}: ${d}`);
    }
  }
  assert.equal(backoffDelay(3, { base: 100, cap: 1000, random: () => 0.5 }), 400);
  assert.equal(backoffDelay(10, { base: 100, cap: 1000, random: () => 0.5 }), 500);
  // Spread: many clients after the same loss do not pick one delay.
  const delays = new Set(Array.from({ length: 100 }, () => backoffDelay(5)));
  assert.ok(delays.size > 50);
});

const chat = (seq, ts = 1000 + seq) => ({ type: 'chat', room_id: 'r', from: 'a', payload: { n: seq }, seq, timestamp: ts });
const seqs = (frames) => frames.map((f) => f.seq);

test('seq tracker: a first join delivers live frames after the ack seq, each once, in order', () => {
  const t = new SeqTracker();
  t.syncing = true;
  assert.equal(t.live(chat(5)), 'hold');
  assert.equal(t.live(chat(7)), 'hold');
  assert.equal(t.live(chat(6)), 'hold');
  const { reset, frames } = t.joined({ seq: 5, epoch: 'E' });
  assert.equal(reset, false);
  assert.deepEqual(seqs(frames), [6, 7]);
  assert.equal(t.live(chat(7)), 'duplicate');
  assert.equal(t.live(chat(8)), 'deliver');
  assert.equal(t.live(chat(8)), 'duplicate');
  assert.equal(t.last, 8);
});

test('seq tracker: a rejoin merges the ack messages with frames held meanwhile, no dupes, no gaps', () => {
  const t = new SeqTracker();
  t.joined({ seq: 3, epoch: 'E' });
  assert.equal(t.live(chat(4)), 'deliver');
  t.syncing = true; // reconnected, join_room with since 4 sent
  t.live(chat(9));
  t.live(chat(8));
  const ack = { seq: 8, epoch: 'E', recovered: true, messages: [chat(5), chat(6), chat(7), chat(8)] };
  const { reset, frames } = t.joined(ack, 4);
  assert.equal(reset, false);
  assert.deepEqual(seqs(frames), [5, 6, 7, 8, 9]);
  assert.equal(t.last, 9);
});

test('seq tracker: history that no longer reaches back is a reset, and what it has is still delivered', () => {
  const t = new SeqTracker();
  t.joined({ seq: 2, epoch: 'E' });
  t.syncing = true;
  const { reset, frames } = t.joined({ seq: 10, epoch: 'E', recovered: false, messages: [chat(8), chat(9), chat(10)] }, 2);
  assert.equal(reset, true);
  assert.deepEqual(seqs(frames), [8, 9, 10]);
  assert.equal(t.live(chat(11)), 'deliver');
});

test('seq tracker: a new epoch starts over (its seqs are not taken for duplicates)', () => {
  const t = new SeqTracker();
  t.joined({ seq: 50, epoch: 'E1' });
  t.syncing = true;
  const { reset, frames } = t.joined({ seq: 2, epoch: 'E2', recovered: false, messages: [chat(1, 5000), chat(2, 5001)] }, 50);
  assert.equal(reset, true);
  assert.deepEqual(seqs(frames), [1, 2]);
  assert.equal(t.live(chat(3, 5002)), 'deliver');
});

test('seq tracker: a lower seq newer than anything delivered is stale (the stream began again)', () => {
  const t = new SeqTracker();
  t.joined({ seq: 0, epoch: 'E' });
  for (let s = 1; s <= 5; s++) assert.equal(t.live(chat(s)), 'deliver');
  assert.equal(t.live(chat(3)), 'duplicate');
  assert.equal(t.live(chat(1, 9000)), 'stale');
});

// A socket the test plays the server of.
class FakeSocket {
  static all = [];
  constructor(url) {
    this.url = url;
    this.sent = [];
    this.readyState = 0;
    FakeSocket.all.push(this);
  }
  send(text) { this.sent.push(JSON.parse(text)); }
  close() { this.readyState = 3; }
  // the server's side
  frame(obj) { this.onmessage?.({ data: JSON.stringify(obj) }); }
  welcome(user = 'alice') { this.readyState = 1; this.frame({ type: 'welcome', conn_id: '1', user_id: user, timestamp: 1 }); }
  drop(code = 1006) { this.readyState = 3; this.onclose?.({ code, reason: '' }); }
  last(type) { return this.sent.filter((f) => f.type === type).at(-1); }
}
const tick = () => new Promise((r) => setTimeout(r, 0));
const latest = () => FakeSocket.all.at(-1);

test('requests: resolved by their ack, rejected with the error frame, matched by id', async () => {
  FakeSocket.all = [];
  const states = [];
  const hub = connect('ws://h/ws', { user: 'alice', WebSocket: FakeSocket, heartbeat: 0 });
  hub.on('state', (s) => states.push(s));
  await tick();
  assert.equal(latest().url, 'ws://h/ws?user=alice');
  latest().welcome();
  assert.deepEqual(states, ['open']);
  const a = hub.request('room_info', { room_id: 'x' });
  const b = hub.request('custom', { payload: { k: 1 } });
  const [fa, fb] = latest().sent;
  assert.deepEqual(fb, { type: 'custom', payload: { k: 1 }, id: fb.id });
  latest().frame({ type: 'ack', id: fb.id, ok: true });
  latest().frame({ type: 'error', id: fa.id, code: 'not_found', message: "no room 'x'" });
  assert.deepEqual(await b, { type: 'ack', id: fb.id, ok: true });
  await assert.rejects(a, (e) => e instanceof LuahubError && e.code === 'not_found' && e.message === "no room 'x'");
  // An error without an id is an event.
  const errors = [];
  hub.on('error', (f) => errors.push(f.code));
  latest().frame({ type: 'error', code: 'bad_json', message: 'x' });
  assert.deepEqual(errors, ['bad_json']);
  // A request in flight when the socket drops is rejected: disconnected.
  const c = hub.request('ping');
  latest().drop();
  await assert.rejects(c, (e) => e.code === 'disconnected');
  hub.close();
});

test('reconnect: rooms joined again with since and epoch, missed messages replayed, subscriptions renewed', async () => {
  FakeSocket.all = [];
  const got = [];
  const resets = [];
  const hub = connect('ws://h/ws', { user: 'alice', WebSocket: FakeSocket, heartbeat: 0, backoff: { base: 1, cap: 2 } });
  await tick();
  latest().welcome();
  const joining = hub.join('r', { onMessage: (f) => got.push(f.seq), onReset: (i) => resets.push(i) });
  const j = latest().last('join_room');
  assert.equal(j.payload, undefined);
  latest().frame({ type: 'ack', id: j.id, room_id: 'r', members: ['alice'], seq: 2, epoch: 'E' });
  const room = await joining;
  latest().frame(chat(3));
  const sub = hub.subscribe(['bob']);
  latest().frame({ type: 'ack', id: latest().last('presence_subscribe').id, statuses: { bob: 'online' } });
  assert.deepEqual(await sub, { bob: 'online' });
  latest().drop();
  await new Promise((r) => setTimeout(r, 20));
  const s2 = latest();
  assert.notEqual(s2, FakeSocket.all[0]);
  s2.welcome();
  const rj = s2.last('join_room');
  assert.deepEqual(rj.payload, { since: 3, epoch: 'E' });
  s2.frame(chat(6)); // live, before the ack: held
  s2.frame({ type: 'ack', id: rj.id, room_id: 'r', members: ['alice'], seq: 5, epoch: 'E', recovered: true, messages: [chat(4), chat(5)] });
  await tick();
  s2.frame(chat(6));
  assert.deepEqual(got, [3, 4, 5, 6]);
  assert.equal(room.seq, 6);
  assert.deepEqual(resets, []);
  const ps = s2.last('presence_subscribe');
  assert.deepEqual(ps.payload, { user_ids: ['bob'] });
  const presence = [];
  hub.on('presence', (f) => presence.push(f.payload));
  s2.frame({ type: 'ack', id: ps.id, statuses: { bob: 'away' } });
  await tick();
  assert.deepEqual(presence, [{ user_id: 'bob', status: 'away' }]);
  // Too much missed: a reset, then what history still had.
  s2.drop();
  await new Promise((r) => setTimeout(r, 20));
  latest().welcome();
  const rj2 = latest().last('join_room');
  assert.deepEqual(rj2.payload, { since: 6, epoch: 'E' });
  latest().frame({ type: 'ack', id: rj2.id, room_id: 'r', members: ['alice'], seq: 20, epoch: 'E', recovered: false, messages: [chat(19), chat(20)] });
  await tick();
  assert.equal(resets.length, 1);
  assert.equal(resets[0].since, 6);
  assert.equal(resets[0].seq, 20);
  assert.deepEqual(got, [3, 4, 5, 6, 19, 20]);
  hub.close();
  assert.equal(hub.state, 'closed');
});

test('a refused identity (4001) is not retried; requests made while connecting wait for the welcome', async () => {
  FakeSocket.all = [];
  const hub = connect('ws://h/ws', { token: () => 'T', WebSocket: FakeSocket, heartbeat: 0, backoff: { base: 1, cap: 2 } });
  const early = hub.request('ping');
  await tick();
  assert.equal(latest().url, 'ws://h/ws?token=T');
  assert.equal(latest().sent.length, 0);
  latest().welcome();
  const p = latest().last('ping');
  latest().frame({ type: 'pong', id: p.id, timestamp: 5 });
  assert.equal((await early).type, 'pong');
  let detail;
  hub.on('state', (s, d) => { detail = { s, ...d }; });
  latest().drop(4001);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(FakeSocket.all.length, 1);
  assert.equal(detail.s, 'closed');
  assert.equal(detail.reconnect, false);
  await assert.rejects(hub.request('ping'), (e) => e.code === 'closed');
});

test('typing: throttled when sent, expires when received, cleared by the typer\'s message', async () => {
  FakeSocket.all = [];
  const hub = connect('ws://h/ws', { user: 'alice', WebSocket: FakeSocket, heartbeat: 0, typingTimeout: 30 });
  await tick();
  latest().welcome();
  const seen = [];
  const joining = hub.join('r', { onTyping: (users) => seen.push(users.join(',')) });
  latest().frame({ type: 'ack', id: latest().last('join_room').id, room_id: 'r', members: ['alice'], seq: 0, epoch: 'E' });
  const room = await joining;
  assert.equal(room.typing(), true);
  assert.equal(room.typing(), false);
  assert.equal(latest().sent.filter((f) => f.type === 'typing').length, 1);
  latest().frame({ type: 'typing', room_id: 'r', from: 'bob', timestamp: 1 });
  assert.deepEqual(room.typers, ['bob']);
  latest().frame({ ...chat(1), from: 'bob' });
  assert.deepEqual(room.typers, []);
  latest().frame({ type: 'typing', room_id: 'r', from: 'bob', timestamp: 1 });
  await new Promise((r) => setTimeout(r, 60));
  assert.deepEqual(seen, ['bob', '', 'bob', '']);
  hub.close();
});
