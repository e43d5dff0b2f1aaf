// luahub-bench's numbers are checked: every mode runs briefly against the
// real server and the counts must agree (deliveries = publications x
// subscribers, no gaps, no reordering, nothing lost).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { promisify } from 'node:util';
import path from 'node:path';
import { Server } from '../integration/lib/harness.mjs';
import { startCluster } from '../integration/lib/redis.mjs';

const BENCH = process.env.LUAHUB_BENCH || path.join(path.dirname(process.env.LUAHUB_BIN || 'build/luahub'), 'luahub-bench');

describe('luahub-bench counts', async () => {
  let server;
  before(async () => { server = await new Server().start(); });
  after(() => server.stop());

  // Asynchronous, so that this process keeps draining the server's log
  // pipe while the load runs.
  async function bench(...args) {
    const { stdout } = await promisify(execFile)(BENCH,
      ['--port', String(server.port), '--pid', String(server.proc.pid), '--json', ...args],
      { encoding: 'utf8', timeout: 60000 });
    return JSON.parse(stdout);
  }

  test('fanout: every publication reaches every subscriber, in order', async () => {
    const o = await bench('--mode', 'fanout', '--conns', '50', '--publishers', '2', '--window', '8',
      '--duration', '1', '--warmup', '0.2');
    assert.ok(o.published > 100, `published ${o.published}`);
    assert.equal(o.expected_deliveries, o.published * 50);
    assert.equal(o.delivered_total, o.expected_deliveries);
    assert.equal(o.gaps, 0);
    assert.equal(o.reorders, 0);
    assert.equal(o.lost, 0);
    assert.equal(o.errors, 0);
    assert.ok(o.latency_ms.p50 > 0);
    assert.ok(o.server_cpu_s > 0);
  });

  test('fanout at a fixed rate publishes at that rate', async () => {
    const o = await bench('--mode', 'fanout', '--conns', '20', '--rate', '200', '--window', '100',
      '--duration', '1', '--warmup', '0.2');
    assert.ok(o.messages_per_s > 150 && o.messages_per_s < 250, `rate ${o.messages_per_s}`);
    assert.equal(o.delivered_total, o.expected_deliveries);
  });

  test('rooms: every member gets every message of its room', async () => {
    const o = await bench('--mode', 'rooms', '--rooms', '20', '--members', '4', '--duration', '1', '--warmup', '0.2');
    assert.ok(o.published > 100);
    assert.equal(o.expected_deliveries, o.published * 4);
    assert.equal(o.delivered_total, o.expected_deliveries);
    assert.equal(o.gaps + o.reorders + o.lost + o.errors, 0);
  });

  test('the same counts with one system call per socket (--io-uring off) as through the ring', async () => {
    for (const io of ['auto', 'off']) {
      const o = await bench('--mode', 'rooms', '--rooms', '20', '--members', '4', '--duration', '1',
        '--warmup', '0.2', '--io-uring', io);
      if (io === 'off') assert.equal(o.io, 'syscalls');
      else assert.match(o.io, /^(io_uring|syscalls)$/);
      assert.ok(o.published > 100, `${io}: published ${o.published}`);
      assert.equal(o.delivered_total, o.expected_deliveries);
      assert.equal(o.gaps + o.reorders + o.lost + o.errors, 0);
    }
  });

  test('ping: round trips are counted and timed', async () => {
    const o = await bench('--mode', 'ping', '--conns', '10', '--duration', '1', '--warmup', '0.2');
    assert.ok(o.round_trips_per_s > 100);
    // All of them, the warm-up's too (count.sh ping divides by it).
    assert.ok(o.round_trips >= Math.floor(o.round_trips_per_s * o.seconds), `${o.round_trips} round trips`);
    assert.ok(o.latency_ms.p99 >= o.latency_ms.p50);
    assert.equal(o.lost, 0);
  });

  test('idle: connections held, server memory read', async () => {
    const o = await bench('--mode', 'idle', '--conns', '200', '--duration', '0', '--warmup', '0');
    assert.equal(o.open_at_end, 200);
    assert.ok(o.server_rss_kb > 0);
    assert.ok(o.rss_per_conn_kb > 0);
  });

  test('connect: handshakes complete', async () => {
    const o = await bench('--mode', 'connect', '--conns', '5', '--duration', '1', '--warmup', '0');
    assert.ok(o.handshakes > 50, `handshakes ${o.handshakes}`);
    assert.equal(o.lost, 0);
  });

  test('reloads under load lose no connection and no message', async () => {
    const before = (server.log.match(/reloaded/g) || []).length;
    const timer = setInterval(() => server.signal('SIGHUP'), 100);
    let o;
    try {
      o = await bench('--mode', 'rooms', '--rooms', '100', '--members', '4', '--duration', '3', '--warmup', '0.2');
    } finally {
      clearInterval(timer);
    }
    const reloads = (server.log.match(/reloaded/g) || []).length - before;
    assert.ok(reloads >= 20, `only ${reloads} reloads`);
    assert.ok(o.messages_per_s > 1000, `${o.messages_per_s} messages/s`);
    assert.equal(o.delivered_total, o.expected_deliveries);
    assert.equal(o.gaps + o.reorders + o.lost + o.errors, 0);
    assert.equal(o.open_at_end, 400);
  });
});

describe('luahub-bench --tls counts', async () => {
  let server;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'luahub-bench-tls-'));
  before(async () => {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost',
      '-days', '1', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
    server = await new Server(['--tls-cert', path.join(dir, 'cert.pem'), '--tls-key', path.join(dir, 'key.pem')]).start();
  });
  after(async () => {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('fanout over TLS, the certificate reloaded meanwhile: every publication reaches every subscriber, in order', async () => {
    const timer = setInterval(() => server.signal('SIGHUP'), 200);
    let stdout;
    try {
      ({ stdout } = await promisify(execFile)(BENCH, ['--port', String(server.port), '--pid', String(server.proc.pid),
        '--json', '--tls', '--mode', 'fanout', '--conns', '50', '--publishers', '2', '--window', '8', '--size', '20000',
        '--duration', '1', '--warmup', '0.2'], { encoding: 'utf8', timeout: 60000 }));
    } finally {
      clearInterval(timer);
    }
    const o = JSON.parse(stdout);
    assert.ok(o.published > 20, `published ${o.published}`);
    assert.equal(o.delivered_total, o.expected_deliveries);
    assert.equal(o.gaps + o.reorders + o.lost + o.errors, 0);
    assert.ok((server.log.match(/TLS: certificate and key reloaded/g) || []).length >= 3);
  });
});

describe('luahub-bench --pub-port counts across two nodes', async () => {
  let cl;
  before(async () => { cl = await startCluster(2); });
  after(() => cl && cl.stop());

  test('fanout: the publisher on one node, every publication reaches every subscriber on the other, in order', async () => {
    const [a, b] = cl.nodes;
    const { stdout } = await promisify(execFile)(BENCH, ['--port', String(b.port), '--pub-port', String(a.port),
      '--pid', String(b.proc.pid), '--json', '--mode', 'fanout', '--conns', '50', '--rate', '200', '--window', '100',
      '--duration', '1', '--warmup', '0.2'], { encoding: 'utf8', timeout: 60000 });
    const o = JSON.parse(stdout);
    assert.ok(o.published > 150, `published ${o.published}`);
    assert.equal(o.expected_deliveries, o.published * 50);
    assert.equal(o.delivered_total, o.expected_deliveries);
    assert.equal(o.gaps + o.reorders + o.lost + o.errors, 0);
    assert.ok(o.server_cpu_s > 0);
    // The publisher (b0) connected to node a, the subscribers (b1..b50) to b.
    assert.match(a.log, /open conn=\S+ user=b0 /);
    assert.doesNotMatch(a.log, /open conn=\S+ user=b[1-9]/);
    assert.match(b.log, /open conn=\S+ user=b50 /);
    assert.doesNotMatch(b.log, /open conn=\S+ user=b0 /);
  });
});
