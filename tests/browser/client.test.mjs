// The JavaScript client (clients/js/luahub.js, as the server serves it at
// /luahub.js) in Debian's Chromium against the real server: a room whose
// network fails again and again while another client publishes gets
// every seq once, in order; a refused request rejects with the error
// frame. The client reaches the server through a proxy the test cuts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Client, ROOT, Server, sleep } from '../integration/lib/harness.mjs';
import { Proxy } from '../integration/lib/proxy.mjs';
import { launch, watch } from './lib/browser.mjs';

describe('the JavaScript client in Chromium', () => {
  let server;
  let proxy;
  let browser;
  let page;
  const problems = [];

  before(async () => {
    server = await new Server(['--static', path.join(ROOT, 'tests/browser/fixtures')]).start();
    proxy = await new Proxy(server.port).start();
    browser = await launch();
    page = watch(await browser.newPage(), 'page', problems);
    await page.goto(`http://127.0.0.1:${server.port}/`);
  });
  after(async () => {
    await browser?.close();
    await proxy?.stop();
    await server?.stop();
  });

  test('reconnects through cuts while another publishes: every seq once, in order', async () => {
    await page.evaluate(async (url) => {
      const { connect } = await import('/luahub.js');
      const hub = connect(url, { user: 'sub', backoff: { base: 20, cap: 250 } });
      window.hub = hub;
      window.seqs = [];
      window.resets = [];
      window.states = [];
      hub.on('state', (s) => window.states.push(s));
      await hub.join('live', {
        onMessage: (f) => window.seqs.push(f.seq),
        onReset: (i) => window.resets.push(i),
      });
    }, `ws://127.0.0.1:${proxy.port}/ws`);

    const pub = await Client.connect(server, 'pub');
    await pub.request({ type: 'join_room', room_id: 'live' });
    const N = 200;
    const publishing = (async () => {
      for (let i = 0; i < N; i++) {
        pub.send({ type: 'chat', room_id: 'live', payload: { n: i } });
        await sleep(5);
      }
    })();
    for (let cut = 0; cut < 5; cut++) {
      await sleep(90 + cut * 25);
      proxy.drop();
    }
    await publishing;
    await page.waitForFunction((n) => window.seqs.length >= n, N, { timeout: 10000 });
    await sleep(150);
    const { seqs, resets, states } = await page.evaluate(() => ({
      seqs: window.seqs, resets: window.resets, states: window.states,
    }));
    assert.deepEqual(seqs, Array.from({ length: N }, (_, i) => i + 1));
    assert.deepEqual(resets, []);
    assert.ok(proxy.drops >= 4, `the network was cut (${proxy.drops})`);
    assert.ok(states.filter((s) => s === 'open').length >= 5, `reconnected each time: ${states}`);
    await pub.close();
  });

  test('a refused request rejects with the error frame; an answered one resolves with its ack', async () => {
    const out = await page.evaluate(async () => {
      const r = {};
      try {
        await window.hub.request('chat', { room_id: 'not-mine', payload: { text: 'x' } });
        r.chat = 'resolved';
      } catch (e) {
        r.chat = { name: e.name, code: e.code, message: e.message, frameType: e.frame?.type };
      }
      try {
        await window.hub.request('status_update', { payload: { status: 'sleepy' } });
      } catch (e) {
        r.status = e.code;
      }
      r.info = await window.hub.request('room_info', { room_id: 'live' });
      return r;
    });
    assert.equal(out.chat.name, 'LuahubError');
    assert.equal(out.chat.code, 'not_in_room');
    assert.equal(out.chat.frameType, 'error');
    assert.ok(out.chat.message.length > 0);
    assert.equal(out.status, 'bad_message');
    assert.equal(out.info.type, 'ack');
    assert.equal(out.info.room_id, 'live');
    assert.deepEqual(problems.filter((p) => !/WebSocket/.test(p)), []);
  });
});
