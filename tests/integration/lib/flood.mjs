// flood.mjs: the slow-consumer scenario two test files run (errors and
// io_uring): a publisher floods a room of three, one member (a raw socket)
// never reads, another reads as it goes.
import assert from 'node:assert/strict';
import { Client, clientFrame, rawSocket, sleep } from './harness.mjs';

// The member that stops reading is closed with 4008 (its last bytes are
// that close frame) while the one that reads gets every one of the
// messages, in order, and stays open. tag keeps the users and the room
// apart from other tests on the same server (started with --send-queue
// 65536).
export async function slowConsumerIsClosed(server, tag) {
  const room = `flood${tag}`;
  const pub = await Client.connect(server, `sq-pub${tag}`);
  const fast = await Client.connect(server, `sq-fast${tag}`);
  const slow = await rawSocket(server, `sq-slow${tag}`);
  slow.pause(); // stop reading: the kernel buffers fill, then our queue
  for (const x of [pub, fast]) await x.request({ type: 'join_room', room_id: room });
  slow.write(clientFrame(1, Buffer.from(JSON.stringify({ type: 'join_room', room_id: room }))));
  await sleep(200);
  const pad = 'y'.repeat(900);
  const N = 12000; // ~11 MB: more than loopback's socket buffers absorb
  // The fast member reads as it goes: each chunk is sent once it has the
  // one before, in order (a member that fell 64 KB behind would be a slow
  // consumer too, on a loaded machine; a server that waited on the full
  // socket would hold it up).
  let sent = 0;
  let last = 0;
  while (sent < N) {
    const chunk = Math.min(100, N - sent);
    for (let i = 0; i < chunk; i++) {
      sent++;
      pub.send({ type: 'chat', room_id: room, payload: { n: sent, pad } });
    }
    for (const m of await fast.take((f) => f.type === 'chat' && f.room_id === room, chunk, 10000)) {
      assert.equal(m.seq, last + 1);
      last = m.seq;
    }
  }
  assert.equal(last, N);
  await server.waitLog(new RegExp(`slow consumer closed conn=\\d+ user=sq-slow${tag}\\b`), 10000);
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
}
