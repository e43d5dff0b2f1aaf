/* script_store.c -- the runtime's side of hub.store (script_int.h):
 * store_get, store_set and store_delete, values kept in C as JSON (they
 * outlive reloads). lua/hub.lua builds hub.store's scopes on them. */
#include <errno.h>

#include "codes.h"
#include "script_int.h"

/* ---- the store: the runtime's store_get, store_set, store_delete --------- */

static int store_kind(lua_State *L, int idx) {
    static const char *const kinds[] = {"global", "room", "user", NULL};
    return luaL_checkoption(L, idx, NULL, kinds);
}

/* The value, or nil when there is none. */
static int push_value(lua_State *L, const script_reply *r) {
    script_t *s = script__self(L);
    if (r->rc < 0) return script__host_error(L, r->rc);
    if (!r->json) {
        lua_pushnil(L);
        return 1;
    }
    json_error err;
    if (script__decode(s, L, r->json, r->len, &err) < 0)
        return luaL_error(L, "stored value is not JSON: %s", err.message);
    return 1;
}

/* store_get(kind, scope, key) -> value or nil */
static int l_store_get(lua_State *L) {
    script_t *s = script__self(L);
    int kind = store_kind(L, 1);
    const char *scope = luaL_checkstring(L, 2);
    const char *key = luaL_checkstring(L, 3);
    if (!s->host->store_get) return 0;
    script_wait *w = script__wait_slot(L);
    script_reply r = {0};
    r.rc =
        s->host->store_get(s->host->ud, kind, scope, key, &r.json, &r.len, w);
    return script__reply_or_wait(L, w, &r, push_value);
}

static int push_set(lua_State *L, const script_reply *r) {
    if (r->rc >= 0) return 0;
    script__host_failed(L, r->rc);
    if (r->rc == -ENOENT)
        return script__fail(L, ERR_NOT_FOUND, "no %s '%s'",
                            store_kind(L, 1) == 1 ? "room" : "user",
                            lua_tostring(L, 2));
    return luaL_error(L, "store: value too large or scope full");
}

/* store_set(kind, scope, key, value): nil deletes. */
static int l_store_set(lua_State *L) {
    script_t *s = script__self(L);
    int kind = store_kind(L, 1);
    const char *scope = luaL_checkstring(L, 2);
    const char *key = luaL_checkstring(L, 3);
    script_wait *w = NULL;
    script_reply r = {0};
    if (lua_isnoneornil(L, 4)) {
        w = script__wait_slot(L);
        r.rc = s->host->store_delete(s->host->ud, kind, scope, key, w);
    } else {
        buf_t b;
        buf_init(&b, 0);
        if (script__encode(L, 4, &b, s->array_mt_ref)) {
            buf_close(&b);
            return lua_error(L);
        }
        w = script__wait_slot(L);
        r.rc = s->host->store_set(s->host->ud, kind, scope, key,
                                  b.data ? buf_content(&b) : "", b.len, w);
        buf_close(&b);
    }
    return script__reply_or_wait(L, w, &r, push_set);
}

static int l_store_delete(lua_State *L) {
    script_t *s = script__self(L);
    int kind = store_kind(L, 1);
    const char *scope = luaL_checkstring(L, 2);
    const char *key = luaL_checkstring(L, 3);
    script_wait *w = script__wait_slot(L);
    script_reply r = {
        .rc = s->host->store_delete(s->host->ud, kind, scope, key, w)};
    return script__reply_or_wait(L, w, &r, script__push_bool);
}

void script__inject_store(lua_State *L, script_t *s, int core) {
    static const luaL_Reg funcs[] = {
        {"store_get", l_store_get},
        {"store_set", l_store_set},
        {"store_delete", l_store_delete},
        {NULL, NULL},
    };
    script__register(L, s, core, funcs);
}
