/* broker_int.h -- what the broker's files share (internal).
 *
 * broker.c (the requests, the channels, the node's heartbeat and the
 * reaping of dead nodes) calls broker_conn.c (one connection to Redis:
 * resolving, connecting, AUTH and SELECT, command timeouts, reconnecting
 * with backoff) and broker_lua.c (the scripts Redis runs); none calls
 * back up. Only these files include hiredis. */
#ifndef LUAHUB_BROKER_INT_H
#define LUAHUB_BROKER_INT_H

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <uv.h>

#include "broker.h"

/* ---- broker_conn.c ------------------------------------------------------ */

typedef struct bconn bconn_t;

/* A command's answer: r is NULL when the connection dropped or the
 * command timed out before it came. */
typedef void (*bconn_reply_fn)(void *ctx, redisReply *r);

typedef struct bconn_events {
    void *ud;
    /* Connected, authenticated, the database selected. */
    void (*up)(void *ud, bconn_t *c);
    /* Lost (or a connection attempt failed): why, for the logs. The
     * connection is made again after a backoff. */
    void (*down)(void *ud, bconn_t *c, const char *why);
    /* A pushed reply on a subscriber connection (message, subscribe). */
    void (*push)(void *ud, redisReply *r);
} bconn_events;

/* name: "commands" or "subscriber", for the logs. */
bconn_t *bconn_create(uv_loop_t *loop, const broker_url *url, const char *name,
                      int timeout_ms, const bconn_events *ev);
void bconn_start(bconn_t *c);
/* For a graceful exit: nothing new is sent; what was sent goes out and is
 * answered (at most grace_ms), then the connection and its timer close,
 * so that the loop can end. bconn_destroy frees it after. */
void bconn_shutdown(bconn_t *c, int grace_ms);
/* Frees c (closing what is still open: the loop must run once more to
 * finish, unless bconn_shutdown closed it all already). */
void bconn_destroy(bconn_t *c);
int bconn_is_up(const bconn_t *c);
/* Sends a command: 0 (fn called once, later), or -EAGAIN when the
 * connection is not up (fn not called). fn may be NULL. */
int bconn_command(bconn_t *c, bconn_reply_fn fn, void *ctx, int argc,
                  const char **argv, const size_t *lens);
/* SUBSCRIBE or UNSUBSCRIBE (argv[0]) channels on a subscriber
 * connection; their confirmations and messages come through push. 0 or
 * -EAGAIN. */
int bconn_subscribe(bconn_t *c, int argc, const char **argv,
                    const size_t *lens);
/* Drops the connection now (it is made again after the backoff): for a
 * subscriber found dead by the caller. Not from inside a hiredis callback
 * of this connection. */
void bconn_drop(bconn_t *c, const char *why);

/* ---- broker_lua.c -------------------------------------------------------- */

/* A frame's delivery class on a channel (frame.h): the header field after
 * the target's ("F\t<except conn>\t<except user>\te\n", "C\t<conn>\te\n")
 * for an ephemeral frame; a durable frame has no such field, as before
 * classes, so nodes of either kind read each other's frames (an older
 * node delivers an ephemeral frame as durable). */
#define CLASS_EPHEMERAL "e"

typedef enum broker_script {
    BS_PUBLISH,
    BS_JOIN,
    BS_LEAVE,
    BS_SEND_USERS,
    BS_PRESENCE_SET,
    BS_STORE_SET,
    BS_CONN_OPEN,
    BS_CONN_CLOSE,
    BS_REAP,
    BS_SYNC,
    BS_ROOM_INFO,
    BS_PRESENCE_GET,
    BS_HISTORY,
    BS_MEMBERS,
    BS_COUNT
} broker_script;

/* The script's Lua source, and its SHA1 (hex), computed once. */
const char *broker__lua(broker_script s);
const char *broker__sha(broker_script s);

#endif
