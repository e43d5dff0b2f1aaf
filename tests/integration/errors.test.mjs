// Bad input: every error code, each leaving the connection open and the
// others undisturbed; the closes for oversized frames, invalid UTF-8 and
// slow consumers.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Client, Server, clientFrame, rawSocket, sleep, tempScripts } from './lib/harness.mjs';
import { slowConsumerIsClosed } from './lib/flood.mjs';

describe('error codes', () => {
  let server;
  let c;
  before(async () => {
    const dir = tempScripts();
    fs.writeFileSync(path.join(dir, 'boom.lua'), 'return function() error("boom") end\n');
    fs.writeFileSync(path.join(dir, 'junk.lua'), 'return function() return 42 end\n');
    fs.writeFileSync(path.join(dir, 'unencodable.lua'), 'return function() return { f = function() end } end\n');
    fs.writeFileSync(path.join(dir, 'deny.lua'),
      'local hub = require "hub"\nreturn function() hub.fail("forbidden", "members only") end\n');
    fs.writeFileSync(path.join(dir, 'slow_down.lua'),
      'local hub = require "hub"\nreturn function() hub.fail("rate_limited", "one per second") end\n');
    server = await new Server([], { scripts: dir }).start();
    c = await Client.connect(server, 'err');
  });
  after(() => server.stop());

  // Sends raw text (or an object), expects an error with code, then proves
  // the connection still answers.
  async function expectError(frame, code, { id } = {}) {
    c.send(frame);
    const err = await c.next((m) => m.type === 'error');
    assert.equal(err.code, code, `for ${typeof frame === 'string' ? frame : JSON.stringify(frame)}: ${JSON.stringify(err)}`);
    assert.equal(typeof err.message, 'string');
    assert.ok(err.message.length > 0);
    assert.deepEqual(err.id, id);
    await c.alive();
    return err;
  }

  test('bad_json: not JSON, and JSON deeper than 32 levels', async () => {
    await expectError('not json', 'bad_json');
    await expectError('{"type":"ping"', 'bad_json');
    const deep = (n) => `{"type":"ping","payload":{"a":${'['.repeat(n - 3)}{}${']'.repeat(n - 3)}}}`;
    await expectError(deep(33), 'bad_json');
    // 32 levels pass the envelope (and ping answers).
    c.send(deep(32));
    const pong = await c.next((m) => m.type === 'pong');
    assert.equal(pong.type, 'pong');
  });

  test('bad_message: not an object, no string type, fields of the wrong kind, binary', async () => {
    await expectError('[1,2]', 'bad_message');
    await expectError('"chat"', 'bad_message');
    await expectError('42', 'bad_message');
    await expectError({ id: 5 }, 'bad_message', { id: 5 });
    await expectError({ type: 7, id: 'x' }, 'bad_message', { id: 'x' });
    await expectError({ type: 'chat', room_id: 5, id: 6 }, 'bad_message', { id: 6 });
    await expectError({ type: 'chat', payload: [1], id: 7 }, 'bad_message', { id: 7 });
    await expectError({ type: 'chat', to: 5, id: 8 }, 'bad_message', { id: 8 });
    c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    const err = await c.next((m) => m.type === 'error');
    assert.equal(err.code, 'bad_message');
    await c.alive();
  });

  test('unknown_type: no such handler, or a type that cannot name one', async () => {
    await expectError({ type: 'nope', id: 1 }, 'unknown_type', { id: 1 });
    await expectError({ type: '../scripts/chat', id: 2 }, 'unknown_type', { id: 2 });
  });

  test('not_in_room and not_found from the shipped handlers', async () => {
    await expectError({ type: 'chat', room_id: 'elsewhere', payload: {}, id: 1 }, 'not_in_room', { id: 1 });
    await expectError({ type: 'room_info', room_id: 'missing', id: 2 }, 'not_found', { id: 2 });
  });

  test('handler_error: a script that raises or returns junk; no path or line reaches the client', async () => {
    const e1 = await expectError({ type: 'boom', id: 1 }, 'handler_error', { id: 1 });
    assert.equal(e1.message, 'boom');
    const e2 = await expectError({ type: 'junk', id: 2 }, 'handler_error', { id: 2 });
    assert.doesNotMatch(e2.message, /\.lua|:\d+/);
    await server.waitLog(/boom\.lua:1/);
  });

  test('handler_error: a reply that cannot be encoded as JSON; the log names the handler', async () => {
    const e = await expectError({ type: 'unencodable', id: 4 }, 'handler_error', { id: 4 });
    assert.equal(e.message, "the handler's reply cannot be encoded as JSON");
    await server.waitLog(/handler unencodable reply cannot be sent conn=\S+: cannot encode a function/);
  });

  test('codes raised by a script with hub.fail: forbidden, rate_limited', async () => {
    const e = await expectError({ type: 'deny', id: 'd' }, 'forbidden', { id: 'd' });
    assert.equal(e.message, 'members only');
    await expectError({ type: 'slow_down', id: 3 }, 'rate_limited', { id: 3 });
  });

  test('ids are echoed as sent: numbers as numbers, strings as strings', async () => {
    await expectError({ type: 'nope', id: 1.5 }, 'unknown_type', { id: 1.5 });
    await expectError({ type: 'nope', id: 'a"b' }, 'unknown_type', { id: 'a"b' });
    const ack = await c.request({ type: 'online_users', id: 'q-1' });
    assert.equal(ack.id, 'q-1');
  });

  test('a failing frame without id still gets an error, without id', async () => {
    c.send({ type: 'nope' });
    const err = await c.next((m) => m.type === 'error');
    assert.equal(err.code, 'unknown_type');
    assert.equal('id' in err, false);
  });
});

describe('closes that protect the server', () => {
  let server;
  before(async () => { server = await new Server(['--max-message', '1024', '--send-queue', '65536']).start(); });
  after(() => server.stop());

  async function bystander(room) {
    const a = await Client.connect(server, `by-a-${room}`);
    const b = await Client.connect(server, `by-b-${room}`);
    await a.request({ type: 'join_room', room_id: room });
    await b.request({ type: 'join_room', room_id: room });
    return { a, b };
  }

  async function stillServed({ a, b }, room) {
    await a.request({ type: 'chat', room_id: room, payload: { text: 'still here' } });
    const m = await b.next((f) => f.type === 'chat' && f.payload.text === 'still here');
    assert.equal(m.from, a.user);
  }

  test('a frame over --max-message closes with 1009; others are undisturbed', async () => {
    const others = await bystander('big');
    const c = await Client.connect(server, 'big-sender');
    c.send(JSON.stringify({ type: 'ping', payload: { pad: 'x'.repeat(2000) } }));
    const { code } = await c.closed();
    assert.equal(code, 1009);
    await stillServed(others, 'big');
  });

  test('a message just under --max-message is served', async () => {
    const c = await Client.connect(server, 'under');
    const frame = JSON.stringify({ type: 'ping', id: 1, payload: { pad: '' } });
    c.send(frame.replace('"pad":""', `"pad":"${'x'.repeat(1000 - frame.length)}"`));
    const pong = await c.next((m) => m.type === 'pong');
    assert.equal(pong.id, 1);
    await c.close();
  });

  test('a text frame that is not UTF-8 closes with 1007; others are undisturbed', async () => {
    const others = await bystander('utf');
    const raw = await rawSocket(server, 'bad-utf8');
    raw.write(clientFrame(1, Buffer.from([0x7b, 0xff, 0xfe, 0x7d])));
    for (let t = 0; t < 300 && !raw.received().includes(0x88); t++) await sleep(10);
    const bytes = raw.received();
    const i = bytes.lastIndexOf(0x88);
    assert.ok(i >= 0, 'a close frame came back');
    assert.equal(bytes.readUInt16BE(i + 2), 1007);
    await stillServed(others, 'utf');
  });

  test('a consumer that stops reading is closed with 4008; the others get every message in order', async () => {
    await slowConsumerIsClosed(server, '');
  });
});

describe('every frame gets one answer, its id echoed as written', () => {
  let server;
  let c;
  let raw;
  before(async () => {
    const dir = tempScripts();
    // A handler that builds a message JSON cannot carry: NaN, a function,
    // a cycle; each must fail before the room's seq is taken.
    fs.writeFileSync(path.join(dir, 'bad_publish.lua'), `
local hub = require "hub"
return function(conn, msg)
  local what = msg.payload.what
  local body = { n = 0 / 0 }
  if what == "function" then body = { f = print } end
  if what == "cycle" then body = {}; body.self = body end
  hub.publish(msg.room_id, { type = "chat", from = conn.user, payload = body })
end
`);
    server = await new Server([], { scripts: dir }).start();
    c = await Client.connect(server, 'ids');
    raw = [];
    c.ws.on('message', (d) => raw.push(d.toString()));
  });
  after(() => server.stop());

  // Sends text and resolves with the raw text of the next answer of a type.
  async function rawAnswer(text, type) {
    const n = raw.length;
    c.send(text);
    const m = await c.next((f) => f.type === type);
    const i = raw.findIndex((r, k) => k >= n && JSON.parse(r).type === type);
    assert.ok(i >= 0);
    assert.deepEqual(JSON.parse(raw[i]), m);
    return raw[i];
  }

  test('ack, error and pong echo the id\'s own text: -0, 1.50, 1e2, big integers, escapes', async () => {
    for (const id of ['-0', '1.50', '1e2', '12345678901234567890', '"a\\u0041\\/b"']) {
      const ack = await rawAnswer(`{"type":"online_users","id":${id}}`, 'ack');
      assert.ok(ack.startsWith(`{"type":"ack","id":${id},`), ack);
      const err = await rawAnswer(`{"type":"nope","id":${id}}`, 'error');
      assert.ok(err.startsWith(`{"type":"error","id":${id},`), err);
      const pong = await rawAnswer(`{"type":"ping","id":${id}}`, 'pong');
      assert.ok(pong.startsWith(`{"type":"pong","id":${id},`), pong);
      const bad = await rawAnswer(`{"type":"chat","id":${id},"room_id":7}`, 'error');
      assert.ok(bad.startsWith(`{"type":"error","id":${id},"code":"bad_message"`), bad);
    }
  });

  test('a number JSON cannot carry back out is bad_json; the id is echoed when it is not that number', async () => {
    const e1 = await rawAnswer('{"type":"ping","id":1e999}', 'error');
    assert.equal(JSON.parse(e1).code, 'bad_json');
    assert.equal('id' in JSON.parse(e1), false);
    const e2 = await rawAnswer('{"type":"ping","id":-1e999}', 'error');
    assert.equal(JSON.parse(e2).code, 'bad_json');
    const e3 = await rawAnswer('{"type":"chat","payload":{"n":1e999},"id":"late"}', 'error');
    assert.equal(JSON.parse(e3).code, 'bad_json');
    assert.equal(JSON.parse(e3).id, 'late');
    assert.match(JSON.parse(e3).message, /out of range/);
    await c.alive();
  });

  test('an id that is not a number or a string still gets one bad_message, without id', async () => {
    for (const id of ['{"a":1}', '[1]', 'null', 'true']) {
      const e = await rawAnswer(`{"type":"ping","id":${id}}`, 'error');
      assert.equal(JSON.parse(e).code, 'bad_message');
      assert.equal('id' in JSON.parse(e), false);
    }
    await sleep(50);
    assert.equal(c.seen('pong').length, 0);
    assert.equal(c.seen('error').length, 0, 'exactly one answer each');
  });

  test('a seq is taken only by a message that is delivered', async () => {
    const other = await Client.connect(server, 'ids-other');
    for (const x of [c, other]) await x.request({ type: 'join_room', room_id: 'gapless' });
    const chat = (n) => ({ type: 'chat', room_id: 'gapless', payload: { n } });
    assert.equal((await c.request(chat(1))).seq, 1);
    // From the client: refused as it is read.
    c.send('{"type":"chat","id":"inf","room_id":"gapless","payload":{"n":1e999}}');
    const e = await c.next((m) => m.id === 'inf');
    assert.equal(e.code, 'bad_json');
    // From a handler: NaN, a function, a cycle.
    for (const what of ['nan', 'function', 'cycle']) {
      const err = await c.request({ type: 'bad_publish', room_id: 'gapless', payload: { what } });
      assert.equal(err.code, 'handler_error', what);
    }
    assert.equal((await c.request(chat(2))).seq, 2);
    const seqs = [];
    for (let k = 0; k < 2; k++) seqs.push((await other.next((m) => m.type === 'chat')).seq);
    assert.deepEqual(seqs, [1, 2]);
    await other.close();
  });
});
