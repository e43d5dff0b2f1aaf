/* hub_int.h -- what the hub's files share (internal).
 *
 * hub.c (the hub's life, connection events, dispatch, reload) calls
 * hub_host.c (the script_host table: what the scripts may ask of the
 * core), and both call hub_frames.c (the frames the core writes itself,
 * and leaving a room); none calls back up. */
#ifndef LUAHUB_HUB_INT_H
#define LUAHUB_HUB_INT_H

#include "broker.h"
#include "buf.h"
#include "conn.h"
#include "dict.h"
#include "fanout.h"
#include "hub.h"
#include "presence.h"
#include "room.h"
#include "script.h"
#include "store.h"

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

/* ---- hub_cluster.c ---- */

/* Creates the broker (cfg->redis is set): -1 with the reason in err. */
int hub__cluster_start(hub_t *h, char *err, size_t errlen);
void hub__cluster_stop(hub_t *h);
/* c was registered here (first_local: the user's first connection on
 * this node): registers it in Redis, and mirrors the user's rooms. */
void hub__cluster_conn_open(hub_t *h, conn_t *c, int first_local);
/* c is gone: the mirror and Redis told; frees c. */
void hub__cluster_conn_closed(hub_t *h, conn_t *c);

/* ---- hub_host.c ---- */

/* Fills h->host, the table the scripts call through. */
void hub__host_init(hub_t *h);

#endif
