/* gate.c -- the front door: a request head read within its limits, then
 * refused with an HTTP status, upgraded to a WebSocket at /ws, or handed
 * to the HTTP side (see transport.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "codes.h"
#include "hub.h"
#include "log.h"
#include "origin.h"
#include "transport_int.h"

static int valid_key(const char *k, size_t n) {
    /* 16 random bytes in base64: 22 characters and "==". */
    if (n != 24 || k[22] != '=' || k[23] != '=') return 0;
    for (size_t i = 0; i < 22; i++) {
        char ch = k[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
              (ch >= '0' && ch <= '9') || ch == '+' || ch == '/'))
            return 0;
    }
    return 1;
}

/* The head asks for a WebSocket at /ws: answers 101 (or refuses), and the
 * connection becomes a WebSocket one. extra: bytes after the head. */
static void upgrade(tconn *c, const http_req *r, unsigned char *extra,
                    size_t nextra) {
    transport_t *t = c->t;
    size_t n;
    const char *v;
    if (r->method_len != 3 || memcmp(r->method, "GET", 3) != 0)
        return transport__refuse(c, 405, "a WebSocket upgrade is a GET",
                                 "Allow: GET\r\n");
    if (r->minor < 1)
        return transport__refuse(c, 400, "WebSocket needs HTTP/1.1", NULL);
    if (!http_header_has_token(r, "Connection", "upgrade") ||
        !http_header_has_token(r, "Upgrade", "websocket"))
        return transport__refuse(c, 426, "this endpoint speaks WebSocket only",
                                 "Upgrade: websocket\r\n");
    v = http_header_get(r, "Sec-WebSocket-Version", &n);
    if (!v || n != 2 || memcmp(v, "13", 2) != 0)
        return transport__refuse(c, 426, "WebSocket version 13 required",
                                 "Sec-WebSocket-Version: 13\r\n");
    v = http_header_get(r, "Sec-WebSocket-Key", &n);
    if (!v || !valid_key(v, n))
        return transport__refuse(
            c, 400, "missing or malformed Sec-WebSocket-Key", NULL);
    char accept[29];
    ws_accept_key(v, n, accept);
    /* No subprotocol is needed; a client that offers some must offer
     * ours, or it would fail the connection itself. */
    int proto = 0;
    if (http_header_get(r, "Sec-WebSocket-Protocol", NULL)) {
        if (!http_header_has_token(r, "Sec-WebSocket-Protocol", "luahub"))
            return transport__refuse(c, 400,
                                     "unsupported subprotocol (offer luahub, "
                                     "or none)",
                                     NULL);
        proto = 1;
    }
    /* permessage-deflate, when it is on and the client offers it in a
     * form we take; anything else in the offer just goes unanswered. */
    char ext[PMD_RESPONSE_MAX];
    int pmd = 0;
    static const char ext_name[] = "Sec-WebSocket-Extensions";
    for (size_t i = 0; t->cfg->compression && !pmd && i < r->nheaders; i++) {
        const http_header *hd = &r->headers[i];
        if (hd->name_len == sizeof ext_name - 1 &&
            strncasecmp(hd->name, ext_name, hd->name_len) == 0)
            pmd = pmd_negotiate(hd->value, hd->value_len, ext, sizeof ext);
    }
    size_t ol = 0, hl = 0;
    const char *origin = http_header_get(r, "Origin", &ol);
    const char *host = http_header_get(r, "Host", &hl);
    if (!origin_allowed(t->cfg->allowed_origins, origin, ol, host, hl)) {
        char why[300];
        snprintf(why, sizeof why,
                 "origin %.*s is not allowed (--allowed-origins)",
                 (int)(ol > 200 ? 200 : ol), origin);
        return transport__refuse(c, 403, why, NULL);
    }
    if (t->stopping)
        return transport__refuse(c, 503, "server shutting down", NULL);

    char uid[72];
    const char *why =
        auth_identify(t->auth, r, (int64_t)time(NULL), uid, sizeof uid);
    /* Put together by hand: snprintf cost more than the rest of the
     * answer. */
    static const char head101[] =
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: ";
    static const char proto_line[] = "\r\nSec-WebSocket-Protocol: luahub";
    static const char ext_line[] = "\r\nSec-WebSocket-Extensions: ";
    char resp[256 + PMD_RESPONSE_MAX];
    size_t rl = 0;
#define PUT(s, n) (memcpy(resp + rl, (s), (n)), rl += (n))
    PUT(head101, sizeof head101 - 1);
    PUT(accept, 28);
    if (proto) PUT(proto_line, sizeof proto_line - 1);
    if (pmd) {
        PUT(ext_line, sizeof ext_line - 1);
        PUT(ext, strlen(ext));
    }
    PUT("\r\n\r\n", 4);
#undef PUT
    c->pmd = (uint8_t)pmd;
    transport__ws_open(c, why ? NULL : uid, why, resp, rl, extra, nextra);
}

static void on_relay(uv_poll_t *h, int status, int events) {
    transport__relay_pump(h->data);
}

/* The answer is all out: close_notify, FIN, and what the client still
 * sends is dropped for a while (as after a refusal). */
static void relay_done(tconn *c) {
    transport_t *t = c->t;
    transport__relay_close(c);
    transport__shut_wr(c);
    c->head_len = 0;
    c->state = T_LINGER;
    transport__list_push(&t->lingering, c, LINGER_MS);
    transport__poll_set(c, UV_READABLE);
}

void transport__relay_pump(tconn *c) {
    transport_t *t = c->t;
    for (int i = 0; i < FLUSH_ROUNDS * 4; i++) {
        int rc = tls_flush(c->tls);
        if (rc == TLS_ERR) return transport__teardown(c, 0);
        if (rc < 0) {
            /* The client's socket is full: wait for it, not for lws. */
            uv_poll_stop(c->relay);
            transport__poll_set(c, UV_READABLE | UV_WRITABLE);
            return;
        }
        ssize_t n = recv(c->relay_fd, t->wbuf, sizeof t->wbuf, 0);
        if (n < 0 &&
            (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            break;
        if (n <= 0) return relay_done(c);
        transport__list_push(&t->relaying, c, RELAY_MS);
        if (tls_write(c->tls, t->wbuf, (size_t)n) < 0)
            return transport__teardown(c, 0);
    }
    uv_poll_start(c->relay, UV_READABLE, on_relay);
    transport__poll_set(c, UV_READABLE);
}

/* TLS: lws gets one end of a socketpair, the transport relays what it
 * answers from the other. */
static void relay(tconn *c, const buf_t *b) {
    transport_t *t = c->t;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) <
        0)
        return transport__refuse(c, 503, "out of file descriptors", NULL);
    c->relay = xmalloc(sizeof *c->relay);
    if (uv_poll_init(t->loop, c->relay, sv[0]) < 0) {
        free(c->relay);
        c->relay = NULL;
        close(sv[0]);
        close(sv[1]);
        return transport__refuse(c, 503, "out of file descriptors", NULL);
    }
    c->relay->data = c;
    c->relay_fd = sv[0];
    free(c->head);
    c->head = NULL;
    c->head_len = c->head_cap = 0;
    c->state = T_RELAY;
    transport__list_push(&t->relaying, c, RELAY_MS);
    uv_poll_start(c->relay, UV_READABLE, on_relay);
    t->http(t->http_ud, sv[1], buf_content(b), b->len);
}

/* A plain HTTP request: handed to the HTTP side with a head rebuilt for
 * it. */
static void hand_over(tconn *c, const http_req *r) {
    transport_t *t = c->t;
    buf_t b;
    buf_init(&b, 0);
    if (http_forward_head(r, &b, FORWARD_MAX) < 0) {
        buf_close(&b);
        return transport__refuse(c, 431, "request headers too large", NULL);
    }
    if (c->tls) {
        relay(c, &b);
        buf_close(&b);
        return;
    }
    int fd = c->fd;
    transport__poll_forget(c); /* it stays open: it leaves the set here */
    c->fd = -1;                /* the HTTP side owns it now */
    transport__teardown(c, 0);
    t->http(t->http_ud, fd, buf_content(&b), b.len);
    buf_close(&b);
}

static void route(tconn *c, const http_req *r, size_t head_len) {
    int ws = r->path_len == 3 && memcmp(r->target, "/ws", 3) == 0;
    if (ws) {
        unsigned char *extra = (unsigned char *)c->head + head_len;
        size_t nextra = c->head_len - head_len;
        /* The head buffer is freed by upgrade's state change: keep the
         * extra bytes in the read buffer's stead first. */
        char *head = c->head;
        c->head = NULL;
        upgrade(c, r, extra, nextra);
        free(head);
        return;
    }
    if (http_header_has_token(r, "Upgrade", "websocket"))
        return transport__refuse(c, 404, "WebSocket clients connect at /ws",
                                 NULL);
    if (c->t->api && api_serves(r->target, r->path_len)) {
        if (c->t->stopping)
            return transport__refuse(c, 503, "server shutting down", NULL);
        return transport__api_head(c, r, head_len);
    }
    if (!((r->method_len == 3 && memcmp(r->method, "GET", 3) == 0) ||
          (r->method_len == 4 && memcmp(r->method, "HEAD", 4) == 0)))
        return transport__refuse(c, 405, "only GET and HEAD are served here",
                                 "Allow: GET, HEAD\r\n");
    if (c->t->stopping)
        return transport__refuse(c, 503, "server shutting down", NULL);
    hand_over(c, r);
}

/* TLS: checks that the client speaks it, and advances its handshake.
 * Returns 1 when done, 0 while it goes on, -1 when c was answered or
 * closed. */
static int tls_step(tconn *c) {
    if (!c->sniffed) {
        unsigned char first;
        ssize_t n = recv(c->fd, &first, 1, MSG_PEEK);
        if (n < 0 &&
            (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return 0;
        if (n <= 0) {
            transport__teardown(c, 0);
            return -1;
        }
        c->sniffed = 1;
        if (first != TLS_FIRST_BYTE) {
            /* Plain HTTP (ws://, http://) to a TLS port: said in plain. */
            tls_conn_free(c->tls);
            c->tls = NULL;
            transport__refuse(
                c, 400, "this port speaks TLS only (https://, wss://)", NULL);
            return -1;
        }
    }
    int rc = tls_handshake(c->tls);
    if (rc == 0) return 1;
    if (rc == TLS_ERR) {
        char a[NETADDR_TEXT];
        log_debug("http", "TLS handshake failed ip=%s",
                  netaddr_format(&c->addr, a));
        transport__teardown(c, 0);
        return -1;
    }
    transport__poll_set(c, rc == TLS_WANT_WRITE ? UV_READABLE | UV_WRITABLE
                                                : UV_READABLE);
    return 0;
}

static void head_read_once(tconn *c);

void transport__head_read(tconn *c) {
    if (c->tls && !tls_ready(c->tls)) {
        if (tls_step(c) <= 0) return;
        transport__poll_set(c, UV_READABLE);
    }
    /* What TLS has taken from the socket is read to the end: no event
     * would announce it. */
    do
        head_read_once(c);
    while (c->state == T_HANDSHAKE && transport__pending(c));
}

static void head_read_once(tconn *c) {
    if (c->head_len == c->head_cap) {
        uint32_t cap = c->head_cap ? c->head_cap * 2 : HEAD_START;
        if (cap > HTTP_MAX_HEAD) cap = HTTP_MAX_HEAD;
        c->head = xrealloc(c->head, cap);
        c->head_cap = cap;
    }
    ssize_t n =
        transport__recv(c, c->head + c->head_len, c->head_cap - c->head_len);
    if (n < 0) return;
    if (n == 0) {
        transport__teardown(c, 0); /* the client left: nobody to answer */
        return;
    }
    c->head_len += (uint32_t)n;
    size_t scanned = c->head_scanned;
    int hl = http_head_complete(c->head, c->head_len, &scanned);
    c->head_scanned = (uint32_t)scanned;
    if (hl == -414)
        return transport__refuse(c, 414,
                                 "request target longer than 2048 bytes", NULL);
    if (hl < 0)
        return transport__refuse(c, 431, "request head larger than 8192 bytes",
                                 NULL);
    if (hl == 0) return;
    http_req r;
    int rc = http_parse(&r, c->head, (size_t)hl);
    if (rc == -431)
        return transport__refuse(c, 431, "more than 64 header lines", NULL);
    if (rc == -414)
        return transport__refuse(c, 414,
                                 "request target longer than 2048 bytes", NULL);
    if (rc == -505) return transport__refuse(c, 505, "HTTP/1.x only", NULL);
    if (rc < 0) return transport__refuse(c, 400, "malformed request", NULL);
    if (c->unsure) {
        /* From a trusted proxy: the client its header names is counted and
         * held to the per-address limit from now on. A request that names
         * nobody stays the proxy's, which is not limited as one client. */
        netaddr client = c->addr;
        c->unsure = 0;
        if (netaddr_forwarded_client(&r, &c->t->proxies, &client) &&
            transport__over_ip_limit(c, transport__count(c, &client)))
            return;
    }
    route(c, &r, (size_t)hl);
}
