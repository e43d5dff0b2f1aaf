/* hub_cluster.c -- the hub with several nodes (--redis): what reaches this
 * node through the broker, and the node's part of the shared state.
 *
 * The node keeps, in its own rooms table, a mirror of the memberships of
 * its local users only: it is what a room's frames are fanned out over
 * when they arrive from Redis. The mirror follows the membership markers
 * in each room's stream (broker.h: BROKER_JOINED, BROKER_LEFT), so a user
 * starts and stops getting a room's frames at the same point of the
 * room's one order on every node. A room's channel is watched while the
 * mirror has the room, and while a join into it is under way. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "broker.h"
#include "clock.h"
#include "hub_int.h"
#include "json.h"
#include "log.h"
#include "store.h"

/* ---- the mirror ------------------------------------------------------------
 */

/* u (local) is in room from now on: the room's channel is watched for as
 * long as the mirror has the room. */
static void mirror_add(hub_t *h, const char *room, user_t *u) {
    if (rooms_is_member(h->rooms, room, u)) return;
    if (!rooms_get(h->rooms, room))
        broker_watch(h->broker, BROKER_ROOM, room, NULL, NULL);
    rooms_join(h->rooms, room, u, clock_now_ms());
}

static void mirror_remove(hub_t *h, const char *room, user_t *u) {
    if (!rooms_is_member(h->rooms, room, u)) return;
    for (conn_t *c = user_next_conn(u, NULL); c; c = user_next_conn(u, c))
        hub__recover_forget(h, conn_id(c), room);
    char *id = xstrdup(room); /* may be the room's own key */
    rooms_leave(h->rooms, id, u);
    if (!rooms_get(h->rooms, id)) broker_unwatch(h->broker, BROKER_ROOM, id);
    free(id);
}

/* A membership of a local user learnt on the user's channel (made on
 * another node, or by another device): the room's channel is watched
 * first, and the mirror follows once the subscription is confirmed. */
typedef struct pending_join {
    hub_t *h;
    char *room, *uid;
} pending_join;

static void joined_when_watched(void *ctx, const broker_reply *r) {
    pending_join *p = ctx;
    hub_t *h = p->h;
    if (r->rc != -ECANCELED) {
        user_t *u = conns_user(h->conns, p->uid);
        if (r->rc >= 0 && u) mirror_add(h, p->room, u);
        broker_unwatch(h->broker, BROKER_ROOM, p->room);
    }
    free(p->room);
    free(p->uid);
    free(p);
}

static void learn_membership(hub_t *h, const char *room, user_t *u) {
    if (rooms_is_member(h->rooms, room, u)) return;
    pending_join *p = xmalloc(sizeof *p);
    *p = (pending_join){h, xstrdup(room), xstrdup(user_id(u))};
    int rc = broker_watch(h->broker, BROKER_ROOM, room, joined_when_watched, p);
    if (rc == 0) return;
    /* Confirmed already (or Redis is down: the mirror keeps it, and the
     * resync registers it). */
    broker_reply now = {.rc = 0};
    joined_when_watched(p, &now);
}

/* The marker of a join this node made came: the watch the join held is
 * let go (the mirror holds one of its own now). */
static void marker_came(hub_t *h, const char *room, const char *uid) {
    char key[1024];
    snprintf(key, sizeof key, "%s\t%s", room, uid);
    uintptr_t n = (uintptr_t)dict_get(h->pending_joins, key);
    if (!n) return;
    if (n == 1)
        dict_remove(h->pending_joins, key);
    else
        dict_set(h->pending_joins, key, (void *)(n - 1));
    broker_unwatch(h->broker, BROKER_ROOM, room);
}

/* ---- what reaches the node --------------------------------------------------
 */

/* The frame a message from Redis carries, of the class it says. */
static frame_t *frame_of(const broker_msg *m) {
    buf_t b = hub__frame_buf();
    buf_append(&b, m->json, m->len);
    frame_t *f = frame_from_buf(&b);
    if (m->ephemeral) frame_set_ephemeral(f);
    return f;
}

static void deliver(hub_t *h, const broker_msg *m) {
    conn_t *xc = m->except_conn ? conns_lookup(h->conns, m->except_conn) : NULL;
    user_t *xu = m->except_user ? conns_user(h->conns, m->except_user) : NULL;
    size_t n = 0;
    frame_t *f = NULL;
    switch (m->scope) {
    case BROKER_ROOM: {
        room_t *r = rooms_get(h->rooms, m->target);
        if (!r) return;
        f = frame_of(m);
        n = hub__recover_fanout(h, r, f, m->seq, xc, xu);
        break;
    }
    case BROKER_USER: {
        user_t *u = conns_user(h->conns, m->target);
        if (!u || u == xu) return;
        f = frame_of(m);
        n = fanout_user(&h->fo, u, f, xc);
        break;
    }
    case BROKER_CONN: {
        conn_t *c = conns_lookup(h->conns, m->target);
        if (!c) return;
        f = frame_of(m);
        n = (size_t)fanout_conn(&h->fo, c, f);
        break;
    }
    case BROKER_ALL:
        f = frame_of(m);
        n = fanout_all(&h->fo, f, xc, xu);
        break;
    case BROKER_STATUS:
        return;
    }
    frame_unref(f);
    if (n) h->t->wake(h->t->ud);
}

static void on_message(void *ud, const broker_msg *m) {
    hub_t *h = ud;
    switch (m->kind) {
    case BROKER_FRAME:
        deliver(h, m);
        break;
    case BROKER_JOINED:
    case BROKER_LEFT: {
        user_t *u = conns_user(h->conns, m->user);
        if (!u) break;
        if (m->kind == BROKER_LEFT)
            mirror_remove(h, m->room, u);
        else if (m->scope == BROKER_ROOM) {
            mirror_add(h, m->room, u);
            marker_came(h, m->room, m->user);
        } else
            learn_membership(h, m->room, u);
        break;
    }
    case BROKER_PRESENCE: {
        presence_status st;
        if (presence_parse_status(m->status, &st) < 0) break;
        /* A local user's status is kept, for the resync. */
        user_t *u = conns_user(h->conns, m->user);
        if (u) presence_set(h->presence, user_id(u), st);
        hub__notify_presence(h, m->user, st);
        break;
    }
    }
}

static void on_ready(void *ud, int ready) {
    hub_t *h = ud;
    h->cluster_ready = ready;
}

/* Redis is back (or there for the first time): what this node holds. */
static void on_resync(void *ud) {
    hub_t *h = ud;
    size_t nc = conns_count(h->conns), nm = 0, ns = 0, capm = 16;
    broker_state st = {0};
    st.conns = xmalloc((nc ? nc : 1) * sizeof *st.conns);
    st.conn_users = xmalloc((nc ? nc : 1) * sizeof *st.conn_users);
    size_t nu = conns_user_count(h->conns);
    st.status_users = xmalloc((nu ? nu : 1) * sizeof *st.status_users);
    st.statuses = xmalloc((nu ? nu : 1) * sizeof *st.statuses);
    st.member_users = xmalloc(capm * sizeof *st.member_users);
    st.member_rooms = xmalloc(capm * sizeof *st.member_rooms);
    size_t i = 0;
    for (conn_t *c = conns_next(h->conns, NULL); c && i < nc;
         c = conns_next(h->conns, c), i++) {
        st.conns[i] = conn_id(c);
        st.conn_users[i] = user_id(conn_user(c));
    }
    st.nconns = i;
    size_t pos = 0;
    user_t *u;
    while ((u = conns_next_user(h->conns, &pos))) {
        size_t rp = 0;
        const char *room;
        while ((room = rooms_next_of_user(h->rooms, user_id(u), &rp))) {
            if (nm == capm) {
                capm *= 2;
                st.member_users =
                    xrealloc(st.member_users, capm * sizeof *st.member_users);
                st.member_rooms =
                    xrealloc(st.member_rooms, capm * sizeof *st.member_rooms);
            }
            st.member_users[nm] = user_id(u);
            st.member_rooms[nm++] = room;
        }
        presence_status s = presence_get(h->presence, user_id(u));
        if (s != PRESENCE_ONLINE && s != PRESENCE_OFFLINE && ns < nu) {
            st.status_users[ns] = user_id(u);
            st.statuses[ns++] = presence_status_name(s);
        }
    }
    st.nmembers = nm;
    st.nstatuses = ns;
    broker_sync(h->broker, &st);
    free(st.conns);
    free(st.conn_users);
    free(st.member_users);
    free(st.member_rooms);
    free(st.status_users);
    free(st.statuses);
}

/* ---- the node's connections
 * -------------------------------------------------- */

/* A connection of a user new to this node, until its welcome: the rooms
 * the user is in are subscribed first. */
typedef struct opened {
    hub_t *h;
    char *cid, *uid;
    frame_t *welcome;
    size_t waiting; /* room subscriptions not yet confirmed, + 1 meanwhile */
    char **rooms;
    size_t nrooms;
} opened;

/* Every room is subscribed (or given up): the welcome first, then the
 * user in the rooms, then what the client sent meanwhile. With going set
 * (the hub is being destroyed) it only frees. */
static void welcome(opened *o, int going) {
    hub_t *h = o->h;
    conn_t *c = going ? NULL : conns_lookup(h->conns, o->cid);
    user_t *u = going ? NULL : conns_user(h->conns, o->uid);
    if (c) {
        fanout_conn(&h->fo, c, o->welcome);
        h->t->wake(h->t->ud);
    }
    for (size_t i = 0; i < o->nrooms; i++) {
        if (u) mirror_add(h, o->rooms[i], u);
        if (!going) broker_unwatch(h->broker, BROKER_ROOM, o->rooms[i]);
        free(o->rooms[i]);
    }
    free(o->rooms);
    frame_unref(o->welcome);
    if (c) hub__call_over(h, o->cid);
    free(o->cid);
    free(o->uid);
    free(o);
}

static void room_watched(void *ctx, const broker_reply *r) {
    opened *o = ctx;
    if (--o->waiting == 0) welcome(o, r->rc == -ECANCELED);
}

/* The user's rooms, from Redis: each subscribed before the welcome. */
static void on_opened(void *ctx, const broker_reply *r) {
    opened *o = ctx;
    if (r->rc == -ECANCELED) {
        welcome(o, 1);
        return;
    }
    hub_t *h = o->h;
    o->rooms = xmalloc((r->nids ? r->nids : 1) * sizeof *o->rooms);
    o->waiting = 1;
    for (size_t i = 0; r->rc >= 0 && i < r->nids; i++) {
        o->rooms[o->nrooms++] = xstrdup(r->ids[i]);
        if (broker_watch(h->broker, BROKER_ROOM, r->ids[i], room_watched, o) ==
            0)
            o->waiting++;
    }
    if (--o->waiting == 0) welcome(o, 0);
}

int hub__cluster_conn_open(hub_t *h, conn_t *c, int first_local,
                           frame_t *welcome_frame) {
    const char *uid = user_id(conn_user(c));
    if (first_local) broker_watch(h->broker, BROKER_USER, uid, NULL, NULL);
    opened *o = xcalloc(1, sizeof *o);
    *o = (opened){h, xstrdup(conn_id(c)), xstrdup(uid), NULL, 0, NULL, 0};
    /* A user already here has the rooms mirrored: welcomed at once. */
    if (first_local) o->welcome = frame_ref(welcome_frame);
    if (broker_conn_open(h->broker, conn_id(c), uid,
                         first_local ? on_opened : NULL, o) < 0 ||
        !first_local) {
        /* Redis is down (the resync registers the connection), or nothing
         * to wait for. */
        if (o->welcome) frame_unref(o->welcome);
        free(o->cid);
        free(o->uid);
        free(o);
        return 0;
    }
    hub__hold(h, c);
    return 1;
}

static void status_unwatched(void *ctx, const char *uid) {
    hub_t *h = ctx;
    broker_unwatch(h->broker, BROKER_STATUS, uid);
}

void hub__cluster_conn_closed(hub_t *h, conn_t *c) {
    user_t *u = conn_user(c);
    char *uid = xstrdup(user_id(u));
    presence_conn_closed_each(h->presence, c, status_unwatched, h);
    hub__recover_forget(h, conn_id(c), NULL);
    if (user_conn_count(u) == 1) {
        /* The user's last connection here: the mirror forgets the user
         * (whether the user leaves the rooms is Redis's to say: the user
         * may have connections on other nodes). */
        size_t n;
        char **ids = hub__rooms_of(h, uid, &n);
        for (size_t i = 0; i < n; i++)
            mirror_remove(h, ids[i], u);
        hub__free_ids(ids, n);
        presence_set(h->presence, user_id(u), PRESENCE_OFFLINE);
        broker_unwatch(h->broker, BROKER_USER, uid);
    }
    broker_conn_close(h->broker, conn_id(c), uid, NULL, NULL);
    int last;
    conns_remove(h->conns, c, &last);
    free(uid);
    h->t->wake(h->t->ud);
}

/* ---- the host's requests, with several nodes -------------------------------
 * Each waits for Redis: a request goes out, the handler's coroutine
 * waits, and the answer wakes it (script_wake) from the broker's
 * callback, on the loop. */

typedef enum cop {
    OP_COUNT,   /* rc as it comes */
    OP_PUBLISH, /* seq */
    OP_JOIN,
    OP_LEAVE, /* rc, and the members after */
    OP_INFO,
    OP_IDS,      /* a listing; -ENOENT when empty (ENOENT_EMPTY) */
    OP_IDS_OK,   /* a listing, empty or not */
    OP_STATUS,   /* presence_get: one status */
    OP_STATUSES, /* presence_subscribe */
    OP_STORE_GET,
    OP_STORE_SET,
    OP_PRESENCE_SET,
    OP_HISTORY,
} cop;

typedef struct call {
    hub_t *h;
    script_wait *w;
    cop op;
    char *room, *uid; /* join: the pending membership; presence_set: uid */
    int status;       /* presence_set */
} call;

static call *call_new(hub_t *h, script_wait *w, cop op) {
    call *k = xcalloc(1, sizeof *k);
    k->h = h;
    k->w = w;
    k->op = op;
    return k;
}

static void call_free(call *k) {
    free(k->room);
    free(k->uid);
    free(k);
}

/* Wakes the handler with sr; once its call is over, the room frames
 * held for a join it made go out (after its answer), then what its
 * connection sent meanwhile runs. */
static void wake(call *k, const script_reply *sr) {
    hub_t *h = k->h;
    char *cid = xstrdup(script_wait_conn(k->w));
    if (script_wake(k->w, sr) == 1) {
        if (*cid) hub__recover_release(h, cid);
        hub__call_over(h, cid);
    }
    free(cid);
}

static int status_of(const char *s) {
    presence_status st = PRESENCE_OFFLINE;
    if (s) presence_parse_status(s, &st);
    return (int)st;
}

/* A join's answer: the room's channel was watched for it; the watch is
 * let go once the mirror has the user (the marker may come before or
 * after this answer), or now when there is no marker to wait for. */
static void join_done(hub_t *h, call *k, int joined) {
    user_t *u = conns_user(h->conns, k->uid);
    if (joined == 1 && u && !rooms_is_member(h->rooms, k->room, u)) {
        char key[1024];
        snprintf(key, sizeof key, "%s\t%s", k->room, k->uid);
        uintptr_t n = (uintptr_t)dict_get(h->pending_joins, key);
        dict_set(h->pending_joins, key, (void *)(n + 1));
        return;
    }
    if (joined == 0 && u) mirror_add(h, k->room, u);
    broker_unwatch(h->broker, BROKER_ROOM, k->room);
}

static void on_answer(void *ctx, const broker_reply *r) {
    call *k = ctx;
    hub_t *h = k->h;
    if (r->rc == -ECANCELED) {
        /* The hub is going: the states free their waiting calls. */
        call_free(k);
        return;
    }
    script_reply sr = {.rc = r->rc};
    int *st = NULL;
    frame_t **frames = NULL;
    switch (k->op) {
    case OP_COUNT:
        break;
    case OP_PUBLISH:
        sr.seq = (uint64_t)r->v[0];
        break;
    case OP_LEAVE:
        sr.members = (size_t)r->v[0];
        break;
    case OP_JOIN:
        sr.members = (size_t)r->v[1];
        if (r->rc >= 0)
            join_done(h, k, r->rc);
        else
            broker_unwatch(h->broker, BROKER_ROOM, k->room);
        break;
    case OP_INFO:
        sr.room.epoch = r->str;
        sr.ids = (const char *const *)r->ids;
        sr.nids = r->nids;
        sr.room.created_at = r->v[0];
        sr.room.message_count = (uint64_t)r->v[1];
        sr.room.seq = (uint64_t)r->v[2];
        sr.room.members = (size_t)r->v[3];
        /* A join's room_info sets the floor as a history read does: the
         * frames after the ack are above the seq it carries, as on one
         * node (a later history read in the call raises it). */
        if (r->rc >= 0)
            hub__recover_floor(h, script_wait_conn(k->w), k->room, sr.room.seq);
        break;
    case OP_IDS:
    case OP_IDS_OK:
        sr.ids = (const char *const *)r->ids;
        sr.nids = r->nids;
        if (k->op == OP_IDS && r->rc >= 0 && !r->nids) sr.rc = -ENOENT;
        break;
    case OP_STATUS:
        if (r->rc >= 0) sr.rc = status_of(r->nids ? r->ids[0] : NULL);
        break;
    case OP_STATUSES:
        st = xmalloc((r->nids ? r->nids : 1) * sizeof *st);
        for (size_t i = 0; i < r->nids; i++)
            st[i] = status_of(r->ids[i]);
        sr.statuses = st;
        break;
    case OP_STORE_GET:
        sr.json = r->str;
        sr.len = r->len;
        break;
    case OP_STORE_SET:
        if (r->rc == -1)
            sr.rc = -ENOENT;
        else if (r->rc == -2)
            sr.rc = -ENOSPC;
        break;
    case OP_PRESENCE_SET:
        if (r->rc == -1) sr.rc = -ENOENT;
        if (r->rc == 1) {
            user_t *u = conns_user(h->conns, k->uid);
            if (u)
                presence_set(h->presence, user_id(u),
                             (presence_status)k->status);
        }
        break;
    case OP_HISTORY:
        if (r->rc < 0) break;
        frames = xmalloc((r->nids ? r->nids : 1) * sizeof *frames);
        for (size_t i = 0; i < r->nids; i++) {
            /* The bytes Redis kept are the frame delivered live. */
            buf_t b = hub__frame_buf();
            buf_append(&b, r->ids[i], r->lens[i]);
            frames[i] = frame_from_buf(&b);
        }
        sr.history =
            (script_history){r->str, (uint64_t)r->v[0], frames, r->nids};
        hub__recover_floor(h, script_wait_conn(k->w), k->room,
                           (uint64_t)r->v[0]);
        break;
    }
    wake(k, &sr);
    free(st);
    if (frames) {
        for (size_t i = 0; i < r->nids; i++)
            frame_unref(frames[i]);
        free(frames);
    }
    call_free(k);
}

/* Sends the request start made with k as its context: -EINPROGRESS, or
 * -EAGAIN (Redis unreachable) with k freed. */
static int started(call *k, int rc) {
    if (rc < 0) {
        call_free(k);
        return -EAGAIN;
    }
    return -EINPROGRESS;
}

#define NEED_WAIT(w)                                                           \
    do {                                                                       \
        if (!(w)) return -EDEADLK;                                             \
    } while (0)

static void join_watched(void *ctx, const broker_reply *r) {
    call *k = ctx;
    hub_t *h = k->h;
    if (r->rc == -ECANCELED) {
        call_free(k);
        return;
    }
    if (r->rc >= 0 &&
        broker_join(h->broker, k->room, k->uid, on_answer, k) == 0)
        return;
    broker_unwatch(h->broker, BROKER_ROOM, k->room);
    script_reply sr = {.rc = -EAGAIN};
    wake(k, &sr);
    call_free(k);
}

int hub__cluster_join(hub_t *h, const char *room, const char *uid,
                      script_wait *w) {
    NEED_WAIT(w);
    if (!conns_user(h->conns, uid)) return -ENOENT;
    call *k = call_new(h, w, OP_JOIN);
    k->room = xstrdup(room);
    k->uid = xstrdup(uid);
    /* The joining connection gets the room's frames after the call's
     * answer, none of them twice (hub_recover.c). */
    const char *cid = script_wait_conn(w);
    conn_t *c = *cid ? conns_lookup(h->conns, cid) : NULL;
    if (c && strcmp(user_id(conn_user(c)), uid) == 0)
        hub__recover_hold(h, cid, room);
    /* The room's channel first: the marker of this join, and every frame
     * after it, must reach this node. */
    int rc = broker_watch(h->broker, BROKER_ROOM, room, join_watched, k);
    if (rc == 0) return -EINPROGRESS;
    if (rc > 0 && broker_join(h->broker, room, uid, on_answer, k) == 0)
        return -EINPROGRESS;
    broker_unwatch(h->broker, BROKER_ROOM, room);
    call_free(k);
    return -EAGAIN;
}

int hub__cluster_publish_to(hub_t *h, const char *room, const char *member,
                            const char *head, size_t headlen, broker_fn fn,
                            void *ctx) {
    /* head is "{" and the message's members; Redis adds the seq. */
    buf_t hb, tail;
    buf_init(&hb, 0);
    buf_init(&tail, 0);
    buf_append(&hb, head, headlen);
    buf_puts(&hb, headlen > 1 ? ",\"seq\":" : "\"seq\":");
    buf_puts(&tail, ",\"room_id\":");
    json_write_string(&tail, room, strlen(room));
    buf_putc(&tail, '}');
    int rc = broker_publish(h->broker, room, member, buf_content(&hb), hb.len,
                            buf_content(&tail), tail.len, fn, ctx);
    buf_close(&hb);
    buf_close(&tail);
    return rc;
}

int hub__cluster_publish(hub_t *h, const char *room, const char *member,
                         const char *head, size_t headlen, script_wait *w) {
    NEED_WAIT(w);
    call *k = call_new(h, w, OP_PUBLISH);
    return started(k, hub__cluster_publish_to(h, room, member, head, headlen,
                                              on_answer, k));
}

/* Distinct ids, in order (a multicast may name a user twice). */
static size_t distinct(const char *const *ids, size_t n, const char **out) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        int dup = 0;
        for (size_t j = 0; j < m && !dup; j++)
            dup = strcmp(ids[i], out[j]) == 0;
        if (!dup) out[m++] = ids[i];
    }
    return m;
}

int hub__cluster_send(hub_t *h, const script_target *t, frame_t *f,
                      script_wait *w) {
    size_t len;
    const char *json = frame_payload(f, &len);
    switch (t->kind) {
    case SCRIPT_TO_CONN: {
        conn_t *c = conns_lookup(h->conns, t->ids[0]);
        if (c) {
            /* Here: at once (the answer to a frame comes this way). */
            conn_t *xc =
                t->except_conn ? conns_lookup(h->conns, t->except_conn) : NULL;
            if (c == xc || (t->except_user &&
                            strcmp(user_id(conn_user(c)), t->except_user) == 0))
                return 0;
            int n = fanout_conn(&h->fo, c, f);
            if (n) h->t->wake(h->t->ud);
            return n;
        }
        /* "<node>.<n>": ours (and gone) when <node> is this node. */
        const char *node = broker_node_id(h->broker);
        size_t nl = strlen(node);
        if (strncmp(t->ids[0], node, nl) == 0 && t->ids[0][nl] == '.') return 0;
        return broker_send(h->broker, BROKER_CONN, t->ids[0], NULL, NULL, json,
                           len, frame_ephemeral(f), NULL, NULL) < 0
                   ? -EAGAIN
                   : 1;
    }
    case SCRIPT_TO_USERS: {
        NEED_WAIT(w);
        const char **ids = xmalloc((t->nids ? t->nids : 1) * sizeof *ids);
        size_t n = distinct(t->ids, t->nids, ids);
        conn_t *xc =
            t->except_conn ? conns_lookup(h->conns, t->except_conn) : NULL;
        call *k = call_new(h, w, OP_COUNT);
        int rc = broker_send_users(h->broker, ids, n, t->except_conn,
                                   xc ? user_id(conn_user(xc)) : NULL,
                                   t->except_user, json, len,
                                   frame_ephemeral(f), on_answer, k);
        free(ids);
        return started(k, rc);
    }
    case SCRIPT_TO_ROOM:
    case SCRIPT_TO_ALL:
        /* Through Redis, in the room's order; how many connections it
         * reaches is not known here (0). */
        return broker_send(h->broker,
                           t->kind == SCRIPT_TO_ROOM ? BROKER_ROOM : BROKER_ALL,
                           t->kind == SCRIPT_TO_ROOM ? t->ids[0] : "",
                           t->except_conn, t->except_user, json, len,
                           frame_ephemeral(f), NULL, NULL) < 0
                   ? -EAGAIN
                   : 0;
    }
    return 0;
}

int hub__cluster_leave(hub_t *h, const char *room, const char *uid,
                       script_wait *w) {
    NEED_WAIT(w);
    call *k = call_new(h, w, OP_LEAVE);
    return started(k, broker_leave(h->broker, room, uid, on_answer, k));
}

int hub__cluster_is_member(hub_t *h, const char *room, const char *uid,
                           script_wait *w) {
    NEED_WAIT(w);
    call *k = call_new(h, w, OP_COUNT);
    return started(k, broker_is_member(h->broker, room, uid, on_answer, k));
}

int hub__cluster_room_info(hub_t *h, const char *room, script_wait *w) {
    NEED_WAIT(w);
    call *k = call_new(h, w, OP_INFO);
    k->room = xstrdup(room);
    return started(k, broker_room_info(h->broker, room, on_answer, k));
}

int hub__cluster_history(hub_t *h, const char *room, const char *member,
                         int64_t since, size_t limit, const char *epoch,
                         script_wait *w) {
    NEED_WAIT(w);
    call *k = call_new(h, w, OP_HISTORY);
    k->room = xstrdup(room);
    return started(k, broker_history(h->broker, room, member, since, limit,
                                     epoch, on_answer, k));
}

/* room_members (-ENOENT when empty), user_rooms, online_users,
 * user_connections (-ENOENT when none). */
int hub__cluster_list(hub_t *h, int what, const char *id, script_wait *w) {
    NEED_WAIT(w);
    call *k = call_new(h, w, what == 1 || what == 2 ? OP_IDS_OK : OP_IDS);
    int rc = what == 0   ? broker_room_members(h->broker, id, on_answer, k)
             : what == 1 ? broker_user_rooms(h->broker, id, on_answer, k)
             : what == 2 ? broker_online_users(h->broker, on_answer, k)
                         : broker_user_conns(h->broker, id, on_answer, k);
    return started(k, rc);
}

int hub__cluster_members(hub_t *h, const char *room, const script_page *page,
                         script_wait *w) {
    if (!page) return hub__cluster_list(h, 0, room, w);
    NEED_WAIT(w);
    call *k = call_new(h, w, OP_IDS_OK);
    return started(k, broker_room_page(h->broker, room, page->member,
                                       page->after, page->limit, on_answer, k));
}

int hub__cluster_presence_get(hub_t *h, const char *uid, script_wait *w) {
    NEED_WAIT(w);
    call *k = call_new(h, w, OP_STATUS);
    return started(k, broker_presence_get(h->broker, &uid, 1, on_answer, k));
}

int hub__cluster_presence_set(hub_t *h, const char *uid, int st,
                              script_wait *w) {
    NEED_WAIT(w);
    call *k = call_new(h, w, OP_PRESENCE_SET);
    k->uid = xstrdup(uid);
    k->status = st;
    return started(k,
                   broker_presence_set(h->broker, uid, presence_status_name(st),
                                       on_answer, k));
}

/* presence_subscribe: the statuses are read once every new watch is
 * confirmed, so that no change falls between the read and the
 * subscription. */
typedef struct psub {
    call *k;
    char **uids;
    size_t n, waiting;
} psub;

static void psub_free(psub *p) {
    for (size_t i = 0; i < p->n; i++)
        free(p->uids[i]);
    free(p->uids);
    free(p);
}

static void psub_read(psub *p) {
    call *k = p->k;
    if (broker_presence_get(k->h->broker, (const char *const *)p->uids, p->n,
                            on_answer, k) < 0) {
        script_reply sr = {.rc = -EAGAIN};
        wake(k, &sr);
        call_free(k);
    }
    psub_free(p);
}

static void psub_watched(void *ctx, const broker_reply *r) {
    psub *p = ctx;
    if (r->rc == -ECANCELED) {
        if (--p->waiting == 0) {
            call_free(p->k);
            psub_free(p);
        }
        return;
    }
    if (--p->waiting == 0) psub_read(p);
}

int hub__cluster_presence_subscribe(hub_t *h, const char *cid,
                                    const char *const *uids, size_t n,
                                    script_wait *w) {
    NEED_WAIT(w);
    conn_t *c = conns_lookup(h->conns, cid);
    if (!c) return -ENOENT;
    psub *p = xcalloc(1, sizeof *p);
    p->uids = xmalloc((n ? n : 1) * sizeof *p->uids);
    p->waiting = 1;
    for (size_t i = 0; i < n; i++) {
        int fresh = presence_subscriber_count(h->presence, uids[i]) == 0;
        if (presence_subscribe(h->presence, c, uids[i]) < 0) {
            psub_free(p);
            return -ENOSPC;
        }
        p->uids[p->n++] = xstrdup(uids[i]);
        if (fresh && broker_watch(h->broker, BROKER_STATUS, uids[i],
                                  psub_watched, p) == 0)
            p->waiting++;
    }
    p->k = call_new(h, w, OP_STATUSES);
    if (--p->waiting > 0) return -EINPROGRESS;
    /* Every watch was confirmed already: read now (a failure is told
     * here, not through a wake: this is inside the script's call). */
    call *k = p->k;
    int rc = broker_presence_get(h->broker, (const char *const *)p->uids, p->n,
                                 on_answer, k);
    psub_free(p);
    return started(k, rc);
}

int hub__cluster_store(hub_t *h, int op, int kind, const char *scope,
                       const char *key, const char *json, size_t len,
                       script_wait *w) {
    NEED_WAIT(w);
    if (op == 1 && len > STORE_MAX_VALUE) return -ENOSPC;
    call *k = call_new(h, w,
                       op == 0   ? OP_STORE_GET
                       : op == 1 ? OP_STORE_SET
                                 : OP_COUNT);
    int rc =
        op == 0 ? broker_store_get(h->broker, kind, scope, key, on_answer, k)
        : op == 1
            ? broker_store_set(h->broker, kind, scope, key, json, len,
                               on_answer, k)
            : broker_store_delete(h->broker, kind, scope, key, on_answer, k);
    return started(k, rc);
}

/* ---- life -----------------------------------------------------------------
 */

static const broker_events events = {NULL, on_message, on_ready, on_resync};

int hub__cluster_start(hub_t *h, char *err, size_t errlen) {
    broker_options opt = {0};
    if (broker_parse_url(h->cfg->redis, &opt.url, err, errlen) < 0) return -1;
    char node[65];
    if (h->cfg->node_id[0]) {
        snprintf(node, sizeof node, "%s", h->cfg->node_id);
    } else {
        /* HOSTNAME-PID, the host name cut to what a node id may hold. */
        char host[64] = "node";
        gethostname(host, sizeof host);
        host[sizeof host - 1] = '\0';
        for (char *p = host; *p; p++)
            if (!strchr("_.-", *p) &&
                !((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9')))
                *p = '-';
        snprintf(node, sizeof node, "%.40s-%d", host, (int)getpid());
    }
    opt.node_id = node;
    opt.presence_ttl_ms = (int)(h->cfg->presence_ttl * 1000);
    opt.presence_grace_ms = (int)(h->cfg->presence_grace * 1000);
    opt.command_timeout_ms = 3000;
    opt.history_size = h->cfg->history_size;
    opt.history_ttl_ms = (long long)(h->cfg->history_ttl * 1000);
    opt.max_listed = h->cfg->max_listed_members;
    broker_events ev = events;
    ev.ud = h;
    h->broker_events = ev;
    h->pending_joins = dict_create();
    h->broker = broker_create(h->t->loop, &opt, &h->broker_events);
    char prefix[72];
    snprintf(prefix, sizeof prefix, "%s.", node);
    conns_set_prefix(h->conns, prefix);
    log_info("redis", "node %s joining the cluster at %s", node, h->cfg->redis);
    return 0;
}

void hub_shutdown(hub_t *h) {
    /* The users waiting out --presence-grace here wait no more (their
     * timer would keep the loop alive), nor do those whose connections
     * are still closing. */
    h->stopping = 1;
    hub__grace_stop(h);
    if (h->broker) broker_shutdown(h->broker);
}

void hub__cluster_stop(hub_t *h) {
    broker_destroy(h->broker);
    h->broker = NULL;
    hub__recover_destroy(h);
    dict_destroy(h->pending_joins, NULL);
    h->pending_joins = NULL;
}

int hub_ready(hub_t *h, char *why, size_t cap) {
    if (!h->broker) return 1;
    if (h->cluster_ready) return 1;
    snprintf(why, cap, "%s", broker_why(h->broker));
    return 0;
}
