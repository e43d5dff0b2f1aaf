/* broker.c -- see broker.h.
 *
 * Two connections to Redis: one for commands (scripts, reads, PUBLISH),
 * one for subscriptions. Every request is one command on the first, so
 * Redis runs a node's requests in the order the node made them. The
 * second carries what the node subscribed to: the fixed channels (all,
 * node:<id>) and, counted by broker_watch, the channels of the rooms,
 * users and presences the hub needs.
 *
 * A tick (every 100 ms) keeps the node alive: the heartbeat key (a TTL of
 * three quarters of --presence-ttl, refreshed every quarter), the reaping
 * of dead nodes (every quarter, at most a second), and a ping published to
 * the node's own channel, whose echo shows that the subscriber connection
 * still delivers (a connection that stopped delivering without closing is
 * dropped and made again). */
#include "broker.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "broker_int.h"
#include "buf.h"
#include "clock.h"
#include "dict.h"
#include "log.h"
#include "store.h"

#define PREFIX "luahub:"
#define TICK_MS 100
#define PING_EVERY_MS 500

/* A request in flight: what to call with the answer, and how to read it. */
typedef enum rkind {
    R_INT,
    R_PUBLISH,
    R_JOIN,
    R_INFO,
    R_IDS,
    R_STR,
    R_OPEN,
    R_HISTORY,
    R_FOUND, /* rc 1 unless the reply is nil */
    R_PAGE,
    R_INTERNAL, /* the broker's own (heartbeat, reap, sync, script load) */
} rkind;

typedef struct request {
    broker_t *b;
    rkind kind;
    broker_fn fn;
    void *ctx;
} request;

/* A channel the hub counts interest in. */
typedef struct waiter {
    broker_fn fn;
    void *ctx;
} waiter;

typedef struct chan {
    int refs;
    int confirmed;
    int resub; /* subscribed again after the subscriber reconnected */
    waiter *waiters;
    size_t nwaiters, capwaiters;
} chan;

struct broker {
    uv_loop_t *loop;
    broker_options opt;
    char node[65];
    broker_events ev;
    bconn_t *cmd, *sub;
    dict_t *chans; /* channel name -> chan */
    char fixed[2][128];
    int fixed_ok[2];
    size_t resub_left; /* channels subscribed again, not yet confirmed */
    int synced;        /* the node's state is registered since cmd came up */
    int ready;         /* as last told */
    char why[160];     /* why not ready */
    uv_timer_t tick;
    int64_t next_beat, next_reap, next_ping, last_echo;
    uint64_t pings;
    char epoch_seed[24];
    uint64_t epochs;
    int closing; /* broker_destroy: every callback gets -ECANCELED */
    int shut;    /* broker_shutdown: the tick is closed (or closing) */
    int tick_closed;
};

/* ---- parsing what comes from Redis --------------------------------------- */

static void set_why(broker_t *b, const char *why) {
    snprintf(b->why, sizeof b->why, "%s", why);
}

static void update_ready(broker_t *b) {
    int r = bconn_is_up(b->cmd) && bconn_is_up(b->sub) && b->synced &&
            b->fixed_ok[0] && b->fixed_ok[1] && !b->resub_left;
    if (r)
        b->why[0] = '\0';
    else if (!b->why[0])
        set_why(b, "connecting to Redis");
    if (r == b->ready) return;
    b->ready = r;
    log_info("redis", "node %s %s%s%s", b->node, r ? "ready" : "not ready",
             r ? "" : ": ", b->why);
    if (b->ev.ready) b->ev.ready(b->ev.ud, r);
}

static long long int_of(const redisReply *r) {
    if (!r) return 0;
    if (r->type == REDIS_REPLY_INTEGER) return r->integer;
    if (r->type == REDIS_REPLY_STRING) return strtoll(r->str, NULL, 10);
    return 0;
}

static const redisReply *elem(const redisReply *r, size_t i) {
    if (!r || r->type != REDIS_REPLY_ARRAY || i >= r->elements) return NULL;
    return r->element[i];
}

/* Points out->ids at the strings of array a (borrowed from a; the array
 * of pointers is the caller's to free). */
static const char **ids_of(const redisReply *a, size_t *n) {
    *n = 0;
    if (!a || a->type != REDIS_REPLY_ARRAY) return NULL;
    const char **ids = xmalloc((a->elements ? a->elements : 1) * sizeof *ids);
    for (size_t i = 0; i < a->elements; i++)
        if (a->element[i]->type == REDIS_REPLY_STRING)
            ids[(*n)++] = a->element[i]->str;
    return ids;
}

static void load_scripts(broker_t *b);

static void on_request(void *ctx, redisReply *r) {
    request *q = ctx;
    broker_t *b = q->b;
    broker_reply out = {0};
    const char **ids = NULL;
    size_t *lens = NULL;
    if (b->closing) {
        out.rc = -ECANCELED;
    } else if (!r) {
        out.rc = -EAGAIN;
    } else if (r->type == REDIS_REPLY_ERROR) {
        log_error("redis", "command failed: %.*s", (int)r->len, r->str);
        if (strncmp(r->str, "NOSCRIPT", 8) == 0) load_scripts(b);
        out.rc = -EAGAIN;
    } else {
        switch (q->kind) {
        case R_INT:
        case R_INTERNAL:
            out.rc = (int)int_of(r);
            break;
        case R_PUBLISH: {
            long long seq = int_of(elem(r, 0));
            out.rc = seq == -1 ? -EPERM : seq == -2 ? -ENOENT : 0;
            out.v[0] = seq;
            const redisReply *e = elem(r, 1);
            if (e && e->type == REDIS_REPLY_STRING) {
                out.str = e->str;
                out.len = e->len;
            }
            break;
        }
        case R_JOIN: {
            out.rc = (int)int_of(elem(r, 0));
            for (int i = 0; i < 3; i++)
                out.v[i] = int_of(elem(r, (size_t)i + 1));
            const redisReply *e = elem(r, 4);
            if (e && e->type == REDIS_REPLY_STRING) {
                out.str = e->str;
                out.len = e->len;
            }
            break;
        }
        case R_INFO: {
            out.rc = int_of(elem(r, 0)) ? 0 : -ENOENT;
            for (int i = 0; i < 4; i++)
                out.v[i] = int_of(elem(r, (size_t)i + 1));
            const redisReply *e = elem(r, 5);
            if (e && e->type == REDIS_REPLY_STRING) {
                out.str = e->str;
                out.len = e->len;
            }
            out.ids = ids = ids_of(elem(r, 6), &out.nids);
            break;
        }
        case R_IDS:
            out.ids = ids = ids_of(r, &out.nids);
            break;
        case R_FOUND:
            out.rc = r->type != REDIS_REPLY_NIL;
            break;
        case R_PAGE: {
            long long rc = int_of(elem(r, 0));
            out.rc = rc == -1 ? -EPERM : rc == -2 ? -ENOENT : 0;
            out.ids = ids = ids_of(elem(r, 1), &out.nids);
            break;
        }
        case R_STR:
            if (r->type == REDIS_REPLY_STRING) {
                out.str = r->str;
                out.len = r->len;
            }
            break;
        case R_OPEN:
            out.rc = (int)int_of(elem(r, 0));
            out.ids = ids = ids_of(elem(r, 1), &out.nids);
            break;
        case R_HISTORY: {
            long long rc = int_of(elem(r, 0));
            out.rc = rc == -1 ? -EPERM : rc == -2 ? -ENOENT : 0;
            out.v[0] = int_of(elem(r, 1));
            const redisReply *e = elem(r, 2);
            if (e && e->type == REDIS_REPLY_STRING) {
                out.str = e->str;
                out.len = e->len;
            }
            /* The frames: binary-safe, each with its length. */
            const redisReply *a = elem(r, 3);
            size_t n = a && a->type == REDIS_REPLY_ARRAY ? a->elements : 0;
            ids = xmalloc((n ? n : 1) * sizeof *ids);
            lens = xmalloc((n ? n : 1) * sizeof *lens);
            for (size_t i = 0; i < n; i++)
                if (a->element[i]->type == REDIS_REPLY_STRING) {
                    ids[out.nids] = a->element[i]->str;
                    lens[out.nids++] = a->element[i]->len;
                }
            out.ids = ids;
            out.lens = lens;
            break;
        }
        }
    }
    if (q->fn) q->fn(q->ctx, &out);
    free(ids);
    free(lens);
    free(q);
}

/* Sends argv as one command; fn gets the answer read as kind. */
static int request_argv(broker_t *b, rkind kind, broker_fn fn, void *ctx,
                        int argc, const char **argv, const size_t *lens) {
    request *q = xmalloc(sizeof *q);
    *q = (request){b, kind, fn, ctx};
    int rc = bconn_command(b->cmd, on_request, q, argc, argv, lens);
    if (rc < 0) free(q);
    return rc;
}

/* Arguments being put together, each a pointer and a length (the strings
 * are the caller's, or kept in the arena). */
typedef struct args {
    const char **v;
    size_t *len;
    int n, cap;
    buf_t arena;      /* numbers written as text */
    size_t *arena_at; /* per arg: offset into arena + 1, or 0 */
} args;

static void args_init(args *a) {
    memset(a, 0, sizeof *a);
    buf_init(&a->arena, 0);
}

static void args_add(args *a, const char *s, size_t n) {
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->v = xrealloc(a->v, (size_t)a->cap * sizeof *a->v);
        a->len = xrealloc(a->len, (size_t)a->cap * sizeof *a->len);
        a->arena_at = xrealloc(a->arena_at, (size_t)a->cap * sizeof(size_t));
    }
    a->v[a->n] = s;
    a->len[a->n] = n;
    a->arena_at[a->n] = 0;
    a->n++;
}

static void args_str(args *a, const char *s) {
    args_add(a, s ? s : "", s ? strlen(s) : 0);
}

static void args_int(args *a, long long x) {
    size_t at = a->arena.len;
    buf_printf(&a->arena, "%lld", x);
    args_add(a, NULL, a->arena.len - at);
    a->arena_at[a->n - 1] = at + 1;
}

/* Resolves the numbers' pointers (the arena may have moved). */
static void args_fix(args *a) {
    for (int i = 0; i < a->n; i++)
        if (a->arena_at[i])
            a->v[i] = buf_content(&a->arena) + a->arena_at[i] - 1;
}

static void args_free(args *a) {
    free(a->v);
    free(a->len);
    free(a->arena_at);
    buf_close(&a->arena);
}

/* EVALSHA of script s with a's arguments (after the first three, which
 * this fills: EVALSHA sha 0). */
static int eval(broker_t *b, broker_script s, rkind kind, broker_fn fn,
                void *ctx, args *a) {
    a->v[0] = "EVALSHA";
    a->len[0] = 7;
    a->v[1] = broker__sha(s);
    a->len[1] = 40;
    a->v[2] = "0";
    a->len[2] = 1;
    args_fix(a);
    int rc = request_argv(b, kind, fn, ctx, a->n, a->v, a->len);
    args_free(a);
    return rc;
}

/* Starts a script call: EVALSHA's three arguments, then the caller's. */
static void eval_args(args *a) {
    args_init(a);
    args_add(a, NULL, 0);
    args_add(a, NULL, 0);
    args_add(a, NULL, 0);
}

static void load_scripts(broker_t *b) {
    for (int s = 0; s < BS_COUNT; s++) {
        const char *argv[3] = {"SCRIPT", "LOAD", broker__lua((broker_script)s)};
        size_t lens[3] = {6, 4, strlen(argv[2])};
        request_argv(b, R_INTERNAL, NULL, NULL, 3, argv, lens);
    }
}

/* ---- channels ------------------------------------------------------------ */

static void channel_name(buf_t *out, broker_scope scope, const char *id) {
    buf_reset(out);
    switch (scope) {
    case BROKER_ROOM:
        buf_printf(out, PREFIX "room:{%s}", id);
        break;
    case BROKER_USER:
        buf_printf(out, PREFIX "user:%s", id);
        break;
    case BROKER_CONN:
        buf_printf(out, PREFIX "node:%s", id);
        break;
    case BROKER_ALL:
        buf_puts(out, PREFIX "all");
        break;
    case BROKER_STATUS:
        buf_printf(out, PREFIX "presence:%s", id);
        break;
    }
    buf_putc(out, '\0');
}

static int subscribe_one(broker_t *b, const char *verb, const char *name) {
    const char *argv[2] = {verb, name};
    size_t lens[2] = {strlen(verb), strlen(name)};
    return bconn_subscribe(b->sub, 2, argv, lens);
}

static void chan_wake(chan *c, int rc) {
    waiter *w = c->waiters;
    size_t n = c->nwaiters;
    c->waiters = NULL;
    c->nwaiters = c->capwaiters = 0;
    broker_reply r = {.rc = rc};
    for (size_t i = 0; i < n; i++)
        if (w[i].fn) w[i].fn(w[i].ctx, &r);
    free(w);
}

/* Moves every waiter of every channel into all (emptying theirs). */
static void take_waiters(broker_t *b, chan *all) {
    size_t pos = 0;
    const char *name;
    void *v;
    while (dict_next(b->chans, &pos, &name, &v)) {
        chan *ch = v;
        for (size_t i = 0; i < ch->nwaiters; i++) {
            if (all->nwaiters == all->capwaiters) {
                all->capwaiters = all->capwaiters ? all->capwaiters * 2 : 8;
                all->waiters = xrealloc(all->waiters,
                                        all->capwaiters * sizeof *all->waiters);
            }
            all->waiters[all->nwaiters++] = ch->waiters[i];
        }
        free(ch->waiters);
        ch->waiters = NULL;
        ch->nwaiters = ch->capwaiters = 0;
    }
}

int broker_watch(broker_t *b, broker_scope scope, const char *id, broker_fn fn,
                 void *ctx) {
    if (b->closing) return -EAGAIN;
    buf_t name;
    buf_init(&name, 0);
    channel_name(&name, scope, id);
    chan *c = dict_get(b->chans, buf_content(&name));
    int rc = 0;
    if (!c) {
        c = xcalloc(1, sizeof *c);
        dict_set(b->chans, buf_content(&name), c);
        if (subscribe_one(b, "SUBSCRIBE", buf_content(&name)) < 0) rc = -EAGAIN;
    }
    c->refs++;
    buf_close(&name);
    if (rc < 0) return rc;
    if (c->confirmed) return 1;
    if (!bconn_is_up(b->sub)) return -EAGAIN;
    if (c->nwaiters == c->capwaiters) {
        c->capwaiters = c->capwaiters ? c->capwaiters * 2 : 2;
        c->waiters = xrealloc(c->waiters, c->capwaiters * sizeof *c->waiters);
    }
    c->waiters[c->nwaiters++] = (waiter){fn, ctx};
    return 0;
}

void broker_unwatch(broker_t *b, broker_scope scope, const char *id) {
    if (b->closing) return;
    buf_t name;
    buf_init(&name, 0);
    channel_name(&name, scope, id);
    chan *c = dict_get(b->chans, buf_content(&name));
    if (c && --c->refs <= 0) {
        if (c->resub && !--b->resub_left) update_ready(b);
        dict_remove(b->chans, buf_content(&name));
        subscribe_one(b, "UNSUBSCRIBE", buf_content(&name));
        chan_wake(c, -EAGAIN);
        free(c);
    }
    buf_close(&name);
}

/* A message's header fields: up to 4, tab-separated, before '\n'; the
 * body after it. Copies into fields (NUL-terminated). */
typedef struct header {
    char kind;
    char f[4][160];
    const char *body;
    size_t bodylen;
} header;

static int parse_header(const char *s, size_t n, header *h) {
    memset(h, 0, sizeof *h);
    const char *nl = memchr(s, '\n', n);
    if (n < 2 || !nl || s[1] != '\t') return -1;
    h->kind = s[0];
    const char *p = s + 2;
    for (int i = 0; i < 4 && p <= nl; i++) {
        const char *e = memchr(p, '\t', (size_t)(nl - p));
        if (!e) e = nl;
        size_t len = (size_t)(e - p);
        if (len >= sizeof h->f[i]) return -1;
        memcpy(h->f[i], p, len);
        p = e + 1;
    }
    h->body = nl + 1;
    h->bodylen = n - (size_t)(nl + 1 - s);
    return 0;
}

static int starts(const char *s, size_t n, const char *prefix, size_t *plen) {
    *plen = strlen(prefix);
    return n >= *plen && memcmp(s, prefix, *plen) == 0;
}

/* A message on one of the node's channels, as the hub gets it. */
static void on_message(broker_t *b, const char *ch, size_t chlen, const char *s,
                       size_t n) {
    header h;
    if (parse_header(s, n, &h) < 0) {
        log_warn("redis", "a message that is not luahub's on %.*s", (int)chlen,
                 ch);
        return;
    }
    broker_msg m = {0};
    char target[512];
    size_t pl;
    if (starts(ch, chlen, PREFIX "room:{", &pl) && ch[chlen - 1] == '}') {
        m.scope = BROKER_ROOM;
        snprintf(target, sizeof target, "%.*s", (int)(chlen - pl - 1), ch + pl);
    } else if (starts(ch, chlen, PREFIX "user:", &pl)) {
        m.scope = BROKER_USER;
        snprintf(target, sizeof target, "%.*s", (int)(chlen - pl), ch + pl);
    } else if (starts(ch, chlen, PREFIX "presence:", &pl)) {
        snprintf(target, sizeof target, "%.*s", (int)(chlen - pl), ch + pl);
        if (h.kind != 'S') return;
        m.kind = BROKER_PRESENCE;
        m.scope = BROKER_USER;
        m.target = m.user = target;
        m.status = h.f[0];
        b->ev.message(b->ev.ud, &m);
        return;
    } else if (starts(ch, chlen, PREFIX "node:", &pl)) {
        if (h.kind == 'P') {
            b->last_echo = clock_now_ms();
            return;
        }
        m.scope = BROKER_CONN;
        snprintf(target, sizeof target, "%s", h.f[0]);
    } else if (starts(ch, chlen, PREFIX "all", &pl)) {
        m.scope = BROKER_ALL;
        target[0] = '\0';
    } else {
        return;
    }
    m.target = target;
    char room[512];
    switch (h.kind) {
    case 'F':
    case 'C':
        m.kind = BROKER_FRAME;
        if (h.kind == 'F') {
            m.except_conn = h.f[0][0] ? h.f[0] : NULL;
            m.except_user = h.f[1][0] ? h.f[1] : NULL;
        }
        /* The class: the field after the target's, absent (a node that
         * predates classes) meaning durable. */
        m.ephemeral = strcmp(h.f[h.kind == 'F' ? 2 : 1], CLASS_EPHEMERAL) == 0;
        /* A room chat's seq, after the class (the publish script's). */
        if (h.kind == 'F') m.seq = strtoull(h.f[3], NULL, 10);
        m.json = h.body;
        m.len = h.bodylen;
        break;
    case 'J':
    case 'L':
        m.kind = h.kind == 'J' ? BROKER_JOINED : BROKER_LEFT;
        if (m.scope == BROKER_ROOM) {
            m.room = target;
            m.user = h.f[0];
        } else if (m.scope == BROKER_USER) {
            snprintf(room, sizeof room, "%.*s", (int)h.bodylen, h.body);
            m.room = room;
            m.user = target;
        } else {
            return;
        }
        break;
    default:
        return;
    }
    b->ev.message(b->ev.ud, &m);
}

static void on_push(void *ud, redisReply *r) {
    broker_t *b = ud;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3) return;
    const redisReply *kind = r->element[0], *ch = r->element[1],
                     *body = r->element[2];
    if (kind->type != REDIS_REPLY_STRING || ch->type != REDIS_REPLY_STRING)
        return;
    if (strcmp(kind->str, "message") == 0 && body->type == REDIS_REPLY_STRING) {
        on_message(b, ch->str, ch->len, body->str, body->len);
    } else if (strcmp(kind->str, "subscribe") == 0) {
        log_debug("redis", "subscribed %s", ch->str);
        for (int i = 0; i < 2; i++)
            if (strcmp(ch->str, b->fixed[i]) == 0 && !b->fixed_ok[i]) {
                b->fixed_ok[i] = 1;
                if (i == 1) b->last_echo = clock_now_ms();
                update_ready(b);
            }
        chan *c = dict_get(b->chans, ch->str);
        if (c && !c->confirmed) {
            c->confirmed = 1;
            if (c->resub) {
                c->resub = 0;
                if (!--b->resub_left) update_ready(b);
            }
            chan_wake(c, 0);
        }
    }
}

/* ---- connections up and down ------------------------------------------- */

static void cmd_up(void *ud, bconn_t *c) {
    broker_t *b = ud;
    load_scripts(b);
    b->synced = 0;
    set_why(b, "registering this node's users");
    b->next_beat = b->next_reap = 0;
    if (b->ev.resync) b->ev.resync(b->ev.ud);
}

static void sub_up(void *ud, bconn_t *c) {
    broker_t *b = ud;
    b->fixed_ok[0] = b->fixed_ok[1] = 0;
    for (int i = 0; i < 2; i++)
        subscribe_one(b, "SUBSCRIBE", b->fixed[i]);
    /* The node is ready once every channel it had is subscribed again. */
    size_t pos = 0;
    const char *name;
    void *v;
    b->resub_left = 0;
    while (dict_next(b->chans, &pos, &name, &v)) {
        ((chan *)v)->resub = 1;
        b->resub_left++;
        subscribe_one(b, "SUBSCRIBE", name);
    }
    set_why(b, "subscribing");
    update_ready(b);
}

static void conn_down(void *ud, bconn_t *c, const char *why) {
    broker_t *b = ud;
    char w[160];
    snprintf(w, sizeof w, "Redis %s connection: %s",
             c == b->cmd ? "command" : "subscriber", why);
    set_why(b, w);
    if (c == b->cmd) b->synced = 0;
    if (c == b->sub) {
        b->fixed_ok[0] = b->fixed_ok[1] = 0;
        /* The waiters are told after the walk: what they do may watch or
         * unwatch, which changes the table. */
        chan all = {0};
        take_waiters(b, &all);
        size_t pos = 0;
        const char *name;
        void *v;
        while (dict_next(b->chans, &pos, &name, &v))
            ((chan *)v)->confirmed = ((chan *)v)->resub = 0;
        b->resub_left = 0;
        update_ready(b);
        chan_wake(&all, -EAGAIN);
        return;
    }
    update_ready(b);
}

/* ---- the tick: heartbeat, reaping, the subscriber's echo ---------------- */

static void beat_answer(void *ctx, const broker_reply *r) {
    broker_t *b = ctx;
    if (r->rc != 0 || !b->synced) return;
    log_warn("redis",
             "node %s was taken for dead (no heartbeat for "
             "--presence-ttl): registering its users again",
             b->node);
    b->synced = 0;
    set_why(b, "registering this node's users again");
    update_ready(b);
    if (b->ev.resync) b->ev.resync(b->ev.ud);
}

static void on_tick(uv_timer_t *t) {
    broker_t *b = t->data;
    if (!bconn_is_up(b->cmd)) return;
    int64_t now = clock_now_ms();
    int ttl = b->opt.presence_ttl_ms;
    if (b->synced && now >= b->next_beat) {
        b->next_beat = now + ttl / 4;
        /* PEXPIRE, not SET: if the key is gone, this node was taken for
         * dead (it stalled past --presence-ttl) and its users reaped, so
         * it registers them again. */
        char px[24];
        snprintf(px, sizeof px, "%d", ttl * 3 / 4);
        char key[128];
        snprintf(key, sizeof key, PREFIX "node:%s", b->node);
        const char *argv[3] = {"PEXPIRE", key, px};
        size_t lens[3] = {7, strlen(key), strlen(px)};
        request_argv(b, R_INTERNAL, beat_answer, b, 3, argv, lens);
    }
    if (b->synced && now >= b->next_reap) {
        b->next_reap = now + (ttl / 4 < 1000 ? ttl / 4 : 1000);
        args a;
        eval_args(&a);
        args_int(&a, now);
        args_int(&a, b->opt.history_ttl_ms);
        args_int(&a, b->opt.max_listed);
        eval(b, BS_REAP, R_INTERNAL, NULL, NULL, &a);
    }
    if (bconn_is_up(b->sub) && b->fixed_ok[1]) {
        if (now >= b->next_ping) {
            b->next_ping = now + PING_EVERY_MS;
            char msg[40];
            int n = snprintf(msg, sizeof msg, "P\t%llu\n",
                             (unsigned long long)++b->pings);
            const char *argv[3] = {"PUBLISH", b->fixed[1], msg};
            size_t lens[3] = {7, strlen(b->fixed[1]), (size_t)n};
            request_argv(b, R_INTERNAL, NULL, NULL, 3, argv, lens);
        }
        if (now - b->last_echo > b->opt.command_timeout_ms) {
            char why[96];
            snprintf(why, sizeof why, "no message delivered for %lld ms",
                     (long long)(now - b->last_echo));
            bconn_drop(b->sub, why);
        }
    }
}

/* ---- life ---------------------------------------------------------------- */

broker_t *broker_create(void *loop, const broker_options *opt,
                        const broker_events *ev) {
    broker_t *b = xcalloc(1, sizeof *b);
    b->loop = loop;
    b->opt = *opt;
    snprintf(b->node, sizeof b->node, "%s", opt->node_id);
    b->opt.node_id = b->node;
    b->ev = *ev;
    b->chans = dict_create();
    snprintf(b->fixed[0], sizeof b->fixed[0], PREFIX "all");
    snprintf(b->fixed[1], sizeof b->fixed[1], PREFIX "node:%s", b->node);
    /* Epochs: unique to this node's run, so that a room whose past was
     * lost never gets an epoch it had before. */
    snprintf(b->epoch_seed, sizeof b->epoch_seed, "%llx%x",
             (unsigned long long)clock_now_ms(), (unsigned)getpid());
    set_why(b, "connecting to Redis");
    bconn_events ce = {b, cmd_up, conn_down, NULL};
    bconn_events se = {b, sub_up, conn_down, on_push};
    b->cmd =
        bconn_create(loop, &opt->url, "command", opt->command_timeout_ms, &ce);
    b->sub = bconn_create(loop, &opt->url, "subscriber",
                          opt->command_timeout_ms, &se);
    uv_timer_init(loop, &b->tick);
    b->tick.data = b;
    uv_timer_start(&b->tick, on_tick, TICK_MS, TICK_MS);
    bconn_start(b->cmd);
    bconn_start(b->sub);
    return b;
}

static void tick_closed(uv_handle_t *h) {
    broker_t *b = h->data;
    b->tick_closed = 1;
    if (b->closing) free(b);
}

void broker_shutdown(broker_t *b) {
    if (b->shut) return;
    b->shut = 1;
    uv_close((uv_handle_t *)&b->tick, tick_closed);
    if (bconn_is_up(b->cmd)) {
        /* The goodbye: without its heartbeat the node is reaped by the
         * others at once (within a second), whatever connections of it
         * Redis still holds. */
        char key[128];
        snprintf(key, sizeof key, PREFIX "node:%s", b->node);
        const char *argv[2] = {"DEL", key};
        size_t lens[2] = {3, strlen(key)};
        request_argv(b, R_INTERNAL, NULL, NULL, 2, argv, lens);
    }
    bconn_shutdown(b->cmd, 1000);
    bconn_shutdown(b->sub, 0);
}

void broker_destroy(broker_t *b) {
    if (!b) return;
    b->closing = 1;
    chan all = {0};
    take_waiters(b, &all);
    dict_destroy(b->chans, free);
    b->chans = NULL;
    chan_wake(&all, -ECANCELED);
    bconn_destroy(b->cmd);
    bconn_destroy(b->sub);
    if (!b->shut)
        uv_close((uv_handle_t *)&b->tick, tick_closed);
    else if (b->tick_closed)
        free(b);
}

int broker_ready(const broker_t *b) {
    return b->ready;
}

const char *broker_why(const broker_t *b) {
    return b->why;
}

const char *broker_node_id(const broker_t *b) {
    return b->node;
}

/* ---- requests ------------------------------------------------------------ */

static void new_epoch(broker_t *b, char *out, size_t cap) {
    snprintf(out, cap, "%s-%llx", b->epoch_seed,
             (unsigned long long)++b->epochs);
}

int broker_publish(broker_t *b, const char *room, const char *member,
                   const char *head, size_t headlen, const char *tail,
                   size_t taillen, broker_fn fn, void *ctx) {
    char epoch[64];
    new_epoch(b, epoch, sizeof epoch);
    args a;
    eval_args(&a);
    args_str(&a, room);
    args_str(&a, member);
    args_add(&a, head, headlen);
    args_add(&a, tail, taillen);
    args_str(&a, epoch);
    args_int(&a, clock_now_ms());
    args_int(&a, b->opt.history_size);
    args_int(&a, b->opt.history_ttl_ms);
    return eval(b, BS_PUBLISH, R_PUBLISH, fn, ctx, &a);
}

int broker_send(broker_t *b, broker_scope scope, const char *id,
                const char *except_conn, const char *except_user,
                const char *json, size_t len, int ephemeral, broker_fn fn,
                void *ctx) {
    buf_t ch, msg;
    buf_init(&ch, 0);
    buf_init(&msg, 0);
    if (scope == BROKER_CONN) {
        /* A connection id is "<node>.<n>": its node's channel. */
        const char *dot = strrchr(id, '.');
        char node[65];
        snprintf(node, sizeof node, "%.*s", dot ? (int)(dot - id) : 0, id);
        channel_name(&ch, BROKER_CONN, node);
        buf_printf(&msg, "C\t%s%s\n", id,
                   ephemeral ? "\t" CLASS_EPHEMERAL : "");
    } else {
        channel_name(&ch, scope, id);
        buf_printf(&msg, "F\t%s\t%s%s\n", except_conn ? except_conn : "",
                   except_user ? except_user : "",
                   ephemeral ? "\t" CLASS_EPHEMERAL : "");
    }
    buf_append(&msg, json, len);
    const char *argv[3] = {"PUBLISH", buf_content(&ch), buf_content(&msg)};
    size_t lens[3] = {7, strlen(argv[1]), msg.len};
    int rc = request_argv(b, R_INT, fn, ctx, 3, argv, lens);
    buf_close(&ch);
    buf_close(&msg);
    return rc;
}

int broker_send_users(broker_t *b, const char *const *ids, size_t n,
                      const char *except_conn, const char *xconn_user,
                      const char *except_user, const char *json, size_t len,
                      int ephemeral, broker_fn fn, void *ctx) {
    args a;
    eval_args(&a);
    args_str(&a, except_conn);
    args_str(&a, except_conn ? xconn_user : "");
    args_str(&a, except_user);
    args_str(&a, ephemeral ? "\t" CLASS_EPHEMERAL : "");
    args_add(&a, json, len);
    for (size_t i = 0; i < n; i++)
        args_str(&a, ids[i]);
    return eval(b, BS_SEND_USERS, R_INT, fn, ctx, &a);
}

int broker_join(broker_t *b, const char *room, const char *user, broker_fn fn,
                void *ctx) {
    char epoch[64];
    new_epoch(b, epoch, sizeof epoch);
    args a;
    eval_args(&a);
    args_str(&a, room);
    args_str(&a, user);
    args_int(&a, clock_now_ms());
    args_str(&a, epoch);
    return eval(b, BS_JOIN, R_JOIN, fn, ctx, &a);
}

int broker_leave(broker_t *b, const char *room, const char *user, broker_fn fn,
                 void *ctx) {
    args a;
    eval_args(&a);
    args_str(&a, room);
    args_str(&a, user);
    args_int(&a, b->opt.history_ttl_ms);
    return eval(b, BS_LEAVE, R_JOIN, fn, ctx, &a);
}

/* A plain command on one key (and one argument, or none). */
static int keyed(broker_t *b, rkind kind, broker_fn fn, void *ctx,
                 const char *verb, const char *key, const char *arg) {
    const char *argv[3] = {verb, key, arg};
    size_t lens[3] = {strlen(verb), strlen(key), arg ? strlen(arg) : 0};
    return request_argv(b, kind, fn, ctx, arg ? 3 : 2, argv, lens);
}

int broker_is_member(broker_t *b, const char *room, const char *user,
                     broker_fn fn, void *ctx) {
    char key[640];
    snprintf(key, sizeof key, PREFIX "{%s}:roster", room);
    return keyed(b, R_FOUND, fn, ctx, "ZSCORE", key, user);
}

int broker_room_info(broker_t *b, const char *room, broker_fn fn, void *ctx) {
    args a;
    eval_args(&a);
    args_str(&a, room);
    args_int(&a, b->opt.max_listed);
    return eval(b, BS_ROOM_INFO, R_INFO, fn, ctx, &a);
}

int broker_history(broker_t *b, const char *room, const char *member,
                   int64_t since, size_t limit, const char *epoch, broker_fn fn,
                   void *ctx) {
    char fresh[64];
    new_epoch(b, fresh, sizeof fresh);
    if (limit > (size_t)b->opt.history_size)
        limit = (size_t)b->opt.history_size;
    args a;
    eval_args(&a);
    args_str(&a, room);
    args_str(&a, member);
    args_int(&a, since < 0 ? -1 : since);
    args_int(&a, (long long)limit);
    args_int(&a, clock_now_ms());
    args_int(&a, b->opt.history_ttl_ms);
    args_str(&a, fresh);
    args_str(&a, epoch);
    return eval(b, BS_HISTORY, R_HISTORY, fn, ctx, &a);
}

int broker_room_members(broker_t *b, const char *room, broker_fn fn,
                        void *ctx) {
    char key[640];
    snprintf(key, sizeof key, PREFIX "{%s}:roster", room);
    const char *argv[4] = {"ZRANGE", key, "0", "-1"};
    size_t lens[4] = {6, strlen(key), 1, 2};
    return request_argv(b, R_IDS, fn, ctx, 4, argv, lens);
}

int broker_room_page(broker_t *b, const char *room, const char *member,
                     const char *after, size_t limit, broker_fn fn, void *ctx) {
    args a;
    eval_args(&a);
    args_str(&a, room);
    args_str(&a, member);
    args_str(&a, after);
    args_int(&a, limit > (size_t)LLONG_MAX ? -1 : (long long)limit);
    return eval(b, BS_MEMBERS, R_PAGE, fn, ctx, &a);
}

int broker_user_rooms(broker_t *b, const char *user, broker_fn fn, void *ctx) {
    char key[640];
    snprintf(key, sizeof key, PREFIX "user:%s:rooms", user);
    return keyed(b, R_IDS, fn, ctx, "SMEMBERS", key, NULL);
}

int broker_online_users(broker_t *b, broker_fn fn, void *ctx) {
    return keyed(b, R_IDS, fn, ctx, "SMEMBERS", PREFIX "online", NULL);
}

int broker_user_conns(broker_t *b, const char *user, broker_fn fn, void *ctx) {
    char key[640];
    snprintf(key, sizeof key, PREFIX "user:%s:conns", user);
    return keyed(b, R_IDS, fn, ctx, "HKEYS", key, NULL);
}

int broker_presence_set(broker_t *b, const char *user, const char *status,
                        broker_fn fn, void *ctx) {
    args a;
    eval_args(&a);
    args_str(&a, user);
    args_str(&a, status);
    return eval(b, BS_PRESENCE_SET, R_INT, fn, ctx, &a);
}

int broker_presence_get(broker_t *b, const char *const *users, size_t n,
                        broker_fn fn, void *ctx) {
    args a;
    eval_args(&a);
    for (size_t i = 0; i < n; i++)
        args_str(&a, users[i]);
    return eval(b, BS_PRESENCE_GET, R_IDS, fn, ctx, &a);
}

/* The hash of a store scope. */
static void store_key(char *out, size_t cap, int kind, const char *scope) {
    if (kind == STORE_ROOM)
        snprintf(out, cap, PREFIX "store:room:{%s}", scope);
    else if (kind == STORE_USER)
        snprintf(out, cap, PREFIX "store:user:%s", scope);
    else
        snprintf(out, cap, PREFIX "store:global");
}

int broker_store_get(broker_t *b, int kind, const char *scope, const char *key,
                     broker_fn fn, void *ctx) {
    char hk[640];
    store_key(hk, sizeof hk, kind, scope);
    return keyed(b, R_STR, fn, ctx, "HGET", hk, key);
}

int broker_store_set(broker_t *b, int kind, const char *scope, const char *key,
                     const char *json, size_t len, broker_fn fn, void *ctx) {
    args a;
    eval_args(&a);
    args_int(&a, kind);
    args_str(&a, scope);
    args_str(&a, key);
    args_add(&a, json, len);
    args_int(&a, STORE_MAX_KEYS);
    return eval(b, BS_STORE_SET, R_INT, fn, ctx, &a);
}

int broker_store_delete(broker_t *b, int kind, const char *scope,
                        const char *key, broker_fn fn, void *ctx) {
    char hk[640];
    store_key(hk, sizeof hk, kind, scope);
    return keyed(b, R_INT, fn, ctx, "HDEL", hk, key);
}

int broker_conn_open(broker_t *b, const char *conn, const char *user,
                     broker_fn fn, void *ctx) {
    args a;
    eval_args(&a);
    args_str(&a, conn);
    args_str(&a, user);
    args_str(&a, b->node);
    return eval(b, BS_CONN_OPEN, R_OPEN, fn, ctx, &a);
}

int broker_conn_close(broker_t *b, const char *conn, const char *user,
                      broker_fn fn, void *ctx) {
    args a;
    eval_args(&a);
    args_str(&a, conn);
    args_str(&a, user);
    args_str(&a, b->node);
    args_int(&a, clock_now_ms());
    args_int(&a, b->opt.presence_grace_ms);
    args_int(&a, b->opt.history_ttl_ms);
    args_int(&a, b->opt.max_listed);
    return eval(b, BS_CONN_CLOSE, R_INT, fn, ctx, &a);
}

static void synced(void *ctx, const broker_reply *r) {
    broker_t *b = ctx;
    if (r->rc < 0) return; /* the connection dropped: resync comes again */
    b->synced = 1;
    update_ready(b);
}

void broker_sync(broker_t *b, const broker_state *st) {
    char epoch[64];
    new_epoch(b, epoch, sizeof epoch);
    args a;
    eval_args(&a);
    args_str(&a, b->node);
    args_int(&a, clock_now_ms());
    args_int(&a, b->opt.presence_ttl_ms * 3 / 4);
    args_int(&a, b->opt.history_ttl_ms);
    args_str(&a, epoch);
    args_int(&a, b->opt.max_listed);
    args_int(&a, (long long)st->nconns);
    for (size_t i = 0; i < st->nconns; i++) {
        args_str(&a, st->conns[i]);
        args_str(&a, st->conn_users[i]);
    }
    args_int(&a, (long long)st->nmembers);
    for (size_t i = 0; i < st->nmembers; i++) {
        args_str(&a, st->member_users[i]);
        args_str(&a, st->member_rooms[i]);
    }
    args_int(&a, (long long)st->nstatuses);
    for (size_t i = 0; i < st->nstatuses; i++) {
        args_str(&a, st->status_users[i]);
        args_str(&a, st->statuses[i]);
    }
    if (eval(b, BS_SYNC, R_INTERNAL, synced, b, &a) < 0) return;
    b->next_beat = clock_now_ms() + b->opt.presence_ttl_ms / 4;
}

/* ---- the URL ---------------------------------------------------------------
 */

int broker_valid_node_id(const char *id) {
    size_t n = strlen(id);
    if (n == 0 || n > 64) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)id[i]) && !strchr("_.-", id[i])) return 0;
    return 1;
}

int broker_parse_url(const char *s, broker_url *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    out->port = 6379;
    if (s[0] == '/' || strncmp(s, "unix://", 7) == 0) {
        const char *path = s[0] == '/' ? s : s + 7;
        if (!*path || strlen(path) >= sizeof out->path) {
            snprintf(err, errlen, "a unix socket path of 1 to %zu bytes",
                     sizeof out->path - 1);
            return -EINVAL;
        }
        snprintf(out->path, sizeof out->path, "%s", path);
        return 0;
    }
    if (strncmp(s, "redis://", 8) != 0) {
        snprintf(err, errlen,
                 "expected redis://[:password@]host[:port][/db] or a unix "
                 "socket path");
        return -EINVAL;
    }
    const char *p = s + 8;
    const char *at = strrchr(p, '@');
    if (at) {
        /* [user]:password@ -- the user part (ACL) is not supported. */
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon || colon != p) {
            snprintf(
                err, errlen,
                "only a password may come before '@' (redis://:password@host)");
            return -EINVAL;
        }
        size_t n = (size_t)(at - colon - 1);
        if (n == 0 || n >= sizeof out->password) {
            snprintf(err, errlen, "the password must be 1 to %zu bytes",
                     sizeof out->password - 1);
            return -EINVAL;
        }
        memcpy(out->password, colon + 1, n);
        p = at + 1;
    }
    const char *slash = strchr(p, '/');
    const char *hend = slash ? slash : p + strlen(p);
    const char *portsep = NULL;
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(hend - p));
        if (!rb) {
            snprintf(err, errlen, "an IPv6 address must be in brackets");
            return -EINVAL;
        }
        snprintf(out->host, sizeof out->host, "%.*s", (int)(rb - p - 1), p + 1);
        if (rb + 1 < hend && rb[1] == ':') portsep = rb + 1;
    } else {
        portsep = memchr(p, ':', (size_t)(hend - p));
        const char *e = portsep ? portsep : hend;
        if ((size_t)(e - p) >= sizeof out->host) {
            snprintf(err, errlen, "the host name is too long");
            return -EINVAL;
        }
        snprintf(out->host, sizeof out->host, "%.*s", (int)(e - p), p);
    }
    if (!out->host[0]) {
        snprintf(err, errlen, "no host in '%s'", s);
        return -EINVAL;
    }
    if (portsep) {
        char *end;
        long port = strtol(portsep + 1, &end, 10);
        if (end != hend || port < 1 || port > 65535) {
            snprintf(err, errlen, "the port must be 1 to 65535");
            return -EINVAL;
        }
        out->port = (int)port;
    }
    if (slash && slash[1]) {
        char *end;
        long db = strtol(slash + 1, &end, 10);
        if (*end || db < 0 || db > 1000000) {
            snprintf(err, errlen, "the database must be a number, got '%s'",
                     slash + 1);
            return -EINVAL;
        }
        out->db = (int)db;
    }
    return 0;
}
