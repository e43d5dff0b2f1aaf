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
} script_room_info;

typedef struct script_conn_info {
    const char *user_id; /* borrowed for the call */
    int64_t connected_at, last_activity;
    uint64_t messages_in, messages_out, bytes_in, bytes_out;
    char ip[64]; /* the client's address ("" when unknown: no ip field) */
} script_conn_info;

/* Called once per id by the listing functions; the string is borrowed for
 * the call. */
typedef void (*script_each_fn)(void *ctx, const char *id);

/* Makes the frame of a room message once its seq is known: returns a new
 * reference. */
typedef frame_t *(*script_stamp_fn)(void *ctx, uint64_t seq);

/* What the scripts may ask of the core. Every string is borrowed for the
 * call. Presence statuses are the presence_status values. */
typedef struct script_host {
    void *ud;
    /* Queues f (borrowed) on every target connection; returns how many. */
    size_t (*send)(void *ud, const script_target *t, frame_t *f);
    /* A room message, with one look-up of the room: when member is given
     * (may be NULL) and is not a member of room_id, or there is no such
     * room, -EPERM; with no member and no such room, -ENOENT. Otherwise
     * takes the room's next seq into *seq, queues stamp(ctx, *seq) on
     * every member connection and returns 0. */
    int (*publish)(void *ud, const char *room_id, const char *member,
                   script_stamp_fn stamp, void *ctx, uint64_t *seq);
    /* 1 joined, 0 already a member, -ENOENT the user has no connection. */
    int (*join)(void *ud, const char *room_id, const char *user_id);
    /* 1 was a member (and left), 0 was not. */
    int (*leave)(void *ud, const char *room_id, const char *user_id);
    int (*is_member)(void *ud, const char *room_id, const char *user_id);
    /* 0 and *out filled, or -ENOENT when there is no such room. */
    int (*room_info)(void *ud, const char *room_id, script_room_info *out);
    /* -ENOENT when there is no such room. */
    int (*room_members)(void *ud, const char *room_id, script_each_fn each,
                        void *ctx);
    void (*user_rooms)(void *ud, const char *user_id, script_each_fn each,
                       void *ctx);
    void (*online_users)(void *ud, script_each_fn each, void *ctx);
    /* -ENOENT when the user has no connection. */
    int (*user_connections)(void *ud, const char *user_id, script_each_fn each,
                            void *ctx);
    int (*presence_get)(void *ud, const char *user_id);
    /* 1 changed (subscribers told), 0 unchanged, -ENOENT user not
     * connected. */
    int (*presence_set)(void *ud, const char *user_id, int status);
    /* 0, or a negative errno when the connection is gone or at its
     * subscription cap. */
    int (*presence_subscribe)(void *ud, const char *conn_id,
                              const char *user_id);
    /* 0 and *out filled, or -ENOENT when there is no such connection. */
    int (*conn_info)(void *ud, const char *conn_id, script_conn_info *out);
    /* hub.store; kind is a store_scope_kind, scope a room or user id ("" for
     * global). get: the JSON text, borrowed for the call, or NULL. set: 0,
     * -ENOSPC value too large or scope full, -ENOENT no such room or user.
     * delete: 1 when the key existed. */
    const char *(*store_get)(void *ud, int kind, const char *scope,
                             const char *key, size_t *len);
    int (*store_set)(void *ud, int kind, const char *scope, const char *key,
                     const char *json, size_t len);
    int (*store_delete)(void *ud, int kind, const char *scope, const char *key);
} script_host;

typedef struct script_options {
    const char *lua_dir;     /* the runtime: lua/runtime.lua and friends */
    const char *scripts_dir; /* handlers: <dir>/<type>.lua, <dir>/lib */
    int unsafe;              /* 1: no sandbox (--unsafe-lua) */
    void *loop;              /* uv_loop_t for hub.after/every; NULL: none */
    double timeout_ms;       /* per call into Lua; 0: no limit */
    size_t memory_mb;        /* the state's memory cap; 0: LuaJIT's own */
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
 * In the last three cases the caller answers handler_error with env's id,
 * so that each frame gets exactly one answer. Answers from the runtime
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
