/* script_api.c -- the `hub` table scripts get, and the runtime's private
 * functions (script_int.h).
 *
 * One injector per area sets its C functions into `hub`, built in C and
 * handed to lua/runtime.lua with a second table, `core`, of what only the
 * runtime may call (the answer to the frame being dispatched, the store,
 * logging at a given stack level, and the values the runtime hands back:
 * the array metatable, protocol.fail). The runtime adds the pure-Lua part
 * of the API (lua/hub.lua) and freezes `hub`; `core` stays a local of the
 * runtime, in no table a script can reach. So a C function reaches
 * scripts only when an injector puts it in `hub`.
 *
 * Every function reaches the core through the script_host, by id: Lua
 * never holds a C pointer. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "codes.h"
#include "conn.h"
#include "log.h"
#include "presence.h"
#include "room.h"
#include "script_int.h"

/* ---- what every area uses ------------------------------------------------ */

int script__fail(lua_State *L, const char *code, const char *fmt, ...) {
    script_t *s = script__self(L);
    va_list ap;
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->fail_ref);
    lua_pushstring(L, code);
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    /* stack: fail, code, message */
    lua_call(L, 2, 0);
    return 0;
}

void script__idlist_add(void *ctx, const char *id) {
    script_idlist *l = ctx;
    if (l->len == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->ids = xrealloc(l->ids, l->cap * sizeof *l->ids);
    }
    l->ids[l->len++] = id;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void script__idlist_sort(script_idlist *l) {
    if (l->len > 1) qsort(l->ids, l->len, sizeof *l->ids, cmp_str);
}

/* The state's scratch list, emptied. */
static script_idlist *idlist_start(lua_State *L) {
    script_idlist *l = &script__self(L)->ids;
    l->len = 0;
    return l;
}

/* Pushes the n ids as a sorted array: ids collected into the state's
 * scratch list (idlist_start), or a reply's (copied there to be sorted).
 * The ids are still valid here: nothing ran between collecting and
 * pushing. */
static void push_ids(lua_State *L, const char *const *ids, size_t n) {
    script_t *s = script__self(L);
    script_idlist *l = &s->ids;
    if (ids != l->ids) {
        l->len = 0;
        for (size_t i = 0; i < n; i++)
            script__idlist_add(l, ids[i]);
    } else {
        l->len = n;
    }
    script__idlist_sort(l);
    lua_createtable(L, (int)l->len, 0);
    for (size_t i = 0; i < l->len; i++) {
        lua_pushstring(L, l->ids[i]);
        lua_rawseti(L, -2, (int)i + 1);
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->array_mt_ref);
    lua_setmetatable(L, -2); /* stack: ids */
}

static int push_count(lua_State *L, const script_reply *r) {
    if (r->rc < 0) return script__host_error(L, r->rc);
    lua_pushinteger(L, r->rc);
    return 1;
}

/* A listing: the ids, or an empty list when there is no such room or
 * user. */
static int push_list(lua_State *L, const script_reply *r) {
    script__host_failed(L, r->rc);
    push_ids(L, r->rc < 0 ? NULL : r->ids, r->rc < 0 ? 0 : r->nids);
    return 1;
}

static void set_number(lua_State *L, const char *k, double v) {
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

/* ---- sending: hub.send, send_user(s), send_room, broadcast, publish ------ */

/* The message argument at idx as a frame: a table is encoded, a string is
 * checked to be JSON and sent as it is. Returns a new reference; raises on
 * error. */
static frame_t *arg_frame(lua_State *L, int idx) {
    script_t *s = script__self(L);
    if (lua_type(L, idx) == LUA_TSTRING) {
        size_t n;
        const char *json = lua_tolstring(L, idx, &n);
        json_error err;
        if (json_parse(json, n, JSON_MAX_DEPTH, NULL, NULL, &err) != JSON_OK)
            luaL_error(L, "message is not JSON: %s", err.message);
        return frame_create_text(json, n);
    }
    luaL_checktype(L, idx, LUA_TTABLE);
    buf_t b;
    buf_init(&b, FRAME_HEADROOM);
    if (script__encode(L, idx, &b, s->array_mt_ref)) {
        buf_close(&b);
        lua_error(L);
    }
    return frame_from_buf(&b);
}

/* Reads {except_conn=, except_user=, ephemeral=} at idx into t; returns
 * 1 when the message is ephemeral (frame.h). */
static int arg_opts(lua_State *L, int idx, script_target *t) {
    t->except_conn = t->except_user = NULL;
    if (lua_isnoneornil(L, idx)) return 0;
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_getfield(L, idx, "except_conn");
    if (!lua_isnil(L, -1)) t->except_conn = luaL_checkstring(L, -1);
    lua_getfield(L, idx, "except_user");
    if (!lua_isnil(L, -1)) t->except_user = luaL_checkstring(L, -1);
    lua_getfield(L, idx, "ephemeral");
    if (!lua_isnil(L, -1) && !lua_isboolean(L, -1))
        luaL_error(L, "ephemeral must be a boolean");
    int ephemeral = lua_toboolean(L, -1);
    /* The strings stay referenced by the opts table for the call. */
    lua_pop(L, 3);
    return ephemeral;
}

/* Sends the message at msg_idx to t, with the options at opts_idx (its
 * class among them). */
static int send_to(lua_State *L, script_target *t, int msg_idx, int opts_idx) {
    script_t *s = script__self(L);
    int ephemeral = arg_opts(L, opts_idx, t);
    frame_t *f = arg_frame(L, msg_idx);
    if (ephemeral) frame_set_ephemeral(f);
    script_wait *w = script__wait_slot(L);
    script_reply r = {.rc = s->host->send(s->host->ud, t, f, w)};
    frame_unref(f);
    return script__reply_or_wait(L, w, &r, push_count);
}

static int l_send(lua_State *L) {
    const char *id = luaL_checkstring(L, 1);
    script_target t = {SCRIPT_TO_CONN, &id, 1, NULL, NULL};
    return send_to(L, &t, 2, 3);
}

static int l_send_user(lua_State *L) {
    const char *id = luaL_checkstring(L, 1);
    script_target t = {SCRIPT_TO_USERS, &id, 1, NULL, NULL};
    return send_to(L, &t, 2, 3);
}

static int l_send_users(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    size_t n = lua_objlen(L, 1);
    /* A userdata, not malloc: if anything below raises, the GC frees it. */
    const char **ids = lua_newuserdata(L, (n ? n : 1) * sizeof *ids);
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 1, (int)i + 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            return luaL_error(L, "user ids must be strings");
        ids[i] = lua_tostring(L, -1);
        lua_pop(L, 1); /* the table keeps the string alive */
    }
    script_target t = {SCRIPT_TO_USERS, ids, n, NULL, NULL};
    return send_to(L, &t, 2, 3);
}

static int l_send_room(lua_State *L) {
    const char *id = luaL_checkstring(L, 1);
    script_target t = {SCRIPT_TO_ROOM, &id, 1, NULL, NULL};
    return send_to(L, &t, 2, 3);
}

static int l_broadcast(lua_State *L) {
    script_target t = {SCRIPT_TO_ALL, NULL, 0, NULL, NULL};
    return send_to(L, &t, 1, 2);
}

/* The message of hub.publish, encoded but for its stamp. */
typedef struct publish_ctx {
    buf_t b;
    const char *room;
    int empty; /* no member written yet */
} publish_ctx;

/* A script_stamp_fn: closes the message with the seq and the room id. */
static frame_t *stamp_message(void *ctx, uint64_t seq) {
    publish_ctx *p = ctx;
    buf_puts(&p->b, p->empty ? "\"seq\":" : ",\"seq\":");
    json_write_number(&p->b, (double)seq);
    buf_puts(&p->b, ",\"room_id\":");
    json_write_string(&p->b, p->room, strlen(p->room));
    buf_putc(&p->b, '}');
    return frame_from_buf(&p->b);
}

static int push_publish(lua_State *L, const script_reply *r) {
    if (r->rc == -EPERM)
        return script__fail(L, ERR_NOT_IN_ROOM, "you are not in room '%s'",
                            lua_tostring(L, 1));
    if (r->rc < 0) {
        script__host_failed(L, r->rc);
        return script__fail(L, ERR_NOT_FOUND, "no room '%s'",
                            lua_tostring(L, 1));
    }
    lua_pushnumber(L, (lua_Number)r->seq);
    return 1;
}

/* publish(room_id, msg [, member]): sends msg with the room's next seq
 * and the room id added (msg itself is left as it was) to every member
 * connection; returns the seq. With member (a user id), only when that
 * user is a member (not_in_room otherwise): one look-up of the room for
 * the check, the seq and the send. A string, not an options table: a
 * table per chat message is an allocation and more work for the GC. */
static int l_publish(lua_State *L) {
    static const char *const stamped[] = {"seq", "room_id", NULL};
    script_t *s = script__self(L);
    const char *room = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    const char *member = luaL_optstring(L, 3, NULL);
    publish_ctx p = {.room = room, .empty = 1};
    buf_init(&p.b, FRAME_HEADROOM);
    /* One allocation for most chat messages, not one and a regrowth. */
    buf_reserve(&p.b, 512 - FRAME_HEADROOM);
    buf_putc(&p.b, '{');
    if (script__encode_members(L, 2, &p.b, 1, s->array_mt_ref, &p.empty,
                               stamped)) {
        buf_close(&p.b);
        return lua_error(L);
    }
    /* The seq is taken only once the frame is sure to go out: a message
     * that cannot be encoded (NaN, a function, a cycle) must not leave a
     * gap in the room's sequence. */
    script_wait *w = script__wait_slot(L);
    script_reply r = {0};
    r.rc = s->host->publish(s->host->ud, room, member, stamp_message, &p,
                            buf_content(&p.b), p.b.len, &r.seq, w);
    /* Taken by the stamp when the message went out (then empty). */
    buf_close(&p.b);
    return script__reply_or_wait(L, w, &r, push_publish);
}

/* answer(type, fields), the runtime's: the answer to the frame being
 * dispatched, {"type":type,"id":<id>} with fields' members (a table, or
 * nil) but type and id merged in, sent to the frame's connection; without
 * "id" when the frame had none. The id is the envelope's text of it, never
 * a Lua value: a double would turn -0 into 0 and 12345678901234567890 into
 * 1.2345678901234567e+19, and the client could not match its answer. */
static int l_answer(lua_State *L) {
    static const char *const own[] = {"type", "id", NULL};
    script_t *s = script__self(L);
    size_t tlen;
    const char *type = luaL_checklstring(L, 1, &tlen);
    if (!s->call_conn) return luaL_error(L, "no frame to answer");
    if (s->host->answered_error && tlen == 5 && memcmp(type, "error", 5) == 0 &&
        lua_istable(L, 2)) {
        /* For the metrics: one field read, on errors only. */
        lua_getfield(L, 2, "code");
        if (lua_type(L, -1) == LUA_TSTRING)
            s->host->answered_error(s->host->ud, lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    buf_t b;
    script__answer_begin(s, &b, type, tlen);
    int first = 0;
    if (lua_istable(L, 2) &&
        script__encode_members(L, 2, &b, 1, s->array_mt_ref, &first, own)) {
        buf_close(&b);
        return lua_error(L);
    }
    script__answer_send(s, &b);
    return 0;
}

void script__inject_send(lua_State *L, script_t *s, int hub, int core) {
    static const luaL_Reg public[] = {
        {"send", l_send},
        {"send_user", l_send_user},
        {"send_users", l_send_users},
        {"send_room", l_send_room},
        {"broadcast", l_broadcast},
        {"publish", l_publish},
        {NULL, NULL},
    };
    static const luaL_Reg private[] = {{"answer", l_answer}, {NULL, NULL}};
    script__register(L, s, hub, public);
    script__register(L, s, core, private);
}

/* ---- rooms: hub.join, leave, is_member, room_members, room_info ---------- */

static const char *check_room_id(lua_State *L, int idx) {
    size_t n;
    const char *room = luaL_checklstring(L, idx, &n);
    if (n == 0 || n > ROOM_ID_MAX || memchr(room, '\0', n))
        script__fail(L, "bad_message", "room_id must be 1 to %d characters",
                     ROOM_ID_MAX);
    return room;
}

/* joined (or left), and the room's member count after the call. */
static int push_join(lua_State *L, const script_reply *r) {
    if (r->rc < 0) {
        script__host_failed(L, r->rc);
        return script__fail(L, ERR_NOT_FOUND, "user '%s' is not connected",
                            lua_tostring(L, 2));
    }
    lua_pushboolean(L, r->rc);
    lua_pushnumber(L, (lua_Number)r->members);
    return 2;
}

static int l_join(lua_State *L) {
    script_t *s = script__self(L);
    const char *room = check_room_id(L, 1);
    const char *uid = luaL_checkstring(L, 2);
    script_wait *w = script__wait_slot(L);
    script_reply r = {0};
    r.rc = s->host->join(s->host->ud, room, uid, &r.members, w);
    return script__reply_or_wait(L, w, &r, push_join);
}

static int push_leave(lua_State *L, const script_reply *r) {
    if (r->rc < 0) return script__host_error(L, r->rc);
    lua_pushboolean(L, r->rc);
    lua_pushnumber(L, (lua_Number)r->members);
    return 2;
}

static int l_leave(lua_State *L) {
    script_t *s = script__self(L);
    const char *room = luaL_checkstring(L, 1);
    const char *uid = luaL_checkstring(L, 2);
    script_wait *w = script__wait_slot(L);
    script_reply r = {0};
    r.rc = s->host->leave(s->host->ud, room, uid, &r.members, w);
    return script__reply_or_wait(L, w, &r, push_leave);
}

static int l_is_member(lua_State *L) {
    script_t *s = script__self(L);
    const char *room = luaL_checkstring(L, 1);
    const char *uid = luaL_checkstring(L, 2);
    script_wait *w = script__wait_slot(L);
    script_reply r = {.rc = s->host->is_member(s->host->ud, room, uid, w)};
    return script__reply_or_wait(L, w, &r, script__push_bool);
}

/* The ids, or nil when there is no such room; not_in_room when the
 * member asked for is not one. */
static int push_members(lua_State *L, const script_reply *r) {
    if (r->rc == -EPERM)
        return script__fail(L, ERR_NOT_IN_ROOM, "you are not in room '%s'",
                            lua_tostring(L, 1));
    script__host_failed(L, r->rc);
    if (r->rc < 0) {
        lua_pushnil(L);
        return 1;
    }
    push_ids(L, r->ids, r->nids);
    return 1;
}

/* The string in opts[key] (opts at 2), or NULL when absent. */
static const char *opt_string(lua_State *L, const char *key) {
    lua_getfield(L, 2, key);
    const char *v = NULL;
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "hub.room_members: %s must be a string", key);
        v = lua_tostring(L, -1);
    }
    lua_pop(L, 1); /* the options table keeps the string alive */
    return v;
}

/* room_members(room_id [, {after=, limit=, member=}]) */
static int l_room_members(lua_State *L) {
    script_t *s = script__self(L);
    const char *room = luaL_checkstring(L, 1);
    script_page page = {NULL, SIZE_MAX, NULL}, *pp = NULL;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        pp = &page;
        page.after = opt_string(L, "after");
        page.member = opt_string(L, "member");
        lua_getfield(L, 2, "limit");
        if (!lua_isnil(L, -1)) {
            double v = lua_tonumber(L, -1);
            if (lua_type(L, -1) != LUA_TNUMBER || v < 0 ||
                v > 9007199254740992.0 || v != (double)(int64_t)v)
                return luaL_error(
                    L, "hub.room_members: limit must be a whole number >= 0");
            page.limit = (size_t)v;
        }
        lua_pop(L, 1);
    }
    script_idlist *l = idlist_start(L);
    script_wait *w = script__wait_slot(L);
    script_reply r = {.rc = s->host->room_members(s->host->ud, room, pp,
                                                  script__idlist_add, l, w)};
    r.ids = l->ids;
    r.nids = l->len;
    return script__reply_or_wait(L, w, &r, push_members);
}

/* The room's info; its members only while there are at most max_listed
 * of them (the caller may not have gathered them otherwise). */
static int push_room_info(lua_State *L, const script_reply *r) {
    script__host_failed(L, r->rc);
    if (r->rc < 0) {
        lua_pushnil(L);
        return 1;
    }
    lua_createtable(L, 0, 8);
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "room_id");
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "name");
    set_number(L, "created_at", (double)r->room.created_at);
    set_number(L, "message_count", (double)r->room.message_count);
    set_number(L, "seq", (double)r->room.seq);
    set_number(L, "member_count", (double)r->room.members);
    if (r->room.epoch) {
        lua_pushstring(L, r->room.epoch);
        lua_setfield(L, -2, "epoch");
    }
    if (r->room.members <= script__self(L)->max_listed) {
        push_ids(L, r->ids, r->nids);
        lua_setfield(L, -2, "members"); /* stack: info */
    }
    return 1;
}

static int l_room_info(lua_State *L) {
    script_t *s = script__self(L);
    const char *room = luaL_checkstring(L, 1);
    script_wait *w = script__wait_slot(L);
    script_reply r = {0};
    r.rc = s->host->room_info(s->host->ud, room, &r.room, w);
    if (r.rc == -EINPROGRESS && w)
        return script__wait_begin(L, w, push_room_info);
    /* Answered at once: so are the members, when they are listed (a big
     * room's are not gathered at all: a join into it costs the same as
     * into a small one). */
    script_idlist *l = idlist_start(L);
    if (r.rc == 0 && r.room.members <= s->max_listed &&
        s->host->room_members(s->host->ud, room, NULL, script__idlist_add, l,
                              NULL) < 0)
        l->len = 0;
    r.ids = l->ids;
    r.nids = l->len;
    return push_room_info(L, &r);
}

static int l_user_rooms(lua_State *L) {
    script_t *s = script__self(L);
    const char *uid = luaL_checkstring(L, 1);
    script_idlist *l = idlist_start(L);
    script_wait *w = script__wait_slot(L);
    script_reply r = {
        .rc = s->host->user_rooms(s->host->ud, uid, script__idlist_add, l, w)};
    r.ids = l->ids;
    r.nids = l->len;
    return script__reply_or_wait(L, w, &r, push_list);
}

void script__inject_rooms(lua_State *L, script_t *s, int hub) {
    static const luaL_Reg funcs[] = {
        {"join", l_join},
        {"leave", l_leave},
        {"is_member", l_is_member},
        {"room_members", l_room_members},
        {"room_info", l_room_info},
        {"user_rooms", l_user_rooms},
        {NULL, NULL},
    };
    script__register(L, s, hub, funcs);
}

/* ---- presence: hub.presence_get, presence_set, presence_subscribe -------- */

static int push_status(lua_State *L, const script_reply *r) {
    if (r->rc < 0) return script__host_error(L, r->rc);
    lua_pushstring(L, presence_status_name((presence_status)r->rc));
    return 1;
}

static int l_presence_get(lua_State *L) {
    script_t *s = script__self(L);
    const char *uid = luaL_checkstring(L, 1);
    script_wait *w = script__wait_slot(L);
    script_reply r = {.rc = s->host->presence_get(s->host->ud, uid, w)};
    return script__reply_or_wait(L, w, &r, push_status);
}

static int push_presence_set(lua_State *L, const script_reply *r) {
    if (r->rc < 0) {
        script__host_failed(L, r->rc);
        return script__fail(L, ERR_NOT_FOUND, "user '%s' is not connected",
                            lua_tostring(L, 1));
    }
    lua_pushboolean(L, r->rc);
    return 1;
}

static int l_presence_set(lua_State *L) {
    script_t *s = script__self(L);
    const char *uid = luaL_checkstring(L, 1);
    const char *name = luaL_checkstring(L, 2);
    presence_status st;
    if (presence_parse_status(name, &st) < 0)
        return script__fail(L, ERR_BAD_MESSAGE,
                            "status must be online, away, busy or offline");
    script_wait *w = script__wait_slot(L);
    script_reply r = {.rc =
                          s->host->presence_set(s->host->ud, uid, (int)st, w)};
    return script__reply_or_wait(L, w, &r, push_presence_set);
}

/* statuses[uid] = status for each id asked: the list at 2, as many as
 * r->nids, which is how many were asked (script__wait_asked: the list
 * may have changed while the call waited). */
static int push_statuses(lua_State *L, const script_reply *r) {
    if (r->rc < 0) {
        script__host_failed(L, r->rc);
        return script__fail(L, ERR_RATE_LIMITED,
                            "at most %d presence subscriptions per connection",
                            PRESENCE_MAX_SUBSCRIPTIONS);
    }
    size_t n = lua_objlen(L, 2);
    if (n > r->nids) n = r->nids;
    lua_createtable(L, 0, (int)n);
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 2, (int)i + 1);
        lua_pushstring(L,
                       presence_status_name((presence_status)r->statuses[i]));
        lua_rawset(L, -3); /* stack: statuses */
    }
    return 1;
}

static int l_presence_subscribe(lua_State *L) {
    script_t *s = script__self(L);
    const char *cid = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    size_t n = lua_objlen(L, 2);
    /* Userdata, not malloc: if anything below raises, the GC frees them. */
    const char **ids = lua_newuserdata(L, (n ? n : 1) * sizeof *ids);
    int *statuses = lua_newuserdata(L, (n ? n : 1) * sizeof *statuses);
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 2, (int)i + 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            return script__fail(L, ERR_BAD_MESSAGE, "user_ids must be strings");
        ids[i] = lua_tostring(L, -1);
        lua_pop(L, 1); /* the table keeps the string alive */
    }
    script_wait *w = script__wait_slot(L);
    script_reply r = {0};
    r.rc = s->host->presence_subscribe(s->host->ud, cid, ids, n, statuses, w);
    if (r.rc == -EINPROGRESS && w) {
        script__wait_begin(L, w, push_statuses);
        script__wait_asked(w, n);
        return 1;
    }
    r.statuses = statuses;
    r.nids = n;
    return push_statuses(L, &r);
}

void script__inject_presence(lua_State *L, script_t *s, int hub) {
    static const luaL_Reg funcs[] = {
        {"presence_get", l_presence_get},
        {"presence_set", l_presence_set},
        {"presence_subscribe", l_presence_subscribe},
        {NULL, NULL},
    };
    script__register(L, s, hub, funcs);
}

/* ---- connections: hub.online_users, user_connections, conn_info, now ----- */

static int l_online_users(lua_State *L) {
    script_t *s = script__self(L);
    script_idlist *l = idlist_start(L);
    script_wait *w = script__wait_slot(L);
    script_reply r = {
        .rc = s->host->online_users(s->host->ud, script__idlist_add, l, w)};
    r.ids = l->ids;
    r.nids = l->len;
    return script__reply_or_wait(L, w, &r, push_list);
}

static int l_user_connections(lua_State *L) {
    script_t *s = script__self(L);
    const char *uid = luaL_checkstring(L, 1);
    script_idlist *l = idlist_start(L);
    script_wait *w = script__wait_slot(L);
    script_reply r = {.rc = s->host->user_connections(
                          s->host->ud, uid, script__idlist_add, l, w)};
    r.ids = l->ids;
    r.nids = l->len;
    return script__reply_or_wait(L, w, &r, push_list);
}

static int l_conn_info(lua_State *L) {
    script_t *s = script__self(L);
    const char *cid = luaL_checkstring(L, 1);
    script_conn_info ci;
    if (s->host->conn_info(s->host->ud, cid, &ci) < 0) {
        lua_pushnil(L);
        return 1;
    }
    lua_createtable(L, 0, 9);
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "id");
    lua_pushstring(L, ci.user_id);
    lua_setfield(L, -2, "user");
    set_number(L, "connected_at", (double)ci.connected_at);
    set_number(L, "last_activity", (double)ci.last_activity);
    set_number(L, "messages_in", (double)ci.messages_in);
    set_number(L, "messages_out", (double)ci.messages_out);
    set_number(L, "bytes_in", (double)ci.bytes_in);
    set_number(L, "bytes_out", (double)ci.bytes_out);
    if (ci.ip[0]) {
        lua_pushstring(L, ci.ip);
        lua_setfield(L, -2, "ip");
    }
    return 1; /* stack: info */
}

/* valid_user_id(v): whether v is a string the server takes as a user id
 * (the rule of conns_valid_user_id, so that scripts need not copy it). */
static int l_valid_user_id(lua_State *L) {
    size_t n;
    const char *v =
        lua_type(L, 1) == LUA_TSTRING ? lua_tolstring(L, 1, &n) : NULL;
    lua_pushboolean(L, v && conns_valid_user_id(v, n));
    return 1;
}

static int l_now(lua_State *L) {
    lua_pushnumber(L, (lua_Number)clock_now_ms());
    return 1;
}

void script__inject_conns(lua_State *L, script_t *s, int hub) {
    static const luaL_Reg funcs[] = {
        {"online_users", l_online_users},
        {"user_connections", l_user_connections},
        {"conn_info", l_conn_info},
        {"valid_user_id", l_valid_user_id},
        {"now", l_now},
        {NULL, NULL},
    };
    script__register(L, s, hub, funcs);
}

/* hub.limits: the core's limits, so that scripts check them without
 * writing them again. */
void script__inject_limits(lua_State *L, script_t *s, int hub) {
    static const struct {
        const char *name;
        double value;
    } numbers[] = {
        {"room_id_max", ROOM_ID_MAX},
        {"user_id_max", CONN_USER_ID_MAX},
        {"timer_delay_max", SCRIPT_MAX_TIMER_DELAY},
        {"timers_max", SCRIPT_MAX_TIMERS},
        {"timer_name_max", SCRIPT_MAX_TIMER_NAME},
        {"timer_arg_max", SCRIPT_MAX_TIMER_ARG},
    };
    if (hub < 0) hub = lua_gettop(L) + hub + 1;
    lua_createtable(L, 0, 8);
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        lua_pushnumber(L, numbers[i].value);
        lua_setfield(L, -2, numbers[i].name);
    }
    lua_pushstring(L, CONN_USER_ID_CHARS);
    lua_setfield(L, -2, "user_id_chars");
    /* --max-listed-members, the one limit that is the operator's. */
    lua_pushnumber(L, (lua_Number)s->max_listed);
    lua_setfield(L, -2, "max_listed_members");
    lua_setfield(L, hub, "limits"); /* stack: (as before) */
}

/* ---- the runtime's: log, set_fail ---------------------------------------- */

/* log(level, message [, stack level]): hub.log (lua/hub.lua) formats and
 * calls this with 2, to name its caller's script and line. */
static int l_log(lua_State *L) {
    const char *level = luaL_checkstring(L, 1);
    const char *msg = luaL_checkstring(L, 2);
    log_level lv;
    if (log_level_parse(level, &lv) < 0)
        return luaL_error(L, "unknown log level '%s'", level);
    if (!log_enabled(lv)) return 0;
    /* Name the script and line that logged: the caller at the given stack
     * level (0 means no position). */
    int depth = (int)luaL_optinteger(L, 3, 1);
    lua_Debug ar;
    if (depth > 0 && lua_getstack(L, depth, &ar) && lua_getinfo(L, "Sl", &ar) &&
        ar.currentline > 0)
        log_write(lv, "lua", "%s (%s:%d)", msg, ar.short_src, ar.currentline);
    else
        log_write(lv, "lua", "%s", msg);
    return 0;
}

/* set_fail(fn): protocol.fail (lua/protocol.lua), which script__fail
 * raises through. */
static int l_set_fail(lua_State *L) {
    script_t *s = script__self(L);
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_pushvalue(L, 1);
    lua_rawseti(L, LUA_REGISTRYINDEX, s->fail_ref);
    return 0;
}

void script__inject_log(lua_State *L, script_t *s, int core) {
    static const luaL_Reg funcs[] = {
        {"log", l_log},
        {"set_fail", l_set_fail},
        {NULL, NULL},
    };
    script__register(L, s, core, funcs);
}
