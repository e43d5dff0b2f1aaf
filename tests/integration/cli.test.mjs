// The command line: --help, --version, and exit 2 for bad flags.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, ROOT, tempScripts } from './lib/harness.mjs';

const run = (...args) => spawnSync(BIN, args, { encoding: 'utf8', timeout: 5000 });

test('--help lists every flag with its default and exits 0', () => {
  const r = run('--help');
  assert.equal(r.status, 0);
  for (const flag of ['--host', '--port', '--scripts', '--lua', '--static', '--ping-interval',
    '--idle-timeout', '--max-message', '--send-queue', '--log-level', '--version',
    '--rate-limit', '--rate-burst', '--auth-secret-file', '--config', '--print-config', '--log-format']) {
    assert.match(r.stdout, new RegExp(flag));
  }
  assert.match(r.stdout, /default: 8080/);
});

test('--version prints the version and exits 0', () => {
  const r = run('--version');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^luahub \d+\.\d+\.\d+\n$/);
});

for (const args of [['--port', 'eighty'], ['--bogus'], ['--idle-timeout', '0'], ['--max-message'], ['stray'], ['--check'],
  ['--rate-limit', '-1'], ['--rate-limit', 'fast'], ['--rate-burst', '0'], ['--rate-burst', '5000']]) {
  test(`${args.join(' ')} exits 2 with a clear message`, () => {
    const r = run(...args);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /luahub: .+/);
    assert.match(r.stderr, /luahub --help/);
  });
}

test('a scripts directory that fails to load stops the start with its reason', () => {
  const r = run('--port', '0', '--scripts', '/nonexistent-dir');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /nonexistent-dir/);
});

test('--check DIR: 0 for good scripts, 1 with every error and its file:line', () => {
  const good = run('--check', path.join(ROOT, 'scripts'), '--lua', path.join(ROOT, 'lua'));
  assert.equal(good.status, 0, good.stderr);
  assert.match(good.stdout, /11 handlers load: chat,/);
  const dir = tempScripts();
  fs.writeFileSync(path.join(dir, 'broken.lua'), 'return function()\n  if then\nend\n');
  fs.writeFileSync(path.join(dir, 'leaky.lua'), 'total = 0\nreturn function() end\n');
  const bad = run('--check', dir, '--lua', path.join(ROOT, 'lua'));
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /broken\.lua:2:/);
  assert.match(bad.stderr, /leaky\.lua:1: assignment to undeclared global 'total'/);
});

test('--check skips specs (*_spec.lua, spec/) beside the handlers and lists the hooks', () => {
  // examples/handlers keeps each handler's spec beside it, hooks/ included.
  const r = run('--check', path.join(ROOT, 'examples/handlers'), '--lua', path.join(ROOT, 'lua'));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /5 handlers load: poll,react,roll,shout,slow_mode\n/);
  assert.match(r.stdout, /hooks: on_message\n/);
  const dir = tempScripts();
  fs.mkdirSync(path.join(dir, 'spec'));
  fs.writeFileSync(path.join(dir, 'spec/chat_spec.lua'), 'describe("x", function() end)\n');
  fs.writeFileSync(path.join(dir, 'ping_spec.lua'), 'describe("ping", function() end)\n');
  const ok = run('--check', dir, '--lua', path.join(ROOT, 'lua'));
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /11 handlers load: chat,/);
  assert.match(ok.stdout, /hooks: none\n/);
});

test('--check fails on a file in hooks/ that is no hook, naming it and the hooks', () => {
  const dir = tempScripts();
  fs.mkdirSync(path.join(dir, 'hooks'));
  fs.writeFileSync(path.join(dir, 'hooks/on_connect.lua'), 'return function() end\n');
  fs.writeFileSync(path.join(dir, 'hooks/on_disconnect.lua'), 'return function() end\n');
  fs.writeFileSync(path.join(dir, 'hooks/on_mesage.lua'), 'return function() end\n');
  const r = run('--check', dir, '--lua', path.join(ROOT, 'lua'));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /hooks\/on_mesage\.lua is not a hook and not loaded \(the hooks are on_connect, on_message, on_disconnect\)/);
  assert.match(r.stdout, /hooks: on_connect, on_disconnect\n/);
  fs.unlinkSync(path.join(dir, 'hooks/on_mesage.lua'));
  assert.equal(run('--check', dir, '--lua', path.join(ROOT, 'lua')).status, 0);
});

test('from another working directory the runtime is found beside the binary, or the error names --lua', () => {
  const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'luahub-cwd-'));
  const r = spawnSync(BIN, ['--check', path.join(ROOT, 'scripts')], { cwd: elsewhere, encoding: 'utf8', timeout: 5000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /11 handlers load: chat,/);
  // A copy of the binary with no runtime near it: say where we looked and which flag to use.
  const lonely = path.join(elsewhere, 'bin');
  fs.mkdirSync(lonely);
  fs.copyFileSync(BIN, path.join(lonely, 'luahub'));
  fs.chmodSync(path.join(lonely, 'luahub'), 0o755);
  const bad = spawnSync(path.join(lonely, 'luahub'), ['--check', path.join(ROOT, 'scripts')],
    { cwd: elsewhere, encoding: 'utf8', timeout: 5000 });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /cannot find the Lua runtime \(runtime\.lua\) in lua, .*bin\/\.\.\/lua, .*bin\/\.\.\/share\/luahub\/lua; give its directory with --lua DIR/);
  fs.rmSync(elsewhere, { recursive: true });
});
