// luahub.js: the JavaScript client of luahub (docs/client.md).
//
// One ES module, no dependencies, for browsers and Node 18+ (Node 22 has a
// global WebSocket; elsewhere pass one: connect(url, { WebSocket })). It
// speaks the wire protocol of docs/protocol.md: requests answered by their
// ack or error (matched by the envelope's id), rooms that are joined again
// after every reconnect with `since` and `epoch` so that their messages
// reach the handler once each and in order, presence that is subscribed
// again, and every frame the server sends as an event of its type.

export const VERSION = '0.1.0';

/** The error a request is rejected with: `code` is the protocol's (not_in_room,
 * bad_message, ...) or one of the library's own: `disconnected` (the socket
 * closed before the answer came: the request may or may not have run),
 * `timeout`, `closed` (close() was called). */
export class LuahubError extends Error {
  constructor(code, message, frame) {
    super(message || code);
    this.name = 'LuahubError';
    this.code = code;
    this.frame = frame;
  }
}

/** Full jitter: a delay drawn uniformly from [0, min(cap, base * 2^attempt)).
 * Spread out this way, clients that lost the same server do not come back
 * all at once. */
export function backoffDelay(attempt, { base = 500, cap = 15000, random = Math.random } = {}) {
  const ceiling = Math.min(cap, base * 2 ** Math.min(Math.max(attempt, 0), 30));
  return Math.floor(random() * ceiling);
}

// A handler's exception must not break the client (nor the other
// handlers), but it must not vanish either: it is thrown again on its own.
function rethrow(err) {
  setTimeout(() => { throw err; }, 0);
}

class Emitter {
  constructor() { this._handlers = new Map(); }

  /** Calls fn for each event of this type; returns a function that stops it. */
  on(type, fn) {
    if (typeof fn !== 'function') throw new TypeError('on(type, fn): fn must be a function');
    let set = this._handlers.get(type);
    if (!set) this._handlers.set(type, (set = new Set()));
    set.add(fn);
    return () => this.off(type, fn);
  }

  off(type, fn) { this._handlers.get(type)?.delete(fn); }

  once(type, fn) {
    const off = this.on(type, (...args) => { off(); fn(...args); });
    return off;
  }

  _emit(type, ...args) {
    const set = this._handlers.get(type);
    if (!set) return;
    for (const fn of [...set]) {
      try { fn(...args); } catch (err) { rethrow(err); }
    }
  }
}

// How many delivered seqs a room remembers, to tell a duplicate from the
// first frames of a new epoch.
const STAMPS = 512;

/**
 * The sequence of one room: which seqs were delivered, and the frames held
 * while the room is (re)joined. Exported for tests; a program uses Room.
 */
export class SeqTracker {
  constructor() {
    this.last = null; // the last seq delivered, or null before the first join
    this.epoch = null;
    this.syncing = false;
    this.held = [];
    this.stamps = new Map(); // seq -> timestamp, the newest STAMPS
    this.lastTimestamp = null;
  }

  _record(frame) {
    this.last = frame.seq;
    this.stamps.set(frame.seq, frame.timestamp);
    if (this.stamps.size > STAMPS) this.stamps.delete(this.stamps.keys().next().value);
    if (typeof frame.timestamp === 'number') this.lastTimestamp = frame.timestamp;
  }

  /** A live frame: returns 'deliver', 'hold' (the room is being joined),
   * 'duplicate' or 'stale' (a seq already passed that is not a frame
   * already delivered: the room's stream began again, a new epoch). */
  live(frame) {
    if (this.syncing || this.last === null) {
      this.held.push(frame);
      return 'hold';
    }
    if (frame.seq > this.last) {
      this._record(frame);
      return 'deliver';
    }
    const stamp = this.stamps.get(frame.seq);
    if (stamp !== undefined ? stamp === frame.timestamp
      : this.lastTimestamp === null || !(frame.timestamp > this.lastTimestamp)) return 'duplicate';
    return 'stale';
  }

  /** A join's ack came: returns { reset, frames } where frames are what to
   * deliver (the ack's messages, then the held frames, each seq once, in
   * order) and reset says that the stream did not continue without a gap
   * (a new epoch, or history that no longer reaches back to `since`). */
  joined(ack, since) {
    const recovering = since !== undefined && since !== null;
    const sameEpoch = this.epoch !== null && ack.epoch === this.epoch;
    let floor;
    let reset = false;
    let candidates;
    if (recovering) {
      reset = ack.recovered !== true;
      // In a new epoch the old numbers mean nothing: what the ack holds is
      // all there is to deliver.
      floor = sameEpoch || this.epoch === null ? since : -Infinity;
      candidates = [...(Array.isArray(ack.messages) ? ack.messages : []), ...this.held];
    } else {
      // A first join: the stream starts after the ack's seq (what came
      // before is history, for the history request).
      floor = typeof ack.seq === 'number' ? ack.seq : 0;
      candidates = this.held;
    }
    if (!sameEpoch) {
      this.stamps.clear();
      this.lastTimestamp = null;
    }
    this.epoch = ack.epoch ?? null;
    this.held = [];
    this.syncing = false;
    candidates.sort((a, b) => a.seq - b.seq);
    const frames = [];
    let last = floor;
    for (const f of candidates) {
      if (typeof f?.seq !== 'number' || f.seq <= last) continue;
      last = f.seq;
      this._record(f);
      frames.push(f);
    }
    // Live frames continue after the ack's seq, whatever was delivered.
    if (typeof ack.seq === 'number' && (this.last === null || this.last < ack.seq)) this.last = ack.seq;
    if (this.last === null) this.last = 0;
    return { reset, frames };
  }
}

/** A room this client is in; it stays joined across reconnects until leave(). */
export class Room extends Emitter {
  constructor(client, name, opts) {
    super();
    this.client = client;
    this.name = name;
    this.opts = opts;
    this.members = null;
    this.memberCount = null;
    this.left = false;
    this.tracker = new SeqTracker();
    if (Number.isInteger(opts.since)) this.tracker.last = opts.since;
    if (typeof opts.epoch === 'string') this.tracker.epoch = opts.epoch;
    this._resume = Number.isInteger(opts.since);
    this._typers = new Map(); // user -> timer
    this._lastTyping = 0;
    for (const ev of ['message', 'reset', 'event', 'typing', 'members']) {
      const fn = opts['on' + ev[0].toUpperCase() + ev.slice(1)];
      if (typeof fn === 'function') this.on(ev, fn);
    }
  }

  /** The last seq delivered to onMessage (null before the first join). */
  get seq() { return this.tracker.last; }

  get epoch() { return this.tracker.epoch; }

  /** Users typing in this room now (a hint expires after typingTimeout ms). */
  get typers() { return [...this._typers.keys()]; }

  /** Sends a chat message to the room: resolves with the ack ({ seq }). */
  send(payload, opts) {
    return this.client.request('chat', { room_id: this.name, payload }, opts);
  }

  /** Tells the other members that this user is typing, at most once every
   * typingInterval ms however often it is called (call it on each key). */
  typing() {
    const now = Date.now();
    if (now - this._lastTyping < this.client.options.typingInterval) return false;
    if (!this.client.notify('typing', { room_id: this.name })) return false;
    this._lastTyping = now;
    return true;
  }

  /** The history request: resolves with { room_id, epoch, seq, messages }. */
  history({ since, limit } = {}) {
    const payload = {};
    if (since !== undefined) payload.since = since;
    if (limit !== undefined) payload.limit = limit;
    return this.client.request('history', { room_id: this.name, payload });
  }

  info() { return this.client.request('room_info', { room_id: this.name }); }

  /** A page of the members, sorted (the room_members request), for a room
   * of any size: resolves with { members, next } (next: the `after` of
   * the next page, null after the last). */
  listMembers({ after, limit } = {}) {
    const payload = {};
    if (after !== undefined) payload.after = after;
    if (limit !== undefined) payload.limit = limit;
    return this.client.request('room_members', { room_id: this.name, payload });
  }

  /** Leaves the room (on the server too, when connected). */
  async leave() {
    if (this.left) return;
    this.left = true;
    this.client.rooms.delete(this.name);
    for (const t of this._typers.values()) clearTimeout(t);
    this._typers.clear();
    if (this.client.state === 'open') {
      try {
        await this.client.request('leave_room', { room_id: this.name });
      } catch (err) {
        if (err.code !== 'not_in_room' && err.code !== 'disconnected') throw err;
      }
    }
  }

  // A join_room for this room on the current connection: the first one,
  // or again after a reconnect, with since and epoch once the room has a
  // place in its stream.
  async _join() {
    const tr = this.tracker;
    const since = this._resume || tr.epoch !== null ? tr.last : undefined;
    const payload = since !== undefined && since !== null
      ? { since, ...(tr.epoch !== null && { epoch: tr.epoch }) } : undefined;
    tr.syncing = true;
    const ack = await this.client._send({ type: 'join_room', room_id: this.name, ...(payload && { payload }) });
    if (this.left) return ack;
    const prev = { seq: tr.last, epoch: tr.epoch };
    const { reset, frames } = tr.joined(ack, payload ? since : undefined);
    this._resume = false;
    this._setMembers(ack);
    if (reset) {
      const info = {
        room: this.name, since: prev.seq, epoch: prev.epoch, seq: ack.seq, newEpoch: ack.epoch,
        epochChanged: prev.epoch !== ack.epoch, messages: frames.length,
      };
      this._emit('reset', info);
      this.client._emit('reset', info);
    }
    const replayed = new Set(Array.isArray(ack.messages) ? ack.messages : []);
    for (const f of frames) this._deliver(f, replayed.has(f));
    return ack;
  }

  _setMembers(ack) {
    if (typeof ack.member_count === 'number') this.memberCount = ack.member_count;
    if (Array.isArray(ack.members)) {
      this.members = [...ack.members];
      if (typeof ack.member_count !== 'number') this.memberCount = this.members.length;
      this._emit('members', this.members);
    } else if (this.members !== null || typeof ack.member_count === 'number') {
      // Past --max-listed-members: no list, and no user_joined/user_left
      // to keep one (listMembers pages through the room).
      this.members = null;
      this._emit('members', null);
    }
  }

  _deliver(frame, replayed) {
    this._clearTyper(frame.from);
    this._emit('message', frame, { replayed });
  }

  // A frame for this room from the socket.
  _frame(frame) {
    if (typeof frame.seq === 'number') {
      const verdict = this.tracker.live(frame);
      if (verdict === 'deliver') this._deliver(frame, false);
      else if (verdict === 'stale') this._resync();
      return;
    }
    if (frame.type === 'typing' && frame.from !== undefined) {
      clearTimeout(this._typers.get(frame.from));
      this._typers.set(frame.from, setTimeout(() => this._clearTyper(frame.from),
        this.client.options.typingTimeout));
      this._emit('typing', this.typers);
    } else if (this.members && (frame.type === 'user_joined' || frame.type === 'user_left')) {
      const set = new Set(this.members);
      if (frame.type === 'user_joined') set.add(frame.from);
      else {
        set.delete(frame.from);
        this._clearTyper(frame.from);
      }
      this.members = [...set].sort();
      this.memberCount = this.members.length;
      this._emit('members', this.members);
    }
    this._emit('event', frame);
  }

  _clearTyper(user) {
    if (!this._typers.has(user)) return;
    clearTimeout(this._typers.get(user));
    this._typers.delete(user);
    this._emit('typing', this.typers);
  }

  // The room's stream began again under us (a new epoch while connected):
  // join again with since and epoch, which answers recovered false.
  _resync() {
    if (this.tracker.syncing || this.client.state !== 'open') return;
    this.client._rejoin(this);
  }
}

const DEFAULTS = {
  backoff: { base: 500, cap: 15000 },
  requestTimeout: 15000,
  heartbeat: 25000,
  typingInterval: 2000,
  typingTimeout: 4000,
};

function httpToWs(url) {
  return url.replace(/^http(s?):/i, 'ws$1:');
}

/** The client: one logical connection that reconnects by itself. */
export class Client extends Emitter {
  constructor(url, opts = {}) {
    super();
    this.options = { ...DEFAULTS, ...opts, backoff: { ...DEFAULTS.backoff, ...opts.backoff } };
    this.url = url;
    this.WebSocket = opts.WebSocket || globalThis.WebSocket;
    if (typeof this.WebSocket !== 'function') {
      throw new TypeError('no WebSocket here: pass one, connect(url, { WebSocket })');
    }
    this.state = 'closed';
    this.user = null;
    this.connId = null;
    this.rooms = new Map();
    this.statuses = new Map(); // user -> status, for subscribed users
    this._subscribed = new Set();
    this._status = null; // the status this user chose, restored after a reconnect
    this._nextId = 1;
    this._pending = new Map(); // id -> { resolve, reject, timer }
    this._queue = []; // requests waiting for the connection
    this._attempt = 0;
    this._ws = null;
    this._timer = null;
    this._heartbeat = null;
    this._lastFrame = 0;
    this._stopped = false;
    this._onOnline = () => { if (this.state === 'closed' && !this._stopped) this._open(); };
    globalThis.addEventListener?.('online', this._onOnline);
    this._open();
  }

  // ---- connecting ----------------------------------------------------

  async _url() {
    let base = this.url;
    if (base === undefined || base === null || base === '') base = '/ws';
    if (typeof base !== 'string') base = String(base);
    if (!/^[a-z][a-z0-9+.-]*:/i.test(base)) {
      const loc = globalThis.location;
      if (!loc) throw new TypeError(`a relative url (${base}) needs a page to be relative to`);
      base = new URL(base, loc.href).href;
    }
    const url = new URL(httpToWs(base));
    const { user, token } = this.options;
    if (token !== undefined) {
      const t = typeof token === 'function' ? await token() : token;
      if (t) url.searchParams.set('token', t);
    } else if (user !== undefined && user !== null && user !== '') {
      url.searchParams.set('user', user);
    }
    return url.href;
  }

  _setState(state, detail = {}) {
    this.state = state;
    this._emit('state', state, detail);
  }

  async _open() {
    clearTimeout(this._timer);
    this._timer = null;
    if (this._stopped || this._ws) return;
    this._setState('connecting', { attempt: this._attempt });
    let url;
    try {
      url = await this._url();
    } catch (err) {
      this._closed({ code: 0, reason: String(err?.message || err) });
      return;
    }
    if (this._stopped || this._ws) return;
    let ws;
    try {
      ws = new this.WebSocket(url);
    } catch (err) {
      this._closed({ code: 0, reason: String(err?.message || err) });
      return;
    }
    this._ws = ws;
    ws.onmessage = (ev) => { if (this._ws === ws) this._message(ev.data); };
    ws.onclose = (ev) => { if (this._ws === ws) this._closed(ev); };
    ws.onerror = () => {}; // a close follows, with its code
  }

  // Forgets the socket (it may take long to report its close, a dead peer
  // answers nothing) and goes on as if it had closed.
  _abandon(code, reason) {
    const ws = this._ws;
    if (!ws) return;
    try { ws.close(); } catch { /* closing already */ }
    this._closed({ code, reason });
  }

  _closed(ev) {
    const code = ev?.code ?? 0;
    const reason = ev?.reason ?? '';
    const ws = this._ws;
    if (ws) ws.onmessage = ws.onclose = ws.onerror = null;
    this._ws = null;
    clearInterval(this._heartbeat);
    this._heartbeat = null;
    this.connId = null;
    for (const p of this._pending.values()) {
      clearTimeout(p.timer);
      p.reject(new LuahubError('disconnected', 'the connection closed before the answer came'));
    }
    this._pending.clear();
    for (const room of this.rooms.values()) {
      room.tracker.syncing = false;
      for (const t of room._typers.values()) clearTimeout(t);
      if (room._typers.size) {
        room._typers.clear();
        room._emit('typing', []);
      }
    }
    // 4001: this identity was refused; 4003: a script refused the
    // connection. Trying again would be refused again.
    const final = this._stopped || code === 4001 || code === 4003;
    if (final) {
      this._stopped = true;
      for (const q of this._queue.splice(0)) {
        clearTimeout(q.timer);
        q.reject(new LuahubError('closed', `the connection is closed (${code} ${reason})`.trim()));
      }
      this._setState('closed', { code, reason, reconnect: false });
      return;
    }
    const delay = backoffDelay(this._attempt++, this.options.backoff);
    this._timer = setTimeout(() => this._open(), delay);
    this._setState('closed', { code, reason, reconnect: true, delay });
  }

  // The welcome: the connection is usable. Rooms are joined again (with
  // since and epoch), then presence and status restored, then the
  // requests that waited are sent, in the order they were made.
  _welcome(frame) {
    this._attempt = 0;
    this.user = frame.user_id;
    this.connId = frame.conn_id;
    this._lastFrame = Date.now();
    this._startHeartbeat();
    this._setState('open', { user: this.user, connId: this.connId });
    this._emit('welcome', frame);
    for (const room of this.rooms.values()) this._rejoin(room);
    if (this._status && this._status !== 'online') {
      this._send({ type: 'status_update', payload: { status: this._status } }).catch(() => {});
    }
    if (this._subscribed.size) this._presence([...this._subscribed]).catch(() => {});
    for (const q of this._queue.splice(0)) {
      clearTimeout(q.timer);
      this._send(q.frame, q.opts).then(q.resolve, q.reject);
    }
  }

  _rejoin(room, attempt = 0) {
    const ws = this._ws;
    room._join().then((ack) => {
      room._joinedOnce?.resolve(room);
      room._joinedOnce = null;
      return ack;
    }, (err) => {
      if (room._joinedOnce && err.code !== 'disconnected' && err.code !== 'unavailable' && err.code !== 'timeout') {
        // The first join failed for good (a bad room id, forbidden, ...).
        this.rooms.delete(room.name);
        room.left = true;
        room._joinedOnce.reject(err);
        room._joinedOnce = null;
        return;
      }
      this._emit('rejoin_error', { room: room.name, error: err });
      // Still on the same connection: try again after a while.
      if (this._ws === ws && this.state === 'open' && !room.left) {
        setTimeout(() => { if (this._ws === ws && !room.left) this._rejoin(room, attempt + 1); },
          backoffDelay(attempt + 1, this.options.backoff));
      }
    });
  }

  _startHeartbeat() {
    const every = this.options.heartbeat;
    if (!every) return;
    this._heartbeat = setInterval(() => {
      if (this.state !== 'open' || Date.now() - this._lastFrame < every) return;
      const ws = this._ws;
      this._send({ type: 'ping' }, { timeout: Math.max(1000, every / 2) }).catch((err) => {
        if (err.code === 'timeout' && this._ws === ws) this._abandon(4000, 'no answer to ping');
      });
    }, Math.max(250, every / 2));
  }

  // ---- frames ----------------------------------------------------------

  _message(data) {
    this._lastFrame = Date.now();
    let frame;
    try {
      frame = JSON.parse(typeof data === 'string' ? data : String(data));
    } catch {
      return;
    }
    if (!frame || typeof frame !== 'object' || typeof frame.type !== 'string') return;
    if ((frame.type === 'ack' || frame.type === 'error' || frame.type === 'pong') && frame.id !== undefined) {
      const p = this._pending.get(frame.id);
      if (p) {
        this._pending.delete(frame.id);
        clearTimeout(p.timer);
        if (frame.type === 'error') p.reject(new LuahubError(frame.code, frame.message, frame));
        else p.resolve(frame);
        return;
      }
    }
    if (frame.type === 'welcome') {
      this._welcome(frame);
      return;
    }
    if (frame.type === 'presence' && frame.payload && typeof frame.payload.user_id === 'string') {
      const { user_id: user, status } = frame.payload;
      this.statuses.set(user, status);
      if (user === this.user && status !== 'offline') this._status = status;
    }
    const room = typeof frame.room_id === 'string' ? this.rooms.get(frame.room_id) : undefined;
    if (room) room._frame(frame);
    this._emit('*', frame);
    this._emit(frame.type, frame);
  }

  // ---- sending ---------------------------------------------------------

  // Sends a frame with a fresh id on the current connection (which must
  // be open): the ack, or a LuahubError.
  _send(frame, { timeout = this.options.requestTimeout } = {}) {
    const id = this._nextId++;
    return new Promise((resolve, reject) => {
      const timer = timeout > 0 ? setTimeout(() => {
        this._pending.delete(id);
        reject(new LuahubError('timeout', `no answer to ${frame.type} in ${timeout} ms`));
      }, timeout) : null;
      this._pending.set(id, { resolve, reject, timer });
      try {
        this._ws.send(JSON.stringify({ ...frame, id }));
      } catch (err) {
        this._pending.delete(id);
        clearTimeout(timer);
        reject(new LuahubError('disconnected', String(err?.message || err)));
      }
    });
  }

  /** Sends { type, ...fields } with an id: resolves with its ack, rejects
   * with a LuahubError made of its error frame. Made while the connection
   * is down, it waits for the next one (up to its timeout). */
  request(type, fields = {}, opts = {}) {
    if (typeof type !== 'string') return Promise.reject(new TypeError('request(type, fields): type must be a string'));
    const frame = { ...fields, type };
    delete frame.id;
    if (this.state === 'open') return this._send(frame, opts);
    if (this._stopped) return Promise.reject(new LuahubError('closed', 'the client is closed'));
    const timeout = opts.timeout ?? this.options.requestTimeout;
    return new Promise((resolve, reject) => {
      const q = { frame, opts, resolve, reject, timer: null };
      if (timeout > 0) {
        q.timer = setTimeout(() => {
          this._queue.splice(this._queue.indexOf(q), 1);
          reject(new LuahubError('timeout', `not connected within ${timeout} ms`));
        }, timeout);
      }
      this._queue.push(q);
    });
  }

  /** Sends { type, ...fields } without an id (nothing answers it unless it
   * fails): true when it went out, false when not connected. */
  notify(type, fields = {}) {
    if (this.state !== 'open') return false;
    const frame = { ...fields, type };
    delete frame.id;
    try {
      this._ws.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  // ---- rooms -------------------------------------------------------------

  /** Joins a room and keeps it joined across reconnects. Resolves with the
   * Room once the server answered the first join. opts: onMessage(frame,
   * { replayed }) for the room's frames with a seq (chat, and what handlers
   * publish), each seq once and in order; onReset(info) when a rejoin
   * could not bring back every message missed; onEvent(frame) for its
   * other frames (user_joined, user_left, typing, custom ones);
   * onTyping(users); onMembers(members); since and epoch to resume from a
   * known place (a stored seq). */
  join(name, opts = {}) {
    if (typeof name !== 'string') return Promise.reject(new TypeError('join(room): room must be a string'));
    const existing = this.rooms.get(name);
    if (existing) return existing._joinedOnce ? existing._joinedOnce.promise : Promise.resolve(existing);
    const room = new Room(this, name, opts);
    this.rooms.set(name, room);
    const once = {};
    once.promise = new Promise((resolve, reject) => { once.resolve = resolve; once.reject = reject; });
    room._joinedOnce = once;
    if (this.state === 'open') this._rejoin(room);
    else if (this._stopped) {
      this.rooms.delete(name);
      return Promise.reject(new LuahubError('closed', 'the client is closed'));
    }
    return once.promise;
  }

  room(name) { return this.rooms.get(name); }

  // ---- users -------------------------------------------------------------

  /** Sends a chat message to a user (a string) or to users (an array):
   * resolves with the ack ({ delivered }). */
  sendTo(to, payload, opts) {
    return this.request('chat', { to, payload }, opts);
  }

  /** Sets this user's status (online, away, busy, offline); it is set
   * again after a reconnect. */
  async setStatus(status) {
    const ack = await this.request('status_update', { payload: { status } });
    this._status = status;
    if (this.user && this._subscribed.has(this.user)) {
      this.statuses.set(this.user, status);
    }
    return ack;
  }

  /** Subscribes to users' statuses (this user's own too, to follow a
   * status set in another tab): resolves with { user: status }. Each
   * change arrives as a `presence` event; subscriptions are renewed after
   * a reconnect, with a `presence` event for each status that changed. */
  async subscribe(users) {
    const list = (Array.isArray(users) ? users : [users]).filter((u) => !this._subscribed.has(u));
    for (const u of list) this._subscribed.add(u);
    if (list.length && this.state === 'open') await this._presence(list);
    const out = {};
    for (const u of Array.isArray(users) ? users : [users]) out[u] = this.statuses.get(u);
    return out;
  }

  /** A subscribed user's last known status (undefined when not known). */
  presenceOf(user) { return this.statuses.get(user); }

  async _presence(users) {
    for (let i = 0; i < users.length; i += 1000) {
      const chunk = users.slice(i, i + 1000);
      const ack = await this._send({ type: 'presence_subscribe', payload: { user_ids: chunk } });
      for (const [user, status] of Object.entries(ack.statuses || {})) {
        const before = this.statuses.get(user);
        this.statuses.set(user, status);
        if (user === this.user && status !== 'offline') this._status = status;
        if (before !== status) {
          this._emit('presence', {
            type: 'presence', payload: { user_id: user, status }, timestamp: Date.now(), synthetic: true,
          });
        }
      }
    }
  }

  // ---- ending --------------------------------------------------------------

  /** Closes the connection for good: no reconnect; waiting requests are
   * rejected with `closed`. */
  close() {
    this._stopped = true;
    clearTimeout(this._timer);
    globalThis.removeEventListener?.('online', this._onOnline);
    if (this._ws) this._abandon(1000, 'closed by the client');
    else if (this.state !== 'closed' || this._timer) this._closed({ code: 1000, reason: 'closed by the client' });
    this._timer = null;
  }

  /** Drops the current socket and connects again at once (tests, or a
   * network change the page knows of). */
  reconnect() {
    if (this._stopped) return;
    this._attempt = 0;
    if (this._ws) this._abandon(4000, 'reconnect');
    clearTimeout(this._timer);
    this._open();
  }
}

/** Connects to a luahub server: url is ws(s)://HOST:PORT/ws (or http(s)://,
 * or a path such as '/ws' on the page's server; by default '/ws'). opts:
 * user or token (a string, or a function returning one, called at each
 * connect), WebSocket (a constructor, where there is no global one),
 * backoff { base, cap } ms, requestTimeout ms, heartbeat ms (0: none),
 * typingInterval ms, typingTimeout ms. */
export function connect(url, opts) {
  if (url !== null && typeof url === 'object' && opts === undefined && !(url instanceof URL)) {
    return new Client(undefined, url);
  }
  return new Client(url, opts);
}

export default connect;
