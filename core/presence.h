/* presence.h -- each user's status and who is watching it.
 *
 * A user is `online` from their first connection to their last; in
 * between, status_update can make them `away` or `busy`. Connections
 * subscribe to users (online or not); the hub sends every change to the
 * subscribers. A closed connection's subscriptions go with it. */
#ifndef LUAHUB_PRESENCE_H
#define LUAHUB_PRESENCE_H

#include <stddef.h>

#include "conn.h"

typedef enum presence_status {
    PRESENCE_OFFLINE = 0,
    PRESENCE_ONLINE,
    PRESENCE_AWAY,
    PRESENCE_BUSY,
} presence_status;

/* At most this many subscriptions per connection: a client cannot make
 * the server hold unbounded state. */
#define PRESENCE_MAX_SUBSCRIPTIONS 10000

typedef struct presence presence_t;

presence_t *presence_create(void);
void presence_destroy(presence_t *p);
/* Shrinks the tables once most users have gone (dict_shrink: not while
 * iterating). Returns the bytes freed. */
size_t presence_shrink(presence_t *p);

presence_status presence_get(const presence_t *p, const char *user_id);
/* Returns 1 when the status changed. PRESENCE_OFFLINE forgets the user.
 * The table keeps user_id itself, not a copy (a user is in it as long as
 * they are online, and there may be 15,000 of them): pass a string that
 * lives until the user is set offline, such as the user's own id
 * (user_id()). */
int presence_set(presence_t *p, const char *user_id, presence_status st);

/* Subscribes c to user_id's changes. Returns 0, or -ENOSPC when c is at
 * PRESENCE_MAX_SUBSCRIPTIONS. Subscribing twice is a no-op. */
int presence_subscribe(presence_t *p, conn_t *c, const char *user_id);
/* Forgets every subscription of c. Call before c is freed. */
void presence_conn_closed(presence_t *p, conn_t *c);
/* The same, calling unwatched(ctx, uid) for each user c was the last
 * watcher of (uid is valid for the call). */
void presence_conn_closed_each(presence_t *p, conn_t *c,
                               void (*unwatched)(void *ctx, const char *uid),
                               void *ctx);
/* Subscribers of user_id: start with *pos = 0; NULL at the end. */
conn_t *presence_next_subscriber(const presence_t *p, const char *user_id,
                                 size_t *pos);
size_t presence_subscriber_count(const presence_t *p, const char *user_id);

const char *presence_status_name(presence_status st);
/* Returns 0 and sets *st for "online", "away", "busy", "offline"; -EINVAL
 * otherwise. */
int presence_parse_status(const char *s, presence_status *st);

#endif
