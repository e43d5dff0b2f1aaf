/* script_timer.c -- hub.after, hub.every and hub.cancel, on libuv
 * (script_int.h). A timer's call runs guarded like any other call into
 * Lua. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include "alloc.h"
#include "log.h"
#include "script_int.h"

/* A timer from hub.after / hub.every. One that calls a function (a
 * closure, fn_ref) belongs to its script state and dies with it. One that
 * calls a name ("module.function", with an argument kept as JSON) holds
 * nothing of the state: a reload hands it to the new state
 * (script_adopt_timers), which resolves the name afresh when it fires. */
struct script_timer {
    uv_timer_t handle;
    script_t *s;
    int fn_ref; /* LUA_NOREF for a named timer */
    char *name; /* NULL for a closure */
    char *arg;  /* the argument as JSON, or NULL (nil) */
    size_t arglen;
    double id;
    int repeat;
    struct script_timer *prev, *next;
};

/* Timer ids are unique for the process, not per state: a named timer keeps
 * its id in the next state, whose own timers must not take it. */
static double last_timer_id;

static void timer_free(uv_handle_t *h) {
    script_timer_t *t = h->data;
    free(t->name);
    free(t->arg);
    free(t);
}

static void timer_unlink(script_t *s, script_timer_t *t) {
    if (t->prev)
        t->prev->next = t->next;
    else
        s->timers = t->next;
    if (t->next) t->next->prev = t->prev;
    t->prev = t->next = NULL;
    s->ntimers--;
}

static void timer_link(script_t *s, script_timer_t *t) {
    t->s = s;
    t->prev = NULL;
    t->next = s->timers;
    if (s->timers) s->timers->prev = t;
    s->timers = t;
    s->ntimers++;
}

/* Unlinks t, lets go of its function, and closes its handle (the memory
 * goes in the close callback, as libuv requires). L is the thread running
 * (s's, or a call's coroutine). */
static void timer_remove(lua_State *L, script_t *s, script_timer_t *t) {
    timer_unlink(s, t);
    if (!s->poisoned && t->fn_ref != LUA_NOREF)
        luaL_unref(L, LUA_REGISTRYINDEX, t->fn_ref);
    uv_timer_stop(&t->handle);
    uv_close((uv_handle_t *)&t->handle, timer_free);
}

static script_timer_t *timer_find(script_t *s, double id) {
    for (script_timer_t *t = s->timers; t; t = t->next)
        if (t->id == id) return t;
    return NULL;
}

static void on_timer(uv_timer_t *h) {
    script_timer_t *t = h->data;
    script_t *s = t->s;
    if (s->poisoned) return;
    lua_State *L = s->L;
    double id = t->id;
    char label[SCRIPT_MAX_TIMER_NAME + 40];
    if (t->name)
        snprintf(label, sizeof label, "%.0f (%s)", id, t->name);
    else
        snprintf(label, sizeof label, "%.0f", id);
    int named = t->name != NULL;
    /* The runtime's timer(fn, name, arg), run in a coroutine
     * (script__start): a named timer's name is resolved by the runtime, and
     * its argument decoded afresh, so that every call gets its own copy. */
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->timer_call_ref);
    json_error jerr;
    if (named) {
        lua_pushnil(L);
        lua_pushstring(L, t->name);
        if (!t->arg || script__decode(s, L, t->arg, t->arglen, &jerr) < 0)
            lua_pushnil(L);
    } else {
        lua_rawgeti(L, LUA_REGISTRYINDEX, t->fn_ref);
        lua_pushnil(L);
        lua_pushnil(L);
    }
    /* A one-shot timer is gone before it runs, so that its function may
     * start new timers or cancel others freely. */
    if (!t->repeat) timer_remove(L, s, t);
    /* stack: timer, fn, name, arg */
    s->call_kind = SCRIPT_CALL_TIMER;
    s->call_label = label;
    s->call_conn = NULL;
    s->call_id = NULL;
    int rc = script__start(s, 3);
    int waits = script__run_end(s, rc);
    s->call_label = NULL;
    if (waits || rc == -ETIMEDOUT) {
        if (!s->poisoned) lua_settop(L, 0);
        return;
    }
    if (script__timer_over(s, label, rc)) {
        /* The name no longer resolves (the module or function is gone from
         * the scripts since the timer was set): nothing to call, ever. */
        log_warn("script", "timer %.0f cancelled: %s", id,
                 lua_isstring(L, -1) ? lua_tostring(L, -1) : label);
        script_timer_t *still = timer_find(s, id);
        if (still) timer_remove(L, s, still);
    }
    lua_settop(L, 0);
}

/* hub.after(ms, fn) / hub.after(ms, "module.function" [, arg]), and every. */
static int start_timer(lua_State *L, int repeat) {
    script_t *s = script__self(L);
    double ms = luaL_checknumber(L, 1);
    int named = lua_type(L, 2) == LUA_TSTRING;
    if (!named && !lua_isfunction(L, 2))
        return luaL_error(L,
                          "a timer calls a function or a name "
                          "'module.function' (got %s)",
                          luaL_typename(L, 2));
    if (!s->loop) return luaL_error(L, "timers need a running server");
    if (!(ms >= 1 && ms <= SCRIPT_MAX_TIMER_DELAY))
        return luaL_error(L, "a timer's delay is 1 ms to a year");
    if (s->ntimers >= SCRIPT_MAX_TIMERS)
        return luaL_error(L, "at most %d timers", SCRIPT_MAX_TIMERS);
    buf_t arg;
    buf_init(&arg, 0);
    if (named) {
        if (lua_objlen(L, 2) > SCRIPT_MAX_TIMER_NAME)
            return luaL_error(L, "a timer's name is at most %d bytes",
                              SCRIPT_MAX_TIMER_NAME);
        /* Resolve it now, so that a misspelled name fails here, in the
         * handler that set it, rather than later in the log. */
        lua_rawgeti(L, LUA_REGISTRYINDEX, s->timer_ref);
        if (!lua_isfunction(L, -1))
            return luaL_error(L, "named timers need the runtime");
        lua_pushvalue(L, 2);
        lua_pushnil(L);
        lua_pushboolean(L, 1);
        lua_call(L, 3, 2);
        if (!lua_toboolean(L, -2)) return lua_error(L);
        lua_pop(L, 2);
        if (!lua_isnoneornil(L, 3)) {
            if (script__encode(L, 3, &arg, s->array_mt_ref)) {
                buf_close(&arg);
                return lua_error(L);
            }
            if (arg.len > SCRIPT_MAX_TIMER_ARG) {
                buf_close(&arg);
                return luaL_error(L,
                                  "a timer's argument is at most %d bytes "
                                  "of JSON",
                                  SCRIPT_MAX_TIMER_ARG);
            }
        }
    }
    script_timer_t *t = xcalloc(1, sizeof *t);
    t->repeat = repeat;
    t->id = ++last_timer_id;
    t->fn_ref = LUA_NOREF;
    if (named) {
        t->name = xstrdup(lua_tostring(L, 2));
        if (arg.len) {
            t->arglen = arg.len;
            t->arg = xstrndup(buf_content(&arg), arg.len);
        }
    } else {
        lua_pushvalue(L, 2);
        t->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    buf_close(&arg);
    uv_timer_init((uv_loop_t *)s->loop, &t->handle);
    t->handle.data = t;
    uv_timer_start(&t->handle, on_timer, (uint64_t)ms,
                   repeat ? (uint64_t)ms : 0);
    timer_link(s, t);
    lua_pushnumber(L, t->id);
    return 1;
}

static int l_after(lua_State *L) {
    return start_timer(L, 0);
}
static int l_every(lua_State *L) {
    return start_timer(L, 1);
}

static int l_cancel(lua_State *L) {
    script_t *s = script__self(L);
    double id = luaL_checknumber(L, 1);
    script_timer_t *t = timer_find(s, id);
    if (t) timer_remove(L, s, t);
    lua_pushboolean(L, t != NULL);
    return 1;
}

static int l_set_timer_runner(lua_State *L) {
    script_t *s = script__self(L);
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_pushvalue(L, 1);
    if (s->timer_ref == LUA_NOREF)
        s->timer_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    else
        lua_rawseti(L, LUA_REGISTRYINDEX, s->timer_ref);
    return 0;
}

void script_adopt_timers(script_t *to, script_t *from, size_t *kept,
                         size_t *cancelled) {
    *kept = *cancelled = 0;
    while (from->timers) {
        script_timer_t *t = from->timers;
        if (!t->name) {
            timer_remove(from->L, from, t);
            ++*cancelled;
            continue;
        }
        timer_unlink(from, t);
        timer_link(to, t);
        /* A one-shot that came due while the old state was poisoned did
         * not run (and is stopped): it runs now, in the new state. */
        if (!uv_is_active((uv_handle_t *)&t->handle))
            uv_timer_start(&t->handle, on_timer, 0, 0);
        ++*kept;
    }
}

void script__timers_close(script_t *s) {
    while (s->timers)
        timer_remove(s->L, s, s->timers);
}

void script__inject_timers(lua_State *L, script_t *s, int hub, int core) {
    static const luaL_Reg public[] = {
        {"after", l_after},
        {"every", l_every},
        {"cancel", l_cancel},
        {NULL, NULL},
    };
    static const luaL_Reg private[] = {
        {"set_timer_runner", l_set_timer_runner},
        {NULL, NULL},
    };
    script__register(L, s, hub, public);
    script__register(L, s, core, private);
}
