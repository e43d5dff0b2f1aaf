/* transport.c -- see transport.h. */
#define _GNU_SOURCE /* accept4 */
#include "transport.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "buf.h"
#include "codes.h"
#include "conn.h"
#include "frame.h"
#include "http.h"
#include "listen.h"
#include "log.h"
#include "rate.h"
#include "wsproto.h"

/* Bytes read from a socket at once, into one buffer shared by every
 * connection: a fast sender's whole window is read and handled in one
 * pass, and an idle connection holds no read buffer. */
#define READ_SIZE 65536
/* A request head's buffer starts at this and doubles up to HTTP_MAX_HEAD. */
#define HEAD_START 1024
/* After a refusal: how long, and how much, the client's remaining bytes
 * are read and dropped before the socket is closed (closing with unread
 * data would reset the connection and lose the answer). */
#define LINGER_MS 2000
#define LINGER_BYTES 65536
/* Milliseconds a closing connection may take to get its frames and close
 * frame out and the client to answer. */
#define CLOSE_GRACE_MS 3000
/* Frames per writev(), and writev() calls per connection per flush, so one
 * fast reader cannot starve the others in a loop pass. */
#define IOV_BATCH 64
#define FLUSH_ROUNDS 4
/* How often the deadlines (handshakes, lingering, closing) are checked. */
#define SWEEP_MS 100
/* Connections accepted per wake-up of a listening socket. */
#define ACCEPT_BATCH 64
/* libwebsockets' header space (its max_http_header_data is 4096). */
#define FORWARD_MAX 4000
/* A control frame we write: a pong echoes up to 125 bytes. */
#define CTL_CAP (2 + 125)

typedef enum tstate {
    T_HANDSHAKE, /* reading the request head */
    T_LINGER,    /* refused: the answer is out, dropping what comes */
    T_OPEN,      /* a WebSocket connection */
    T_CLOSING,   /* our close frame is out: dropping what comes until EOF */
    T_DEAD,      /* closed; freed by the handle's close callback */
} tstate;

typedef struct tconn tconn;

/* A list of connections with deadlines; every list has one timeout, so
 * appending keeps it in deadline order. */
typedef struct tlist {
    tconn *head, *tail;
} tlist;

struct tconn {
    uv_poll_t poll;
    transport_t *t;
    tconn *lnext, *lprev;
    tlist *list;       /* the deadline list it is on, or NULL */
    uint64_t deadline; /* uv_now() milliseconds */
    int fd;
    uint8_t state;
    uint8_t polling;     /* the events being polled */
    uint8_t failed;      /* the client broke the protocol: input ignored */
    uint8_t msg_binary;  /* the message being assembled is binary */
    uint8_t ctl_len, ctl_off;     /* a pong or ping being written */
    uint8_t close_len, close_off; /* our close frame, after the queue */
    uint8_t carry_len;
    uint32_t wr_off;   /* bytes of the first queued frame already written */
    /* T_HANDSHAKE: the request head so far. T_LINGER: bytes dropped. */
    char *head;
    uint32_t head_len, head_cap, head_scanned;
    /* T_OPEN */
    conn_t *conn;      /* NULL for a connection refused after the upgrade */
    ws_parser_t parser;
    buf_t *msg;        /* a message arriving in pieces, while it does */
    unsigned char *ctl, *closef, *carry;
    rate_bucket rl;
};

struct transport {
    uv_loop_t *loop;
    const config_t *cfg;
    auth_t *auth;
    hub_t *hub;
    transport_http_fn http;
    void *http_ud;
    listen_set ls;
    uv_poll_t lpoll[LISTEN_MAX_SOCKETS];
    size_t nlpoll;
    int reserve_fd; /* spent to answer 503 when out of descriptors */
    tlist handshakes, lingering, closing;
    uv_timer_t sweep;
    uv_timer_t heartbeat;
    uv_check_t flush_check;
    uv_idle_t flush_idle; /* keeps poll from blocking while frames wait */
    int idle_active, sweeping, stopping, closed_all;
    uint64_t handshake_ms;
    rate_limit rl;
    char rate_msg[64];
    /* Refusals logged in the current second, so that a flood of bad
     * requests cannot flood the log. */
    int64_t log_second;
    unsigned logged, unlogged;
    unsigned char rbuf[WS_MAX_CONTROL_FRAME + READ_SIZE];
};

static int64_t now_ms(const transport_t *t) { return hub_now_ms(); }

/* ---- deadline lists ------------------------------------------------------ */

static void on_sweep(uv_timer_t *h);

static void list_remove(tconn *c) {
    tlist *l = c->list;
    if (!l) return;
    if (c->lprev) c->lprev->lnext = c->lnext;
    else l->head = c->lnext;
    if (c->lnext) c->lnext->lprev = c->lprev;
    else l->tail = c->lprev;
    c->lnext = c->lprev = NULL;
    c->list = NULL;
}

static void list_push(tlist *l, tconn *c, uint64_t ms) {
    list_remove(c);
    transport_t *t = c->t;
    c->deadline = uv_now(t->loop) + ms;
    c->list = l;
    c->lprev = l->tail;
    c->lnext = NULL;
    if (l->tail) l->tail->lnext = c;
    else l->head = c;
    l->tail = c;
    if (!t->sweeping) {
        uv_timer_start(&t->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
        t->sweeping = 1;
    }
}

/* ---- closing ------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h) {
    tconn *c = h->data;
    if (c->conn) hub_conn_closed(c->t->hub, c->conn);
    if (c->msg) {
        buf_close(c->msg);
        free(c->msg);
    }
    free(c->head);
    free(c->ctl);
    free(c->closef);
    free(c->carry);
    free(c);
}

/* Closes the socket now. The connection (and the hub's record of it) is
 * freed from the close callback, so whoever holds c may go on reading
 * c->state until then. code: the close code the hub reports when none was
 * set (1006: gone without a close handshake). */
static void teardown(tconn *c, int code) {
    if (c->state == T_DEAD) return;
    if (c->conn) {
        if (!conn_closing(c->conn)) conn_set_closing(c->conn, code);
        conn_queue_clear(c->conn);
    }
    list_remove(c);
    c->state = T_DEAD;
    /* uv_close stops the poll at once (the fd leaves epoll), so the fd can
     * be closed now. */
    uv_close((uv_handle_t *)&c->poll, on_handle_closed);
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
}

static void poll_set(tconn *c, int events);

/* ---- refusals ------------------------------------------------------------ */

static void log_refusal(transport_t *t, int status, const char *why) {
    int64_t sec = now_ms(t) / 1000;
    if (sec != t->log_second) {
        if (t->unlogged)
            log_info("http", "%u more refusals not logged", t->unlogged);
        t->log_second = sec;
        t->logged = t->unlogged = 0;
    }
    if (t->logged++ < 10) log_info("http", "refused %d: %s", status, why);
    else t->unlogged++;
}

/* Answers status and why, then drops what the client still sends for a
 * while before closing (T_LINGER). */
static void refuse(tconn *c, int status, const char *why, const char *extra) {
    transport_t *t = c->t;
    buf_t b;
    buf_init(&b, 0);
    http_refusal(&b, status, why, extra);
    /* A few hundred bytes into an empty socket buffer: one send. */
    ssize_t n = send(c->fd, buf_content(&b), b.len, MSG_NOSIGNAL);
    (void)n;
    buf_close(&b);
    log_refusal(t, status, why);
    shutdown(c->fd, SHUT_WR);
    free(c->head);
    c->head = NULL;
    c->head_len = c->head_cap = 0;
    c->state = T_LINGER;
    list_push(&t->lingering, c, LINGER_MS);
    poll_set(c, UV_READABLE);
}

/* Reads and drops; closes at the client's end, or past LINGER_BYTES. */
static void drop_input(tconn *c, uint32_t limit) {
    transport_t *t = c->t;
    ssize_t n = recv(c->fd, t->rbuf, sizeof t->rbuf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        teardown(c, CLOSE_ABNORMAL);
        return;
    }
    if (limit) {
        c->head_len += (uint32_t)n;
        if (c->head_len > limit) teardown(c, CLOSE_ABNORMAL);
    }
}

/* ---- writing ------------------------------------------------------------- */

static void on_io(uv_poll_t *h, int status, int events);

static void poll_set(tconn *c, int events) {
    if (c->polling == events || c->state == T_DEAD) return;
    c->polling = (uint8_t)events;
    uv_poll_start(&c->poll, events, on_io);
}

static void on_flush_idle(uv_idle_t *h) {
    /* Nothing to do: being active makes the loop poll without blocking,
     * so the check handle runs at once. */
}

static void wake(transport_t *t) {
    if (!t->idle_active) {
        uv_idle_start(&t->flush_idle, on_flush_idle);
        t->idle_active = 1;
    }
}

static void enter_closing(tconn *c) {
    transport_t *t = c->t;
    free(c->closef);
    c->closef = NULL;
    c->close_len = c->close_off = 0;
    free(c->ctl);
    c->ctl = NULL;
    c->ctl_len = c->ctl_off = 0;
    /* Our close frame is out: send FIN too, so a client waiting for the
     * server to end the TCP connection first is not kept waiting. */
    shutdown(c->fd, SHUT_WR);
    c->state = T_CLOSING;
    if (!c->list) list_push(&t->closing, c, CLOSE_GRACE_MS);
    poll_set(c, UV_READABLE);
}

/* Writes what c's socket takes now: the rest of a frame begun, a control
 * frame, queued frames, and the close frame once the queue is empty.
 * Returns -1 when the connection broke. */
static int flush(tconn *c) {
    conn_t *conn = c->conn;
    for (int round = 0; round < FLUSH_ROUNDS; round++) {
        struct iovec iov[IOV_BATCH + 2];
        int n = 0, k_ctl = -1, k_close = -1;
        size_t qn = conn ? conn_queue_len(conn) : 0, qi = 0;
        if (c->wr_off) {
            frame_t *f = conn_queue_peek(conn, 0);
            iov[n].iov_base = frame_wire(f) + c->wr_off;
            iov[n++].iov_len = frame_wire_len(f) - c->wr_off;
            qi = 1;
        }
        if (c->ctl_len) {
            k_ctl = n;
            iov[n].iov_base = c->ctl + c->ctl_off;
            iov[n++].iov_len = (size_t)(c->ctl_len - c->ctl_off);
        }
        for (; qi < qn && n < IOV_BATCH; qi++) {
            frame_t *f = conn_queue_peek(conn, qi);
            iov[n].iov_base = frame_wire(f);
            iov[n++].iov_len = frame_wire_len(f);
        }
        if (c->close_len && qi == qn) {
            k_close = n;
            iov[n].iov_base = c->closef + c->close_off;
            iov[n++].iov_len = (size_t)(c->close_len - c->close_off);
        }
        if (!n) break;
        ssize_t w = writev(c->fd, iov, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                poll_set(c, UV_READABLE | UV_WRITABLE);
                return 0;
            }
            return -1;
        }
        size_t left = (size_t)w, done = 0;
        int partial = 0;
        for (int i = 0; i < n && !partial; i++) {
            size_t len = iov[i].iov_len, take = left < len ? left : len;
            left -= take;
            if (i == k_ctl) {
                c->ctl_off = (uint8_t)(c->ctl_off + take);
                if (take < len) {
                    partial = 1;
                } else {
                    free(c->ctl);
                    c->ctl = NULL;
                    c->ctl_len = c->ctl_off = 0;
                }
            } else if (i == k_close) {
                c->close_off = (uint8_t)(c->close_off + take);
                if (take < len) partial = 1;
            } else if (take < len) {
                c->wr_off += (uint32_t)take;
                partial = 1;
            } else {
                c->wr_off = 0;
                done++;
            }
        }
        if (done) conn_queue_consume(conn, done);
        if (c->close_len && c->close_off == c->close_len) {
            enter_closing(c);
            return 0;
        }
        if (partial) {
            poll_set(c, UV_READABLE | UV_WRITABLE);
            return 0;
        }
    }
    int more = c->ctl_len || c->close_len || (conn && conn_queue_len(conn));
    poll_set(c, more ? UV_READABLE | UV_WRITABLE : UV_READABLE);
    return 0;
}

/* Flushes c soon: at this loop pass's check phase when the hub knows it,
 * now otherwise (we are in c's own callback then). */
static void want_flush(tconn *c) {
    if (c->conn) {
        conns_mark_dirty(hub_conns(c->t->hub), c->conn);
        wake(c->t);
    } else if (flush(c) < 0) {
        teardown(c, CLOSE_ABNORMAL);
    }
}

/* Queues our close frame after what is queued (a slow consumer's queue is
 * dropped first, but for a frame partly written). */
static void start_close(tconn *c, int code, const char *why, int drop_queue) {
    if (c->state != T_OPEN || c->close_len) return;
    if (c->conn && drop_queue) conn_queue_truncate(c->conn, c->wr_off ? 1 : 0);
    c->closef = xmalloc(4 + 123);
    c->close_len = (uint8_t)ws_close_frame(c->closef, (unsigned)code, why);
    c->close_off = 0;
    list_push(&c->t->closing, c, CLOSE_GRACE_MS);
    want_flush(c);
}

static void t_wake(void *ud) { wake(ud); }

static void t_drain(void *ud, conn_t *conn) {
    tconn *c = conn_transport(conn);
    if (c->state == T_OPEN && flush(c) < 0) teardown(c, CLOSE_ABNORMAL);
}

static void t_close(void *ud, conn_t *conn, int code, const char *why) {
    tconn *c = conn_transport(conn);
    if (conn_closing(conn)) return;
    conn_set_closing(conn, code);
    start_close(c, code, why, code == CLOSE_SLOW);
}

/* ---- reading frames ------------------------------------------------------ */

static void deliver(tconn *c, const unsigned char *data, size_t len,
                    int binary) {
    transport_t *t = c->t;
    conn_t *conn = c->conn;
    if (t->cfg->rate_limit > 0 &&
        !rate_take(&c->rl, &t->rl, (uint32_t)uv_now(t->loop))) {
        if (rate_flooding(&c->rl, &t->rl)) {
            /* A burst's worth refused and still sending: not a client that
             * reads its errors. Closed after the answers already queued. */
            log_info("conn", "rate limited conn=%s: closed (4029)",
                     conn_id(conn));
            t_close(t, conn, CLOSE_RATE_LIMITED, "rate limited");
        } else {
            hub_conn_limited(t->hub, conn, binary ? NULL : (const char *)data,
                             len, t->rate_msg);
        }
    } else if (binary) {
        hub_conn_binary(t->hub, conn);
    } else {
        hub_conn_message(t->hub, conn, (const char *)data, len);
    }
}

static void on_data(tconn *c, const ws_piece *pc) {
    int binary = pc->opcode == WS_OP_BINARY;
    if (pc->fin && !c->msg) {
        /* The whole message in this read: no copy. */
        deliver(c, pc->data, pc->len, binary);
        return;
    }
    if (!c->msg) {
        /* Assembled in a buffer that exists only meanwhile, so that an
         * idle connection holds none. Binary messages are refused whole,
         * unread. */
        c->msg = xmalloc(sizeof *c->msg);
        buf_init(c->msg, 0);
        c->msg_binary = (uint8_t)binary;
    }
    if (!c->msg_binary) buf_append(c->msg, pc->data, pc->len);
    if (!pc->fin) return;
    buf_t *m = c->msg;
    c->msg = NULL;
    deliver(c, (unsigned char *)buf_content(m), m->len, c->msg_binary);
    buf_close(m);
    free(m);
}

static void on_control(tconn *c, const ws_piece *pc) {
    switch (pc->opcode) {
    case WS_OP_PING:
        /* Answered with its payload, between frames; a pong still unsent
         * is replaced (RFC 6455 5.5.3), one being written is not. */
        if (c->close_len || (c->ctl_len && c->ctl_off)) return;
        if (!c->ctl) c->ctl = xmalloc(CTL_CAP);
        c->ctl_len = (uint8_t)ws_control_frame(c->ctl, WS_OP_PONG, pc->data,
                                               pc->len);
        c->ctl_off = 0;
        want_flush(c);
        return;
    case WS_OP_PONG:
        return; /* any input counts as a sign of life */
    case WS_OP_CLOSE:
        /* The client closes: remember its code (1005 when it sent none)
         * for the on_disconnect hook and the log, and answer with the
         * same code. */
        c->failed = 1; /* nothing after a close frame counts */
        if (c->conn && !conn_closing(c->conn))
            conn_set_closing(c->conn, pc->code);
        if (c->close_len) return; /* ours is on its way: it answers */
        if (c->conn) conn_queue_truncate(c->conn, c->wr_off ? 1 : 0);
        c->closef = xmalloc(4 + 123);
        if (pc->code == CLOSE_NO_STATUS)
            c->close_len = (uint8_t)ws_control_frame(c->closef, WS_OP_CLOSE,
                                                     NULL, 0);
        else
            c->close_len = (uint8_t)ws_close_frame(c->closef, pc->code, "");
        c->close_off = 0;
        list_push(&c->t->closing, c, CLOSE_GRACE_MS);
        want_flush(c);
        return;
    }
}

/* Parses data[0..len) (with any carried bytes put in front: there is room
 * for WS_MAX_CONTROL_FRAME before data). */
static void ws_input(tconn *c, unsigned char *data, size_t len) {
    if (c->carry_len) {
        data -= c->carry_len;
        memcpy(data, c->carry, c->carry_len);
        len += c->carry_len;
        free(c->carry);
        c->carry = NULL;
        c->carry_len = 0;
    }
    if (c->conn) conn_touch(c->conn, now_ms(c->t));
    size_t pos = 0;
    ws_piece pc;
    while (c->state == T_OPEN && !c->failed) {
        ws_result r = ws_parse(&c->parser, data, len, &pos, &pc);
        if (r == WS_MORE) break;
        if (r == WS_FAIL) {
            c->failed = 1;
            log_info("conn", "protocol error conn=%s code=%u: %s",
                     c->conn ? conn_id(c->conn) : "-", pc.code, pc.reason);
            if (c->conn && !conn_closing(c->conn))
                conn_set_closing(c->conn, pc.code);
            start_close(c, pc.code, pc.reason, 1);
            return;
        }
        if (r == WS_CONTROL) {
            on_control(c, &pc);
            continue;
        }
        /* Data: read and dropped once the connection is closing. */
        if (c->conn && !conn_closing(c->conn)) on_data(c, &pc);
    }
    if (c->state == T_OPEN && !c->failed && pos < len) {
        /* A frame header or a control frame not whole yet. */
        c->carry_len = (uint8_t)(len - pos);
        c->carry = xmalloc(c->carry_len);
        memcpy(c->carry, data + pos, c->carry_len);
    }
}

static void ws_read(tconn *c) {
    transport_t *t = c->t;
    unsigned char *data = t->rbuf + WS_MAX_CONTROL_FRAME;
    ssize_t n = recv(c->fd, data, READ_SIZE, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        /* Gone without a close frame (or after ours: its code stands). */
        teardown(c, CLOSE_ABNORMAL);
        return;
    }
    if (c->failed) return;
    ws_input(c, data, (size_t)n);
}

/* ---- the handshake ------------------------------------------------------- */

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
        return refuse(c, 405, "a WebSocket upgrade is a GET", "Allow: GET\r\n");
    if (r->minor < 1) return refuse(c, 400, "WebSocket needs HTTP/1.1", NULL);
    if (!http_header_has_token(r, "Connection", "upgrade") ||
        !http_header_has_token(r, "Upgrade", "websocket"))
        return refuse(c, 426, "this endpoint speaks WebSocket only",
                      "Upgrade: websocket\r\n");
    v = http_header_get(r, "Sec-WebSocket-Version", &n);
    if (!v || n != 2 || memcmp(v, "13", 2) != 0)
        return refuse(c, 426, "WebSocket version 13 required",
                      "Sec-WebSocket-Version: 13\r\n");
    v = http_header_get(r, "Sec-WebSocket-Key", &n);
    if (!v || !valid_key(v, n))
        return refuse(c, 400, "missing or malformed Sec-WebSocket-Key", NULL);
    char accept[29];
    ws_accept_key(v, n, accept);
    /* No subprotocol is needed; a client that offers some must offer
     * ours, or it would fail the connection itself. */
    int proto = 0;
    if (http_header_get(r, "Sec-WebSocket-Protocol", NULL)) {
        if (!http_header_has_token(r, "Sec-WebSocket-Protocol", "luahub"))
            return refuse(c, 400, "unsupported subprotocol (offer luahub, "
                                  "or none)", NULL);
        proto = 1;
    }
    if (t->stopping) return refuse(c, 503, "server shutting down", NULL);

    char uid[72];
    const char *why = auth_identify(t->auth, r, (int64_t)time(NULL), uid,
                                    sizeof uid);
    char resp[256];
    int rl = snprintf(resp, sizeof resp,
                      "HTTP/1.1 101 Switching Protocols\r\n"
                      "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Accept: %s\r\n%s\r\n",
                      accept, proto ? "Sec-WebSocket-Protocol: luahub\r\n" : "");
    if (send(c->fd, resp, (size_t)rl, MSG_NOSIGNAL) != rl) {
        teardown(c, CLOSE_ABNORMAL);
        return;
    }
    list_remove(c);
    c->state = T_OPEN;
    ws_parser_init(&c->parser, t->cfg->max_message);
    if (why) {
        /* Refused after the upgrade, so that a browser sees the reason. */
        log_info("conn", "refused (4001): %s", why);
        start_close(c, CLOSE_UNAUTHORIZED, why, 1);
    } else {
        c->conn = hub_conn_open(t->hub, uid, c);
        rate_bucket_init(&c->rl, &t->rl, (uint32_t)uv_now(t->loop));
    }
    if (nextra && c->state == T_OPEN) {
        /* Frames sent right behind the request. */
        unsigned char *data = t->rbuf + WS_MAX_CONTROL_FRAME;
        memcpy(data, extra, nextra);
        ws_input(c, data, nextra);
    }
    if (c->state == T_OPEN) poll_set(c, c->polling | UV_READABLE);
}

/* A plain HTTP request: handed to the HTTP side with a head rebuilt for
 * it. */
static void hand_over(tconn *c, const http_req *r) {
    transport_t *t = c->t;
    buf_t b;
    buf_init(&b, 0);
    if (http_forward_head(r, &b, FORWARD_MAX) < 0) {
        buf_close(&b);
        return refuse(c, 431, "request headers too large", NULL);
    }
    int fd = c->fd;
    c->fd = -1; /* the HTTP side owns it now */
    teardown(c, 0);
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
        return refuse(c, 404, "WebSocket clients connect at /ws", NULL);
    if (!((r->method_len == 3 && memcmp(r->method, "GET", 3) == 0) ||
          (r->method_len == 4 && memcmp(r->method, "HEAD", 4) == 0)))
        return refuse(c, 405, "only GET and HEAD are served here",
                      "Allow: GET, HEAD\r\n");
    if (c->t->stopping) return refuse(c, 503, "server shutting down", NULL);
    hand_over(c, r);
}

static void head_read(tconn *c) {
    if (c->head_len == c->head_cap) {
        uint32_t cap = c->head_cap ? c->head_cap * 2 : HEAD_START;
        if (cap > HTTP_MAX_HEAD) cap = HTTP_MAX_HEAD;
        c->head = xrealloc(c->head, cap);
        c->head_cap = cap;
    }
    ssize_t n = recv(c->fd, c->head + c->head_len, c->head_cap - c->head_len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        teardown(c, 0); /* the client left: nobody to answer */
        return;
    }
    c->head_len += (uint32_t)n;
    size_t scanned = c->head_scanned;
    int hl = http_head_complete(c->head, c->head_len, &scanned);
    c->head_scanned = (uint32_t)scanned;
    if (hl == -414)
        return refuse(c, 414, "request target longer than 2048 bytes", NULL);
    if (hl < 0)
        return refuse(c, 431, "request head larger than 8192 bytes", NULL);
    if (hl == 0) return;
    http_req r;
    int rc = http_parse(&r, c->head, (size_t)hl);
    if (rc == -431)
        return refuse(c, 431, "more than 64 header lines", NULL);
    if (rc == -414)
        return refuse(c, 414, "request target longer than 2048 bytes", NULL);
    if (rc == -505) return refuse(c, 505, "HTTP/1.x only", NULL);
    if (rc < 0) return refuse(c, 400, "malformed request", NULL);
    route(c, &r, (size_t)hl);
}

/* ---- events -------------------------------------------------------------- */

static void on_io(uv_poll_t *h, int status, int events) {
    tconn *c = h->data;
    if (status < 0) {
        teardown(c, CLOSE_ABNORMAL);
        return;
    }
    switch (c->state) {
    case T_HANDSHAKE:
        head_read(c);
        return;
    case T_LINGER:
        drop_input(c, LINGER_BYTES);
        return;
    case T_CLOSING:
        drop_input(c, 0);
        return;
    case T_OPEN:
        if ((events & UV_WRITABLE) && flush(c) < 0) {
            teardown(c, CLOSE_ABNORMAL);
            return;
        }
        if ((events & UV_READABLE) && c->state == T_OPEN) ws_read(c);
        else if ((events & UV_READABLE) && c->state == T_CLOSING)
            drop_input(c, 0);
        return;
    default:
        return;
    }
}

static void accept_one(transport_t *t, int fd) {
    tconn *c = xcalloc(1, sizeof *c);
    c->t = t;
    c->fd = fd;
    c->state = T_HANDSHAKE;
    /* Frames are batched here; the kernel must not hold them back. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (uv_poll_init(t->loop, &c->poll, fd) < 0) {
        close(fd);
        free(c);
        return;
    }
    c->poll.data = c;
    poll_set(c, UV_READABLE);
    list_push(&t->handshakes, c, t->handshake_ms);
    if (t->stopping) refuse(c, 503, "server shutting down", NULL);
}

/* Out of descriptors: the pending connection would wake us up again and
 * again. Spend the reserve descriptor to accept it and answer 503. */
static void refuse_no_fd(transport_t *t, int lfd) {
    static const char resp[] =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
        "Content-Length: 26\r\nConnection: close\r\n\r\n"
        "out of file descriptors\r\n\r\n";
    if (t->reserve_fd >= 0) {
        close(t->reserve_fd);
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd >= 0) {
            (void)!send(fd, resp, sizeof resp - 1, MSG_NOSIGNAL);
            close(fd);
        }
        t->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    log_refusal(t, 503, "out of file descriptors");
}

static void on_listen(uv_poll_t *h, int status, int events) {
    transport_t *t = h->data;
    int lfd;
    if (status < 0 || uv_fileno((uv_handle_t *)h, &lfd) < 0) return;
    for (int k = 0; k < ACCEPT_BATCH; k++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            accept_one(t, fd);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE) refuse_no_fd(t, lfd);
        else if (errno != EAGAIN && errno != EWOULDBLOCK)
            log_warn("server", "accept: %s", strerror(errno));
        return;
    }
}

static void on_sweep(uv_timer_t *h) {
    transport_t *t = h->data;
    uint64_t now = uv_now(t->loop);
    tconn *c;
    while ((c = t->handshakes.head) && c->deadline <= now) {
        char why[64];
        snprintf(why, sizeof why, "request head not received within %gs",
                 t->cfg->handshake_timeout);
        refuse(c, 408, why, NULL);
    }
    while ((c = t->lingering.head) && c->deadline <= now) teardown(c, 0);
    while ((c = t->closing.head) && c->deadline <= now) teardown(c, CLOSE_ABNORMAL);
    if (!t->handshakes.head && !t->lingering.head && !t->closing.head) {
        uv_timer_stop(&t->sweep);
        t->sweeping = 0;
    }
}

static void on_heartbeat(uv_timer_t *h) {
    transport_t *t = h->data;
    int64_t now = now_ms(t);
    int64_t idle_ms = (int64_t)(t->cfg->idle_timeout * 1000);
    int64_t ping_ms = (int64_t)(t->cfg->ping_interval * 1000);
    conns_t *cs = hub_conns(t->hub);
    for (conn_t *conn = conns_next(cs, NULL); conn;
         conn = conns_next(cs, conn)) {
        tconn *c = conn_transport(conn);
        if (c->state != T_OPEN || conn_closing(conn)) continue;
        if (now - conn_last_activity(conn) >= idle_ms) {
            log_info("conn", "idle timeout conn=%s user=%s silent=%lldms",
                     conn_id(conn), user_id(conn_user(conn)),
                     (long long)(now - conn_last_activity(conn)));
            /* A silent peer won't answer a close handshake: drop it. */
            teardown(c, CLOSE_ABNORMAL);
            continue;
        }
        if (now - conn_ping_sent_at(conn) >= ping_ms && !c->ctl_len &&
            !c->close_len) {
            /* With a payload, so that any pong is recognisably ours. */
            conn_set_ping_sent_at(conn, now);
            if (!c->ctl) c->ctl = xmalloc(CTL_CAP);
            c->ctl_len = (uint8_t)ws_control_frame(c->ctl, WS_OP_PING,
                                                   "lhub", 4);
            c->ctl_off = 0;
            want_flush(c);
        }
    }
}

static void on_flush_check(uv_check_t *h) {
    transport_t *t = h->data;
    conn_t *conn;
    while ((conn = conns_pop_dirty(hub_conns(t->hub)))) {
        tconn *c = conn_transport(conn);
        if (c->state == T_OPEN && flush(c) < 0) teardown(c, CLOSE_ABNORMAL);
    }
    if (t->idle_active) {
        uv_idle_stop(&t->flush_idle);
        t->idle_active = 0;
    }
}

/* ---- lifecycle ----------------------------------------------------------- */

transport_t *transport_create(uv_loop_t *loop, const config_t *cfg,
                              auth_t *auth, transport_http_fn http, void *ud) {
    transport_t *t = xcalloc(1, sizeof *t);
    t->loop = loop;
    t->cfg = cfg;
    t->auth = auth;
    t->http = http;
    t->http_ud = ud;
    t->handshake_ms = (uint64_t)(cfg->handshake_timeout * 1000);
    t->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (cfg->rate_limit > 0) t->rl = rate_limit_make(cfg->rate_limit,
                                                     cfg->rate_burst);
    snprintf(t->rate_msg, sizeof t->rate_msg,
             "over the limit of %g messages per second", cfg->rate_limit);
    uv_timer_init(loop, &t->sweep);
    t->sweep.data = t;
    uv_check_init(loop, &t->flush_check);
    t->flush_check.data = t;
    uv_check_start(&t->flush_check, on_flush_check);
    uv_idle_init(loop, &t->flush_idle);
    t->flush_idle.data = t;

    double tick = cfg->ping_interval < cfg->idle_timeout ? cfg->ping_interval
                                                         : cfg->idle_timeout;
    uint64_t tick_ms = (uint64_t)(tick * 1000 / 4);
    if (tick_ms < 50) tick_ms = 50;
    if (tick_ms > 1000) tick_ms = 1000;
    uv_timer_init(loop, &t->heartbeat);
    t->heartbeat.data = t;
    uv_timer_start(&t->heartbeat, on_heartbeat, tick_ms, tick_ms);
    return t;
}

hub_transport transport_hub_ops(transport_t *t) {
    return (hub_transport){t, t->loop, t_wake, t_drain, t_close};
}

void transport_set_hub(transport_t *t, hub_t *h) { t->hub = h; }

int transport_listen(transport_t *t, char *err, size_t errlen) {
    if (listen_open(&t->ls, t->cfg->host, t->cfg->port, err, errlen) < 0)
        return -1;
    for (size_t i = 0; i < t->ls.count; i++) {
        uv_poll_t *p = &t->lpoll[t->nlpoll];
        if (uv_poll_init(t->loop, p, t->ls.fds[i]) < 0) continue;
        p->data = t;
        uv_poll_start(p, UV_READABLE, on_listen);
        t->nlpoll++;
    }
    return 0;
}

int transport_port(const transport_t *t) { return t->ls.port; }

const char *transport_addresses(const transport_t *t) {
    return t->ls.addresses;
}

static void close_handle(uv_handle_t *h) {
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void stop_listening(transport_t *t) {
    for (size_t i = 0; i < t->nlpoll; i++)
        close_handle((uv_handle_t *)&t->lpoll[i]);
    t->nlpoll = 0;
    listen_close(&t->ls);
}

void transport_shutdown(transport_t *t, int code, const char *reason) {
    if (t->stopping) return;
    t->stopping = 1;
    stop_listening(t);
    while (t->handshakes.head)
        refuse(t->handshakes.head, 503, "server shutting down", NULL);
    conns_t *cs = hub_conns(t->hub);
    for (conn_t *c = conns_next(cs, NULL); c; c = conns_next(cs, c))
        t_close(t, c, code, reason);
}

void transport_close_all(transport_t *t) {
    if (t->closed_all) return;
    t->closed_all = 1;
    stop_listening(t);
    tlist *lists[] = {&t->handshakes, &t->lingering, &t->closing};
    for (size_t i = 0; i < 3; i++)
        while (lists[i]->head) teardown(lists[i]->head, CLOSE_GOING_AWAY);
    if (t->hub) {
        conns_t *cs = hub_conns(t->hub);
        for (conn_t *c = conns_next(cs, NULL); c; c = conns_next(cs, c))
            teardown(conn_transport(c), CLOSE_GOING_AWAY);
    }
    close_handle((uv_handle_t *)&t->sweep);
    close_handle((uv_handle_t *)&t->heartbeat);
    close_handle((uv_handle_t *)&t->flush_check);
    close_handle((uv_handle_t *)&t->flush_idle);
}

void transport_destroy(transport_t *t) {
    if (!t) return;
    if (t->reserve_fd >= 0) close(t->reserve_fd);
    free(t);
}
