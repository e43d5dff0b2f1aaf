// permessage-deflate (--compression, RFC 7692): offered only when on,
// compressed chats both ways with Node's ws, a plain client beside a
// compressing one, and the bounds: a small frame that inflates past
// --max-message closes 1009 without the server holding the inflated whole.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import zlib from 'node:zlib';
import { Client, Server, sleep, withTimeout } from './lib/harness.mjs';

const OFFER = 'permessage-deflate; client_max_window_bits';

// The server's resident set, in MB.
function rssMB(server) {
  const status = fs.readFileSync(`/proc/${server.proc.pid}/status`, 'utf8');
  return Number(status.match(/VmRSS:\s+(\d+) kB/)[1]) / 1024;
}

// Server frames in buf: [{ fin, rsv1, opcode, payload }], and the rest.
function parseFrames(buf) {
  const out = [];
  let i = 0;
  while (buf.length - i >= 2) {
    let len = buf[i + 1] & 0x7f;
    let h = 2;
    if (len === 126) { if (buf.length - i < 4) break; len = buf.readUInt16BE(i + 2); h = 4; }
    else if (len === 127) { if (buf.length - i < 10) break; len = Number(buf.readBigUInt64BE(i + 2)); h = 10; }
    if (buf.length - i < h + len) break;
    out.push({ fin: buf[i] >> 7, rsv1: (buf[i] >> 6) & 1, opcode: buf[i] & 15,
      payload: buf.subarray(i + h, i + h + len) });
    i += h + len;
  }
  return out;
}

// A raw WebSocket that offers ext (or nothing): { sock, head, frames() }.
async function rawConnect(server, user, ext) {
  const sock = net.connect(server.port, '127.0.0.1');
  await withTimeout(new Promise((r) => sock.once('connect', r)), 3000, 'raw connect');
  sock.write(`GET /ws?user=${user} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n` +
    'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
    (ext === undefined ? '' : `Sec-WebSocket-Extensions: ${ext}\r\n`) + '\r\n');
  let buf = Buffer.alloc(0);
  sock.on('data', (d) => { buf = Buffer.concat([buf, d]); });
  sock.on('error', () => {});
  sock.ended = new Promise((r) => sock.on('close', r));
  await withTimeout((async () => { while (!buf.includes('\r\n\r\n')) await sleep(5); })(), 3000, '101');
  const end = buf.indexOf('\r\n\r\n') + 4;
  const head = buf.subarray(0, end).toString();
  return { sock, head, frames: () => parseFrames(buf.subarray(end)) };
}

// A masked client frame; b0 carries FIN, RSV1 and the opcode.
function maskedFrame(b0, payload) {
  const len = payload.length;
  let head;
  if (len < 126) head = Buffer.from([b0, 0x80 | len]);
  else if (len <= 0xffff) head = Buffer.from([b0, 0x80 | 126, len >> 8, len & 255]);
  else {
    head = Buffer.alloc(10);
    head[0] = b0;
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  const mask = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= mask[i & 3];
  return Buffer.concat([head, mask, body]);
}

// A message compressed as RFC 7692 sends it: raw deflate, tail cut.
function deflateMessage(data) {
  const z = zlib.deflateRawSync(data, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  return z.subarray(0, z.length - 4);
}

function closeCode(frames) {
  const c = frames.find((f) => f.opcode === 8);
  return c ? c.payload.readUInt16BE(0) : null;
}

async function waitFor(pred, ms, what) {
  return withTimeout((async () => {
    for (;;) {
      const v = pred();
      if (v) return v;
      await sleep(10);
    }
  })(), ms, what);
}

describe('--compression off', () => {
  let server;
  before(async () => { server = await new Server().start(); });
  after(async () => { await server.stop(); });

  test('an offer goes unanswered and the connection works plain', async () => {
    const r = await rawConnect(server, 'off1', OFFER);
    assert.match(r.head, /^HTTP\/1\.1 101/);
    assert.doesNotMatch(r.head, /Sec-WebSocket-Extensions/i);
    // RSV1 is a protocol error where nothing was negotiated.
    r.sock.write(maskedFrame(0xc1, deflateMessage(Buffer.from('{"type":"ping","id":1}'))));
    await waitFor(() => closeCode(r.frames()), 3000, 'close frame');
    assert.equal(closeCode(r.frames()), 1002);
    r.sock.destroy();
  });
});

describe('--compression on', () => {
  let server;
  const open = [];
  before(async () => { server = await new Server(['--compression', '--max-message', '1m']).start(); });
  after(async () => {
    for (const c of open) c.ws.terminate();
    await server.stop();
  });

  test('the 101 answers a valid offer, and only a valid one', async () => {
    const r = await rawConnect(server, 'neg1', OFFER);
    assert.match(r.head, /\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n/);
    r.sock.destroy();
    const r2 = await rawConnect(server, 'neg2', 'permessage-deflate; client_no_context_takeover');
    assert.match(r2.head, /permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n/);
    r2.sock.destroy();
    for (const bad of ['permessage-deflate; server_max_window_bits=9', 'permessage-deflate; bogus',
      'permessage-deflate; client_max_window_bits="1', ';;;', 'x-webkit-deflate-frame']) {
      const r3 = await rawConnect(server, 'neg3', bad);
      assert.match(r3.head, /^HTTP\/1\.1 101/, `upgrade with ${bad}`);
      assert.doesNotMatch(r3.head, /Sec-WebSocket-Extensions/i, `nothing accepted for ${bad}`);
      r3.sock.destroy();
    }
    const r4 = await rawConnect(server, 'neg4');
    assert.doesNotMatch(r4.head, /Sec-WebSocket-Extensions/i);
    r4.sock.destroy();
  });

  test('a compressed chat round trip with ws, beside a plain client in the same room', async () => {
    const zed = await Client.connect(server, 'zed', { wsOptions: { perMessageDeflate: { threshold: 0 } } });
    const plain = await Client.connect(server, 'pia', { wsOptions: { perMessageDeflate: false } });
    open.push(zed, plain);
    assert.match(zed.ws.extensions, /permessage-deflate/);
    assert.equal(plain.ws.extensions, '');
    await zed.request({ type: 'join_room', room_id: 'z' });
    await plain.request({ type: 'join_room', room_id: 'z' });
    const text = 'compressible chat line, '.repeat(100);
    for (const [from, n] of [[zed, 1], [plain, 2], [zed, 3]]) {
      const ack = await from.request({ type: 'chat', room_id: 'z', payload: { text: `${n} ${text}` } });
      assert.equal(ack.type, 'ack', JSON.stringify(ack));
      for (const c of [zed, plain]) {
        const m = await c.next((f) => f.type === 'chat' && f.room_id === 'z');
        assert.equal(m.payload.text, `${n} ${text}`);
      }
    }
    await zed.alive();
    await plain.alive();
  });

  test('outgoing chats: compressed once for compressing clients, plain for the others', async () => {
    const z = await rawConnect(server, 'rz', OFFER);
    const p = await rawConnect(server, 'rp');
    for (const r of [z, p]) {
      await waitFor(() => r.frames().some((f) => f.opcode === 1), 3000, 'welcome');
      r.sock.write(maskedFrame(0x81, Buffer.from(JSON.stringify({ type: 'join_room', room_id: 'out', id: 1 }))));
      await waitFor(() => r.frames().some((f) => f.opcode === 1 && f.payload.includes('"ack"')), 3000, 'ack');
    }
    const sender = await Client.connect(server, 'sender', { wsOptions: { perMessageDeflate: false } });
    open.push(sender);
    await sender.request({ type: 'join_room', room_id: 'out' });
    const long = 'a long chat line that compresses, '.repeat(60);
    await sender.request({ type: 'chat', room_id: 'out', payload: { text: long } });
    await sender.request({ type: 'chat', room_id: 'out', payload: { text: 'short' } });
    const chats = (r) => r.frames().filter((f) => f.opcode === 1 && (f.rsv1 ||
      f.payload.includes('"chat"')));
    await waitFor(() => chats(z).length >= 2 && chats(p).length >= 2, 3000, 'the chats');
    const [zl, zs] = chats(z);
    const [pl, ps] = chats(p);
    assert.equal(zl.rsv1, 1, 'the long chat goes compressed');
    assert.ok(zl.payload.length < pl.payload.length / 4);
    const inflated = zlib.inflateRawSync(Buffer.concat([zl.payload, Buffer.from([0, 0, 0xff, 0xff])]),
      { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    assert.equal(inflated.toString(), pl.payload.toString(), 'the same frame for both');
    assert.equal(JSON.parse(inflated).payload.text, long);
    assert.equal(pl.rsv1, 0, 'plain for the client that did not offer');
    assert.equal(zs.rsv1, 0, 'a short chat goes plain: compressing it does not pay');
    assert.equal(zs.payload.toString(), ps.payload.toString());
    z.sock.destroy();
    p.sock.destroy();
  });

  test('a client that keeps its context: messages that refer back to earlier ones', async () => {
    const r = await rawConnect(server, 'ctx', OFFER);
    await waitFor(() => r.frames().some((f) => f.opcode === 1), 3000, 'welcome');
    const z = zlib.createDeflateRaw();
    const send = (obj) => new Promise((resolve) => {
      z.write(Buffer.from(JSON.stringify(obj)));
      z.flush(zlib.constants.Z_SYNC_FLUSH, () => {
        const out = z.read();
        r.sock.write(maskedFrame(0xc1, out.subarray(0, out.length - 4)));
        resolve();
      });
    });
    for (let id = 1; id <= 3; id++) await send({ type: 'ping', id });
    await waitFor(() => r.frames().filter((f) => f.opcode === 1).length >= 4, 3000, 'three pongs');
    const pongs = r.frames().filter((f) => f.opcode === 1).slice(1)
      .map((f) => JSON.parse(f.payload.toString()));
    assert.deepEqual(pongs.map((p) => [p.type, p.id]), [['pong', 1], ['pong', 2], ['pong', 3]]);
    r.sock.destroy();
  });

  test('inflated text that is not UTF-8 closes 1007', async () => {
    const r = await rawConnect(server, 'utf', OFFER);
    r.sock.write(maskedFrame(0xc1, deflateMessage(Buffer.from([0x22, 0xff, 0xfe, 0x22]))));
    await waitFor(() => closeCode(r.frames()), 3000, 'close frame');
    assert.equal(closeCode(r.frames()), 1007);
    r.sock.destroy();
  });

  test('a deflate bomb (64 MiB in a few KiB) closes 1009 and the server grows less than 32 MB', async () => {
    const bomb = deflateMessage(Buffer.alloc(64 << 20));
    assert.ok(bomb.length < 1 << 20, 'under --max-message as sent: only inflating finds it');
    const before = rssMB(server);
    const r = await rawConnect(server, 'bomb', OFFER);
    r.sock.write(maskedFrame(0xc1, bomb));
    await waitFor(() => closeCode(r.frames()), 5000, 'close frame');
    assert.equal(closeCode(r.frames()), 1009);
    const grown = rssMB(server) - before;
    assert.ok(grown < 32, `RSS grew ${grown.toFixed(1)} MB`);
    r.sock.destroy();
    const c = await Client.connect(server, 'after');
    open.push(c);
    await c.alive();
  });
});
