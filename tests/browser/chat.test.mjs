// The example chat page (examples/chat, built on clients/js/luahub.js) in
// a real browser, Debian's Chromium driven by playwright-core, against the
// real server. LUAHUB_SCREENSHOTS=1 writes the screenshots to docs/img
// (checked in); otherwise they go to the temp directory.
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, Client, Server, tempScripts } from '../integration/lib/harness.mjs';
import { Proxy } from '../integration/lib/proxy.mjs';
import { startCluster } from '../integration/lib/redis.mjs';
import { launch, line, member, openChat } from './lib/browser.mjs';

const SHOTS = process.env.LUAHUB_SCREENSHOTS === '1'
  ? path.join(ROOT, 'docs/img') : fs.mkdtempSync(path.join(os.tmpdir(), 'luahub-shots-'));
const shot = (page, name) => page.screenshot({ path: path.join(SHOTS, `chat-${name}.png`) });
const T = { timeout: 5000 };

// The shipped scripts and, as a handler being prototyped, the poll example.
function scriptsWithPoll() {
  const dir = tempScripts();
  fs.copyFileSync(path.join(ROOT, 'examples/handlers/poll.lua'), path.join(dir, 'poll.lua'));
  fs.copyFileSync(path.join(ROOT, 'examples/handlers/lib/polls.lua'), path.join(dir, 'lib/polls.lua'));
  return dir;
}

describe('example chat page', () => {
  let server;
  let browser;
  const problems = [];
  const base = () => `http://127.0.0.1:${server.port}`;

  before(async () => {
    server = await new Server([], { scripts: scriptsWithPoll() }).start();
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });
  // A test that failed half-way leaves no user connected for the next.
  afterEach(async () => {
    for (const ctx of browser.contexts()) await ctx.close();
  });

  test('two users: rooms, unread counts, history, direct messages, typing, a new handler type', async () => {
    const alice = await openChat(browser, problems, 'alice', base());
    const bob = await openChat(browser, problems, 'bob', base());
    await member(alice, 'bob').waitFor(T);
    await member(bob, 'alice').waitFor(T);

    await alice.getByTestId('text').fill('hello bob');
    await alice.getByTestId('send').click();
    await line(bob, 'hello bob').waitFor(T);
    assert.match(await line(bob, 'hello bob').textContent(), /#1 .*alice.*hello bob/);

    await bob.getByTestId('text').pressSequentially('hi', { delay: 20 });
    await alice.getByTestId('typing').filter({ hasText: 'bob is typing' }).waitFor(T);

    // A second room: both join it, bob goes back to the lobby, and what
    // alice says there is counted unread for him until he opens it.
    for (const page of [alice, bob]) {
      await page.getByTestId('join-name').fill('random');
      await page.getByTestId('join-room').click();
      await page.getByTestId('room-title').filter({ hasText: '#random' }).waitFor(T);
    }
    await bob.locator('[data-testid=rooms] li[data-room=lobby] button').click();
    await bob.getByTestId('room-title').filter({ hasText: '#lobby' }).waitFor(T);
    await alice.getByTestId('text').fill('over here');
    await alice.getByTestId('send').click();
    await alice.getByTestId('text').fill('and here');
    await alice.getByTestId('send').click();
    const badge = bob.locator('[data-testid=rooms] li[data-room=random] [data-testid=unread]');
    await badge.filter({ hasText: '2' }).waitFor(T);
    assert.equal(await line(bob, 'over here').count(), 0, 'not shown in the lobby');
    await bob.locator('[data-testid=rooms] li[data-room=random] button').click();
    await line(bob, 'and here').waitFor(T);
    await badge.waitFor({ state: 'detached', ...T });

    // Someone who comes later sees the room's history (the history request).
    const carol = await openChat(browser, problems, 'carol', base());
    await line(carol, 'hello bob').waitFor(T);

    // A direct message: alice opens bob from the members list.
    await member(alice, 'bob').locator('button').click();
    await alice.getByTestId('room-title').filter({ hasText: '@bob' }).waitFor(T);
    await alice.getByTestId('text').fill('psst, bob');
    await alice.getByTestId('send').click();
    await line(alice, 'psst, bob').waitFor(T);
    const dmBadge = bob.locator('[data-testid=dms] li[data-user=alice] [data-testid=unread]');
    await dmBadge.filter({ hasText: '1' }).waitFor(T);
    await bob.locator('[data-testid=dms] li[data-user=alice] button').click();
    await line(bob, 'psst, bob').waitFor(T);
    await bob.getByTestId('text').fill('yes?');
    await bob.getByTestId('send').click();
    await line(alice, 'yes?').waitFor(T);

    // A frame type the page has never heard of (the poll handler, added
    // to the server's scripts): sent with /poll, shown as it is.
    await alice.locator('[data-testid=rooms] li[data-room=lobby] button').click();
    await bob.locator('[data-testid=rooms] li[data-room=lobby] button').click();
    await alice.getByTestId('text').fill('/poll {"question":"Lunch?","options":["pizza","sushi"],"seconds":1}');
    await alice.getByTestId('send').click();
    await line(alice, '/poll: ok').waitFor(T);
    const poll = bob.locator('[data-testid=messages] li[data-type=poll]');
    await poll.waitFor(T);
    const shown = await poll.textContent();
    for (const part of ['poll', 'alice', '"question":"Lunch?"', '"options":["pizza","sushi"]']) {
      assert.ok(shown.includes(part), `${part} in ${shown}`);
    }
    await bob.locator('[data-testid=messages] li[data-type=poll_closed]').waitFor(T);

    // User text is text, never markup.
    await alice.getByTestId('text').fill('<img src=x onerror=alert(1)>');
    await alice.getByTestId('send').click();
    await line(bob, '<img src=x').waitFor(T);
    assert.equal(await bob.locator('[data-testid=messages] img').count(), 0);

    // An error frame shows.
    await alice.getByTestId('text').fill('/no_such_type');
    await alice.getByTestId('send').click();
    await alice.getByTestId('error').filter({ hasText: 'no handler' }).waitFor(T);

    await alice.getByTestId('text').fill('');
    await shot(alice, 'desktop');
    await bob.setViewportSize({ width: 390, height: 760 });
    await shot(bob, 'phone');
    await bob.getByTestId('menu').click();
    await bob.locator('#sidebar').waitFor({ state: 'visible', ...T });
    await shot(bob, 'phone-menu');

    await carol.context().close();
    await member(alice, 'carol').waitFor({ state: 'detached', ...T });
    await alice.context().close();
    await bob.context().close();
    assert.deepEqual(problems, [], 'no console errors or CSP violations');
  });

  test('presence: dots follow the status menu, the user\'s own in every tab of theirs', async () => {
    const alice = await openChat(browser, problems, 'alice', base(), { room: 'p' });
    const bob = await openChat(browser, problems, 'bob', base(), { room: 'p' });
    const dot = (page, user, status) =>
      page.locator(`[data-testid=members] li[data-user="${user}"][data-status="${status}"]`);
    await dot(alice, 'bob', 'online').waitFor(T);

    await bob.getByTestId('status').selectOption('away');
    await dot(alice, 'bob', 'away').waitFor(T);
    await bob.locator('[data-testid=my-dot][data-status=away]').waitFor(T);
    await dot(bob, 'bob', 'away').waitFor(T);

    // A second tab of bob's comes up with his status, and a change there
    // moves the first tab's menu and dots too.
    const bob2 = await openChat(browser, problems, 'bob', base(), { room: 'p', context: bob.context() });
    await bob2.locator('[data-testid=my-dot][data-status=away]').waitFor(T);
    assert.equal(await bob2.getByTestId('status').inputValue(), 'away');
    await bob2.getByTestId('status').selectOption('busy');
    await bob.locator('[data-testid=my-dot][data-status=busy]').waitFor(T);
    await dot(bob, 'bob', 'busy').waitFor(T);
    assert.equal(await bob.getByTestId('status').inputValue(), 'busy');
    await dot(alice, 'bob', 'busy').waitFor(T);
    await shot(alice, 'presence');

    await bob.context().close();
    await member(alice, 'bob').waitFor({ state: 'detached', ...T });
    await alice.context().close();
    assert.deepEqual(problems, [], 'no console errors');
  });
});

describe('example chat page across a failing network', () => {
  let server;
  let proxy;
  let browser;
  const problems = [];

  before(async () => {
    server = await new Server(['--history-size', '3']).start();
    proxy = await new Proxy(server.port).start();
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await proxy?.stop();
    await server?.stop();
  });

  test('a reconnect loses no message; a gap too long for history is marked', async () => {
    // bob reaches the server through the proxy; alice publishes directly.
    const bob = await openChat(browser, problems, 'bob', `http://127.0.0.1:${proxy.port}`);
    const alice = await Client.connect(server, 'alice');
    await alice.request({ type: 'join_room', room_id: 'lobby' });
    const say = (text) => alice.request({ type: 'chat', room_id: 'lobby', payload: { text } });
    const seqsOnPage = () => bob.$$eval('[data-testid=messages] li[data-seq]', (lis) => lis.map((li) => Number(li.dataset.seq)));

    await say('one');
    await line(bob, 'one').waitFor(T);
    // Cut while alice talks: short enough for history (3) to cover it.
    proxy.drop();
    await say('two');
    await say('three');
    await bob.locator('[data-testid=state][data-state=open]').waitFor(T);
    await line(bob, 'three').waitFor(T);
    assert.deepEqual(await seqsOnPage(), [1, 2, 3]);
    assert.equal(await bob.getByTestId('gap').count(), 0);

    // Away for longer than history keeps: a gap marker, then what is left.
    proxy.refuse();
    proxy.drop();
    await bob.locator('[data-testid=state][data-state=closed]').waitFor(T);
    for (const t of ['four', 'five', 'six', 'seven', 'eight']) await say(t);
    proxy.allow();
    await bob.locator('[data-testid=state][data-state=open]').waitFor({ timeout: 20000 });
    await line(bob, 'eight').waitFor(T);
    await bob.getByTestId('gap').waitFor(T);
    assert.match(await bob.getByTestId('gap').textContent(), /messages #4 to #5/);
    assert.deepEqual(await seqsOnPage(), [1, 2, 3, 6, 7, 8]);
    const order = await bob.$$eval('[data-testid=messages] li', (lis) => lis.map((li) => li.dataset.seq ?? li.className));
    assert.ok(order.indexOf('gap') === order.indexOf('6') - 1, `the marker stands before #6: ${order}`);
    await say('nine');
    await line(bob, 'nine').waitFor(T);
    await shot(bob, 'gap');
    await alice.close();
    assert.deepEqual(problems.filter((p) => !/WebSocket/.test(p)), [], 'no errors but the cut sockets');
  });
});

// make run-cluster's promise: two windows on two nodes over one Redis chat
// as on one server.
describe('example chat page on two nodes (--redis)', () => {
  let cl;
  let browser;
  const problems = [];
  before(async () => {
    cl = await startCluster(2);
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await cl?.stop();
  });

  test('a window on each node: members, chat, typing and presence cross nodes', async () => {
    const [n1, n2] = cl.nodes;
    const alice = await openChat(browser, problems, 'alice', `http://127.0.0.1:${n1.port}`);
    const bob = await openChat(browser, problems, 'bob', `http://127.0.0.1:${n2.port}`);
    await member(alice, 'bob').waitFor(T);
    await member(bob, 'alice').waitFor(T);
    await alice.getByTestId('text').fill('hello from node 1');
    await alice.getByTestId('send').click();
    await line(bob, 'hello from node 1').waitFor(T);
    assert.match(await line(bob, 'hello from node 1').textContent(), /#1 .*alice.*hello from node 1/);
    await bob.getByTestId('text').pressSequentially('hi', { delay: 20 });
    await alice.getByTestId('typing').filter({ hasText: 'bob is typing' }).waitFor(T);
    await bob.getByTestId('status').selectOption('away');
    await alice.locator('[data-testid=members] li[data-user="bob"][data-status="away"]').waitFor(T);
    await bob.context().close();
    await member(alice, 'bob').waitFor({ state: 'detached', ...T });
    assert.deepEqual(problems, [], 'no console errors');
  });
});
