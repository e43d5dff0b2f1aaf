// Delivery classes (issue 12): a handler declares a frame ephemeral
// (typing, presence) or durable (room chat, the default). A consumer that
// stops reading loses its queued ephemeral frames before anything else,
// and is closed 4008 only when it is still over --send-queue after that;
// on one node, and across nodes (the class crosses Redis with the frame).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, Server, clientFrame, rawSocket, sleep } from './lib/harness.mjs';
import { startCluster, waitFor } from './lib/redis.mjs';

// The server frames in what a raw socket received (after the HTTP head):
// [{ op, text }], whole frames only.
function serverFrames(buf) {
  const out = [];
  let i = buf.indexOf('\r\n\r\n') + 4;
  while (i + 2 <= buf.length) {
    const op = buf[i] & 0x0f;
    let len = buf[i + 1] & 0x7f;
    let h = 2;
    if (len === 126) {
      if (i + 4 > buf.length) break;
      len = buf.readUInt16BE(i + 2);
      h = 4;
    } else if (len === 127) {
      if (i + 10 > buf.length) break;
      len = Number(buf.readBigUInt64BE(i + 2));
      h = 10;
    }
    if (i + h + len > buf.length) break;
    const data = buf.subarray(i + h, i + h + len);
    out.push({ op, text: op === 1 ? data.toString() : '', data });
    i += h + len;
  }
  return out;
}

const json = (o) => Buffer.from(JSON.stringify(o));

// typistNode, pubNode: where the typist and the chat publisher connect;
// slowNode: where the consumer that stops reading does (its log says when
// it falls behind).
async function fallsBehind({ typistNode, pubNode, slowNode, tag }) {
  // Long ids make big typing frames: fewer fill the socket buffers.
  const room = `${tag}-${'r'.repeat(100)}`;
  const typist = await Client.connect(typistNode, `${tag}-typist-${'t'.repeat(40)}`);
  const pub = await Client.connect(pubNode, `${tag}-pub`);
  const slow = await rawSocket(slowNode, `${tag}-slow`);
  slow.pause(); // stop reading: the kernel's buffers fill, then our queue
  for (const c of [typist, pub]) await c.request({ type: 'join_room', room_id: room });
  slow.write(clientFrame(1, json({ type: 'join_room', room_id: room })));
  await pub.next((m) => m.type === 'user_joined' && m.from === `${tag}-slow`);

  // Typing, and now and then a chat, until the slow consumer has been
  // losing typing frames for a while.
  const behind = new RegExp(`behind: dropped \\d+ ephemeral frames conn=\\S+ user=${tag}-slow`);
  const closed = new RegExp(`slow consumer closed conn=\\S+ user=${tag}-slow`);
  let typed = 0;
  let chats = 0;
  let behindAt = -1;
  for (let round = 0; round < 1000 && (behindAt < 0 || round < behindAt + 20); round++) {
    for (let i = 0; i < 300; i++, typed++) typist.send({ type: 'typing', room_id: room });
    pub.send({ type: 'chat', room_id: room, payload: { n: ++chats } });
    await typist.alive(); // the server has run what was sent
    assert.doesNotMatch(slowNode.log, closed, `closed after ${typed} typing frames and ${chats} chats`);
    if (behindAt < 0 && behind.test(slowNode.log)) behindAt = round;
  }
  assert.ok(behindAt >= 0, `the consumer never fell behind (${typed} typing frames)`);
  await pub.next((m) => m.type === 'chat' && m.payload.n === chats, 10000);
  await sleep(200);
  assert.doesNotMatch(slowNode.log, closed, 'dropping typing frames kept it under --send-queue');

  // It gets every chat, in order, and some typing frames, never a close.
  slow.resume();
  const got = await waitFor(() => {
    const frames = serverFrames(slow.received()).filter((f) => f.op === 1).map((f) => JSON.parse(f.text));
    const last = frames.filter((m) => m.type === 'chat').pop();
    return last && last.payload.n === chats && frames;
  }, 20000, `every chat reaching ${tag}-slow`);
  const seen = got.filter((m) => m.type === 'chat').map((m) => m.payload.n);
  assert.deepEqual(seen, Array.from({ length: chats }, (_, k) => k + 1));
  const seqs = got.filter((m) => m.type === 'chat').map((m) => m.seq);
  seqs.forEach((s, k) => assert.equal(s, seqs[0] + k));
  const typing = got.filter((m) => m.type === 'typing').length;
  assert.ok(typing > 0 && typing < typed, `typing frames: ${typing} of ${typed}`);
  assert.ok(!serverFrames(slow.received()).some((f) => f.op === 8), 'no close frame');
  slow.write(clientFrame(1, json({ type: 'ping', id: 'still' })));
  await waitFor(() => slow.received().includes('"id":"still"'), 5000, 'a pong for the slow consumer');

  // With chats alone it falls behind again and is closed 4008 as before.
  slow.pause();
  const pad = 'y'.repeat(900);
  for (let sent = 0; sent < 12000 && !closed.test(slowNode.log);) {
    for (let i = 0; i < 500; i++, sent++) pub.send({ type: 'chat', room_id: room, payload: { pad } });
    await pub.alive();
  }
  await slowNode.waitLog(closed, 10000);
  slow.resume();
  await Promise.race([slow.ended, sleep(10000)]);
  const last = serverFrames(slow.received()).pop();
  assert.equal(last.op, 8, 'a close frame ends the stream');
  assert.equal(last.data.readUInt16BE(0), 4008);
  slow.destroy();
  await typist.close();
  await pub.close();
}

describe('a consumer that falls behind, one node', () => {
  let server;
  before(async () => { server = await new Server(['--send-queue', '65536']).start(); });
  after(() => server.stop());

  test('loses typing frames first, stays while that keeps it under --send-queue; chats alone close it 4008', async () => {
    await fallsBehind({ typistNode: server, pubNode: server, slowNode: server, tag: 'cl1' });
  });
});

describe('a consumer that falls behind, two nodes', () => {
  let cl;
  before(async () => { cl = await startCluster(2, { args: ['--send-queue', '65536'] }); });
  after(() => cl && cl.stop());

  test('the class crosses Redis: typing from another node is dropped first, chats are not', async () => {
    const [n1, n2] = cl.nodes;
    await fallsBehind({ typistNode: n1, pubNode: n1, slowNode: n2, tag: 'cl2' });
  });
});
