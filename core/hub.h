/* hub.h -- the core: connections, rooms, presence, fan-out and scripts
 * tied together.
 *
 * The transport (server.c) reports what happens on sockets (a connection
 * opened, a message arrived, a connection closed) and drains the send
 * queues; the hub does the rest. The data path reads straight through:
 * hub_conn_message -> envelope_parse -> script_dispatch -> host send ->
 * fanout_* -> conn_enqueue -> (transport flush) -> socket. */
#ifndef LUAHUB_HUB_H
#define LUAHUB_HUB_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "conn.h"
#include "frame.h"
#include "script.h"

typedef struct hub hub_t;

/* What the hub needs from the transport. */
typedef struct hub_transport {
    void *ud;
    /* The uv_loop_t that script timers run on. */
    void *loop;
    /* Frames were queued: flush the dirty connections soon (this loop
     * pass). */
    void (*wake)(void *ud);
    /* Write what c's socket takes now (its queue is full). */
    void (*drain)(void *ud, conn_t *c);
    /* Close c with a WebSocket close code, asynchronously: never under the
     * caller's feet. The transport reports the close later through
     * hub_conn_closed. */
    void (*close)(void *ud, conn_t *c, int code, const char *reason);
    /* c's client address as text into out (cap bytes), for the logs.
     * Optional (NULL: "-"). */
    void (*address)(void *ud, conn_t *c, char *out, size_t cap);
    /* c is still full after drain: drop its queued ephemeral frames but
     * one partly written (conn_queue_drop_ephemeral with keep 1 when the
     * head is begun, else 0); returns how many. Optional (NULL: the head
     * is kept, begun or not). */
    size_t (*shed)(void *ud, conn_t *c);
} hub_transport;

/* Creates the hub and loads the scripts. Returns NULL (with the reason in
 * err) when the scripts don't load. cfg and t are borrowed for the hub's
 * life. */
hub_t *hub_create(const config_t *cfg, const hub_transport *t, char *err,
                  size_t errlen);
void hub_destroy(hub_t *h);
/* The server is stopping and its connections are closed: with several
 * nodes, the node says goodbye and closes its Redis connections so that
 * the loop can end; on one node, no user waits out --presence-grace any
 * more (nor will). */
void hub_shutdown(hub_t *h);

conns_t *hub_conns(hub_t *h);

/* Drops the room history past --history-ttl and deletes the rooms empty
 * for that long (one node; with several, Redis expires them). The server
 * calls it once a second; reads drop what is past its time anyway. */
void hub_sweep(hub_t *h);

/* 1 when the node can serve (no --redis, or Redis reachable, subscribed
 * and this node's users registered); 0 with the reason in why. */
int hub_ready(hub_t *h, char *why, size_t cap);

/* A WebSocket connection was established for user_id (already
 * validated): registers it, queues the welcome frame, and makes the user
 * online on their first connection. */
conn_t *hub_conn_open(hub_t *h, const char *user_id, void *transport);
/* The connection is gone: on the user's last connection, leaves every
 * room (user_left to the remaining members) and goes offline (presence
 * subscribers told). Frees c. */
void hub_conn_closed(hub_t *h, conn_t *c);
/* One complete text message from c. */
void hub_conn_message(hub_t *h, conn_t *c, const char *data, size_t len);
/* A complete binary message from c: answered bad_message. */
void hub_conn_binary(hub_t *h, conn_t *c);
/* A complete message from c over the transport's rate limit (data NULL
 * for a binary one): not run; answered rate_limited with message, and with
 * the frame's id when it has one. */
void hub_conn_limited(hub_t *h, conn_t *c, const char *data, size_t len,
                      const char *message);

/* Reloads lua/ and scripts/ into a new state and swaps it in; keeps the
 * old one when anything fails. Returns 0 on success, -EINVAL otherwise; the
 * outcome is logged either way. */
int hub_reload(hub_t *h);

/* Handlers written in C. A native handler for a type runs instead of
 * scripts/<type>.lua: it gets the frame (already checked by
 * envelope_parse) and answers by itself, through the same host functions
 * the scripts call (hub_host) and hub_send_error. For embedders with a
 * hot path, and for measuring what Lua costs (tests/bench/). */
typedef struct hub_call {
    conn_t *conn;
    const char *conn_id, *user_id;
    const char *id_json; /* the client's id as JSON, or NULL */
    const char *json;    /* the whole frame */
    size_t len;
} hub_call;
typedef void (*hub_native_fn)(hub_t *h, const hub_call *call);

/* Routes type to fn (NULL: back to the scripts). */
void hub_set_native(hub_t *h, const char *type, hub_native_fn fn);
/* What the scripts may ask of the core, for native handlers. */
const script_host *hub_host(hub_t *h);

/* ---- for the HTTP API and GET /metrics (hub_api.c) ---------------------- */

/* Appends the metrics exposition (metrics.h) with this moment's gauges. */
void hub_metrics_write(hub_t *h, buf_t *out);

/* What an API request answers. Strings and ids are borrowed for the
 * callback. */
typedef struct hub_api_reply {
    /* 0; -ENOENT no such room or user; -EAGAIN Redis unavailable (nothing
     * was done); -ECANCELED the hub is going (nobody to answer). */
    int rc;
    uint64_t seq;     /* publish: the seq taken; room: the room's last */
    size_t delivered; /* send: connections reached, on every node */
    /* room: */
    const char *epoch;
    int64_t created_at;
    uint64_t message_count;
    size_t members;
    /* room: the members; user: the connection ids */
    const char *const *ids;
    size_t nids;
    const char *status; /* user: online, away, busy or offline */
} hub_api_reply;
typedef void (*hub_api_fn)(void *ctx, const hub_api_reply *r);

/* Each calls fn exactly once: before it returns (one node), or from the
 * loop once Redis answered (--redis). Strings are borrowed for the call.
 *
 * A room chat from the server, as the chat handler's (the same publish
 * path: the room's next seq, history, Redis): {"type":"chat","payload":
 * <payload>,"timestamp":…,"seq":n,"room_id":room} to every member;
 * payload is JSON text (an object). -ENOENT when there is no such room. */
void hub_api_publish(hub_t *h, const char *room, const char *payload,
                     size_t len, hub_api_fn fn, void *ctx);
/* {"type":"chat","to":<to_json>,"payload":…,"timestamp":…} to every
 * connection of each of users[0..n) (a user named twice reached once);
 * r->delivered says to how many. */
void hub_api_send(hub_t *h, const char *const *users, size_t n,
                  const char *to_json, size_t tolen, const char *payload,
                  size_t len, hub_api_fn fn, void *ctx);
/* A room: its members, seq, epoch, counts; -ENOENT when none. */
void hub_api_room(hub_t *h, const char *room, hub_api_fn fn, void *ctx);
/* A user: status and connection ids; -ENOENT when offline everywhere. */
void hub_api_user(hub_t *h, const char *uid, hub_api_fn fn, void *ctx);

/* Sends an error frame to c (id_json may be NULL). */
void hub_send_error(hub_t *h, conn_t *c, const char *id_json, const char *code,
                    const char *message);

#endif
