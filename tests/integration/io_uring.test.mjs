// The two ways the transport reads and writes plain WebSocket connections
// (--io-uring): through an io_uring, a batch of sockets per system call,
// and one recv() or send() per socket. The same behaviours under both:
// a room's messages reach every member in order, many clients' pipelined
// messages are each answered in order, a message bigger than one read of
// a batch and a frame that comes a few bytes at a time arrive whole, a
// consumer that stops reading is closed 4008 while the others keep
// getting theirs, the close handshakes, control frames; the log names
// the path chosen at start.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, Server, clientFrame, rawSocket, runToExit, sleep } from './lib/harness.mjs';
import { slowConsumerIsClosed } from './lib/flood.mjs';

const json = (o) => Buffer.from(JSON.stringify(o));

// The server's frames in what a raw socket received after the 101's head
// (unmasked, as a server sends them): the text of each, in order.
function serverTexts(bytes) {
  const out = [];
  let i = bytes.indexOf('\r\n\r\n') + 4;
  while (i + 2 <= bytes.length) {
    let len = bytes[i + 1] & 127, at = i + 2;
    if (len === 126) { len = bytes.readUInt16BE(at); at += 2; } else if (len === 127) { len = Number(bytes.readBigUInt64BE(at)); at += 8; }
    if (at + len > bytes.length) break;
    if ((bytes[i] & 15) === 1) out.push(bytes.subarray(at, at + len).toString());
    i = at + len;
  }
  return out;
}

for (const mode of ['on', 'off']) {
  describe(`--io-uring ${mode}`, () => {
    let server;
    before(async () => {
      server = await new Server(['--io-uring', mode, '--send-queue', '65536']).start();
    });
    after(() => server.stop());

    test('the log names the path chosen at start', () => {
      if (mode === 'on') assert.match(server.log, /transport: io: io_uring, \d+ calls a batch/);
      else assert.match(server.log, /transport: io: one system call per socket \(--io-uring off\)/);
    });

    test('a room of 150 members gets 40 messages each, in order', async () => {
      // More members than one ring batch (64), so a pass takes several.
      const room = `fan-${mode}`;
      const pub = await Client.connect(server, `fan-pub-${mode}`);
      await pub.request({ type: 'join_room', room_id: room });
      const subs = [];
      for (let i = 0; i < 150; i++) {
        const c = await Client.connect(server, `fan-${mode}-${i}`);
        await c.request({ type: 'join_room', room_id: room });
        subs.push(c);
      }
      const N = 40;
      for (let n = 1; n <= N; n++) pub.send({ type: 'chat', room_id: room, payload: { n } });
      for (const c of subs) {
        const got = await c.take((f) => f.type === 'chat' && f.room_id === room, N, 10000);
        assert.deepEqual(got.map((m) => m.payload.n), Array.from({ length: N }, (_, k) => k + 1));
        assert.deepEqual(got.map((m) => m.seq), Array.from({ length: N }, (_, k) => k + 1));
      }
      await Promise.all([pub, ...subs].map((c) => c.close()));
    });

    test('150 clients sending 30 pings each at once: every one answered, in order', async () => {
      // More readable sockets in a pass than one read batch holds.
      const cs = [];
      for (let i = 0; i < 150; i++) cs.push(await Client.connect(server, `pp-${mode}-${i}`));
      const N = 30;
      for (const c of cs) for (let n = 1; n <= N; n++) c.send({ type: 'ping', id: n });
      for (const c of cs) {
        const got = await c.take((f) => f.type === 'pong', N, 10000);
        assert.deepEqual(got.map((m) => m.id), Array.from({ length: N }, (_, k) => k + 1));
      }
      await Promise.all(cs.map((c) => c.close()));
    });

    test('a 60 KB message (more than one read of a batch) arrives whole', async () => {
      const room = `big-${mode}`;
      const a = await Client.connect(server, `bigmsg-a-${mode}`);
      const b = await Client.connect(server, `bigmsg-b-${mode}`);
      for (const x of [a, b]) await x.request({ type: 'join_room', room_id: room });
      const text = Array.from({ length: 6000 }, (_, k) => String(k % 10)).join('').repeat(10);
      const ack = await a.request({ type: 'chat', room_id: room, payload: { text } });
      assert.equal(ack.type, 'ack');
      const got = await b.next((f) => f.type === 'chat' && f.room_id === room, 5000);
      assert.equal(got.payload.text, text);
      await a.alive();
      await a.close();
      await b.close();
    });

    test('a frame that comes a few bytes at a time is read whole', async () => {
      const raw = await rawSocket(server, `drip-${mode}`);
      const frame = clientFrame(1, json({ type: 'ping', id: 41 }));
      for (let i = 0; i < frame.length; i += 3) {
        raw.write(frame.subarray(i, i + 3));
        await sleep(15);
      }
      for (let t = 0; t < 300 && !serverTexts(raw.received()).some((s) => s.includes('"pong"')); t++) await sleep(10);
      const pong = serverTexts(raw.received()).map((s) => JSON.parse(s)).find((m) => m.type === 'pong');
      assert.ok(pong, 'a pong came back');
      assert.equal(pong.id, 41);
      raw.destroy();
    });

    test('a consumer that stops reading is closed with 4008; the others get every message in order', async () => {
      // A ring that waited on the full socket would hold up the others.
      await slowConsumerIsClosed(server, `-${mode}`);
    });

    test('close handshakes: the client\'s code is echoed; a message over --max-message is closed with 1009', async () => {
      const c = await Client.connect(server, `close-${mode}`);
      c.ws.close(4321, 'bye');
      const { code } = await c.closed();
      assert.equal(code, 4321);
      // Answered first, then closed: a protocol failure drops what is
      // still queued, so the pong is awaited before the big frame goes.
      const big = await Client.connect(server, `big-${mode}`);
      const pong = await big.request({ type: 'ping', id: 7 });
      assert.equal(pong.type, 'pong');
      big.send(JSON.stringify({ type: 'ping', payload: { pad: 'x'.repeat(70000) } }));
      const closed = await big.closed();
      assert.equal(closed.code, 1009);
    });

    test('a client gone without a close frame is dropped; the others stay', async () => {
      const stay = await Client.connect(server, `stay-${mode}`);
      const raw = await rawSocket(server, `gone-${mode}`);
      raw.write(clientFrame(1, json({ type: 'ping', id: 3 })).subarray(0, 5)); // half a frame
      raw.destroy();
      await server.waitLog(new RegExp(`user=gone-${mode}.*code=1006`), 5000);
      await stay.alive();
      await stay.close();
    });

    test('a ping frame is answered with a pong carrying its payload', async () => {
      const raw = await rawSocket(server, `wsping-${mode}`);
      raw.write(clientFrame(9, Buffer.from('are you there')));
      for (let t = 0; t < 300 && !raw.received().includes(Buffer.from([0x8a, 13])); t++) await sleep(10);
      const bytes = raw.received();
      const i = bytes.indexOf(Buffer.from([0x8a, 13]));
      assert.ok(i >= 0, 'a pong came back');
      assert.equal(bytes.subarray(i + 2, i + 15).toString(), 'are you there');
      raw.destroy();
    });
  });
}

describe('--io-uring auto and bad values', () => {
  test('auto (the default) uses the ring where the kernel allows it, and says so', async () => {
    const server = await new Server([]).start();
    try {
      assert.match(server.log, /transport: io: (io_uring, \d+ calls a batch|one system call per socket \(io_uring unavailable: .+\))/);
      const a = await Client.connect(server, 'auto-a');
      await a.alive();
      await a.close();
    } finally {
      await server.stop();
    }
  });

  test('--io-uring bogus is refused with the values it takes', async () => {
    const { code, stderr } = await runToExit(['--port', '0', '--io-uring', 'bogus']);
    assert.notEqual(code, 0);
    assert.match(stderr, /--io-uring: 'bogus' is not auto, on or off/);
  });
});
