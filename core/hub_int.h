/* hub_int.h -- what the hub's files share (internal).
 *
 * hub.c (the hub's life, connection events, dispatch, reload) calls
 * hub_host.c (the script_host table: what the scripts may ask of the
 * core), and both call hub_frames.c (the frames the core writes itself,
 * and leaving a room); none calls back up. */
#ifndef LUAHUB_HUB_INT_H
#define LUAHUB_HUB_INT_H

#include "buf.h"
#include "conn.h"
#include "dict.h"
#include "fanout.h"
#include "hub.h"
#include "presence.h"
#include "room.h"
#include "script.h"
#include "store.h"

/* A connection's messages that wait behind its call that waits: at most
 * this many, of at most this many bytes in all. */
#define HUB_HELD_MAX 64
#define HUB_HELD_BYTES ((size_t)1024 * 1024)

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
    /* conn id -> held_t: the connections whose handler call waits, with
     * the messages queued behind it (hub.c); NULL until the first. */
    dict_t *held;
    retired_t *retired; /* replaced states with calls still waiting */
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
/* u leaves room; a room left empty is deleted, its stored state with it. */
void hub__leave_room(hub_t *h, const char *room, user_t *u);

/* ---- hub.c ---- */

/* After every script_wake that returned 1 (the call is over), with
 * script_wait_conn(w) as read before the wake ("" for a timer): runs the
 * connection's messages that waited behind the call, in order, until one
 * of them waits in turn, and destroys replaced states whose calls are all
 * over. Never call it from inside a script call (a host function). */
void hub__call_over(hub_t *h, const char *conn_id);

/* ---- hub_host.c ---- */

/* Fills h->host, the table the scripts call through. */
void hub__host_init(hub_t *h);

#endif
