// The client's type declarations (clients/js/luahub.d.ts) compile, and
// describe the API as docs/client.md uses it (clients/js/test/types-check.ts):
// `tsc --noEmit` from typescript, an npm dependency of these tests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

test('luahub.d.ts passes tsc --noEmit --strict with the documented usage', () => {
  const tsc = path.join(here, 'node_modules/.bin/tsc');
  const r = spawnSync(tsc, ['-p', path.join(here, '../../clients/js')], { encoding: 'utf8' });
  assert.ifError(r.error && new Error(`${tsc}: ${r.error.message} (npm ci in tests/browser)`));
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
});
