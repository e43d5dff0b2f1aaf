/* fanout.h -- delivering one frame to many connections.
 *
 * Every function here queues a reference to the same frame on each
 * recipient: no encoding, framing or allocation per recipient, and a room
 * send visits only the room's members' connections. A recipient whose
 * queue is full is drained to its socket, then loses its queued ephemeral
 * frames; one still full is handed to the overflow callback (which closes
 * it as a slow consumer), unless the frame that did not fit is ephemeral
 * itself: that frame is then dropped for it and it stays. The send goes
 * on to the others either way. */
#ifndef LUAHUB_FANOUT_H
#define LUAHUB_FANOUT_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "frame.h"
#include "room.h"

typedef struct fanout {
    conns_t *conns;
    /* Called when c's queue is full: write what the socket takes now, so
     * that a burst larger than the queue (one handler publishing many
     * messages) does not count against a client that is keeping up. May
     * be NULL. */
    void (*drain)(void *ud, conn_t *c);
    /* c is still full after draining: drop its queued ephemeral frames
     * but one partly written (conn_queue_drop_ephemeral). May be NULL:
     * then none is dropped. */
    void (*shed)(void *ud, conn_t *c);
    /* c is still over its limit after draining and shedding: close it as
     * a slow consumer. */
    void (*overflow)(void *ud, conn_t *c);
    void *ud;
    /* Bumped for every frame queued on a connection (the metrics'
     * deliveries). May be NULL. */
    uint64_t *delivered;
} fanout_t;

/* Returns 1 when f was queued on c, 0 when c was closing or overflowed,
 * or f (ephemeral) was dropped for it. */
int fanout_conn(const fanout_t *fo, conn_t *c, frame_t *f);
/* To every connection of u but except_conn (may be NULL). Returns how many
 * connections f was queued on. */
size_t fanout_user(const fanout_t *fo, const user_t *u, frame_t *f,
                   const conn_t *except_conn);
/* To every connection of every member of r, but except_conn and every
 * connection of except_user (either may be NULL). */
size_t fanout_room(const fanout_t *fo, const room_t *r, frame_t *f,
                   const conn_t *except_conn, const user_t *except_user);
/* To every connection but except_conn and except_user's. */
size_t fanout_all(const fanout_t *fo, frame_t *f, const conn_t *except_conn,
                  const user_t *except_user);

#endif
