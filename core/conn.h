/* conn.h -- the connection registry: connections, users, send queues.
 *
 * A user (one id) holds one or more connections (phone, laptop, tabs). The
 * registry indexes connections by id and users by id, keeps each user's
 * connections in a list, and gives every connection a bounded send queue
 * of shared frames. It knows nothing of sockets: the transport (server.c)
 * stores its handle in the connection and drains the queues of the
 * connections it is told are dirty. */
#ifndef LUAHUB_CONN_H
#define LUAHUB_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"

typedef struct conns conns_t;
typedef struct conn conn_t;
typedef struct user user_t;

/* Per-connection counters, for conn_info and the logs. The outgoing
 * pair first: the flush updates them, on a cache line it reads anyway. */
typedef struct conn_stats {
    uint64_t messages_out, bytes_out;
    uint64_t messages_in, bytes_in;
} conn_stats_t;

/* send_queue_limit: bytes of queued frames above which conn_enqueue
 * reports an overflow. */
conns_t *conns_create(size_t send_queue_limit);
/* Connection ids made from now on start with prefix (at most 71 bytes):
 * "<node>." with several nodes, so that ids are unique among them. */
void conns_set_prefix(conns_t *cs, const char *prefix);
/* Frees every connection and user still registered, dropping their
 * queued frames. */
void conns_destroy(conns_t *cs);

/* Registers a new connection of user_id (user created on its first
 * connection). *first_of_user is set to 1 when the user had no other
 * connection. Returns the connection, owned by the registry. */
conn_t *conns_add(conns_t *cs, const char *user_id, void *transport,
                  int64_t now_ms, int *first_of_user);
/* Unregisters and frees c, dropping its queue. *last_of_user is set to 1
 * when the user has no connection left; the user is then freed too, so
 * finish with it (rooms, presence) BEFORE calling this. */
void conns_remove(conns_t *cs, conn_t *c, int *last_of_user);
/* The same, but a user left with no connection stays registered (found by
 * conns_user, listed by conns_next_user, its id valid) until
 * conns_drop_user, or until a new connection of theirs makes it a user
 * with connections again (conns_add: not first_of_user then). For
 * --presence-grace. */
void conns_remove_keeping_user(conns_t *cs, conn_t *c, int *last_of_user);
/* Frees u when it has no connection (else does nothing). */
void conns_drop_user(conns_t *cs, user_t *u);

conn_t *conns_lookup(const conns_t *cs, const char *conn_id);
user_t *conns_user(const conns_t *cs, const char *user_id);
size_t conns_count(const conns_t *cs);
/* Shrinks the tables that grew with the connections once most have gone
 * (dict_shrink: not while iterating). Returns the bytes freed. */
size_t conns_shrink(conns_t *cs);
size_t conns_user_count(const conns_t *cs);
/* Every connection, in no particular order: start with NULL. */
conn_t *conns_next(const conns_t *cs, conn_t *prev);
/* Every online user: start with *pos = 0; NULL at the end. */
user_t *conns_next_user(const conns_t *cs, size_t *pos);

/* The connection. */
const char *conn_id(const conn_t *c);
user_t *conn_user(const conn_t *c);
void *conn_transport(const conn_t *c);
void conn_set_transport(conn_t *c, void *transport);
int64_t conn_connected_at(const conn_t *c);
int64_t conn_last_activity(const conn_t *c);
void conn_touch(conn_t *c, int64_t now_ms);
conn_stats_t *conn_stats(conn_t *c);
/* A connection that is closing takes no more frames. */
int conn_closing(const conn_t *c);
void conn_set_closing(conn_t *c, int close_code);
int conn_close_code(const conn_t *c);
/* Per-connection scratch for the transport (ping bookkeeping). */
int64_t conn_ping_sent_at(const conn_t *c);
void conn_set_ping_sent_at(conn_t *c, int64_t ms);

/* Metadata a connection hook attached (JSON text) or NULL. set takes
 * ownership of json (malloc'd; NULL clears). */
void conn_set_meta(conn_t *c, char *json, size_t len);
const char *conn_meta(const conn_t *c, size_t *len);

/* The user. */
const char *user_id(const user_t *u);
size_t user_conn_count(const user_t *u);
/* The user's connections: start with NULL. */
conn_t *user_next_conn(const user_t *u, conn_t *prev);

/* Send queue. Queues a reference to f (the caller keeps its own) and marks
 * c dirty so that the transport flushes it. Returns 0, or -ENOBUFS when the
 * queue would exceed the limit: then nothing is queued and the caller
 * closes c as a slow consumer. A closing connection silently drops f
 * (returns 0). No allocation once the queue has grown to its working
 * size. */
int conn_enqueue(conn_t *c, frame_t *f);
size_t conn_queue_bytes(const conn_t *c);
size_t conn_queue_len(const conn_t *c);
/* The i-th queued frame from the head (borrowed). */
frame_t *conn_queue_peek(const conn_t *c, size_t i);
/* Drops n frames from the head; they count as sent. */
void conn_queue_consume(conn_t *c, size_t n);
/* Drops every queued frame (they do not count as sent). */
void conn_queue_clear(conn_t *c);
/* Frees the queue's ring when it is empty: a queue that grew for a burst
 * (8 bytes a frame) does not stay that size, and an idle connection holds
 * none. The next conn_enqueue allocates it again. Returns the bytes
 * freed. Called from a timer, not as frames go: a busy queue keeps its
 * working size. */
size_t conn_queue_release(conn_t *c);
/* Drops every queued frame but the first keep (not counted as sent): a
 * frame partly written must still be finished. */
void conn_queue_truncate(conn_t *c, size_t keep);

/* Drops the ephemeral frames queued on c (frame.h) but the first keep
 * (a frame partly written must still be finished), keeping the order of
 * the rest; they do not count as sent. Returns how many were dropped.
 * For a connection that fell behind: what may go, goes first. */
size_t conn_queue_drop_ephemeral(conn_t *c, size_t keep);

/* Dirty list: connections with frames queued since the last flush. Each
 * connection is on it at most once. Returns the first and takes it off
 * the list, or NULL. */
conn_t *conns_pop_dirty(conns_t *cs);
int conns_has_dirty(const conns_t *cs);
/* Asks the CPU to fetch what the next conns_pop_dirty calls will touch:
 * the first dirty connection's queue head, and the registry entry of the
 * one after it. Returns the first one's transport handle, for the caller
 * to fetch as well, or NULL. A flush over 10,000 connections otherwise
 * waits on memory several times per connection; fetched one connection
 * ahead, that wait overlaps the previous connection's write. */
void *conns_prefetch_dirty(const conns_t *cs);
/* Puts c back on the dirty list (e.g. the socket had no room). */
void conns_mark_dirty(conns_t *cs, conn_t *c);

/* A user id is 1 to CONN_USER_ID_MAX of [A-Za-z0-9_.@-]; the characters
 * as people read them (hub.limits for scripts). */
#define CONN_USER_ID_MAX 64
#define CONN_USER_ID_CHARS "A-Z a-z 0-9 _ . @ -"

/* 1 when s[0..n) is a valid user id, 0 otherwise. */
int conns_valid_user_id(const char *s, size_t n);

#endif
