/* luahub-bench -- a load tool that speaks luahub's wire protocol.
 *
 * One process, one thread, epoll and non-blocking sockets, so it can be
 * pinned to a core with taskset and its own CPU use is easy to read. It
 * holds many WebSocket connections (masked client frames, pings answered)
 * and drives one workload:
 *
 *   fanout   P publishers and N subscribers in one room; publishers keep a
 *            window of unacknowledged messages (or send at --rate);
 *            with --pub-port the publishers connect to another port (a
 *            second node of a cluster) than the subscribers;
 *   rooms    K rooms of M members; every member sends one message, waits
 *            for its ack, sends the next (closed loop);
 *   ping     N connections doing ping/pong round trips;
 *   idle     N connections held open; with --pid, the server's RSS per
 *            connection;
 *   connect  WebSocket handshakes per second (connect, welcome, close).
 *
 * It measures deliveries, end-to-end latency (a send timestamp in each
 * payload) in a log-bucket histogram, sequence gaps and reordering per
 * subscriber, connections lost, and with --pid the server's CPU seconds
 * and RSS. Counts are checked: when nothing is lost, deliveries equal
 * publications times subscribers. --json prints one object.
 *
 * With --deflate it offers permessage-deflate (the server must run with
 * --compression) and inflates the compressed frames it gets before
 * checking them, as a browser would; it sends its own frames plain. The
 * padding is words, so that a chat compresses as text does.
 *
 * With --tls it speaks TLS (the server must run with --tls-cert; the
 * certificate is not checked): OpenSSL on the same non-blocking sockets,
 * the handshake driven by the first reads and writes.
 *
 * Client frames are masked with a zero key: RFC 6455 requires a mask, not a
 * secret one from a load generator, and it spares the client the XOR.
 *
 * Where the server's io_uring path can be had (core/ioring.c; --io-uring
 * auto, the default), the load reads its readable open connections and
 * writes what their answers queued a batch per system call too: on a
 * machine where a system call costs a microsecond, a tool that makes one
 * per socket event is the bottleneck of the closed loops (ping, rooms)
 * before the server is. --io-uring off makes one call per socket. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "ioring.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* ---- options ------------------------------------------------------------ */

typedef enum mode { M_FANOUT, M_ROOMS, M_PING, M_IDLE, M_CONNECT } mode_t_;

static struct {
    const char *host;
    int port;
    int pub_port; /* fanout publishers' port; 0: port */
    mode_t_ mode;
    int conns;      /* subscribers (fanout), connections (ping/idle/connect) */
    int publishers; /* fanout */
    int rooms, members;
    double rate; /* messages/s per publisher, 0 = window-limited */
    int window;
    double duration, warmup;
    double ready_timeout; /* seconds for the connections and joins */
    int paced;            /* open 256 connections at a time */
    int size;             /* payload padding bytes */
    int pid;
    int json;
    int src_addrs;
    const char *room;
    int deflate;
    int tls;
    int ring; /* --io-uring auto (1) or off (0) */
} opt = {
    .host = "127.0.0.1",
    .port = 8080,
    .mode = M_FANOUT,
    .conns = 100,
    .publishers = 1,
    .rooms = 100,
    .members = 4,
    .rate = 0,
    .window = 64,
    .duration = 5,
    .warmup = 1,
    .ready_timeout = 60,
    .size = 64,
    .pid = 0,
    .json = 0,
    .src_addrs = 0,
    .room = "bench",
    .ring = 1,
};

static void usage(FILE *f) {
    fprintf(f, "usage: luahub-bench --mode MODE [options]\n"
               "modes: fanout, rooms, ping, idle, connect\n"
               "  --host H          server address (default 127.0.0.1)\n"
               "  --port N          server port (default 8080)\n"
               "  --pub-port N      the fanout publishers' port, e.g. another "
               "node's (default: --port)\n"
               "  --conns N         subscribers (fanout) or connections "
               "(ping, idle, connect) (default 100)\n"
               "  --publishers P    fanout publishers (default 1)\n"
               "  --rooms K         rooms (rooms mode, default 100)\n"
               "  --members M       members per room (rooms mode, default 4)\n"
               "  --window W        unacknowledged messages per publisher "
               "(default 64)\n"
               "  --rate R          messages/s per publisher; 0 = as fast as "
               "the window allows (default 0)\n"
               "  --duration S      measured seconds (default 5)\n"
               "  --warmup S        seconds before measuring (default 1)\n"
               "  --ready-timeout S seconds for the connections and joins "
               "(default 60; a server under valgrind needs more)\n"
               "  --paced           open 256 connections at a time, each batch "
               "once the last is open (a slow server's listen backlog "
               "overflows otherwise)\n"
               "  --size B          payload padding bytes (default 64)\n"
               "  --pid PID         the server's pid: CPU and memory figures\n"
               "  --src-addrs N     spread connections over 127.0.0.2 .. "
               "127.0.0.(N+1) (default: 1 per 20000 connections)\n"
               "  --deflate         offer permessage-deflate; inflate what "
               "comes compressed\n"
               "  --tls             speak TLS (wss://; the certificate is "
               "not checked)\n"
               "  --io-uring auto|off  read and write open plain "
               "connections a batch per\n"
               "                    system call where io_uring can be had "
               "(default auto)\n"
               "  --json            print one JSON object\n");
}

/* ---- time, histogram ----------------------------------------------------- */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#define HIST_SUB 16
#define HIST_POW 40
typedef struct hist {
    uint64_t count[HIST_POW * HIST_SUB];
    uint64_t n, max_ns;
} hist_t;

/* Bucket by microseconds: 16 linear sub-buckets per power of two. */
static void hist_add(hist_t *h, uint64_t ns) {
    uint64_t us = ns / 1000;
    int pow = 0;
    while (pow < HIST_POW - 1 && (us >> pow) >= HIST_SUB * 2)
        pow++;
    uint64_t sub = pow ? (us >> pow) - HIST_SUB : us;
    if (sub >= HIST_SUB * 2) sub = HIST_SUB * 2 - 1;
    size_t i = pow ? (size_t)(HIST_SUB * (pow + 1) + sub) : (size_t)sub;
    if (i >= HIST_POW * HIST_SUB) i = HIST_POW * HIST_SUB - 1;
    h->count[i]++;
    h->n++;
    if (ns > h->max_ns) h->max_ns = ns;
}

static uint64_t bucket_us(size_t i) {
    if (i < HIST_SUB * 2) return i;
    size_t pow = i / HIST_SUB - 1, sub = i % HIST_SUB;
    return (HIST_SUB + sub + 1) << pow;
}

static double hist_q_ms(const hist_t *h, double q) {
    if (!h->n) return 0;
    uint64_t want = (uint64_t)(q * (double)h->n), seen = 0;
    if (want >= h->n) want = h->n - 1;
    for (size_t i = 0; i < HIST_POW * HIST_SUB; i++) {
        seen += h->count[i];
        if (seen > want) return (double)bucket_us(i) / 1000.0;
    }
    return (double)h->max_ns / 1e6;
}

/* ---- connections ----------------------------------------------------------
 */

enum { S_CONNECTING, S_HANDSHAKE, S_OPEN, S_CLOSED };
enum { R_SUB, R_PUB, R_MEMBER, R_PINGER, R_IDLE, R_CYCLER };

typedef struct client {
    int fd, state, role, idx, room;
    SSL *ssl; /* --tls */
    char user[32];
    char *rx;
    size_t rxlen, rxcap;
    char *tx;
    size_t txlen, txoff, txcap;
    int want_out;
    int queued; /* on the ring's send batch */
    int joined;
    int reopen;
    uint64_t last_seq, gaps, reorders, received, measured;
    int inflight;
    uint64_t next_id, sent, acked;
    uint64_t ping_sent_ns;
    double tokens;
} client_t;

static int ep;
static SSL_CTX *tls_ctx;
static client_t *clients;
static int nclients;
static uint64_t t_start, t_measure, t_end;
static volatile int stop_flag;
static struct {
    uint64_t published, published_measured, deliveries, deliveries_measured;
    uint64_t acks, errors, lost, closed_by_server, handshakes;
    uint64_t ping_rtts;
    uint64_t inflated; /* frames that came compressed (--deflate) */
    hist_t lat;
} st;

static void die(const char *what) {
    fprintf(stderr, "luahub-bench: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void set_events(client_t *c) {
    struct epoll_event ev = {.events = EPOLLIN | (c->want_out ? EPOLLOUT : 0),
                             .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void tx_reserve(client_t *c, size_t n) {
    if (c->txlen + n <= c->txcap) return;
    if (c->txoff) {
        memmove(c->tx, c->tx + c->txoff, c->txlen - c->txoff);
        c->txlen -= c->txoff;
        c->txoff = 0;
        if (c->txlen + n <= c->txcap) return;
    }
    c->txcap = (c->txlen + n) * 2;
    c->tx = realloc(c->tx, c->txcap);
    if (!c->tx) die("realloc");
}

/* An SSL_read or SSL_write result r as recv() and send() give theirs:
 * r when > 0; -1 with errno EAGAIN when the socket (or the handshake)
 * must wait; otherwise fail (0 for a read: the end; -1 with ECONNRESET
 * for a write). */
static ssize_t ssl_result(client_t *c, int r, ssize_t fail) {
    if (r > 0) return r;
    int e = SSL_get_error(c->ssl, r);
    errno = EAGAIN;
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return -1;
    ERR_clear_error();
    errno = ECONNRESET;
    return fail;
}

/* send() or SSL_write(). A TLS write that must wait is retried with the
 * same bytes (they stay at the front of tx;
 * SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER lets tx move). */
static ssize_t io_send(client_t *c, const char *p, size_t n) {
    if (!c->ssl) return send(c->fd, p, n, MSG_NOSIGNAL);
    return ssl_result(c, SSL_write(c->ssl, p, n > INT_MAX ? INT_MAX : (int)n),
                      -1);
}

static ssize_t io_recv(client_t *c, char *p, size_t n) {
    if (!c->ssl) return recv(c->fd, p, n, 0);
    return ssl_result(c, SSL_read(c->ssl, p, n > INT_MAX ? INT_MAX : (int)n),
                      0);
}

/* Takes one send's result (bytes, or a negative errno) off c's output.
 * Returns 1 when more may go at once. */
static int tx_sent(client_t *c, ssize_t w) {
    if (w < 0) {
        if (w != -EAGAIN) c->state = S_CLOSED;
        return 0;
    }
    c->txoff += (size_t)w;
    return c->txoff < c->txlen;
}

/* After c's sends: its output emptied, or polled for writing while some
 * is left. */
static void tx_settle(client_t *c) {
    if (c->state == S_CLOSED) return;
    if (c->txoff == c->txlen) c->txoff = c->txlen = 0;
    int want = c->txlen > 0;
    if (want != c->want_out) {
        c->want_out = want;
        set_events(c);
    }
}

static void flush_tx(client_t *c) {
    /* Until connect() completes, EPOLLOUT is how we learn that it did. */
    if (c->state == S_CONNECTING || c->fd < 0) return;
    while (c->txoff < c->txlen) {
        ssize_t w = io_send(c, c->tx + c->txoff, c->txlen - c->txoff);
        if (!tx_sent(c, w < 0 ? -errno : w)) break;
    }
    tx_settle(c);
}

/* Queues a masked client frame (opcode op) with a zero mask key. */
static void queue_frame(client_t *c, int op, const char *p, size_t n) {
    tx_reserve(c, n + 14);
    unsigned char *h = (unsigned char *)c->tx + c->txlen;
    size_t hl;
    h[0] = (unsigned char)(0x80 | op);
    if (n < 126) {
        h[1] = (unsigned char)(0x80 | n);
        hl = 2;
    } else if (n <= 0xffff) {
        h[1] = 0x80 | 126;
        h[2] = (unsigned char)(n >> 8);
        h[3] = (unsigned char)n;
        hl = 4;
    } else {
        h[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
        hl = 10;
    }
    memset(h + hl, 0, 4);
    memcpy(h + hl + 4, p, n);
    c->txlen += hl + 4 + n;
}

static void send_text(client_t *c, const char *p, size_t n) {
    queue_frame(c, 1, p, n);
}

static char pad[65536];

static void send_chat(client_t *c) {
    char buf[66000];
    uint64_t t = now_ns() - t_start;
    int n = snprintf(buf, sizeof buf,
                     "{\"type\":\"chat\",\"id\":%llu,\"room_id\":\"%s-%d\","
                     "\"payload\":{\"t\":%llu,\"p\":\"%.*s\"}}",
                     (unsigned long long)++c->next_id, opt.room, c->room,
                     (unsigned long long)t, opt.size, pad);
    send_text(c, buf, (size_t)n);
    c->inflight++;
    c->sent++;
    st.published++;
    if (t_measure && now_ns() >= t_measure && !t_end) st.published_measured++;
}

static void send_join(client_t *c) {
    char buf[128];
    int n = snprintf(buf, sizeof buf,
                     "{\"type\":\"join_room\",\"id\":0,\"room_id\":\"%s-%d\"}",
                     opt.room, c->room);
    send_text(c, buf, (size_t)n);
}

static void send_ping(client_t *c) {
    char buf[64];
    int n = snprintf(buf, sizeof buf, "{\"type\":\"ping\",\"id\":%llu}",
                     (unsigned long long)++c->next_id);
    c->ping_sent_ns = now_ns();
    send_text(c, buf, (size_t)n);
}

static int next_addr;

/* The port a client connects to: publishers may have their own. */
static int port_of(const client_t *c) {
    return c->role == R_PUB && opt.pub_port ? opt.pub_port : opt.port;
}

static void open_client(client_t *c) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (opt.src_addrs > 0) {
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr =
            htonl(0x7f000002u + (uint32_t)(next_addr++ % opt.src_addrs));
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) die("bind");
    }
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port_of(c))};
    inet_pton(AF_INET, opt.host, &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 &&
        errno != EINPROGRESS)
        die("connect");
    c->fd = fd;
    c->state = S_CONNECTING;
    c->rxlen = 0;
    c->txlen = c->txoff = 0;
    c->want_out = 1;
    c->joined = 0;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
}

static void close_client(client_t *c) {
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->state = S_CLOSED;
}

/* ---- protocol -------------------------------------------------------------
 */

/* The number after "key": in a JSON text, or -1. The server's field order
 * is not fixed, so this looks the key up anywhere (payload keys are chosen
 * not to collide). */
static long long field_num(const char *p, size_t n, const char *key) {
    size_t kl = strlen(key);
    const char *q = memmem(p, n, key, kl);
    if (!q) return -1;
    return strtoll(q + kl, NULL, 10);
}

static int is_type(const char *p, size_t n, const char *t) {
    char k[48];
    int kl = snprintf(k, sizeof k, "\"type\":\"%s\"", t);
    return memmem(p, n, k, (size_t)kl) != NULL;
}

static void on_text(client_t *c, const char *p, size_t n) {
    uint64_t now = now_ns();
    int measuring = t_measure && now >= t_measure && !t_end;
    if (is_type(p, n, "chat")) {
        long long seq = field_num(p, n, "\"seq\":");
        long long t = field_num(p, n, "\"t\":");
        if (seq > 0) {
            if ((uint64_t)seq > c->last_seq + 1 && c->last_seq)
                c->gaps += (uint64_t)seq - c->last_seq - 1;
            else if ((uint64_t)seq <= c->last_seq)
                c->reorders++;
            if ((uint64_t)seq > c->last_seq) c->last_seq = (uint64_t)seq;
        }
        if (c->role == R_PUB) return; /* publishers' copies don't count */
        c->received++;
        st.deliveries++;
        if (measuring) {
            st.deliveries_measured++;
            if (t >= 0) hist_add(&st.lat, now - t_start - (uint64_t)t);
        }
        return;
    }
    if (is_type(p, n, "ack")) {
        if (!c->joined) {
            c->joined = 1;
            return;
        }
        c->inflight--;
        c->acked++;
        st.acks++;
        if (c->role == R_MEMBER && !stop_flag) send_chat(c);
        return;
    }
    if (is_type(p, n, "pong")) {
        st.ping_rtts++;
        if (measuring) hist_add(&st.lat, now - c->ping_sent_ns);
        if (!stop_flag) send_ping(c);
        return;
    }
    if (is_type(p, n, "welcome")) {
        c->state = S_OPEN;
        st.handshakes++;
        if (c->role == R_CYCLER) {
            /* Reopened by on_event once this buffer is no longer in use. */
            close_client(c);
            c->reopen = 1;
            return;
        }
        if (c->role == R_SUB || c->role == R_PUB || c->role == R_MEMBER)
            send_join(c);
        if (c->role == R_PINGER) send_ping(c);
        return;
    }
    if (is_type(p, n, "error")) {
        st.errors++;
        if (st.errors <= 3)
            fprintf(stderr, "luahub-bench: server error: %.*s\n", (int)n, p);
    }
}

/* A compressed text frame's payload, inflated (the server compresses
 * every message on its own: server_no_context_takeover). Returns its
 * length in *out, or -1. */
static long inflate_frame(const char *p, size_t n, char **out) {
    static z_stream z;
    static int ready;
    static char buf[1 << 20];
    static const unsigned char tail[4] = {0, 0, 0xff, 0xff};
    if (!ready) {
        if (inflateInit2(&z, -15) != Z_OK) return -1;
        ready = 1;
    }
    inflateReset(&z);
    z.next_out = (unsigned char *)buf;
    z.avail_out = sizeof buf;
    z.next_in = (unsigned char *)p;
    z.avail_in = (uInt)n;
    int rc = inflate(&z, Z_SYNC_FLUSH);
    if (rc != Z_OK && rc != Z_BUF_ERROR) return -1;
    z.next_in = (unsigned char *)tail;
    z.avail_in = sizeof tail;
    rc = inflate(&z, Z_SYNC_FLUSH);
    if (rc != Z_OK && rc != Z_BUF_ERROR) return -1;
    *out = buf;
    return (long)(sizeof buf - z.avail_out);
}

/* Parses what arrived; returns -1 when the connection is to be closed. */
static int on_bytes(client_t *c) {
    size_t off = 0;
    if (c->state == S_HANDSHAKE) {
        char *end = memmem(c->rx, c->rxlen, "\r\n\r\n", 4);
        if (!end) return 0;
        if (c->rxlen < 12 || memcmp(c->rx + 9, "101", 3) != 0) {
            fprintf(stderr, "luahub-bench: upgrade refused: %.*s\n",
                    (int)(c->rxlen < 80 ? c->rxlen : 80), c->rx);
            return -1;
        }
        off = (size_t)(end - c->rx) + 4;
        if (opt.deflate && !memmem(c->rx, off, "permessage-deflate", 18)) {
            fprintf(stderr, "luahub-bench: permessage-deflate not accepted "
                            "(is the server running with --compression?)\n");
            return -1;
        }
        c->state = S_OPEN;
    }
    for (;;) {
        size_t avail = c->rxlen - off;
        if (avail < 2) break;
        unsigned char *h = (unsigned char *)c->rx + off;
        int op = h[0] & 0x0f;
        uint64_t len = h[1] & 0x7f;
        size_t hl = 2;
        if (len == 126) {
            if (avail < 4) break;
            len = ((uint64_t)h[2] << 8) | h[3];
            hl = 4;
        } else if (len == 127) {
            if (avail < 10) break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = (len << 8) | h[2 + i];
            hl = 10;
        }
        if (avail < hl + len) break;
        const char *pl = c->rx + off + hl;
        if (op == 1 && (h[0] & 0x40)) {
            char *text;
            long tl = inflate_frame(pl, (size_t)len, &text);
            if (tl < 0) {
                fprintf(stderr, "luahub-bench: bad compressed frame\n");
                return -1;
            }
            st.inflated++;
            on_text(c, text, (size_t)tl);
        } else if (op == 1)
            on_text(c, pl, (size_t)len);
        else if (op == 9)
            queue_frame(c, 10, pl, (size_t)len);
        else if (op == 8) {
            st.closed_by_server++;
            if (!stop_flag)
                fprintf(stderr, "luahub-bench: %s closed by server: %u\n",
                        c->user,
                        len >= 2 ? ((unsigned)(unsigned char)pl[0] << 8) |
                                       (unsigned char)pl[1]
                                 : 0);
            return -1;
        }
        if (c->state == S_CLOSED) return 0; /* a cycler closed itself */
        off += hl + (size_t)len;
    }
    if (off) {
        memmove(c->rx, c->rx + off, c->rxlen - off);
        c->rxlen -= off;
    }
    return 0;
}

static void on_event_io(client_t *c, uint32_t ev);

/* A connect-mode client that closed itself opens again. */
static void after_event(client_t *c) {
    if (c->reopen && !stop_flag) {
        c->reopen = 0;
        open_client(c);
    }
}

static void on_event(client_t *c, uint32_t ev) {
    on_event_io(c, ev);
    after_event(c);
}

/* At least 64 KiB free at the end of c's input buffer. */
static void rx_room(client_t *c) {
    if (c->rxcap - c->rxlen >= 65536) return;
    c->rxcap = c->rxcap ? c->rxcap * 2 : 131072;
    c->rx = realloc(c->rx, c->rxcap);
    if (!c->rx) die("realloc");
}

static void on_event_io(client_t *c, uint32_t ev) {
    if (c->state == S_CLOSED) return;
    if (c->state == S_CONNECTING && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
            fprintf(stderr, "luahub-bench: connect: %s\n", strerror(err));
            st.lost++;
            close_client(c);
            return;
        }
        char req[320];
        int n = snprintf(req, sizeof req,
                         "GET /ws?user=%s HTTP/1.1\r\nHost: %s:%d\r\n"
                         "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                         "Sec-WebSocket-Version: 13\r\n%s\r\n",
                         c->user, opt.host, port_of(c),
                         opt.deflate ? "Sec-WebSocket-Extensions: "
                                       "permessage-deflate\r\n"
                                     : "");
        tx_reserve(c, (size_t)n);
        memcpy(c->tx + c->txlen, req, (size_t)n);
        c->txlen += (size_t)n;
        c->state = S_HANDSHAKE;
        if (opt.tls) {
            c->ssl = SSL_new(tls_ctx);
            if (!c->ssl) die("SSL_new");
            SSL_set_fd(c->ssl, c->fd);
            SSL_set_connect_state(c->ssl);
        }
    }
    if (ev & EPOLLIN) {
        for (;;) {
            rx_room(c);
            ssize_t r = io_recv(c, c->rx + c->rxlen, c->rxcap - c->rxlen);
            if (r > 0) {
                c->rxlen += (size_t)r;
                if (on_bytes(c) < 0) {
                    if (!stop_flag) st.lost++;
                    close_client(c);
                    return;
                }
                if (c->state == S_CLOSED) return;
                /* TLS reads a record at a time: read on until it waits. */
                if ((size_t)r < 65536 && !c->ssl) break;
                continue;
            }
            if (r < 0 && errno == EAGAIN) break;
            if (!stop_flag) {
                st.lost++;
                fprintf(stderr, "luahub-bench: %s: connection lost\n", c->user);
            }
            close_client(c);
            return;
        }
    }
    flush_tx(c);
}

/* ---- the server's numbers ---------------------------------------------------
 */

typedef struct proc_sample {
    double cpu_s;
    long rss_kb, hwm_kb;
} proc_sample_t;

static int read_proc(int pid, proc_sample_t *s) {
    char path[64], buf[4096];
    memset(s, 0, sizeof *s);
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    unsigned long ut = 0, stt = 0;
    /* fields after ")": state(3) ... utime(14) stime(15) */
    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
           &stt);
    s->cpu_s = (double)(ut + stt) / (double)sysconf(_SC_CLK_TCK);
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    f = fopen(path, "r");
    if (!f) return -1;
    while (fgets(buf, sizeof buf, f)) {
        sscanf(buf, "VmRSS: %ld", &s->rss_kb);
        sscanf(buf, "VmHWM: %ld", &s->hwm_kb);
    }
    fclose(f);
    return 0;
}

static double self_cpu(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- running ----------------------------------------------------------------
 */

/* ---- the ring (--io-uring) ---------------------------------------------- */

#define RING_BATCH 256
static ioring *ring;
static client_t *ring_readers[RING_BATCH], *ring_writers[RING_BATCH];
static int ring_nreaders, ring_nwriters;
/* The reads' results apart from the sends': handling a read's bytes may
 * run a batch of sends. */
static int ring_rres[RING_BATCH], ring_wres[RING_BATCH];

/* Sends what the batch's clients queued, a batch per system call. */
static void ring_write(void) {
    int n = 0;
    client_t *batch[RING_BATCH];
    struct iovec iov[RING_BATCH];
    struct msghdr mh[RING_BATCH];
    for (int i = 0; i < ring_nwriters; i++) {
        client_t *c = ring_writers[i];
        c->queued = 0;
        if (c->state != S_OPEN) continue; /* closed, or opening again */
        if (c->txoff == c->txlen) {
            tx_settle(c);
            continue;
        }
        iov[n] = (struct iovec){c->tx + c->txoff, c->txlen - c->txoff};
        mh[n] = (struct msghdr){.msg_iov = &iov[n], .msg_iovlen = 1};
        ioring_send(ring, c->fd, &mh[n]);
        batch[n++] = c;
    }
    ring_nwriters = 0;
    if (!n) return;
    if (ioring_run(ring, ring_wres) < 0) die("io_uring");
    for (int i = 0; i < n; i++) {
        /* What did not go (a full socket, a partial send) waits for
         * EPOLLOUT. */
        tx_sent(batch[i], ring_wres[i]);
        tx_settle(batch[i]);
    }
}

static void ring_write_later(client_t *c) {
    if (c->queued || c->txoff == c->txlen) return;
    if (ring_nwriters == RING_BATCH) ring_write();
    c->queued = 1;
    ring_writers[ring_nwriters++] = c;
}

/* Reads the batch's clients, a batch per system call, and handles what
 * came as on_event_io does; their answers go on the send batch. */
static void ring_read(void) {
    int n = 0;
    client_t *batch[RING_BATCH];
    size_t asked[RING_BATCH];
    for (int i = 0; i < ring_nreaders; i++) {
        client_t *c = ring_readers[i];
        if (c->state != S_OPEN) continue;
        rx_room(c);
        asked[n] = c->rxcap - c->rxlen;
        ioring_recv(ring, c->fd, c->rx + c->rxlen, asked[n]);
        batch[n++] = c;
    }
    ring_nreaders = 0;
    if (!n) return;
    if (ioring_run(ring, ring_rres) < 0) die("io_uring");
    for (int i = 0; i < n; i++) {
        client_t *c = batch[i];
        int r = ring_rres[i];
        if (c->state != S_OPEN || r == -EAGAIN) continue;
        if (r <= 0) {
            if (!stop_flag) {
                st.lost++;
                fprintf(stderr, "luahub-bench: %s: connection lost\n", c->user);
            }
            close_client(c);
            after_event(c);
            continue;
        }
        c->rxlen += (size_t)r;
        if (on_bytes(c) < 0) {
            if (!stop_flag) st.lost++;
            close_client(c);
        } else if (c->state == S_OPEN && (size_t)r == asked[i]) {
            /* More may be there: read on the plain way. */
            on_event_io(c, EPOLLIN);
        } else if (c->state == S_OPEN) {
            ring_write_later(c);
        }
        after_event(c);
    }
}

static void poll_once(int timeout_ms) {
    struct epoll_event evs[512];
    int n = epoll_wait(ep, evs, 512, timeout_ms);
    for (int i = 0; i < n; i++) {
        client_t *c = evs[i].data.ptr;
        uint32_t e = evs[i].events;
        if (ring && c->state == S_OPEN && !c->ssl && (e & EPOLLIN) &&
            !(e & (EPOLLERR | EPOLLHUP))) {
            if (e & EPOLLOUT) flush_tx(c);
            if (ring_nreaders == RING_BATCH) ring_read();
            ring_readers[ring_nreaders++] = c;
            continue;
        }
        on_event(c, e);
    }
    if (ring) {
        ring_read();
        ring_write();
    }
}

static int count_state(int want_joined) {
    int n = 0;
    for (int i = 0; i < nclients; i++) {
        client_t *c = &clients[i];
        if (c->state == S_OPEN && (!want_joined || c->joined)) n++;
    }
    return n;
}

/* Waits until every client is open (and joined when asked); returns 0, or
 * -1 after the deadline. */
static int wait_ready(int joined, double secs) {
    uint64_t deadline = now_ns() + (uint64_t)(secs * 1e9);
    while (now_ns() < deadline) {
        poll_once(50);
        if (count_state(joined) == nclients) return 0;
    }
    return -1;
}

static void on_sigint(int sig) {
    stop_flag = 1;
}

int main(int argc, char **argv) {
    static const struct option lo[] = {{"host", 1, 0, 'H'},
                                       {"port", 1, 0, 'p'},
                                       {"pub-port", 1, 0, 'q'},
                                       {"mode", 1, 0, 'm'},
                                       {"conns", 1, 0, 'n'},
                                       {"publishers", 1, 0, 'P'},
                                       {"rooms", 1, 0, 'K'},
                                       {"members", 1, 0, 'M'},
                                       {"rate", 1, 0, 'r'},
                                       {"window", 1, 0, 'w'},
                                       {"duration", 1, 0, 'd'},
                                       {"warmup", 1, 0, 'W'},
                                       {"size", 1, 0, 's'},
                                       {"pid", 1, 0, 'i'},
                                       {"json", 0, 0, 'j'},
                                       {"deflate", 0, 0, 'D'},
                                       {"src-addrs", 1, 0, 'a'},
                                       {"tls", 0, 0, 'T'},
                                       {"io-uring", 1, 0, 'U'},
                                       {"ready-timeout", 1, 0, 'R'},
                                       {"paced", 0, 0, 'C'},
                                       {"help", 0, 0, 'h'},
                                       {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (ch) {
        case 'H':
            opt.host = optarg;
            break;
        case 'p':
            opt.port = atoi(optarg);
            break;
        case 'q':
            opt.pub_port = atoi(optarg);
            break;
        case 'm':
            if (!strcmp(optarg, "fanout"))
                opt.mode = M_FANOUT;
            else if (!strcmp(optarg, "rooms"))
                opt.mode = M_ROOMS;
            else if (!strcmp(optarg, "ping"))
                opt.mode = M_PING;
            else if (!strcmp(optarg, "idle"))
                opt.mode = M_IDLE;
            else if (!strcmp(optarg, "connect"))
                opt.mode = M_CONNECT;
            else {
                fprintf(stderr, "luahub-bench: unknown mode '%s'\n", optarg);
                return 2;
            }
            break;
        case 'n':
            opt.conns = atoi(optarg);
            break;
        case 'P':
            opt.publishers = atoi(optarg);
            break;
        case 'K':
            opt.rooms = atoi(optarg);
            break;
        case 'M':
            opt.members = atoi(optarg);
            break;
        case 'r':
            opt.rate = atof(optarg);
            break;
        case 'w':
            opt.window = atoi(optarg);
            break;
        case 'd':
            opt.duration = atof(optarg);
            break;
        case 'W':
            opt.warmup = atof(optarg);
            break;
        case 'R':
            opt.ready_timeout = atof(optarg);
            break;
        case 'C':
            opt.paced = 1;
            break;
        case 's':
            opt.size = atoi(optarg);
            break;
        case 'i':
            opt.pid = atoi(optarg);
            break;
        case 'T':
            opt.tls = 1;
            break;
        case 'U':
            if (!strcmp(optarg, "auto"))
                opt.ring = 1;
            else if (!strcmp(optarg, "off"))
                opt.ring = 0;
            else {
                fprintf(stderr,
                        "luahub-bench: --io-uring: '%s' is not auto or off\n",
                        optarg);
                return 2;
            }
            break;
        case 'D':
            opt.deflate = 1;
            break;
        case 'j':
            opt.json = 1;
            break;
        case 'a':
            opt.src_addrs = atoi(optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (opt.size < 0 || opt.size > 60000 || opt.window < 1 || opt.conns < 0) {
        fprintf(stderr, "luahub-bench: bad --size, --window or --conns\n");
        return 2;
    }
    if (opt.pub_port < 0 || opt.pub_port > 65535) {
        fprintf(stderr, "luahub-bench: bad --pub-port\n");
        return 2;
    }
    /* Words, as chat text is (what compresses a chat, not a run of one
     * letter); deterministic, JSON-plain. */
    static const char *const words[] = {
        "the", "room",   "is",     "quiet", "today", "anyone", "seen",
        "my",  "notes",  "from",   "the",   "call",  "we",     "ship",
        "on",  "friday", "please", "check", "logs",  "again",  "thanks"};
    uint32_t x = 1;
    for (size_t i = 0; i < sizeof pad;) {
        x = x * 1103515245u + 12345u;
        const char *w = words[(x >> 16) % (sizeof words / sizeof *words)];
        for (; *w && i < sizeof pad; w++)
            pad[i++] = *w;
        if (i < sizeof pad) pad[i++] = ' ';
    }
    signal(SIGINT, on_sigint);
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);

    switch (opt.mode) {
    case M_FANOUT:
        nclients = opt.conns + opt.publishers;
        break;
    case M_ROOMS:
        nclients = opt.rooms * opt.members;
        break;
    default:
        nclients = opt.conns;
        break;
    }
    if ((rlim_t)nclients + 16 > rl.rlim_cur) {
        fprintf(stderr,
                "luahub-bench: %d connections exceed this process's %lu file "
                "descriptors: run several load processes\n",
                nclients, (unsigned long)rl.rlim_cur);
        return 2;
    }
    if (!opt.src_addrs)
        opt.src_addrs = nclients > 20000 ? 1 + nclients / 20000 : 0;

    if (opt.tls) {
        tls_ctx = SSL_CTX_new(TLS_client_method());
        if (!tls_ctx) die("SSL_CTX_new");
        SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    }
    const char *io = "one system call per socket";
    char why[160] = "--io-uring off";
    if (opt.ring && !opt.tls &&
        (ring = ioring_create(RING_BATCH, why, sizeof why)))
        io = "io_uring";
    else if (opt.tls)
        snprintf(why, sizeof why, "--tls");
    ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");
    clients = calloc((size_t)nclients, sizeof *clients);
    t_start = now_ns();
    /* before: the server before our connections; p0/p1: around the
     * measured run. */
    proc_sample_t before = {0}, p0 = {0}, p1 = {0};
    if (opt.pid) read_proc(opt.pid, &before);

    for (int i = 0; i < nclients; i++) {
        client_t *c = &clients[i];
        c->idx = i;
        switch (opt.mode) {
        case M_FANOUT:
            c->role = i < opt.publishers ? R_PUB : R_SUB;
            c->room = 0;
            break;
        case M_ROOMS:
            c->role = R_MEMBER;
            c->room = i / opt.members;
            break;
        case M_PING:
            c->role = R_PINGER;
            break;
        case M_IDLE:
            c->role = R_IDLE;
            break;
        case M_CONNECT:
            c->role = R_CYCLER;
            break;
        }
        snprintf(c->user, sizeof c->user, "b%d", i);
        open_client(c);
        /* Don't flood the listen backlog: let the server accept as we go. */
        if (i % 256 == 255) poll_once(0);
        if (opt.paced && i % 256 == 255) {
            uint64_t deadline = now_ns() + (uint64_t)(opt.ready_timeout * 1e9);
            while (count_state(0) < i + 1 && now_ns() < deadline)
                poll_once(50);
        }
    }

    int joined = opt.mode == M_FANOUT || opt.mode == M_ROOMS;
    if (opt.mode != M_CONNECT && wait_ready(joined, opt.ready_timeout) < 0) {
        fprintf(stderr, "luahub-bench: only %d of %d connections ready\n",
                count_state(joined), nclients);
        return 1;
    }
    uint64_t ready_ns = now_ns();
    double cpu0 = self_cpu();
    if (opt.pid) read_proc(opt.pid, &p0);
    if (opt.mode == M_IDLE) {
        /* Let the server settle, then read its memory. */
        uint64_t until = now_ns() + 2000000000ull;
        while (now_ns() < until)
            poll_once(100);
    }

    /* Closed-loop modes start their loops; fanout publishers are paced in
     * the loop below. */
    if (opt.mode == M_ROOMS)
        for (int i = 0; i < nclients; i++)
            send_chat(&clients[i]);
    for (int i = 0; i < nclients; i++)
        flush_tx(&clients[i]);

    uint64_t start = now_ns();
    t_measure = start + (uint64_t)(opt.warmup * 1e9);
    uint64_t stop_at = t_measure + (uint64_t)(opt.duration * 1e9);
    if (opt.mode == M_IDLE) stop_at = t_measure = start;
    uint64_t last_tick = start;
    double cpu_m0 = 0, srv_m0 = 0;
    int measure_started = 0;
    proc_sample_t pm0 = p0;
    while (!stop_flag && now_ns() < stop_at) {
        uint64_t now = now_ns();
        if (!measure_started && now >= t_measure) {
            measure_started = 1;
            cpu_m0 = self_cpu();
            if (opt.pid) read_proc(opt.pid, &pm0);
            srv_m0 = pm0.cpu_s;
        }
        if (opt.mode == M_FANOUT) {
            double dt = (double)(now - last_tick) / 1e9;
            last_tick = now;
            for (int i = 0; i < opt.publishers; i++) {
                client_t *c = &clients[i];
                if (c->state != S_OPEN) continue;
                if (opt.rate > 0) {
                    c->tokens += dt * opt.rate;
                    if (c->tokens > opt.window) c->tokens = opt.window;
                    while (c->tokens >= 1 && c->inflight < opt.window) {
                        send_chat(c);
                        c->tokens -= 1;
                    }
                } else {
                    while (c->inflight < opt.window)
                        send_chat(c);
                }
                flush_tx(c);
            }
        }
        poll_once(opt.mode == M_FANOUT && opt.rate > 0 ? 1 : 10);
    }
    t_end = now_ns();
    double measured_s = (double)(t_end - t_measure) / 1e9;
    double cpu_m1 = self_cpu();
    proc_sample_t pm1 = {0};
    if (opt.pid) read_proc(opt.pid, &pm1);

    /* Drain: every publication should reach every subscriber. */
    stop_flag = 1;
    uint64_t drain_until = now_ns() + 3000000000ull;
    uint64_t expected = 0, got = 0;
    int subs = 0;
    if (opt.mode == M_FANOUT || opt.mode == M_ROOMS) {
        for (;;) {
            uint64_t acked = 0, sent = 0;
            got = expected = 0;
            subs = 0;
            for (int i = 0; i < nclients; i++) {
                client_t *c = &clients[i];
                sent += c->sent;
                acked += c->acked;
                if (c->role != R_PUB) {
                    got += c->received;
                    subs++;
                }
            }
            if (opt.mode == M_FANOUT)
                expected = st.published * (uint64_t)opt.conns;
            else
                expected = st.published * (uint64_t)opt.members;
            if ((got >= expected && acked >= sent) || now_ns() > drain_until)
                break;
            poll_once(20);
        }
    }
    if (opt.pid) read_proc(opt.pid, &p1);

    uint64_t gaps = 0, reorders = 0;
    int open_now = 0;
    for (int i = 0; i < nclients; i++) {
        gaps += clients[i].gaps;
        reorders += clients[i].reorders;
        if (clients[i].state == S_OPEN) open_now++;
    }
    double self_cpu_s = cpu_m1 - cpu_m0;
    double srv_cpu_s = opt.pid ? pm1.cpu_s - srv_m0 : 0;
    double client_load = measured_s > 0 ? self_cpu_s / measured_s : 0;
    double deliv_rate =
        measured_s > 0 ? (double)st.deliveries_measured / measured_s : 0;
    double msg_rate =
        measured_s > 0 ? (double)st.published_measured / measured_s : 0;
    double rtt_rate = measured_s > 0 ? (double)st.lat.n / measured_s : 0;
    const char *mode_name[] = {"fanout", "rooms", "ping", "idle", "connect"};
    /* Handshakes per second mean something only in connect mode; the
     * other modes connect before measuring. */
    double hs_window = (double)(t_end - start) / 1e9;
    double hs_rate = opt.mode == M_CONNECT && hs_window > 0
                         ? (double)st.handshakes / hs_window
                         : 0;
    double rss_per_conn_kb =
        opt.pid && nclients ? (double)(p1.rss_kb - before.rss_kb) / nclients
                            : 0;
    (void)ready_ns;
    (void)cpu0;

    if (opt.json) {
        printf("{\"mode\":\"%s\",\"connections\":%d,\"seconds\":%.3f,"
               "\"published\":%llu,\"messages_per_s\":%.0f,"
               "\"deliveries\":%llu,\"deliveries_per_s\":%.0f,"
               "\"expected_deliveries\":%llu,\"delivered_total\":%llu,"
               "\"round_trips\":%llu,\"round_trips_per_s\":%.0f,\"handshakes\":"
               "%llu,"
               "\"handshakes_per_s\":%.0f,"
               "\"latency_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
               "\"p999\":%.3f,\"max\":%.3f},"
               "\"gaps\":%llu,\"reorders\":%llu,\"lost\":%llu,\"errors\":%llu,"
               "\"open_at_end\":%d,\"client_cpu\":%.3f,"
               "\"server_cpu_s\":%.3f,\"server_cpu_per_m_deliveries_s\":%.3f,"
               "\"server_rss_kb\":%ld,\"server_peak_rss_kb\":%ld,"
               "\"server_rss_before_kb\":%ld,\"rss_per_conn_kb\":%.3f,"
               "\"inflated\":%llu,\"io\":\"%s\"}\n",
               mode_name[opt.mode], nclients, measured_s,
               (unsigned long long)st.published, msg_rate,
               (unsigned long long)st.deliveries_measured, deliv_rate,
               (unsigned long long)expected, (unsigned long long)got,
               (unsigned long long)st.ping_rtts, rtt_rate,
               (unsigned long long)st.handshakes, hs_rate,
               hist_q_ms(&st.lat, 0.5), hist_q_ms(&st.lat, 0.9),
               hist_q_ms(&st.lat, 0.99), hist_q_ms(&st.lat, 0.999),
               (double)st.lat.max_ns / 1e6, (unsigned long long)gaps,
               (unsigned long long)reorders, (unsigned long long)st.lost,
               (unsigned long long)st.errors, open_now, client_load, srv_cpu_s,
               st.deliveries_measured
                   ? srv_cpu_s / ((double)st.deliveries_measured / 1e6)
                   : 0,
               p1.rss_kb, p1.hwm_kb, before.rss_kb, rss_per_conn_kb,
               (unsigned long long)st.inflated, ring ? "io_uring" : "syscalls");
    } else {
        printf("mode %s: %d connections, %.1f s measured\n",
               mode_name[opt.mode], nclients, measured_s);
        if (opt.mode == M_FANOUT || opt.mode == M_ROOMS)
            printf("  messages      %.0f/s (%llu published)\n"
                   "  deliveries    %.0f/s  (check: %llu of %llu expected)\n",
                   msg_rate, (unsigned long long)st.published, deliv_rate,
                   (unsigned long long)got, (unsigned long long)expected);
        if (opt.mode == M_PING) printf("  round trips   %.0f/s\n", rtt_rate);
        if (opt.mode == M_CONNECT) printf("  handshakes    %.0f/s\n", hs_rate);
        if (st.lat.n)
            printf("  latency ms    p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  "
                   "max %.3f\n",
                   hist_q_ms(&st.lat, 0.5), hist_q_ms(&st.lat, 0.9),
                   hist_q_ms(&st.lat, 0.99), hist_q_ms(&st.lat, 0.999),
                   (double)st.lat.max_ns / 1e6);
        printf("  gaps %llu  reorders %llu  lost %llu  errors %llu\n",
               (unsigned long long)gaps, (unsigned long long)reorders,
               (unsigned long long)st.lost, (unsigned long long)st.errors);
        printf("  client cpu    %.0f%% of a core (%s%s%s)\n", client_load * 100,
               io, ring ? "" : ": ", ring ? "" : why);
        if (opt.pid)
            printf(
                "  server cpu    %.2f s (%.3f s per million deliveries)\n"
                "  server rss    %ld KiB now, %ld KiB peak, %ld KiB before\n",
                srv_cpu_s,
                st.deliveries_measured
                    ? srv_cpu_s / ((double)st.deliveries_measured / 1e6)
                    : 0,
                p1.rss_kb, p1.hwm_kb, before.rss_kb);
        if (opt.mode == M_IDLE && opt.pid)
            printf("  per connection %.2f KiB of server RSS\n",
                   rss_per_conn_kb);
    }
    if (client_load > 0.9 && measured_s > 0.5)
        fprintf(stderr,
                "luahub-bench: warning: the load tool used %.0f%% of "
                "a core: it may be the bottleneck, not the server\n",
                client_load * 100);
    return 0;
}
