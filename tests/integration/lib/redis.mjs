// redis.mjs: a real redis-server for the tests of several nodes, and the
// luahub nodes that share it. The server runs on a free loopback port (or
// a unix socket) in a temp dir, without persistence unless asked, and is
// driven with a small RESP client (no npm dependency for four replies).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client, Server, sleep, withTimeout } from './harness.mjs';

export const REDIS_SERVER = process.env.REDIS_SERVER || '/usr/bin/redis-server';

// A free TCP port on 127.0.0.1 (free when asked; nothing holds it after).
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export class RedisError extends Error {}

// One RESP2 value from buf at i: [value, next index], or null when buf
// does not hold all of it yet. An error reply is a RedisError value.
function parse(buf, i) {
  const nl = buf.indexOf('\r\n', i);
  if (nl < 0) return null;
  const line = buf.toString('utf8', i + 1, nl);
  switch (String.fromCharCode(buf[i])) {
    case '+': return [line, nl + 2];
    case '-': return [new RedisError(line), nl + 2];
    case ':': return [Number(line), nl + 2];
    case '$': {
      const n = Number(line);
      if (n < 0) return [null, nl + 2];
      if (buf.length < nl + 2 + n + 2) return null;
      return [buf.toString('utf8', nl + 2, nl + 2 + n), nl + 2 + n + 2];
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return [null, nl + 2];
      const out = [];
      let j = nl + 2;
      for (let k = 0; k < n; k++) {
        const r = parse(buf, j);
        if (!r) return null;
        out.push(r[0]);
        j = r[1];
      }
      return [out, j];
    }
    default:
      throw new Error(`not RESP: ${JSON.stringify(buf.toString('utf8', i, i + 40))}`);
  }
}

function encode(args) {
  const parts = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.from(String(a));
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

// Sends commands (arrays of arguments) on one new connection and resolves
// with their replies, in order.
function exchange(connectTo, commands, ms = 3000) {
  return withTimeout(new Promise((resolve, reject) => {
    const sock = net.connect(connectTo);
    let buf = Buffer.alloc(0);
    const replies = [];
    sock.on('error', reject);
    sock.on('close', () => reject(new Error(`redis closed the connection after ${replies.length} replies`)));
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      let r;
      while (replies.length < commands.length && (r = parse(buf, 0))) {
        replies.push(r[0]);
        buf = buf.subarray(r[1]);
      }
      if (replies.length === commands.length) {
        sock.destroy();
        resolve(replies);
      }
    });
    sock.write(Buffer.concat(commands.map(encode)));
  }), ms, `redis ${commands.map((c) => c[0]).join(', ')}`);
}

// A redis-server of its own for a test.
//   password: --requirepass; unixSocket: listen on a socket in the temp
//   dir only (no TCP port); persist: an append-only file fsynced on every
//   write, so that even a kill -9 keeps the data for restart({ keepData }).
export class Redis {
  constructor({ password, unixSocket = false, persist = false, port } = {}) {
    this.password = password;
    this.unixSocket = unixSocket;
    this.persist = persist;
    this.port = port;
    this.log = '';
  }

  async start() {
    if (!fs.existsSync(REDIS_SERVER)) {
      // CI installs it (.ci/install-deps --test); a test of several nodes
      // without it is a broken machine, not a test to skip.
      throw new Error(`${REDIS_SERVER} is missing: run .ci/install-deps --test (or set REDIS_SERVER)`);
    }
    this.dir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'luahub-redis-'));
    if (this.unixSocket) {
      this.port = 0;
      this.socket = path.join(this.dir, 'redis.sock');
    } else {
      this.port ||= await freePort();
    }
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir,
      '--save', '', '--daemonize', 'no', '--protected-mode', 'no'];
    args.push('--appendonly', this.persist ? 'yes' : 'no');
    if (this.persist) args.push('--appendfsync', 'always');
    if (this.unixSocket) args.push('--unixsocket', this.socket, '--unixsocketperm', '700');
    if (this.password) args.push('--requirepass', this.password);
    this.proc = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout.setEncoding('utf8');
    this.proc.stderr.setEncoding('utf8');
    this.proc.stdout.on('data', (d) => { this.log += d; });
    this.proc.stderr.on('data', (d) => { this.log += d; });
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, signal) => resolve({ code, signal })));
    const t0 = Date.now();
    for (;;) {
      if (this.proc.exitCode !== null) throw new Error(`redis-server exited (${this.proc.exitCode}) at start:\n${this.log}`);
      try {
        if ((await this.cmd('PING')) === 'PONG') return this;
      } catch (e) {
        if (Date.now() - t0 > 5000) throw new Error(`redis-server never answered PING: ${e.message}\n${this.log}`);
      }
      await sleep(20);
    }
  }

  get running() { return this.proc && this.proc.exitCode === null && !this.proc.signalCode; }

  // The --redis URL of this server: redis://[:password@]127.0.0.1:PORT[/db],
  // or the socket's path.
  url({ db, password = this.password } = {}) {
    if (this.unixSocket) return this.socket;
    const auth = password ? `:${encodeURIComponent(password)}@` : '';
    return `redis://${auth}127.0.0.1:${this.port}${db === undefined ? '' : `/${db}`}`;
  }

  // Sends one command (after AUTH and SELECT db when needed) and resolves
  // with its reply; an error reply rejects.
  async cmd(...args) { return this.cmdIn(undefined, ...args); }

  async cmdIn(db, ...args) {
    const cmds = [];
    if (this.password) cmds.push(['AUTH', this.password]);
    if (db !== undefined) cmds.push(['SELECT', db]);
    cmds.push(args);
    const replies = await exchange(this.socket ? { path: this.socket } : { host: '127.0.0.1', port: this.port }, cmds);
    for (const r of replies) if (r instanceof RedisError) throw r;
    return replies.at(-1);
  }

  async #end(sig) {
    if (!this.running) return;
    this.proc.kill(sig);
    await withTimeout(this.exited, 5000, `redis-server to exit on ${sig}`);
  }

  // SIGTERM: a clean stop (with save '' nothing is written).
  stop() { return this.#end('SIGTERM'); }

  // SIGKILL: Redis gone at once, as a crash.
  kill() { return this.#end('SIGKILL'); }

  // Starts it again on the same port (or socket). keepData: with the
  // data it had (saved now if it is still running; after a kill only a
  // persist server has it); otherwise empty, as a Redis that lost it.
  async restart({ keepData = false } = {}) {
    if (this.running) {
      if (keepData) await this.cmd('SAVE');
      await this.stop();
    } else if (keepData && !this.persist && !fs.existsSync(path.join(this.dir, 'dump.rdb'))) {
      throw new Error('restart({ keepData }) after a kill needs new Redis({ persist: true })');
    }
    if (!keepData) {
      for (const f of fs.readdirSync(this.dir)) fs.rmSync(path.join(this.dir, f), { recursive: true });
    }
    return this.start();
  }

  // Stops it and removes its dir.
  async destroy() {
    await this.kill();
    if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// Polls fn until it returns a truthy value; that value, or an error naming
// what after ms.
export async function waitFor(fn, ms, what) {
  const t0 = Date.now();
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) { last = e; }
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms: ${what}${last ? ` (${last.message})` : ''}`);
    await sleep(50);
  }
}

// Waits until the node's /readyz answers status (200 ready, 503 not).
export async function waitReadyz(node, status = 200, ms = 5000) {
  let last;
  try {
    await waitFor(async () => {
      last = await node.get('/readyz');
      return last.status === status;
    }, ms, `/readyz ${status}`);
  } catch (e) {
    throw new Error(`${e.message}; last answer ${last && `${last.status} ${last.body}`}\n${node.log.slice(-3000)}`);
  }
  return last;
}

// A luahub node of a cluster, not started: a harness Server with
// --redis URL and --node-id ID (and args).
export function makeNode(url, id, { args = [], scripts } = {}) {
  const node = new Server(['--redis', url, '--node-id', id, ...args], scripts ? { scripts } : {});
  node.id = id;
  return node;
}

// Starts a node and waits until it is ready (/readyz 200) unless told not to.
export async function startNode(node, { ready = true } = {}) {
  await node.start();
  if (ready) await waitReadyz(node);
  return node;
}

// Starts the node again (after stop() or a kill), new port, same flags;
// the old log is kept in pastLog.
export async function restartNode(node) {
  await node.stop();
  node.pastLog = (node.pastLog || '') + node.log;
  node.log = '';
  await node.start();
  await waitReadyz(node);
  return node;
}

// A redis-server and n nodes n1..nN over it. redis: options for Redis;
// url: the --redis value when not the plain one; args, scripts: for each
// node. stop() ends them all and fails if a sanitizer spoke.
export async function startCluster(n, { redis: redisOpts = {}, url, args = [], scripts } = {}) {
  const redis = await new Redis(redisOpts).start();
  const nodes = [];
  const stop = async () => {
    const results = await Promise.allSettled(nodes.map((s) => s.stop()));
    await redis.destroy();
    const bad = results.find((r) => r.status === 'rejected');
    if (bad) throw bad.reason;
  };
  try {
    for (let k = 1; k <= n; k++) nodes.push(makeNode(url ?? redis.url(), `n${k}`, { args, scripts }));
    for (const node of nodes) await startNode(node);
  } catch (e) {
    await stop().catch(() => {});
    throw e;
  }
  return { redis, nodes, stop };
}

// Connects each [node, user] and has it join room (asserting the ack);
// resolves with the clients, in order.
export async function joined(room, ...who) {
  const clients = [];
  for (const [node, user] of who) {
    const c = await Client.connect(node, user);
    const ack = await c.request({ type: 'join_room', room_id: room });
    if (ack.type !== 'ack') throw new Error(`${user} could not join ${room} on ${node.id}: ${JSON.stringify(ack)}`);
    clients.push(c);
  }
  return clients;
}
