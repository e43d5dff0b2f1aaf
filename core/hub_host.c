/* hub_host.c -- the script_host table: what the scripts may ask of the
 * core (sending, rooms, presence, connections, the store), on the hub's
 * state (see hub_int.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "hub_int.h"
#include "log.h"

/* The hub's own host answers every call at once: w is never taken. */

static int host_send(void *ud, const script_target *t, frame_t *f,
                     script_wait *w) {
    hub_t *h = ud;
    if (h->broker) return hub__cluster_send(h, t, f, w);
    conn_t *xc = t->except_conn ? conns_lookup(h->conns, t->except_conn) : NULL;
    user_t *xu = t->except_user ? conns_user(h->conns, t->except_user) : NULL;
    size_t n = 0;
    switch (t->kind) {
    case SCRIPT_TO_CONN: {
        conn_t *c = conns_lookup(h->conns, t->ids[0]);
        if (c && c != xc && conn_user(c) != xu)
            n = (size_t)fanout_conn(&h->fo, c, f);
        break;
    }
    case SCRIPT_TO_USERS:
        for (size_t i = 0; i < t->nids; i++) {
            user_t *u = conns_user(h->conns, t->ids[i]);
            if (!u || u == xu) continue;
            /* A user listed twice is reached once. Lists are short (a
             * multicast names a few users), so a quadratic check beats a
             * set. */
            int dup = 0;
            for (size_t j = 0; j < i && !dup; j++)
                dup = strcmp(t->ids[i], t->ids[j]) == 0;
            if (!dup) n += fanout_user(&h->fo, u, f, xc);
        }
        break;
    case SCRIPT_TO_ROOM: {
        room_t *r = rooms_get(h->rooms, t->ids[0]);
        if (r) n = fanout_room(&h->fo, r, f, xc, xu);
        break;
    }
    case SCRIPT_TO_ALL:
        n = fanout_all(&h->fo, f, xc, xu);
        break;
    }
    if (n) h->t->wake(h->t->ud);
    return (int)n;
}

static int host_publish(void *ud, const char *room, const char *member,
                        script_stamp_fn stamp, void *ctx, const char *head,
                        size_t headlen, uint64_t *seq, script_wait *w) {
    hub_t *h = ud;
    if (h->broker)
        return hub__cluster_publish(h, room, member, head, headlen, w);
    room_t *r = rooms_get(h->rooms, room);
    if (member) {
        user_t *u = conns_user(h->conns, member);
        if (!r || !u || !room_has_member(r, u)) return -EPERM;
    }
    if (!r) return -ENOENT;
    *seq = room_next_seq(r);
    frame_t *f = stamp(ctx, *seq);
    if (fanout_room(&h->fo, r, f, NULL, NULL)) h->t->wake(h->t->ud);
    /* The frame that went out, kept as it is: recovery hands out the
     * bytes delivered live. */
    room_keep(h->rooms, r, f, *seq, clock_now_ms());
    frame_unref(f);
    return 0;
}

static int host_join(void *ud, const char *room, const char *uid,
                     size_t *members, script_wait *w) {
    hub_t *h = ud;
    if (h->broker) return hub__cluster_join(h, room, uid, w);
    user_t *u = conns_user(h->conns, uid);
    if (!u) return -ENOENT;
    int rc = rooms_join(h->rooms, room, u, clock_now_ms());
    *members = room_member_count(rooms_get(h->rooms, room));
    return rc;
}

static int host_leave(void *ud, const char *room, const char *uid,
                      size_t *members, script_wait *w) {
    hub_t *h = ud;
    if (h->broker) return hub__cluster_leave(h, room, uid, w);
    user_t *u = conns_user(h->conns, uid);
    room_t *r = rooms_get(h->rooms, room);
    *members = r ? room_member_count(r) : 0;
    if (!u || !r || !room_has_member(r, u)) return 0;
    /* Copied: the room id may be the room's own key, freed with it. */
    char *id = xstrdup(room);
    hub__leave_room(h, id, u);
    free(id);
    (*members)--;
    return 1;
}

static int host_is_member(void *ud, const char *room, const char *uid,
                          script_wait *w) {
    hub_t *h = ud;
    if (h->broker) return hub__cluster_is_member(h, room, uid, w);
    user_t *u = conns_user(h->conns, uid);
    return u ? rooms_is_member(h->rooms, room, u) : 0;
}

static int host_room_info(void *ud, const char *room, script_room_info *out,
                          script_wait *w) {
    hub_t *h = ud;
    if (h->broker) return hub__cluster_room_info(h, room, w);
    room_t *r = rooms_get(h->rooms, room);
    if (!r) return -ENOENT;
    out->created_at = room_created_at(r);
    out->message_count = room_message_count(r);
    out->seq = room_seq(r);
    out->members = room_member_count(r);
    out->epoch = room_epoch(r);
    return 0;
}

static int host_history(void *ud, const char *room, const char *member,
                        int64_t since, size_t limit, const char *epoch,
                        script_history *out, script_wait *w) {
    hub_t *h = ud;
    if (h->broker)
        return hub__cluster_history(h, room, member, since, limit, epoch, w);
    /* One node: its epoch names its run, so a since past the seq of its
     * own epoch is a client's mistake, not a loss; nothing to renew. */
    room_t *r = rooms_get(h->rooms, room);
    if (member) {
        user_t *u = conns_user(h->conns, member);
        if (!r || !u || !room_has_member(r, u)) return -EPERM;
    }
    if (!r) return -ENOENT;
    const history_t *hist = room_history(h->rooms, r, clock_now_ms());
    size_t len = history_len(hist), from;
    if (since >= 0) {
        from = history_after(hist, (uint64_t)since);
    } else {
        from = len > limit ? len - limit : 0;
    }
    size_t n = len - from < limit ? len - from : limit;
    for (size_t i = 0; i < n; i++)
        h->history_frames[i] = history_at(hist, from + i)->frame;
    *out = (script_history){room_epoch(r), room_seq(r), h->history_frames, n};
    return 0;
}

static int host_room_members(void *ud, const char *room,
                             const script_page *page, script_each_fn each,
                             void *ctx, script_wait *w) {
    hub_t *h = ud;
    if (h->broker) return hub__cluster_members(h, room, page, w);
    room_t *r = rooms_get(h->rooms, room);
    if (page && page->member) {
        user_t *u = conns_user(h->conns, page->member);
        if (!r || !u || !room_has_member(r, u)) return -EPERM;
    }
    if (!r) return -ENOENT;
    if (page) {
        room_members_page(r, page->after, page->limit, each, ctx);
        return 0;
    }
    size_t pos = 0;
    user_t *u;
    while ((u = room_next_member(r, &pos)))
        each(ctx, user_id(u));
    return 0;
}

static int host_user_rooms(void *ud, const char *uid, script_each_fn each,
                           void *ctx, script_wait *w) {
    hub_t *h = ud;
    if (h->broker) return hub__cluster_list(h, 1, uid, w);
    size_t pos = 0;
    const char *room;
    while ((room = rooms_next_of_user(h->rooms, uid, &pos)))
        each(ctx, room);
    return 0;
}

static int host_online_users(void *ud, script_each_fn each, void *ctx,
                             script_wait *w) {
    hub_t *h = ud;
    if (h->broker) return hub__cluster_list(h, 2, "", w);
    size_t pos = 0;
    user_t *u;
    while ((u = conns_next_user(h->conns, &pos)))
        each(ctx, user_id(u));
    return 0;
}

static int host_user_connections(void *ud, const char *uid, script_each_fn each,
                                 void *ctx, script_wait *w) {
    hub_t *h = ud;
    if (h->broker) return hub__cluster_list(h, 3, uid, w);
    user_t *u = conns_user(h->conns, uid);
    if (!u) return -ENOENT;
    for (conn_t *c = user_next_conn(u, NULL); c; c = user_next_conn(u, c))
        each(ctx, conn_id(c));
    return 0;
}

static int host_presence_get(void *ud, const char *uid, script_wait *w) {
    hub_t *h = ud;
    if (h->broker) return hub__cluster_presence_get(h, uid, w);
    return (int)presence_get(h->presence, uid);
}

static int host_presence_set(void *ud, const char *uid, int st,
                             script_wait *w) {
    hub_t *h = ud;
    if (h->broker) return hub__cluster_presence_set(h, uid, st, w);
    user_t *u = conns_user(h->conns, uid);
    if (!u) return -ENOENT;
    /* The user's own id: the presence table keeps the pointer. */
    uid = user_id(u);
    if (!presence_set(h->presence, uid, (presence_status)st)) return 0;
    hub__notify_presence(h, uid, (presence_status)st);
    return 1;
}

static int host_presence_subscribe(void *ud, const char *cid,
                                   const char *const *uids, size_t n,
                                   int *statuses, script_wait *w) {
    hub_t *h = ud;
    if (h->broker) return hub__cluster_presence_subscribe(h, cid, uids, n, w);
    conn_t *c = conns_lookup(h->conns, cid);
    if (!c) return -ENOENT;
    for (size_t i = 0; i < n; i++) {
        if (presence_subscribe(h->presence, c, uids[i]) < 0) return -ENOSPC;
        statuses[i] = (int)presence_get(h->presence, uids[i]);
    }
    return 0;
}

static int host_conn_info(void *ud, const char *cid, script_conn_info *out) {
    hub_t *h = ud;
    conn_t *c = conns_lookup(h->conns, cid);
    if (!c) return -ENOENT;
    conn_stats_t *st = conn_stats(c);
    out->user_id = user_id(conn_user(c));
    out->connected_at = conn_connected_at(c);
    out->last_activity = conn_last_activity(c);
    out->messages_in = st->messages_in;
    out->messages_out = st->messages_out;
    out->bytes_in = st->bytes_in;
    out->bytes_out = st->bytes_out;
    out->ip[0] = '\0';
    if (h->t->address) h->t->address(h->t->ud, c, out->ip, sizeof out->ip);
    return 0;
}

static int host_store_get(void *ud, int kind, const char *scope,
                          const char *key, const char **json, size_t *len,
                          script_wait *w) {
    hub_t *h = ud;
    if (h->broker)
        return hub__cluster_store(h, 0, kind, scope, key, NULL, 0, w);
    *json = store_get(h->store, (store_scope_kind)kind, scope, key, len);
    return 0;
}

static int host_store_set(void *ud, int kind, const char *scope,
                          const char *key, const char *json, size_t len,
                          script_wait *w) {
    hub_t *h = ud;
    if (h->broker)
        return hub__cluster_store(h, 1, kind, scope, key, json, len, w);
    /* A room's or user's scope only while it exists, so that it is dropped
     * with it and nothing piles up. */
    if (kind == STORE_ROOM && !rooms_get(h->rooms, scope)) return -ENOENT;
    if (kind == STORE_USER && !conns_user(h->conns, scope)) return -ENOENT;
    return store_set(h->store, (store_scope_kind)kind, scope, key, json, len);
}

static int host_store_delete(void *ud, int kind, const char *scope,
                             const char *key, script_wait *w) {
    hub_t *h = ud;
    if (h->broker)
        return hub__cluster_store(h, 2, kind, scope, key, NULL, 0, w);
    return store_delete(h->store, (store_scope_kind)kind, scope, key);
}

/* Kept until the call is over (hub.c counts it under the call's type):
 * a frame gets one answer. */
static void host_answered_error(void *ud, const char *code) {
    hub_t *h = ud;
    snprintf(h->call_error, sizeof h->call_error, "%s", code);
}

void hub__host_init(hub_t *h) {
    h->host = (script_host){
        .ud = h,
        .send = host_send,
        .publish = host_publish,
        .join = host_join,
        .leave = host_leave,
        .is_member = host_is_member,
        .room_info = host_room_info,
        .history = host_history,
        .room_members = host_room_members,
        .user_rooms = host_user_rooms,
        .online_users = host_online_users,
        .user_connections = host_user_connections,
        .presence_get = host_presence_get,
        .presence_set = host_presence_set,
        .presence_subscribe = host_presence_subscribe,
        .conn_info = host_conn_info,
        .store_get = host_store_get,
        .store_set = host_store_set,
        .store_delete = host_store_delete,
        .answered_error = host_answered_error,
    };
}
