// TLS (--tls-cert, --tls-key): the port speaks TLS only. The welcome and
// a chat over wss://, the page and /healthz over https://, a plain client
// answered (not dropped) and the server serving on, a renewed certificate
// served to the next client after SIGHUP while a connection stays open, a
// broken one kept out (the scripts reloaded all the same), a stalled TLS
// handshake timed out, and a start without the key refused in one line.
// Certificates are self-signed, made here with the openssl command.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { BIN, Client, ROOT, Server, withTimeout } from './lib/harness.mjs';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'luahub-tls-'));
const file = (name) => path.join(dir, name);

function makeCert(name, cn) {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`,
    '-days', '1', '-keyout', file(`${name}.key`), '-out', file(`${name}.crt`)], { stdio: 'ignore' });
}

// The certificate a new TLS client is shown: { serial, cn }.
function peerCert(port) {
  return withTimeout(new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const c = s.getPeerCertificate();
      s.end();
      resolve({ serial: c.serialNumber, cn: c.subject.CN });
    });
    s.on('error', reject);
  }), 3000, 'TLS connect');
}

// What a plain (non-TLS) client that sends data gets back, until close.
function plainAnswer(port, data) {
  return withTimeout(new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => sock.write(data));
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (d) => { buf += d; });
    sock.on('close', () => resolve(buf));
    sock.on('error', reject);
  }), 5000, 'plain answer');
}

makeCert('one', 'one.test');
makeCert('two', 'two.test');
fs.copyFileSync(file('one.crt'), file('server.crt'));
fs.copyFileSync(file('one.key'), file('server.key'));

after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('TLS', () => {
  let server;
  before(async () => {
    server = await new Server(['--tls-cert', file('server.crt'), '--tls-key', file('server.key'),
      '--send-queue', '32m']).start();
  });
  after(() => server.stop());

  test('welcome and a chat round trip over wss://', async () => {
    assert.match(server.log, /ws=wss:\/\/127\.0\.0\.1:\d+\/ws/);
    const a = await Client.connect(server, 'alice');
    const b = await Client.connect(server, 'bob');
    assert.equal(a.welcome.user_id, 'alice');
    await a.request({ type: 'join_room', room_id: 'lobby' });
    await b.request({ type: 'join_room', room_id: 'lobby' });
    // Bigger than a TLS record, so that a message spans several.
    const text = 'x'.repeat(40000);
    const ack = await a.request({ type: 'chat', room_id: 'lobby', payload: { text } });
    assert.equal(ack.type, 'ack', JSON.stringify(ack));
    const got = await b.next((m) => m.type === 'chat' && m.room_id === 'lobby');
    assert.equal(got.payload.text, text);
    await a.close();
    await b.close();
  });

  test('a request head bigger than the first read arrives whole (what TLS holds is read)', async () => {
    // One TLS record, read 1 KB at a time: no socket event announces the
    // rest.
    const c = await Client.connect(server, 'erin', { wsOptions: { headers: { Cookie: `a=${'x'.repeat(3000)}` } } });
    assert.equal(c.welcome.user_id, 'erin');
    await c.close();
  });

  test('a reader that stalls gets every frame, in order, when it reads again', async () => {
    const a = await Client.connect(server, 'fay');
    const b = await Client.connect(server, 'gus');
    await a.request({ type: 'join_room', room_id: 'slow' });
    await b.request({ type: 'join_room', room_id: 'slow' });
    // 12 MB, more than both ends' socket buffers hold: the server's
    // writes block and a TLS record waits, kept, for the reader.
    b.ws._socket.pause();
    const n = 1500;
    for (let i = 0; i < n; i++) a.send({ type: 'chat', room_id: 'slow', payload: { text: `${i} ${'y'.repeat(8000)}` } });
    await a.alive();
    b.ws._socket.resume();
    for (let i = 0; i < n; i++) {
      const m = await b.next((f) => f.type === 'chat' && f.room_id === 'slow', 5000);
      assert.equal(m.payload.text, `${i} ${'y'.repeat(8000)}`);
    }
    await a.close();
    await b.close();
  });

  test('the page and /healthz over https://', async () => {
    const page = await server.get('/');
    assert.equal(page.status, 200);
    assert.match(page.body, /<html/i);
    const health = await server.get('/healthz');
    assert.equal(health.status, 200);
    assert.equal(JSON.parse(health.body).status, 'ok');
    const missing = await server.get('/no-such-file.js');
    assert.equal(missing.status, 404);
  });

  test('a plain client is answered 400 and the server serves on', async () => {
    const answer = await plainAnswer(server.port,
      'GET /ws?user=eve HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
    assert.match(answer, /^HTTP\/1\.1 400 /);
    assert.match(answer, /speaks TLS only/);
    await server.waitLog(/refused 400 ip=127\.0\.0\.1: this port speaks TLS only/);
    const c = await Client.connect(server, 'carol');
    await c.close();
  });

  test('a renewed certificate is served to the next client after SIGHUP', async () => {
    const first = await peerCert(server.port);
    assert.equal(first.cn, 'one.test');
    const open = await Client.connect(server, 'dave');
    fs.copyFileSync(file('two.crt'), file('server.crt'));
    fs.copyFileSync(file('two.key'), file('server.key'));
    server.signal('SIGHUP');
    await server.waitLog(/TLS: certificate and key reloaded/);
    const second = await peerCert(server.port);
    assert.equal(second.cn, 'two.test');
    assert.notEqual(second.serial, first.serial);
    // The connection made before the reload goes on.
    await open.alive();

    // A broken certificate: the reload says why and the last good one is
    // served on.
    fs.writeFileSync(file('server.crt'), '-----BEGIN CERTIFICATE-----\nnot base64\n');
    const scriptReloads = () => server.log.match(/script: reloaded \d+ handlers/g).length;
    const reloads = scriptReloads();
    server.signal('SIGHUP');
    await server.waitLog(/TLS reload failed, the certificate loaded before is served on: --tls-cert .*server\.crt: not a PEM certificate/);
    assert.equal((await peerCert(server.port)).serial, second.serial);
    // The scripts were reloaded all the same.
    assert.equal(scriptReloads(), reloads + 1);
    await open.alive();
    await open.close();
  });
});

describe('TLS handshake', () => {
  let server;
  before(async () => {
    server = await new Server(['--tls-cert', file('one.crt'), '--tls-key', file('one.key'),
      '--handshake-timeout', '0.5']).start();
  });
  after(() => server.stop());

  test('a TLS handshake counts against --handshake-timeout', async () => {
    const sock = net.connect(server.port, '127.0.0.1');
    await withTimeout(new Promise((r) => sock.once('connect', r)), 3000, 'connect');
    // The start of a ClientHello, and nothing more.
    sock.write(Buffer.from([0x16, 0x03, 0x01, 0x00]));
    const t0 = Date.now();
    await withTimeout(new Promise((r) => { sock.on('close', r); sock.on('error', () => {}); sock.resume(); }),
      4000, 'dropped');
    assert.ok(Date.now() - t0 < 3500);
    await server.waitLog(/refused 408 ip=127\.0\.0\.1: request head not received within 0\.5s/);
  });
});

describe('TLS options', () => {
  const run = (args) => spawnSync(BIN, ['--host', '127.0.0.1', '--port', '0', '--lua', path.join(ROOT, 'lua'),
    '--scripts', path.join(ROOT, 'scripts'), ...args], { encoding: 'utf8', timeout: 5000 });

  test('--tls-cert without --tls-key stops the start in one line', () => {
    const r = run(['--tls-cert', '/nonexistent.crt']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^luahub: --tls-cert needs --tls-key too/);
  });

  test('an unreadable certificate stops the start in one line', () => {
    const r = run(['--tls-cert', file('missing.crt'), '--tls-key', file('one.key')]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /--tls-cert \S+missing\.crt: No such file or directory/);
    assert.doesNotMatch(r.stderr, /listening/);
  });
});

describe('/metrics and the API over TLS', () => {
  const KEY = 'tls-api-key-0123456789abcdef';
  let server;
  before(async () => {
    server = await new Server(['--tls-cert', file('one.crt'), '--tls-key', file('one.key')],
      { env: { LUAHUB_API_KEY: KEY } }).start();
  });
  after(() => server.stop());

  // POST over https: { status, body }.
  function post(p, body) {
    return withTimeout(new Promise((resolve, reject) => {
      const data = Buffer.from(JSON.stringify(body));
      const req = https.request({
        host: '127.0.0.1', port: server.port, path: p, method: 'POST', rejectUnauthorized: false, agent: false,
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', 'content-length': data.length },
      }, (res) => {
        let got = '';
        res.setEncoding('utf8');
        res.on('data', (d) => { got += d; });
        res.on('end', () => resolve({ status: res.statusCode, body: got }));
      });
      req.on('error', reject);
      req.end(data);
    }), 5000, 'https POST');
  }

  test('a publish with a body of several TLS records, and the metrics', async () => {
    const a = await Client.connect(server, 'tls-api');
    await a.request({ type: 'join_room', room_id: 'tls-room' });
    const text = 'y'.repeat(40000);
    const res = await post('/api/publish', { room_id: 'tls-room', payload: { text } });
    assert.equal(res.status, 200, res.body);
    assert.deepEqual(JSON.parse(res.body), { seq: 1 });
    assert.equal((await a.next((f) => f.type === 'chat')).payload.text, text);
    const m = await server.get('/metrics');
    assert.equal(m.status, 200);
    assert.match(m.body, /^luahub_connections 1$/m);
    assert.match(m.body, /^luahub_messages_received_total\{type="join_room"\} 1$/m);
    await a.close();
  });
});
