/* script.c -- see script.h: creating, reloading and dispatching.
 *
 * The Lua side of the runtime lives in lua/: runtime.lua loads the
 * handlers and dispatches messages, hub.lua is the pure-Lua part of the
 * `hub` table, protocol.lua turns a handler call into its reply. This
 * file builds the state, hands runtime.lua the `hub` table and the
 * runtime's private functions (script_api.c, script_timer.c), and calls
 * in through the guard (script_guard.c). script_int.h says how the files
 * of the module divide the work. */
#include "script.h"

#include <dirent.h>
#include <errno.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "envelope.h"
#include "log.h"
#include "script_int.h"

/* ---- a host with nothing in it ------------------------------------------- */

static int null_send(void *ud, const script_target *t, frame_t *f,
                     script_wait *w) {
    return 0;
}
static int null_publish(void *ud, const char *room, const char *member,
                        script_stamp_fn stamp, void *ctx, const char *head,
                        size_t headlen, uint64_t *seq, script_wait *w) {
    return member ? -EPERM : -ENOENT;
}
static int null_join(void *ud, const char *room, const char *uid,
                     size_t *members, script_wait *w) {
    return -ENOENT;
}
static int null_leave(void *ud, const char *room, const char *uid,
                      size_t *members, script_wait *w) {
    *members = 0;
    return 0;
}
static int null_room_members(void *ud, const char *room,
                             const script_page *page, script_each_fn each,
                             void *ctx, script_wait *w) {
    return page && page->member ? -EPERM : -ENOENT;
}
static int null_zero(void *ud, const char *a, const char *b, script_wait *w) {
    return 0;
}
static int null_room_info(void *ud, const char *room, script_room_info *o,
                          script_wait *w) {
    return -ENOENT;
}
static int null_history(void *ud, const char *room, const char *member,
                        int64_t since, size_t limit, const char *epoch,
                        script_history *out, script_wait *w) {
    return member ? -EPERM : -ENOENT;
}
static int null_list(void *ud, const char *id, script_each_fn each, void *ctx,
                     script_wait *w) {
    return -ENOENT;
}
static int null_online(void *ud, script_each_fn each, void *ctx,
                       script_wait *w) {
    return 0;
}
static int null_presence_get(void *ud, const char *uid, script_wait *w) {
    return 0;
}
static int null_presence_set(void *ud, const char *uid, int st,
                             script_wait *w) {
    return -ENOENT;
}
static int null_presence_subscribe(void *ud, const char *cid,
                                   const char *const *uids, size_t n, int *st,
                                   script_wait *w) {
    return -ENOENT;
}
static int null_conn_info(void *ud, const char *cid, script_conn_info *o) {
    return -ENOENT;
}

static int null_store_get(void *ud, int kind, const char *scope,
                          const char *key, const char **json, size_t *len,
                          script_wait *w) {
    *json = NULL;
    return 0;
}
static int null_store_set(void *ud, int kind, const char *scope,
                          const char *key, const char *json, size_t len,
                          script_wait *w) {
    return kind == 0 ? 0 : -ENOENT;
}
static int null_store_delete(void *ud, int kind, const char *scope,
                             const char *key, script_wait *w) {
    return 0;
}

static const script_host null_host = {
    .store_get = null_store_get,
    .store_set = null_store_set,
    .store_delete = null_store_delete,
    .send = null_send,
    .publish = null_publish,
    .join = null_join,
    .leave = null_leave,
    .is_member = null_zero,
    .room_info = null_room_info,
    .history = null_history,
    .room_members = null_room_members,
    .user_rooms = null_list,
    .online_users = null_online,
    .user_connections = null_list,
    .presence_get = null_presence_get,
    .presence_set = null_presence_set,
    .presence_subscribe = null_presence_subscribe,
    .conn_info = null_conn_info,
};

const script_host *script_null_host(void) {
    return &null_host;
}

/* ---- loading ------------------------------------------------------------ */

/* 1 when name (n bytes) ends in _spec.lua: a busted spec kept beside the
 * scripts (examples/handlers keeps them so), not a script. */
static int is_spec(const char *name, size_t n) {
    static const char suffix[] = "_spec.lua";
    return n >= sizeof suffix - 1 &&
           !strcmp(name + n - (sizeof suffix - 1), suffix);
}

/* Pushes a sorted array of the names (without .lua) of the Lua files in
 * dir, specs left out. With handlers set, a name must be a valid message
 * type (others are skipped with a warning) and a missing dir is an error
 * (a negative errno, err filled); otherwise a missing dir is an empty list.
 * Directories (lib/, hooks/, spec/) are never listed: they do not end in .lua
 * or are not read as scripts. */
static int push_lua_files(lua_State *L, const char *dir, int handlers,
                          char *err, size_t errlen) {
    script_idlist names = {0};
    DIR *d = opendir(dir);
    if (!d && handlers) {
        int e = errno;
        snprintf(err, errlen, "cannot read scripts directory %s: %s", dir,
                 strerror(e));
        return -e;
    }
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".lua") != 0) continue;
        if (is_spec(e->d_name, n)) continue;
        if (handlers && !envelope_valid_type(e->d_name, n - 4)) {
            log_warn("script",
                     "skipping %s/%s: a handler's file name must "
                     "be <type>.lua with type 1-64 of [A-Za-z0-9_]",
                     dir, e->d_name);
            continue;
        }
        script__idlist_add(&names, xstrndup(e->d_name, n - 4));
    }
    if (d) closedir(d);
    script__idlist_sort(&names);
    lua_createtable(L, (int)names.len, 0);
    for (size_t i = 0; i < names.len; i++) {
        lua_pushstring(L, names.ids[i]);
        lua_rawseti(L, -2, (int)i + 1);
        free((char *)names.ids[i]);
    }
    free(names.ids);
    return 0;
}

/* Sets package.path to the runtime and the scripts' lib/ only, so a
 * script's require finds the project's modules and nothing in the current
 * directory. C modules (cjson) keep the system's cpath. */
static void set_package_path(lua_State *L, const script_options *opt) {
    lua_getglobal(L, "package");
    lua_pushfstring(L, "%s/?.lua;%s/lib/?.lua", opt->lua_dir, opt->scripts_dir);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
}

/* Pushes `hub`, the table scripts get, and `core`, the runtime's private
 * functions: each area's injector fills them. */
static void push_api(lua_State *L, script_t *s) {
    lua_newtable(L);
    lua_newtable(L);
    /* stack: hub, core */
    script__inject_send(L, s, -2, -1);
    script__inject_rooms(L, s, -2);
    script__inject_history(L, s, -2);
    script__inject_presence(L, s, -2);
    script__inject_conns(L, s, -2);
    script__inject_timers(L, s, -2, -1);
    script__inject_json(L, s, -2, -1);
    script__inject_store(L, s, -1);
    script__inject_log(L, s, -1);
    script__inject_wait(L, s, -1);
    script__inject_limits(L, s, -2);
}

/* The array in field k of the table on top of the stack, its strings
 * joined with sep (a new string); *n, if given, gets its length. */
static char *join_field(lua_State *L, const char *k, const char *sep,
                        size_t *n) {
    buf_t b;
    buf_init(&b, 0);
    lua_getfield(L, -1, k);
    size_t len = lua_istable(L, -1) ? lua_objlen(L, -1) : 0;
    for (size_t i = 1; i <= len; i++) {
        lua_rawgeti(L, -1, (int)i);
        if (i > 1) buf_puts(&b, sep);
        buf_puts(&b, lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    buf_putc(&b, '\0');
    if (n) *n = len;
    return buf_steal(&b);
}

script_t *script_create(const script_options *opt, const script_host *host,
                        char *err, size_t errlen) {
    script_t *s = xcalloc(1, sizeof *s);
    s->host = host;
    s->loop = opt->loop;
    s->timeout_ms = opt->timeout_ms;
    s->max_listed = opt->max_listed;
    s->dispatch_ref = s->array_mt_ref = s->fail_ref = LUA_NOREF;
    s->timer_ref = s->timer_call_ref = LUA_NOREF;
    s->worker_ref = s->idle_ref = LUA_NOREF;
    s->where = "while the scripts load";
    s->connect_ref = s->disconnect_ref = LUA_NOREF;
    lua_State *L = s->L = luaL_newstate();
    if (!L) {
        snprintf(err, errlen, "cannot create a Lua state (out of memory)");
        free(s);
        return NULL;
    }
    script__guard_cap(s, opt->memory_mb);
    luaL_openlibs(L);
    set_package_path(L, opt);

    /* Placeholders until the runtime hands over the real values. */
    lua_newtable(L);
    s->array_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushinteger(L, s->array_mt_ref);
    lua_setfield(L, LUA_REGISTRYINDEX, "luahub.array_mt_ref");
    lua_pushcfunction(L, luaopen_base); /* never called */
    s->fail_ref = luaL_ref(L, LUA_REGISTRYINDEX);

    char path[2048];
    snprintf(path, sizeof path, "%s/runtime.lua", opt->lua_dir);
    if (luaL_loadfile(L, path)) {
        snprintf(err, errlen, "%s", lua_tostring(L, -1));
        goto fail;
    }
    push_api(L, s);
    lua_pushstring(L, opt->scripts_dir);
    if (push_lua_files(L, opt->scripts_dir, 1, err, errlen) < 0) goto fail;
    lua_pushstring(L, opt->lua_dir);
    lua_pushboolean(L, opt->unsafe);
    char hooks_dir[2048];
    snprintf(hooks_dir, sizeof hooks_dir, "%s/hooks", opt->scripts_dir);
    push_lua_files(L, hooks_dir, 0, NULL, 0);
    /* stack: runtime chunk, hub, core, scripts_dir, types, lua_dir, unsafe,
     * hooks */
    /* Loading runs every script's top level: give it ten calls' time. */
    double call_limit = s->timeout_ms;
    s->timeout_ms = call_limit > 0 ? call_limit * 10 : 0;
    int load_rc = script__pcall(s, 7, 1, 0);
    s->timeout_ms = call_limit;
    if (load_rc == -ETIMEDOUT) {
        snprintf(err, errlen, "loading the scripts ran past %.0f ms",
                 call_limit * 20);
        goto fail;
    }
    if (load_rc) {
        snprintf(err, errlen, "%s",
                 lua_isstring(L, -1) ? lua_tostring(L, -1) : "load failed");
        goto fail;
    }
    /* stack: runtime table {dispatch=fn, types={...}} */
    if (!lua_istable(L, -1)) {
        snprintf(err, errlen, "%s did not return a table", path);
        goto fail;
    }
    lua_getfield(L, -1, "dispatch");
    if (!lua_isfunction(L, -1)) {
        snprintf(err, errlen, "%s: no dispatch function", path);
        goto fail;
    }
    s->dispatch_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    script__key_refs(s);
    lua_getfield(L, -1, "worker");
    s->worker_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_createtable(L, SCRIPT_IDLE_MAX, 0);
    s->idle_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_getfield(L, -1, "timer");
    s->timer_call_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_getfield(L, -1, "connect");
    s->connect_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_getfield(L, -1, "disconnect");
    s->disconnect_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_getfield(L, -1, "has_connect_hook");
    s->has_connect_hook = lua_toboolean(L, -1);
    lua_getfield(L, -2, "has_disconnect_hook");
    s->has_disconnect_hook = lua_toboolean(L, -1);
    lua_pop(L, 2);

    s->types = join_field(L, "types", ",", &s->count);
    s->hooks = join_field(L, "hooks", ", ", NULL);
    lua_getfield(L, -1, "stray_hooks");
    if (lua_isstring(L, -1)) s->stray_hooks = xstrdup(lua_tostring(L, -1));
    lua_pop(L, 1);
    lua_settop(L, 0);
    script__guard_code_changed();
    return s;

fail:
    script_destroy(s);
    return NULL;
}

void script_destroy(script_t *s) {
    if (!s) return;
    script__timers_close(s);
    script__waits_close(s);
    script__guard_close(s);
    free(s->ids.ids);
    free(s->types);
    free(s->hooks);
    free(s->stray_hooks);
    free(s);
}

const char *script_types(const script_t *s) {
    return s->types ? s->types : "";
}
const char *script_hooks(const script_t *s) {
    return s->hooks ? s->hooks : "";
}
const char *script_stray_hooks(const script_t *s) {
    return s->stray_hooks;
}
size_t script_count(const script_t *s) {
    return s->count;
}

/* Pushes the connection's metadata (decoded) or nil. */
static void push_meta(script_t *s, const char *meta, size_t metalen) {
    json_error jerr;
    if (!meta || script__decode(s, s->L, meta, metalen, &jerr) < 0)
        lua_pushnil(s->L);
}

int script_dispatch(script_t *s, const char *conn_id, const char *user_id,
                    const char *json, size_t len, const char *meta,
                    size_t metalen, envelope_t *env) {
    if (s->poisoned) return envelope_parse(json, len, env) ? -EINVAL : -EAGAIN;
    lua_State *L = s->L;
    /* The call runs in a coroutine (script__start). */
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->dispatch_ref);
    lua_pushstring(L, conn_id);
    lua_pushstring(L, user_id);
    lua_pushnil(L); /* the type, once the check has found it */
    /* One pass: the envelope check, and the Lua table for the handler
     * (whose `type` string the decoder also puts in the slot above). */
    script_decoder d;
    script__decoder_init(&d, s);
    d.lazy = s->lazy;
    d.key_ref = s->key_ref;
    d.type_slot = lua_gettop(L);
    if (envelope_parse_tee(json, len, env, &script__decoder_sink, &d) !=
        ENVELOPE_OK) {
        lua_settop(L, 0);
        return -EINVAL;
    }
    if (lua_isnil(L, d.type_slot)) {
        lua_pushstring(L, env->type);
        lua_replace(L, d.type_slot);
    }
    push_meta(s, meta, metalen);
    /* stack: dispatch, conn_id, user_id, type, msg, meta */
    s->call_conn = conn_id;
    s->call_id = env->id_json;
    s->call_id_len = env->id_json_len;
    s->answered = 0;
    s->call_kind = SCRIPT_CALL_MESSAGE;
    int rc = script__start(s, 5);
    int waits = script__run_end(s, rc);
    s->call_conn = s->call_id = NULL;
    if (waits) {
        lua_settop(L, 0);
        return -EINPROGRESS;
    }
    if (rc == -ETIMEDOUT) return s->answered ? 0 : -ETIMEDOUT;
    if (rc) {
        /* The runtime contains handler errors itself; reaching here means
         * the runtime failed (or memory ran out). */
        log_error("script", "dispatch failed conn=%s type=%s: %s%s", conn_id,
                  env->type, rc == -ENOMEM ? "out of memory: " : "",
                  lua_isstring(L, -1) ? lua_tostring(L, -1) : "(no message)");
        lua_settop(L, 0);
        return s->answered ? 0 : -EIO;
    }
    /* The runtime returns the type when no handler has it (a hook may
     * have changed it): answered, like a type that cannot name one, by the
     * caller, through the envelope. */
    if (lua_type(L, -2) == LUA_TSTRING) {
        size_t n;
        const char *type = lua_tolstring(L, -2, &n);
        envelope_set_no_handler(env, type, n);
        lua_settop(L, 0);
        return -EINVAL;
    }
    lua_settop(L, 0);
    return 0;
}

int script_on_connect(script_t *s, const char *conn_id, const char *user_id,
                      buf_t *meta, char *reason, size_t reasonlen) {
    if (!s->has_connect_hook || s->poisoned) return 1;
    lua_State *L = s->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->connect_ref);
    lua_pushstring(L, conn_id);
    lua_pushstring(L, user_id);
    int accepted = 0;
    s->where = "in on_connect";
    int rc = script__pcall(s, 2, 2, 0);
    if (rc == -ETIMEDOUT) {
        snprintf(reason, reasonlen, "connection hook timed out");
        return 0;
    }
    if (rc) {
        snprintf(reason, reasonlen, "connection hook failed");
        log_error("script", "on_connect failed conn=%s: %s", conn_id,
                  lua_isstring(L, -1) ? lua_tostring(L, -1) : "?");
    } else if (!lua_toboolean(L, -2)) {
        snprintf(reason, reasonlen, "%s",
                 lua_isstring(L, -1) ? lua_tostring(L, -1) : "refused");
    } else {
        accepted = 1;
        if (lua_istable(L, -1) &&
            script__encode(L, lua_gettop(L), meta, s->array_mt_ref)) {
            log_error("script", "on_connect metadata is not JSON conn=%s: %s",
                      conn_id, lua_tostring(L, -1));
            buf_reset(meta);
        }
    }
    lua_settop(L, 0);
    return accepted;
}

void script_on_disconnect(script_t *s, const char *conn_id, const char *user_id,
                          int code, const char *meta, size_t metalen) {
    if (!s->has_disconnect_hook || s->poisoned) return;
    lua_State *L = s->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->disconnect_ref);
    lua_pushstring(L, conn_id);
    lua_pushstring(L, user_id);
    lua_pushinteger(L, code);
    push_meta(s, meta, metalen);
    s->where = "in on_disconnect";
    int rc = script__pcall(s, 4, 0, 0);
    if (rc == -ETIMEDOUT) return;
    if (rc)
        log_error("script", "on_disconnect failed conn=%s: %s", conn_id,
                  lua_isstring(L, -1) ? lua_tostring(L, -1) : "?");
    lua_settop(L, 0);
}
