// How the server reads its sockets: what a client sends is read whole and
// in order however it arrives (bursts of several reads' worth at once), a
// hang-up that comes with the last data is seen, and a client that floods
// the server does not keep the others waiting. The server is stopped
// (SIGSTOP) while the clients write, so that what they send waits in the
// socket in one piece, as it does on a busy server. These held for
// edge-triggered reads too (docs/benchmarks.md, "Edge-triggered reads",
// tried and not kept), and guard any change to the read path.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, Server, rawSocket, sleep, withTimeout } from './lib/harness.mjs';

// A masked client text frame (mask key 0) of any length.
function textFrame(s) {
  const payload = Buffer.from(s);
  const len = payload.length;
  let head;
  if (len < 126) {
    head = Buffer.from([0x81, 0x80 | len]);
  } else if (len < 65536) {
    head = Buffer.from([0x81, 0x80 | 126, len >> 8, len & 255]);
  } else {
    head = Buffer.alloc(10);
    head[0] = 0x81;
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  return Buffer.concat([head, Buffer.alloc(4), payload]);
}

// The pongs a raw socket has received so far, by id, in order.
function pongIds(sock) {
  const text = sock.received().toString('latin1');
  return [...text.matchAll(/"type":"pong"[^}]*?"id":"([^"]+)"|"id":"([^"]+)"[^}]*?"type":"pong"/g)]
    .map((m) => m[1] ?? m[2]);
}

describe('reading client sockets', () => {
  let server;
  before(async () => {
    // Heartbeats far away and a rate limit out of the way: the server is
    // stopped for a while, and the bursts are thousands of frames.
    server = await new Server(['--ping-interval', '30', '--idle-timeout', '60',
      '--rate-limit', '4000', '--rate-burst', '4000']).start();
  });
  after(() => server.stop());

  async function whileStopped(fn) {
    server.signal('SIGSTOP');
    try {
      await fn();
      await sleep(100); // what was written reaches the server's socket
    } finally {
      server.signal('SIGCONT');
    }
  }

  test('a chat and a hang-up that arrive together: the chat is delivered, the user leaves, the socket closes', async () => {
    const bob = await Client.connect(server, 'fin-bob');
    await bob.request({ type: 'join_room', room_id: 'fin' });
    const alice = await rawSocket(server, 'fin-alice');
    alice.write(textFrame(JSON.stringify({ type: 'join_room', room_id: 'fin', id: 'j' })));
    await bob.next((m) => m.type === 'user_joined' && m.from === 'fin-alice');
    await whileStopped(async () => {
      alice.write(textFrame(JSON.stringify({ type: 'chat', room_id: 'fin', payload: { text: 'bye' } })));
      alice.end();
    });
    const chat = await bob.next((m) => m.type === 'chat', 3000);
    assert.equal(chat.from, 'fin-alice');
    assert.deepEqual(chat.payload, { text: 'bye' });
    const left = await bob.next((m) => m.type === 'user_left', 3000);
    assert.equal(left.from, 'fin-alice');
    await withTimeout(alice.ended, 3000, 'the server closing the socket');
    await bob.close();
  });

  test('bursts bigger than a read: every frame is answered, in order', async () => {
    const sock = await rawSocket(server, 'burst');
    // Big pings first, so that the receive window grows past one read.
    const pad = 'p'.repeat(50 * 1024);
    const warm = 200;
    let wire = [];
    for (let i = 0; i < warm; i++) wire.push(textFrame(JSON.stringify({ type: 'ping', id: `w${i}`, pad })));
    sock.write(Buffer.concat(wire));
    await withTimeout((async () => { while (pongIds(sock).length < warm) await sleep(20); })(),
      10000, 'pongs to the warm-up pings');
    // Then about 250 KB of small pings at once, written while the server
    // is stopped: one event, several reads' worth.
    const n = 4000;
    wire = [];
    for (let i = 0; i < n; i++) wire.push(textFrame(JSON.stringify({ type: 'ping', id: `b${i}`, x: 'y'.repeat(24) })));
    const all = Buffer.concat(wire);
    assert.ok(all.length > 3.5 * 65536, `the burst is ${all.length} bytes`);
    await whileStopped(async () => { sock.write(all); });
    await withTimeout((async () => { while (pongIds(sock).length < warm + n) await sleep(20); })(),
      10000, `pongs to the ${n} pings of the burst`);
    const ids = pongIds(sock).slice(warm);
    assert.deepEqual(ids, Array.from({ length: n }, (_, i) => `b${i}`));
    sock.destroy();
  });

  test('a client that floods the server does not keep another waiting', async () => {
    const flood = await rawSocket(server, 'flooder');
    const other = await Client.connect(server, 'patient');
    const frame = textFrame(JSON.stringify({ type: 'ping', pad: 'f'.repeat(60 * 1024) }));
    // Never reads its pongs either: the server may close it as a slow
    // consumer, which ends the flood.
    flood.on('error', () => {});
    let flooding = true;
    const pump = (async () => {
      while (flooding && !flood.destroyed) {
        if (!flood.write(Buffer.concat([frame, frame, frame, frame]))) {
          await Promise.race([new Promise((r) => flood.once('drain', r)), flood.ended, sleep(500)]);
        }
        await sleep(0);
      }
    })();
    try {
      await sleep(200);
      for (let i = 0; i < 20; i++) {
        const t0 = Date.now();
        await other.alive();
        assert.ok(Date.now() - t0 < 1000, `ping ${i} took ${Date.now() - t0} ms`);
      }
    } finally {
      flooding = false;
      await pump;
      flood.destroy();
    }
    await other.close();
  });
});
