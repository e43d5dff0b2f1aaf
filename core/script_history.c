/* script_history.c -- hub.history: a room's kept frames for the scripts
 * (script_int.h).
 *
 * A handler that looks at history (an edit handler checking who wrote a
 * message) gets each frame decoded. A handler that hands history to a
 * client (join_room's recovery, the history request) asks for raw frames
 * instead: a userdata holding a reference to each frame, which the JSON
 * encoder writes as an array of the frames' own text. So an ack of 1,000
 * messages costs no decode and no encode, just one copy of their bytes
 * into the ack, and the client gets them exactly as they went out live. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "codes.h"
#include "script_int.h"

#define FRAMES_MT "luahub.frames"

typedef struct frames_ud {
    size_t n;
    frame_t *f[];
} frames_ud;

static int frames_gc(lua_State *L) {
    frames_ud *u = lua_touserdata(L, 1);
    for (size_t i = 0; i < u->n; i++)
        frame_unref(u->f[i]);
    u->n = 0;
    return 0;
}

static int frames_len(lua_State *L) {
    frames_ud *u = lua_touserdata(L, 1);
    lua_pushnumber(L, (lua_Number)u->n);
    return 1;
}

int script__encode_frames(lua_State *L, int idx, buf_t *b) {
    if (!lua_getmetatable(L, idx)) return 0;
    luaL_getmetatable(L, FRAMES_MT);
    int frames = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    if (!frames) return 0;
    const frames_ud *u = lua_touserdata(L, idx);
    buf_putc(b, '[');
    for (size_t i = 0; i < u->n; i++) {
        size_t len;
        const char *json = frame_payload(u->f[i], &len);
        if (i) buf_putc(b, ',');
        buf_append(b, json, len);
    }
    buf_putc(b, ']');
    return 1;
}

/* opts.raw of hub.history's options at 2. */
static int want_raw(lua_State *L) {
    if (!lua_istable(L, 2)) return 0;
    lua_getfield(L, 2, "raw");
    int raw = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return raw;
}

static void push_frames(lua_State *L, const script_history *hs, int raw) {
    script_t *s = script__self(L);
    if (raw) {
        frames_ud *u =
            lua_newuserdata(L, sizeof *u + (hs->n ? hs->n : 1) * sizeof *u->f);
        u->n = 0;
        luaL_getmetatable(L, FRAMES_MT);
        lua_setmetatable(L, -2);
        /* Counted as they are taken: __gc lets go of exactly those. */
        for (size_t i = 0; i < hs->n; i++)
            u->f[u->n++] = frame_ref(hs->frames[i]);
        return;
    }
    lua_createtable(L, (int)hs->n, 0);
    for (size_t i = 0; i < hs->n; i++) {
        size_t len;
        const char *json = frame_payload(hs->frames[i], &len);
        json_error err;
        /* The core wrote these frames: they are JSON. */
        if (script__decode(s, L, json, len, &err) < 0) lua_pushnil(L);
        lua_rawseti(L, -2, (int)i + 1);
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->array_mt_ref);
    lua_setmetatable(L, -2); /* stack: ..., messages */
}

/* {epoch=, seq=, messages=}, nil when there is no such room; not_in_room
 * when the member asked for is not one. */
static int push_history(lua_State *L, const script_reply *r) {
    if (r->rc == -EPERM)
        return script__fail(L, ERR_NOT_IN_ROOM, "you are not in room '%s'",
                            lua_tostring(L, 1));
    if (r->rc == -ENOENT) {
        lua_pushnil(L);
        return 1;
    }
    if (r->rc < 0) return script__host_error(L, r->rc);
    const script_history *hs = &r->history;
    lua_createtable(L, 0, 3);
    lua_pushstring(L, hs->epoch ? hs->epoch : "");
    lua_setfield(L, -2, "epoch");
    lua_pushnumber(L, (lua_Number)hs->seq);
    lua_setfield(L, -2, "seq");
    push_frames(L, hs, want_raw(L));
    lua_setfield(L, -2, "messages"); /* stack: ..., result */
    return 1;
}

/* opts[key] at 2: nil, or a whole number from 0 to 2^53. */
static int opt_count(lua_State *L, const char *key, double *out) {
    if (!lua_istable(L, 2)) return 0;
    lua_getfield(L, 2, key);
    int given = !lua_isnil(L, -1);
    if (given) {
        double v = lua_tonumber(L, -1);
        if (lua_type(L, -1) != LUA_TNUMBER || v < 0 || v > 9007199254740992.0 ||
            v != (double)(int64_t)v)
            return luaL_error(
                L, "hub.history: %s must be a whole number from 0 to 2^53",
                key);
        *out = v;
    }
    lua_pop(L, 1);
    return given;
}

/* history(room_id [, {since=, limit=, member=, raw=, epoch=}]) */
static int l_history(lua_State *L) {
    script_t *s = script__self(L);
    const char *room = luaL_checkstring(L, 1);
    if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
    double since = -1, limit = -1;
    opt_count(L, "since", &since);
    opt_count(L, "limit", &limit);
    const char *member = NULL, *epoch = NULL;
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "member");
        if (!lua_isnil(L, -1)) member = luaL_checkstring(L, -1);
        lua_getfield(L, 2, "epoch");
        if (!lua_isnil(L, -1)) epoch = luaL_checkstring(L, -1);
        lua_pop(L, 2); /* the options table keeps the strings alive */
    }
    script_wait *w = script__wait_slot(L);
    script_reply r = {0};
    r.rc = s->host->history(s->host->ud, room, member, (int64_t)since,
                            limit < 0 ? SIZE_MAX : (size_t)limit, epoch,
                            &r.history, w);
    return script__reply_or_wait(L, w, &r, push_history);
}

void script__inject_history(lua_State *L, script_t *s, int hub) {
    static const luaL_Reg funcs[] = {{"history", l_history}, {NULL, NULL}};
    if (hub < 0) hub = lua_gettop(L) + hub + 1;
    luaL_newmetatable(L, FRAMES_MT);
    lua_pushcfunction(L, frames_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, frames_len);
    lua_setfield(L, -2, "__len");
    /* A script may count the frames and hand them on, not reach in. */
    lua_pushliteral(L, "frames");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
    script__register(L, s, hub, funcs);
}
