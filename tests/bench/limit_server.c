/* limit-server -- what this machine can do, for comparison.
 *
 * A minimal epoll WebSocket server in plain C that speaks just the part of
 * luahub's protocol that luahub-bench's fanout, rooms and ping modes use:
 * welcome, join_room, room chat (with seq and ack), ping. It is built the
 * fastest way we know: a chat is encoded and framed once and the same bytes
 * are appended to every member's output buffer, and each socket is written
 * once per loop pass with everything pending for it. No Lua, no rooms API,
 * no limits, no safety: never expose it. Its only job is to make luahub's
 * figures readable as a fraction of the limit. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- SHA-1 and base64, for Sec-WebSocket-Accept ------------------------- */

static uint32_t rol(uint32_t x, int n) {
    return (x << n) | (x >> (32 - n));
}

static void sha1(const unsigned char *msg, size_t len, unsigned char out[20]) {
    uint32_t h[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476,
                     0xc3d2e1f0};
    size_t total = ((len + 8) / 64 + 1) * 64;
    unsigned char *m = calloc(1, total);
    memcpy(m, msg, len);
    m[len] = 0x80;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        m[total - 1 - i] = (unsigned char)(bits >> (8 * i));
    for (size_t off = 0; off < total; off += 64) {
        uint32_t w[80];
        for (int i = 0; i < 16; i++)
            w[i] = (uint32_t)m[off + 4 * i] << 24 |
                   (uint32_t)m[off + 4 * i + 1] << 16 |
                   (uint32_t)m[off + 4 * i + 2] << 8 | m[off + 4 * i + 3];
        for (int i = 16; i < 80; i++)
            w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        for (int i = 0; i < 80; i++) {
            uint32_t f, k;
            if (i < 20)
                f = (b & c) | (~b & d), k = 0x5a827999;
            else if (i < 40)
                f = b ^ c ^ d, k = 0x6ed9eba1;
            else if (i < 60)
                f = (b & c) | (b & d) | (c & d), k = 0x8f1bbcdc;
            else
                f = b ^ c ^ d, k = 0xca62c1d6;
            uint32_t t = rol(a, 5) + f + e + k + w[i];
            e = d, d = c, c = rol(b, 30), b = a, a = t;
        }
        h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
    }
    free(m);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 4; j++)
            out[4 * i + j] = (unsigned char)(h[i] >> (24 - 8 * j));
}

static void base64(const unsigned char *in, size_t n, char *out) {
    static const char t[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 |
                     (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        out[o++] = t[v >> 18 & 63];
        out[o++] = t[v >> 12 & 63];
        out[o++] = i + 1 < n ? t[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? t[v & 63] : '=';
    }
    out[o] = '\0';
}

/* ---- connections and rooms ------------------------------------------------
 */

typedef struct conn conn_t;
typedef struct room {
    char name[64];
    conn_t **members;
    size_t n, cap;
    uint64_t seq;
    struct room *next;
} room_t;

struct conn {
    int fd, upgraded, dirty, want_out;
    char user[64];
    char *in;
    size_t inlen, incap;
    char *out;
    size_t outlen, outoff, outcap;
    conn_t *next_dirty;
};

static int ep;
static conn_t *dirty;
static room_t *rooms[4096];
static uint64_t conn_ids;

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void out_append(conn_t *c, const void *p, size_t n) {
    if (c->outlen + n > c->outcap) {
        if (c->outoff) {
            memmove(c->out, c->out + c->outoff, c->outlen - c->outoff);
            c->outlen -= c->outoff;
            c->outoff = 0;
        }
        if (c->outlen + n > c->outcap) {
            c->outcap = (c->outlen + n) * 2;
            c->out = realloc(c->out, c->outcap);
        }
    }
    memcpy(c->out + c->outlen, p, n);
    c->outlen += n;
    if (!c->dirty) {
        c->dirty = 1;
        c->next_dirty = dirty;
        dirty = c;
    }
}

/* Frames payload into buf (which has room for a 10-byte header); returns
 * the frame's start and sets *len. */
static char *frame(char *buf, size_t plen, size_t *len) {
    char *p = buf + 10;
    if (plen < 126) {
        p -= 2;
        p[0] = (char)0x81;
        p[1] = (char)plen;
    } else if (plen <= 0xffff) {
        p -= 4;
        p[0] = (char)0x81;
        p[1] = 126;
        p[2] = (char)(plen >> 8);
        p[3] = (char)plen;
    } else {
        p -= 10;
        p[0] = (char)0x81;
        p[1] = 127;
        for (int i = 0; i < 8; i++)
            p[2 + i] = (char)((uint64_t)plen >> (56 - 8 * i));
    }
    *len = (size_t)(buf + 10 + plen - p);
    return p;
}

static void send_json(conn_t *c, const char *fmt, ...) {
    char buf[70000];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + 10, sizeof buf - 10, fmt, ap);
    va_end(ap);
    size_t len;
    char *f = frame(buf, (size_t)n, &len);
    out_append(c, f, len);
}

static room_t *room_get(const char *name, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)name[i]) * 16777619u;
    room_t **pp = &rooms[h % 4096];
    for (room_t *r = *pp; r; r = r->next)
        if (strlen(r->name) == n && !memcmp(r->name, name, n)) return r;
    room_t *r = calloc(1, sizeof *r);
    memcpy(r->name, name, n < 63 ? n : 63);
    r->next = *pp;
    *pp = r;
    return r;
}

/* The string value of "key":"…" in json, or NULL. */
static const char *str_field(const char *json, size_t n, const char *key,
                             size_t *vlen) {
    const char *p = memmem(json, n, key, strlen(key));
    if (!p) return NULL;
    p += strlen(key);
    const char *e = memchr(p, '"', (size_t)(json + n - p));
    if (!e) return NULL;
    *vlen = (size_t)(e - p);
    return p;
}

/* The raw text of "id":…, up to , or }. */
static int id_field(const char *json, size_t n, char *out, size_t cap) {
    const char *p = memmem(json, n, "\"id\":", 5);
    if (!p) return 0;
    p += 5;
    size_t i = 0;
    while (p < json + n && *p != ',' && *p != '}' && i + 1 < cap)
        out[i++] = *p++;
    out[i] = '\0';
    return 1;
}

static void on_message(conn_t *c, const char *m, size_t n) {
    char id[64] = "null";
    id_field(m, n, id, sizeof id);
    size_t rl;
    const char *room;
    if (memmem(m, n, "\"type\":\"chat\"", 13)) {
        room = str_field(m, n, "\"room_id\":\"", &rl);
        const char *pl = memmem(m, n, "\"payload\":", 10);
        if (!room || !pl) return;
        pl += 10;
        /* The payload object runs to the frame's last '}' but one. */
        const char *pe = m + n - 1;
        while (pe > pl && *pe != '}')
            pe--;
        room_t *r = room_get(room, rl);
        uint64_t seq = ++r->seq;
        static char buf[70000];
        int k =
            snprintf(buf + 10, sizeof buf - 10,
                     "{\"type\":\"chat\",\"room_id\":\"%.*s\",\"from\":\"%s\","
                     "\"payload\":%.*s,\"seq\":%llu,\"timestamp\":%llu}",
                     (int)rl, room, c->user, (int)(pe - pl), pl,
                     (unsigned long long)seq, (unsigned long long)now_ms());
        size_t len;
        char *f = frame(buf, (size_t)k, &len);
        for (size_t i = 0; i < r->n; i++)
            out_append(r->members[i], f, len);
        send_json(c, "{\"type\":\"ack\",\"id\":%s,\"seq\":%llu}", id,
                  (unsigned long long)seq);
    } else if (memmem(m, n, "\"type\":\"join_room\"", 18)) {
        room = str_field(m, n, "\"room_id\":\"", &rl);
        if (!room) return;
        room_t *r = room_get(room, rl);
        if (r->n == r->cap) {
            r->cap = r->cap ? r->cap * 2 : 8;
            r->members = realloc(r->members, r->cap * sizeof *r->members);
        }
        r->members[r->n++] = c;
        send_json(
            c, "{\"type\":\"ack\",\"id\":%s,\"room_id\":\"%.*s\",\"seq\":%llu}",
            id, (int)rl, room, (unsigned long long)r->seq);
    } else if (memmem(m, n, "\"type\":\"ping\"", 13)) {
        send_json(c, "{\"type\":\"pong\",\"id\":%s,\"timestamp\":%llu}", id,
                  (unsigned long long)now_ms());
    }
}

static void drop(conn_t *c) {
    /* Rooms keep dangling pointers in this toy: remove the member. */
    for (int i = 0; i < 4096; i++)
        for (room_t *r = rooms[i]; r; r = r->next)
            for (size_t j = 0; j < r->n; j++)
                if (r->members[j] == c) r->members[j--] = r->members[--r->n];
    for (conn_t **pp = &dirty; *pp; pp = &(*pp)->next_dirty)
        if (*pp == c) {
            *pp = c->next_dirty;
            break;
        }
    close(c->fd);
    free(c->in);
    free(c->out);
    free(c);
}

static int handshake(conn_t *c) {
    char *end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
    if (!end) return 0;
    size_t hl = (size_t)(end - c->in) + 4;
    size_t kl;
    const char *key = memmem(c->in, hl, "Sec-WebSocket-Key: ", 19);
    if (!key) return -1;
    key += 19;
    const char *ke = memmem(key, (size_t)(end - key) + 2, "\r\n", 2);
    kl = (size_t)(ke - key);
    const char *u = memmem(c->in, hl, "user=", 5);
    if (u) {
        size_t i = 0;
        u += 5;
        while (*u != ' ' && *u != '&' && i < 63)
            c->user[i++] = *u++;
        c->user[i] = '\0';
    }
    char cat[128];
    snprintf(cat, sizeof cat, "%.*s258EAFA5-E914-47DA-95CA-C5AB0DC85B11",
             (int)kl, key);
    unsigned char dig[20];
    sha1((unsigned char *)cat, strlen(cat), dig);
    char acc[32], resp[256];
    base64(dig, 20, acc);
    int n =
        snprintf(resp, sizeof resp,
                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                 acc);
    out_append(c, resp, (size_t)n);
    send_json(c,
              "{\"type\":\"welcome\",\"conn_id\":\"%llu\",\"user_id\":\"%s\","
              "\"timestamp\":%llu}",
              (unsigned long long)++conn_ids, c->user,
              (unsigned long long)now_ms());
    memmove(c->in, c->in + hl, c->inlen - hl);
    c->inlen -= hl;
    c->upgraded = 1;
    return 0;
}

static int on_readable(conn_t *c) {
    for (;;) {
        if (c->incap - c->inlen < 16384) {
            c->incap = c->incap ? c->incap * 2 : 65536;
            c->in = realloc(c->in, c->incap);
        }
        ssize_t r = recv(c->fd, c->in + c->inlen, c->incap - c->inlen, 0);
        if (r == 0) return -1;
        if (r < 0) {
            if (errno == EAGAIN) break;
            return -1;
        }
        c->inlen += (size_t)r;
        if ((size_t)r < 16384) break;
    }
    if (!c->upgraded && handshake(c) < 0) return -1;
    if (!c->upgraded) return 0;
    size_t off = 0;
    for (;;) {
        size_t avail = c->inlen - off;
        if (avail < 6) break;
        unsigned char *h = (unsigned char *)c->in + off;
        int op = h[0] & 15;
        uint64_t len = h[1] & 127;
        size_t hl = 2;
        if (len == 126) {
            len = (uint64_t)h[2] << 8 | h[3];
            hl = 4;
        } else if (len == 127) {
            if (avail < 14) break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | h[2 + i];
            hl = 10;
        }
        if (avail < hl + 4 + len) break;
        unsigned char *mask = h + hl;
        char *p = (char *)h + hl + 4;
        for (uint64_t i = 0; i < len; i++)
            p[i] ^= (char)mask[i & 3];
        if (op == 1)
            on_message(c, p, (size_t)len);
        else if (op == 8)
            return -1;
        off += hl + 4 + (size_t)len;
    }
    memmove(c->in, c->in + off, c->inlen - off);
    c->inlen -= off;
    return 0;
}

static void flush_all(void) {
    while (dirty) {
        conn_t *c = dirty;
        dirty = c->next_dirty;
        c->dirty = 0;
        ssize_t w = send(c->fd, c->out + c->outoff, c->outlen - c->outoff,
                         MSG_NOSIGNAL);
        if (w > 0) c->outoff += (size_t)w;
        if (c->outoff == c->outlen) c->outoff = c->outlen = 0;
        int want = c->outlen > 0;
        if (want != c->want_out) {
            c->want_out = want;
            struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0),
                                     .data.ptr = c};
            epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        }
    }
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 9000;
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        listen(ls, 4096) < 0) {
        perror("limit-server: listen");
        return 1;
    }
    fprintf(stderr, "limit-server: listening port=%d\n", port);
    ep = epoll_create1(0);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &lev);
    struct epoll_event evs[1024];
    for (;;) {
        int n = epoll_wait(ep, evs, 1024, -1);
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    conn_t *nc = calloc(1, sizeof *nc);
                    nc->fd = fd;
                    strcpy(nc->user, "guest");
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = nc};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                }
                continue;
            }
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                if (on_readable(c) < 0) {
                    drop(c);
                    continue;
                }
            }
            if ((evs[i].events & EPOLLOUT) && !c->dirty) {
                c->dirty = 1;
                c->next_dirty = dirty;
                dirty = c;
            }
        }
        flush_all();
    }
}
