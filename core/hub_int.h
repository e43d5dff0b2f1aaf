/* hub_int.h -- what the hub's files share (internal).
 *
 * hub.c (the hub's life, connection events, dispatch, reload) calls
 * hub_host.c (the script_host table: what the scripts may ask of the
 * core) and hub_grace.c (--presence-grace on one node), and they call
 * hub_frames.c (the frames the core writes itself, leaving a room, a
 * user gone); none calls back up. */
#ifndef LUAHUB_HUB_INT_H
#define LUAHUB_HUB_INT_H

#include "broker.h"
#include "buf.h"
#include "conn.h"
#include "dict.h"
#include "fanout.h"
#include "hub.h"
#include "metrics.h"
#include "presence.h"
#include "room.h"
#include "script.h"
#include "store.h"

/* A connection's messages that wait behind its call that waits: at most
 * this many, of at most this many bytes in all (a client that pipelines
 * its chats waits a Redis round trip per message with several nodes). */
#define HUB_HELD_MAX 1024
#define HUB_HELD_BYTES ((size_t)1024 * 1024)

typedef struct hub_grace hub_grace;
typedef struct hub_recovery hub_recovery;

/* A state replaced while calls of it still wait (hub_reload). */
typedef struct retired {
    script_t *s;
    struct retired *next;
} retired_t;

struct hub {
    const config_t *cfg;
    const hub_transport *t;
    conns_t *conns;
    rooms_t *rooms;
    presence_t *presence;
    fanout_t fo;
    script_host host;
    script_t *script;
    int64_t replace_tried; /* when an unhealthy state last failed to go */
    store_t *store;
    dict_t *natives; /* type -> hub_native_fn (boxed); NULL: none */
    /* --redis: the broker (NULL: one node), its events (ud = the hub),
     * whether it says the node can serve. */
    broker_t *broker;
    broker_events broker_events;
    int cluster_ready;
    /* Joins answered before their marker came: "room\tuser" -> how many
     * (as a pointer); each holds a watch of the room until the marker. */
    dict_t *pending_joins;
    /* The connections whose call joins a room, and the floors of their
     * recoveries (hub_recover.c): conn id -> its recoveries (a list, one
     * per room), and room -> how many (as a pointer), so that a frame to
     * a room no one recovers in costs one look-up. NULL until the first. */
    dict_t *recovering;
    dict_t *recovering_rooms;
    /* conn id -> held_t: the connections whose handler call waits, with
     * the messages queued behind it (hub.c); NULL until the first. */
    dict_t *held;
    retired_t *retired; /* replaced states with calls still waiting */
    /* The frames a history read hands the scripts (host_history):
     * --history-size slots, or NULL. */
    frame_t **history_frames;
    hub_grace *grace; /* --presence-grace, one node: NULL until used */
    int stopping;     /* hub_shutdown was called */
    /* GET /metrics: the counters; the slot and start (monotonic ns) of the
     * message call that just returned waiting, for its held record; the
     * error code the scripts answered the call being run with, if any
     * (script_host.answered_error), counted once the call is over. */
    metrics_t *metrics;
    unsigned wait_slot;
    uint64_t wait_t0;
    char call_error[32];
};

typedef struct native {
    hub_native_fn fn;
} native_t;

/* ---- hub_frames.c ---- */

/* A buffer with the frame's headroom, for frame_from_buf. */
buf_t hub__frame_buf(void);
/* Appends ,"key":"val" (both JSON-escaped). */
void hub__put_field(buf_t *b, const char *key, const char *val);
/* {"type":type,"room_id":room,"from":from,"timestamp":…}; a new
 * reference. */
frame_t *hub__room_event(const char *type, const char *room, const char *from);
/* Tells uid's presence subscribers its status st. */
void hub__notify_presence(hub_t *h, const char *uid, presence_status st);
/* u leaves room; a room left empty drops its stored state (hub.store's
 * room scope), and is deleted unless rooms keep history (rooms_set_history:
 * then it stays for --history-ttl with its seq and history). */
void hub__leave_room(hub_t *h, const char *room, user_t *u);
/* Copies of uid's room ids (*n of them), to walk while leaving changes
 * the index; hub__free_ids frees them. */
char **hub__rooms_of(hub_t *h, const char *uid, size_t *n);
void hub__free_ids(char **ids, size_t n);
/* u has no connection left (one node) and is gone for good: out of every
 * room (user_left to the rest), offline (its subscribers told), its
 * store scope dropped; u is freed. */
void hub__user_gone(hub_t *h, user_t *u);

/* ---- hub_grace.c ---- */

/* u's last connection closed (one node, --presence-grace > 0): u stays
 * registered, online and in its rooms until the grace is over, then
 * hub__user_gone unless a connection of u's came back. */
void hub__grace_start(hub_t *h, user_t *u);
/* A connection of uid's came back within the grace: nothing happens. */
void hub__grace_cancel(hub_t *h, const char *uid);
/* The hub goes: the timer closed (its memory freed as the loop runs). */
void hub__grace_stop(hub_t *h);

/* ---- hub_cluster.c ---- */

/* Creates the broker (cfg->redis is set): -1 with the reason in err. */
int hub__cluster_start(hub_t *h, char *err, size_t errlen);
void hub__cluster_stop(hub_t *h);
/* c was registered here (first_local: the user's first connection on
 * this node): registers it in Redis, and mirrors the user's rooms.
 * Returns 1 when it took welcome (a reference) to send once the user's
 * rooms are subscribed (c's messages are held meanwhile: hub__hold), 0
 * when the caller sends it now. */
int hub__cluster_conn_open(hub_t *h, conn_t *c, int first_local,
                           frame_t *welcome);
/* c is gone: the mirror and Redis told; frees c. */
void hub__cluster_conn_closed(hub_t *h, conn_t *c);

/* The script_host functions with several nodes (hub_host.c calls them
 * when there is a broker): the same contracts (script.h), answered
 * through Redis, so they wait (-EINPROGRESS; -EDEADLK given no w; -EAGAIN
 * when Redis is unreachable). The listings: what 0 room_members, 1
 * user_rooms, 2 online_users, 3 user_connections. The store: op 0 get, 1
 * set, 2 delete. */
int hub__cluster_send(hub_t *h, const script_target *t, frame_t *f,
                      script_wait *w);
int hub__cluster_publish(hub_t *h, const char *room, const char *member,
                         const char *head, size_t headlen, script_wait *w);
/* The publish request itself, answered to fn (broker_publish's contract):
 * the HTTP API's way in, with the scripts' frame layout. */
int hub__cluster_publish_to(hub_t *h, const char *room, const char *member,
                            const char *head, size_t headlen, broker_fn fn,
                            void *ctx);
int hub__cluster_join(hub_t *h, const char *room, const char *uid,
                      script_wait *w);
int hub__cluster_leave(hub_t *h, const char *room, const char *uid,
                       script_wait *w);
int hub__cluster_is_member(hub_t *h, const char *room, const char *uid,
                           script_wait *w);
int hub__cluster_room_info(hub_t *h, const char *room, script_wait *w);
int hub__cluster_history(hub_t *h, const char *room, const char *member,
                         int64_t since, size_t limit, const char *epoch,
                         script_wait *w);
int hub__cluster_list(hub_t *h, int what, const char *id, script_wait *w);
/* room_members: every member (page NULL), or a page of them in order. */
int hub__cluster_members(hub_t *h, const char *room, const script_page *page,
                         script_wait *w);
int hub__cluster_presence_get(hub_t *h, const char *uid, script_wait *w);
int hub__cluster_presence_set(hub_t *h, const char *uid, int st,
                              script_wait *w);
int hub__cluster_presence_subscribe(hub_t *h, const char *cid,
                                    const char *const *uids, size_t n,
                                    script_wait *w);
int hub__cluster_store(hub_t *h, int op, int kind, const char *scope,
                       const char *key, const char *json, size_t len,
                       script_wait *w);
/* ---- hub_recover.c ----
 * With several nodes, a connection whose handler call joins a room gets
 * the room's frames after the call's answer, and none that the answer
 * carries (the history it read): the file's comment says why. */

/* cid's call joins room: the room's frames to cid wait from now on. */
void hub__recover_hold(hub_t *h, const char *cid, const char *room);
/* cid's call read room's history up to seq (its frames go in the
 * answer): frames with a seq at or under it are dropped for cid, held or
 * late. Nothing when cid's call did not join room. */
void hub__recover_floor(hub_t *h, const char *cid, const char *room,
                        uint64_t seq);
/* A frame to room r from Redis (seq: its seq, 0 none), to r's local
 * members' connections but xc and xu's (either may be NULL), as
 * fanout_room, held or dropped for the connections recovering in r.
 * Returns how many connections it was queued on. */
size_t hub__recover_fanout(hub_t *h, const room_t *r, frame_t *f, uint64_t seq,
                           const conn_t *xc, const user_t *xu);
/* cid's call is over (its answer queued): its held frames go out. */
void hub__recover_release(hub_t *h, const char *cid);
/* Forgets cid's recoveries: in room (NULL: all), those not holding. */
void hub__recover_forget(hub_t *h, const char *cid, const char *room);
void hub__recover_destroy(hub_t *h);

/* ---- hub.c ---- */

/* After every script_wake that returned 1 (the call is over), with
 * script_wait_conn(w) as read before the wake ("" for a timer): runs the
 * connection's messages that waited behind the call, in order, until one
 * of them waits in turn, and destroys replaced states whose calls are all
 * over. Never call it from inside a script call (a host function). */
void hub__call_over(hub_t *h, const char *conn_id);
/* c's messages wait (queued as behind a call) until hub__call_over(h,
 * conn_id(c)). */
void hub__hold(hub_t *h, conn_t *c);

/* Monotonic nanoseconds, for the handlers' durations. */
uint64_t hub__now_ns(void);

/* ---- hub_host.c ---- */

/* Fills h->host, the table the scripts call through. */
void hub__host_init(hub_t *h);

#endif
