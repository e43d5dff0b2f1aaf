/* server.c -- see server.h.
 *
 * Writing. A fan-out only queues frame references on the recipients and
 * marks them dirty (conn.c); a uv_check handle, run once per loop pass after
 * the I/O callbacks, then flushes every dirty connection with as few
 * lws_write(LWS_WRITE_RAW) calls as it can: the frames are complete
 * WebSocket frames already, so several are concatenated into one scratch
 * buffer and sent with one system call. lws copies what the kernel does not
 * take into its own buffer and flushes it before anything else on that
 * connection, so frames never interleave with lws's own pings or close
 * frames; while that buffer is not empty we write nothing and wait for the
 * WRITEABLE callback. See ../shared/LWS-NOTES.md for the measurements
 * behind this (one write per WRITEABLE callback is several times slower on
 * libuv). No extension (permessage-deflate) is offered, which raw writes
 * require. */
#include "server.h"

#include <libwebsockets.h>
#include <math.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <uv.h>

#include "alloc.h"
#include "auth.h"
#include "buf.h"
#include "conn.h"
#include "frame.h"
#include "hub.h"
#include "log.h"

_Static_assert(LWS_PRE <= FRAME_LWS_PRE_MAX, "frame headroom below LWS_PRE");

/* Bytes sent per write: also lws's tx_packet_size, so that a write of this
 * size is one send(). */
#define SCRATCH_SIZE 65536
/* lws mallocs this per connection, and reads at most this much from a
 * socket per loop pass (see FLUSH_DEFER_PASSES). */
#define RX_BUFFER_SIZE 256
/* A client sending faster than one read a pass (a publisher with many
 * messages in flight) would otherwise get its messages fanned out one or
 * two per pass, each pass costing a send() per recipient. While a
 * connection's reads keep filling the read size, the flush waits up to
 * this many passes (each a read of RX_BUFFER_SIZE and its handlers: about
 * a millisecond in all), so that one send() carries many frames: 16
 * passes gave 0.55 us of server CPU per fan-out delivery, 64 give 0.26
 * (the limit server: 0.22-0.25). */
#define FLUSH_DEFER_PASSES 64
/* ... and never longer than this: with many clients sending long messages
 * every pass is long, and 64 of them could hold everyone's frames for a
 * second. 5 ms keeps most of the gain (0.30 us per delivery against 0.26
 * uncapped; 2 ms gave 0.54). */
#define FLUSH_DEFER_NS 5000000
/* Writes per connection per flush, so one fast reader cannot starve the
 * others in a loop pass. */
#define FLUSH_WRITES 4
/* Seconds a closing connection may take to get its close frame out. */
#define CLOSE_GRACE_SECS 3
/* The longest query string we read at upgrade. */
#define MAX_QUERY 2048

struct server {
    const config_t *cfg;
    uv_loop_t loop;
    struct lws_context *ctx;
    struct lws_vhost *vhost;
    hub_t *hub;
    hub_transport transport;
    uv_check_t flush_check;
    uv_idle_t flush_idle; /* keeps poll from blocking while frames wait */
    int idle_active;
    uint16_t pass;      /* loop passes that flushed or deferred */
    int more_pending;   /* a read this pass filled the read size */
    int deferred;       /* passes the flush has waited */
    uint64_t defer_since; /* uv_hrtime() of the first of them */
    uv_timer_t heartbeat;
    uv_timer_t shutdown_timer;
    uv_signal_t sig_int, sig_term, sig_hup;
    /* --watch: scripts/, scripts/lib, scripts/hooks (inotify is not
     * recursive), and a short timer that gathers a burst of changes (an
     * editor's save, a cp -r) into one reload. */
    uv_fs_event_t watchers[3];
    int nwatchers;
    uv_timer_t watch_timer;
    int stopping;
    int ctx_destroying;
    int64_t stop_started;
    uint64_t guests;
    int burst;           /* --rate-burst, or its default */
    char rate_msg[64];   /* the rate_limited error's message */
    /* The auth secret; NULL in development mode (user= trusted). */
    char *secret;
    size_t secret_len;
    struct lws_protocols protocols[2];
    struct lws_http_mount mount_static, mount_healthz;
    unsigned char scratch[LWS_PRE + SCRATCH_SIZE];
};

/* Per-connection state, allocated by lws (per_session_data_size). */
typedef struct pss {
    conn_t *conn;
    buf_t *rx;          /* a message arriving in pieces, being assembled */
    char *close_reason; /* set when closing (rare): not kept per connection */
    unsigned char rx_binary;
    unsigned char ping_due;
    unsigned char close_sent; /* our close frame is out: waiting for the
                                 client's, reading and dropping meanwhile */
    uint16_t rx_pass;       /* the loop pass rx_pass_bytes counts */
    uint16_t rx_pass_bytes; /* payload bytes received in that pass */
    /* --rate-limit: a token bucket in 1/16 messages, refilled from
     * rl_stamp (the loop's clock, ms); rl_over counts the messages
     * refused since the last one let through. */
    uint16_t rl_tokens, rl_over;
    uint32_t rl_stamp;
} pss_t;

static server_t *server_of(struct lws *wsi) {
    return lws_context_user(lws_get_context(wsi));
}

/* ---- writing ----------------------------------------------------------- */

/* Writes as much of c's queue as the socket takes now. Returns -1 when the
 * connection broke. */
static int flush_conn(server_t *s, conn_t *c) {
    struct lws *wsi = conn_transport(c);
    for (int w = 0; w < FLUSH_WRITES && conn_queue_len(c); w++) {
        if (lws_partial_buffered(wsi)) break;
        frame_t *f = conn_queue_peek(c, 0);
        size_t n = frame_wire_len(f), k = 1;
        unsigned char *out = frame_wire(f);
        if (conn_queue_len(c) > 1 && n < SCRATCH_SIZE) {
            /* Concatenate whole frames into the scratch buffer. */
            unsigned char *p = s->scratch + LWS_PRE;
            memcpy(p, out, n);
            while (k < conn_queue_len(c)) {
                frame_t *g = conn_queue_peek(c, k);
                size_t gn = frame_wire_len(g);
                if (n + gn > SCRATCH_SIZE) break;
                memcpy(p + n, frame_wire(g), gn);
                n += gn;
                k++;
            }
            out = p;
        }
        if (lws_write(wsi, out, n, LWS_WRITE_RAW) < 0) return -1;
        conn_queue_consume(c, k);
    }
    if (conn_queue_len(c) || lws_partial_buffered(wsi))
        lws_callback_on_writable(wsi);
    return 0;
}

/* Flushes c outside any callback of its own; a connection that broke is
 * dropped (lws closes it from its own loop, never under our feet). */
static void flush_or_drop(server_t *s, conn_t *c) {
    if (flush_conn(s, c) == 0) return;
    conn_set_closing(c, 1006);
    conn_queue_clear(c);
    lws_set_timeout(conn_transport(c), PENDING_TIMEOUT_CLOSE_SEND,
                    LWS_TO_KILL_ASYNC);
}

static void flush_dirty(server_t *s) {
    conn_t *c;
    while ((c = conns_pop_dirty(hub_conns(s->hub)))) {
        if (conn_closing(c) && conn_close_code(c) == 4008) continue;
        flush_or_drop(s, c);
    }
    if (s->idle_active) {
        uv_idle_stop(&s->flush_idle);
        s->idle_active = 0;
    }
}

static void on_flush_idle(uv_idle_t *h) {
    /* Nothing to do: being active makes the loop poll without blocking, so
     * the check handle runs at once. */
}

static void on_flush_check(uv_check_t *h) {
    server_t *s = h->data;
    s->pass++;
    if (s->more_pending && s->deferred < FLUSH_DEFER_PASSES &&
        (!s->deferred || uv_hrtime() - s->defer_since < FLUSH_DEFER_NS)) {
        if (!s->deferred) s->defer_since = uv_hrtime();
        s->more_pending = 0;
        s->deferred++;
        /* Never block with frames unsent: if nothing more was waiting
         * after all, the next pass comes at once and flushes. */
        if (!s->idle_active) {
            uv_idle_start(&s->flush_idle, on_flush_idle);
            s->idle_active = 1;
        }
        return;
    }
    s->more_pending = 0;
    s->deferred = 0;
    flush_dirty(s);
}


static void transport_wake(void *ud) {
    server_t *s = ud;
    if (!s->idle_active) {
        uv_idle_start(&s->flush_idle, on_flush_idle);
        s->idle_active = 1;
    }
}

static void transport_drain(void *ud, conn_t *c) {
    if (!conn_closing(c)) flush_or_drop(ud, c);
}

static void transport_close(void *ud, conn_t *c, int code, const char *why) {
    struct lws *wsi = conn_transport(c);
    if (conn_closing(c)) return;
    pss_t *pss = lws_wsi_user(wsi);
    conn_set_closing(c, code);
    free(pss->close_reason);
    pss->close_reason = xstrndup(why, strnlen(why, 63));
    /* A slow consumer's queue is what we give up on; other closes let the
     * queued frames go out first. */
    if (code == 4008) conn_queue_clear(c);
    lws_callback_on_writable(wsi);
    lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND, CLOSE_GRACE_SECS);
}

/* ---- reading ----------------------------------------------------------- */

/* Finds name=value in a query string (already URL-decoded by lws, pieces
 * joined by '&'). Returns the value's length, or -1 when absent. */
static int query_arg(const char *q, const char *name, const char **val) {
    size_t nl = strlen(name);
    const char *p = q;
    while (*p) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            *val = p + nl + 1;
            return (int)(len - nl - 1);
        }
        if (!end) break;
        p = end + 1;
    }
    return -1;
}

/* Identity from the upgrade request. With an auth secret: token=<JWT>,
 * whose sub is the user id (user= refused). Without: user=<id>, or a
 * guest id. Returns NULL, or why the request is refused. */
static const char *identify(server_t *s, struct lws *wsi, char *uid,
                            size_t uidlen) {
    char q[MAX_QUERY];
    q[0] = '\0';
    int total = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS);
    if (total >= (int)sizeof q) return "query string too long";
    if (total > 0 && lws_hdr_copy(wsi, q, sizeof q,
                                  WSI_TOKEN_HTTP_URI_ARGS) < 0)
        return "query string too long";
    const char *v;
    int n;
    if (s->secret) {
        if (query_arg(q, "user", &v) >= 0)
            return "user= is not accepted: this server requires a token";
        if ((n = query_arg(q, "token", &v)) < 0) return "token required";
        auth_status st = auth_verify(v, (size_t)n, s->secret, s->secret_len,
                                     (int64_t)time(NULL), uid, uidlen);
        if (st != AUTH_OK) return auth_reason(st);
        if (!conns_valid_user_id(uid, strlen(uid)))
            return "bad user id in token";
        return NULL;
    }
    n = query_arg(q, "user", &v);
    if (n < 0) {
        snprintf(uid, uidlen, "guest-%llu", (unsigned long long)++s->guests);
        return NULL;
    }
    if (!conns_valid_user_id(v, (size_t)n) || (size_t)n >= uidlen)
        return "bad user id";
    memcpy(uid, v, (size_t)n);
    uid[n] = '\0';
    return NULL;
}

/* --rate-limit: takes one message from c's bucket. Returns 1 when the
 * message may pass, 0 when it is over the rate. */
static int rate_take(server_t *s, pss_t *pss) {
    double rate = s->cfg->rate_limit;
    uint32_t now = (uint32_t)uv_now(&s->loop);
    uint32_t cap = (uint32_t)s->burst * 16, t = pss->rl_tokens;
    uint32_t add = (uint32_t)((double)(uint32_t)(now - pss->rl_stamp) *
                              rate * 16 / 1000);
    if (t + (uint64_t)add >= cap) {
        t = cap;
        pss->rl_stamp = now;
    } else if (add) {
        /* Keep the part of a token not earned yet. */
        t += add;
        pss->rl_stamp += (uint32_t)(add * 1000.0 / (rate * 16));
    }
    if (t >= 16) {
        pss->rl_tokens = (uint16_t)(t - 16);
        pss->rl_over = 0;
        return 1;
    }
    pss->rl_tokens = (uint16_t)t;
    if (pss->rl_over < UINT16_MAX) pss->rl_over++;
    return 0;
}

static void rx_drop(pss_t *pss) {
    if (!pss->rx) return;
    buf_close(pss->rx);
    free(pss->rx);
    pss->rx = NULL;
}

static int on_receive(server_t *s, struct lws *wsi, pss_t *pss,
                      const char *in, size_t len) {
    conn_t *c = pss->conn;
    if (!c || conn_closing(c)) return 0;
    conn_touch(c, hub_now_ms());
    /* Did this pass's reads from c fill the read size? Then more is
     * probably waiting in the socket (frame headers counted as 2). */
    if (pss->rx_pass != s->pass) {
        pss->rx_pass = s->pass;
        pss->rx_pass_bytes = 0;
    }
    pss->rx_pass_bytes = (uint16_t)(pss->rx_pass_bytes + len + 2);
    if (pss->rx_pass_bytes >= RX_BUFFER_SIZE - 16) s->more_pending = 1;
    if (lws_is_first_fragment(wsi)) {
        rx_drop(pss);
        pss->rx_binary = (unsigned char)lws_frame_is_binary(wsi);
    }
    size_t have = pss->rx ? pss->rx->len : 0;
    size_t total = have + len + lws_remaining_packet_payload(wsi);
    if (total > s->cfg->max_message) {
        log_info("conn", "message too large conn=%s bytes>=%zu limit=%zu",
                 conn_id(c), total, s->cfg->max_message);
        conn_set_closing(c, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE);
        static const char why[] = "message too large";
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
                         (unsigned char *)why, sizeof why - 1);
        return -1;
    }
    int final = lws_is_final_fragment(wsi);
    if (!pss->rx_binary && (!final || have)) {
        /* A text message in pieces (longer than rx_buffer_size, or
         * fragmented by the client): assembled in a buffer that exists
         * only meanwhile, so that an idle connection holds none. Binary
         * messages are refused whole, when they end, unread. */
        if (!pss->rx) {
            pss->rx = xmalloc(sizeof *pss->rx);
            buf_init(pss->rx, 0);
        }
        buf_append(pss->rx, in, len);
        if (final) {
            in = buf_content(pss->rx);
            len = pss->rx->len;
        }
    }
    if (!final) return 0;
    /* One whole message: in[0..len), without a copy in the common case. */
    if (s->cfg->rate_limit > 0 && !rate_take(s, pss)) {
        if (pss->rl_over > s->burst) {
            /* A burst's worth refused and still sending: not a client
             * that reads its errors. Closed after the answers already
             * queued; what it sends meanwhile is read and dropped. */
            log_info("conn", "rate limited conn=%s: closed (4029)",
                     conn_id(c));
            transport_close(s, c, 4029, "rate limited");
        } else {
            hub_conn_limited(s->hub, c, pss->rx_binary ? NULL : in, len,
                             s->rate_msg);
        }
    } else if (pss->rx_binary) {
        hub_conn_binary(s->hub, c);
    } else {
        hub_conn_message(s->hub, c, in, len);
    }
    rx_drop(pss);
    return 0;
}

/* Writes a close frame with code and reason. lws_close_reason() followed
 * by returning -1 from the WRITEABLE callback drops the connection on the
 * libuv event lib without sending the frame (measured), so the frame is
 * written here; the connection is closed when the client answers it (or
 * after CLOSE_GRACE_SECS). */
static void send_close(struct lws *wsi, int code, const char *reason) {
    unsigned char buf[LWS_PRE + 2 + 125];
    unsigned char *p = buf + LWS_PRE;
    size_t n = strlen(reason);
    if (n > 123) n = 123;
    p[0] = 0x88; /* FIN + close */
    p[1] = (unsigned char)(n + 2);
    p[2] = (unsigned char)(code >> 8);
    p[3] = (unsigned char)code;
    memcpy(p + 4, reason, n);
    lws_write(wsi, p, n + 4, LWS_WRITE_RAW);
}

/* ---- the lws callback -------------------------------------------------- */

static int serve_healthz(server_t *s, struct lws *wsi) {
    char body[128];
    int blen = snprintf(body, sizeof body,
                        "{\"status\":\"ok\",\"connections\":%zu}\n",
                        conns_count(hub_conns(s->hub)));
    unsigned char buf[LWS_PRE + 512], *start = buf + LWS_PRE, *p = start,
                                      *end = buf + sizeof buf - 1;
    if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK, "application/json",
                                    (lws_filepos_t)blen, &p, end))
        return 1;
    if (lws_finalize_write_http_header(wsi, start, &p, end)) return 1;
    memcpy(buf + LWS_PRE, body, (size_t)blen);
    if (lws_write(wsi, buf + LWS_PRE, (size_t)blen, LWS_WRITE_HTTP_FINAL) !=
        blen)
        return 1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason,
                    void *user, void *in, size_t len) {
    pss_t *pss = user;
    server_t *s;

    switch (reason) {
    case LWS_CALLBACK_HTTP: {
        /* The /healthz mount routes here, and so does a static file lws
         * could not find. */
        char uri[16];
        if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) == 8 &&
            lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) > 0 &&
            strcmp(uri, "/healthz") == 0)
            return serve_healthz(server_of(wsi), wsi);
        if (lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL))
            return -1;
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }

    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        /* WebSocket clients connect at /ws only. */
        char uri[16];
        if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) != 3 ||
            lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) < 0 ||
            strcmp(uri, "/ws") != 0)
            return 1;
        return 0;
    }

    case LWS_CALLBACK_ESTABLISHED: {
        s = server_of(wsi);
        memset(pss, 0, sizeof *pss);
        if (s->stopping) {
            static const char why[] = "server shutting down";
            lws_close_reason(wsi, LWS_CLOSE_STATUS_GOINGAWAY,
                             (unsigned char *)why, sizeof why - 1);
            return -1;
        }
        char uid[72];
        const char *why = identify(s, wsi, uid, sizeof uid);
        if (why) {
            log_info("conn", "refused (4001): %s", why);
            lws_close_reason(wsi, (enum lws_close_status)4001,
                             (unsigned char *)why, strlen(why));
            return -1;
        }
        pss->conn = hub_conn_open(s->hub, uid, wsi);
        pss->rl_tokens = (uint16_t)(s->burst * 16);
        pss->rl_stamp = (uint32_t)uv_now(&s->loop);
        return 0;
    }

    case LWS_CALLBACK_RECEIVE:
        return on_receive(server_of(wsi), wsi, pss, in, len);

    case LWS_CALLBACK_RECEIVE_PONG:
        if (pss->conn) conn_touch(pss->conn, hub_now_ms());
        return 0;

    case LWS_CALLBACK_SERVER_WRITEABLE: {
        conn_t *c = pss->conn;
        if (!c || pss->close_sent) return 0;
        s = server_of(wsi);
        if (flush_conn(s, c) < 0) return -1;
        if (lws_partial_buffered(wsi)) return 0;
        if (conn_closing(c) && !conn_queue_len(c)) {
            /* Closing at once would reset a client that is still sending
             * (unread data makes close() send RST, and the client loses
             * the close frame): wait for its close frame instead, reading
             * and dropping what comes before it, for CLOSE_GRACE_SECS. */
            send_close(wsi, conn_close_code(c),
                       pss->close_reason ? pss->close_reason : "");
            pss->close_sent = 1;
            lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_ACK, CLOSE_GRACE_SECS);
            return 0;
        }
        if (pss->ping_due && !conn_queue_len(c)) {
            /* With a payload: lws 4.1 delivers no RECEIVE_PONG for an
             * empty pong (measured), and the pong is our sign of life. */
            unsigned char ping[LWS_PRE + 4];
            memcpy(ping + LWS_PRE, "lhub", 4);
            pss->ping_due = 0;
            if (lws_write(wsi, ping + LWS_PRE, 4, LWS_WRITE_PING) < 0)
                return -1;
        }
        return 0;
    }

    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        /* The answer to our close: done, nothing left unread. */
        if (pss->close_sent) return -1;
        /* The client closes: remember its code (1005 when it sent none)
         * for the on_disconnect hook and the log. lws answers the close. */
        if (pss->conn && !conn_closing(pss->conn)) {
            const unsigned char *p = in;
            conn_set_closing(pss->conn,
                             len >= 2 ? (p[0] << 8) | p[1] : 1005);
        }
        return 0;

    case LWS_CALLBACK_CLOSED:
        if (pss->conn) {
            s = server_of(wsi);
            /* Gone without a close frame either way: 1006, as RFC 6455
             * names an abnormal closure. */
            if (!conn_closing(pss->conn)) conn_set_closing(pss->conn, 1006);
            hub_conn_closed(s->hub, pss->conn);
            pss->conn = NULL;
        }
        rx_drop(pss);
        free(pss->close_reason);
        pss->close_reason = NULL;
        return 0;

    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* ---- timers and signals ------------------------------------------------ */

static void on_heartbeat(uv_timer_t *t) {
    server_t *s = t->data;
    int64_t now = hub_now_ms();
    int64_t idle_ms = (int64_t)(s->cfg->idle_timeout * 1000);
    int64_t ping_ms = (int64_t)(s->cfg->ping_interval * 1000);
    conns_t *cs = hub_conns(s->hub);
    conn_t *next;
    for (conn_t *c = conns_next(cs, NULL); c; c = next) {
        /* Taken first: a synchronous kill below frees c. */
        next = conns_next(cs, c);
        if (conn_closing(c)) continue;
        struct lws *wsi = conn_transport(c);
        if (now - conn_last_activity(c) >= idle_ms) {
            log_info("conn", "idle timeout conn=%s user=%s silent=%lldms",
                     conn_id(c), user_id(conn_user(c)),
                     (long long)(now - conn_last_activity(c)));
            /* A silent peer won't answer a close handshake: drop it now.
             * We are outside every lws callback, so a synchronous kill is
             * safe (an async one waits for lws's next 1 s timeout scan). */
            conn_set_closing(c, 1006);
            conn_queue_clear(c);
            lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND,
                            LWS_TO_KILL_SYNC);
            continue;
        }
        if (now - conn_ping_sent_at(c) >= ping_ms) {
            pss_t *pss = lws_wsi_user(wsi);
            conn_set_ping_sent_at(c, now);
            pss->ping_due = 1;
            lws_callback_on_writable(wsi);
        }
    }
}

static void on_watch_settled(uv_timer_t *t) {
    server_t *s = t->data;
    log_info("server", "scripts changed: reloading");
    hub_reload(s->hub);
}

static void on_watch_event(uv_fs_event_t *h, const char *file, int events,
                           int status) {
    server_t *s = h->data;
    uv_timer_start(&s->watch_timer, on_watch_settled, 100, 0);
}

static void start_watch(server_t *s) {
    static const char *const subdirs[] = {"", "/lib", "/hooks"};
    uv_timer_init(&s->loop, &s->watch_timer);
    s->watch_timer.data = s;
    for (int i = 0; i < 3; i++) {
        char path[1100];
        snprintf(path, sizeof path, "%s%s", s->cfg->scripts_dir, subdirs[i]);
        struct stat st;
        if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) continue;
        uv_fs_event_t *w = &s->watchers[s->nwatchers];
        uv_fs_event_init(&s->loop, w);
        w->data = s;
        if (uv_fs_event_start(w, on_watch_event, path, 0) == 0) {
            s->nwatchers++;
            log_info("server", "watching %s", path);
        } else {
            uv_close((uv_handle_t *)w, NULL);
        }
    }
}

static void close_handle(uv_handle_t *h) {
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void finish_stop(server_t *s) {
    uv_timer_stop(&s->shutdown_timer);
    /* On a foreign loop, destruction finishes while the loop runs; lws
     * clears s->ctx (info.pcontext) when it is complete. */
    if (s->ctx && !s->ctx_destroying) {
        s->ctx_destroying = 1;
        lws_context_destroy(s->ctx);
    }
    close_handle((uv_handle_t *)&s->flush_check);
    close_handle((uv_handle_t *)&s->flush_idle);
    close_handle((uv_handle_t *)&s->heartbeat);
    close_handle((uv_handle_t *)&s->shutdown_timer);
    close_handle((uv_handle_t *)&s->sig_int);
    close_handle((uv_handle_t *)&s->sig_term);
    close_handle((uv_handle_t *)&s->sig_hup);
    for (int i = 0; i < s->nwatchers; i++)
        close_handle((uv_handle_t *)&s->watchers[i]);
    if (s->cfg->watch) close_handle((uv_handle_t *)&s->watch_timer);
}

static void on_shutdown_tick(uv_timer_t *t) {
    server_t *s = t->data;
    size_t left = conns_count(hub_conns(s->hub));
    if (left == 0 || hub_now_ms() - s->stop_started > 2000) {
        log_info("server", "stopped (%zu connections left to drop)", left);
        finish_stop(s);
    }
}

static void on_signal(uv_signal_t *h, int signum) {
    server_t *s = h->data;
    if (signum == SIGHUP) {
        log_info("server", "SIGHUP: reloading scripts");
        hub_reload(s->hub);
        return;
    }
    if (s->stopping) return;
    s->stopping = 1;
    s->stop_started = hub_now_ms();
    conns_t *cs = hub_conns(s->hub);
    log_info("server", "%s: closing %zu connections",
             signum == SIGINT ? "SIGINT" : "SIGTERM", conns_count(cs));
    for (conn_t *c = conns_next(cs, NULL); c; c = conns_next(cs, c))
        transport_close(s, c, LWS_CLOSE_STATUS_GOINGAWAY,
                        "server shutting down");
    uv_timer_start(&s->shutdown_timer, on_shutdown_tick, 20, 20);
}

/* ---- lws logs ---------------------------------------------------------- */

static void lws_log(int level, const char *line) {
    log_level lv = level & LLL_ERR    ? LOG_ERROR
                   : level & LLL_WARN ? LOG_WARN
                                      : LOG_DEBUG;
    if (!log_enabled(lv)) return;
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
    log_write(lv, "lws", "%.*s", (int)n, line);
}

/* ---- lifecycle --------------------------------------------------------- */

/* The auth secret from --auth-secret-file (a trailing newline is not part
 * of it) or LUAHUB_AUTH_SECRET. Returns 0 (s->secret NULL when there is
 * none), or -1 after logging why the file cannot serve. */
static int load_secret(server_t *s, const config_t *cfg) {
    const char *path = cfg->auth_secret_file;
    if (!path[0]) {
        const char *env = getenv("LUAHUB_AUTH_SECRET");
        if (env && *env) {
            s->secret_len = strlen(env);
            s->secret = xmalloc(s->secret_len + 1);
            memcpy(s->secret, env, s->secret_len + 1);
        }
        return 0;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        log_error("server", "--auth-secret-file %s: cannot open", path);
        return -1;
    }
    char buf[4097];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) n--;
    if (n == 0 || n >= sizeof buf) {
        log_error("server", "--auth-secret-file %s: %s", path,
                  n ? "longer than 4096 bytes" : "empty");
        return -1;
    }
    s->secret = xmalloc(n + 1);
    memcpy(s->secret, buf, n);
    s->secret[n] = '\0';
    s->secret_len = n;
    return 0;
}

static void free_secret(server_t *s) {
    if (!s->secret) return;
    explicit_bzero(s->secret, s->secret_len);
    free(s->secret);
    s->secret = NULL;
}

server_t *server_create(const config_t *cfg) {
    server_t *s = xcalloc(1, sizeof *s);
    s->cfg = cfg;
    char err[1024];
    if (load_secret(s, cfg) < 0) {
        free(s);
        return NULL;
    }
    /* The burst defaults to one second's worth of the rate. */
    s->burst = cfg->rate_burst ? cfg->rate_burst
                               : (int)fmin(fmax(ceil(cfg->rate_limit), 1),
                                           RATE_BURST_MAX);
    snprintf(s->rate_msg, sizeof s->rate_msg,
             "over the limit of %g messages per second", cfg->rate_limit);

    lws_set_log_level(LLL_ERR | LLL_WARN |
                          (log_enabled(LOG_DEBUG) ? LLL_NOTICE : 0),
                      lws_log);
    uv_loop_init(&s->loop);
    s->transport = (hub_transport){s, &s->loop, transport_wake,
                                   transport_drain, transport_close};
    s->hub = hub_create(cfg, &s->transport, err, sizeof err);
    if (!s->hub) {
        log_error("script", "cannot load the scripts: %s", err);
        uv_loop_close(&s->loop);
        free_secret(s);
        free(s);
        return NULL;
    }

    s->protocols[0] = (struct lws_protocols){
        .name = "luahub",
        .callback = callback,
        .per_session_data_size = sizeof(pss_t),
        /* lws mallocs this per connection; larger messages arrive in
         * several RECEIVE callbacks and are assembled in pss->rx. 256
         * holds most chat frames whole. */
        .rx_buffer_size = RX_BUFFER_SIZE,
        .tx_packet_size = SCRATCH_SIZE,
    };

    s->mount_healthz = (struct lws_http_mount){
        .mountpoint = "/healthz",
        .mountpoint_len = 8,
        .origin = "luahub",
        .origin_protocol = LWSMPRO_CALLBACK,
    };
    s->mount_static = (struct lws_http_mount){
        .mount_next = &s->mount_healthz,
        .mountpoint = "/",
        .mountpoint_len = 1,
        .origin = cfg->static_dir,
        .def = "index.html",
        .origin_protocol = LWSMPRO_FILE,
    };
    struct stat st;
    if (stat(cfg->static_dir, &st) < 0 || !S_ISDIR(st.st_mode))
        log_warn("server", "static directory %s not found: / will answer 404 "
                 "(give one with --static DIR)",
                 cfg->static_dir);

    void *loops[1] = {&s->loop};
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = cfg->port ? cfg->port : CONTEXT_PORT_NO_LISTEN_SERVER;
    info.iface = cfg->host;
    info.protocols = s->protocols;
    info.mounts = &s->mount_static;
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_VALIDATE_UTF8 |
                   LWS_SERVER_OPTION_HTTP_HEADERS_SECURITY_BEST_PRACTICES_ENFORCE;
    info.foreign_loops = loops;
    info.user = s;
    info.pcontext = &s->ctx;
    info.timeout_secs = 10;
    /* Header buffers (4 KiB each) are needed only during the handshake.
     * Without a cap, a burst of connections holds one each at once, and
     * the heap they leave behind stays in RSS: 5.5 KiB per idle
     * connection at 15,000, against 3.0 with 32 (connections beyond the
     * 32nd wait their turn; handshakes/s is unchanged). */
    info.max_http_header_pool = 32;
    if (cfg->port == 0) info.port = 0;
    s->ctx = lws_create_context(&info);
    if (!s->ctx) {
        log_error("server", "cannot listen on %s:%d", cfg->host, cfg->port);
        hub_destroy(s->hub);
        uv_run(&s->loop, UV_RUN_NOWAIT);
        uv_loop_close(&s->loop);
        free_secret(s);
        free(s);
        return NULL;
    }
    s->vhost = lws_get_vhost_by_name(s->ctx, "default");

    uv_check_init(&s->loop, &s->flush_check);
    s->flush_check.data = s;
    uv_check_start(&s->flush_check, on_flush_check);
    uv_idle_init(&s->loop, &s->flush_idle);
    s->flush_idle.data = s;

    double tick = cfg->ping_interval < cfg->idle_timeout ? cfg->ping_interval
                                                         : cfg->idle_timeout;
    uint64_t tick_ms = (uint64_t)(tick * 1000 / 4);
    if (tick_ms < 50) tick_ms = 50;
    if (tick_ms > 1000) tick_ms = 1000;
    uv_timer_init(&s->loop, &s->heartbeat);
    s->heartbeat.data = s;
    uv_timer_start(&s->heartbeat, on_heartbeat, tick_ms, tick_ms);
    uv_timer_init(&s->loop, &s->shutdown_timer);
    s->shutdown_timer.data = s;

    uv_signal_init(&s->loop, &s->sig_int);
    uv_signal_init(&s->loop, &s->sig_term);
    uv_signal_init(&s->loop, &s->sig_hup);
    s->sig_int.data = s->sig_term.data = s->sig_hup.data = s;
    uv_signal_start(&s->sig_int, on_signal, SIGINT);
    uv_signal_start(&s->sig_term, on_signal, SIGTERM);
    uv_signal_start(&s->sig_hup, on_signal, SIGHUP);
    if (cfg->watch) start_watch(s);

    int port = s->vhost ? lws_get_vhost_listen_port(s->vhost) : cfg->port;
    log_info("server", "listening host=%s port=%d ws=ws://%s:%d/ws static=%s",
             cfg->host, port, cfg->host, port, cfg->static_dir);
    if (s->secret)
        log_info("server", "auth: clients must present token=<JWT> "
                 "(HS256, sub = user id)");
    else
        log_warn("server", "no auth secret: development mode, any client "
                 "may claim any user id (insecure)");
    return s;
}

int server_run(server_t *s) {
    uv_run(&s->loop, UV_RUN_DEFAULT);
    return 0;
}

void server_destroy(server_t *s) {
    if (!s) return;
    finish_stop(s);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    /* The second call completes what the loop could not (libuv: the
     * context's own handles are closed by now). */
    if (s->ctx) lws_context_destroy(s->ctx);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    hub_destroy(s->hub);
    if (uv_loop_close(&s->loop) != 0)
        log_debug("server", "loop closed with handles still open");
    free_secret(s);
    free(s);
}

hub_t *server_hub(server_t *s) { return s->hub; }

void server_process_setup(void) {
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}
