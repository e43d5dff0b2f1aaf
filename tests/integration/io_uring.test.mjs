// The two ways the transport writes frames out (--io-uring): through an
// io_uring, a batch of sockets per system call, and one sendmsg() per
// connection. The same behaviours under both: a room's messages reach
// every member in order, a consumer that stops reading is closed 4008
// while the others keep getting theirs, the close handshakes, control
// frames; the log names the path chosen at start.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, Server, clientFrame, rawSocket, runToExit, sleep } from './lib/harness.mjs';

const json = (o) => Buffer.from(JSON.stringify(o));

for (const mode of ['on', 'off']) {
  describe(`--io-uring ${mode}`, () => {
    let server;
    before(async () => {
      server = await new Server(['--io-uring', mode, '--send-queue', '65536', '--max-message', '1024']).start();
    });
    after(() => server.stop());

    test('the log names the path chosen at start', () => {
      if (mode === 'on') assert.match(server.log, /transport: flush: io_uring, \d+ entries/);
      else assert.match(server.log, /transport: flush: sendmsg \(--io-uring off\)/);
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

    test('a consumer that stops reading is closed with 4008; the others get every message in order', async () => {
      const room = `flood-${mode}`;
      const pub = await Client.connect(server, `sq-pub-${mode}`);
      const fast = await Client.connect(server, `sq-fast-${mode}`);
      const slow = await rawSocket(server, `sq-slow-${mode}`);
      slow.pause(); // stop reading: the kernel buffers fill, then our queue
      for (const x of [pub, fast]) await x.request({ type: 'join_room', room_id: room });
      slow.write(clientFrame(1, json({ type: 'join_room', room_id: room })));
      await sleep(200);
      const pad = 'y'.repeat(900);
      const N = 12000; // ~11 MB: more than loopback's socket buffers absorb
      let sent = 0;
      while (sent < N) {
        for (let i = 0; i < 500 && sent < N; i++) {
          sent++;
          pub.send({ type: 'chat', room_id: room, payload: { n: sent, pad } });
        }
        await sleep(5);
      }
      await server.waitLog(new RegExp(`slow consumer closed conn=\\d+ user=sq-slow-${mode}`), 10000);
      // The fast member got all N, in order, while the slow one's socket
      // was full (a ring that waited on it would hold up everyone).
      let last = 0;
      for (let k = 0; k < N; k++) {
        const m = await fast.next((f) => f.type === 'chat' && f.room_id === room, 10000);
        assert.equal(m.seq, last + 1);
        last = m.seq;
      }
      assert.equal(last, N);
      // What the slow client was sent ends with a 4008 close frame.
      slow.resume();
      await Promise.race([slow.ended, sleep(5000)]);
      const bytes = slow.received();
      const tail = bytes.subarray(bytes.length - 64);
      const at = tail.lastIndexOf(0x88);
      assert.ok(at >= 0, 'a close frame ends the stream');
      assert.equal(tail.readUInt16BE(at + 2), 4008);
      await fast.alive();
      await pub.close();
      await fast.close();
    });

    test('close handshakes: the client\'s code is echoed; ours (1009) goes out after the queue', async () => {
      const c = await Client.connect(server, `close-${mode}`);
      c.ws.close(4321, 'bye');
      const { code } = await c.closed();
      assert.equal(code, 4321);
      const big = await Client.connect(server, `big-${mode}`);
      big.send({ type: 'ping', id: 7 });
      big.send(JSON.stringify({ type: 'ping', payload: { pad: 'x'.repeat(2000) } }));
      const closed = await big.closed();
      assert.equal(closed.code, 1009);
      assert.ok(big.frames.some((m) => m.type === 'pong' && m.id === 7), 'the pong queued before the close');
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
      assert.match(server.log, /transport: flush: (io_uring, \d+ entries|sendmsg \(io_uring unavailable: .+\))/);
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
