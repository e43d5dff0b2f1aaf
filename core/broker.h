/* broker.h -- several nodes as one server, over Redis (--redis).
 *
 * The broker is what a node shares with the others: the rooms (members,
 * seq, epoch), who is online where, presence, hub.store, and the frames
 * that cross nodes. Redis holds the shared state; pub/sub carries frames
 * and changes to the nodes that need them; each atomic step (a room
 * publish with its seq, a join, a connection's open and close, the reaping
 * of a dead node) is one Lua script in Redis, so every room has one order.
 * docs/scaling.md says what lives where and what each failure does.
 *
 * Everything here is asynchronous, on the server's libuv loop: a request
 * returns 0 and calls its callback once later with the answer, or returns
 * -EAGAIN at once (Redis is not reachable: the callback is never called).
 * A request whose answer does not come within the command timeout fails
 * with -EAGAIN too: the connection is then dropped and made again. Nothing
 * blocks the loop, ever: names are resolved with uv_getaddrinfo.
 *
 * hiredis is used only inside the broker's files (broker*.c). */
#ifndef LUAHUB_BROKER_H
#define LUAHUB_BROKER_H

#include <stddef.h>
#include <stdint.h>

typedef struct broker broker_t;

/* Where Redis is: redis://[:password@]host[:port][/db], or a unix socket
 * (a path, or unix://path). */
typedef struct broker_url {
    char host[256]; /* "" for a unix socket */
    int port;
    char path[256]; /* the unix socket, or "" */
    char password[256];
    int db;
} broker_url;

/* Parses s into *out: 0, or -EINVAL with a sentence in err. Pure. */
int broker_parse_url(const char *s, broker_url *out, char *err, size_t errlen);

/* 1 when id may name a node (1 to 64 of [A-Za-z0-9_.-]). */
int broker_valid_node_id(const char *id);

/* The answer to a request. Strings are borrowed for the callback. */
typedef struct broker_reply {
    int rc;           /* >= 0: the answer (a count, a flag); < 0: -EAGAIN (Redis
                         unreachable or too slow: nothing was done that the caller
                         can count on), -EPERM (not a member), -ENOENT (no such
                         room) */
    int64_t v[4];     /* numbers; each request says which */
    const char *str;  /* a string (an epoch, a stored value), or NULL */
    size_t len;       /* its length */
    const char **ids; /* a list of ids, for listings */
    size_t nids;
    const size_t *lens; /* history: the length of each of ids (frames) */
} broker_reply;

typedef void (*broker_fn)(void *ctx, const broker_reply *r);

/* What reaches this node from the others (and from itself: in cluster
 * mode every frame to a room, a user or everyone goes through Redis, so
 * that every node delivers them in one order). */
typedef enum broker_msg_kind {
    BROKER_FRAME,    /* json is a frame for the target's local recipients */
    BROKER_JOINED,   /* user joined room (on the room's or user's channel) */
    BROKER_LEFT,     /* user left room */
    BROKER_PRESENCE, /* user's status is now status */
} broker_msg_kind;

typedef enum broker_scope {
    BROKER_ROOM,   /* target: a room id */
    BROKER_USER,   /* target: a user id */
    BROKER_CONN,   /* target: a connection of this node */
    BROKER_ALL,    /* target: "" */
    BROKER_STATUS, /* a user's presence (only to watch): target a user id */
} broker_scope;

typedef struct broker_msg {
    broker_msg_kind kind;
    broker_scope scope;
    const char *target; /* room, user or connection id (NUL-terminated) */
    const char *user;   /* JOINED, LEFT, PRESENCE: the user */
    const char *room;   /* JOINED, LEFT: the room */
    const char *status; /* PRESENCE: online, away, busy, offline */
    const char *except_conn, *except_user; /* FRAME: NULL, or who not */
    const char *json;                      /* FRAME */
    size_t len;
    int ephemeral; /* FRAME: its delivery class (frame.h) */
    uint64_t seq;  /* FRAME to a room: the chat's seq (0: a frame without) */
} broker_msg;

typedef struct broker_events {
    void *ud;
    void (*message)(void *ud, const broker_msg *m);
    /* The node can serve (1: both connections up, subscribed, this node's
     * users registered) or cannot (0). */
    void (*ready)(void *ud, int ready);
    /* Redis is reachable again (or for the first time): the hub registers
     * what it holds with broker_sync. */
    void (*resync)(void *ud);
} broker_events;

typedef struct broker_options {
    broker_url url;
    const char *node_id;
    int presence_ttl_ms; /* how long a dead node's users stay online */
    /* --presence-grace: how long a user whose last connection anywhere
     * closed stays online and in their rooms, waiting for one to come
     * back (on any node); 0: gone at once. */
    int presence_grace_ms;
    int command_timeout_ms; /* a command not answered by then: Redis lost */
    /* --history-size and --history-ttl: what each room's stream keeps
     * (frames, ms), and how long a room left empty keeps its seq, epoch
     * and stream. */
    long history_size;
    long long history_ttl_ms;
    /* --max-listed-members: a user gone for good (its last connection
     * closed, its node dead, its grace over) is announced (user_left)
     * only in rooms that had at most this many members, the user
     * included; and room_info lists only that many. */
    long max_listed;
} broker_options;

/* Starts connecting (and keeps reconnecting, with backoff); events are
 * borrowed for the broker's life. loop is a uv_loop_t. */
broker_t *broker_create(void *loop, const broker_options *opt,
                        const broker_events *ev);
/* For a graceful exit, once the node's connections are closed (their
 * goodbyes sent): deletes the node's heartbeat, so that the other nodes
 * reap whatever Redis still holds of it at once, lets what was sent go
 * out (at most a second), and closes every handle so that the loop can
 * end. */
void broker_shutdown(broker_t *b);
/* Frees the broker; callbacks still pending get -ECANCELED. Without
 * broker_shutdown first, the loop must run once more to close its
 * handles. */
void broker_destroy(broker_t *b);

int broker_ready(const broker_t *b);
/* Why the node is not ready (for /readyz and the logs), or "". */
const char *broker_why(const broker_t *b);
const char *broker_node_id(const broker_t *b);

/* ---- subscriptions: counted, a channel is subscribed while counted ---- */

/* Counts one more interest in scope/id's channel. Returns 1 when the
 * subscription is confirmed already (fn not called), 0 when fn will be
 * called (rc 0 once confirmed, -EAGAIN if the connection drops first),
 * -EAGAIN when Redis is not reachable (the interest is counted all the
 * same, and subscribed when it is back). fn may be NULL. */
int broker_watch(broker_t *b, broker_scope scope, const char *id, broker_fn fn,
                 void *ctx);
/* One interest less; unsubscribed at zero. */
void broker_unwatch(broker_t *b, broker_scope scope, const char *id);

/* ---- requests ----------------------------------------------------------- */

/* A room chat: when member is given and is not a member, -EPERM; with no
 * member and no such room, -ENOENT; otherwise takes the room's next seq
 * and publishes head "seq":<seq> tail to the room (head is the frame's
 * JSON up to the seq, with its comma; tail the rest). v[0] = seq; str =
 * the room's epoch. */
int broker_publish(broker_t *b, const char *room, const char *member,
                   const char *head, size_t headlen, const char *tail,
                   size_t taillen, broker_fn fn, void *ctx);
/* A frame to a room's, a user's, a connection's or every connection;
 * except_conn / except_user may be NULL; ephemeral: its class, delivered
 * with it (broker_msg). rc = how many nodes it went to. */
int broker_send(broker_t *b, broker_scope scope, const char *id,
                const char *except_conn, const char *except_user,
                const char *json, size_t len, int ephemeral, broker_fn fn,
                void *ctx);
/* A frame to every connection of each user (ids distinct) but except_user
 * (may be NULL) and except_conn (may be NULL; not counted: it is one of
 * xconn_user's connections). rc = how many connections it reached, on
 * every node. */
int broker_send_users(broker_t *b, const char *const *ids, size_t n,
                      const char *except_conn, const char *xconn_user,
                      const char *except_user, const char *json, size_t len,
                      int ephemeral, broker_fn fn, void *ctx);
/* rc 1 joined, 0 already a member. v = {seq, members, created_at}; str =
 * epoch. */
int broker_join(broker_t *b, const char *room, const char *user, broker_fn fn,
                void *ctx);
/* rc 1 left, 0 was not a member. v[0] = the members after. */
int broker_leave(broker_t *b, const char *room, const char *user, broker_fn fn,
                 void *ctx);
/* rc 1 or 0. */
int broker_is_member(broker_t *b, const char *room, const char *user,
                     broker_fn fn, void *ctx);
/* rc 0, or -ENOENT. v = {created_at, message_count, seq, member count};
 * str = epoch; ids = the members, only while there are at most
 * max_listed of them (none otherwise: they are not even read). */
int broker_room_info(broker_t *b, const char *room, broker_fn fn, void *ctx);
/* A room's kept frames, as hub.history reads them (script.h): -EPERM
 * when member is given (may be NULL) and is not one, -ENOENT when there
 * is no such room; otherwise v[0] = the room's seq, str = its epoch, ids
 * (lens) = the frames, oldest first: with since >= 0 the first limit
 * after since, else the newest limit (limit at most the history size),
 * in one step with the seq. epoch (may be NULL): the epoch the caller's
 * since belongs to; when it is the room's and since is past its seq, the
 * room gets a new epoch (Redis lost writes). */
int broker_history(broker_t *b, const char *room, const char *member,
                   int64_t since, size_t limit, const char *epoch, broker_fn fn,
                   void *ctx);
/* ids: the room's members (-ENOENT when none). */
int broker_room_members(broker_t *b, const char *room, broker_fn fn, void *ctx);
/* ids: at most limit (SIZE_MAX: all) of the room's members after the id
 * after (NULL: from the first), in byte order; -EPERM when member is
 * given (may be NULL) and is not one, -ENOENT when there is no such
 * room. O(log n + limit) in Redis. */
int broker_room_page(broker_t *b, const char *room, const char *member,
                     const char *after, size_t limit, broker_fn fn, void *ctx);
/* ids: the user's rooms. */
int broker_user_rooms(broker_t *b, const char *user, broker_fn fn, void *ctx);
/* ids: the users with a connection on any node. */
int broker_online_users(broker_t *b, broker_fn fn, void *ctx);
/* ids: the user's connection ids on every node. */
int broker_user_conns(broker_t *b, const char *user, broker_fn fn, void *ctx);
/* rc 1 changed (the user's watchers told), 0 unchanged, -ENOENT offline. */
int broker_presence_set(broker_t *b, const char *user, const char *status,
                        broker_fn fn, void *ctx);
/* ids[i]: the status of users[i] (offline when not online anywhere). */
int broker_presence_get(broker_t *b, const char *const *users, size_t n,
                        broker_fn fn, void *ctx);
/* hub.store. kind: 0 global, 1 room, 2 user (store_scope_kind); scope ""
 * for global. get: str (NULL: none). set: rc 0, -ENOENT no such room or
 * user online. delete: rc 1 when it was there. */
int broker_store_get(broker_t *b, int kind, const char *scope, const char *key,
                     broker_fn fn, void *ctx);
int broker_store_set(broker_t *b, int kind, const char *scope, const char *key,
                     const char *json, size_t len, broker_fn fn, void *ctx);
int broker_store_delete(broker_t *b, int kind, const char *scope,
                        const char *key, broker_fn fn, void *ctx);

/* ---- this node's users -------------------------------------------------- */

/* A connection opened here: rc 1 when the user was online nowhere before;
 * ids: the user's rooms (to mirror). */
int broker_conn_open(broker_t *b, const char *conn, const char *user,
                     broker_fn fn, void *ctx);
/* A connection closed here: on the user's last connection anywhere, the
 * user leaves every room (user_left to the others) and goes offline, at
 * once or, with a presence grace, at the first reap (of any node) after
 * it unless a connection of theirs opened meanwhile. fn may be NULL. */
int broker_conn_close(broker_t *b, const char *conn, const char *user,
                      broker_fn fn, void *ctx);

/* After resync: what this node holds, so that Redis agrees with it (a
 * Redis that lost its data gets it back). conns[i] belongs to users[i];
 * memberships: the local users' rooms (pairs user, room); statuses: the
 * local users' statuses other than online (pairs user, status). The node
 * is ready once it is done. */
typedef struct broker_state {
    const char **conns, **conn_users;
    size_t nconns;
    const char **member_users, **member_rooms;
    size_t nmembers;
    const char **status_users, **statuses;
    size_t nstatuses;
} broker_state;
void broker_sync(broker_t *b, const broker_state *st);

#endif
