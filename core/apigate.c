/* apigate.c -- the requests the server answers itself: /metrics and
 * /api/ (api.h decides what to answer; this file reads and writes).
 *
 * They are not handed to libwebsockets: an API request needs its
 * Authorization header and its body, and its answer may wait for Redis.
 * The body is read into the head's buffer, bounded by --max-message and
 * by the same deadline as the head (--handshake-timeout from accept). A
 * request waiting for its answer sits on the relaying list (RELAY_MS); a
 * client that leaves meanwhile cancels it. The answer is written as the
 * socket takes it, then the connection lingers as after a refusal (one
 * request per connection: Connection: close). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "alloc.h"
#include "codes.h"
#include "log.h"
#include "transport_int.h"

/* api_answer_fn: the whole answer goes into c->head and out. */
static void on_answer(void *ctx, const api_answer *a) {
    tconn *c = ctx;
    c->api = NULL;
    if (c->state == T_DEAD) return;
    buf_t b;
    buf_init(&b, 0);
    buf_printf(&b,
               "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
               "Cache-Control: no-store\r\nConnection: close\r\n%s\r\n",
               a->status, http_reason(a->status), a->type, a->len,
               a->extra ? a->extra : "");
    buf_append(&b, a->body, a->len);
    size_t n = b.len;
    /* The head (or body) in c->head is no longer read once fn is called
     * (api.h), so the answer takes its place. */
    free(c->head);
    c->head = buf_steal(&b);
    c->head_cap = (uint32_t)n;
    c->state = T_ANSWER;
    c->head_len = (uint32_t)n;
    c->head_scanned = 0;
    if (a->status >= 400 && a->status != 404)
        transport__log_refusal(c->t, &c->addr, a->status, "API request");
    transport__list_push(&c->t->relaying, c, RELAY_MS);
    transport__api_write(c);
}

void transport__api_write(tconn *c) {
    const char *p = c->head;
    while (c->head_scanned < c->head_len) {
        size_t left = c->head_len - c->head_scanned;
        if (!c->tls) {
            ssize_t n = send(c->fd, p + c->head_scanned, left, MSG_NOSIGNAL);
            if (n < 0 &&
                (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
                transport__poll_set(c, UV_READABLE | UV_WRITABLE);
                return;
            }
            if (n <= 0) return transport__teardown(c, 0);
            c->head_scanned += (uint32_t)n;
            continue;
        }
        int rc = tls_flush(c->tls);
        if (rc == TLS_ERR) return transport__teardown(c, 0);
        if (rc < 0) {
            transport__poll_set(c, UV_READABLE | UV_WRITABLE);
            return;
        }
        long n = tls_write(c->tls, p + c->head_scanned,
                           left > TLS_RECORD ? TLS_RECORD : left);
        if (n == TLS_ERR) return transport__teardown(c, 0);
        if (n < 0) {
            transport__poll_set(c, UV_READABLE | UV_WRITABLE);
            return;
        }
        c->head_scanned += (uint32_t)n;
    }
    if (c->tls) {
        int rc = tls_flush(c->tls);
        if (rc == TLS_ERR) return transport__teardown(c, 0);
        if (rc < 0) {
            transport__poll_set(c, UV_READABLE | UV_WRITABLE);
            return;
        }
    }
    /* All out: FIN, and what the client still sends is dropped for a
     * while (as after a refusal). */
    transport__shut_wr(c);
    free(c->head);
    c->head = NULL;
    c->head_len = c->head_cap = c->head_scanned = 0;
    c->state = T_LINGER;
    transport__list_push(&c->t->lingering, c, LINGER_MS);
    transport__poll_set(c, UV_READABLE);
}

/* After api_head or api_body: the request waits for its answer, or was
 * answered (on_answer moved c on). */
static void after(tconn *c, api_step st, api_req *req) {
    if (st != API_WAIT) return;
    if (c->state == T_DEAD) {
        api_cancel(req);
        return;
    }
    c->api = req;
    c->state = T_API;
    transport__list_push(&c->t->relaying, c, RELAY_MS);
    transport__poll_set(c, UV_READABLE);
}

static void body_done(tconn *c, size_t need) {
    api_req *req = NULL;
    api_step st = api_body(c->t->api, c->head, need, &req, on_answer, c);
    after(c, st, req);
}

void transport__api_head(tconn *c, const http_req *r, size_t hl) {
    size_t need = 0;
    api_req *req = NULL;
    api_step st = api_head(c->t->api, r, &need, &req, on_answer, c);
    if (st != API_BODY) return after(c, st, req);
    /* The body: what came behind the head first, then reads, in a buffer
     * of its size (at most --max-message). */
    size_t have = c->head_len - hl;
    if (have > need) have = need;
    char *body = xmalloc(need ? need : 1);
    memcpy(body, c->head + hl, have);
    free(c->head);
    c->head = body;
    c->head_cap = (uint32_t)need;
    c->head_scanned = (uint32_t)have;
    c->head_len = 0;
    c->state = T_BODY;
    if (have == need) return body_done(c, need);
    transport__poll_set(c, UV_READABLE);
    transport__api_read(c);
}

void transport__api_read(tconn *c) {
    size_t need = c->head_cap;
    do {
        ssize_t n = transport__recv(c, c->head + c->head_scanned,
                                    need - c->head_scanned);
        if (n < 0) return;
        if (n == 0) return transport__teardown(c, 0);
        c->head_scanned += (uint32_t)n;
    } while (c->head_scanned < need && transport__pending(c));
    if (c->head_scanned < need) return;
    transport__list_remove(c);
    body_done(c, need);
}
