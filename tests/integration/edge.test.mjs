// The front door, as a stranger meets it: where the server listens, a port
// that is taken, silent sockets, oversized and malformed requests, and
// frames that break RFC 6455. Every refusal must be answered (an HTTP
// status or a close code) and must cost other clients nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { Server, Client, runToExit, sleep, withTimeout } from './lib/harness.mjs';

// Listening sockets of this port from /proc/net/tcp{,6}: ["127.0.0.1", ...].
function listeners(port) {
  const out = [];
  for (const [file, v6] of [['/proc/net/tcp', false], ['/proc/net/tcp6', true]]) {
    let text = '';
    try { text = fs.readFileSync(file, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4 || f[3] !== '0A') continue; // 0A: LISTEN
      const [hex, p] = f[1].split(':');
      if (parseInt(p, 16) !== port) continue;
      if (!v6) {
        out.push(Buffer.from(hex, 'hex').reverse().join('.'));
      } else {
        // Four little-endian 32-bit words.
        const b = Buffer.from(hex, 'hex');
        for (let i = 0; i < 16; i += 4) b.subarray(i, i + 4).reverse();
        const words = [];
        for (let i = 0; i < 16; i += 2) words.push(b.readUInt16BE(i).toString(16));
        out.push(`[${words.join(':').replace(/(^|:)0(:0)+(:|$)/, '::')}]`);
      }
    }
  }
  return out;
}

// Runs luahub with args until it exits (or 5 s): { code, stderr }.
// Sends raw bytes on a fresh TCP connection and collects what comes back
// until the server closes (or ms pass).
function exchange(port, bytes, ms = 3000) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let got = Buffer.alloc(0);
    let done = false;
    const finish = (how) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ data: got, text: got.toString('latin1'), how });
    };
    const timer = setTimeout(() => finish('timeout'), ms);
    sock.on('data', (d) => { got = Buffer.concat([got, d]); });
    sock.on('end', () => finish('end'));
    sock.on('close', () => finish('close'));
    sock.on('error', () => finish('error'));
    sock.on('connect', () => { for (const b of [].concat(bytes)) sock.write(b); });
  });
}

const upgradeHead = (query = '?user=alice', extra = '') =>
  `GET /ws${query} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;

// A client frame: fin, opcode, payload, masked unless told, and a length
// field that may lie (announce).
function frame(opcode, payload = Buffer.alloc(0), { fin = true, mask = true, rsv = 0, announce } = {}) {
  const len = announce ?? BigInt(payload.length);
  let head;
  if (len < 126n) head = Buffer.from([(fin ? 0x80 : 0) | rsv | opcode, (mask ? 0x80 : 0) | Number(len)]);
  else if (len < 65536n) head = Buffer.from([(fin ? 0x80 : 0) | rsv | opcode, (mask ? 0x80 : 0) | 126, Number(len >> 8n), Number(len & 255n)]);
  else {
    head = Buffer.alloc(10);
    head[0] = (fin ? 0x80 : 0) | rsv | opcode;
    head[1] = (mask ? 0x80 : 0) | 127;
    head.writeBigUInt64BE(len, 2);
  }
  return Buffer.concat([head, mask ? Buffer.alloc(4) : Buffer.alloc(0), payload]);
}

// The server's frames after the 101 head: [{ opcode, payload }].
function serverFrames(data) {
  const end = data.indexOf('\r\n\r\n');
  let p = end + 4;
  const out = [];
  while (p + 2 <= data.length) {
    const op = data[p] & 0x0f;
    let len = data[p + 1] & 0x7f;
    let h = 2;
    if (len === 126) { len = data.readUInt16BE(p + 2); h = 4; }
    else if (len === 127) { len = Number(data.readBigUInt64BE(p + 2)); h = 10; }
    if (p + h + len > data.length) break;
    out.push({ opcode: op, payload: data.subarray(p + h, p + h + len) });
    p += h + len;
  }
  return out;
}

function closeOf(data) {
  const c = serverFrames(data).find((f) => f.opcode === 8);
  if (!c) return null;
  return { code: c.payload.length >= 2 ? c.payload.readUInt16BE(0) : 1005, reason: c.payload.subarray(2).toString() };
}

const status = (text) => Number((/^HTTP\/1\.1 (\d{3}) /.exec(text) || [])[1]);

let server;
before(async () => { server = await new Server(['--handshake-timeout', '1']).start(); });
after(async () => { await server.stop(); });

// ---- where it listens -------------------------------------------------

test('the default host binds loopback only, and says where it listens', async () => {
  const s = await new Server([], {}).start();
  try {
    assert.deepEqual(listeners(s.port), ['127.0.0.1']);
    assert.match(s.log, new RegExp(`listening host=127\\.0\\.0\\.1 port=${s.port} .* on=127\\.0\\.0\\.1:${s.port}`));
    // An address of this machine other than loopback gets no answer.
    const other = Object.values(os.networkInterfaces()).flat()
      .find((a) => a && a.family === 'IPv4' && !a.internal);
    if (other) {
      const err = await new Promise((resolve) => {
        const c = net.connect(s.port, other.address);
        c.on('connect', () => { c.destroy(); resolve(null); });
        c.on('error', resolve);
      });
      assert.equal(err && err.code, 'ECONNREFUSED');
    }
  } finally { await s.stop(); }
});

test('--host 0.0.0.0 binds every IPv4 interface, as asked', async () => {
  const s = await new Server(['--host', '0.0.0.0']).start();
  try { assert.deepEqual(listeners(s.port), ['0.0.0.0']); } finally { await s.stop(); }
});

test('a port in use stops the start with one line, and nothing claims to listen', async () => {
  const r = await runToExit(['--port', String(server.port)]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`port ${server.port} is in use on 127\\.0\\.0\\.1`));
  assert.doesNotMatch(r.stderr, /listening/);
});

test('a host that is not this machine, or not a host, stops the start', async () => {
  const a = await runToExit(['--port', '0', '--host', '192.0.2.1']);
  assert.equal(a.code, 1);
  assert.match(a.stderr, /--host 192\.0\.2\.1: 192\.0\.2\.1 is not an address of this machine/);
  assert.doesNotMatch(a.stderr, /listening/);
  const b = await runToExit(['--port', '0', '--host', 'nosuchhost.invalid']);
  assert.equal(b.code, 1);
  assert.match(b.stderr, /--host nosuchhost\.invalid: cannot resolve it/);
  assert.doesNotMatch(b.stderr, /listening/);
});

// ---- handshakes -------------------------------------------------------

test('1,000 silent sockets do not delay a real client, and each gets 408', async () => {
  const silent = [];
  const answers = [];
  for (let i = 0; i < 1000; i++) {
    const s = net.connect(server.port, '127.0.0.1');
    let got = '';
    s.on('data', (d) => { got += d; });
    s.on('error', () => {});
    answers.push(new Promise((r) => s.on('close', () => r(got))));
    silent.push(s);
  }
  await Promise.all(silent.map((s) => new Promise((r) => (s.readyState === 'open' ? r() : s.once('connect', r)))));
  const t0 = Date.now();
  const c = await Client.connect(server, 'punctual');
  const waited = Date.now() - t0;
  await c.alive();
  await c.close();
  // Before: 9.5 s once 32 sockets were silent.
  assert.ok(waited < 1000, `the welcome took ${waited} ms`);
  // --handshake-timeout 1: every silent socket is answered and closed.
  const got = await withTimeout(Promise.all(answers), 5000, 'silent sockets closed');
  assert.equal(got.filter((t) => status(t) === 408).length, 1000);
});

test('a head that trickles in slower than --handshake-timeout gets 408', async () => {
  const r = await exchange(server.port, 'GET /ws?user=slow HTTP/1.1\r\n', 3000);
  assert.equal(status(r.text), 408);
  assert.match(r.text, /request head not received within 1s/);
});

for (const [name, bytes, code] of [
  ['a 10 KB user=', upgradeHead(`?user=${'a'.repeat(10000)}`), 414],
  ['64 KB of headers', upgradeHead('?user=a', `X-Big: ${'a'.repeat(65536)}\r\n`), 431],
  ['4,000 header lines', upgradeHead('?user=a', Array.from({ length: 4000 }, (_, i) => `X-${i}: 1\r\n`).join('')), 431],
  ['a malformed request line', 'GET\r\n\r\n', 400],
  ['HTTP/2.0', 'GET / HTTP/2.0\r\n\r\n', 505],
  ['a header line without a colon', 'GET / HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n', 400],
  ['an upgrade with a bad key', upgradeHead('?user=a').replace('dGhlIHNhbXBsZSBub25jZQ==', 'short'), 400],
  ['an upgrade of another version', upgradeHead('?user=a').replace('Version: 13', 'Version: 8'), 426],
  ['/ws without an upgrade', 'GET /ws HTTP/1.1\r\nHost: x\r\n\r\n', 426],
  ['an upgrade elsewhere than /ws', upgradeHead('?user=a').replace('/ws?', '/chat?'), 404],
  ['a POST', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n', 405],
]) {
  test(`${name} is answered ${code}, not dropped`, async () => {
    const r = await exchange(server.port, bytes);
    assert.equal(status(r.text), code, r.text.slice(0, 200));
    assert.match(r.text, /Content-Length: \d+\r\n/);
    const c = await Client.connect(server, 'bystander');
    await c.alive();
    await c.close();
  });
}

test('a user= with control characters is closed 4001 with a reason', async () => {
  const r = await exchange(server.port, upgradeHead('?user=a%01b'));
  assert.equal(status(r.text), 101);
  assert.deepEqual(closeOf(r.data), { code: 4001, reason: 'bad user id' });
});

test('static files and /healthz still work through the front door', async () => {
  const page = await fetch(`http://127.0.0.1:${server.port}/`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<html/i);
  const missing = await fetch(`http://127.0.0.1:${server.port}/no-such-file.js`);
  assert.equal(missing.status, 404);
  const health = await fetch(`http://127.0.0.1:${server.port}/healthz`);
  assert.equal(health.status, 200);
  // Each request comes through the front door again: a second one on the
  // same connection is not parsed by anything else.
  const r = await exchange(server.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal(status(r.text), 200);
  assert.notEqual(r.how, 'timeout', 'the connection ends after one request');
});

test('a client keeping connections alive gets every response, each saying Connection: close', async () => {
  // The server ends every HTTP connection after one response; a response
  // that did not say so sent a keep-alive client's next request down a
  // closing connection ("socket hang up" every second request).
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const get = (p) => new Promise((resolve) => {
    http.get({ host: '127.0.0.1', port: server.port, path: p, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(`${res.statusCode} ${res.headers.connection}`));
    }).on('error', (e) => resolve(`error ${e.message}`));
  });
  const got = [];
  for (let i = 0; i < 3; i++) {
    for (const p of ['/', '/app.js', '/healthz', '/no-such-file']) got.push(await get(p));
  }
  agent.destroy();
  assert.deepEqual(got, Array(3).fill(['200 close', '200 close', '200 close', '404 close']).flat());
});

// ---- frames -----------------------------------------------------------

// Opens a WebSocket by hand, sends frames, returns the close the server sent.
async function closeFor(...frames) {
  const r = await exchange(server.port, [upgradeHead('?user=raw'), ...frames], 3000);
  assert.equal(status(r.text), 101);
  return { close: closeOf(r.data), how: r.how };
}

for (const [name, announce] of [['70,000', 70000n], ['2^63-1', (1n << 63n) - 1n], ['2^64-1', (1n << 64n) - 1n]]) {
  test(`a frame header announcing ${name} bytes closes 1009 at once, without its payload`, async () => {
    const t0 = Date.now();
    const { close } = await closeFor(frame(1, Buffer.alloc(0), { announce }));
    assert.equal(close && close.code, 1009, JSON.stringify(close));
    assert.ok(Date.now() - t0 < 2000);
  });
}

for (const [name, bytes, code] of [
  ['an unmasked frame', frame(1, Buffer.from('{"type":"ping"}'), { mask: false }), 1002],
  ['a close frame with a 1-byte payload', frame(8, Buffer.from([3])), 1002],
  ['reserved bits', frame(1, Buffer.from('{}'), { rsv: 0x40 }), 1002],
  ['a reserved opcode', frame(3, Buffer.from('x')), 1002],
  ['a fragmented ping', frame(9, Buffer.from('x'), { fin: false }), 1002],
  ['a continuation with no message', frame(0, Buffer.from('x')), 1002],
  ['text that is not UTF-8', frame(1, Buffer.from([0x7b, 0xc0, 0x80, 0x7d])), 1007],
]) {
  test(`${name} closes ${code}`, async () => {
    const { close } = await closeFor(frame(9, Buffer.from('hi')), bytes);
    assert.equal(close && close.code, code, JSON.stringify(close));
  });
}

for (const bad of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000]) {
  test(`a close frame with code ${bad} (one that may not be sent) closes 1002`, async () => {
    const p = Buffer.alloc(2);
    p.writeUInt16BE(bad);
    const { close } = await closeFor(frame(8, p));
    assert.equal(close && close.code, 1002);
  });
}

test('a valid close code is echoed and the connection ends cleanly', async () => {
  const p = Buffer.alloc(2);
  p.writeUInt16BE(4000);
  const { close, how } = await closeFor(frame(8, p));
  assert.equal(close && close.code, 4000);
  assert.notEqual(how, 'timeout');
});

test('a ping is answered with a pong carrying its payload', async () => {
  const r = await exchange(server.port, [upgradeHead('?user=pinger'), frame(9, Buffer.from('abc'))], 500);
  const pong = serverFrames(r.data).find((f) => f.opcode === 10);
  assert.equal(pong && pong.payload.toString(), 'abc');
});

test('frames sent right behind the upgrade request are read', async () => {
  const r = await exchange(server.port,
    Buffer.concat([Buffer.from(upgradeHead('?user=eager')), frame(1, Buffer.from('{"type":"ping","id":7}'))]), 500);
  const texts = serverFrames(r.data).filter((f) => f.opcode === 1).map((f) => JSON.parse(f.payload));
  assert.ok(texts.some((m) => m.type === 'pong' && m.id === 7), JSON.stringify(texts));
});
