/* transport_int.h -- what the transport's files share (internal).
 *
 * The transport is five files, each calling only down the list:
 * transport.c (the public API, accepting, dispatching socket events),
 * gate.c (request heads: refusals, the upgrade, HTTP handed over),
 * apigate.c (the requests the server answers itself, api.h: a body
 * read, an answer that may come later, written out),
 * wsconn.c (WebSocket connections: frames in, queues out, closing),
 * tconn.c (what every client socket has: deadlines, polling, teardown,
 * refusals). */
#ifndef LUAHUB_TRANSPORT_INT_H
#define LUAHUB_TRANSPORT_INT_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <uv.h>

#include "api.h"
#include "buf.h"
#include "conn.h"
#include "http.h"
#include "ioring.h"
#include "listen.h"
#include "netaddr.h"
#include "peers.h"
#include "pmd.h"
#include "rate.h"
#include "tls.h"
#include "transport.h"
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
/* Frames per sendmsg(), and sendmsg() calls per connection per flush, so one
 * fast reader cannot starve the others in a loop pass. */
#define IOV_BATCH 64
#define FLUSH_ROUNDS 4
/* How long one loop pass may spend writing out dirty connections before it
 * goes back to reading (the clock looked at every FLUSH_CLOCK_EVERY
 * connections). The rest stay dirty, in order, and are written next pass:
 * a fan-out to 10,000 sockets takes tens of milliseconds, and a pass that
 * wrote all of them before reading again made every message that arrived
 * meanwhile wait for the whole pass and then for its place in the next one
 * (docs/benchmarks.md, "Fan-out to 10,000: the latency cliff"). */
#define FLUSH_BUDGET_NS 1000000
#define FLUSH_CLOCK_EVERY 16
/* --io-uring: the calls one system call submits, one per connection (a
 * batch of 64 one-frame sends takes about 0.8 ms on a small VM, so the
 * budget above is looked at between batches), and the bytes each read of
 * a batch takes at most (one buffer per call; a read that fills its
 * buffer goes on at once the plain way, into rbuf). */
#define RING_BATCH 64
#define RING_READ 16384
/* How often the deadlines (handshakes, lingering, closing) are checked. */
#define SWEEP_MS 100
/* Client socket events read at once from the transport's epoll set (as
 * many as libuv reads from its own). */
#define EPOLL_BATCH 1024
/* Connections accepted per wake-up of a listening socket. */
#define ACCEPT_BATCH 64
/* libwebsockets' header space (its max_http_header_data is 4096). */
#define FORWARD_MAX 4000
/* Memory goes back to the system (alloc_release) at a heartbeat after a
 * drop of this many connections from their most since the last time, or
 * after drained send queues gave back this many bytes of their rings (a
 * burst fanned out and over: its frames went with it). */
#define RELEASE_CONNS 1000
#define RELEASE_QUEUE_BYTES (1u << 20)
/* ... but at most once in this many milliseconds: giving back walks the
 * heap's free chunks (5-40 ms of the loop for a heap of 130 MB, most of
 * it freed), so a server whose clients come and go in thousands all day
 * pays it a few times a minute at most. */
#define RELEASE_EVERY_MS 5000
/* How often a refusal for being over a connection limit is logged: once
 * per address (--max-conns-per-ip) or once in all (--max-conns) a
 * minute, with the count of those not logged. */
#define LIMIT_LOG_MS 60000
/* A control frame we write: a pong echoes up to 125 bytes. */
#define CTL_CAP (2 + 125)
/* Milliseconds an HTTP answer relayed to a TLS client may go without
 * progress (libwebsockets gives up on its side after 10 seconds). */
#define RELAY_MS 10000
/* Bytes inflated at once from a compressed message, into one buffer
 * shared by every connection: the most a message held nowhere else costs
 * while it inflates (it goes on into the connection's message buffer,
 * which --max-message bounds). */
#define INFLATE_CHUNK 16384

typedef enum tstate {
    T_HANDSHAKE, /* the TLS handshake, if any, then the request head */
    T_LINGER,    /* refused: the answer is out, dropping what comes */
    T_OPEN,      /* a WebSocket connection */
    T_CLOSING,   /* our close frame is out: dropping what comes until EOF */
    T_RELAY,     /* TLS: an HTTP answer relayed from libwebsockets */
    T_BODY,      /* an API request's body being read (api.h) */
    T_API,       /* an API request waiting for its answer (Redis) */
    T_ANSWER,    /* an API answer being written */
    T_DEAD,      /* closed; freed by the handle's close callback */
} tstate;

typedef struct tconn tconn;

/* One send's worth of what a connection writes next (wsconn.c): the rest
 * of a frame begun, a control frame, queued frames, the close frame.
 * k_ctl and k_close: which iov entries are the control and close frames
 * (-1: none). */
typedef struct flush_batch {
    int n, k_ctl, k_close;
    struct iovec iov[IOV_BATCH + 2];
} flush_batch;

/* A connection's send in a ring batch (--io-uring): its iovec and
 * message live here, in the transport, until the batch completes. */
typedef struct flush_slot {
    tconn *c;
    int round; /* sends so far this pass, at most FLUSH_ROUNDS */
    struct msghdr mh;
    flush_batch b;
} flush_slot;

/* The ring and what its batches use (--io-uring), owned by the
 * transport: the sends' slots, the reads' connections and buffers (each
 * with room for a carried partial frame in front, as rbuf), the calls'
 * results. */
typedef struct ring_state {
    ioring *ring;
    flush_slot slots[RING_BATCH];
    tconn *readers[RING_BATCH];
    unsigned nreaders;
    /* The reads' results apart from the sends', so that neither batch
     * can overwrite the other's while its results are taken. */
    int rres[RING_BATCH], wres[RING_BATCH];
    unsigned char rbufs[RING_BATCH][WS_MAX_CONTROL_FRAME + RING_READ];
} ring_state;

/* A list of connections with deadlines; every list has one timeout, so
 * appending keeps it in deadline order. */
typedef struct tlist {
    tconn *head, *tail;
} tlist;

struct tconn {
    /* What the flush reads, in the first 48 bytes (one or two cache lines
     * wherever malloc puts it, where they were spread over four): a
     * fan-out to 10,000 flushes every subscriber once per message
     * (docs/benchmarks.md, "Fan-out: memory stalls per delivery"). */
    transport_t *t;
    conn_t *conn; /* T_OPEN; NULL for a connection refused after the upgrade */
    /* --tls-cert: the session (NULL on a plain port, or once a client
     * that does not speak TLS is answered in plain). */
    tls_conn *tls;
    int fd;
    uint32_t wr_off; /* bytes of the first queued frame already written */
    uint8_t state;
    uint8_t polling;              /* the events being polled */
    uint8_t ctl_len, ctl_off;     /* a pong or ping being written */
    uint8_t close_len, close_off; /* our close frame, after the queue */
    uint8_t pmd;                  /* PMD_ flags negotiated (pmd.h) */
    uint8_t failed; /* the client broke the protocol: input ignored */
    tconn *lnext, *lprev;
    tlist *list;        /* the deadline list it is on, or NULL */
    uint64_t deadline;  /* uv_now() milliseconds */
    uint8_t msg_binary; /* the message being assembled is binary */
    uint8_t carry_len;
    uint8_t counted; /* under addr in the transport's counts */
    uint8_t unsure;  /* a trusted proxy's: the client is in the head */
    uint8_t zmsg;    /* a compressed message is being inflated */
    uint8_t sniffed; /* TLS: the first byte was a handshake's */
    uint8_t hold;    /* the 101 is not out yet: nothing is written before */
    netaddr addr;    /* the client's address (see netaddr.h) */
    /* T_HANDSHAKE: the request head so far. T_LINGER: bytes dropped.
     * T_BODY: the body so far (head_scanned: the bytes it has). T_ANSWER:
     * the answer (head_scanned: the bytes written). */
    char *head;
    uint32_t head_len, head_cap, head_scanned;
    /* T_OPEN */
    ws_parser_t parser;
    buf_t *msg; /* a message arriving in pieces, while it does */
    /* Compressed messages: the inflater, from the first one on (or for
     * one message at a time when the client resets its context), and the
     * UTF-8 state of the text inflated so far. */
    pmd_inflater *zin;
    uint32_t zutf8;
    unsigned char *ctl, *closef, *carry;
    rate_bucket rl;
    /* T_RELAY: libwebsockets' end of the pair is the other. */
    uv_poll_t *relay;
    int relay_fd;
    /* T_API: the request waiting (cancelled if the client goes). */
    api_req *api;
    tconn *dead_next; /* T_DEAD: the next to free (transport.h) */
};

struct transport {
    uv_loop_t *loop;
    /* Every client socket is in this epoll set, itself watched by one
     * poll handle on the loop: a socket costs one epoll_ctl() to add and
     * none to remove (closing it does), where a uv_poll_t per socket cost
     * five epoll_ctl() calls and an ioctl() (docs/benchmarks.md, "The
     * handshake path"). */
    int epfd;
    uv_poll_t epoll_watch;
    void (*on_io)(tconn *c, int status, int events); /* transport.c's */
    /* Connections torn down, freed (and the hub told) from the reap
     * check handle, once no event the loop has in hand can name them. */
    tconn *dead;
    uv_check_t reap;
    int reap_active;
    const config_t *cfg;
    auth_t *auth;
    hub_t *hub;
    transport_http_fn http;
    void *http_ud;
    api_t *api; /* /metrics and /api/ (borrowed), or NULL: none */
    listen_set ls;
    uv_poll_t lpoll[LISTEN_MAX_SOCKETS];
    size_t nlpoll;
    int reserve_fd; /* spent to answer 503 when out of descriptors */
    tlist handshakes, lingering, closing, relaying;
    uv_timer_t sweep;
    uv_timer_t heartbeat;
    uv_check_t flush_check;
    uv_idle_t flush_idle; /* keeps poll from blocking while frames wait */
    int idle_active, sweeping, stopping, closed_all;
    uint64_t handshake_ms;
    rate_limit rl;
    char rate_msg[64];
    /* Client connections from accept to close, in all and per address. */
    size_t nconns;
    /* Since memory last went back to the system: the most client
     * connections at once, and the bytes of queue rings released. */
    size_t conns_peak, released;
    int64_t released_at; /* clock_now_ms() of the last time */
    peers_t *peers;
    netaddr_list proxies; /* --trusted-proxies */
    /* The last --max-conns refusal logged, and those since not logged. */
    int64_t full_logged_at;
    unsigned full_unlogged;
    /* Refusals logged in the current second, so that a flood of bad
     * requests cannot flood the log. */
    int64_t log_second;
    unsigned logged, unlogged;
    unsigned char rbuf[WS_MAX_CONTROL_FRAME + READ_SIZE];
    unsigned char zbuf[INFLATE_CHUNK];
    pmd_deflater *deflater; /* --compression: the one for every frame */
    tls_t *tls;             /* --tls-cert (borrowed), or NULL */
    /* TLS has no writev: frames are gathered here a record at a time. */
    unsigned char wbuf[TLS_RECORD];
    /* --io-uring: plain WebSocket connections are read and written
     * through this (NULL: one system call per socket). */
    ring_state *ring;
};

/* ---- tconn.c ---- */

/* Sets up the reap check handle (transport_create). */
void transport__reap_init(transport_t *t);
/* Takes c off its deadline list, if any. */
void transport__list_remove(tconn *c);
/* Puts c at the end of l (off any other list), due in ms. */
void transport__list_push(tlist *l, tconn *c, uint64_t ms);
/* Polls c's socket for events (UV_READABLE, UV_WRITABLE). Returns 0, or
 * -1 when the socket could not be added to the epoll set. */
int transport__poll_set(tconn *c, int events);
/* Takes c's socket out of the epoll set, for a socket handed on open. */
void transport__poll_forget(tconn *c);
/* Closes the socket now. The connection (and the hub's record of it) is
 * freed later, from the reap check handle, so whoever holds c may go on
 * reading c->state until then. code: the close code the hub reports when none
 * was set (1006: gone without a close handshake). */
void transport__teardown(tconn *c, int code);
/* Logs a refusal of a client at ip (NULL: unknown), at most ten a
 * second. */
void transport__log_refusal(transport_t *t, const netaddr *ip, int status,
                            const char *why);
/* Answers status and why, then drops what the client still sends for a
 * while before closing (T_LINGER). */
void transport__refuse(tconn *c, int status, const char *why,
                       const char *extra);
/* The same, not logged (the caller logs it its own way). */
void transport__answer(tconn *c, int status, const char *why,
                       const char *extra);
/* Counts c under its client's address addr (again, when a trusted
 * proxy's header named another). Returns the address's count. */
uint32_t transport__count(tconn *c, const netaddr *addr);
/* Refuses c for being over --max-conns-per-ip (429) when its address
 * holds more connections than that; logs it once per address a minute.
 * Returns 1 when refused. */
int transport__over_ip_limit(tconn *c, uint32_t count);
/* Reads and drops; closes at the client's end, or past limit bytes (0:
 * no limit). */
void transport__drop_input(tconn *c, uint32_t limit);
/* Reads into buf, through TLS when c has it. Returns bytes read (> 0), 0
 * when the client left or broke the connection, -1 when nothing is there
 * yet (c is polled for what it waits for). */
ssize_t transport__recv(tconn *c, void *buf, size_t len);
/* Whether TLS holds bytes already read from c's socket: no socket event
 * will announce them. */
int transport__pending(const tconn *c);
/* Sends a short answer (a head, a refusal) into an empty socket, through
 * TLS when c has it. Returns 0, or -1 when not all of it went. */
int transport__send(tconn *c, const void *buf, size_t len);
/* Closes c's end of the pair an HTTP answer was relayed through, if
 * any. */
void transport__relay_close(tconn *c);
/* Ends our sending side: TLS's close_notify, then the TCP FIN. */
void transport__shut_wr(tconn *c);

/* ---- wsconn.c ---- */

/* c's request was a valid upgrade: c becomes a WebSocket connection of
 * user uid, or, when why is set, is closed at once with 4001 and why.
 * resp: the 101 answer, sent here (with the welcome, when there is one
 * by then); extra: bytes that came right behind the request. */
void transport__ws_open(tconn *c, const char *uid, const char *why,
                        const char *resp, size_t rl, const unsigned char *extra,
                        size_t nextra);
/* Reads what c's socket has, and hands whole messages to the hub. */
void transport__ws_read(tconn *c);
/* With a ring (--io-uring): c, readable, is read in the pass's read
 * batch, which runs when full or at transport__ws_read_batch. */
void transport__ws_read_later(tconn *c);
/* Reads the batch's sockets in one system call, then hands each one's
 * bytes to the hub in the order they were added, as transport__ws_read
 * would. */
void transport__ws_read_batch(transport_t *t);
/* Writes what c's socket takes now. Returns -1 when the connection
 * broke. */
int transport__flush(tconn *c);
/* Closes conn with code and why, after its queued frames (the hub's
 * close). */
void transport__close_conn(void *ud, conn_t *conn, int code, const char *why);
void transport__on_heartbeat(uv_timer_t *h);
void transport__on_flush_check(uv_check_t *h);
/* Sets up the ring as --io-uring says, and logs the choice. Returns 0, or
 * -1 with why in err (--io-uring on, and no ring to be had). */
int transport__ring_setup(transport_t *t, char *err, size_t errlen);
void transport__ring_destroy(transport_t *t);

/* ---- apigate.c ---- */

/* c's head (r, hl bytes of c->head) asks for /metrics or /api/: answered,
 * waited for, or its body read first. */
void transport__api_head(tconn *c, const http_req *r, size_t hl);
/* T_BODY: reads more of the body. */
void transport__api_read(tconn *c);
/* T_ANSWER: writes what the socket takes of the answer. */
void transport__api_write(tconn *c);

/* ---- gate.c ---- */

/* Reads c's request head (after the TLS handshake, on a TLS port);
 * answers, upgrades or hands it over once whole. */
void transport__head_read(tconn *c);
/* T_RELAY: moves libwebsockets' answer on to the TLS client. */
void transport__relay_pump(tconn *c);

#endif
