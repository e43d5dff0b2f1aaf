/* broker_conn.c -- one connection to Redis on the libuv loop (see
 * broker_int.h).
 *
 * hiredis 0.14 resolves names with a blocking getaddrinfo and keeps no
 * timeouts on asynchronous commands, so this file does both itself: the
 * host is resolved with uv_getaddrinfo and hiredis is given the address;
 * every command is timed, and a connection whose oldest command has waited
 * past the timeout is dropped (every waiting command fails) and made
 * again, after a backoff that doubles from 100 ms to 2 s. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "broker_int.h"
#include "clock.h"
#include "log.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define TICK_MS 100

typedef enum bstate { B_DOWN, B_RESOLVING, B_CONNECTING, B_HELLO, B_UP } bstate;

/* A command waiting for its answer, oldest first. */
typedef struct bcmd {
    struct bcmd *prev, *next;
    bconn_t *c;
    bconn_reply_fn fn;
    void *ctx;
    int64_t sent;
} bcmd;

struct bconn {
    uv_loop_t *loop;
    broker_url url;
    char name[16];
    int timeout_ms;
    bconn_events ev;
    redisAsyncContext *ac;
    bstate state;
    int started, closing;
    int shutting; /* bconn_shutdown: finishing, then closing */
    int64_t shut_deadline;
    uv_timer_t timer;
    uv_getaddrinfo_t gai;
    int resolving; /* gai in flight */
    int timer_closed;
    int hello_left; /* AUTH/SELECT answers still to come */
    int backoff_ms;
    int64_t next_try;
    bcmd *head, *tail;
    char last_error[160]; /* logged once until it changes */
};

/* ---- hiredis on libuv ---------------------------------------------------
 * hiredis' own libuv adapter ignores a poll error (a refused connect shows
 * up as one), so a connection to a Redis that is down would hang until
 * our timeout: this one hands errors to hiredis as events, and hiredis
 * finds the socket's error itself. */

typedef struct uvev {
    redisAsyncContext *ac;
    uv_poll_t poll;
    int events;
} uvev;

static void uvev_cb(uv_poll_t *h, int status, int events) {
    uvev *e = h->data;
    if (status < 0) events = e->events; /* let hiredis see the error */
    if (e->ac && (events & UV_READABLE)) redisAsyncHandleRead(e->ac);
    if (e->ac && (events & UV_WRITABLE)) redisAsyncHandleWrite(e->ac);
}

static void uvev_set(uvev *e, int events) {
    e->events = events;
    if (events)
        uv_poll_start(&e->poll, events, uvev_cb);
    else
        uv_poll_stop(&e->poll);
}

static void uvev_add_read(void *p) {
    uvev *e = p;
    uvev_set(e, e->events | UV_READABLE);
}
static void uvev_del_read(void *p) {
    uvev *e = p;
    uvev_set(e, e->events & ~UV_READABLE);
}
static void uvev_add_write(void *p) {
    uvev *e = p;
    uvev_set(e, e->events | UV_WRITABLE);
}
static void uvev_del_write(void *p) {
    uvev *e = p;
    uvev_set(e, e->events & ~UV_WRITABLE);
}

static void uvev_closed(uv_handle_t *h) {
    free(h->data);
}

static void uvev_cleanup(void *p) {
    uvev *e = p;
    e->ac = NULL;
    uv_close((uv_handle_t *)&e->poll, uvev_closed);
}

static int uvev_attach(redisAsyncContext *ac, uv_loop_t *loop) {
    uvev *e = xcalloc(1, sizeof *e);
    if (uv_poll_init(loop, &e->poll, ac->c.fd) != 0) {
        free(e);
        return -1;
    }
    e->ac = ac;
    e->poll.data = e;
    ac->ev.data = e;
    ac->ev.addRead = uvev_add_read;
    ac->ev.delRead = uvev_del_read;
    ac->ev.addWrite = uvev_add_write;
    ac->ev.delWrite = uvev_del_write;
    ac->ev.cleanup = uvev_cleanup;
    return 0;
}

/* ---- commands ------------------------------------------------------------ */

static void cmd_unlink(bconn_t *c, bcmd *k) {
    if (k->prev)
        k->prev->next = k->next;
    else
        c->head = k->next;
    if (k->next)
        k->next->prev = k->prev;
    else
        c->tail = k->prev;
}

static void lost(bconn_t *c, const char *why) {
    int was_up = c->state == B_UP;
    if (c->shutting) {
        c->state = B_DOWN;
        c->ac = NULL;
        return;
    }
    c->state = B_DOWN;
    c->ac = NULL;
    c->next_try = clock_now_ms() + c->backoff_ms;
    c->backoff_ms =
        c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
    if (was_up || strcmp(why, c->last_error) != 0) {
        char where[320];
        if (c->url.path[0])
            snprintf(where, sizeof where, "%s", c->url.path);
        else
            snprintf(where, sizeof where, "%s:%d", c->url.host, c->url.port);
        log_warn("redis", "%s connection to %s %s: %s", c->name, where,
                 was_up ? "lost" : "failed", why);
        snprintf(c->last_error, sizeof c->last_error, "%s", why);
    }
    if (!c->closing && c->ev.down) c->ev.down(c->ev.ud, c, why);
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
    bconn_t *c = ac->data;
    if (!c || c->state == B_DOWN) return;
    lost(c, status == REDIS_OK
                ? "closed"
                : (ac->errstr[0] ? ac->errstr : "closed by Redis"));
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata) {
    bcmd *k = privdata;
    bconn_t *c = k->c;
    cmd_unlink(c, k);
    if (k->fn) k->fn(k->ctx, reply);
    free(k);
}

static int send_argv(bconn_t *c, bconn_reply_fn fn, void *ctx, int argc,
                     const char **argv, const size_t *lens) {
    bcmd *k = xcalloc(1, sizeof *k);
    k->c = c;
    k->fn = fn;
    k->ctx = ctx;
    k->sent = clock_now_ms();
    k->prev = c->tail;
    if (c->tail)
        c->tail->next = k;
    else
        c->head = k;
    c->tail = k;
    if (redisAsyncCommandArgv(c->ac, on_reply, k, argc, argv, lens) !=
        REDIS_OK) {
        cmd_unlink(c, k);
        free(k);
        return -EAGAIN;
    }
    return 0;
}

static void hello_reply(void *ctx, redisReply *r) {
    bconn_t *c = ctx;
    if (c->state != B_HELLO) return;
    if (!r) return; /* dropped: on_disconnect says so */
    if (r->type == REDIS_REPLY_ERROR) {
        char why[160];
        snprintf(why, sizeof why, "%.*s", (int)r->len, r->str);
        /* Dropped by the tick, not from inside hiredis' callback. */
        log_error("redis", "%s connection refused: %s", c->name, why);
        c->hello_left = -1;
        return;
    }
    if (--c->hello_left > 0) return;
    c->state = B_UP;
    c->backoff_ms = BACKOFF_MIN_MS;
    c->last_error[0] = '\0';
    log_info("redis", "%s connection up", c->name);
    if (c->ev.up) c->ev.up(c->ev.ud, c);
}

static void on_connect(const redisAsyncContext *ac, int status) {
    bconn_t *c = ac->data;
    if (!c) return;
    if (status != REDIS_OK) {
        /* hiredis frees ac after this. */
        lost(c, ac->errstr[0] ? ac->errstr : "cannot connect");
        return;
    }
    c->state = B_HELLO;
    c->hello_left = 1;
    const char *argv[3];
    size_t lens[3];
    if (c->url.password[0]) {
        argv[0] = "AUTH";
        argv[1] = c->url.password;
        lens[0] = 4;
        lens[1] = strlen(c->url.password);
        c->hello_left++;
        send_argv(c, hello_reply, c, 2, argv, lens);
    }
    char db[16];
    snprintf(db, sizeof db, "%d", c->url.db);
    argv[0] = "SELECT";
    argv[1] = db;
    lens[0] = 6;
    lens[1] = strlen(db);
    send_argv(c, hello_reply, c, 2, argv, lens);
}

static void connect_to(bconn_t *c, const char *ip) {
    redisAsyncContext *ac = c->url.path[0] ? redisAsyncConnectUnix(c->url.path)
                                           : redisAsyncConnect(ip, c->url.port);
    if (!ac) {
        lost(c, "out of memory");
        return;
    }
    if (ac->err) {
        char why[160];
        snprintf(why, sizeof why, "%s", ac->errstr);
        redisAsyncFree(ac);
        lost(c, why);
        return;
    }
    ac->data = c;
    if (uvev_attach(ac, c->loop) < 0) {
        redisAsyncFree(ac);
        lost(c, "cannot watch the socket");
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    c->ac = ac;
    c->state = B_CONNECTING;
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
    bconn_t *c = req->data;
    c->resolving = 0;
    if (c->closing || c->shutting) {
        if (res) uv_freeaddrinfo(res);
        if (c->closing && c->timer_closed) free(c);
        return;
    }
    if (status < 0 || !res) {
        char why[320];
        snprintf(why, sizeof why, "cannot resolve %s: %s", c->url.host,
                 uv_strerror(status));
        if (res) uv_freeaddrinfo(res);
        lost(c, why);
        return;
    }
    char ip[64] = "";
    if (res->ai_family == AF_INET6)
        uv_ip6_name((struct sockaddr_in6 *)res->ai_addr, ip, sizeof ip);
    else
        uv_ip4_name((struct sockaddr_in *)res->ai_addr, ip, sizeof ip);
    uv_freeaddrinfo(res);
    connect_to(c, ip);
}

static void try_connect(bconn_t *c) {
    if (c->url.path[0]) {
        connect_to(c, NULL);
        return;
    }
    c->state = B_RESOLVING;
    c->gai.data = c;
    struct addrinfo hints = {0};
    hints.ai_socktype = SOCK_STREAM;
    int rc = uv_getaddrinfo(c->loop, &c->gai, on_resolved, c->url.host, NULL,
                            &hints);
    if (rc < 0) {
        lost(c, uv_strerror(rc));
        return;
    }
    c->resolving = 1;
}

void bconn_drop(bconn_t *c, const char *why) {
    if (!c->ac) return;
    redisAsyncContext *ac = c->ac;
    /* on_disconnect is called from inside redisAsyncFree only for a
     * connected context: say it here, once, either way. */
    ac->data = NULL;
    lost(c, why);
    redisAsyncFree(ac);
}

static void timer_closed(uv_handle_t *h);

static void on_tick(uv_timer_t *t) {
    bconn_t *c = t->data;
    int64_t now = clock_now_ms();
    if (c->shutting) {
        /* Gone, or given the grace it had: the timer goes last. */
        if (c->ac && now >= c->shut_deadline) bconn_drop(c, "shutting down");
        if (!c->ac && !uv_is_closing((uv_handle_t *)&c->timer))
            uv_close((uv_handle_t *)&c->timer, timer_closed);
        return;
    }
    if (c->state == B_DOWN && now >= c->next_try) {
        try_connect(c);
        return;
    }
    if (c->state == B_HELLO && c->hello_left < 0) {
        bconn_drop(c, "refused the connection (AUTH or SELECT)");
        return;
    }
    if (c->head && now - c->head->sent > c->timeout_ms) {
        char why[96];
        snprintf(why, sizeof why, "no answer within %d ms", c->timeout_ms);
        bconn_drop(c, why);
        return;
    }
    if (c->state == B_CONNECTING && now - c->next_try > c->timeout_ms)
        bconn_drop(c, "connect timed out");
}

bconn_t *bconn_create(uv_loop_t *loop, const broker_url *url, const char *name,
                      int timeout_ms, const bconn_events *ev) {
    bconn_t *c = xcalloc(1, sizeof *c);
    c->loop = loop;
    c->url = *url;
    snprintf(c->name, sizeof c->name, "%s", name);
    c->timeout_ms = timeout_ms;
    c->ev = *ev;
    c->backoff_ms = BACKOFF_MIN_MS;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    return c;
}

void bconn_start(bconn_t *c) {
    if (c->started) return;
    c->started = 1;
    c->next_try = clock_now_ms();
    try_connect(c);
    uv_timer_start(&c->timer, on_tick, TICK_MS, TICK_MS);
}

/* The struct goes with the last of the timer and a resolution in flight
 * (a cancelled one still calls back), once bconn_destroy has let go. */
static void timer_closed(uv_handle_t *h) {
    bconn_t *c = h->data;
    c->timer_closed = 1;
    if (!c->resolving && c->closing) free(c);
}

void bconn_shutdown(bconn_t *c, int grace_ms) {
    if (c->shutting) return;
    c->shutting = 1;
    c->shut_deadline = clock_now_ms() + grace_ms;
    if (c->resolving) uv_cancel((uv_req_t *)&c->gai);
    if (!c->ac) return;
    if (c->state == B_UP) {
        /* What was sent goes out and is answered; then it closes. */
        redisAsyncDisconnect(c->ac);
    } else {
        bconn_drop(c, "shutting down");
    }
}

void bconn_destroy(bconn_t *c) {
    if (!c) return;
    c->closing = 1;
    if (c->timer_closed) {
        /* Shut down, and the loop has closed everything already. */
        if (!c->resolving) free(c);
        return;
    }
    if (c->ac) {
        redisAsyncContext *ac = c->ac;
        ac->data = NULL;
        c->ac = NULL;
        c->state = B_DOWN;
        redisAsyncFree(ac);
    }
    if (c->resolving) uv_cancel((uv_req_t *)&c->gai);
    uv_close((uv_handle_t *)&c->timer, timer_closed);
}

int bconn_is_up(const bconn_t *c) {
    return c->state == B_UP;
}

int bconn_command(bconn_t *c, bconn_reply_fn fn, void *ctx, int argc,
                  const char **argv, const size_t *lens) {
    if (c->state != B_UP || c->shutting) return -EAGAIN;
    return send_argv(c, fn, ctx, argc, argv, lens);
}

static void on_push(redisAsyncContext *ac, void *reply, void *privdata) {
    bconn_t *c = privdata;
    if (reply && c->ev.push && !c->closing) c->ev.push(c->ev.ud, reply);
}

int bconn_subscribe(bconn_t *c, int argc, const char **argv,
                    const size_t *lens) {
    if (c->state != B_UP) return -EAGAIN;
    return redisAsyncCommandArgv(c->ac, on_push, c, argc, argv, lens) ==
                   REDIS_OK
               ? 0
               : -EAGAIN;
}
