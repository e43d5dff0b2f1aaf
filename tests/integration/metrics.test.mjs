// GET /metrics: the Prometheus text moves with what users do, its labels
// stay bounded whatever clients send, reloads are counted, and
// --metrics off|key close it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Client, Server, rawSocket, sleep, tempScripts } from './lib/harness.mjs';
import { parseMetrics, scrape, series, value } from './lib/prom.mjs';

const KEY = 'metrics-test-key-0123456789';

describe('GET /metrics', () => {
  let server;
  let dir;
  before(async () => {
    dir = tempScripts();
    server = await new Server([], { scripts: dir }).start();
  });
  after(() => server.stop());

  test('HELP and TYPE for every family, the types as documented', async () => {
    const m = await scrape(server);
    const want = {
      luahub_connections: 'gauge',
      luahub_users_online: 'gauge',
      luahub_rooms: 'gauge',
      luahub_messages_received_total: 'counter',
      luahub_handler_errors_total: 'counter',
      luahub_deliveries_total: 'counter',
      luahub_slow_consumer_closes_total: 'counter',
      luahub_reloads_total: 'counter',
      luahub_handler_duration_seconds: 'histogram',
    };
    for (const [name, type] of Object.entries(want)) {
      assert.equal(m.types.get(name), type, name);
      assert.ok(m.help.get(name), `HELP for ${name}`);
    }
    // One node: no Redis gauge.
    assert.equal(m.types.has('luahub_redis_up'), false);
  });

  test('gauges follow users connecting, joining and leaving', async () => {
    const m0 = await scrape(server);
    const a = await Client.connect(server, 'g-alice');
    const a2 = await Client.connect(server, 'g-alice');
    const b = await Client.connect(server, 'g-bob');
    await a.request({ type: 'join_room', room_id: 'g-room1' });
    await b.request({ type: 'join_room', room_id: 'g-room2' });
    const m1 = await scrape(server);
    assert.equal(value(m1, 'luahub_connections') - value(m0, 'luahub_connections'), 3);
    assert.equal(value(m1, 'luahub_users_online') - value(m0, 'luahub_users_online'), 2);
    assert.equal(value(m1, 'luahub_rooms') - value(m0, 'luahub_rooms'), 2);
    await a.close();
    await a2.close();
    await b.close();
    // The close is reported when the socket is gone: poll briefly.
    let m2;
    for (let t = 0; t < 100; t++) {
      m2 = await scrape(server);
      if (value(m2, 'luahub_connections') === value(m0, 'luahub_connections')) break;
      await sleep(20);
    }
    assert.equal(value(m2, 'luahub_connections'), value(m0, 'luahub_connections'));
    assert.equal(value(m2, 'luahub_users_online'), value(m0, 'luahub_users_online'));
  });

  test('messages, errors, deliveries and durations are counted by type', async () => {
    const a = await Client.connect(server, 'c-alice');
    const b = await Client.connect(server, 'c-bob');
    await a.request({ type: 'join_room', room_id: 'c-room' });
    await b.request({ type: 'join_room', room_id: 'c-room' });
    const m0 = await scrape(server);
    for (let i = 0; i < 3; i++) {
      assert.equal((await a.request({ type: 'chat', room_id: 'c-room', payload: { i } })).type, 'ack');
    }
    // A chat to a room it is not in: chat's not_in_room.
    assert.equal((await a.request({ type: 'chat', room_id: 'elsewhere', payload: {} })).code, 'not_in_room');
    // No handler: unknown_type under "other"; not JSON: bad_json.
    assert.equal((await a.request({ type: 'no_such_type' })).code, 'unknown_type');
    a.send('{nope');
    assert.equal((await a.next((f) => f.type === 'error' && f.code === 'bad_json')).code, 'bad_json');
    const m1 = await scrape(server);
    const d = (name, labels) => value(m1, name, labels) - value(m0, name, labels);
    assert.equal(d('luahub_messages_received_total', { type: 'chat' }), 4);
    assert.equal(d('luahub_messages_received_total', { type: 'other' }), 2);
    assert.equal(d('luahub_handler_errors_total', { type: 'chat', code: 'not_in_room' }), 1);
    assert.equal(d('luahub_handler_errors_total', { type: 'other', code: 'unknown_type' }), 1);
    assert.equal(d('luahub_handler_errors_total', { type: 'other', code: 'bad_json' }), 1);
    assert.equal(d('luahub_handler_errors_total', { type: 'chat', code: 'bad_message' }), 0);
    // 3 chats to 2 members, 3 acks, 3 error answers: 12 frames queued.
    assert.equal(d('luahub_deliveries_total'), 12);
    // The histogram: 4 chat calls timed, buckets cumulative, +Inf = count.
    assert.equal(d('luahub_handler_duration_seconds_count', { type: 'chat' }), 4);
    const buckets = series(m1, 'luahub_handler_duration_seconds_bucket').filter((s) => s.labels.type === 'chat');
    assert.ok(buckets.length >= 10, 'sensible buckets');
    for (let i = 1; i < buckets.length; i++) {
      assert.ok(Number(buckets[i].labels.le) > Number(buckets[i - 1].labels.le) || buckets[i].labels.le === '+Inf');
      assert.ok(buckets[i].value >= buckets[i - 1].value, 'cumulative');
    }
    assert.equal(buckets.at(-1).labels.le, '+Inf');
    assert.equal(buckets.at(-1).value, value(m1, 'luahub_handler_duration_seconds_count', { type: 'chat' }));
    const sum = value(m1, 'luahub_handler_duration_seconds_sum', { type: 'chat' });
    assert.ok(sum > 0 && sum < 5, `sum ${sum}`);
    // Unknown types ran no handler: no histogram for "other".
    assert.equal(series(m1, 'luahub_handler_duration_seconds_count').some((s) => s.labels.type === 'other'), false);
    await a.close();
    await b.close();
  });

  test('a client cannot mint series: 100 unknown types are one "other" series', async () => {
    const c = await Client.connect(server, 'mint');
    const m0 = await scrape(server);
    for (let i = 0; i < 100; i++) c.send({ type: `made_up_${i}`, id: i + 1 });
    await c.take((f) => f.type === 'error' && f.code === 'unknown_type', 100);
    // A type that cannot name a handler, and binary frames, too.
    c.send({ type: 'bad type!' });
    c.ws.send(Buffer.from([1, 2, 3]));
    await c.take((f) => f.type === 'error', 2);
    const m1 = await scrape(server);
    // No new type: the error codes are the protocol's fixed set (a first
    // bad_message is a new series, of a bounded set).
    const types = (m) => new Set(m.samples.filter((s) => s.labels.type).map((s) => s.labels.type));
    assert.deepEqual([...types(m1)].filter((t) => !types(m0).has(t)), [], 'no new type label');
    const codes = new Set(series(m1, 'luahub_handler_errors_total').map((s) => s.labels.code));
    for (const code of codes) assert.ok(['bad_json', 'bad_message', 'unknown_type', 'not_in_room', 'not_found', 'forbidden', 'rate_limited', 'handler_error', 'unavailable', 'other'].includes(code), code);
    assert.ok(m1.samples.length - m0.samples.length <= 1, 'at most the bad_message series is new');
    assert.equal(value(m1, 'luahub_messages_received_total', { type: 'other' }) -
      value(m0, 'luahub_messages_received_total', { type: 'other' }), 102);
    assert.equal(value(m1, 'luahub_handler_errors_total', { type: 'other', code: 'unknown_type' }) -
      value(m0, 'luahub_handler_errors_total', { type: 'other', code: 'unknown_type' }), 101);
    for (const s of series(m1, 'luahub_messages_received_total')) {
      assert.match(s.labels.type, /^[a-z_]+$/);
      assert.ok(!s.labels.type.startsWith('made_up'));
    }
    await c.close();
  });

  test('a script\'s own error code counts as code="other"', async () => {
    fs.writeFileSync(path.join(dir, 'odd_fail.lua'),
      'local hub = require "hub"\nreturn function() hub.fail("my_code", "made up") end\n');
    server.signal('SIGHUP');
    await server.waitLog(/reloaded \d+ handlers.*odd_fail/);
    const c = await Client.connect(server, 'odd');
    const m0 = await scrape(server);
    assert.equal((await c.request({ type: 'odd_fail' })).code, 'my_code');
    const m1 = await scrape(server);
    assert.equal(value(m1, 'luahub_handler_errors_total', { type: 'odd_fail', code: 'other' }) -
      value(m0, 'luahub_handler_errors_total', { type: 'odd_fail', code: 'other' }), 1);
    await c.close();
  });

  test('reloads are counted ok and failed; a handler that stays keeps its counts, a new one gets a series', async () => {
    const c = await Client.connect(server, 'rl');
    await c.request({ type: 'ping' });
    const m0 = await scrape(server);
    const pings = value(m0, 'luahub_messages_received_total', { type: 'ping' });
    assert.ok(pings >= 1);
    assert.equal(value(m0, 'luahub_messages_received_total', { type: 'echo2' }), 0);

    fs.writeFileSync(path.join(dir, 'echo2.lua'), 'return function(conn, msg) return {} end\n');
    const okLines = (server.log.match(/reloaded \d+ handlers/g) || []).length;
    server.signal('SIGHUP');
    for (let t = 0; t < 200 && (server.log.match(/reloaded \d+ handlers/g) || []).length === okLines; t++) await sleep(10);
    const m1 = await scrape(server);
    assert.equal(value(m1, 'luahub_reloads_total', { result: 'ok' }) - value(m0, 'luahub_reloads_total', { result: 'ok' }), 1);
    assert.equal(value(m1, 'luahub_reloads_total', { result: 'failed' }), value(m0, 'luahub_reloads_total', { result: 'failed' }));
    assert.equal(value(m1, 'luahub_messages_received_total', { type: 'ping' }), pings, 'ping kept its count');
    assert.equal(series(m1, 'luahub_messages_received_total').filter((s) => s.labels.type === 'echo2').length, 1);
    assert.equal((await c.request({ type: 'echo2' })).type, 'ack');

    fs.writeFileSync(path.join(dir, 'broken.lua'), 'this is not lua (\n');
    server.signal('SIGHUP');
    await server.waitLog(/reload failed/);
    const m2 = await scrape(server);
    assert.equal(value(m2, 'luahub_reloads_total', { result: 'failed' }) - value(m1, 'luahub_reloads_total', { result: 'failed' }), 1);
    assert.equal(value(m2, 'luahub_reloads_total', { result: 'ok' }), value(m1, 'luahub_reloads_total', { result: 'ok' }));
    assert.equal(value(m2, 'luahub_messages_received_total', { type: 'echo2' }), 1);
    fs.rmSync(path.join(dir, 'broken.lua'));
    await c.close();
  });

  test('a slow consumer closed 4008 is counted', async () => {
    const s = await new Server(['--send-queue', '16k', '--max-message', '1m'],
      { env: { LUAHUB_API_KEY: KEY } }).start();
    try {
      const slow = await rawSocket(s, 'slowpoke');
      slow.pause();
      const m0 = await scrape(s);
      assert.equal(value(m0, 'luahub_slow_consumer_closes_total'), 0);
      const payload = { pad: 'z'.repeat(500000) };
      for (let i = 0; i < 60 && !/slow consumer closed/.test(s.log); i++) {
        await fetch(`http://127.0.0.1:${s.port}/api/publish`, {
          method: 'POST',
          headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
          body: JSON.stringify({ to: 'slowpoke', payload }),
        });
      }
      await s.waitLog(/slow consumer closed conn=\S+ user=slowpoke/, 5000);
      const m1 = await scrape(s);
      assert.equal(value(m1, 'luahub_slow_consumer_closes_total'), 1);
      slow.destroy();
    } finally {
      await s.stop();
    }
  });
});

describe('--metrics', () => {
  test('off: 404; key: 401 without the API key, 200 with it', async () => {
    const off = await new Server(['--metrics', 'off']).start();
    try {
      assert.equal((await off.get('/metrics')).status, 404);
    } finally {
      await off.stop();
    }
    const keyed = await new Server(['--metrics', 'key'], { env: { LUAHUB_API_KEY: KEY } }).start();
    try {
      assert.equal((await keyed.get('/metrics')).status, 401);
      const m = await scrape(keyed, { authorization: `Bearer ${KEY}` });
      assert.equal(value(m, 'luahub_connections'), 0);
    } finally {
      await keyed.stop();
    }
  });

  test('key without an API key, or a bad value, stops the start', async () => {
    const { runToExit } = await import('./lib/harness.mjs');
    const a = await runToExit(['--port', '0', '--metrics', 'key']);
    assert.notEqual(a.code, 0);
    assert.match(a.stderr, /--metrics key needs an API key/);
    const b = await runToExit(['--port', '0', '--metrics', 'maybe']);
    assert.equal(b.code, 2);
    assert.match(b.stderr, /--metrics: 'maybe' is not on, off or key/);
  });

  test('the exposition parser refuses malformed text (the tests can fail)', () => {
    assert.throws(() => parseMetrics('luahub_x 1\n'), /no TYPE/);
    assert.throws(() => parseMetrics('# TYPE a counter\na{b="c" 1\n'), /not a sample|bad labels/);
  });
});
