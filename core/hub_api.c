/* hub_api.c -- what the HTTP API asks of the hub (hub.h: hub_api_*), and
 * the gauges of GET /metrics.
 *
 * A backend's publish takes the path a script's hub.publish takes: on one
 * node the host's publish (the room's seq, the frame kept in its history),
 * with several nodes the same publish request to Redis (the seq, the
 * stream, the PUBLISH every node delivers). The difference is who waits:
 * not a handler's coroutine but an HTTP request, so the answer goes to a
 * C callback (broker_fn) instead of script_wake. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "hub_int.h"
#include "json.h"
#include "log.h"

void hub_metrics_write(hub_t *h, buf_t *out) {
    metrics_gauges g = {
        .connections = conns_count(h->conns),
        .users_online = 0,
        .rooms = rooms_count(h->rooms),
        .redis_up = h->broker ? (h->cluster_ready ? 1 : 0) : -1,
    };
    /* Users with a connection here (a user waiting out --presence-grace
     * is registered with none). */
    size_t pos = 0;
    user_t *u;
    while ((u = conns_next_user(h->conns, &pos)))
        if (user_conn_count(u)) g.users_online++;
    metrics_write(h->metrics, &g, out);
}

/* A request waiting for Redis: the caller's callback and what it needs
 * for the answer. */
typedef struct api_call {
    hub_t *h;
    hub_api_fn fn;
    void *ctx;
    char *uid;  /* user: asked next for the status */
    char **ids; /* user: the connection ids read first */
    size_t nids;
} api_call;

static api_call *call_new(hub_t *h, hub_api_fn fn, void *ctx) {
    api_call *k = xcalloc(1, sizeof *k);
    k->h = h;
    k->fn = fn;
    k->ctx = ctx;
    return k;
}

static void call_free(api_call *k) {
    for (size_t i = 0; i < k->nids; i++)
        free(k->ids[i]);
    free(k->ids);
    free(k->uid);
    free(k);
}

static void answer(hub_api_fn fn, void *ctx, int rc) {
    hub_api_reply r = {.rc = rc};
    fn(ctx, &r);
}

/* A broker request that could not go out: -EAGAIN to the caller. */
static void not_sent(api_call *k) {
    answer(k->fn, k->ctx, -EAGAIN);
    call_free(k);
}

/* ---- publish ---------------------------------------------------------------
 */

/* {"type":"chat","payload":<payload>,"timestamp":<now>: the message up to
 * its stamp (the seq and room id, added by whoever takes the seq). */
static void publish_head(buf_t *b, const char *payload, size_t len) {
    buf_puts(b, "{\"type\":\"chat\",\"payload\":");
    buf_append(b, payload, len);
    buf_printf(b, ",\"timestamp\":%lld", (long long)clock_now_ms());
}

typedef struct stamp_ctx {
    buf_t b;
    const char *room;
} stamp_ctx;

/* The script_stamp_fn of the API's publish (as hub.publish's). */
static frame_t *stamp(void *ctx, uint64_t seq) {
    stamp_ctx *p = ctx;
    buf_printf(&p->b, ",\"seq\":%llu,\"room_id\":", (unsigned long long)seq);
    json_write_string(&p->b, p->room, strlen(p->room));
    buf_putc(&p->b, '}');
    return frame_from_buf(&p->b);
}

static void published(void *ctx, const broker_reply *br) {
    api_call *k = ctx;
    hub_api_reply r = {.rc = br->rc};
    if (br->rc >= 0) {
        r.rc = 0;
        r.seq = (uint64_t)br->v[0];
        r.epoch = br->str;
    }
    k->fn(k->ctx, &r);
    call_free(k);
}

void hub_api_publish(hub_t *h, const char *room, const char *payload,
                     size_t len, hub_api_fn fn, void *ctx) {
    stamp_ctx p = {hub__frame_buf(), room};
    publish_head(&p.b, payload, len);
    if (h->broker) {
        api_call *k = call_new(h, fn, ctx);
        if (hub__cluster_publish_to(h, room, NULL, buf_content(&p.b), p.b.len,
                                    published, k) < 0)
            not_sent(k);
        buf_close(&p.b);
        return;
    }
    hub_api_reply r = {0};
    /* No member to check: a room that exists gets it, members or not. */
    r.rc = h->host.publish(h, room, NULL, stamp, &p, buf_content(&p.b), p.b.len,
                           &r.seq, NULL);
    buf_close(&p.b);
    if (r.rc == -EPERM) r.rc = -ENOENT;
    fn(ctx, &r);
}

/* ---- to users ------------------------------------------------------------ */

static void sent(void *ctx, const broker_reply *br) {
    api_call *k = ctx;
    hub_api_reply r = {.rc = br->rc < 0 ? br->rc : 0};
    if (br->rc >= 0) r.delivered = (size_t)br->rc;
    k->fn(k->ctx, &r);
    call_free(k);
}

void hub_api_send(hub_t *h, const char *const *users, size_t n,
                  const char *to_json, size_t tolen, const char *payload,
                  size_t len, hub_api_fn fn, void *ctx) {
    buf_t b = hub__frame_buf();
    buf_puts(&b, "{\"type\":\"chat\",\"to\":");
    buf_append(&b, to_json, tolen);
    buf_puts(&b, ",\"payload\":");
    buf_append(&b, payload, len);
    buf_printf(&b, ",\"timestamp\":%lld}", (long long)clock_now_ms());
    /* Distinct ids, in order (Redis's script counts each user once). */
    const char **ids = xmalloc((n ? n : 1) * sizeof *ids);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        int dup = 0;
        for (size_t j = 0; j < m && !dup; j++)
            dup = strcmp(users[i], ids[j]) == 0;
        if (!dup) ids[m++] = users[i];
    }
    if (h->broker) {
        api_call *k = call_new(h, fn, ctx);
        if (broker_send_users(h->broker, ids, m, NULL, NULL, NULL,
                              buf_content(&b), b.len, 0, sent, k) < 0)
            not_sent(k);
        free(ids);
        buf_close(&b);
        return;
    }
    frame_t *f = frame_from_buf(&b);
    hub_api_reply r = {0};
    for (size_t i = 0; i < m; i++) {
        user_t *u = conns_user(h->conns, ids[i]);
        if (u) r.delivered += fanout_user(&h->fo, u, f, NULL);
    }
    if (r.delivered) h->t->wake(h->t->ud);
    frame_unref(f);
    free(ids);
    fn(ctx, &r);
}

/* ---- a room -------------------------------------------------------------- */

static void room_read(void *ctx, const broker_reply *br) {
    api_call *k = ctx;
    hub_api_reply r = {.rc = br->rc < 0 ? br->rc : 0};
    if (br->rc >= 0) {
        r.epoch = br->str;
        r.created_at = br->v[0];
        r.message_count = (uint64_t)br->v[1];
        r.seq = (uint64_t)br->v[2];
        r.members = (size_t)br->v[3];
        r.ids = (const char *const *)br->ids;
        r.nids = br->nids;
    }
    k->fn(k->ctx, &r);
    call_free(k);
}

void hub_api_room(hub_t *h, const char *room, hub_api_fn fn, void *ctx) {
    if (h->broker) {
        api_call *k = call_new(h, fn, ctx);
        if (broker_room_info(h->broker, room, room_read, k) < 0) not_sent(k);
        return;
    }
    room_t *r = rooms_get(h->rooms, room);
    if (!r) return answer(fn, ctx, -ENOENT);
    hub_api_reply out = {
        .epoch = room_epoch(r),
        .created_at = room_created_at(r),
        .message_count = room_message_count(r),
        .seq = room_seq(r),
        .members = room_member_count(r),
    };
    const char **ids = xmalloc((out.members ? out.members : 1) * sizeof *ids);
    size_t pos = 0;
    user_t *u;
    while (out.nids < out.members && (u = room_next_member(r, &pos)))
        ids[out.nids++] = user_id(u);
    out.ids = ids;
    fn(ctx, &out);
    free(ids);
}

/* ---- a user -------------------------------------------------------------- */

static void user_status(void *ctx, const broker_reply *br) {
    api_call *k = ctx;
    hub_api_reply r = {.rc = br->rc < 0 ? br->rc : 0};
    if (br->rc >= 0) {
        r.status = br->nids && br->ids[0] ? br->ids[0] : "offline";
        r.ids = (const char *const *)k->ids;
        r.nids = k->nids;
        if (!r.nids && strcmp(r.status, "offline") == 0) r.rc = -ENOENT;
    }
    k->fn(k->ctx, &r);
    call_free(k);
}

static void user_conns(void *ctx, const broker_reply *br) {
    api_call *k = ctx;
    if (br->rc < 0) {
        answer(k->fn, k->ctx, br->rc);
        call_free(k);
        return;
    }
    /* Kept for the answer: the reply's strings go with this callback. */
    k->nids = br->nids;
    k->ids = xmalloc((br->nids ? br->nids : 1) * sizeof *k->ids);
    for (size_t i = 0; i < br->nids; i++)
        k->ids[i] = xstrdup(br->ids[i]);
    const char *uid = k->uid;
    if (broker_presence_get(k->h->broker, &uid, 1, user_status, k) < 0)
        not_sent(k);
}

void hub_api_user(hub_t *h, const char *uid, hub_api_fn fn, void *ctx) {
    if (h->broker) {
        api_call *k = call_new(h, fn, ctx);
        k->uid = xstrdup(uid);
        if (broker_user_conns(h->broker, uid, user_conns, k) < 0) not_sent(k);
        return;
    }
    user_t *u = conns_user(h->conns, uid);
    presence_status st = presence_get(h->presence, uid);
    if (!u && st == PRESENCE_OFFLINE) return answer(fn, ctx, -ENOENT);
    size_t n = u ? user_conn_count(u) : 0;
    const char **ids = xmalloc((n ? n : 1) * sizeof *ids);
    size_t k = 0;
    for (conn_t *c = u ? user_next_conn(u, NULL) : NULL; c && k < n;
         c = user_next_conn(u, c))
        ids[k++] = conn_id(c);
    hub_api_reply r = {
        .ids = ids, .nids = k, .status = presence_status_name(st)};
    fn(ctx, &r);
    free(ids);
}
