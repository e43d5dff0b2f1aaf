// luahub chat: a small client of the luahub protocol (docs/protocol.md).
// No framework, no build step; user text only ever goes into textContent.
'use strict';

const $ = (id) => document.getElementById(id);
const state = {
  ws: null, user: '', room: '', nextId: 1, pending: new Map(),
  members: new Map(), // user -> status
  typers: new Map(),  // user -> timer
  lastTypingSent: 0, backoff: 500, wanted: false,
};

function setState(text) {
  const el = $('state');
  el.textContent = text;
  el.className = 'state ' + text;
}

function showError(text) {
  const el = $('error');
  el.textContent = text;
  el.hidden = !text;
}

// Sends a frame with an id; resolves with its ack, rejects with its error.
function request(frame) {
  const id = state.nextId++;
  state.ws.send(JSON.stringify({ ...frame, id }));
  return new Promise((resolve, reject) => state.pending.set(id, { resolve, reject }));
}

function time(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function addLine(parts, notice) {
  const li = document.createElement('li');
  if (notice) li.className = 'notice';
  for (const [cls, text] of parts) {
    const span = document.createElement('span');
    if (cls) span.className = cls;
    span.textContent = text;
    li.append(span);
  }
  const list = $('messages');
  list.append(li);
  list.scrollTop = list.scrollHeight;
}

function renderMembers() {
  const ul = $('members');
  ul.replaceChildren();
  for (const [user, status] of [...state.members].sort(([a], [b]) => a.localeCompare(b))) {
    const li = document.createElement('li');
    li.dataset.user = user;
    li.dataset.status = status;
    const dot = document.createElement('span');
    dot.className = 'dot ' + status;
    const name = document.createElement('span');
    name.textContent = user === state.user ? `${user} (you)` : user;
    const st = document.createElement('span');
    st.className = 'status-text';
    st.textContent = status;
    li.append(dot, name, st);
    ul.append(li);
  }
}

function renderTyping() {
  const names = [...state.typers.keys()];
  $('typing').textContent = names.length === 0 ? ''
    : `${names.join(', ')} ${names.length === 1 ? 'is' : 'are'} typing…`;
}

async function subscribe(users) {
  if (users.length === 0) return;
  const ack = await request({ type: 'presence_subscribe', payload: { user_ids: users } });
  for (const [user, status] of Object.entries(ack.statuses)) {
    if (state.members.has(user)) state.members.set(user, status);
  }
  renderMembers();
}

const handlers = {
  welcome() {
    setState('online');
    state.backoff = 500;
    join().catch((e) => showError(e.message));
  },
  chat(m) {
    if (m.room_id !== state.room) return;
    addLine([['meta', `#${m.seq} ${time(m.timestamp)}`], ['from', m.from], ['text', String(m.payload?.text ?? '')]]);
    clearTyper(m.from);
  },
  user_joined(m) {
    if (m.room_id !== state.room) return;
    state.members.set(m.from, 'online');
    renderMembers();
    addLine([['', `${m.from} joined`]], true);
    subscribe([m.from]).catch(() => {});
  },
  user_left(m) {
    if (m.room_id !== state.room) return;
    state.members.delete(m.from);
    clearTyper(m.from);
    renderMembers();
    addLine([['', `${m.from} left`]], true);
  },
  typing(m) {
    if (m.room_id !== state.room || m.from === state.user) return;
    clearTimeout(state.typers.get(m.from));
    state.typers.set(m.from, setTimeout(() => clearTyper(m.from), 3000));
    renderTyping();
  },
  presence(m) {
    const { user_id: user, status } = m.payload;
    if (state.members.has(user)) {
      state.members.set(user, status);
      renderMembers();
    }
  },
};

function clearTyper(user) {
  if (!state.typers.has(user)) return;
  clearTimeout(state.typers.get(user));
  state.typers.delete(user);
  renderTyping();
}

async function join() {
  const ack = await request({ type: 'join_room', room_id: state.room });
  // A room past --max-listed-members lists nobody in the ack (and tells
  // no joins or leaves): show its first page instead.
  const members = ack.members
    ?? (await request({ type: 'room_members', room_id: state.room, payload: { limit: 100 } })).members;
  state.members = new Map(members.map((u) => [u, 'online']));
  renderMembers();
  $('room-title').textContent = `#${state.room}`;
  await subscribe(members.filter((u) => u !== state.user));
  const status = $('status').value;
  if (status !== 'online') await request({ type: 'status_update', payload: { status } });
}

function connect() {
  setState('connecting');
  const proto = location.protocol === 'https:' ? 'wss' : 'ws';
  const ws = new WebSocket(`${proto}://${location.host}/ws?user=${encodeURIComponent(state.user)}`);
  state.ws = ws;
  ws.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    if ((m.type === 'ack' || m.type === 'error') && state.pending.has(m.id)) {
      const p = state.pending.get(m.id);
      state.pending.delete(m.id);
      if (m.type === 'ack') p.resolve(m);
      else p.reject(new Error(`${m.code}: ${m.message}`));
      return;
    }
    if (m.type === 'error') {
      showError(`${m.code}: ${m.message}`);
      return;
    }
    handlers[m.type]?.(m);
  };
  ws.onclose = (ev) => {
    setState('offline');
    for (const p of state.pending.values()) p.reject(new Error('connection closed'));
    state.pending.clear();
    if (ev.code === 4001) {
      showError('The server refused this name.');
      return;
    }
    if (!state.wanted) return;
    setTimeout(connect, state.backoff);
    state.backoff = Math.min(state.backoff * 2, 10000);
  };
}

$('login').addEventListener('submit', (ev) => {
  ev.preventDefault();
  state.user = $('name').value.trim();
  state.room = $('room').value.trim() || 'lobby';
  localStorage.setItem('luahub.name', state.user);
  $('login').hidden = true;
  $('chat').hidden = false;
  state.wanted = true;
  connect();
  $('text').focus();
});

$('send').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const text = $('text').value;
  if (!text.trim() || state.ws?.readyState !== WebSocket.OPEN) return;
  showError('');
  request({ type: 'chat', room_id: state.room, payload: { text } })
    .then(() => { $('text').value = ''; })
    .catch((e) => showError(e.message));
});

$('text').addEventListener('input', () => {
  const now = Date.now();
  if (now - state.lastTypingSent < 2000 || state.ws?.readyState !== WebSocket.OPEN) return;
  state.lastTypingSent = now;
  state.ws.send(JSON.stringify({ type: 'typing', room_id: state.room }));
});

$('status').addEventListener('change', () => {
  if (state.ws?.readyState !== WebSocket.OPEN) return;
  const status = $('status').value;
  request({ type: 'status_update', payload: { status } })
    .then(() => {
      state.members.set(state.user, status);
      renderMembers();
    })
    .catch((e) => showError(e.message));
});

$('name').value = localStorage.getItem('luahub.name') || '';
