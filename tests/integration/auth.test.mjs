// Auth tokens: with a secret, token=<JWT> (HS256, sub = user id) is the
// only way in; every bad token is closed with 4001 and costs nobody else.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Server } from './lib/harness.mjs';

const SECRET = 'correct horse battery staple';
const b64url = (buf) => Buffer.from(buf).toString('base64url');

// A compact JWS; header and claims are objects or raw JSON text.
function jwt(claims, { secret = SECRET, header = { alg: 'HS256', typ: 'JWT' } } = {}) {
  const part = (v) => b64url(typeof v === 'string' ? v : JSON.stringify(v));
  const signing = `${part(header)}.${part(claims)}`;
  const sig = crypto.createHmac('sha256', secret).update(signing).digest();
  return `${signing}.${b64url(sig)}`;
}
const now = () => Math.floor(Date.now() / 1000);

async function refused(server, query) {
  const c = await Client.connect(server, undefined, { query, expectWelcome: false });
  const { code, reason } = await c.closed();
  assert.equal(c.seen('welcome').length, 0, 'no welcome for a refused client');
  return { code, reason };
}

describe('auth tokens (LUAHUB_AUTH_SECRET)', () => {
  let server;
  before(async () => {
    server = await new Server([], { env: { LUAHUB_AUTH_SECRET: SECRET } }).start();
  });
  after(() => server.stop());

  test('the log says tokens are required, not that the server is insecure', () => {
    assert.match(server.log, /auth: clients must present token=<JWT>/);
    assert.doesNotMatch(server.log, /insecure/);
  });

  test('a valid token connects as its sub, on every device', async () => {
    const token = jwt({ sub: 'alice', exp: now() + 60 });
    const a = await Client.connect(server, undefined, { query: `?token=${token}` });
    const b = await Client.connect(server, undefined, { query: `?token=${token}` });
    assert.equal(a.user, 'alice');
    assert.equal(b.user, 'alice');
    assert.notEqual(a.connId, b.connId);
    // The identity is the token's: rooms and sends work as for user=.
    assert.equal((await a.request({ type: 'join_room', room_id: 'r' })).type, 'ack');
    assert.equal((await b.request({ type: 'join_room', room_id: 'r' })).type, 'ack');
    await a.request({ type: 'chat', room_id: 'r', payload: { text: 'hi' } });
    const got = await b.next((m) => m.type === 'chat');
    assert.equal(got.from, 'alice');
    await a.close();
    await b.close();
  });

  test('a token without exp is accepted; nbf in the past too', async () => {
    const c = await Client.connect(server, undefined,
      { query: `?token=${jwt({ sub: 'bob', nbf: now() - 10 })}` });
    assert.equal(c.user, 'bob');
    await c.close();
  });

  const cases = [
    ['no token', '', /token required/],
    ['user= instead of a token', '?user=alice', /requires a token/],
    ['user= next to a valid token', `?user=mallory&token=${jwt({ sub: 'alice' })}`, /requires a token/],
    ['an expired token', `?token=${jwt({ sub: 'alice', exp: now() - 1 })}`, /expired/],
    ['a token not yet valid', `?token=${jwt({ sub: 'alice', nbf: now() + 3600 })}`, /not yet valid/],
    ['a token signed with another secret', `?token=${jwt({ sub: 'alice' }, { secret: 'guess' })}`, /signature/],
    ['alg none', `?token=${jwt({ sub: 'alice' }, { header: { alg: 'none' } }).replace(/\.[^.]*$/, '.')}`, /HS256/],
    ['alg HS512', `?token=${jwt({ sub: 'alice' }, { header: { alg: 'HS512' } })}`, /HS256/],
    ['a token without sub', `?token=${jwt({ name: 'alice' })}`, /no sub/],
    ['a sub that is not a user id', `?token=${jwt({ sub: 'bad id' })}`, /bad user id/],
    ['a sub that is a number', `?token=${jwt({ sub: 42 })}`, /no sub/],
    ['exp that is a string', `?token=${jwt({ sub: 'alice', exp: 'never' })}`, /malformed/],
    ['two parts', `?token=${jwt({ sub: 'alice' }).split('.').slice(0, 2).join('.')}`, /malformed/],
    ['garbage', '?token=not.a.jwt', /malformed/],
    ['a claims part that is not JSON', `?token=${jwt('{"sub":"alice"')}`, /malformed/],
  ];
  for (const [what, query, why] of cases) {
    test(`${what}: closed with 4001 and a reason`, async () => {
      const { code, reason } = await refused(server, query);
      assert.equal(code, 4001);
      assert.match(reason, why);
    });
  }

  test('a tampered payload with the original signature is refused', async () => {
    const [h, , s] = jwt({ sub: 'alice' }).split('.');
    const forged = `${h}.${b64url(JSON.stringify({ sub: 'admin' }))}.${s}`;
    const { code, reason } = await refused(server, `?token=${forged}`);
    assert.equal(code, 4001);
    assert.match(reason, /signature/);
  });

  test('refused clients cost the others nothing', async () => {
    const a = await Client.connect(server, undefined, { query: `?token=${jwt({ sub: 'carol' })}` });
    await Promise.all(cases.map(([, query]) => refused(server, query)));
    await a.alive();
    await a.close();
  });
});

describe('auth secret from a file (--auth-secret-file)', () => {
  let server;
  let dir;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'luahub-secret-'));
    fs.writeFileSync(path.join(dir, 'secret'), `${SECRET}\n`);
    server = await new Server(['--auth-secret-file', path.join(dir, 'secret')]).start();
  });
  after(() => server.stop());

  test('the trailing newline is not part of the secret', async () => {
    const c = await Client.connect(server, undefined, { query: `?token=${jwt({ sub: 'dave' })}` });
    assert.equal(c.user, 'dave');
    await c.close();
  });

  test('a missing or empty file stops the server at start with a reason', async () => {
    for (const [file, why] of [[path.join(dir, 'absent'), /cannot open/], [path.join(dir, 'empty'), /empty/]]) {
      if (file.endsWith('empty')) fs.writeFileSync(file, '\n');
      const s = new Server(['--auth-secret-file', file]);
      await assert.rejects(s.start(), why);
    }
  });
});
