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

#include "hub_int.h"

/* ---- fan-out callbacks ------------------------------------------------ */

static void on_overflow(void *ud, conn_t *c) {
    hub_t *h = ud;
    metrics_slow_consumer(h->metrics);
    log_warn("fanout", "slow consumer closed conn=%s user=%s queued=%zu",
             conn_id(c), user_id(conn_user(c)), conn_queue_bytes(c));
    h->t->close(h->t->ud, c, CLOSE_SLOW, "slow consumer");
}

static void on_drain(void *ud, conn_t *c) {
    hub_t *h = ud;
    if (h->t->drain) h->t->drain(h->t->ud, c);
}

static void on_shed(void *ud, conn_t *c) {
    hub_t *h = ud;
    size_t n =
        h->t->shed ? h->t->shed(h->t->ud, c) : conn_queue_drop_ephemeral(c, 1);
    if (n)
        log_debug("fanout",
                  "behind: dropped %zu ephemeral frames conn=%s user=%s "
                  "queued=%zu",
                  n, conn_id(c), user_id(conn_user(c)), conn_queue_bytes(c));
}

/* ---- lifecycle --------------------------------------------------------- */

static script_t *load_scripts(hub_t *h, char *err, size_t errlen) {
    script_options opt = {h->cfg->lua_dir,
                          h->cfg->scripts_dir,
                          h->cfg->unsafe_lua,
                          h->t->loop,
                          h->cfg->script_timeout,
                          h->cfg->script_memory,
                          (size_t)h->cfg->max_listed_members};
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
    h->metrics = metrics_create();
    h->fo = (fanout_t){h->conns,    on_drain, on_shed,
                       on_overflow, h,        metrics_deliveries(h->metrics)};
    hub__host_init(h);
    h->store = store_create();
    if (cfg->redis[0] && hub__cluster_start(h, err, errlen) < 0) {
        hub_destroy(h);
        return NULL;
    }
    if (!h->broker) {
        /* One node: history beside the rooms. With several nodes the rooms
         * here are a mirror of the local members, and history lives in
         * Redis. */
        rooms_set_history(h->rooms, (size_t)cfg->history_size,
                          (int64_t)(cfg->history_ttl * 1000), clock_now_ms());
        h->history_frames =
            xmalloc((cfg->history_size ? (size_t)cfg->history_size : 1) *
                    sizeof *h->history_frames);
    }
    h->script = load_scripts(h, err, errlen);
    if (!h->script) {
        hub_destroy(h);
        return NULL;
    }
    metrics_set_types(h->metrics, script_types(h->script));
    log_info("script", "loaded %zu handlers: %s; hooks: %s",
             script_count(h->script), script_types(h->script),
             hook_list(h->script));
    if (script_stray_hooks(h->script))
        log_warn("script", "%s", script_stray_hooks(h->script));
    return h;
}

static void held_free(void *p);

void hub_destroy(hub_t *h) {
    if (!h) return;
    if (h->natives) dict_destroy(h->natives, free);
    if (h->held) dict_destroy(h->held, held_free);
    while (h->retired) {
        retired_t *r = h->retired;
        h->retired = r->next;
        script_destroy(r->s);
        free(r);
    }
    if (h->broker) hub__cluster_stop(h);
    hub__grace_stop(h);
    script_destroy(h->script);
    store_destroy(h->store);
    presence_destroy(h->presence);
    rooms_destroy(h->rooms);
    conns_destroy(h->conns);
    free(h->history_frames);
    metrics_destroy(h->metrics);
    free(h);
}

void hub_sweep(hub_t *h) {
    /* Tables that grew for a crowd give the room back once it has gone
     * (the transport gives the freed memory back to the system). */
    size_t shrunk = conns_shrink(h->conns) + presence_shrink(h->presence) +
                    rooms_shrink(h->rooms);
    if (shrunk) log_debug("hub", "tables shrunk by %zu bytes", shrunk);
    if (h->broker) return;
    size_t gone = rooms_expire(h->rooms, clock_now_ms());
    if (gone) log_debug("room", "%zu empty rooms expired", gone);
}

conns_t *hub_conns(hub_t *h) {
    return h->conns;
}

/* c's client address, for the logs. */
static const char *conn_ip(hub_t *h, conn_t *c, char *out, size_t cap) {
    snprintf(out, cap, "-");
    if (h->t->address) h->t->address(h->t->ud, c, out, cap);
    return out;
}

conn_t *hub_conn_open(hub_t *h, const char *uid, void *transport) {
    int first;
    int64_t now = clock_now_ms();
    conn_t *c = conns_add(h->conns, uid, transport, now, &first);
    char ip[64]; /* formatted only for a line that is written */

    /* The on_connect hook may refuse the connection or attach metadata. */
    buf_t meta;
    char reason[120];
    buf_init(&meta, 0);
    if (!script_on_connect(live_script(h), conn_id(c), uid, &meta, reason,
                           sizeof reason)) {
        buf_close(&meta);
        log_info("conn", "refused by on_connect conn=%s user=%s ip=%s: %s",
                 conn_id(c), uid, conn_ip(h, c, ip, sizeof ip), reason);
        h->t->close(h->t->ud, c, CLOSE_REFUSED, reason);
        return c;
    }
    if (meta.len) {
        size_t n = meta.len;
        conn_set_meta(c, buf_steal(&meta), n);
    }
    buf_close(&meta);

    buf_t b = hub__frame_buf();
    buf_puts(&b, "{\"type\":\"welcome\",\"conn_id\":");
    json_write_string(&b, conn_id(c), strlen(conn_id(c)));
    buf_puts(&b, ",\"user_id\":");
    json_write_string(&b, uid, strlen(uid));
    buf_puts(&b, ",\"timestamp\":");
    buf_put_int(&b, (long long)now);
    buf_putc(&b, '}');
    frame_t *f = frame_from_buf(&b);
    log_info("conn", "open conn=%s user=%s ip=%s conns=%zu", conn_id(c), uid,
             conn_ip(h, c, ip, sizeof ip), conns_count(h->conns));
    /* With several nodes, a user new to this node is welcomed once the
     * node has subscribed to the user's rooms (what the client sends
     * meanwhile waits), so that from the welcome on no frame of theirs is
     * missed. */
    if (!h->broker || !hub__cluster_conn_open(h, c, first, f))
        fanout_conn(&h->fo, c, f);
    frame_unref(f);
    /* Back within --presence-grace: still online and in the rooms, so
     * nothing to announce. */
    if (!first && user_conn_count(conn_user(c)) == 1) hub__grace_cancel(h, uid);
    if (!h->broker && first &&
        presence_set(h->presence, user_id(conn_user(c)), PRESENCE_ONLINE))
        hub__notify_presence(h, uid, PRESENCE_ONLINE);
    h->t->wake(h->t->ud);
    return c;
}

void hub_conn_closed(hub_t *h, conn_t *c) {
    user_t *u = conn_user(c);
    /* Messages waiting behind a call that waits go with the connection
     * (the call itself runs on; its answer finds no connection). */
    if (h->held) held_free(dict_remove(h->held, conn_id(c)));
    size_t metalen;
    const char *meta = conn_meta(c, &metalen);
    script_on_disconnect(live_script(h), conn_id(c), user_id(u),
                         conn_close_code(c), meta, metalen);
    char ip[64];
    log_info("conn", "close conn=%s user=%s ip=%s code=%d in=%llu out=%llu",
             conn_id(c), user_id(u), conn_ip(h, c, ip, sizeof ip),
             conn_close_code(c), (unsigned long long)conn_stats(c)->messages_in,
             (unsigned long long)conn_stats(c)->messages_out);
    if (h->broker) {
        hub__cluster_conn_closed(h, c);
        return;
    }
    presence_conn_closed(h->presence, c);
    int last;
    conns_remove_keeping_user(h->conns, c, &last);
    /* The user's last connection: membership and presence end with it,
     * now or, with --presence-grace, once the grace is over without a
     * connection of theirs coming back. */
    if (last && h->cfg->presence_grace > 0 && !h->stopping)
        hub__grace_start(h, u);
    else if (last)
        hub__user_gone(h, u);
    h->t->wake(h->t->ud);
}

uint64_t hub__now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The error the call just over answered with, counted under its slot. */
static void count_call_error(hub_t *h, unsigned slot) {
    if (!h->call_error[0]) return;
    metrics_error(h->metrics, slot, h->call_error);
    h->call_error[0] = '\0';
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
    if (envelope_parse(data, len, &env) != ENVELOPE_OK) {
        unsigned slot = metrics_slot(h->metrics, env.type);
        metrics_received(h->metrics, slot);
        metrics_error(h->metrics, slot, envelope_code(env.status));
        reject(h, c, &env);
    } else if ((n = dict_get(h->natives, env.type))) {
        hub_call call = {c,           conn_id(c), user_id(conn_user(c)),
                         env.id_json, data,       len};
        unsigned slot = metrics_slot(h->metrics, env.type);
        uint64_t t0 = hub__now_ns();
        metrics_received(h->metrics, slot);
        n->fn(h, &call);
        metrics_observe(h->metrics, slot, (double)(hub__now_ns() - t0) / 1e9);
    }
    int done = env.status != ENVELOPE_OK || n;
    envelope_clear(&env);
    return done;
}

/* Runs one message of c: a native handler, or the scripts. Returns 1 when
 * its handler call waits on the host (its answer comes later). */
static int run_message(hub_t *h, conn_t *c, const char *data, size_t len) {
    if (h->natives && dispatch_native(h, c, data, len)) return 0;
    size_t metalen;
    const char *meta = conn_meta(c, &metalen);
    envelope_t env;
    uint64_t t0 = hub__now_ns();
    h->call_error[0] = '\0';
    int rc = script_dispatch(live_script(h), conn_id(c), user_id(conn_user(c)),
                             data, len, meta, metalen, &env);
    /* The type is known once the frame is parsed: counted after the call
     * (a type without a handler, or no valid type, is "other"). */
    unsigned slot = metrics_slot(h->metrics, env.type);
    metrics_received(h->metrics, slot);
    if (rc == -EINVAL) {
        metrics_error(h->metrics, slot, envelope_code(env.status));
        reject(h, c, &env);
    } else if (rc < 0 && rc != -EINPROGRESS) {
        metrics_error(h->metrics, slot, ERR_HANDLER_ERROR);
        hub_send_error(h, c, env.id_json, ERR_HANDLER_ERROR,
                       rc == -ETIMEDOUT ? SCRIPT_MSG_TIMED_OUT
                       : rc == -EAGAIN  ? SCRIPT_MSG_POISONED
                                        : SCRIPT_MSG_FAILED);
    }
    if (rc == -EINPROGRESS) {
        /* Timed to its answer: the held record keeps the slot and start. */
        h->wait_slot = slot;
        h->wait_t0 = t0;
    } else if (rc != -EINVAL) {
        count_call_error(h, slot);
        metrics_observe(h->metrics, slot, (double)(hub__now_ns() - t0) / 1e9);
    }
    h->call_error[0] = '\0';
    /* Replace a state this call broke now, not on the next message. */
    live_script(h);
    envelope_clear(&env);
    return rc == -EINPROGRESS;
}

/* ---- messages behind a call that waits -------------------------------------
 *
 * While a connection's handler call waits on the host (a cluster's round
 * trip), its next messages wait too, copied, in order, so that a client
 * sees its answers in the order it sent its frames; hub__call_over runs
 * them. The queue is bounded: a stranger may not hold memory for long. */

typedef struct held_msg {
    struct held_msg *next;
    size_t len;
    char data[];
} held_msg;

/* A connection with a call waiting (h->held, by connection id). */
typedef struct held {
    held_msg *head, *tail;
    size_t n, bytes;
    /* The call that waits: its metrics slot and start (timed: 0 when the
     * connection waits for its welcome, not a call). */
    unsigned slot;
    int timed;
    uint64_t t0;
} held_t;

static void held_free(void *p) {
    held_t *q = p;
    if (!q) return;
    while (q->head) {
        held_msg *m = q->head;
        q->head = m->next;
        free(m);
    }
    free(q);
}

/* Answers c's frame data[0..len) rate_limited with message (and the
 * frame's id when it has one). */
static void answer_limited(hub_t *h, conn_t *c, const char *data, size_t len,
                           const char *message) {
    envelope_t env;
    const char *id = NULL;
    unsigned slot = METRICS_OTHER;
    if (data) {
        envelope_parse(data, len, &env);
        id = env.id_json;
        slot = metrics_slot(h->metrics, env.type);
    }
    metrics_received(h->metrics, slot);
    metrics_error(h->metrics, slot, ERR_RATE_LIMITED);
    hub_send_error(h, c, id, ERR_RATE_LIMITED, message);
    if (data) envelope_clear(&env);
}

static void hold(hub_t *h, conn_t *c, held_t *q, const char *data, size_t len) {
    if (q->n >= HUB_HELD_MAX || len > HUB_HELD_BYTES - q->bytes) {
        log_debug("conn", "too many messages waiting conn=%s queued=%zu",
                  conn_id(c), q->n);
        answer_limited(h, c, data, len,
                       "too many messages waiting for the cluster");
        return;
    }
    held_msg *m = xmalloc(sizeof *m + len);
    m->next = NULL;
    m->len = len;
    memcpy(m->data, data, len);
    if (q->tail)
        q->tail->next = m;
    else
        q->head = m;
    q->tail = m;
    q->n++;
    q->bytes += len;
}

void hub__hold(hub_t *h, conn_t *c) {
    if (!h->held) h->held = dict_create();
    if (!dict_get(h->held, conn_id(c)))
        dict_set(h->held, conn_id(c), xcalloc(1, sizeof(held_t)));
}

void hub_conn_message(hub_t *h, conn_t *c, const char *data, size_t len) {
    conn_stats_t *st = conn_stats(c);
    st->messages_in++;
    st->bytes_in += len;
    held_t *q =
        h->held && dict_size(h->held) ? dict_get(h->held, conn_id(c)) : NULL;
    if (q) {
        hold(h, c, q, data, len);
        return;
    }
    if (!run_message(h, c, data, len)) return;
    if (!h->held) h->held = dict_create();
    q = xcalloc(1, sizeof(held_t));
    q->slot = h->wait_slot;
    q->t0 = h->wait_t0;
    q->timed = 1;
    dict_set(h->held, conn_id(c), q);
}

/* Destroys the retired states whose calls are all over. */
static void retired_sweep(hub_t *h) {
    for (retired_t **p = &h->retired; *p;) {
        retired_t *r = *p;
        if (script_waiting(r->s)) {
            p = &r->next;
            continue;
        }
        *p = r->next;
        script_destroy(r->s);
        free(r);
    }
}

void hub__call_over(hub_t *h, const char *conn_id) {
    retired_sweep(h);
    held_t *q = h->held && *conn_id ? dict_get(h->held, conn_id) : NULL;
    if (q && q->timed) {
        count_call_error(h, q->slot);
        metrics_observe(h->metrics, q->slot,
                        (double)(hub__now_ns() - q->t0) / 1e9);
        q->timed = 0;
    }
    h->call_error[0] = '\0';
    if (!q) return;
    conn_t *c = conns_lookup(h->conns, conn_id);
    while (c && q->head) {
        held_msg *m = q->head;
        q->head = m->next;
        if (!q->head) q->tail = NULL;
        q->n--;
        q->bytes -= m->len;
        int waits = run_message(h, c, m->data, m->len);
        free(m);
        if (waits) {
            /* The rest waits for this one. */
            q->slot = h->wait_slot;
            q->t0 = h->wait_t0;
            q->timed = 1;
            return;
        }
    }
    held_free(dict_remove(h->held, conn_id));
}

void hub_set_native(hub_t *h, const char *type, hub_native_fn fn) {
    if (!h->natives) h->natives = dict_create();
    free(dict_remove(h->natives, type));
    if (!fn) return;
    native_t *n = xmalloc(sizeof *n);
    n->fn = fn;
    dict_set(h->natives, type, n);
    metrics_add_type(h->metrics, type);
}

const script_host *hub_host(hub_t *h) {
    return &h->host;
}

void hub_conn_limited(hub_t *h, conn_t *c, const char *data, size_t len,
                      const char *message) {
    conn_stats_t *st = conn_stats(c);
    st->messages_in++;
    st->bytes_in += len;
    answer_limited(h, c, data, len, message);
}

void hub_conn_binary(hub_t *h, conn_t *c) {
    conn_stats(c)->messages_in++;
    metrics_received(h->metrics, METRICS_OTHER);
    metrics_error(h->metrics, METRICS_OTHER, ERR_BAD_MESSAGE);
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
        metrics_reload(h->metrics, 0);
        return -EINVAL;
    }
    char changes[1024];
    describe_changes(script_types(h->script), script_types(s), changes,
                     sizeof changes);
    size_t kept, cancelled;
    script_adopt_timers(s, h->script, &kept, &cancelled);
    if (script_waiting(h->script)) {
        /* Calls of the old state wait on the host: it stays until they
         * are over (hub__call_over). */
        retired_t *r = xmalloc(sizeof *r);
        r->s = h->script;
        r->next = h->retired;
        h->retired = r;
    } else {
        script_destroy(h->script);
    }
    h->script = s;
    metrics_set_types(h->metrics, script_types(s));
    metrics_reload(h->metrics, 1);
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
