// Reload with SIGHUP and shutdown with SIGTERM.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Client, ROOT, Server, sleep, tempScripts } from './lib/harness.mjs';

describe('SIGHUP reload', () => {
  let server;
  let dir;
  let a;
  let b;
  let reloads = 0;
  // Sends SIGHUP and waits for the log line of its outcome.
  async function reload() {
    reloads++;
    const before = (server.log.match(/reload(ed| failed)/g) || []).length;
    server.signal('SIGHUP');
    for (let t = 0; t < 300; t++) {
      if ((server.log.match(/reload(ed| failed)/g) || []).length > before) return;
      await sleep(10);
    }
    throw new Error('no reload outcome in the log');
  }

  before(async () => {
    dir = tempScripts();
    server = await new Server([], { scripts: dir }).start();
    a = await Client.connect(server, 'hup-a');
    b = await Client.connect(server, 'hup-b');
    await a.request({ type: 'join_room', room_id: 'hup' });
    await b.request({ type: 'join_room', room_id: 'hup' });
    await b.request({ type: 'presence_subscribe', payload: { user_ids: ['hup-a'] } });
    await a.request({ type: 'chat', room_id: 'hup', payload: { n: 1 } });
  });
  after(() => server.stop());

  test('a new handler file is a new message type, on the same connection', async () => {
    assert.equal((await a.request({ type: 'echo' })).code, 'unknown_type');
    fs.writeFileSync(path.join(dir, 'echo.lua'),
      'return function(conn, msg) return { echo = msg.payload, user = conn.user } end\n');
    await reload();
    const ack = await a.request({ type: 'echo', payload: { x: 1 } });
    assert.deepEqual(ack.echo, { x: 1 });
    assert.equal(ack.user, 'hup-a');
    assert.equal(a.ws.readyState, 1, 'the connection stayed open');
    assert.match(server.log, /reloaded \d+ handlers in [\d.]+ ms \(added echo; removed -\)/);
  });

  test('a broken handler keeps the old set serving; the log names file and line', async () => {
    fs.writeFileSync(path.join(dir, 'broken.lua'), 'return function(conn, msg)\n  if then\nend\n');
    await reload();
    assert.match(server.log, /reload failed.*broken\.lua:2/);
    // The old set: echo still works, chat still works, broken is unknown.
    assert.deepEqual((await a.request({ type: 'echo', payload: { y: 2 } })).echo, { y: 2 });
    assert.equal((await a.request({ type: 'broken' })).code, 'unknown_type');
    const ack = await a.request({ type: 'chat', room_id: 'hup', payload: { n: 2 } });
    assert.equal(ack.seq, 2);
  });

  test('a broken module in scripts/lib fails the whole reload', async () => {
    fs.unlinkSync(path.join(dir, 'broken.lua'));
    const good = fs.readFileSync(path.join(dir, 'lib/validate.lua'), 'utf8');
    fs.writeFileSync(path.join(dir, 'lib/validate.lua'), 'this is not lua\n');
    await reload();
    assert.match(server.log, /reload failed.*validate\.lua/);
    assert.equal((await a.request({ type: 'room_info', room_id: 'hup' })).type, 'ack');
    fs.writeFileSync(path.join(dir, 'lib/validate.lua'), good);
  });

  test('a removed handler answers unknown_type', async () => {
    fs.unlinkSync(path.join(dir, 'echo.lua'));
    await reload();
    assert.match(server.log, /reloaded \d+ handlers in [\d.]+ ms \(added -; removed echo\)/);
    assert.equal((await a.request({ type: 'echo' })).code, 'unknown_type');
  });

  test('rooms, seq and presence survive reloads', async () => {
    const info = await a.request({ type: 'room_info', room_id: 'hup' });
    assert.deepEqual(info.members, ['hup-a', 'hup-b']);
    const ack = await a.request({ type: 'chat', room_id: 'hup', payload: { n: 3 } });
    assert.equal(ack.seq, 3);
    const m = await b.next((f) => f.type === 'chat' && f.payload.n === 3);
    assert.equal(m.seq, 3);
    await a.request({ type: 'status_update', payload: { status: 'busy' } });
    const ev = await b.next((f) => f.type === 'presence');
    assert.deepEqual(ev.payload, { user_id: 'hup-a', status: 'busy' });
    assert.ok(reloads >= 4);
  });
});

describe('SIGTERM', () => {
  test('every client is closed with 1001 and the process exits 0', async () => {
    const server = await new Server().start();
    const clients = [];
    for (let i = 0; i < 5; i++) clients.push(await Client.connect(server, `term-${i % 3}`));
    server.signal('SIGTERM');
    const codes = await Promise.all(clients.map((c) => c.closed(3000)));
    for (const { code, reason } of codes) {
      assert.equal(code, 1001);
      assert.match(reason, /shutting down/);
    }
    const { code } = await server.exited;
    assert.equal(code, 0);
    await server.stop();
  });

  test('SIGINT does the same', async () => {
    const server = await new Server().start();
    const c = await Client.connect(server, 'int');
    server.signal('SIGINT');
    assert.equal((await c.closed()).code, 1001);
    assert.equal((await server.exited).code, 0);
    await server.stop();
  });
});

describe('hub.store', () => {
  test('survives SIGHUP; a room\'s scope goes away with the room', async () => {
    const dir = tempScripts();
    fs.copyFileSync(path.join(ROOT, 'examples/handlers/react.lua'), path.join(dir, 'react.lua'));
    const server = await new Server([], { scripts: dir }).start();
    try {
      const a = await Client.connect(server, 'st-a');
      const b = await Client.connect(server, 'st-b');
      for (const c of [a, b]) await c.request({ type: 'join_room', room_id: 'st' });
      await a.request({ type: 'chat', room_id: 'st', payload: { text: 'x' } });
      const react = { type: 'react', room_id: 'st', payload: { seq: 1, emoji: '+1' } };
      assert.equal((await a.request(react)).count, 1);
      const before = (server.log.match(/reloaded/g) || []).length;
      server.signal('SIGHUP');
      while ((server.log.match(/reloaded/g) || []).length === before) await sleep(10);
      assert.equal((await b.request(react)).count, 2, 'the count survived the reload');
      // Empty the room: it is deleted, and its stored counts with it.
      await a.request({ type: 'leave_room', room_id: 'st' });
      await b.request({ type: 'leave_room', room_id: 'st' });
      await a.request({ type: 'join_room', room_id: 'st' });
      await a.request({ type: 'chat', room_id: 'st', payload: { text: 'y' } });
      assert.equal((await a.request(react)).count, 1, 'a new room starts afresh');
      await a.close();
      await b.close();
    } finally {
      await server.stop();
    }
  });
});

describe('timers', () => {
  test('hub.after fires once, hub.every repeats, cancel stops, a reload cancels closures and says so', async () => {
    const dir = tempScripts();
    fs.writeFileSync(path.join(dir, 'timers.lua'), `
local hub = require "hub"
return function(conn, msg)
  local what = msg.payload.what
  if what == "after" then
    hub.after(50, function() hub.send(conn.id, { type = "fired", n = 1 }) end)
  elseif what == "every" then
    local n = 0
    return { id = hub.every(30, function()
      n = n + 1
      hub.send(conn.id, { type = "tick", n = n })
    end) }
  elseif what == "cancel" then
    return { cancelled = hub.cancel(msg.payload.id) }
  elseif what == "broken" then
    hub.after(10, function() error("timer boom") end)
  end
end
`);
    const server = await new Server([], { scripts: dir }).start();
    try {
      const c = await Client.connect(server, 'tm');
      await c.request({ type: 'timers', payload: { what: 'after' } });
      assert.equal((await c.next((m) => m.type === 'fired', 2000)).n, 1);
      await sleep(150);
      assert.equal(c.seen('fired').length, 0, 'after fires once');

      const { id } = await c.request({ type: 'timers', payload: { what: 'every' } });
      await c.next((m) => m.type === 'tick' && m.n === 3, 2000);
      assert.equal((await c.request({ type: 'timers', payload: { what: 'cancel', id } })).cancelled, true);
      await sleep(100);
      c.frames = c.frames.filter((m) => m.type !== 'tick');
      await sleep(150);
      assert.equal(c.seen('tick').length, 0, 'cancel stops it');

      // An error in a timer is logged and contained.
      await c.request({ type: 'timers', payload: { what: 'broken' } });
      await server.waitLog(/timer \d+ failed: .*timer boom/);
      await c.alive();

      await c.request({ type: 'timers', payload: { what: 'every' } });
      await c.next((m) => m.type === 'tick', 2000);
      server.signal('SIGHUP');
      await server.waitLog(/reloaded/);
      await sleep(100);
      c.frames = c.frames.filter((m) => m.type !== 'tick');
      await sleep(200);
      assert.equal(c.seen('tick').length, 0, 'the reload cancelled the old state\'s closures');
      assert.match(server.log, /WARN.*the reload cancelled 1 timer\(s\) that call a function .*hub\.after\(ms, "module\.function", arg\)/i);
      await c.close();
    } finally {
      await server.stop();
    }
  });
});

describe('hooks', () => {
  test('on_connect refuses (4003) or attaches metadata; on_message filters; on_disconnect sees the end', async () => {
    const dir = tempScripts();
    fs.mkdirSync(path.join(dir, 'hooks'));
    fs.copyFileSync(path.join(ROOT, 'examples/handlers/hooks/on_message.lua'), path.join(dir, 'hooks/on_message.lua'));
    for (const lib of ['wordfilter.lua', 'slowmode.lua']) {
      fs.copyFileSync(path.join(ROOT, 'examples/handlers/lib', lib), path.join(dir, 'lib', lib));
    }
    fs.copyFileSync(path.join(ROOT, 'examples/handlers/slow_mode.lua'), path.join(dir, 'slow_mode.lua'));
    fs.writeFileSync(path.join(dir, 'hooks/on_connect.lua'), `
return function(conn)
  if conn.user == "banned" then return false, "you are banned" end
  if conn.user == "boss" then return { role = "admin" } end
end
`);
    fs.writeFileSync(path.join(dir, 'hooks/on_disconnect.lua'), `
local hub = require "hub"
return function(conn, info)
  hub.log("info", "bye %s code=%d role=%s", conn.user, info.code, conn.meta and conn.meta.role or "-")
end
`);
    fs.writeFileSync(path.join(dir, 'whoami.lua'), 'return function(conn) return { role = conn.meta and conn.meta.role or "none" } end\n');
    const server = await new Server([], { scripts: dir }).start();
    try {
      const banned = await Client.connect(server, 'banned', { expectWelcome: false });
      const { code, reason } = await banned.closed();
      assert.equal(code, 4003);
      assert.equal(reason, 'you are banned');
      assert.equal(banned.seen('welcome').length, 0);

      const boss = await Client.connect(server, 'boss');
      const pleb = await Client.connect(server, 'pleb');
      assert.equal((await boss.request({ type: 'whoami' })).role, 'admin');
      assert.equal((await pleb.request({ type: 'whoami' })).role, 'none');

      for (const c of [boss, pleb]) await c.request({ type: 'join_room', room_id: 'hk' });
      await boss.request({ type: 'chat', room_id: 'hk', payload: { text: 'oh darn it' } });
      const m = await pleb.next((f) => f.type === 'chat');
      assert.equal(m.payload.text, 'oh d*** it');
      const err = await pleb.request({ type: 'chat', room_id: 'hk', payload: { text: 'darn' } });
      assert.equal(err.code, 'forbidden');

      // Slow mode, enforced by the same hook.
      assert.equal((await boss.request({ type: 'slow_mode', room_id: 'hk', payload: { seconds: 30 } })).seconds, 30);
      assert.equal((await pleb.request({ type: 'chat', room_id: 'hk', payload: { text: 'one' } })).type, 'ack');
      const limited = await pleb.request({ type: 'chat', room_id: 'hk', payload: { text: 'two' } });
      assert.equal(limited.code, 'rate_limited');

      // The log lists the hooks; a misspelled hook file is named, not loaded.
      assert.match(server.log, /loaded \d+ handlers: .*; hooks: on_connect, on_message, on_disconnect\n/);
      fs.writeFileSync(path.join(dir, 'hooks/on_conect.lua'), 'return function() return false end\n');
      fs.writeFileSync(path.join(dir, 'hooks/on_message_spec.lua'), 'describe("x", function() end)\n');

      // The metadata survives a reload (it is kept in C).
      server.signal('SIGHUP');
      await server.waitLog(/reloaded/);
      assert.equal((await boss.request({ type: 'whoami' })).role, 'admin');
      assert.match(server.log, /reloaded .*; hooks: on_connect, on_message, on_disconnect\n/);
      assert.match(server.log, /WARN.*hooks\/on_conect\.lua is not a hook and not loaded \(the hooks are on_connect, on_message, on_disconnect\)/i);
      assert.doesNotMatch(server.log, /on_message_spec/);

      await boss.close();
      await server.waitLog(/bye boss code=1005 role=admin/);
      pleb.ws.close(4321, 'gone fishing');
      await pleb.closed();
      await server.waitLog(/bye pleb code=4321 role=-/);
      const ghost = await Client.connect(server, 'ghost');
      ghost.ws.terminate(); // no close frame: the TCP connection just ends
      await server.waitLog(/bye ghost code=1006 role=-/);
    } finally {
      await server.stop();
    }
  });
});

describe('on_message hook: rewritten and dropped messages', () => {
  test('a rewrite keeps the client\'s id (ack with seq); a drop with an id gets an empty ack', async () => {
    const dir = tempScripts();
    fs.mkdirSync(path.join(dir, 'hooks'));
    fs.writeFileSync(path.join(dir, 'hooks/on_message.lua'), `
return function(conn, msg)
  if msg.type == "loud" then
    -- A new table: the client's id is not in it.
    return { type = "chat", room_id = msg.room_id, payload = { text = msg.payload.text:upper() } }
  end
  if msg.type == "chat" and msg.payload and msg.payload.drop then return false end
end
`);
    const server = await new Server([], { scripts: dir }).start();
    try {
      const a = await Client.connect(server, 'rw-a');
      const b = await Client.connect(server, 'rw-b');
      for (const c of [a, b]) await c.request({ type: 'join_room', room_id: 'rw' });
      const ack = await a.request({ type: 'loud', id: 'L1', room_id: 'rw', payload: { text: 'hi' } });
      assert.deepEqual(ack, { type: 'ack', id: 'L1', seq: 1 });
      const m = await b.next((f) => f.type === 'chat');
      assert.equal(m.payload.text, 'HI');
      const dropped = await a.request({ type: 'chat', id: 'D1', room_id: 'rw', payload: { drop: true } });
      assert.deepEqual(dropped, { type: 'ack', id: 'D1' });
      a.send({ type: 'chat', room_id: 'rw', payload: { drop: true } }); // no id: no answer
      assert.equal((await a.request({ type: 'chat', room_id: 'rw', payload: { text: 'next' } })).seq, 2);
      await sleep(50);
      assert.equal(a.seen('ack').length, 0, 'one answer per frame');
      assert.equal(a.seen('error').length, 0);
      assert.deepEqual(b.seen('chat').map((f) => f.seq), [2], 'the dropped messages reached nobody');
      await a.close();
      await b.close();
    } finally {
      await server.stop();
    }
  });
});

describe('--watch', () => {
  test('a change under scripts/ reloads without a signal', async () => {
    const dir = tempScripts();
    const server = await new Server(['--watch'], { scripts: dir }).start();
    try {
      const c = await Client.connect(server, 'watcher');
      assert.equal((await c.request({ type: 'hello' })).code, 'unknown_type');
      fs.writeFileSync(path.join(dir, 'hello.lua'), 'return function() return { hi = true } end\n');
      await server.waitLog(/reloaded \d+ handlers .*added hello/, 3000);
      assert.equal((await c.request({ type: 'hello' })).hi, true);
      fs.writeFileSync(path.join(dir, 'lib/validate.lua'), 'syntax error here\n');
      await server.waitLog(/reload failed.*validate\.lua/, 3000);
      assert.equal((await c.request({ type: 'hello' })).hi, true, 'the old set still serves');
      await c.close();
    } finally {
      await server.stop();
    }
  });
});

describe('named timers', () => {
  // Waits for the next reload's outcome after an action.
  async function reloaded(server, action) {
    const before = (server.log.match(/reload(ed| failed)/g) || []).length;
    await action();
    for (let t = 0; t < 300; t++) {
      if ((server.log.match(/reload(ed| failed)/g) || []).length > before) return;
      await sleep(10);
    }
    throw new Error(`no reload outcome in the log:\n${server.log}`);
  }

  test('a poll\'s auto-close set with hub.after survives a --watch reload', async () => {
    const dir = tempScripts();
    fs.copyFileSync(path.join(ROOT, 'examples/handlers/poll.lua'), path.join(dir, 'poll.lua'));
    const polls = fs.readFileSync(path.join(ROOT, 'examples/handlers/lib/polls.lua'), 'utf8');
    fs.writeFileSync(path.join(dir, 'lib/polls.lua'), polls);
    const server = await new Server(['--watch'], { scripts: dir }).start();
    try {
      const a = await Client.connect(server, 'poll-a');
      await a.request({ type: 'join_room', room_id: 'pl' });
      const open = await a.request({ type: 'poll', room_id: 'pl', payload: { question: 'Lunch?', options: ['pizza', 'sushi'], seconds: 1 } });
      assert.equal(open.poll, 1);
      assert.deepEqual((await a.request({ type: 'poll', room_id: 'pl', payload: { poll: 1, vote: 2 } })).votes, [0, 1]);
      // Edit the module the timer names: the new code is what closes the poll.
      await reloaded(server, () => fs.writeFileSync(path.join(dir, 'lib/polls.lua'),
        polls.replace('type = "poll_closed",', 'type = "poll_closed", edited = true,')));
      assert.match(server.log, /1 named timers carried over to the new state/);
      const closed = await a.next((m) => m.type === 'poll_closed', 3000);
      assert.equal(closed.edited, true, 'the new state ran the timer');
      assert.deepEqual(closed.payload.votes, [0, 1]);
      assert.deepEqual(closed.payload.options, ['pizza', 'sushi']);
      await a.close();
    } finally {
      await server.stop();
    }
  });

  test('hub.every by name keeps its id across SIGHUP; a name that stops resolving is cancelled with a warning', async () => {
    const dir = tempScripts();
    const lib = `
local hub = require "hub"
local M = {}
function M.tick(arg) hub.send(arg.conn, { type = "tick", v = VERSION, n = arg.n }) end
return M
`;
    fs.writeFileSync(path.join(dir, 'lib/ticker.lua'), lib.replace('VERSION', '1'));
    fs.writeFileSync(path.join(dir, 'ticks.lua'), `
local hub = require "hub"
return function(conn, msg)
  local p = msg.payload
  if p.cancel then return { cancelled = hub.cancel(p.cancel) } end
  return { timer = hub.every(40, p.name or "ticker.tick", { conn = conn.id, n = 7 }) }
end
`);
    const server = await new Server([], { scripts: dir }).start();
    try {
      const c = await Client.connect(server, 'ticker');
      // A misspelled name fails where it is set.
      const bad = await c.request({ type: 'ticks', payload: { name: 'ticker.tock' } });
      assert.equal(bad.code, 'handler_error');
      assert.match(bad.message, /module 'ticker' has no function 'tock'/);
      const { timer } = await c.request({ type: 'ticks', payload: {} });
      assert.equal((await c.next((m) => m.type === 'tick', 2000)).v, 1);
      fs.writeFileSync(path.join(dir, 'lib/ticker.lua'), lib.replace('VERSION', '2'));
      await reloaded(server, () => server.signal('SIGHUP'));
      const t = await c.next((m) => m.type === 'tick' && m.v === 2, 2000);
      assert.equal(t.n, 7, 'the argument came along');
      // The same id cancels it in the new state.
      assert.equal((await c.request({ type: 'ticks', payload: { cancel: timer } })).cancelled, true);
      await sleep(100);
      c.frames = c.frames.filter((m) => m.type !== 'tick');
      await sleep(150);
      assert.equal(c.seen('tick').length, 0);

      // A timer whose function is gone after a reload is cancelled, named in the log.
      await c.request({ type: 'ticks', payload: {} });
      await c.next((m) => m.type === 'tick', 2000);
      fs.writeFileSync(path.join(dir, 'lib/ticker.lua'), 'return {}\n');
      await reloaded(server, () => server.signal('SIGHUP'));
      await server.waitLog(/WARN.*timer \d+ cancelled: timer 'ticker\.tick': module 'ticker' has no function 'tick'/i);
      await sleep(100);
      c.frames = c.frames.filter((m) => m.type !== 'tick');
      await sleep(150);
      assert.equal(c.seen('tick').length, 0);
      await c.alive();
    } finally {
      await server.stop();
    }
  });
});
