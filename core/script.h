/* script.h -- the bridge between the core and the Lua handlers.
 *
 * A script_t is one LuaJIT state with the runtime (lua/) and every handler
 * (scripts/<type>.lua) loaded. The core reaches the scripts through
 * script_dispatch; the scripts reach the core only through the
 * script_host table of functions below, which the hub fills and tests can
 * replace. Lua never holds a C pointer: connections, users and rooms are
 * named by their ids, and the host looks them up on every call.
 *
 * Reload is load-then-commit: the hub creates a new script_t beside the
 * old one and swaps only when it loaded completely.
 *
 * Failure is reported the one way throughout (script_host included): 0,
 * or a count, on success, a negative errno on failure; predicates return 1
 * or 0; a callback is never called when the call failed. script_int.h,
 * shared by the module's files, says more. */
#ifndef LUAHUB_SCRIPT_H
#define LUAHUB_SCRIPT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "envelope.h"
#include "frame.h"

typedef struct script script_t;

/* The messages of the handler_error answers the core writes itself, for a
 * frame whose call failed before the runtime could answer it. */
#define SCRIPT_MSG_TIMED_OUT "timed out"
#define SCRIPT_MSG_POISONED "scripts unavailable until they load again"
#define SCRIPT_MSG_FAILED "the handler failed"

typedef enum script_target_kind {
    SCRIPT_TO_CONN,  /* ids[0] is a connection id */
    SCRIPT_TO_USERS, /* ids are user ids (duplicates reach once) */
    SCRIPT_TO_ROOM,  /* ids[0] is a room id */
    SCRIPT_TO_ALL,
} script_target_kind;

typedef struct script_target {
    script_target_kind kind;
    const char *const *ids;
    size_t nids;
    const char *except_conn; /* may be NULL */
    const char *except_user; /* may be NULL */
} script_target;

typedef struct script_room_info {
    int64_t created_at;
    uint64_t message_count, seq;
    size_t members;
    const char *epoch; /* the room's sequence stream (borrowed, as the
                        * strings of the call or reply) */
} script_room_info;

/* A room's history as read by the host's history function; everything
 * borrowed for the call (waited: for the script_wake call). */
typedef struct script_history {
    const char *epoch;
    uint64_t seq;           /* the room's last seq (0: none yet) */
    frame_t *const *frames; /* the frames, oldest first, as delivered live */
    size_t n;
} script_history;

typedef struct script_conn_info {
    const char *user_id; /* borrowed for the call */
    int64_t connected_at, last_activity;
    uint64_t messages_in, messages_out, bytes_in, bytes_out;
    char ip[64]; /* the client's address ("" when unknown: no ip field) */
} script_conn_info;

/* A handler call waiting on the host (see "Waiting" below). */
typedef struct script_wait script_wait;

/* A page of a room's members (script_host.room_members): strings
 * borrowed for the call. */
typedef struct script_page {
    const char *after;  /* the page starts after this id; NULL: the first */
    size_t limit;       /* at most this many */
    const char *member; /* NULL, or a user who must be a member (-EPERM) */
} script_page;

/* Called once per id by the listing functions; the string is borrowed for
 * the call. */
typedef void (*script_each_fn)(void *ctx, const char *id);

/* Makes the frame of a room message once its seq is known: returns a new
 * reference. */
typedef frame_t *(*script_stamp_fn)(void *ctx, uint64_t seq);

/* What the scripts may ask of the core. Every string is borrowed for the
 * call. Presence statuses are the presence_status values.
 *
 * Waiting. The functions with a trailing script_wait *w may wait for the
 * host (a cluster's round trip) instead of answering at once: given a w,
 * such a function may return -EINPROGRESS, and then it owns w and later
 * answers through script_wake(w, reply) with what it would have returned
 * (and filled in) at once; until then the handler's coroutine is
 * suspended and the loop goes on. Given w == NULL the caller cannot wait
 * (on_connect, on_disconnect, a native C handler, luahub --check, a call
 * inside a function that cannot yield): a function that would need to
 * wait returns -EDEADLK instead (not -EWOULDBLOCK: on Linux that is
 * -EAGAIN), and the script gets an error saying that the call cannot wait
 * there. -EAGAIN, at once or in a reply, means
 * the cluster is unavailable (nothing was done): the script gets the
 * protocol error `unavailable`. Strings, stamp and ctx are borrowed for
 * the call only: a host that waits copies what it needs. A host that
 * answers at once (the hub's own, the null host, tests) ignores w. */
typedef struct script_host {
    void *ud;
    /* Queues f (borrowed) on every target connection; returns how many
     * (for users: how many connections it was delivered to). The answer
     * to the frame being dispatched goes to its own connection with w ==
     * NULL, and must not fail. */
    int (*send)(void *ud, const script_target *t, frame_t *f, script_wait *w);
    /* A room message, with one look-up of the room: when member is given
     * (may be NULL) and is not a member of room_id, or there is no such
     * room, -EPERM; with no member and no such room, -ENOENT. Otherwise
     * takes the room's next seq into *seq (waited: reply.seq), queues
     * stamp(ctx, *seq) on every member connection and returns 0. head is
     * the message's JSON before its stamp ("{" and its members, without a
     * trailing comma), for a host that stamps it elsewhere (Redis). */
    int (*publish)(void *ud, const char *room_id, const char *member,
                   script_stamp_fn stamp, void *ctx, const char *head,
                   size_t headlen, uint64_t *seq, script_wait *w);
    /* 1 joined, 0 already a member, -ENOENT the user has no connection.
     * *members: how many members the room has after the call (waited:
     * reply.members). */
    int (*join)(void *ud, const char *room_id, const char *user_id,
                size_t *members, script_wait *w);
    /* 1 was a member (and left), 0 was not; *members as for join (0 when
     * there is no such room). */
    int (*leave)(void *ud, const char *room_id, const char *user_id,
                 size_t *members, script_wait *w);
    int (*is_member)(void *ud, const char *room_id, const char *user_id,
                     script_wait *w);
    /* 0 and *out filled, or -ENOENT when there is no such room. The
     * member ids are wanted only while out->members is at most the
     * state's max_listed (script_options): answered at once, they come
     * from room_members (called with w == NULL, so it must answer at once
     * too); waited, from reply.ids (a host need not give them past
     * max_listed). */
    int (*room_info)(void *ud, const char *room_id, script_room_info *out,
                     script_wait *w);
    /* A room's history, with one look-up of the room (so that the
     * membership, the seq and the frames are of one moment: a member gets
     * every frame after out->seq live): -EPERM when member is given (may
     * be NULL) and is not a member of room_id, or there is no such room;
     * with no member and no such room, -ENOENT. Otherwise 0 and *out: the
     * room's epoch and seq and its kept frames (the room's chat frames
     * with a seq, each the frame delivered live): with since >= 0 the
     * first `limit` whose seq is greater than since, with since < 0 the
     * newest `limit`. epoch (may be NULL) is the epoch since belongs to:
     * a since past the seq of the room's own epoch proves that the room's
     * store lost writes (Redis came back with older data), and the host
     * then gives the room a new epoch. Waited: reply.history. */
    int (*history)(void *ud, const char *room_id, const char *member,
                   int64_t since, size_t limit, const char *epoch,
                   script_history *out, script_wait *w);
    /* The listings call each once per id when they answer at once, and
     * give reply.ids when they waited. -ENOENT when there is no such room
     * (no such user). room_members with page NULL: every member, in no
     * order; with a page: at most page->limit members whose ids come
     * after page->after (NULL: from the first) in byte order, in that
     * order, at a cost that does not grow with the room (O(log n +
     * limit)); -EPERM when page->member is given and is not a member (or
     * there is no such room). */
    int (*room_members)(void *ud, const char *room_id, const script_page *page,
                        script_each_fn each, void *ctx, script_wait *w);
    int (*user_rooms)(void *ud, const char *user_id, script_each_fn each,
                      void *ctx, script_wait *w);
    int (*online_users)(void *ud, script_each_fn each, void *ctx,
                        script_wait *w);
    int (*user_connections)(void *ud, const char *user_id, script_each_fn each,
                            void *ctx, script_wait *w);
    int (*presence_get)(void *ud, const char *user_id, script_wait *w);
    /* 1 changed (subscribers told), 0 unchanged, -ENOENT user not
     * connected. */
    int (*presence_set)(void *ud, const char *user_id, int status,
                        script_wait *w);
    /* Subscribes conn_id to the presence of the n user_ids, in order, and
     * fills statuses_out[i] with each one's status (waited:
     * reply.statuses). 0, or a negative errno when the connection is gone
     * or at its subscription cap (those before stay subscribed). */
    int (*presence_subscribe)(void *ud, const char *conn_id,
                              const char *const *user_ids, size_t n,
                              int *statuses_out, script_wait *w);
    /* 0 and *out filled, or -ENOENT when there is no such connection.
     * Never waits (a node knows its own connections). */
    int (*conn_info)(void *ud, const char *conn_id, script_conn_info *out);
    /* hub.store; kind is a store_scope_kind, scope a room or user id ("" for
     * global). get: 0 with *json the JSON text (borrowed for the call) and
     * *len, or *json NULL when there is none (waited: reply.json/len).
     * set: 0, -ENOSPC value too large or scope full, -ENOENT no such room
     * or user. delete: 1 when the key existed. */
    int (*store_get)(void *ud, int kind, const char *scope, const char *key,
                     const char **json, size_t *len, script_wait *w);
    int (*store_set)(void *ud, int kind, const char *scope, const char *key,
                     const char *json, size_t len, script_wait *w);
    int (*store_delete)(void *ud, int kind, const char *scope, const char *key,
                        script_wait *w);
    /* Optional (NULL: not told): the frame being dispatched (or whose
     * call waited) was just answered with an error of code (borrowed for
     * the call), for the metrics. Must not call back into the scripts. */
    void (*answered_error)(void *ud, const char *code);
} script_host;

/* What a host call that waited answers with (script_wake); strings are
 * borrowed for the script_wake call. */
typedef struct script_reply {
    int rc;       /* what the call would have returned at once: 0, a count, 1/0,
                   * or a negative errno */
    uint64_t seq; /* publish: the seq taken */
    size_t members;        /* join, leave: the room's members after the call */
    script_room_info room; /* room_info */
    /* listings (room_members, user_rooms, online_users, user_connections,
     * room_info's members) */
    const char *const *ids;
    size_t nids;
    const int *statuses; /* presence_subscribe: the status of each id asked,
                          * in the order asked */
    const char *json;    /* store_get: the value (NULL: none) */
    size_t len;
    script_history history; /* history */
} script_reply;

/* The connection id of the call w belongs to ("" for a timer, or for a
 * call that is already over: nothing to run after it). Valid until
 * script_wake; also inside the host function given w, before it waits. */
const char *script_wait_conn(const script_wait *w);

/* Completes a host call that returned -EINPROGRESS (exactly once per such
 * call): the handler resumes with r, as if the call had returned r at
 * once; it runs guarded like any call (its time limit counts this run
 * only). Frees w. Returns 1 when the call (the whole handler run) is now
 * over (answered), 0 when it waits again on another host call (which was
 * given a w of its own: this one is gone either way). Works on a state that
 * is no longer the hub's current one (reloaded since) and on a poisoned
 * state (the frame is then answered handler_error, in C, and it returns
 * 1).
 *
 * Never call it while a script call is running: from inside a script_host
 * function, or from anything such a function runs synchronously (a hiredis
 * callback that redisAsyncFree or redisAsyncDisconnect fires from inside
 * a host function, say). Then it does nothing and returns -EBUSY: w stays
 * the caller's, to wake later from the loop. */
int script_wake(script_wait *w, const script_reply *r);

/* How many handler calls of s are waiting (a state with waiting calls must
 * not be destroyed: script_destroy frees them, and the host must not wake
 * them after). */
size_t script_waiting(const script_t *s);

typedef struct script_options {
    const char *lua_dir;     /* the runtime: lua/runtime.lua and friends */
    const char *scripts_dir; /* handlers: <dir>/<type>.lua, <dir>/lib */
    int unsafe;              /* 1: no sandbox (--unsafe-lua) */
    void *loop;              /* uv_loop_t for hub.after/every; NULL: none */
    double timeout_ms;       /* per call into Lua; 0: no limit */
    size_t memory_mb;        /* the state's memory cap; 0: LuaJIT's own */
    /* --max-listed-members: hub.room_info lists a room's members only up
     * to this many (hub.limits.max_listed_members). */
    size_t max_listed;
} script_options;

/* Loads the runtime and every handler into a new state. Returns NULL when
 * anything fails to load, with the reason (file:line where known) in err.
 * host is borrowed and must outlive the script_t. */
script_t *script_create(const script_options *opt, const script_host *host,
                        char *err, size_t errlen);
void script_destroy(script_t *s);

/* A host with no connections, rooms or users: every send reaches nobody,
 * every lookup finds nothing. For loading scripts outside a server
 * (luahub --check). */
const script_host *script_null_host(void);

/* At a reload, before `from` is destroyed: moves from's named timers
 * (hub.after(ms, "module.function", arg)) to `to`, keeping their ids and
 * schedules, and cancels its timers that call a function (a closure of
 * from's state cannot move). Says how many of each. */
void script_adopt_timers(script_t *to, script_t *from, size_t *kept,
                         size_t *cancelled);

/* Why the state should be replaced by a fresh one before its next call,
 * or NULL when it is fine: a call ran past its time limit in compiled
 * code or a C function and was abandoned mid-way (script_destroy then
 * closes the state, giving its memory back, if the call was left in
 * compiled code; one left in a C function may be inconsistent and is
 * given up unclosed), or a call
 * ran into the memory cap and a full collection left it nearly full (the
 * scripts hold on to what they allocated, so every call would fail). */
const char *script_unhealthy(const script_t *s);

/* Bytes the state's allocator holds (counted only under a memory cap;
 * otherwise LuaJIT's own count). */
size_t script_memory(const script_t *s);

/* Handler types loaded, sorted, comma-separated (for the logs). */
const char *script_types(const script_t *s);
size_t script_count(const script_t *s);

/* The lifecycle hooks loaded, in the order on_connect, on_message,
 * on_disconnect, ", "-separated ("" when none). */
const char *script_hooks(const script_t *s);

/* NULL, or a sentence naming the Lua files in the scripts' hooks/
 * directory that are not a hook (a misspelled hooks/on_connct.lua) and the
 * hooks there are. Such files are not loaded: the server warns, luahub
 * --check fails. */
const char *script_stray_hooks(const script_t *s);

/* Checks the client frame json[0..len) against the protocol's envelope
 * (envelope_parse's rules, into *env) and, in the same pass over it,
 * decodes it into the table the handler gets; then runs the handler for
 * its type on behalf of conn_id/user_id, and the reply (ack or error) is
 * sent through the host. meta is the connection's metadata (JSON) or NULL.
 * Returns:
 *    0          the handler ran (or failed and was answered);
 *   -EINVAL     nothing answered the frame and env says why: the envelope
 *               check failed, or no handler has its type (after the
 *               on_message hook, which may change it: envelope_set_no_
 *               handler); the caller answers with envelope_code(status)
 *               and env->message, the one place unknown_type is answered;
 *   -ETIMEDOUT  the call had to be abandoned (timed out in compiled code
 *               or a C function: the state is now poisoned); no reply;
 *   -EAGAIN     the state was already poisoned; no reply;
 *   -EIO        the runtime itself failed (out of memory outside a
 *               handler, say) before answering; no reply.
 *   -EINPROGRESS the handler is waiting on the host: its answer comes
 *               through a later script_wake (the caller runs this
 *               connection's next messages only after that call is over);
 * In the three cases before it the caller answers handler_error with env's
 * id, so that each frame gets exactly one answer. Answers from the runtime
 * carry env->id_json as the client wrote it (the runtime's answer).
 * The caller clears env (envelope_clear) in every case. */
int script_dispatch(script_t *s, const char *conn_id, const char *user_id,
                    const char *json, size_t len, const char *meta,
                    size_t metalen, envelope_t *env);

/* Runs the on_connect hook, if any. Returns 1 to accept (with the hook's
 * metadata, if it returned a table, appended to meta as JSON) or 0 to
 * refuse, with the reason in reason. A hook that fails refuses. */
int script_on_connect(script_t *s, const char *conn_id, const char *user_id,
                      buf_t *meta, char *reason, size_t reasonlen);
/* Runs the on_disconnect hook, if any, with the close code. */
void script_on_disconnect(script_t *s, const char *conn_id, const char *user_id,
                          int code, const char *meta, size_t metalen);

/* The JSON encoding the scripts use, for C callers and tests: encodes the
 * Lua value at idx into b. Returns 0, or -EINVAL with a message pushed on
 * the stack. */
struct lua_State;
int script_encode(struct lua_State *L, int idx, buf_t *b);

#endif
