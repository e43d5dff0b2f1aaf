// harness.mjs: start the real luahub binary and talk to it with real
// WebSocket clients. Every wait has a deadline, so a broken server fails a
// test instead of hanging the suite.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const BIN = process.env.LUAHUB_BIN || path.join(ROOT, 'build/luahub');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// A copy of the shipped scripts (lib/ included) that a test may change.
export function tempScripts() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'luahub-scripts-'));
  fs.cpSync(path.join(ROOT, 'scripts'), dir, { recursive: true });
  return dir;
}

// Runs the binary with the usual directories and args until it exits (a
// start that should fail): { code, stderr }. Killed after ms, so a server
// that starts when it should not fails the test instead of hanging it.
export function runToExit(args, ms = 5000) {
  return new Promise((resolve) => {
    const p = spawn(BIN, ['--lua', path.join(ROOT, 'lua'), '--scripts', path.join(ROOT, 'scripts'),
      '--static', path.join(ROOT, 'examples/chat'), ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => p.kill('SIGKILL'), ms);
    p.on('exit', (code) => { clearTimeout(timer); resolve({ code, stderr }); });
  });
}

export class Server {
  // bare: args are the whole command line (a test of the defaults, or of
  // a --config file whose settings the usual flags would override); cwd:
  // the working directory to start in.
  constructor(args = [], { scripts = path.join(ROOT, 'scripts'), bin = BIN, env = {}, bare = false, cwd } = {}) {
    this.args = args;
    this.bin = bin;
    this.env = env;
    this.scripts = scripts;
    this.bare = bare;
    this.cwd = cwd;
    this.log = '';
  }

  async start() {
    const args = this.bare ? [...this.args] : ['--host', '127.0.0.1', '--port', '0', '--lua', path.join(ROOT, 'lua'),
      '--scripts', this.scripts, '--log-level', 'debug', ...this.args];
    if (!this.bare && !this.args.includes('--static')) args.push('--static', path.join(ROOT, 'examples/chat'));
    this.proc = spawn(this.bin, args, {
      cwd: this.cwd,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, LUAHUB_AUTH_SECRET: '', ...this.env },
    });
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, signal) => resolve({ code, signal })));
    this.proc.stderr.setEncoding('utf8');
    this.proc.stderr.on('data', (d) => { this.log += d; });
    this.port = await withTimeout(new Promise((resolve, reject) => {
      const check = () => {
        const m = this.log.match(/listening host=\S+ port=(\d+)/) ||
          this.log.match(/"msg":"listening","host":"[^"]*","port":"(\d+)"/);
        if (m) resolve(Number(m[1]));
      };
      this.proc.stderr.on('data', check);
      this.exited.then(({ code }) => reject(new Error(`server exited (${code}) at start:\n${this.log}`)));
      check();
    }), 5000, 'server start');
    const res = await withTimeout(this.get('/healthz'), 5000, 'healthz');
    if (res.status !== 200) throw new Error(`/healthz answered ${res.status}`);
    return this;
  }

  // Started with --tls-cert: the port speaks TLS (a self-signed
  // certificate, so clients do not check it).
  get tls() { return this.args.includes('--tls-cert'); }

  url(query = '') { return `${this.tls ? 'wss' : 'ws'}://127.0.0.1:${this.port}/ws${query}`; }

  // GET path over http:// or https://: { status, headers, body }.
  async get(path) {
    if (!this.tls) {
      const res = await fetch(`http://127.0.0.1:${this.port}${path}`);
      return { status: res.status, headers: res.headers, body: await res.text() };
    }
    return new Promise((resolve, reject) => {
      const req = https.get({ host: '127.0.0.1', port: this.port, path, rejectUnauthorized: false, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => { body += d; });
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
      });
      req.on('error', reject);
    });
  }

  // Waits until the log contains a line matching re.
  async waitLog(re, ms = 3000) {
    const t0 = Date.now();
    while (Date.now() - t0 < ms) {
      if (re.test(this.log)) return;
      await sleep(20);
    }
    throw new Error(`log never matched ${re}:\n${this.log}`);
  }

  signal(sig) { this.proc.kill(sig); }

  // Stops the server and fails if a sanitizer (ASan, LSan, UBSan) spoke.
  async stop() {
    if (this.proc && this.proc.exitCode === null && !this.proc.signalCode) {
      this.proc.kill('SIGTERM');
      const done = await Promise.race([this.exited, sleep(3000).then(() => null)]);
      if (!done) {
        this.proc.kill('SIGKILL');
        await this.exited;
      }
    }
    if (/Sanitizer|runtime error:/.test(this.log)) {
      throw new Error(`sanitizer report from the server:\n${this.log.slice(-6000)}`);
    }
  }
}

// A WebSocket client that records every frame it gets.
export class Client {
  // query, when given, is the whole query string ("?token=…") instead of
  // ?user=USER. wsOptions go to ws's WebSocket (perMessageDeflate).
  static async connect(server, user, { expectWelcome = true, query, wsOptions } = {}) {
    const c = new Client();
    if (query === undefined) query = user === undefined ? '' : `?user=${encodeURIComponent(user)}`;
    c.ws = new WebSocket(server.url(query),
      server.tls ? { rejectUnauthorized: false, ...wsOptions } : wsOptions);
    c.frames = [];
    c.waiters = [];
    c.nextId = 1;
    c.closedP = new Promise((resolve) => c.ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    c.ws.on('message', (data, isBinary) => {
      const m = JSON.parse(data.toString());
      c.frames.push(m);
      c.waiters = c.waiters.filter((w) => !w.check(m));
    });
    c.ws.on('error', () => {});
    await withTimeout(new Promise((resolve, reject) => {
      c.ws.once('open', resolve);
      c.ws.once('error', reject);
      c.closedP.then(resolve);
    }), 3000, `connect ${user}`);
    if (expectWelcome) {
      c.welcome = await c.next((m) => m.type === 'welcome', 3000);
      c.user = c.welcome.user_id;
      c.connId = c.welcome.conn_id;
    }
    return c;
  }

  send(obj) { this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj)); }

  // Sends obj with a fresh id and resolves with the ack or error for it.
  request(obj, ms = 3000) {
    const id = obj.id ?? this.nextId++;
    this.send({ ...obj, id });
    return this.next((m) => (m.type === 'ack' || m.type === 'error' || m.type === 'pong') && m.id === id, ms);
  }

  // The first frame (already received or still to come) matching pred.
  next(pred, ms = 3000) {
    const i = this.frames.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.frames.splice(i, 1)[0]);
    return withTimeout(new Promise((resolve) => {
      this.waiters.push({
        check: (m) => {
          if (!pred(m)) return false;
          this.frames.splice(this.frames.indexOf(m), 1);
          resolve(m);
          return true;
        },
      });
    }), ms, `frame matching ${pred}`);
  }

  // The first n frames matching pred (already received or still to come),
  // consumed, in the order they arrived.
  async take(pred, n, ms = 3000) {
    const t0 = Date.now();
    for (;;) {
      const got = this.frames.filter(pred);
      if (got.length >= n) {
        const mine = new Set(got.slice(0, n));
        this.frames = this.frames.filter((m) => !mine.has(m));
        return got.slice(0, n);
      }
      if (Date.now() - t0 > ms) {
        throw new Error(`timed out after ${ms} ms: ${got.length} of ${n} frames matching ${pred}`);
      }
      await sleep(10);
    }
  }

  // Frames of a type received so far (not consumed).
  seen(type) { return this.frames.filter((m) => m.type === type); }

  // Proves the connection is still open and answering.
  async alive() {
    const pong = await this.request({ type: 'ping' });
    if (pong.type !== 'pong') throw new Error(`expected pong, got ${JSON.stringify(pong)}`);
  }

  closed(ms = 3000) { return withTimeout(this.closedP, ms, 'close'); }

  close() { this.ws.close(); return this.closed(); }
}

// A hand-made WebSocket over a raw TCP socket, for what a well-behaved
// client library refuses to do (silence, invalid UTF-8, never reading).
export async function rawSocket(server, user) {
  const sock = net.connect(server.port, '127.0.0.1');
  await withTimeout(new Promise((r) => sock.once('connect', r)), 3000, 'raw connect');
  sock.write(`GET /ws?user=${user} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n` +
    'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
  let buf = Buffer.alloc(0);
  sock.on('data', (d) => { buf = Buffer.concat([buf, d]); });
  sock.ended = new Promise((r) => sock.on('close', r));
  sock.received = () => buf;
  await withTimeout((async () => { while (!buf.includes('welcome')) await sleep(10); })(), 3000, 'raw welcome');
  return sock;
}

// A masked client frame (mask key 0).
export function clientFrame(opcode, payload) {
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x80 | opcode, 0x80 | len])
    : Buffer.from([0x80 | opcode, 0x80 | 126, len >> 8, len & 255]);
  return Buffer.concat([head, Buffer.alloc(4), payload]);
}
