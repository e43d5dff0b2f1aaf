/* script_int.h -- what the files of the script module share.
 *
 * The module is seven files, one concern each, and they call only down:
 *
 *   script.c        creating, reloading and dispatching: the public API of
 *                   script.h, the loading of lua/runtime.lua;
 *   script_timer.c  hub.after / hub.every / hub.cancel on libuv;
 *   script_store.c  the runtime's side of hub.store;
 *   script_api.c    the rest of the `hub` table scripts get (sending,
 *                   rooms, presence, connections, limits), one injector per
 *                   area, and the runtime's answer, log and set_fail;
 *   script_wait.c   calls that wait on the host: the per-call record,
 *                   script_wake, and the runtime's resume and reply;
 *   script_json.c   JSON to and from Lua values (and hub.encode/decode);
 *   script_guard.c  the memory cap, the watchdog and the guarded call.
 *
 *   script.c -> script_timer.c, script_store.c -> script_api.c
 *            -> script_wait.c -> script_json.c -> script_guard.c
 *   (a file may skip a level down, never call up: script_timer.c calls
 *   script_json.c and script_guard.c; script_store.c calls script__fail.)
 *
 * Nothing here is seen outside core/script*.c.
 *
 * Reporting failure, in every function of this family (the public ones of
 * script.h and the script_host the hub fills in included): 0, or a count,
 * on success, and a negative errno on failure, each said in the contract
 * (-ENOENT no such room or user, -EPERM not a member, -ENOSPC too large or
 * full, -EINVAL bad input, -ETIMEDOUT a call abandoned past its time
 * limit, -ENOMEM out of memory). Predicates (is_, has_, valid_) return 1
 * or 0. A function that takes a callback never calls it when it fails.
 * The lua_CFunctions the scripts call raise Lua errors, as Lua requires:
 * a plain error for a mistake in the script (handler_error), a protocol
 * error through protocol.fail (script__fail) for what the client asked. */
#ifndef LUAHUB_SCRIPT_INT_H
#define LUAHUB_SCRIPT_INT_H

#include <lauxlib.h>
#include <lua.h>
#include <stddef.h>

#include "buf.h"
#include "json.h"
#include "script.h"

/* The top-level keys of a client frame that script_dispatch's decoder
 * pushes from references: type, id, room_id, to, payload. */
#define SCRIPT_KEYS 5
/* How many idle coroutines a state keeps (script_wait.c). */
#define SCRIPT_IDLE_MAX 16

typedef struct script_timer script_timer_t;

/* Pushes the results of a host call (the at-once answer, or the reply of
 * one that waited) with the call's own arguments at 1..n; raises as the
 * function raises for what the reply says. Returns how many it pushed. */
typedef int (*script_push_fn)(lua_State *L, const script_reply *r);

/* What a call is, for its end (script_wait.c). */
enum script_call_kind { SCRIPT_CALL_MESSAGE, SCRIPT_CALL_TIMER };

/* Ids collected from the host (borrowed for the call), before they are
 * pushed as a sorted array. */
typedef struct script_idlist {
    const char **ids;
    size_t len, cap;
} script_idlist;

struct script {
    lua_State *L;
    void *loop; /* uv_loop_t for timers; NULL: none */
    double timeout_ms;
    size_t max_listed; /* script_options.max_listed */
    int poisoned;
    int closable; /* poisoned, but left in compiled code: lua_close is safe */
    script_timer_t *timers;
    size_t ntimers;
    int timer_ref;      /* the runtime's runner of named timers */
    int timer_call_ref; /* the runtime's timer body (fn, name, arg) */
    const script_host *host;
    int dispatch_ref, connect_ref, disconnect_ref;
    int has_connect_hook, has_disconnect_hook;
    int lazy; /* payloads decoded lazily (core.set_lazy: the sandbox is on) */
    int array_mt_ref; /* the metatable that marks a JSON array */
    int fail_ref;     /* protocol.fail */
    /* The frame being dispatched, for the length of script_dispatch only
     * (borrowed from the caller): the connection it came on and its id as
     * the client wrote it (NULL: none). The runtime's answer reads them. */
    const char *call_conn, *call_id;
    size_t call_id_len;
    int answered; /* the frame has had its answer */
    /* Waiting (script_wait.c). What is running: its kind, a label for the
     * log (a timer's), the coroutine it runs in (set by core.resume), and
     * its record once it has waited (NULL: it has not). */
    int call_kind;
    const char *call_label;
    lua_State *call_L;
    script_wait *call;
    script_wait *spare; /* the record the next call's first wait takes */
    script_wait *waits; /* every record the host holds, or a call owns */
    size_t nwaiting;
    const char *where; /* why a call outside a coroutine cannot wait */
    /* The envelope's keys as Lua strings (script__key_refs): the decoder
     * pushes them from here, not interned again for every frame. */
    int key_ref[SCRIPT_KEYS];
    int worker_ref; /* the runtime's worker, the body of its coroutines */
    int idle_ref;   /* the idle coroutines' anchors (script_wait.c) */
    int nidle;
    lua_State *idle_co[SCRIPT_IDLE_MAX + 1];
    const script_reply *reply; /* the reply of a script_wake, for its run */
    script_push_fn reply_push;
    size_t count;
    char *types;
    char *hooks;       /* the hooks loaded, ", "-separated */
    char *stray_hooks; /* what is wrong with files in hooks/, or NULL */
    /* The memory cap (script_guard.c); mem_limit 0: none. */
    lua_Alloc base_alloc;
    void *base_ud;
    size_t mem_used, mem_limit, mem_allowed;
    int mem_refused; /* an allocation was refused during this call */
    int exhausted;   /* still nearly full after a full collection */
    /* Scratch for listing ids: owned here, not by the call, so that a Lua
     * error raised while pushing them (out of memory) leaks nothing. */
    script_idlist ids;
};

/* The script_t a C function of the API was registered with. */
static inline script_t *script__self(lua_State *L) {
    return lua_touserdata(L, lua_upvalueindex(1));
}

/* ---- script_guard.c ----------------------------------------------------- */

/* 1 while a guarded call runs (in any state): script_wake must not start
 * another one then. */
int script__in_call(void);

/* Caps the state's memory at mb megabytes (0: no cap). */
void script__guard_cap(script_t *s, size_t mb);

/* lua_pcall under the time limit and the memory cap. Returns 0; -EINVAL
 * when the call raised (the error value on top, as lua_pcall leaves it);
 * -ENOMEM when it ran out of memory (likewise); or -ETIMEDOUT when it had
 * to be abandoned past its time limit (s is then poisoned, and nothing is
 * pushed). */
int script__pcall(script_t *s, int nargs, int nresults, int msgh);
/* lua_resume(co, nargs) under the same guard: lua_resume's status, or
 * -ETIMEDOUT as above. */
int script__guard_resume(script_t *s, lua_State *co, int nargs);

/* Sets the functions of funcs (NULL-terminated) into the table at idx, each
 * with s as its first upvalue (script__self), through a wrapper that tells
 * the watchdog the call is in C code. */
void script__register(lua_State *L, script_t *s, int idx,
                      const luaL_Reg *funcs);

/* Loading may have loaded C modules (cjson): tells the watchdog their code
 * is not compiled Lua. */
void script__guard_code_changed(void);

/* Closes s's state, unless a call abandoned in a C function left it unsafe
 * to close (its memory is then given up). */
void script__guard_close(script_t *s);

/* ---- script_json.c ------------------------------------------------------ */

/* Builds Lua values from JSON events: the sink of envelope_parse_tee and
 * json_parse. The top-level value is left on the stack. */
typedef struct script_decoder {
    lua_State *L;
    int array_mt_ref;
    int depth;
    /* A client frame's decoder (script_dispatch): key_ref, the state's
     * envelope keys (NULL: pushed as read); type_slot, the stack slot that
     * gets the top-level `type` string (0: none). at_type: the top-level
     * key just read is "type". */
    const int *key_ref;
    int type_slot, at_type;
    /* With lazy set (a client frame for a handler), the top-level
     * `payload` object is not decoded: it becomes a lazy table holding the
     * client's text (see script_json.c). at_payload: the top-level key
     * just read is "payload". */
    int lazy, at_payload;
    /* Per open container: 0 object, 1 array; and the next array index. */
    unsigned char is_array[JSON_MAX_DEPTH + 2];
    int index[JSON_MAX_DEPTH + 2];
} script_decoder;

extern const json_sink script__decoder_sink;

/* Makes s's key_ref (SCRIPT_KEYS). */
void script__key_refs(script_t *s);

void script__decoder_init(script_decoder *d, script_t *s);

/* Pushes json[0..len) decoded on L (s's main thread, or the coroutine a C
 * function runs in). Returns 0, or -EINVAL with the stack as it was and
 * the reason in err. */
int script__decode(script_t *s, lua_State *L, const char *json, size_t len,
                   json_error *err);

/* Appends the Lua value at idx (absolute) to b as JSON. Returns 0, or
 * -EINVAL with a message pushed (b then holds part of the value). */
int script__encode(lua_State *L, int idx, buf_t *b, int array_mt_ref);

/* Appends the table at idx's fields as "key":value pairs, without braces,
 * each after a comma unless *first (which it clears); keys listed in skip
 * (NULL-terminated, or NULL) are left out. depth is the table's. Returns
 * as script__encode. */
int script__encode_members(lua_State *L, int idx, buf_t *b, int depth,
                           int array_mt_ref, int *first,
                           const char *const *skip);

/* The injectors (script_api.c, and one each in script_json.c,
 * script_store.c and script_timer.c): each sets the C functions (and
 * values) of one area into the table at hub, the table every script gets
 * as `require "hub"`, or, for what only the runtime may call, into the
 * table at core, which C hands to lua/runtime.lua as an argument and
 * nothing puts anywhere a script can reach. A C function reaches scripts
 * only through these. hub and core are stack indices; the stack is left
 * as it was. */

/* hub.encode, hub.decode, hub.null; core.set_array_mt, and the lazy
 * payloads' core.lazy_raw, core.materialize and core.set_lazy. */
void script__inject_json(lua_State *L, script_t *s, int hub, int core);

/* ---- script_history.c --------------------------------------------------- */

/* hub.history, and the raw frames it returns with {raw = true}. */
void script__inject_history(lua_State *L, script_t *s, int hub);
/* When the value at idx is hub.history's raw frames: writes them into b
 * as a JSON array of the frames' own text and returns 1; 0 otherwise. */
int script__encode_frames(lua_State *L, int idx, buf_t *b);

/* ---- script_wait.c ------------------------------------------------------ */

/* What a C function that may wait passes the host: the current call's
 * record (one it has not handed out yet), or NULL when the call cannot
 * wait here (outside a call's coroutine, inside a function that cannot
 * yield, or on a coroutine of the script's own). */
script_wait *script__wait_slot(lua_State *L);

/* After the host returned -EINPROGRESS for w (from script__wait_slot):
 * the record keeps the call's context, push will push the reply, and the
 * marker the runtime's wrapper yields is pushed. Returns 1 (pushed). */
int script__wait_begin(lua_State *L, script_wait *w, script_push_fn push);

/* For a call that waits on a list of n items (presence_subscribe): the
 * reply it gets at the wake has nids = n, whatever the host put there. */
void script__wait_asked(script_wait *w, size_t n);

/* Raises what a host failure that is the cluster's says: -EAGAIN is the
 * protocol error unavailable, -EDEADLK (or -EINPROGRESS where the call
 * could not wait) a plain error that the running function cannot wait
 * here. Returns 0 for any other rc. */
int script__host_failed(lua_State *L, int rc);
/* script__host_failed, and a plain error for any other rc (a failure no
 * push routine expects: the host's bug). Does not return. */
int script__host_error(lua_State *L, int rc);

/* What the C functions that may wait end with: the host's answer r at once
 * is pushed by push; -EINPROGRESS (with a record w given) makes the call
 * wait (script__wait_begin), and push pushes the reply at the wake. */
int script__reply_or_wait(lua_State *L, script_wait *w, const script_reply *r,
                          script_push_fn push);
/* A push routine: r->rc as a boolean. */
int script__push_bool(lua_State *L, const script_reply *r);

/* Runs a call in a coroutine: the body and its nargs arguments on top of
 * the stack (a message's dispatch, a timer's call) start in an idle
 * coroutine of the runtime's (script__start), or the coroutine on top, a
 * call that waited, goes on (script__resume). Either returns as
 * script__pcall would have for the runtime's two results: 0 with the
 * body's first two results on the stack, or with the wait marker and the
 * coroutine when the call waits; an error code with the error on top. */
int script__start(script_t *s, int nargs);
int script__resume(script_t *s);

/* The end of a run of a call (its start or a resume), with rc what
 * script__pcall returned and, when 0, the runtime's two results on the
 * stack. Returns 1 when the call now waits (its record keeps the
 * coroutine), 0 when it is over (its record, if any, is freed, or, when the
 * host still holds it, left for script_wake to free). */
int script__run_end(script_t *s, int rc);

/* A timer's call is over with rc (and, when 0, the runtime's timer
 * results on the stack: nothing, "failed" and the error, or "gone" and
 * why): logs its failure as "timer <label> failed". Returns 1 when the
 * timer's name no longer resolves (the caller cancels it). */
int script__timer_over(script_t *s, const char *label, int rc);

/* The runtime's resume and reply, and the marker, into the table at core. */
void script__inject_wait(lua_State *L, script_t *s, int core);

/* Frees every record of s (at its destruction). */
void script__waits_close(script_t *s);

/* The answer to the call's frame: begin starts b with
 * {"type":<type>,"id":<the frame's id as the client wrote it> (no id when
 * it had none); the caller adds members; send closes it and sends it to
 * the call's connection (taking b). */
void script__answer_begin(script_t *s, buf_t *b, const char *type, size_t tlen);
void script__answer_send(script_t *s, buf_t *b);
/* {"type":"error","id":…,"code":code,"message":msg}, the same way. */
void script__answer_error(script_t *s, const char *code, const char *msg);

/* ---- script_api.c ------------------------------------------------------- */

/* hub.send, send_user, send_users, send_room, broadcast, publish;
 * core.answer. */
void script__inject_send(lua_State *L, script_t *s, int hub, int core);
/* hub.join, leave, is_member, room_members, room_info, user_rooms. */
void script__inject_rooms(lua_State *L, script_t *s, int hub);
/* hub.presence_get, presence_set, presence_subscribe. */
void script__inject_presence(lua_State *L, script_t *s, int hub);
/* hub.online_users, user_connections, conn_info, valid_user_id, now. */
void script__inject_conns(lua_State *L, script_t *s, int hub);
/* hub.limits: room_id_max, user_id_max, user_id_chars, and the timers'
 * (timer_delay_max, timers_max, timer_name_max, timer_arg_max). */
void script__inject_limits(lua_State *L, script_t *s, int hub);
/* core.log, core.set_fail. */
void script__inject_log(lua_State *L, script_t *s, int core);

/* Raises a protocol error through protocol.fail, so that the client gets
 * `code` rather than handler_error. Does not return. */
int script__fail(lua_State *L, const char *code, const char *fmt, ...);

/* Adds id (borrowed) to the list; a script_each_fn. */
void script__idlist_add(void *ctx, const char *id);
/* Sorts the list's ids (strcmp order). */
void script__idlist_sort(script_idlist *l);

/* ---- script_store.c ----------------------------------------------------- */

/* core.store_get, store_set, store_delete. */
void script__inject_store(lua_State *L, script_t *s, int core);

/* ---- script_timer.c ----------------------------------------------------- */

/* The timers' limits, which scripts read in hub.limits (the test kit,
 * lua/fakehub.lua, keeps a copy that test_script.c checks): the longest
 * delay in ms (a year), how many timers a state may hold, and the longest
 * name and argument (as JSON) of a named timer, in bytes. */
#define SCRIPT_MAX_TIMER_DELAY 31536000000.0
#define SCRIPT_MAX_TIMERS 10000
#define SCRIPT_MAX_TIMER_NAME 128
#define SCRIPT_MAX_TIMER_ARG 65536

/* hub.after, hub.every, hub.cancel into the table at hub; the runtime's
 * set_timer_runner into the table at core. */
void script__inject_timers(lua_State *L, script_t *s, int hub, int core);

/* Cancels every timer of s (at its destruction). */
void script__timers_close(script_t *s);

#endif
