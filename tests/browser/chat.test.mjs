// The example chat page (examples/chat) in a real browser, Debian's
// Chromium driven by playwright-core, against the real server.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { Server } from '../integration/lib/harness.mjs';
import { startCluster } from '../integration/lib/redis.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

// The page as `name` on the server at port, joined to the lobby.
async function openPage(browser, problems, name, port) {
  const page = await browser.newPage();
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`${name}: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`${name}: ${e.message}`));
  await page.goto(`http://127.0.0.1:${port}/`);
  await page.getByTestId('name').fill(name);
  await page.getByTestId('room').fill('lobby');
  await page.getByTestId('join').click();
  await page.getByTestId('state').filter({ hasText: 'online' }).waitFor({ timeout: 5000 });
  return page;
}

describe('example chat page', () => {
  let server;
  let browser;
  const problems = [];

  const openAs = (name) => openPage(browser, problems, name, server.port);

  before(async () => {
    server = await new Server().start();
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('two people chat, see each other, typing and presence', async () => {
    const alice = await openAs('alice');
    const bob = await openAs('bob');
    const member = (page, user) => page.locator(`[data-testid=members] li[data-user="${user}"]`);

    await member(alice, 'bob').waitFor({ timeout: 5000 });
    await member(bob, 'alice').waitFor({ timeout: 5000 });

    await alice.getByTestId('text').fill('hello bob');
    await alice.getByTestId('send').click();
    const line = bob.getByTestId('messages').locator('li', { hasText: 'hello bob' });
    await line.waitFor({ timeout: 5000 });
    assert.match(await line.textContent(), /#1 .*alice.*hello bob/);

    await bob.getByTestId('text').pressSequentially('hi', { delay: 20 });
    await alice.getByTestId('typing').filter({ hasText: 'bob is typing' }).waitFor({ timeout: 5000 });

    await bob.getByTestId('status').selectOption('away');
    await alice.locator('[data-testid=members] li[data-user="bob"][data-status="away"]').waitFor({ timeout: 5000 });

    // A hostile name is shown as text, never run as markup.
    await alice.getByTestId('text').fill('<img src=x onerror=alert(1)>');
    await alice.getByTestId('send').click();
    await bob.getByTestId('messages').locator('li', { hasText: '<img src=x' }).waitFor({ timeout: 5000 });
    assert.equal(await bob.locator('[data-testid=messages] img').count(), 0);

    await alice.screenshot({ path: '/tmp/luahub-chat.png' });
    await bob.close();
    await member(alice, 'bob').waitFor({ state: 'detached', timeout: 5000 });
    assert.deepEqual(problems, [], 'no console errors or CSP violations');
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
    const alice = await openPage(browser, problems, 'alice', n1.port);
    const bob = await openPage(browser, problems, 'bob', n2.port);
    const member = (page, user) => page.locator(`[data-testid=members] li[data-user="${user}"]`);
    await member(alice, 'bob').waitFor({ timeout: 5000 });
    await member(bob, 'alice').waitFor({ timeout: 5000 });
    await alice.getByTestId('text').fill('hello from node 1');
    await alice.getByTestId('send').click();
    const line = bob.getByTestId('messages').locator('li', { hasText: 'hello from node 1' });
    await line.waitFor({ timeout: 5000 });
    assert.match(await line.textContent(), /#1 .*alice.*hello from node 1/);
    await bob.getByTestId('text').pressSequentially('hi', { delay: 20 });
    await alice.getByTestId('typing').filter({ hasText: 'bob is typing' }).waitFor({ timeout: 5000 });
    await bob.getByTestId('status').selectOption('away');
    await alice.locator('[data-testid=members] li[data-user="bob"][data-status="away"]').waitFor({ timeout: 5000 });
    await bob.close();
    await member(alice, 'bob').waitFor({ state: 'detached', timeout: 5000 });
    assert.deepEqual(problems, [], 'no console errors');
  });
});
