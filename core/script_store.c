/* script_store.c -- the runtime's side of hub.store (script_int.h):
 * store_get, store_set and store_delete, values kept in C as JSON (they
 * outlive reloads). lua/hub.lua builds hub.store's scopes on them. */
#include <errno.h>

#include "script_int.h"

/* ---- the store: the runtime's store_get, store_set, store_delete --------- */

static int store_kind(lua_State *L, int idx) {
    static const char *const kinds[] = {"global", "room", "user", NULL};
    return luaL_checkoption(L, idx, NULL, kinds);
}

/* store_get(kind, scope, key) -> value or nil */
static int l_store_get(lua_State *L) {
    script_t *s = script__self(L);
    int kind = store_kind(L, 1);
    const char *scope = luaL_checkstring(L, 2);
    const char *key = luaL_checkstring(L, 3);
    if (!s->host->store_get) return 0;
    size_t len;
    const char *json = s->host->store_get(s->host->ud, kind, scope, key, &len);
    if (!json) {
        lua_pushnil(L);
        return 1;
    }
    json_error err;
    if (script__decode(s, json, len, &err) < 0)
        return luaL_error(L, "stored value is not JSON: %s", err.message);
    return 1;
}

/* store_set(kind, scope, key, value): nil deletes. */
static int l_store_set(lua_State *L) {
    script_t *s = script__self(L);
    int kind = store_kind(L, 1);
    const char *scope = luaL_checkstring(L, 2);
    const char *key = luaL_checkstring(L, 3);
    if (lua_isnoneornil(L, 4)) {
        s->host->store_delete(s->host->ud, kind, scope, key);
        return 0;
    }
    buf_t b;
    buf_init(&b, 0);
    if (script__encode(L, 4, &b, s->array_mt_ref)) {
        buf_close(&b);
        return lua_error(L);
    }
    int rc = s->host->store_set(s->host->ud, kind, scope, key,
                                b.data ? buf_content(&b) : "", b.len);
    buf_close(&b);
    if (rc == -ENOENT)
        return script__fail(L, "not_found", "no %s '%s'",
                            kind == 1 ? "room" : "user", scope);
    if (rc < 0) return luaL_error(L, "store: value too large or scope full");
    return 0;
}

static int l_store_delete(lua_State *L) {
    script_t *s = script__self(L);
    int kind = store_kind(L, 1);
    const char *scope = luaL_checkstring(L, 2);
    const char *key = luaL_checkstring(L, 3);
    lua_pushboolean(L, s->host->store_delete(s->host->ud, kind, scope, key));
    return 1;
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
