// The network edge as a stranger meets it: which pages may open a
// WebSocket (--allowed-origins), how many connections one address or all
// together may hold (--max-conns-per-ip, --max-conns), and whose word on
// the client's address counts (--trusted-proxies). Clients come from
// several loopback addresses (Linux routes all of 127.0.0.0/8 to lo), by
// binding each socket's local address.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import { Server, sleep, tempScripts, withTimeout } from './lib/harness.mjs';

const status = (text) => Number((/^HTTP\/1\.1 (\d{3}) /.exec(text) || [])[1]);

const upgradeHead = (user, headers = '') =>
  `GET /ws?user=${user} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${headers}\r\n`;

// A raw TCP connection from localAddress that sends head (unless null)
// and resolves once the server has answered: { sock, status, text } with
// the socket still open after a 101 (welcome received), closed otherwise.
function dial(server, { from = '127.0.0.1', head = upgradeHead('u') } = {}) {
  return withTimeout(new Promise((resolve) => {
    const sock = net.connect({ port: server.port, host: '127.0.0.1', localAddress: from });
    let text = '';
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      resolve({ sock, status: status(text), text });
    };
    sock.on('data', (d) => {
      text += d.toString('latin1');
      if (status(text) === 101 ? text.includes('"welcome"') : text.includes('\r\n\r\n')) finish();
    });
    sock.on('close', finish);
    sock.on('error', finish);
    sock.on('connect', () => { if (head !== null) sock.write(head); else finish(); });
  }), 3000, `dial from ${from}`);
}

const closeAll = (socks) => Promise.all(socks.map((s) => new Promise((r) => {
  if (s.destroyed) return r();
  s.on('close', r);
  s.destroy();
})));

const count = (log, re) => (log.match(new RegExp(re, 'g')) || []).length;

// Runs body(server, open) against a server started with args; the
// sockets body pushes on open are closed at the end.
async function withServer(args, body) {
  const s = await new Server(args).start();
  const open = [];
  try {
    await body(s, open);
  } finally {
    await closeAll(open);
    await s.stop();
  }
}

// Dials until a connection is let in (a place freed by a close is free
// once the server has seen the close).
function dialUntilIn(s, opts) {
  return withTimeout((async () => {
    for (;;) {
      const r = await dial(s, opts);
      if (r.status === 101) return r;
      await sleep(50);
    }
  })(), 3000, 'a place freed');
}

// ---- origins ------------------------------------------------------------

test('--allowed-origins: a foreign page is refused 403; listed, own-page and non-browser clients come in', () => withServer(['--allowed-origins', 'https://chat.example.com, https://other.example.com:8443'], async (s, open) => {
  const foreign = await dial(s, { head: upgradeHead('eve', 'Origin: https://evil.example\r\n') });
  assert.equal(foreign.status, 403, foreign.text);
  assert.match(foreign.text, /origin https:\/\/evil\.example is not allowed/);
  // A look-alike is not the listed origin.
  const lookalike = await dial(s, { head: upgradeHead('eve', 'Origin: https://chat.example.com.evil.example\r\n') });
  assert.equal(lookalike.status, 403);
  // Not the server's own page either: the origin's host is not the Host
  // the request was sent to.
  const notOwn = await dial(s, { head: upgradeHead('eve', 'Origin: http://127.0.0.2\r\n') });
  assert.equal(notOwn.status, 403);
  await s.waitLog(/refused 403 ip=127\.0\.0\.1: origin https:\/\/evil\.example is not allowed/);

  // The page served by this server: its origin's host is the Host.
  const own = upgradeHead('ownpage', `Origin: http://127.0.0.1:${s.port}\r\n`)
    .replace('Host: 127.0.0.1\r\n', `Host: 127.0.0.1:${s.port}\r\n`);
  for (const [user, head] of [
    ['listed', upgradeHead('listed', 'Origin: https://chat.example.com\r\n')],
    ['listed2', upgradeHead('listed2', 'Origin: HTTPS://Other.Example.com:8443\r\n')],
    ['nobrowser', upgradeHead('nobrowser')],
    ['ownpage', own],
  ]) {
    const r = await dial(s, { head });
    assert.equal(r.status, 101, `${user}: ${r.text}`);
    open.push(r.sock);
  }
}));

test('without --allowed-origins any origin comes in, as before', async () => {
  const s = await new Server([]).start();
  try {
    const r = await dial(s, { head: upgradeHead('any', 'Origin: https://evil.example\r\n') });
    assert.equal(r.status, 101, r.text);
    await closeAll([r.sock]);
  } finally { await s.stop(); }
});

test('a bad --allowed-origins or --trusted-proxies stops the start with one line', async () => {
  for (const [flag, value, re] of [
    ['--allowed-origins', 'https://chat.example.com/', /--allowed-origins: 'https:\/\/chat\.example\.com\/' is not an origin: an origin has no path/],
    ['--allowed-origins', 'chat.example.com', /is not an origin/],
    ['--trusted-proxies', '10.0.0.0/33', /--trusted-proxies: '10\.0\.0\.0\/33' is not an address or network/],
    ['--trusted-proxies', '127.0.0.1,,::1', /--trusted-proxies: an empty entry/],
    ['--max-conns-per-ip', '-1', /--max-conns-per-ip: '-1' is not a number of connections/],
  ]) {
    const s = new Server([flag, value]);
    await assert.rejects(s.start(), re);
    await s.stop();
  }
});

// ---- per-address and total limits -----------------------------------------

test('--max-conns-per-ip: the N+1st connection of one address is refused 429, another address still connects', () => withServer(['--max-conns-per-ip', '3'], async (s, open) => {
  for (let i = 0; i < 3; i++) {
    const r = await dial(s, { from: '127.0.0.1', head: upgradeHead(`a${i}`) });
    assert.equal(r.status, 101, r.text);
    open.push(r.sock);
  }
  const over = await dial(s, { from: '127.0.0.1', head: upgradeHead('a3') });
  assert.equal(over.status, 429, over.text);
  assert.match(over.text, /over the limit of 3 connections per address/);
  const other = await dial(s, { from: '127.0.0.2', head: upgradeHead('b0') });
  assert.equal(other.status, 101, other.text);
  open.push(other.sock);
  await s.waitLog(/open conn=\S+ user=b0 ip=127\.0\.0\.2 /);

  // A connection that closes frees its place.
  await closeAll([open.shift()]);
  await s.waitLog(/close conn=\S+ user=a0 ip=127\.0\.0\.1 /);
  const again = await dialUntilIn(s, { from: '127.0.0.1', head: upgradeHead('a4') });
  open.push(again.sock);
}));

test('connections still in their handshake count toward --max-conns-per-ip', () => withServer(['--max-conns-per-ip', '2'], async (s, open) => {
  for (let i = 0; i < 2; i++) open.push((await dial(s, { from: '127.0.0.3', head: null })).sock);
  const over = await dial(s, { from: '127.0.0.3', head: upgradeHead('late') });
  assert.equal(over.status, 429, over.text);
}));

test('an address hammering at its limit is logged once a minute, not once per attempt', () => withServer(['--max-conns-per-ip', '1'], async (s, open) => {
  for (const from of ['127.0.0.4', '127.0.0.5']) {
    const r = await dial(s, { from, head: upgradeHead('x') });
    assert.equal(r.status, 101);
    open.push(r.sock);
  }
  for (let i = 0; i < 8; i++) {
    for (const from of ['127.0.0.4', '127.0.0.5']) {
      const r = await dial(s, { from, head: upgradeHead('x') });
      assert.equal(r.status, 429);
    }
  }
  await sleep(200);
  assert.equal(count(s.log, 'refused 429 ip=127\\.0\\.0\\.4:'), 1, s.log);
  assert.equal(count(s.log, 'refused 429 ip=127\\.0\\.0\\.5:'), 1, s.log);
}));

test('--max-conns: past N connections in all, a new one is refused 503, logged once', () => withServer(['--max-conns', '2'], async (s, open) => {
  for (const from of ['127.0.0.6', '127.0.0.7']) {
    const r = await dial(s, { from, head: upgradeHead('m') });
    assert.equal(r.status, 101, r.text);
    open.push(r.sock);
  }
  for (let i = 0; i < 5; i++) {
    const r = await dial(s, { from: `127.0.0.${8 + i}`, head: upgradeHead('m') });
    assert.equal(r.status, 503, r.text);
    assert.match(r.text, /over the limit of 2 connections/);
  }
  await sleep(200);
  assert.equal(count(s.log, 'refused 503 ip=127\\.0\\.0\\.\\d+: over the limit of 2 connections'), 1, s.log);
  await closeAll([open.shift()]);
  const again = await dialUntilIn(s, { from: '127.0.0.6', head: upgradeHead('m') });
  open.push(again.sock);
}));

// ---- trusted proxies ------------------------------------------------------

const xff = (user, v) => upgradeHead(user, `X-Forwarded-For: ${v}\r\n`);

test('--trusted-proxies: the proxy is not limited as one client; the forwarded client is', () => withServer(['--max-conns-per-ip', '2', '--trusted-proxies', '127.0.0.10/32, ::1/128'], async (s, open) => {
  // Three clients behind one proxy address, two connections each.
  for (const client of ['198.51.100.1', '198.51.100.2', '2001:db8::7']) {
    for (let i = 0; i < 2; i++) {
      const r = await dial(s, { from: '127.0.0.10', head: xff(`p${i}`, client) });
      assert.equal(r.status, 101, `${client}: ${r.text}`);
      open.push(r.sock);
    }
  }
  await s.waitLog(/open conn=\S+ user=p0 ip=198\.51\.100\.1 /);
  await s.waitLog(/open conn=\S+ user=p0 ip=2001:db8::7 /);
  // The third of one client is refused, whatever it wrote further left.
  const third = await dial(s, { from: '127.0.0.10', head: xff('p2', '203.0.113.9, 198.51.100.1') });
  assert.equal(third.status, 429, third.text);
  await s.waitLog(/refused 429 ip=198\.51\.100\.1:/);
  // Forwarded (RFC 7239) is read when there is no X-Forwarded-For; an
  // IPv4-mapped address is the IPv4 client.
  const fwd = await dial(s, { from: '127.0.0.10', head: upgradeHead('f', 'Forwarded: for="[::ffff:198.51.100.2]:4711";proto=https\r\n') });
  assert.equal(fwd.status, 429, fwd.text);
  await s.waitLog(/refused 429 ip=198\.51\.100\.2:/);
  // A chain of trusted proxies: the client is the rightmost untrusted.
  const chain = await dial(s, { from: '127.0.0.10', head: xff('c', '198.51.100.3, 127.0.0.10') });
  assert.equal(chain.status, 101, chain.text);
  open.push(chain.sock);
  await s.waitLog(/open conn=\S+ user=c ip=198\.51\.100\.3 /);
  // The proxy's own requests (naming no client) are not limited as one
  // client's.
  for (let i = 0; i < 3; i++) {
    const r = await dial(s, { from: '127.0.0.10', head: upgradeHead(`own${i}`) });
    assert.equal(r.status, 101, r.text);
    open.push(r.sock);
  }
}));

test('X-Forwarded-For from a client that is not a trusted proxy has no say: its own address is limited', () => withServer(['--max-conns-per-ip', '2', '--trusted-proxies', '127.0.0.10'], async (s, open) => {
  for (let i = 0; i < 2; i++) {
    const r = await dial(s, { from: '127.0.0.20', head: xff(`s${i}`, `198.51.100.${50 + i}`) });
    assert.equal(r.status, 101, r.text);
    open.push(r.sock);
  }
  await s.waitLog(/open conn=\S+ user=s0 ip=127\.0\.0\.20 /);
  assert.doesNotMatch(s.log, /ip=198\.51\.100\.5/);
  const third = await dial(s, { from: '127.0.0.20', head: xff('s2', '198.51.100.99') });
  assert.equal(third.status, 429, third.text);
  await s.waitLog(/refused 429 ip=127\.0\.0\.20:/);
}));

test('scripts see the client address: hub.conn_info(id).ip, the forwarded client behind a trusted proxy', async () => {
  const dir = tempScripts();
  fs.mkdirSync(path.join(dir, 'hooks'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'hooks', 'on_connect.lua'),
    'local hub = require "hub"\nreturn function(conn) return false, "you are " .. tostring(hub.conn_info(conn.id).ip) end\n');
  const s = await new Server(['--trusted-proxies', '127.0.0.10'], { scripts: dir }).start();
  try {
    const direct = await dial(s, { from: '127.0.0.30', head: xff('d', '198.51.100.77') });
    assert.match(direct.text, /you are 127\.0\.0\.30/);
    const proxied = await dial(s, { from: '127.0.0.10', head: xff('p', '2001:db8::5') });
    assert.match(proxied.text, /you are 2001:db8::5/);
    await s.waitLog(/refused by on_connect conn=\S+ user=p ip=2001:db8::5: you are 2001:db8::5/);
  } finally {
    await s.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
