// browser.mjs: Debian's Chromium driven by playwright-core, and the chat
// page (examples/chat) opened as a user, for the tests in this folder.
import { chromium } from 'playwright-core';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

export function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

// Console errors, page errors and CSP violations of a page go to problems.
export function watch(page, name, problems) {
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`${name}: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`${name}: ${e.message}`));
  return page;
}

// The chat page as `name` at base (http://127.0.0.1:PORT), in its own
// browser context (its own storage) unless a context is given (a second
// tab of the same user), joined to room.
export async function openChat(browser, problems, name, base, { room = 'lobby', context, viewport } = {}) {
  const ctx = context ?? await browser.newContext({ viewport: viewport ?? { width: 1100, height: 720 } });
  const page = watch(await ctx.newPage(), name, problems);
  await page.goto(`${base}/`);
  await page.getByTestId('name').fill(name);
  await page.getByTestId('room').fill(room);
  await page.getByTestId('join').click();
  await page.locator('[data-testid=state][data-state=open]').waitFor({ timeout: 5000 });
  await page.locator(`[data-testid=rooms] li[data-room="${room}"]`).waitFor({ timeout: 5000 });
  return page;
}

export const member = (page, user) => page.locator(`[data-testid=members] li[data-user="${user}"]`);
export const line = (page, text) => page.getByTestId('messages').locator('li', { hasText: text });
