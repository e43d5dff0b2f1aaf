// --rate-limit: a connection over its rate gets rate_limited answers, and
// one that keeps flooding is closed with 4029; nobody else notices.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, Server, sleep } from './lib/harness.mjs';

describe('rate limit (--rate-limit 20 --rate-burst 5)', () => {
  let server;
  before(async () => {
    server = await new Server(['--rate-limit', '20', '--rate-burst', '5']).start();
  });
  after(() => server.stop());

  test('a burst is let through, the next frame is answered rate_limited with its id', async () => {
    const c = await Client.connect(server, 'alice');
    const answers = await Promise.all(
      Array.from({ length: 6 }, (_, i) => c.request({ type: 'ping', id: i + 1 })));
    assert.deepEqual(answers.slice(0, 5).map((m) => m.type), Array(5).fill('pong'));
    assert.equal(answers[5].type, 'error');
    assert.equal(answers[5].id, 6);
    assert.equal(answers[5].code, 'rate_limited');
    assert.match(answers[5].message, /20 messages per second/);
    // 20 a second: after 150 ms there is room for more.
    await sleep(150);
    assert.equal((await c.request({ type: 'ping' })).type, 'pong');
    await c.close();
  });

  test('a client that stays under the rate is never refused', async () => {
    const c = await Client.connect(server, 'bob');
    for (let i = 0; i < 15; i++) {
      assert.equal((await c.request({ type: 'ping' })).type, 'pong');
      await sleep(60); // about 16 a second
    }
    assert.equal(c.seen('error').length, 0);
    await c.close();
  });

  test('frames without an id and binary frames are refused too, without an id', async () => {
    const c = await Client.connect(server, 'carol');
    for (let i = 0; i < 5; i++) c.send({ type: 'ping', id: i });
    c.send({ type: 'ping' });
    const e1 = await c.next((m) => m.type === 'error');
    assert.equal(e1.code, 'rate_limited');
    assert.equal('id' in e1, false);
    c.ws.send(Buffer.from([1, 2, 3]));
    const e2 = await c.next((m) => m.type === 'error');
    assert.equal(e2.code, 'rate_limited');
    await c.close();
  });

  test('a long message over the rate (read in pieces) is refused with its id', async () => {
    const c = await Client.connect(server, 'erin');
    const pad = 'x'.repeat(2000);
    const answers = await Promise.all(
      Array.from({ length: 6 }, (_, i) => c.request({ type: 'ping', id: `long-${i}`, pad })));
    assert.deepEqual(answers.map((m) => m.type), [...Array(5).fill('pong'), 'error']);
    assert.equal(answers[5].id, 'long-5');
    assert.equal(answers[5].code, 'rate_limited');
    await c.close();
  });

  test('a flood is closed with 4029; the others keep being answered', async () => {
    const bystander = await Client.connect(server, 'dave');
    const c = await Client.connect(server, 'mallory');
    for (let i = 0; i < 200; i++) c.send({ type: 'ping', id: i });
    const { code, reason } = await c.closed();
    assert.equal(code, 4029);
    assert.equal(reason, 'rate limited');
    // 5 let through, then at most 5 more refused before the close.
    assert.equal(c.seen('pong').length, 5);
    assert.ok(c.seen('error').length <= 5);
    await bystander.alive();
    await bystander.close();
  });
});

describe('no rate limit by default', () => {
  let server;
  before(async () => { server = await new Server().start(); });
  after(() => server.stop());

  test('500 frames at once are all answered', async () => {
    const c = await Client.connect(server, 'alice');
    const answers = await Promise.all(
      Array.from({ length: 500 }, () => c.request({ type: 'ping' })));
    assert.ok(answers.every((m) => m.type === 'pong'));
    await c.close();
  });
});
