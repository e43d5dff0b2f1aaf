// The operator's side: --config FILE (a Lua table of settings), --print-config
// and --log-format json, against the real binary.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { BIN, ROOT, Server, Client, runToExit, tempScripts } from './lib/harness.mjs';

const LUA = path.join(ROOT, 'lua');
const SCRIPTS = path.join(ROOT, 'scripts');
const STATIC = path.join(ROOT, 'examples/chat');
// The directories as a file's settings (JSON strings are Lua strings here).
const DIRS = `lua = ${JSON.stringify(LUA)}, scripts = ${JSON.stringify(SCRIPTS)}, static = ${JSON.stringify(STATIC)}`;

function writeConfig(text, name = 'config.lua') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'luahub-config-'));
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

const run = (args, opts = {}) => spawnSync(BIN, args, { encoding: 'utf8', timeout: 15000, ...opts });

// The same, without blocking the event loop (several at once).
function runAsync(args) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const p = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => p.kill('SIGKILL'), 20000);
    p.on('exit', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// The status a WebSocket upgrade to port gets: 101, or a refusal's. An
// accepted socket goes into open, for the caller to close.
function upgrade(port, open) {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port, path: `/ws?user=u${open.length}`,
      headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' },
    });
    req.on('upgrade', (res, sock) => { open.push(sock); resolve(101); });
    req.on('response', (res) => { res.resume(); resolve(res.statusCode); });
    req.on('error', reject);
    req.end();
  });
}

test('a config file\'s settings apply: it listens on the file\'s port and holds its connection limit', async () => {
  const port = await freePort();
  const file = writeConfig(`-- an operator's file\nreturn {\n  host = "127.0.0.1",\n  port = ${port},\n` +
    `  max_conns = 1,\n  ${DIRS},\n}\n`);
  const s = new Server(['--config', file], { bare: true });
  await s.start();
  const open = [];
  try {
    assert.equal(s.port, port);
    assert.equal(await upgrade(port, open), 101);
    assert.equal(await upgrade(port, open), 503);
  } finally {
    open.forEach((sock) => sock.destroy());
    await s.stop();
  }
});

test('flags on the command line win over the file', async () => {
  const port = await freePort();
  const file = writeConfig(`return { port = ${port}, max_conns = 1, ${DIRS} }`);
  const s = new Server(['--config', file, '--port', '0', '--max-conns', '2'], { bare: true });
  await s.start();
  const open = [];
  try {
    assert.notEqual(s.port, port);
    assert.equal(await upgrade(s.port, open), 101);
    assert.equal(await upgrade(s.port, open), 101);
    assert.equal(await upgrade(s.port, open), 503);
  } finally {
    open.forEach((sock) => sock.destroy());
    await s.stop();
  }
});

test('a switch is true or false in the file: reuse_port = true lets two servers share a port', async () => {
  const port = await freePort();
  const file = writeConfig(`return { port = ${port}, reuse_port = true, ${DIRS} }`);
  const a = new Server(['--config', file], { bare: true });
  const b = new Server(['--config', file], { bare: true });
  await a.start();
  try {
    await b.start();
    assert.equal(a.port, port);
    assert.equal(b.port, port);
    // Without the switch the same port is refused.
    const off = writeConfig(`return { port = ${port}, reuse_port = false, ${DIRS} }`);
    const r = await runToExit(['--config', off]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /in use/);
  } finally {
    await b.stop();
    await a.stop();
  }
});

const mistakes = [
  ['an unknown name', 'return { rate_limt = 5 }', /^luahub: \S*config\.lua: rate_limt: no such setting.*rate_limit for --rate-limit/],
  ['a bad value', 'return { rate_limit = "fast" }', /^luahub: \S*config\.lua: rate_limit: 'fast' is not messages per second/],
  ['a number out of range', 'return { port = 70000 }', /^luahub: \S*config\.lua: port: '70000' is not a port/],
  ['a bad list item', 'return { allowed_origins = { "https://a.example", "a.example" } }', /^luahub: \S*config\.lua: allowed_origins: .*a\.example/],
  ['a string for a switch', 'return { reuse_port = "yes" }', /^luahub: \S*config\.lua: reuse_port: 'yes' is not true or false/],
  ['a boolean for a value', 'return { port = true }', /^luahub: \S*config\.lua: port: true is not a value for --port/],
  ['a table for a value', 'return { host = { "a" } }', /^luahub: \S*config\.lua: host: a list is not a value/],
  ['a flag that is no setting', 'return { check = "scripts" }', /^luahub: \S*config\.lua: check: not a setting a file can hold/],
  ['a syntax error', 'return {\n  port = 8080,,\n}\n', /^luahub: \S*config\.lua:2: .*near ','/],
  ['a call outside the sandbox', 'return { port = tonumber(os.getenv("PORT")) }', /^luahub: \S*config\.lua:1: attempt to index global 'os'/],
  ['no table', 'return "port = 1"', /^luahub: \S*config\.lua: returns a string, not a table of settings/],
  ['memory without end', 'local t = {}\nfor i = 1, 1e9 do t[i] = string.rep("x", 100) .. i end\nreturn t',
    /^luahub: \S*config\.lua: ran out of memory/],
];
for (const [what, text, re] of mistakes) {
  test(`a config file with ${what} stops the start: exit 2, one line naming the file and the setting`, () => {
    const file = writeConfig(text);
    const r = run(['--config', file, '--port', '0']);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
  });
}

test('a config file that does not exist stops the start with its name', () => {
  const r = run(['--config', '/nonexistent/luahub.lua']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^luahub: cannot open \/nonexistent\/luahub\.lua/);
});

test('a config file that runs forever is stopped: a loop in Lua, and a long C call', async () => {
  const loop = writeConfig('local n = 0\nwhile true do n = n + 1 end\n');
  const backtrack = writeConfig('local s = string.rep("a", 40000)\n' +
    'return { host = s:find(string.rep(".-", 8) .. "b") }\n');
  const [a, b] = await Promise.all([runAsync(['--config', loop]), runAsync(['--config', backtrack])]);
  assert.equal(a.status, 2, a.stderr);
  assert.match(a.stderr, /^luahub: \S*config\.lua: took longer than 2 s to run \(an endless loop\?\)\n$/);
  assert.ok(a.ms < 8000, `stopped after ${a.ms} ms`);
  assert.equal(b.status, 2, b.stderr);
  assert.match(b.stderr, /^luahub: \S*config\.lua: took too long to run\n$/);
  assert.ok(b.ms < 12000, `stopped after ${b.ms} ms`);
});

// "  name = value, -- from: source" lines of --print-config: name -> [value, source].
function printed(stdout) {
  const m = new Map();
  for (const line of stdout.split('\n')) {
    const x = line.match(/^  (\w+) = (.*?),\s+-- from: (.*)$/);
    if (x) m.set(x[1], [x[2], x[3]]);
  }
  return m;
}

test('--print-config prints every setting in force and where it came from, as a file --config takes back', () => {
  const file = writeConfig('return { port = 9001, rate_limit = 50, reuse_port = true, ' +
    'allowed_origins = { "https://a.example", "https://b.example" }, max_message = "64k" }');
  const r = run(['--config', file, '--print-config', '--port', '9002', '--log-format', 'json']);
  assert.equal(r.status, 0, r.stderr);
  const got = printed(r.stdout);
  assert.deepEqual(got.get('port'), ['9002', 'command line']);
  assert.deepEqual(got.get('log_format'), ['"json"', 'command line']);
  assert.deepEqual(got.get('rate_limit'), ['50', file]);
  assert.deepEqual(got.get('reuse_port'), ['true', file]);
  assert.deepEqual(got.get('max_message'), ['65536', file]);
  assert.deepEqual(got.get('allowed_origins'), ['"https://a.example,https://b.example"', file]);
  assert.deepEqual(got.get('host'), ['"127.0.0.1"', 'default']);
  assert.deepEqual(got.get('compression'), ['false', 'default']);
  assert.deepEqual(got.get('redis'), ['nil', 'default (none: one node)']);

  // Every flag --help lists that sets something is there, by its name.
  const help = run(['--help']).stdout;
  const flags = [...help.matchAll(/^  (?:-\w, )?--([a-z-]+)/gm)].map((m) => m[1])
    .filter((f) => !['help', 'version', 'check', 'config', 'print-config'].includes(f));
  assert.ok(flags.length >= 30, flags.join(' '));
  for (const f of flags) assert.ok(got.has(f.replace(/-/g, '_')), `--print-config lacks ${f}`);

  // Given back to --config, it is the same settings, now from that file.
  const again = writeConfig(r.stdout, 'printed.lua');
  const r2 = run(['--config', again, '--print-config']);
  assert.equal(r2.status, 0, r2.stderr);
  const got2 = printed(r2.stdout);
  for (const [name, [value, from]] of got) {
    assert.equal(got2.get(name)[0], value, name);
    if (value !== 'nil' && from !== 'default') assert.equal(got2.get(name)[1], again, name);
  }
});

test('--print-config without a file: the defaults, exit 0, nothing started', () => {
  const r = run(['--print-config', '--lua', LUA, '--scripts', SCRIPTS]);
  assert.equal(r.status, 0, r.stderr);
  const got = printed(r.stdout);
  assert.deepEqual(got.get('port'), ['8080', 'default']);
  assert.deepEqual(got.get('lua'), [JSON.stringify(LUA), 'command line']);
  assert.match(r.stdout, /^-- luahub \d+\.\d+\.\d+: the settings in force/);
  assert.match(r.stdout, /\nreturn \{\n/);
});

test('--log-format json: every line one JSON object with time, level, module, msg and the line\'s fields', async () => {
  const dir = tempScripts();
  fs.writeFileSync(path.join(dir, 'say.lua'),
    'local hub = require "hub"\nreturn function(conn, msg)\n  hub.log("warn", "%s", msg.payload.text)\n  return {}\nend\n');
  const s = new Server(['--log-format', 'json'], { scripts: dir });
  await s.start();
  const odd = 'quote " backslash \\ newline \n tab \t bell \u0007 ünï 😀';
  try {
    const c = await Client.connect(s, 'alice');
    assert.equal((await c.request({ type: 'say', payload: { text: odd } })).type, 'ack');
    c.close();
    await s.waitLog(/"msg":"close"/);
  } finally {
    await s.stop();
  }
  const lines = s.log.trimEnd().split('\n');
  assert.ok(lines.length >= 5, s.log);
  const objs = lines.map((l) => {
    try { return JSON.parse(l); } catch { assert.fail(`not JSON: ${l}`); }
  });
  for (const o of objs) {
    assert.match(o.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(['error', 'warn', 'info', 'debug'].includes(o.level), o.level);
    assert.equal(typeof o.module, 'string');
    assert.equal(typeof o.msg, 'string');
  }
  const listening = objs.find((o) => o.msg === 'listening');
  assert.equal(listening.module, 'server');
  assert.equal(listening.host, '127.0.0.1');
  assert.equal(listening.port, String(s.port));
  const open = objs.find((o) => o.module === 'conn' && o.msg === 'open');
  assert.equal(open.user, 'alice');
  assert.equal(open.ip, '127.0.0.1');
  assert.match(open.conn, /\S/);
  const close = objs.find((o) => o.module === 'conn' && o.msg === 'close');
  assert.equal(close.conn, open.conn);
  // What a script logs comes through whole, escaped: quotes, backslashes,
  // control characters, UTF-8.
  const said = objs.find((o) => o.module === 'lua' && o.level === 'warn');
  assert.ok(said, s.log);
  assert.ok(said.msg.startsWith(odd), JSON.stringify(said.msg));
});
