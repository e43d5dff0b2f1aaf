// luahub chat: the example page, built on the JavaScript client that the
// server serves at /luahub.js (docs/client.md). Rooms, direct messages,
// history, unread counts, typing, presence, and any frame type a handler
// sends shown as it is. No framework, no build step; user text only ever
// goes into textContent.
import { connect } from '/luahub.js';

const $ = (id) => document.getElementById(id);
const KNOWN = new Set(['welcome', 'ack', 'error', 'pong', 'chat', 'typing', 'presence', 'user_joined', 'user_left']);

let hub = null;
let me = '';
const convs = new Map(); // key ('room:NAME' or 'dm:USER[,USER…]') -> conversation
let active = null;

// An element with text children (strings) and element children.
function el(tag, cls, ...children) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  for (const c of children) e.append(c instanceof Node ? c : String(c));
  return e;
}

function time(ms) {
  return new Date(ms || Date.now()).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function showError(text) {
  $('error').textContent = text;
  $('error').hidden = !text;
}

// ---- conversations ---------------------------------------------------

function conversation(key) {
  let c = convs.get(key);
  if (c) return c;
  const [kind, name] = [key.slice(0, key.indexOf(':')), key.slice(key.indexOf(':') + 1)];
  const ol = el('ol', 'messages');
  ol.dataset.testid = 'messages';
  ol.setAttribute('aria-live', 'polite');
  c = { key, kind, name, ol, unread: 0, seqs: new Set(), maxSeq: 0, typers: [], members: [], room: null };
  convs.set(key, c);
  renderSidebar();
  return c;
}

function show(key) {
  const c = convs.get(key);
  if (!c) return;
  active = c;
  c.unread = 0;
  $('timeline').replaceChildren(c.ol);
  $('title').textContent = c.kind === 'room' ? `#${c.name}` : `@${c.name}`;
  $('leave').textContent = c.kind === 'room' ? 'Leave' : 'Close';
  document.body.classList.remove('nav-open');
  $('menu').setAttribute('aria-expanded', 'false');
  scrollDown(true);
  renderSidebar();
  renderMembers();
  renderTyping();
  showError('');
}

function scrollDown(force) {
  const t = $('timeline');
  if (force || t.scrollHeight - t.scrollTop - t.clientHeight < 120) t.scrollTop = t.scrollHeight;
}

// A line in a conversation: placed by seq when it has one (history and
// live frames meet without a duplicate), else at the end.
function addLine(c, li, seq) {
  if (seq !== undefined) {
    if (c.seqs.has(seq)) return false;
    c.seqs.add(seq);
    li.dataset.seq = seq;
    if (seq > c.maxSeq) {
      c.maxSeq = seq;
      c.ol.append(li);
    } else {
      const after = [...c.ol.children].find((x) => x.dataset.seq && Number(x.dataset.seq) > seq);
      c.ol.insertBefore(li, after ?? null);
    }
  } else {
    c.ol.append(li);
  }
  if (c === active) scrollDown(false);
  return true;
}

function messageLine(f) {
  const meta = el('span', 'meta', `${f.seq !== undefined ? `#${f.seq} ` : ''}${time(f.timestamp)}`);
  if (f.type === 'chat') {
    const li = el('li', 'msg', meta, el('span', 'from', f.from ?? 'server'),
      el('span', 'text', String(f.payload?.text ?? JSON.stringify(f.payload ?? {}))));
    if (f.from === me) li.classList.add('mine');
    return li;
  }
  return genericLine(f);
}

// A frame of a type this page does not know (a new handler's): shown as
// it came, so a prototype needs no change here.
function genericLine(f) {
  const rest = { ...f };
  for (const k of ['type', 'room_id', 'from', 'seq', 'timestamp', 'id']) delete rest[k];
  const li = el('li', 'generic', el('span', 'meta', time(f.timestamp)), el('span', 'type', f.type),
    el('span', 'from', f.from ?? 'server'), el('code', 'payload', JSON.stringify(rest.payload ?? rest)));
  li.dataset.type = f.type;
  return li;
}

function notice(c, text, cls = 'notice') {
  addLine(c, el('li', cls, text));
}

function bump(c, f) {
  if (c === active && !document.hidden) return;
  if (f.from === me) return;
  c.unread++;
  renderSidebar();
}

// ---- rooms -------------------------------------------------------------

async function joinRoom(name, focus) {
  const key = `room:${name}`;
  const c = conversation(key);
  if (focus) show(key);
  if (c.room) return;
  try {
    c.room = await hub.join(name, {
      onMessage(f) {
        if (addLine(c, messageLine(f), f.seq)) bump(c, f);
      },
      onReset(info) {
        const first = info.since + 1;
        const lastLost = info.seq - info.messages;
        const text = info.epochChanged || info.since === null
          ? 'The room started over while you were away: earlier messages are gone.'
          : `Missed while you were away and no longer kept: ${first === lastLost ? `message #${first}`
            : `messages #${first} to #${lastLost}`}.`;
        const li = el('li', 'gap', text);
        li.dataset.testid = 'gap';
        addLine(c, li);
      },
      onEvent(f) {
        if (f.type === 'user_joined') notice(c, `${f.from} joined`);
        else if (f.type === 'user_left') notice(c, `${f.from} left`);
        else if (f.type !== 'typing') addLine(c, genericLine(f));
      },
      onTyping(users) {
        c.typers = users;
        if (c === active) renderTyping();
      },
      onMembers(members) {
        // A room past --max-listed-members lists nobody (and tells no
        // joins or leaves): its first page stands in.
        const shown = members
          ? Promise.resolve(members)
          : hub.room(name).listMembers({ limit: 100 }).then((p) => p.members);
        shown.then((list) => {
          c.members = list;
          hub.subscribe(list).catch(() => {});
          if (c === active) renderMembers();
        }).catch(() => {});
      },
    });
    saveRooms();
    const h = await c.room.history({ limit: 50 });
    for (const f of h.messages) addLine(c, messageLine(f), f.seq);
    if (c === active) scrollDown(true);
  } catch (e) {
    showError(`Could not join #${name}: ${e.message}`);
    if (!c.room) closeConversation(c);
  }
}

function closeConversation(c) {
  convs.delete(c.key);
  if (c.kind === 'room') {
    c.room?.leave().catch((e) => showError(e.message));
    saveRooms();
  }
  if (active === c) {
    active = null;
    const next = convs.keys().next();
    if (!next.done) show(next.value);
    else {
      $('timeline').replaceChildren();
      $('title').textContent = '';
      renderMembers();
      renderTyping();
    }
  }
  renderSidebar();
}

function saveRooms() {
  const rooms = [...convs.values()].filter((c) => c.kind === 'room').map((c) => c.name);
  localStorage.setItem('luahub.rooms', JSON.stringify(rooms));
}

// ---- direct messages ---------------------------------------------------

function dmKey(f) {
  if (Array.isArray(f.to)) {
    const people = [...new Set([...f.to, f.from])].filter((u) => u !== me).sort();
    return `dm:${people.join(',')}`;
  }
  return `dm:${f.from === me ? f.to : f.from}`;
}

function openDm(user, focus) {
  const c = conversation(`dm:${user}`);
  hub.subscribe(user.split(',')).catch(() => {});
  if (focus) show(c.key);
  return c;
}

function direct(f) {
  const c = openDm(dmKey(f).slice(3), false);
  addLine(c, messageLine(f));
  bump(c, f);
}

// ---- rendering -----------------------------------------------------------

function dot(user) {
  const d = el('span', 'dot');
  d.dataset.presenceUser = user;
  d.dataset.status = statusOf(user);
  return d;
}

function statusOf(user) {
  return hub?.presenceOf(user) ?? 'online';
}

function renderSidebar() {
  const rooms = [];
  const dms = [];
  let unread = 0;
  for (const c of convs.values()) {
    const open = el('button', 'open', c.kind === 'room' ? `#${c.name}` : c.name);
    open.type = 'button';
    open.addEventListener('click', () => show(c.key));
    const li = el('li', c === active ? 'active' : '');
    if (c.kind === 'room') li.dataset.room = c.name;
    else {
      li.dataset.user = c.name;
      li.dataset.status = statusOf(c.name);
      li.append(dot(c.name));
    }
    li.append(open);
    if (c.unread) {
      const badge = el('span', 'badge', c.unread);
      badge.dataset.testid = 'unread';
      badge.title = `${c.unread} unread`;
      li.append(badge);
      unread += c.unread;
    }
    (c.kind === 'room' ? rooms : dms).push(li);
  }
  $('rooms').replaceChildren(...rooms);
  $('dms').replaceChildren(...dms);
  document.title = unread ? `(${unread}) luahub chat` : 'luahub chat';
}

function renderMembers() {
  const c = active;
  const users = !c ? [] : c.kind === 'room' ? c.members : [me, ...c.name.split(',')];
  $('members').replaceChildren(...[...new Set(users)].sort().map((user) => {
    const li = el('li', '', dot(user));
    li.dataset.user = user;
    li.dataset.status = statusOf(user);
    const name = el('button', 'name', user === me ? `${user} (you)` : user);
    name.type = 'button';
    name.disabled = user === me;
    name.title = user === me ? '' : `Write to ${user}`;
    name.addEventListener('click', () => openDm(user, true));
    li.append(name, el('span', 'status-text', statusOf(user)));
    return li;
  }));
}

function renderTyping() {
  const names = active?.kind === 'room' ? active.typers : [];
  $('typing').textContent = names.length === 0 ? ''
    : `${names.join(', ')} ${names.length === 1 ? 'is' : 'are'} typing…`;
}

function renderPresence(user, status) {
  for (const e of document.querySelectorAll('[data-presence-user]')) {
    if (e.dataset.presenceUser === user) e.dataset.status = status;
  }
  for (const li of document.querySelectorAll('#members li, #dms li')) {
    if (li.dataset.user !== user) continue;
    li.dataset.status = status;
    const text = li.querySelector('.status-text');
    if (text) text.textContent = status;
  }
  if (user === me) {
    $('my-dot').dataset.status = status;
    $('status').value = status;
  }
}

function renderState(state, detail) {
  const s = $('state');
  s.dataset.state = state;
  if (state === 'open') s.textContent = 'connected';
  else if (state === 'connecting') s.textContent = 'connecting…';
  else if (detail.reconnect) s.textContent = `offline, retrying in ${Math.ceil(detail.delay / 1000)} s`;
  else s.textContent = 'disconnected';
  if (state === 'closed' && detail.code === 4001) showError('The server refused this name.');
}

// ---- sending -------------------------------------------------------------

// "/type {json}" or "/type text" sends a frame of any type: a handler
// being prototyped is usable from here before the page knows it.
async function command(c, text) {
  const m = text.match(/^\/([A-Za-z0-9_]{1,64})(?:\s+([\s\S]*))?$/);
  if (!m) throw new Error('a command is /type followed by a JSON object or text');
  const [, type, rest = ''] = m;
  let payload = {};
  if (rest.trim()) {
    try {
      payload = JSON.parse(rest);
    } catch {
      payload = { text: rest };
    }
    if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) payload = { value: payload };
  }
  const where = c.kind === 'room' ? { room_id: c.name } : { to: c.name.includes(',') ? c.name.split(',') : c.name };
  const ack = await hub.request(type, { ...where, payload });
  const { type: _t, id: _i, ...fields } = ack;
  notice(c, `/${type}: ok ${JSON.stringify(fields)}`);
}

async function send(text) {
  const c = active;
  if (!c) return;
  if (text.startsWith('/')) return command(c, text);
  if (c.kind === 'room') {
    if (c.room) await c.room.send({ text });
    else await hub.request('chat', { room_id: c.name, payload: { text } });
    return;
  }
  const to = c.name.includes(',') ? c.name.split(',') : c.name;
  const ack = await hub.sendTo(to, { text });
  // The server sends a direct message to the sender's other connections,
  // not back to this one.
  addLine(c, messageLine({ type: 'chat', from: me, to, payload: { text }, timestamp: Date.now() }));
  return ack;
}

// ---- starting ------------------------------------------------------------

function start(name, room) {
  me = name;
  localStorage.setItem('luahub.name', me);
  $('login').hidden = true;
  $('app').hidden = false;
  $('me').hidden = false;
  $('menu').hidden = false;
  $('me-name').textContent = me;
  hub = connect('/ws', { user: me });
  hub.on('state', renderState);
  hub.on('presence', (f) => renderPresence(f.payload.user_id, f.payload.status));
  hub.on('chat', (f) => { if (typeof f.room_id !== 'string') direct(f); });
  hub.on('error', (f) => showError(`${f.code}: ${f.message}`));
  hub.on('*', (f) => {
    if (KNOWN.has(f.type) || (typeof f.room_id === 'string' && hub.room(f.room_id))) return;
    // A frame of a new type, for no room of ours: in its sender's
    // conversation, else in the one open.
    const c = f.from && f.from !== me ? openDm(f.from, false) : active;
    if (c) {
      addLine(c, genericLine(f));
      bump(c, f);
    }
  });
  // This user's own status, also when another tab of theirs changes it.
  hub.subscribe([me]).catch(() => {});
  let saved = [];
  try {
    saved = JSON.parse(localStorage.getItem('luahub.rooms') || '[]');
  } catch { /* none */ }
  for (const r of saved) if (typeof r === 'string' && r !== room) joinRoom(r, false);
  joinRoom(room, true);
}

$('login').addEventListener('submit', (ev) => {
  ev.preventDefault();
  start($('name').value.trim(), $('room').value.trim() || 'lobby');
  $('text').focus();
});

$('send').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const text = $('text').value;
  if (!text.trim()) return;
  showError('');
  send(text).then(() => { if ($('text').value === text) $('text').value = ''; })
    .catch((e) => showError(e.code === 'not_found' ? `${active?.name} is not connected now` : e.message));
});

$('text').addEventListener('input', () => {
  if (active?.kind === 'room' && active.room) active.room.typing();
});

$('status').addEventListener('change', () => {
  const status = $('status').value;
  hub.setStatus(status)
    .then(() => renderPresence(me, status))
    .catch((e) => showError(e.message));
});

$('join-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const name = $('join-name').value.trim();
  if (!name) return;
  $('join-name').value = '';
  joinRoom(name, true);
});

$('dm-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const user = $('dm-name').value.trim();
  if (!user || user === me) return;
  $('dm-name').value = '';
  openDm(user, true);
});

$('leave').addEventListener('click', () => { if (active) closeConversation(active); });

$('menu').addEventListener('click', () => {
  const open = document.body.classList.toggle('nav-open');
  $('menu').setAttribute('aria-expanded', String(open));
});

document.addEventListener('visibilitychange', () => {
  if (!document.hidden && active?.unread) {
    active.unread = 0;
    renderSidebar();
  }
});

$('name').value = localStorage.getItem('luahub.name') || '';
