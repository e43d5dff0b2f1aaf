/* wsconn.c -- WebSocket connections: frames read and handed to the hub,
 * queued frames written, pings and idle drops, the close handshake (see
 * transport.h for the design, transport_int.h for the pieces). */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "codes.h"
#include "frame.h"
#include "hub.h"
#include "log.h"
#include "transport_int.h"

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
    transport__shut_wr(c);
    c->state = T_CLOSING;
    if (!c->list) transport__list_push(&t->closing, c, CLOSE_GRACE_MS);
    transport__poll_set(c, UV_READABLE);
}

/* The i-th queued frame in the form c gets it: compressed when c
 * negotiated permessage-deflate and that pays (frame.h). */
static frame_t *queued(tconn *c, size_t i) {
    frame_t *f = conn_queue_peek(c->conn, i);
    return c->pmd ? frame_deflated(f, c->t->deflater) : f;
}

/* Copies up to cap bytes of what c writes next into out, in the order
 * the plain path writes it, and takes them off c's queue: they belong to the
 * TLS session from here on. */
static size_t gather(tconn *c, unsigned char *out, size_t cap) {
    conn_t *conn = c->conn;
    size_t n = 0, qn = conn ? conn_queue_len(conn) : 0, qi = 0, done = 0;
    if (c->wr_off) {
        frame_t *f = queued(c, 0);
        size_t len = frame_wire_len(f) - c->wr_off;
        size_t take = len < cap ? len : cap;
        memcpy(out, frame_wire(f) + c->wr_off, take);
        n = take;
        if (take < len) {
            c->wr_off += (uint32_t)take;
            return n;
        }
        c->wr_off = 0;
        qi = done = 1;
    }
    if (c->ctl_len && n < cap) {
        size_t len = (size_t)(c->ctl_len - c->ctl_off);
        size_t take = len < cap - n ? len : cap - n;
        memcpy(out + n, c->ctl + c->ctl_off, take);
        n += take;
        c->ctl_off = (uint8_t)(c->ctl_off + take);
        if (take < len) goto out;
        free(c->ctl);
        c->ctl = NULL;
        c->ctl_len = c->ctl_off = 0;
    }
    for (; qi < qn && n < cap; qi++) {
        frame_t *f = queued(c, qi);
        size_t len = frame_wire_len(f), take = len < cap - n ? len : cap - n;
        memcpy(out + n, frame_wire(f), take);
        n += take;
        if (take < len) {
            c->wr_off = (uint32_t)take;
            goto out;
        }
        done++;
    }
    if (c->close_len && qi == qn && n < cap) {
        size_t len = (size_t)(c->close_len - c->close_off);
        size_t take = len < cap - n ? len : cap - n;
        memcpy(out + n, c->closef + c->close_off, take);
        n += take;
        c->close_off = (uint8_t)(c->close_off + take);
    }
out:
    if (done) conn_queue_consume(conn, done);
    return n;
}

/* TLS: a record's worth gathered and written at a time; a record the
 * socket does not take is kept by the session and written first when it
 * drains. */
static int flush_tls(tconn *c) {
    transport_t *t = c->t;
    for (int round = 0; round < FLUSH_ROUNDS * 4; round++) {
        int rc = tls_flush(c->tls);
        if (rc == TLS_ERR) return -1;
        if (rc < 0) {
            transport__poll_set(c, UV_READABLE | UV_WRITABLE);
            return 0;
        }
        if (c->close_len && c->close_off == c->close_len) {
            enter_closing(c);
            return 0;
        }
        size_t n = gather(c, t->wbuf, sizeof t->wbuf);
        if (!n) break;
        if (tls_write(c->tls, t->wbuf, n) < 0) return -1;
    }
    int more = tls_blocked(c->tls) || c->ctl_len || c->close_len ||
               (c->conn && conn_queue_len(c->conn));
    transport__poll_set(c, more ? UV_READABLE | UV_WRITABLE : UV_READABLE);
    return 0;
}

/* Fills b with what c writes next: the rest of a frame begun, a control
 * frame, queued frames (at most IOV_BATCH), and the close frame once the
 * queue is empty. Returns the number of iov entries (0: nothing to
 * write). */
static int batch_build(tconn *c, flush_batch *b) {
    conn_t *conn = c->conn;
    int n = 0;
    size_t qn = conn ? conn_queue_len(conn) : 0, qi = 0;
    b->k_ctl = b->k_close = -1;
    if (c->wr_off) {
        frame_t *f = queued(c, 0);
        b->iov[n].iov_base = frame_wire(f) + c->wr_off;
        b->iov[n++].iov_len = frame_wire_len(f) - c->wr_off;
        qi = 1;
    }
    if (c->ctl_len) {
        b->k_ctl = n;
        b->iov[n].iov_base = c->ctl + c->ctl_off;
        b->iov[n++].iov_len = (size_t)(c->ctl_len - c->ctl_off);
    }
    for (; qi < qn && n < IOV_BATCH; qi++) {
        frame_t *f = queued(c, qi);
        b->iov[n].iov_base = frame_wire(f);
        b->iov[n++].iov_len = frame_wire_len(f);
    }
    if (c->close_len && qi == qn) {
        b->k_close = n;
        b->iov[n].iov_base = c->closef + c->close_off;
        b->iov[n++].iov_len = (size_t)(c->close_len - c->close_off);
    }
    return b->n = n;
}

/* What a send of b did (batch_sent). */
enum { SENT_ALL, SENT_STOP, SENT_BROKEN };

/* Takes what a send of b wrote (w bytes, or a negative errno) off c: whole
 * frames off the queue, the offsets into those begun. Both ways of
 * sending, one call or a ring's batch, account here, so they cannot
 * differ. Returns SENT_ALL when all of b went (c may have more; -EINTR:
 * nothing went, b is built again), SENT_STOP when c waits for its socket
 * to drain (it is polled for writing) or its close frame went out (it is
 * closing), SENT_BROKEN when the connection broke. */
static int batch_sent(tconn *c, const flush_batch *b, ssize_t w) {
    if (w < 0) {
        if (w == -EINTR) return SENT_ALL;
        if (w == -EAGAIN || w == -EWOULDBLOCK) {
            transport__poll_set(c, UV_READABLE | UV_WRITABLE);
            return SENT_STOP;
        }
        return SENT_BROKEN;
    }
    size_t left = (size_t)w, done = 0;
    int partial = 0;
    for (int i = 0; i < b->n && !partial; i++) {
        size_t len = b->iov[i].iov_len, take = left < len ? left : len;
        left -= take;
        if (i == b->k_ctl) {
            c->ctl_off = (uint8_t)(c->ctl_off + take);
            if (take < len) {
                partial = 1;
            } else {
                free(c->ctl);
                c->ctl = NULL;
                c->ctl_len = c->ctl_off = 0;
            }
        } else if (i == b->k_close) {
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
    if (done) conn_queue_consume(c->conn, done);
    if (c->close_len && c->close_off == c->close_len) {
        enter_closing(c);
        return SENT_STOP;
    }
    if (partial) {
        transport__poll_set(c, UV_READABLE | UV_WRITABLE);
        return SENT_STOP;
    }
    return SENT_ALL;
}

/* c's rounds are over with its socket taking all: polled for writing
 * while anything is left (more than FLUSH_ROUNDS sends' worth). */
static void flush_rest(tconn *c) {
    int more =
        c->ctl_len || c->close_len || (c->conn && conn_queue_len(c->conn));
    transport__poll_set(c, more ? UV_READABLE | UV_WRITABLE : UV_READABLE);
}

/* Writes what c's socket takes now, up to FLUSH_ROUNDS sends, one system
 * call each. Returns -1 when the connection broke. */
int transport__flush(tconn *c) {
    if (c->tls) return flush_tls(c);
    flush_batch b;
    for (int round = 0; round < FLUSH_ROUNDS; round++) {
        if (!batch_build(c, &b)) break;
        /* Socket calls, not writev: they skip the file layer (vfs_writev,
         * about 6% of the server's CPU in a fan-out to 10,000 where each
         * write carries one frame). One buffer goes by send(), which
         * copies no msghdr and no iovec in from user space
         * (docs/benchmarks.md, "One frame, one send()"). */
        ssize_t w;
        if (b.n == 1) {
            w = send(c->fd, b.iov[0].iov_base, b.iov[0].iov_len, MSG_NOSIGNAL);
        } else {
            struct msghdr mh = {.msg_iov = b.iov, .msg_iovlen = (size_t)b.n};
            w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        }
        int rc = batch_sent(c, &b, w < 0 ? -errno : w);
        if (rc == SENT_BROKEN) return -1;
        if (rc == SENT_STOP) return 0;
    }
    flush_rest(c);
    return 0;
}

/* Flushes c soon: at this loop pass's check phase when the hub knows it,
 * now otherwise (we are in c's own callback then). */
static void transport__want_flush(tconn *c) {
    if (c->hold) return; /* transport__ws_open flushes once the 101 is out */
    if (c->conn) {
        conns_mark_dirty(hub_conns(c->t->hub), c->conn);
        wake(c->t);
    } else if (transport__flush(c) < 0) {
        transport__teardown(c, CLOSE_ABNORMAL);
    }
}

/* Queues our close frame after what is queued (a slow consumer's queue is
 * dropped first, but for a frame partly written). */
static void transport__start_close(tconn *c, int code, const char *why,
                                   int drop_queue) {
    if (c->state != T_OPEN || c->close_len) return;
    if (c->conn && drop_queue) conn_queue_truncate(c->conn, c->wr_off ? 1 : 0);
    c->closef = xmalloc(4 + 123);
    c->close_len = (uint8_t)ws_close_frame(c->closef, (unsigned)code, why);
    c->close_off = 0;
    transport__list_push(&c->t->closing, c, CLOSE_GRACE_MS);
    transport__want_flush(c);
}

static void t_wake(void *ud) {
    wake(ud);
}

static void t_drain(void *ud, conn_t *conn) {
    tconn *c = conn_transport(conn);
    /* Not before the 101 (an on_connect hook that fills the queue). */
    if (c->state == T_OPEN && !c->hold && transport__flush(c) < 0)
        transport__teardown(c, CLOSE_ABNORMAL);
}

/* A frame begun (wr_off: by sendmsg, or copied in part into a TLS record)
 * is finished whatever its class. */
static size_t t_shed(void *ud, conn_t *conn) {
    tconn *c = conn_transport(conn);
    return conn_queue_drop_ephemeral(conn, c->wr_off ? 1 : 0);
}

void transport__close_conn(void *ud, conn_t *conn, int code, const char *why) {
    tconn *c = conn_transport(conn);
    if (conn_closing(conn)) return;
    conn_set_closing(conn, code);
    transport__start_close(c, code, why, code == CLOSE_SLOW);
}

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
            transport__close_conn(t, conn, CLOSE_RATE_LIMITED, "rate limited");
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

/* The client broke the protocol: close with code, after nothing more. */
static void protocol_fail(tconn *c, unsigned code, const char *why) {
    c->failed = 1;
    log_info("conn", "protocol error conn=%s code=%u: %s",
             c->conn ? conn_id(c->conn) : "-", code, why);
    if (c->conn && !conn_closing(c->conn)) conn_set_closing(c->conn, (int)code);
    transport__start_close(c, (int)code, why, 1);
}

/* Adds a piece to the message being assembled, in a buffer that exists
 * only meanwhile, so that an idle connection holds none. Binary messages
 * are refused whole, unread. */
static void assemble(tconn *c, const unsigned char *data, size_t len,
                     int binary) {
    if (!c->msg) {
        c->msg = xmalloc(sizeof *c->msg);
        buf_init(c->msg, 0);
        c->msg_binary = (uint8_t)binary;
    }
    if (!c->msg_binary) buf_append(c->msg, data, len);
}

static void deliver_assembled(tconn *c) {
    buf_t *m = c->msg;
    c->msg = NULL;
    deliver(c, (unsigned char *)buf_content(m), m->len, c->msg_binary);
    buf_close(m);
    free(m);
}

/* A piece of a compressed message: inflated a chunk at a time into the
 * shared buffer, counted against --max-message as it comes out (1009 the
 * moment it passes), so a small frame that inflates to gigabytes never
 * costs more than the limit. A message that inflates into one chunk is
 * delivered from there, without a copy. */
static void on_deflated(tconn *c, const ws_piece *pc) {
    transport_t *t = c->t;
    int binary = pc->opcode == WS_OP_BINARY;
    if (!c->zin) c->zin = pmd_inflater_create();
    if (!c->zmsg) {
        pmd_inflate_begin(c->zin, t->cfg->max_message,
                          c->pmd & PMD_CLIENT_NO_CONTEXT);
        c->zmsg = 1;
        c->zutf8 = 0;
    }
    pmd_inflate_input(c->zin, pc->data, pc->len, pc->fin);
    size_t have = 0;
    for (;;) {
        long n =
            pmd_inflate_next(c->zin, t->zbuf + have, sizeof t->zbuf - have);
        if (n == PMD_ERR_TOO_BIG)
            return protocol_fail(c, CLOSE_TOO_BIG, "message too large");
        if (n < 0)
            return protocol_fail(c, CLOSE_BAD_DATA, "invalid compressed data");
        if (n > 0 && !binary &&
            ws_utf8_check(&c->zutf8, t->zbuf + have, (size_t)n) < 0)
            return protocol_fail(c, CLOSE_BAD_DATA, "invalid UTF-8");
        have += (size_t)n;
        if (n > 0 && have < sizeof t->zbuf) continue;
        if (n == 0 && pc->fin && !c->msg) break; /* whole in t->zbuf */
        if (have) assemble(c, t->zbuf, have, binary);
        have = 0;
        if (n == 0) break;
    }
    if (!pc->fin) return;
    c->zmsg = 0;
    if (!binary && c->zutf8)
        return protocol_fail(c, CLOSE_BAD_DATA, "invalid UTF-8");
    if (c->pmd & PMD_CLIENT_NO_CONTEXT) {
        /* Nothing to keep between messages: idle, the connection holds no
         * inflater. */
        pmd_inflater_destroy(c->zin);
        c->zin = NULL;
    }
    if (c->msg)
        deliver_assembled(c);
    else
        deliver(c, t->zbuf, have, binary);
}

static void on_data(tconn *c, const ws_piece *pc) {
    if (pc->compressed) return on_deflated(c, pc);
    int binary = pc->opcode == WS_OP_BINARY;
    if (pc->fin && !c->msg) {
        /* The whole message in this read: no copy. */
        deliver(c, pc->data, pc->len, binary);
        return;
    }
    assemble(c, pc->data, pc->len, binary);
    if (pc->fin) deliver_assembled(c);
}

static void on_control(tconn *c, const ws_piece *pc) {
    switch (pc->opcode) {
    case WS_OP_PING:
        /* Answered with its payload, between frames; a pong still unsent
         * is replaced (RFC 6455 5.5.3), one being written is not. */
        if (c->close_len || (c->ctl_len && c->ctl_off)) return;
        if (!c->ctl) c->ctl = xmalloc(CTL_CAP);
        c->ctl_len =
            (uint8_t)ws_control_frame(c->ctl, WS_OP_PONG, pc->data, pc->len);
        c->ctl_off = 0;
        transport__want_flush(c);
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
            c->close_len =
                (uint8_t)ws_control_frame(c->closef, WS_OP_CLOSE, NULL, 0);
        else
            c->close_len = (uint8_t)ws_close_frame(c->closef, pc->code, "");
        c->close_off = 0;
        transport__list_push(&c->t->closing, c, CLOSE_GRACE_MS);
        transport__want_flush(c);
        return;
    }
}

/* Parses data[0..len) (with any carried bytes put in front: there is room
 * for WS_MAX_CONTROL_FRAME before data). */
static void transport__ws_input(tconn *c, unsigned char *data, size_t len) {
    if (c->carry_len) {
        data -= c->carry_len;
        memcpy(data, c->carry, c->carry_len);
        len += c->carry_len;
        free(c->carry);
        c->carry = NULL;
        c->carry_len = 0;
    }
    if (c->conn) conn_touch(c->conn, clock_now_ms());
    size_t pos = 0;
    ws_piece pc;
    while (c->state == T_OPEN && !c->failed) {
        ws_result r = ws_parse(&c->parser, data, len, &pos, &pc);
        if (r == WS_MORE) break;
        if (r == WS_FAIL) {
            protocol_fail(c, pc.code, pc.reason);
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

void transport__ws_read(tconn *c) {
    transport_t *t = c->t;
    unsigned char *data = t->rbuf + WS_MAX_CONTROL_FRAME;
    do {
        ssize_t n = transport__recv(c, data, READ_SIZE);
        if (n < 0) return;
        if (n == 0) {
            /* Gone without a close frame (or after ours: its code
             * stands). */
            transport__teardown(c, CLOSE_ABNORMAL);
            return;
        }
        if (!c->failed) transport__ws_input(c, data, (size_t)n);
        /* TLS hands over a record at a time: read what it holds, which
         * no socket event would announce. */
    } while (c->state == T_OPEN && transport__pending(c));
}

/* After a burst (many connections gone since their peak, which
 * transport__count keeps, or queues that grew drained and released), gives the
 * freed memory back to the system: without this, glibc keeps what 10,000
 * connections that came and went used (docs/ benchmarks.md, issue 15). */
static void release_memory(transport_t *t, size_t count, int64_t now) {
    if (t->conns_peak - count < RELEASE_CONNS &&
        t->released < RELEASE_QUEUE_BYTES)
        return;
    if (now - t->released_at < RELEASE_EVERY_MS) return; /* due later */
    uint64_t t0 = uv_hrtime();
    alloc_release();
    log_debug("memory",
              "freed memory given back in %.1f ms (connections %zu, most "
              "%zu; queue rings released %zu bytes)",
              (double)(uv_hrtime() - t0) / 1e6, count, t->conns_peak,
              t->released);
    t->conns_peak = count;
    t->released = 0;
    t->released_at = now;
}

void transport__on_heartbeat(uv_timer_t *h) {
    transport_t *t = h->data;
    int64_t now = clock_now_ms();
    int64_t idle_ms = (int64_t)(t->cfg->idle_timeout * 1000);
    int64_t ping_ms = (int64_t)(t->cfg->ping_interval * 1000);
    conns_t *cs = hub_conns(t->hub);
    for (conn_t *conn = conns_next(cs, NULL); conn;
         conn = conns_next(cs, conn)) {
        tconn *c = conn_transport(conn);
        if (c->state != T_OPEN || conn_closing(conn)) continue;
        t->released += conn_queue_release(conn);
        if (now - conn_last_activity(conn) >= idle_ms) {
            log_info("conn", "idle timeout conn=%s user=%s silent=%lldms",
                     conn_id(conn), user_id(conn_user(conn)),
                     (long long)(now - conn_last_activity(conn)));
            /* A silent peer won't answer a close handshake: drop it. */
            transport__teardown(c, CLOSE_ABNORMAL);
            continue;
        }
        if (now - conn_ping_sent_at(conn) >= ping_ms && !c->ctl_len &&
            !c->close_len) {
            /* With a payload, so that any pong is recognisably ours. */
            conn_set_ping_sent_at(conn, now);
            if (!c->ctl) c->ctl = xmalloc(CTL_CAP);
            c->ctl_len =
                (uint8_t)ws_control_frame(c->ctl, WS_OP_PING, "lhub", 4);
            c->ctl_off = 0;
            transport__want_flush(c);
        }
    }
    release_memory(t, t->nconns, now);
}

/* The next dirty connection, with the lines flushing it reads of the one
 * after it fetched meanwhile. */
static tconn *pop_dirty(conns_t *cs) {
    conn_t *conn = conns_pop_dirty(cs);
    if (!conn) return NULL;
    const tconn *next = conns_prefetch_dirty(cs);
    if (next) {
        /* The fields transport__flush reads, first in the struct: their
         * first and last cache lines. */
        __builtin_prefetch(next);
        __builtin_prefetch((const char *)next + offsetof(tconn, lnext) - 1);
    }
    return conn_transport(conn);
}

/* The pass with one system call per connection: each written as far as
 * its socket takes (FLUSH_ROUNDS sends at most) before the next. */
static void flush_each(conns_t *cs) {
    uint64_t start = uv_hrtime();
    unsigned n = 0;
    tconn *c;
    while ((c = pop_dirty(cs))) {
        if (c->state == T_OPEN && transport__flush(c) < 0)
            transport__teardown(c, CLOSE_ABNORMAL);
        if (++n % FLUSH_CLOCK_EVERY == 0 &&
            uv_hrtime() - start >= FLUSH_BUDGET_NS)
            break;
    }
}

/* The ring broke (not expected): logged, and the transport goes on with
 * one system call per socket. */
static void ring_failed(transport_t *t, int rc) {
    log_error("transport",
              "io_uring: %s; one system call per socket from now on",
              strerror(-rc));
    transport__ring_destroy(t);
}

/* The pass through the ring: the dirty plain connections a batch of
 * RING_BATCH at a time, one send each, submitted and completed in one
 * system call; then each result is taken as transport__flush takes a
 * send()'s. A connection whose send went whole and that has more goes
 * again in the next batch (at most FLUSH_ROUNDS sends in a pass, as
 * above); TLS connections are written as they come, the other way. Once
 * the budget is spent no more are taken from the list, but those begun
 * finish their rounds. */
static void flush_ring(transport_t *t, conns_t *cs) {
    ring_state *r = t->ring;
    flush_slot *slots = r->slots;
    uint64_t start = uv_hrtime();
    unsigned carry = 0; /* slots[0..carry): built, going again */
    int spent = 0;
    for (;;) {
        unsigned used = carry;
        tconn *c;
        while (used < RING_BATCH && !spent && (c = pop_dirty(cs))) {
            if (c->state != T_OPEN) continue;
            if (c->tls) {
                if (transport__flush(c) < 0)
                    transport__teardown(c, CLOSE_ABNORMAL);
                continue;
            }
            flush_slot *sl = &slots[used];
            if (!batch_build(c, &sl->b)) {
                flush_rest(c);
                continue;
            }
            sl->c = c;
            sl->round = 0;
            used++;
        }
        if (!used) break;
        for (unsigned i = 0; i < used; i++) {
            flush_slot *sl = &slots[i];
            sl->mh = (struct msghdr){.msg_iov = sl->b.iov,
                                     .msg_iovlen = (size_t)sl->b.n};
            ioring_send(r->ring, sl->c->fd, &sl->mh);
        }
        int rc = ioring_run(r->ring, r->wres);
        carry = 0;
        for (unsigned i = 0; i < used; i++) {
            flush_slot *sl = &slots[i];
            c = sl->c;
            if (r->wres[i] == -ECANCELED) {
                /* Never went (the ring failed): written next pass. */
                flush_rest(c);
                continue;
            }
            int sent = batch_sent(c, &sl->b, r->wres[i]);
            if (sent == SENT_BROKEN) {
                transport__teardown(c, CLOSE_ABNORMAL);
            } else if (sent == SENT_ALL) {
                if (rc >= 0 && ++sl->round < FLUSH_ROUNDS &&
                    batch_build(c, &sl->b)) {
                    if (i != carry) slots[carry] = *sl;
                    carry++;
                } else {
                    flush_rest(c);
                }
            }
        }
        if (rc < 0) {
            ring_failed(t, rc);
            return;
        }
        if (uv_hrtime() - start >= FLUSH_BUDGET_NS) spent = 1;
    }
}

/* Writes out the dirty connections, oldest first, for at most
 * FLUSH_BUDGET_NS; those left stay dirty and in order, and the idle handle
 * stays on so that the next pass reads what came in (a publisher's next
 * messages, appended to the same queues) and carries on where this one
 * stopped. Every dirty connection is written once per round of the list,
 * however many frames it gathered meanwhile. */
void transport__on_flush_check(uv_check_t *h) {
    transport_t *t = h->data;
    conns_t *cs = hub_conns(t->hub);
    if (t->ring)
        flush_ring(t, cs);
    else
        flush_each(cs);
    if (conns_has_dirty(cs)) {
        wake(t);
        return;
    }
    if (t->idle_active) {
        uv_idle_stop(&t->flush_idle);
        t->idle_active = 0;
    }
}

void transport__ws_read_later(tconn *c) {
    ring_state *r = c->t->ring;
    r->readers[r->nreaders++] = c;
    if (r->nreaders == RING_BATCH) transport__ws_read_batch(c->t);
}

void transport__ws_read_batch(transport_t *t) {
    ring_state *r = t->ring;
    unsigned n = 0;
    /* A connection torn down since it was added (by another's event) is
     * left out: its socket is closed. */
    for (unsigned i = 0; i < r->nreaders; i++)
        if (r->readers[i]->state == T_OPEN) r->readers[n++] = r->readers[i];
    r->nreaders = 0;
    if (!n) return;
    for (unsigned i = 0; i < n; i++)
        ioring_recv(r->ring, r->readers[i]->fd,
                    r->rbufs[i] + WS_MAX_CONTROL_FRAME, RING_READ);
    int rc = ioring_run(r->ring, r->rres);
    for (unsigned i = 0; i < n; i++) {
        tconn *c = r->readers[i];
        int got = r->rres[i];
        /* Closing or gone since (because of an earlier one's message):
         * what it sent is dropped, as transport__ws_read would have. */
        if (c->state != T_OPEN) continue;
        /* Nothing there, or never read (the ring failed): still readable,
         * so epoll reports it again. */
        if (got == -EAGAIN || got == -EINTR || got == -ECANCELED) continue;
        if (got <= 0) {
            /* Gone without a close frame (or after ours), or broken. */
            transport__teardown(c, CLOSE_ABNORMAL);
            continue;
        }
        if (!c->failed)
            transport__ws_input(c, r->rbufs[i] + WS_MAX_CONTROL_FRAME,
                                (size_t)got);
        /* A full buffer: more may be there; the rest at once, the plain
         * way, as one read would have taken it. */
        if (got == RING_READ && c->state == T_OPEN) transport__ws_read(c);
    }
    if (rc < 0) ring_failed(t, rc);
}

int transport__ring_setup(transport_t *t, char *err, size_t errlen) {
    int mode = t->cfg->io_uring;
    if (mode == CONFIG_IO_URING_OFF) {
        log_info("transport",
                 "io: one system call per socket (--io-uring off)");
        return 0;
    }
    char why[160];
    ioring *ring = ioring_create(RING_BATCH, why, sizeof why);
    if (!ring) {
        if (mode == CONFIG_IO_URING_ON) {
            snprintf(err, errlen, "--io-uring on: io_uring unavailable: %s",
                     why);
            return -1;
        }
        log_info("transport",
                 "io: one system call per socket (io_uring unavailable: %s)",
                 why);
        return 0;
    }
    t->ring = xcalloc(1, sizeof *t->ring);
    t->ring->ring = ring;
    log_info("transport",
             "io: io_uring, %u calls a batch (plain WebSocket connections%s)",
             ioring_entries(ring), t->tls ? "; TLS ones one call each" : "");
    return 0;
}

void transport__ring_destroy(transport_t *t) {
    if (!t->ring) return;
    ioring_destroy(t->ring->ring);
    free(t->ring);
    t->ring = NULL;
}

static void t_address(void *ud, conn_t *conn, char *out, size_t cap) {
    tconn *c = conn_transport(conn);
    char a[NETADDR_TEXT];
    snprintf(out, cap, "%s", netaddr_format(&c->addr, a));
}

hub_transport transport_hub_ops(transport_t *t) {
    return (hub_transport){
        t, t->loop, t_wake, t_drain, transport__close_conn, t_address, t_shed};
}

/* Sends the 101 answer, and the welcome hub_conn_open queued with it in
 * one sendmsg() (one segment, one wake-up of the client, as uWebSockets
 * does) when there is one. The 101 goes whole or the connection fails, as
 * any short answer into an empty socket (transport__send). Returns -1
 * then. */
static int send_upgrade(tconn *c, const char *resp, size_t rl) {
    c->hold = 0;
    if (c->tls || !c->conn || !conn_queue_len(c->conn))
        return transport__send(c, resp, rl);
    frame_t *f = queued(c, 0);
    struct iovec iov[2] = {{(void *)resp, rl},
                           {frame_wire(f), frame_wire_len(f)}};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
    ssize_t w;
    do
        w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w < (ssize_t)rl) return -1;
    size_t rest = (size_t)w - rl;
    if (rest == iov[1].iov_len)
        conn_queue_consume(c->conn, 1);
    else
        c->wr_off = (uint32_t)rest; /* the rest when the flush comes */
    return 0;
}

void transport__ws_open(tconn *c, const char *uid, const char *why,
                        const char *resp, size_t rl, const unsigned char *extra,
                        size_t nextra) {
    transport_t *t = c->t;
    transport__list_remove(c);
    c->state = T_OPEN;
    ws_parser_init(&c->parser, t->cfg->max_message);
    if (c->pmd) ws_parser_allow_deflate(&c->parser);
    /* Until the 101 is out, what is queued (the welcome, what an on_connect
     * hook sends, a close) waits for it. */
    c->hold = 1;
    if (why) {
        /* Refused after the upgrade, so that a browser sees the reason. */
        char a[NETADDR_TEXT];
        log_info("conn", "refused (4001) ip=%s: %s",
                 netaddr_format(&c->addr, a), why);
        transport__start_close(c, CLOSE_UNAUTHORIZED, why, 1);
    } else {
        c->conn = hub_conn_open(t->hub, uid, c);
        rate_bucket_init(&c->rl, &t->rl, (uint32_t)uv_now(t->loop));
    }
    if (send_upgrade(c, resp, rl) < 0) {
        transport__teardown(c, CLOSE_ABNORMAL);
        return;
    }
    /* A close queued meanwhile (4001, or an on_connect hook's refusal);
     * queued frames are on the dirty list already. */
    if (c->close_len) transport__want_flush(c);
    if (nextra && c->state == T_OPEN) {
        /* Frames sent right behind the request. */
        unsigned char *data = t->rbuf + WS_MAX_CONTROL_FRAME;
        memcpy(data, extra, nextra);
        transport__ws_input(c, data, nextra);
    }
    if (c->state == T_OPEN) transport__poll_set(c, c->polling | UV_READABLE);
}
