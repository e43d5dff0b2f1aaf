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
#include "log.h"

/* ---- the mirror ------------------------------------------------------------ */

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
    if (n == 1) dict_remove(h->pending_joins, key);
    else dict_set(h->pending_joins, key, (void *)(n - 1));
    broker_unwatch(h->broker, BROKER_ROOM, room);
}

/* ---- what reaches the node -------------------------------------------------- */

static frame_t *frame_of(const char *json, size_t len) {
    buf_t b = hub__frame_buf();
    buf_append(&b, json, len);
    return frame_from_buf(&b);
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
        f = frame_of(m->json, m->len);
        n = fanout_room(&h->fo, r, f, xc, xu);
        break;
    }
    case BROKER_USER: {
        user_t *u = conns_user(h->conns, m->target);
        if (!u || u == xu) return;
        f = frame_of(m->json, m->len);
        n = fanout_user(&h->fo, u, f, xc);
        break;
    }
    case BROKER_CONN: {
        conn_t *c = conns_lookup(h->conns, m->target);
        if (!c) return;
        f = frame_of(m->json, m->len);
        n = (size_t)fanout_conn(&h->fo, c, f);
        break;
    }
    case BROKER_ALL:
        f = frame_of(m->json, m->len);
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

/* ---- the node's connections -------------------------------------------------- */

typedef struct opened {
    hub_t *h;
    char *uid;
} opened;

/* The user's rooms, for a user new on this node: mirrored. */
static void on_opened(void *ctx, const broker_reply *r) {
    opened *o = ctx;
    user_t *u = r->rc == -ECANCELED ? NULL : conns_user(o->h->conns, o->uid);
    for (size_t i = 0; u && r->rc >= 0 && i < r->nids; i++)
        learn_membership(o->h, r->ids[i], u);
    free(o->uid);
    free(o);
}

void hub__cluster_conn_open(hub_t *h, conn_t *c, int first_local) {
    const char *uid = user_id(conn_user(c));
    if (first_local) broker_watch(h->broker, BROKER_USER, uid, NULL, NULL);
    opened *o = xmalloc(sizeof *o);
    *o = (opened){h, xstrdup(uid)};
    if (broker_conn_open(h->broker, conn_id(c), uid, on_opened, o) < 0) {
        /* Redis is down: the resync registers the connection. */
        free(o->uid);
        free(o);
    }
}

static void status_unwatched(void *ctx, const char *uid) {
    hub_t *h = ctx;
    broker_unwatch(h->broker, BROKER_STATUS, uid);
}

void hub__cluster_conn_closed(hub_t *h, conn_t *c) {
    user_t *u = conn_user(c);
    char *uid = xstrdup(user_id(u));
    presence_conn_closed_each(h->presence, c, status_unwatched, h);
    if (user_conn_count(u) == 1) {
        /* The user's last connection here: the mirror forgets the user
         * (whether the user leaves the rooms is Redis's to say: the user
         * may have connections on other nodes). */
        size_t n = rooms_count_of_user(h->rooms, uid), pos = 0, i = 0;
        char **ids = xmalloc((n ? n : 1) * sizeof *ids);
        const char *room;
        while (i < n && (room = rooms_next_of_user(h->rooms, uid, &pos)))
            ids[i++] = xstrdup(room);
        for (i = 0; i < n; i++) {
            mirror_remove(h, ids[i], u);
            free(ids[i]);
        }
        free(ids);
        presence_set(h->presence, user_id(u), PRESENCE_OFFLINE);
        broker_unwatch(h->broker, BROKER_USER, uid);
    }
    broker_conn_close(h->broker, conn_id(c), uid, NULL, NULL);
    int last;
    conns_remove(h->conns, c, &last);
    free(uid);
    h->t->wake(h->t->ud);
}

/* ---- life ----------------------------------------------------------------- */

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
            if (!strchr("_.-", *p) && !((*p >= 'a' && *p <= 'z') ||
                                         (*p >= 'A' && *p <= 'Z') ||
                                         (*p >= '0' && *p <= '9')))
                *p = '-';
        snprintf(node, sizeof node, "%.40s-%d", host, (int)getpid());
    }
    opt.node_id = node;
    opt.presence_ttl_ms = (int)(h->cfg->presence_ttl * 1000);
    opt.command_timeout_ms = 3000;
    broker_events ev = events;
    ev.ud = h;
    h->broker_events = ev;
    h->pending_joins = dict_create();
    h->broker = broker_create(h->t->loop, &opt, &h->broker_events);
    char prefix[72];
    snprintf(prefix, sizeof prefix, "%s.", node);
    conns_set_prefix(h->conns, prefix);
    log_info("redis", "node %s joining the cluster at %s", node,
             h->cfg->redis);
    return 0;
}

void hub__cluster_stop(hub_t *h) {
    broker_destroy(h->broker);
    h->broker = NULL;
    dict_destroy(h->pending_joins, NULL);
    h->pending_joins = NULL;
}

int hub_ready(hub_t *h, char *why, size_t cap) {
    if (!h->broker) return 1;
    if (h->cluster_ready) return 1;
    snprintf(why, cap, "%s", broker_why(h->broker));
    return 0;
}
