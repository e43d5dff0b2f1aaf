// `cmake --install` into a temporary prefix, then the installed server run
// from another working directory: it finds its runtime, the shipped
// handlers and the chat page, and serves a client. The man page and the
// systemd unit are checked as installed.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, ROOT, Server, Client } from './lib/harness.mjs';

const BUILD = path.dirname(BIN);
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const inBuildTree = fs.existsSync(path.join(BUILD, 'CMakeCache.txt'));

let prefix;
function installed() {
  if (!prefix) {
    prefix = fs.mkdtempSync(path.join(os.tmpdir(), 'luahub-prefix-'));
    const r = spawnSync('cmake', ['--install', BUILD, '--prefix', prefix], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr + r.stdout);
  }
  return prefix;
}

after(() => { if (prefix) fs.rmSync(prefix, { recursive: true, force: true }); });

const opts = { skip: inBuildTree ? false : `${BIN} is not in a CMake build tree` };

test('cmake --install puts the binary, the runtime, the scripts, the page, the man page and the unit in place', opts, () => {
  const p = installed();
  for (const f of ['bin/luahub', 'share/luahub/lua/runtime.lua', 'share/luahub/lua/hub.lua',
    'share/luahub/scripts/ping.lua', 'share/luahub/scripts/chat.lua', 'share/luahub/scripts/lib',
    'share/luahub/examples/chat/index.html', 'share/luahub/config.lua', 'share/man/man1/luahub.1',
    'lib/systemd/system/luahub.service', 'share/doc/luahub/README.md']) {
    assert.ok(fs.existsSync(path.join(p, f)), `${f} is not installed`);
  }
  assert.ok(fs.statSync(path.join(p, 'bin/luahub')).mode & 0o111, 'bin/luahub is not executable');
});

test('the installed binary, run from another directory, starts with the shipped scripts and serves a client', opts, async () => {
  const p = installed();
  const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'luahub-cwd-'));
  const s = new Server(['--host', '127.0.0.1', '--port', '0', '--log-level', 'debug'],
    { bin: path.join(p, 'bin/luahub'), bare: true, cwd: elsewhere });
  await s.start();
  try {
    // Every handler the repo ships, installed and loaded.
    const shipped = fs.readdirSync(path.join(ROOT, 'scripts')).filter((f) => f.endsWith('.lua'))
      .map((f) => f.slice(0, -4)).sort();
    assert.ok(s.log.includes(`loaded ${shipped.length} handlers: ${shipped.join(',')};`), s.log);
    assert.ok(s.log.includes(`static=${fs.realpathSync(p)}/share/luahub/examples/chat`), s.log);
    const a = await Client.connect(s, 'alice');
    assert.equal((await a.request({ type: 'ping' })).type, 'pong');
    assert.equal((await a.request({ type: 'join_room', room_id: 'lobby' })).type, 'ack');
    const b = await Client.connect(s, 'bob');
    assert.equal((await b.request({ type: 'join_room', room_id: 'lobby' })).type, 'ack');
    assert.equal((await a.request({ type: 'chat', room_id: 'lobby', payload: { text: 'hi' } })).type, 'ack');
    const got = await b.next((m) => m.type === 'chat');
    assert.equal(got.payload.text, 'hi');
    assert.equal(got.from, 'alice');
    const page = await s.get('/');
    assert.equal(page.status, 200);
    assert.match(page.body, /<html/i);
    await a.close();
    await b.close();
  } finally {
    await s.stop();
  }
});

test('the installed example config.lua loads, and flags win over it', opts, () => {
  const p = installed();
  const r = spawnSync(path.join(p, 'bin/luahub'),
    ['--config', path.join(p, 'share/luahub/config.lua'), '--port', '0', '--print-config'],
    { encoding: 'utf8', cwd: os.tmpdir() });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^ {2}port = 0, +-- from: command line$/m);
  assert.match(r.stdout, /^ {2}rate_limit = 50, +-- from: .*config\.lua$/m);
  assert.match(r.stdout, /^ {2}scripts = ".*\/share\/luahub\/scripts", +-- from: default$/m);
});

test('luahub(1) is troff made from --help: every flag is in it, and it renders', opts, () => {
  const p = installed();
  const page = path.join(p, 'share/man/man1/luahub.1');
  const troff = fs.readFileSync(page, 'utf8');
  assert.match(troff, /^\.TH LUAHUB 1 /m);
  assert.match(troff, /^\.SH OPTIONS$/m);
  const help = spawnSync(BIN, ['--help'], { encoding: 'utf8' }).stdout;
  const flags = [...help.matchAll(/^ {2}(?:-\w, )?(--[a-z-]+)/gm)].map((m) => m[1]);
  assert.ok(flags.length >= 30);
  for (const f of flags) assert.ok(troff.includes(`\\fB${f.replace(/-/g, '\\-')}\\fR`), `${f} is not in luahub.1`);
  if (has('groff')) {
    const r = spawnSync('groff', ['-man', '-Tutf8', '-ww', '-z', page], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '', 'groff warns');
  }
  if (has('man')) {
    const r = spawnSync('man', ['-l', page], { encoding: 'utf8', env: { ...process.env, MANWIDTH: '100', MANPAGER: 'cat', PAGER: 'cat' } });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /--log-format FORMAT/);
    assert.match(r.stdout, /--config FILE/);
    assert.match(r.stdout, /EXIT STATUS/);
  }
});

test('the systemd unit runs the server sandboxed and reloads on HUP; systemd-analyze verify passes', opts, () => {
  const p = installed();
  const unit = fs.readFileSync(path.join(p, 'lib/systemd/system/luahub.service'), 'utf8');
  for (const line of ['DynamicUser=yes', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'ProtectHome=yes',
    'PrivateTmp=yes', 'ExecReload=/bin/kill -HUP $MAINPID']) {
    assert.ok(unit.split('\n').includes(line), `no ${line}`);
  }
  const exec = unit.match(/^ExecStart=(\S+)\/luahub --config \/etc\/luahub\/config\.lua$/m);
  assert.ok(exec, 'ExecStart');
  if (!has('systemd-analyze')) return;
  // ExecStart names the configured prefix; point it at this install.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'luahub-unit-'));
  const copy = path.join(dir, 'luahub.service');
  fs.writeFileSync(copy, unit.replace(exec[1], path.join(p, 'bin')));
  const r = spawnSync('systemd-analyze', ['verify', copy], {
    encoding: 'utf8', env: { ...process.env, MANPATH: path.join(p, 'share/man') },
  });
  assert.equal(r.status, 0, r.stderr);
  // verify only warns about an unknown key or a bad value: any line about
  // the unit is a failure here.
  assert.ok(!r.stderr.includes('luahub.service'), r.stderr);
});
