// The command line: --help, --version, and exit 2 for bad flags.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { BIN } from './lib/harness.mjs';

const run = (...args) => spawnSync(BIN, args, { encoding: 'utf8', timeout: 5000 });

test('--help lists every flag with its default and exits 0', () => {
  const r = run('--help');
  assert.equal(r.status, 0);
  for (const flag of ['--host', '--port', '--scripts', '--lua', '--static', '--ping-interval',
    '--idle-timeout', '--max-message', '--send-queue', '--log-level', '--version']) {
    assert.match(r.stdout, new RegExp(flag));
  }
  assert.match(r.stdout, /default: 8080/);
});

test('--version prints the version and exits 0', () => {
  const r = run('--version');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^luahub \d+\.\d+\.\d+\n$/);
});

for (const args of [['--port', 'eighty'], ['--bogus'], ['--idle-timeout', '0'], ['--max-message'], ['stray']]) {
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
