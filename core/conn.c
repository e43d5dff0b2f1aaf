/* conn.c -- see conn.h. */
#include "conn.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "dict.h"

struct user {
    conn_t *conns; /* list through conn->user_next */
    size_t nconns;
    char id[]; /* the users table's key */
};

/* Laid out small: one of these per connection (192 bytes with malloc's
 * header). What a room send and the flush after it read comes first, in
 * the first 80 bytes (two cache lines wherever malloc puts it, where the
 * fields spread over the struct took three or four): a fan-out to 10,000
 * touches every subscriber's conn_t twice per message, and at that count
 * they are no longer in the cache (docs/benchmarks.md, "Fan-out: memory
 * stalls per delivery"). */
struct conn {
    /* Hot: conn_enqueue, fanout_user, the dirty list, the flush. */
    void *transport;
    conns_t *owner;
    /* Ring of queued frames; its capacity is a power of two. */
    frame_t **q;
    uint32_t qhead, qlen, qcap;
    uint16_t close_code; /* non-zero: closing (close codes are 16 bits) */
    uint16_t dirty;
    size_t qbytes;
    conn_t *user_next; /* the user's connections */
    conn_t *dirty_next;
    conn_stats_t stats; /* messages_out and bytes_out first: the flush's */
    /* Cold. */
    user_t *user;
    conn_t *user_prev;
    conn_t *prev, *next; /* all connections */
    int64_t connected_at, last_activity, ping_sent_at;
    char *meta; /* JSON from the on_connect hook, or NULL */
    uint32_t metalen;
    /* When the last conn_queue_drop_ephemeral left the queue, its first
     * qclean frames held no ephemeral frame but the ones kept as begun,
     * and stats.messages_out was qmark (low bits): the frames sent since
     * came off the head of that clean run. The next drop looks only past
     * it, so a queue that stays full costs each newcomer its own look,
     * not a walk of the whole queue; and the paths that keep up never
     * touch these. */
    uint32_t qclean, qmark;
    char id[]; /* the prefix, then a counter in decimal */
};
#define HOT_END (offsetof(conn_t, stats) + 2 * sizeof(uint64_t))

struct conns {
    dict_t *by_id; /* conn id -> conn_t */
    dict_t *users; /* user id -> user_t */
    conn_t *all;
    size_t count;
    uint64_t next_id;
    size_t limit;
    conn_t *dirty_head, *dirty_tail;
    char prefix[72];
};

conns_t *conns_create(size_t send_queue_limit) {
    conns_t *cs = xcalloc(1, sizeof *cs);
    /* Keyed by the id stored in the connection or user itself. */
    cs->by_id = dict_create_borrowed();
    cs->users = dict_create_borrowed();
    cs->limit = send_queue_limit;
    cs->next_id = 1;
    return cs;
}

void conns_set_prefix(conns_t *cs, const char *prefix) {
    snprintf(cs->prefix, sizeof cs->prefix, "%s", prefix);
}

static void conn_free(conn_t *c) {
    conn_queue_clear(c);
    free(c->meta);
    free(c->q);
    free(c);
}

static void user_free(void *p) {
    free(p);
}

void conns_destroy(conns_t *cs) {
    if (!cs) return;
    conn_t *c = cs->all;
    while (c) {
        conn_t *n = c->next;
        conn_free(c);
        c = n;
    }
    dict_destroy(cs->by_id, NULL);
    dict_destroy(cs->users, user_free);
    free(cs);
}

int conns_valid_user_id(const char *s, size_t n) {
    if (n < 1 || n > CONN_USER_ID_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '@' ||
              ch == '-'))
            return 0;
    }
    return 1;
}

conn_t *conns_add(conns_t *cs, const char *uid, void *transport, int64_t now_ms,
                  int *first_of_user) {
    char num[20];
    size_t pl = strlen(cs->prefix);
    size_t nl = buf_format_u64(num, (unsigned long long)cs->next_id++);
    conn_t *c = xcalloc(1, sizeof *c + pl + nl + 1);
    memcpy(c->id, cs->prefix, pl);
    memcpy(c->id + pl, num, nl);
    c->id[pl + nl] = '\0';
    c->transport = transport;
    c->owner = cs;
    c->connected_at = c->last_activity = c->ping_sent_at = now_ms;

    user_t *u = dict_get(cs->users, uid);
    *first_of_user = (u == NULL);
    if (!u) {
        size_t n = strlen(uid);
        u = xcalloc(1, sizeof *u + n + 1);
        memcpy(u->id, uid, n + 1);
        dict_set(cs->users, u->id, u);
    }
    c->user = u;
    c->user_next = u->conns;
    if (u->conns) u->conns->user_prev = c;
    u->conns = c;
    u->nconns++;

    c->next = cs->all;
    if (cs->all) cs->all->prev = c;
    cs->all = c;
    cs->count++;
    dict_set(cs->by_id, c->id, c);
    return c;
}

void conns_drop_user(conns_t *cs, user_t *u) {
    if (u->nconns) return;
    dict_remove(cs->users, u->id);
    user_free(u);
}

void conns_remove(conns_t *cs, conn_t *c, int *last_of_user) {
    user_t *u = c->user;
    conns_remove_keeping_user(cs, c, last_of_user);
    if (*last_of_user) conns_drop_user(cs, u);
}

void conns_remove_keeping_user(conns_t *cs, conn_t *c, int *last_of_user) {
    user_t *u = c->user;
    if (c->user_prev)
        c->user_prev->user_next = c->user_next;
    else
        u->conns = c->user_next;
    if (c->user_next) c->user_next->user_prev = c->user_prev;
    u->nconns--;
    *last_of_user = (u->nconns == 0);

    if (c->prev)
        c->prev->next = c->next;
    else
        cs->all = c->next;
    if (c->next) c->next->prev = c->prev;
    cs->count--;
    dict_remove(cs->by_id, c->id);

    if (c->dirty) {
        /* Unlink from the singly-linked dirty list. */
        conn_t **pp = &cs->dirty_head, *prev = NULL;
        while (*pp && *pp != c) {
            prev = *pp;
            pp = &(*pp)->dirty_next;
        }
        if (*pp) *pp = c->dirty_next;
        if (cs->dirty_tail == c) cs->dirty_tail = prev;
    }
    conn_free(c);
}

conn_t *conns_lookup(const conns_t *cs, const char *id) {
    return dict_get(cs->by_id, id);
}

user_t *conns_user(const conns_t *cs, const char *uid) {
    return dict_get(cs->users, uid);
}

size_t conns_shrink(conns_t *cs) {
    return dict_shrink(cs->by_id) + dict_shrink(cs->users);
}

size_t conns_count(const conns_t *cs) {
    return cs->count;
}
size_t conns_user_count(const conns_t *cs) {
    return dict_size(cs->users);
}

conn_t *conns_next(const conns_t *cs, conn_t *prev) {
    return prev ? prev->next : cs->all;
}

user_t *conns_next_user(const conns_t *cs, size_t *pos) {
    void *v;
    return dict_next(cs->users, pos, NULL, &v) ? v : NULL;
}

const char *conn_id(const conn_t *c) {
    return c->id;
}
user_t *conn_user(const conn_t *c) {
    return c->user;
}
void *conn_transport(const conn_t *c) {
    return c->transport;
}
void conn_set_transport(conn_t *c, void *t) {
    c->transport = t;
}
int64_t conn_connected_at(const conn_t *c) {
    return c->connected_at;
}
int64_t conn_last_activity(const conn_t *c) {
    return c->last_activity;
}
void conn_touch(conn_t *c, int64_t now_ms) {
    c->last_activity = now_ms;
}
conn_stats_t *conn_stats(conn_t *c) {
    return &c->stats;
}
int conn_closing(const conn_t *c) {
    return c->close_code != 0;
}
void conn_set_closing(conn_t *c, int code) {
    c->close_code = (uint16_t)code;
}
int conn_close_code(const conn_t *c) {
    return c->close_code;
}
int64_t conn_ping_sent_at(const conn_t *c) {
    return c->ping_sent_at;
}
void conn_set_ping_sent_at(conn_t *c, int64_t ms) {
    c->ping_sent_at = ms;
}

void conn_set_meta(conn_t *c, char *json, size_t len) {
    free(c->meta);
    c->meta = json;
    c->metalen = json ? (uint32_t)len : 0;
}

const char *conn_meta(const conn_t *c, size_t *len) {
    if (len) *len = c->metalen;
    return c->meta;
}

const char *user_id(const user_t *u) {
    return u->id;
}
size_t user_conn_count(const user_t *u) {
    return u->nconns;
}
conn_t *user_next_conn(const user_t *u, conn_t *prev) {
    return prev ? prev->user_next : u->conns;
}

void conns_mark_dirty(conns_t *cs, conn_t *c) {
    if (c->dirty) return;
    c->dirty = 1;
    c->dirty_next = NULL;
    if (cs->dirty_tail)
        cs->dirty_tail->dirty_next = c;
    else
        cs->dirty_head = c;
    cs->dirty_tail = c;
}

conn_t *conns_pop_dirty(conns_t *cs) {
    conn_t *c = cs->dirty_head;
    if (!c) return NULL;
    cs->dirty_head = c->dirty_next;
    if (!cs->dirty_head) cs->dirty_tail = NULL;
    c->dirty = 0;
    c->dirty_next = NULL;
    return c;
}

int conns_has_dirty(const conns_t *cs) {
    return cs->dirty_head != NULL;
}

void *conns_prefetch_dirty(const conns_t *cs) {
    const conn_t *c = cs->dirty_head, *n;
    if (!c) return NULL;
    if (c->qlen) __builtin_prefetch(&c->q[c->qhead & (c->qcap - 1)]);
    if ((n = c->dirty_next)) {
        /* The flush reads the hot fields: their first and last lines. */
        __builtin_prefetch(n);
        __builtin_prefetch((const char *)n + HOT_END - 1);
    }
    return c->transport;
}

int conn_enqueue(conn_t *c, frame_t *f) {
    if (c->close_code) return 0;
    size_t n = frame_wire_len(f);
    if (c->qbytes + n > c->owner->limit) return -ENOBUFS;
    if (c->qlen == c->qcap) {
        /* Grow the ring, unrolling it so that the head is at 0. */
        uint32_t ncap = c->qcap ? c->qcap * 2 : 4;
        frame_t **nq = xmalloc(ncap * sizeof *nq);
        for (uint32_t i = 0; i < c->qlen; i++)
            nq[i] = c->q[(c->qhead + i) & (c->qcap - 1)];
        free(c->q);
        c->q = nq;
        c->qcap = ncap;
        c->qhead = 0;
    }
    c->q[(c->qhead + c->qlen) & (c->qcap - 1)] = frame_ref(f);
    c->qlen++;
    c->qbytes += n;
    conns_mark_dirty(c->owner, c);
    return 0;
}

size_t conn_queue_bytes(const conn_t *c) {
    return c->qbytes;
}
size_t conn_queue_len(const conn_t *c) {
    return c->qlen;
}

frame_t *conn_queue_peek(const conn_t *c, size_t i) {
    if (i >= c->qlen) return NULL;
    return c->q[(c->qhead + i) & (c->qcap - 1)];
}

static void drop_head(conn_t *c, size_t n, int sent) {
    for (size_t i = 0; i < n && c->qlen; i++) {
        frame_t *f = c->q[c->qhead];
        size_t len = frame_wire_len(f);
        c->qbytes -= len;
        if (sent) {
            c->stats.messages_out++;
            c->stats.bytes_out += len;
        }
        frame_unref(f);
        c->qhead = (c->qhead + 1) & (c->qcap - 1);
        c->qlen--;
    }
    if (!c->qlen) c->qhead = 0;
}

void conn_queue_consume(conn_t *c, size_t n) {
    drop_head(c, n, 1);
}
void conn_queue_clear(conn_t *c) {
    drop_head(c, c->qlen, 0);
}

size_t conn_queue_release(conn_t *c) {
    if (c->qlen || !c->q) return 0;
    size_t n = c->qcap * sizeof *c->q;
    free(c->q);
    c->q = NULL;
    c->qcap = c->qhead = 0;
    c->qclean = 0;
    return n;
}

void conn_queue_truncate(conn_t *c, size_t keep) {
    while (c->qlen > keep) {
        uint32_t i = (c->qhead + c->qlen - 1) & (c->qcap - 1);
        c->qbytes -= frame_wire_len(c->q[i]);
        frame_unref(c->q[i]);
        c->qlen--;
    }
    if (!c->qlen) c->qhead = 0;
}

size_t conn_queue_drop_ephemeral(conn_t *c, size_t keep) {
    uint32_t mask = c->qcap - 1;
    /* Only consuming sends frames, and it counts each in messages_out. */
    uint32_t sent = (uint32_t)c->stats.messages_out - c->qmark;
    uint32_t from = c->qclean > sent ? c->qclean - sent : 0;
    if (from < keep) from = (uint32_t)keep;
    if (from > c->qlen) from = c->qlen; /* truncated meanwhile */
    uint32_t to = from;
    size_t dropped = 0;
    /* Compacts in place, in order: each durable frame moves toward the
     * head over the ephemeral ones dropped before it. */
    for (uint32_t i = from; i < c->qlen; i++) {
        frame_t *f = c->q[(c->qhead + i) & mask];
        if (frame_ephemeral(f)) {
            c->qbytes -= frame_wire_len(f);
            frame_unref(f);
            dropped++;
        } else {
            c->q[(c->qhead + to++) & mask] = f;
        }
    }
    c->qlen = to;
    c->qclean = to;
    c->qmark = (uint32_t)c->stats.messages_out;
    if (!c->qlen) c->qhead = 0;
    return dropped;
}
