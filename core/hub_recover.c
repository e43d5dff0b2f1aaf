/* hub_recover.c -- a join's frames after its answer, with several nodes
 * (see hub_int.h).
 *
 * On one node a handler runs in one go: whatever a join reads (the seq,
 * the history it hands out in the ack) and the frames the connection
 * gets after the ack are of one moment. With --redis the handler waits on
 * Redis at each step, and the room's frames keep coming meanwhile, on
 * the subscriber connection, in their own order: a frame published
 * between the join and the history read would reach the client live
 * before the ack and again in it. So a connection whose handler call
 * joins a room gets that room's frames held until the call is over; the
 * history read of the room in that call sets a floor (the seq it read:
 * its frames are in the ack); when the call is over (its answer queued),
 * the held frames above the floor go out, and the floor keeps dropping
 * frames at or under it that come late (the answer to the read may come
 * before the frames published ahead of it), until one above it passes.
 * Every seq after `since` then reaches the client once, in order: in the
 * ack up to the floor, live after it. */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "hub_int.h"

struct hub_recovery {
    hub_recovery *next; /* the connection's next recovery */
    char *room;
    int holding;    /* the call is under way: frames wait in q */
    int has_floor;  /* a history read set floor */
    uint64_t floor; /* frames with a seq at or under it are dropped */
    frame_t **q;    /* held, in order */
    uint64_t *qseq; /* each one's seq (0: none) */
    size_t n, cap, bytes;
};

/* cid's recoveries (a short list: one per room its calls join). */
static hub_recovery *of_conn(hub_t *h, const char *cid) {
    return h->recovering ? dict_get(h->recovering, cid) : NULL;
}

static hub_recovery *find(hub_t *h, const char *cid, const char *room) {
    for (hub_recovery *p = of_conn(h, cid); p; p = p->next)
        if (strcmp(p->room, room) == 0) return p;
    return NULL;
}

static void room_count(hub_t *h, const char *room, int delta) {
    uintptr_t n = (uintptr_t)dict_get(h->recovering_rooms, room);
    n = delta > 0 ? n + 1 : n - 1;
    if (n)
        dict_set(h->recovering_rooms, room, (void *)n);
    else
        dict_remove(h->recovering_rooms, room);
}

static void clear_queue(hub_recovery *p) {
    for (size_t i = 0; i < p->n; i++)
        frame_unref(p->q[i]);
    p->n = p->bytes = 0;
}

static void free_one(hub_recovery *p) {
    clear_queue(p);
    free(p->q);
    free(p->qseq);
    free(p->room);
    free(p);
}

/* Takes p off cid's list (and the index when it was the last) and frees
 * it. */
static void unlink_free(hub_t *h, const char *cid, hub_recovery *p) {
    hub_recovery *head = of_conn(h, cid), **pp = &head;
    while (*pp && *pp != p)
        pp = &(*pp)->next;
    if (*pp) *pp = p->next;
    if (head)
        dict_set(h->recovering, cid, head);
    else
        dict_remove(h->recovering, cid);
    room_count(h, p->room, -1);
    free_one(p);
}

void hub__recover_hold(hub_t *h, const char *cid, const char *room) {
    hub_recovery *p = find(h, cid, room);
    if (!p) {
        if (!h->recovering) {
            h->recovering = dict_create();
            h->recovering_rooms = dict_create();
        }
        p = xcalloc(1, sizeof *p);
        p->room = xstrdup(room);
        p->next = of_conn(h, cid);
        dict_set(h->recovering, cid, p);
        room_count(h, room, +1);
    }
    /* A floor left by an earlier join stays: what it drops was in that
     * join's ack. */
    p->holding = 1;
}

void hub__recover_floor(hub_t *h, const char *cid, const char *room,
                        uint64_t seq) {
    hub_recovery *p = find(h, cid, room);
    if (!p || !p->holding) return;
    p->has_floor = 1;
    p->floor = seq;
}

/* Holds f for p's connection c: at most --send-queue bytes, as the
 * connection's own queue would (past that, an ephemeral frame is dropped,
 * a durable one closes the connection as a slow consumer). */
static void hold(hub_t *h, hub_recovery *p, conn_t *c, frame_t *f,
                 uint64_t seq) {
    size_t len;
    frame_payload(f, &len);
    if (p->bytes + len > h->cfg->send_queue) {
        if (!frame_ephemeral(f) && !conn_closing(c))
            h->fo.overflow(h->fo.ud, c);
        return;
    }
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 16;
        p->q = xrealloc(p->q, p->cap * sizeof *p->q);
        p->qseq = xrealloc(p->qseq, p->cap * sizeof *p->qseq);
    }
    p->q[p->n] = frame_ref(f);
    p->qseq[p->n++] = seq;
    p->bytes += len;
}

size_t hub__recover_fanout(hub_t *h, const room_t *r, frame_t *f, uint64_t seq,
                           const conn_t *xc, const user_t *xu) {
    const char *room = room_id(r);
    if (!h->recovering_rooms || !dict_get(h->recovering_rooms, room))
        return fanout_room(&h->fo, r, f, xc, xu);
    /* fanout_room, with a look at each connection's recovery. */
    size_t n = 0, pos = 0;
    user_t *u;
    while ((u = room_next_member(r, &pos))) {
        if (u == xu) continue;
        for (conn_t *c = user_next_conn(u, NULL); c; c = user_next_conn(u, c)) {
            if (c == xc) continue;
            hub_recovery *p = find(h, conn_id(c), room);
            if (p && seq && p->has_floor && seq <= p->floor) continue;
            if (p && p->holding) {
                hold(h, p, c, f, seq);
                continue;
            }
            /* Past the floor: the seqs that follow are all above it. */
            if (p && seq) unlink_free(h, conn_id(c), p);
            n += (size_t)fanout_conn(&h->fo, c, f);
        }
    }
    return n;
}

void hub__recover_release(hub_t *h, const char *cid) {
    conn_t *c = conns_lookup(h->conns, cid);
    int sent = 0;
    for (hub_recovery *p = of_conn(h, cid), *next; p; p = next) {
        next = p->next;
        if (!p->holding) continue;
        p->holding = 0;
        int passed = !p->has_floor;
        for (size_t i = 0; i < p->n; i++) {
            if (p->qseq[i] && p->has_floor && p->qseq[i] <= p->floor) continue;
            if (p->qseq[i]) passed = 1;
            if (c) sent += fanout_conn(&h->fo, c, p->q[i]);
        }
        clear_queue(p);
        if (passed || !c) unlink_free(h, cid, p);
    }
    if (sent) h->t->wake(h->t->ud);
}

void hub__recover_forget(hub_t *h, const char *cid, const char *room) {
    for (hub_recovery *p = of_conn(h, cid), *next; p; p = next) {
        next = p->next;
        if (room && (p->holding || strcmp(p->room, room) != 0)) continue;
        unlink_free(h, cid, p);
    }
}

static void free_list(void *v) {
    for (hub_recovery *p = v, *next; p; p = next) {
        next = p->next;
        free_one(p);
    }
}

void hub__recover_destroy(hub_t *h) {
    if (!h->recovering) return;
    dict_destroy(h->recovering, free_list);
    dict_destroy(h->recovering_rooms, NULL);
    h->recovering = h->recovering_rooms = NULL;
}
