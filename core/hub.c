/* hub.c -- see hub.h. */
#include "hub.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "clock.h"
#include "codes.h"
#include "dict.h"
#include "envelope.h"
#include "fanout.h"
#include "json.h"
#include "log.h"
#include "presence.h"
#include "room.h"
#include "script.h"
#include "store.h"

struct hub {
    const config_t *cfg;
    const hub_transport *t;
    conns_t *conns;
    rooms_t *rooms;
    presence_t *presence;
    fanout_t fo;
    script_host host;
    script_t *script;
    int64_t replace_tried; /* when an unhealthy state last failed to go */
    store_t *store;
    dict_t *natives; /* type -> hub_native_fn (boxed); NULL: none */
};

typedef struct native {
    hub_native_fn fn;
} native_t;

/* ---- frames the core writes itself ------------------------------------ */

static buf_t frame_buf(void) {
    buf_t b;
    buf_init(&b, FRAME_HEADROOM);
    return b;
}

static void put_field(buf_t *b, const char *key, const char *val) {
    buf_putc(b, ',');
    json_write_string(b, key, strlen(key));
    buf_putc(b, ':');
    json_write_string(b, val, strlen(val));
}

/* {"type":"user_left","room_id":…,"from":…,"timestamp":…} */
static frame_t *room_event(const char *type, const char *room,
                           const char *from) {
    buf_t b = frame_buf();
    buf_puts(&b, "{\"type\":");
    json_write_string(&b, type, strlen(type));
    put_field(&b, "room_id", room);
    put_field(&b, "from", from);
    buf_printf(&b, ",\"timestamp\":%lld}", (long long)clock_now_ms());
    return frame_from_buf(&b);
}

static void notify_presence(hub_t *h, const char *uid, presence_status st) {
    if (!presence_subscriber_count(h->presence, uid)) return;
    buf_t b = frame_buf();
    buf_puts(&b, "{\"type\":\"presence\",\"payload\":{\"user_id\":");
    json_write_string(&b, uid, strlen(uid));
    put_field(&b, "status", presence_status_name(st));
    buf_printf(&b, "},\"timestamp\":%lld}", (long long)clock_now_ms());
    frame_t *f = frame_from_buf(&b);
    size_t pos = 0;
    conn_t *c;
    while ((c = presence_next_subscriber(h->presence, uid, &pos)))
        fanout_conn(&h->fo, c, f);
    frame_unref(f);
    h->t->wake(h->t->ud);
}

void hub_send_error(hub_t *h, conn_t *c, const char *id_json, const char *code,
                    const char *message) {
    buf_t b = frame_buf();
    buf_puts(&b, "{\"type\":\"error\"");
    if (id_json) {
        buf_puts(&b, ",\"id\":");
        buf_puts(&b, id_json);
    }
    put_field(&b, "code", code);
    put_field(&b, "message", message);
    buf_putc(&b, '}');
    frame_t *f = frame_from_buf(&b);
    fanout_conn(&h->fo, c, f);
    frame_unref(f);
    h->t->wake(h->t->ud);
}

/* ---- the host table the scripts call through -------------------------- */

static void on_overflow(void *ud, conn_t *c) {
    hub_t *h = ud;
    log_warn("fanout", "slow consumer closed conn=%s user=%s queued=%zu",
             conn_id(c), user_id(conn_user(c)), conn_queue_bytes(c));
    h->t->close(h->t->ud, c, CLOSE_SLOW, "slow consumer");
}

/* A room left empty is deleted: its stored state goes with it. */
static void leave_room(hub_t *h, const char *room, user_t *u) {
    if (rooms_leave(h->rooms, room, u) && !rooms_get(h->rooms, room))
        store_drop(h->store, STORE_ROOM, room);
}

static void on_drain(void *ud, conn_t *c) {
    hub_t *h = ud;
    if (h->t->drain) h->t->drain(h->t->ud, c);
}

static size_t host_send(void *ud, const script_target *t, frame_t *f) {
    hub_t *h = ud;
    conn_t *xc = t->except_conn ? conns_lookup(h->conns, t->except_conn) : NULL;
    user_t *xu = t->except_user ? conns_user(h->conns, t->except_user) : NULL;
    size_t n = 0;
    switch (t->kind) {
    case SCRIPT_TO_CONN: {
        conn_t *c = conns_lookup(h->conns, t->ids[0]);
        if (c && c != xc && conn_user(c) != xu)
            n = (size_t)fanout_conn(&h->fo, c, f);
        break;
    }
    case SCRIPT_TO_USERS:
        for (size_t i = 0; i < t->nids; i++) {
            user_t *u = conns_user(h->conns, t->ids[i]);
            if (!u || u == xu) continue;
            /* A user listed twice is reached once. Lists are short (a
             * multicast names a few users), so a quadratic check beats a
             * set. */
            int dup = 0;
            for (size_t j = 0; j < i && !dup; j++)
                dup = strcmp(t->ids[i], t->ids[j]) == 0;
            if (!dup) n += fanout_user(&h->fo, u, f, xc);
        }
        break;
    case SCRIPT_TO_ROOM: {
        room_t *r = rooms_get(h->rooms, t->ids[0]);
        if (r) n = fanout_room(&h->fo, r, f, xc, xu);
        break;
    }
    case SCRIPT_TO_ALL:
        n = fanout_all(&h->fo, f, xc, xu);
        break;
    }
    if (n) h->t->wake(h->t->ud);
    return n;
}

static int host_publish(void *ud, const char *room, const char *member,
                        script_stamp_fn stamp, void *ctx, uint64_t *seq) {
    hub_t *h = ud;
    room_t *r = rooms_get(h->rooms, room);
    if (member) {
        user_t *u = conns_user(h->conns, member);
        if (!r || !u || !room_has_member(r, u)) return -EPERM;
    }
    if (!r) return -ENOENT;
    *seq = room_next_seq(r);
    frame_t *f = stamp(ctx, *seq);
    if (fanout_room(&h->fo, r, f, NULL, NULL)) h->t->wake(h->t->ud);
    frame_unref(f);
    return 0;
}

static int host_join(void *ud, const char *room, const char *uid) {
    hub_t *h = ud;
    user_t *u = conns_user(h->conns, uid);
    if (!u) return -ENOENT;
    return rooms_join(h->rooms, room, u, clock_now_ms());
}

static int host_leave(void *ud, const char *room, const char *uid) {
    hub_t *h = ud;
    user_t *u = conns_user(h->conns, uid);
    if (!u || !rooms_is_member(h->rooms, room, u)) return 0;
    /* Copied: the room id may be the room's own key, freed with it. */
    char *id = xstrdup(room);
    leave_room(h, id, u);
    free(id);
    return 1;
}

static int host_is_member(void *ud, const char *room, const char *uid) {
    hub_t *h = ud;
    user_t *u = conns_user(h->conns, uid);
    return u ? rooms_is_member(h->rooms, room, u) : 0;
}

static int host_room_info(void *ud, const char *room, script_room_info *out) {
    hub_t *h = ud;
    room_t *r = rooms_get(h->rooms, room);
    if (!r) return -ENOENT;
    out->created_at = room_created_at(r);
    out->message_count = room_message_count(r);
    out->seq = room_seq(r);
    out->members = room_member_count(r);
    return 0;
}

static int host_room_members(void *ud, const char *room, script_each_fn each,
                             void *ctx) {
    hub_t *h = ud;
    room_t *r = rooms_get(h->rooms, room);
    if (!r) return -ENOENT;
    size_t pos = 0;
    user_t *u;
    while ((u = room_next_member(r, &pos)))
        each(ctx, user_id(u));
    return 0;
}

static void host_user_rooms(void *ud, const char *uid, script_each_fn each,
                            void *ctx) {
    hub_t *h = ud;
    size_t pos = 0;
    const char *room;
    while ((room = rooms_next_of_user(h->rooms, uid, &pos)))
        each(ctx, room);
}

static void host_online_users(void *ud, script_each_fn each, void *ctx) {
    hub_t *h = ud;
    size_t pos = 0;
    user_t *u;
    while ((u = conns_next_user(h->conns, &pos)))
        each(ctx, user_id(u));
}

static int host_user_connections(void *ud, const char *uid, script_each_fn each,
                                 void *ctx) {
    hub_t *h = ud;
    user_t *u = conns_user(h->conns, uid);
    if (!u) return -ENOENT;
    for (conn_t *c = user_next_conn(u, NULL); c; c = user_next_conn(u, c))
        each(ctx, conn_id(c));
    return 0;
}

static int host_presence_get(void *ud, const char *uid) {
    hub_t *h = ud;
    return (int)presence_get(h->presence, uid);
}

static int host_presence_set(void *ud, const char *uid, int st) {
    hub_t *h = ud;
    user_t *u = conns_user(h->conns, uid);
    if (!u) return -ENOENT;
    /* The user's own id: the presence table keeps the pointer. */
    uid = user_id(u);
    if (!presence_set(h->presence, uid, (presence_status)st)) return 0;
    notify_presence(h, uid, (presence_status)st);
    return 1;
}

static int host_presence_subscribe(void *ud, const char *cid, const char *uid) {
    hub_t *h = ud;
    conn_t *c = conns_lookup(h->conns, cid);
    if (!c) return -ENOENT;
    return presence_subscribe(h->presence, c, uid) < 0 ? -ENOSPC : 0;
}

static int host_conn_info(void *ud, const char *cid, script_conn_info *out) {
    hub_t *h = ud;
    conn_t *c = conns_lookup(h->conns, cid);
    if (!c) return -ENOENT;
    conn_stats_t *st = conn_stats(c);
    out->user_id = user_id(conn_user(c));
    out->connected_at = conn_connected_at(c);
    out->last_activity = conn_last_activity(c);
    out->messages_in = st->messages_in;
    out->messages_out = st->messages_out;
    out->bytes_in = st->bytes_in;
    out->bytes_out = st->bytes_out;
    return 0;
}

static const char *host_store_get(void *ud, int kind, const char *scope,
                                  const char *key, size_t *len) {
    hub_t *h = ud;
    return store_get(h->store, (store_scope_kind)kind, scope, key, len);
}

static int host_store_set(void *ud, int kind, const char *scope,
                          const char *key, const char *json, size_t len) {
    hub_t *h = ud;
    /* A room's or user's scope only while it exists, so that it is dropped
     * with it and nothing piles up. */
    if (kind == STORE_ROOM && !rooms_get(h->rooms, scope)) return -ENOENT;
    if (kind == STORE_USER && !conns_user(h->conns, scope)) return -ENOENT;
    if (store_set(h->store, (store_scope_kind)kind, scope, key, json, len) < 0)
        return -ENOSPC;
    return 0;
}

static int host_store_delete(void *ud, int kind, const char *scope,
                             const char *key) {
    hub_t *h = ud;
    return store_delete(h->store, (store_scope_kind)kind, scope, key);
}

/* ---- lifecycle --------------------------------------------------------- */

static script_t *load_scripts(hub_t *h, char *err, size_t errlen) {
    script_options opt = {h->cfg->lua_dir,        h->cfg->scripts_dir,
                          h->cfg->unsafe_lua,     h->t->loop,
                          h->cfg->script_timeout, h->cfg->script_memory};
    return script_create(&opt, &h->host, err, errlen);
}

static const char *hook_list(const script_t *s) {
    return *script_hooks(s) ? script_hooks(s) : "none";
}

/* The state to call into. One that a call left unusable (abandoned past
 * its time limit, or out of memory for good) is replaced by a fresh load
 * first; if the scripts on disk no longer load, the old state stays and
 * the load is tried again at most once a second. */
static script_t *live_script(hub_t *h) {
    const char *why = script_unhealthy(h->script);
    if (!why) return h->script;
    int64_t now = clock_now_ms();
    if (now - h->replace_tried < 1000) return h->script;
    log_warn("script", "replacing the Lua state: %s", why);
    if (hub_reload(h) < 0) h->replace_tried = now;
    return h->script;
}

hub_t *hub_create(const config_t *cfg, const hub_transport *t, char *err,
                  size_t errlen) {
    hub_t *h = xcalloc(1, sizeof *h);
    h->cfg = cfg;
    h->t = t;
    h->conns = conns_create(cfg->send_queue);
    h->rooms = rooms_create();
    h->presence = presence_create();
    h->fo = (fanout_t){h->conns, on_drain, on_overflow, h};
    h->host = (script_host){
        .ud = h,
        .send = host_send,
        .publish = host_publish,
        .join = host_join,
        .leave = host_leave,
        .is_member = host_is_member,
        .room_info = host_room_info,
        .room_members = host_room_members,
        .user_rooms = host_user_rooms,
        .online_users = host_online_users,
        .user_connections = host_user_connections,
        .presence_get = host_presence_get,
        .presence_set = host_presence_set,
        .presence_subscribe = host_presence_subscribe,
        .conn_info = host_conn_info,
        .store_get = host_store_get,
        .store_set = host_store_set,
        .store_delete = host_store_delete,
    };
    h->store = store_create();
    h->script = load_scripts(h, err, errlen);
    if (!h->script) {
        hub_destroy(h);
        return NULL;
    }
    log_info("script", "loaded %zu handlers: %s; hooks: %s",
             script_count(h->script), script_types(h->script),
             hook_list(h->script));
    if (script_stray_hooks(h->script))
        log_warn("script", "%s", script_stray_hooks(h->script));
    return h;
}

void hub_destroy(hub_t *h) {
    if (!h) return;
    if (h->natives) dict_destroy(h->natives, free);
    script_destroy(h->script);
    store_destroy(h->store);
    presence_destroy(h->presence);
    rooms_destroy(h->rooms);
    conns_destroy(h->conns);
    free(h);
}

conns_t *hub_conns(hub_t *h) {
    return h->conns;
}

conn_t *hub_conn_open(hub_t *h, const char *uid, void *transport) {
    int first;
    int64_t now = clock_now_ms();
    conn_t *c = conns_add(h->conns, uid, transport, now, &first);

    /* The on_connect hook may refuse the connection or attach metadata. */
    buf_t meta;
    char reason[120];
    buf_init(&meta, 0);
    if (!script_on_connect(live_script(h), conn_id(c), uid, &meta, reason,
                           sizeof reason)) {
        buf_close(&meta);
        log_info("conn", "refused by on_connect conn=%s user=%s: %s",
                 conn_id(c), uid, reason);
        h->t->close(h->t->ud, c, CLOSE_REFUSED, reason);
        return c;
    }
    if (meta.len) {
        size_t n = meta.len;
        conn_set_meta(c, buf_steal(&meta), n);
    }
    buf_close(&meta);

    buf_t b = frame_buf();
    buf_puts(&b, "{\"type\":\"welcome\"");
    put_field(&b, "conn_id", conn_id(c));
    put_field(&b, "user_id", uid);
    buf_printf(&b, ",\"timestamp\":%lld}", (long long)now);
    frame_t *f = frame_from_buf(&b);
    fanout_conn(&h->fo, c, f);
    frame_unref(f);

    log_info("conn", "open conn=%s user=%s conns=%zu", conn_id(c), uid,
             conns_count(h->conns));
    if (first &&
        presence_set(h->presence, user_id(conn_user(c)), PRESENCE_ONLINE))
        notify_presence(h, uid, PRESENCE_ONLINE);
    h->t->wake(h->t->ud);
    return c;
}

void hub_conn_closed(hub_t *h, conn_t *c) {
    user_t *u = conn_user(c);
    size_t metalen;
    const char *meta = conn_meta(c, &metalen);
    script_on_disconnect(live_script(h), conn_id(c), user_id(u),
                         conn_close_code(c), meta, metalen);
    presence_conn_closed(h->presence, c);
    log_info("conn", "close conn=%s user=%s code=%d in=%llu out=%llu",
             conn_id(c), user_id(u), conn_close_code(c),
             (unsigned long long)conn_stats(c)->messages_in,
             (unsigned long long)conn_stats(c)->messages_out);
    if (user_conn_count(u) == 1) {
        /* The user's last connection: membership and presence end with it.
         * Copy the room ids first, since leaving changes the index. */
        char *uid = xstrdup(user_id(u));
        size_t n = rooms_count_of_user(h->rooms, uid), pos = 0, i = 0;
        char **ids = xmalloc((n ? n : 1) * sizeof *ids);
        const char *room;
        while (i < n && (room = rooms_next_of_user(h->rooms, uid, &pos)))
            ids[i++] = xstrdup(room);
        for (i = 0; i < n; i++) {
            leave_room(h, ids[i], u);
            room_t *r = rooms_get(h->rooms, ids[i]);
            if (r) {
                frame_t *f = room_event("user_left", ids[i], uid);
                fanout_room(&h->fo, r, f, c, NULL);
                frame_unref(f);
            }
            free(ids[i]);
        }
        free(ids);
        /* Offline before the user is freed: the presence table holds the
         * user's own id. */
        int offline = presence_set(h->presence, uid, PRESENCE_OFFLINE);
        int last;
        conns_remove(h->conns, c, &last);
        if (offline) notify_presence(h, uid, PRESENCE_OFFLINE);
        store_drop(h->store, STORE_USER, uid);
        free(uid);
    } else {
        int last;
        conns_remove(h->conns, c, &last);
    }
    h->t->wake(h->t->ud);
}

static void reject(hub_t *h, conn_t *c, envelope_t *env) {
    log_debug("conn", "rejected conn=%s code=%s: %s", conn_id(c),
              envelope_code(env->status), env->message);
    hub_send_error(h, c, env->id_json, envelope_code(env->status),
                   env->message);
}

/* With native handlers: checks the frame and runs the native handler for
 * its type. Returns 1 when the frame was dealt with (native, or rejected),
 * 0 when it is for the scripts (which check it again as they decode). */
static int dispatch_native(hub_t *h, conn_t *c, const char *data, size_t len) {
    envelope_t env;
    native_t *n = NULL;
    if (envelope_parse(data, len, &env) != ENVELOPE_OK)
        reject(h, c, &env);
    else if ((n = dict_get(h->natives, env.type))) {
        hub_call call = {c,           conn_id(c), user_id(conn_user(c)),
                         env.id_json, data,       len};
        n->fn(h, &call);
    }
    int done = env.status != ENVELOPE_OK || n;
    envelope_clear(&env);
    return done;
}

void hub_conn_message(hub_t *h, conn_t *c, const char *data, size_t len) {
    conn_stats_t *st = conn_stats(c);
    st->messages_in++;
    st->bytes_in += len;
    if (h->natives && dispatch_native(h, c, data, len)) return;
    size_t metalen;
    const char *meta = conn_meta(c, &metalen);
    envelope_t env;
    int rc = script_dispatch(live_script(h), conn_id(c), user_id(conn_user(c)),
                             data, len, meta, metalen, &env);
    if (rc == -EINVAL)
        reject(h, c, &env);
    else if (rc < 0)
        hub_send_error(h, c, env.id_json, ERR_HANDLER_ERROR,
                       rc == -ETIMEDOUT ? "timed out"
                       : rc == -EAGAIN
                           ? "scripts unavailable until they load again"
                           : "the handler failed");
    /* Replace a state this call broke now, not on the next message. */
    live_script(h);
    envelope_clear(&env);
}

void hub_set_native(hub_t *h, const char *type, hub_native_fn fn) {
    if (!h->natives) h->natives = dict_create();
    free(dict_remove(h->natives, type));
    if (!fn) return;
    native_t *n = xmalloc(sizeof *n);
    n->fn = fn;
    dict_set(h->natives, type, n);
}

const script_host *hub_host(hub_t *h) {
    return &h->host;
}

void hub_conn_limited(hub_t *h, conn_t *c, const char *data, size_t len,
                      const char *message) {
    conn_stats_t *st = conn_stats(c);
    st->messages_in++;
    st->bytes_in += len;
    envelope_t env;
    const char *id = NULL;
    if (data) {
        envelope_parse(data, len, &env);
        id = env.id_json;
    }
    hub_send_error(h, c, id, ERR_RATE_LIMITED, message);
    if (data) envelope_clear(&env);
}

void hub_conn_binary(hub_t *h, conn_t *c) {
    conn_stats(c)->messages_in++;
    hub_send_error(h, c, NULL, ERR_BAD_MESSAGE,
                   "binary frames are not supported; send JSON text");
}

/* 1 when name is an item of the comma-separated list. */
static int listed(const char *list, const char *name, size_t n) {
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && memcmp(p, name, n) == 0) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

/* "added x,y; removed z" between two comma-separated type lists, or "same
 * types" (a file's content may still have changed). */
static void describe_changes(const char *old, const char *new_, char *out,
                             size_t outlen) {
    buf_t added, removed;
    buf_init(&added, 0);
    buf_init(&removed, 0);
    const char *lists[2][2] = {{new_, old}, {old, new_}};
    buf_t *into[2] = {&added, &removed};
    for (int k = 0; k < 2; k++) {
        for (const char *p = lists[k][0]; *p;) {
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            if (!listed(lists[k][1], p, len)) {
                if (into[k]->len) buf_putc(into[k], ',');
                buf_append(into[k], p, len);
            }
            if (!e) break;
            p = e + 1;
        }
    }
    if (!added.len && !removed.len)
        snprintf(out, outlen, "same types");
    else
        snprintf(out, outlen, "added %.*s; removed %.*s",
                 added.len ? (int)added.len : 1,
                 added.len ? buf_content(&added) : "-",
                 removed.len ? (int)removed.len : 1,
                 removed.len ? buf_content(&removed) : "-");
    buf_close(&added);
    buf_close(&removed);
}

int hub_reload(hub_t *h) {
    char err[1024];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    script_t *s = load_scripts(h, err, sizeof err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
                (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    if (!s) {
        log_error("script",
                  "reload failed, keeping the %zu handlers in service: %s",
                  script_count(h->script), err);
        return -1;
    }
    char changes[1024];
    describe_changes(script_types(h->script), script_types(s), changes,
                     sizeof changes);
    size_t kept, cancelled;
    script_adopt_timers(s, h->script, &kept, &cancelled);
    script_destroy(h->script);
    h->script = s;
    if (kept)
        log_info("script", "%zu named timers carried over to the new state",
                 kept);
    if (cancelled)
        log_warn("script",
                 "the reload cancelled %zu timer(s) that call a function (a "
                 "closure cannot move to the new state); to keep a timer "
                 "across reloads, name its function: "
                 "hub.after(ms, \"module.function\", arg)",
                 cancelled);
    log_info("script", "reloaded %zu handlers in %.1f ms (%s): %s; hooks: %s",
             script_count(s), ms, changes, script_types(s), hook_list(s));
    if (script_stray_hooks(s)) log_warn("script", "%s", script_stray_hooks(s));
    return 0;
}
