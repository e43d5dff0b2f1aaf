/* script_wait.c -- calls that wait on the host, cosocket style
 * (script_int.h).
 *
 * Every call into the scripts (a message's dispatch, the on_message hook
 * with it, a timer's callback) runs in a coroutine whose body is
 * lua/runtime.lua's worker, started and resumed from C (script__start,
 * script__resume: no Lua frame of the runtime's around it). A C function of the
 * API that may wait hands the host the call's record (script__wait_slot); when
 * the host returns -EINPROGRESS, it keeps the record and the function returns a
 * marker, which the runtime's wrapper (lua/hub.lua) yields to C, which keeps
 * the coroutine in the record (script__run_end) and returns to the loop.
 * script_wake puts the call's context back and resumes the coroutine, in a
 * guarded run of its own; the wrapper then calls core.reply with the function's
 * own arguments, and the function's push routine pushes the reply, the one
 * routine both paths use, so a reply raises exactly what an answer at once
 * raises.
 *
 * A record lives from the call's first wait until the call is over and
 * the host no longer holds it. A call that ends while the host holds its
 * record (an error raised between the host's answer and the yield, a time
 * limit) leaves it "over": script_wake then only frees it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "codes.h"
#include "log.h"
#include "script_int.h"

struct script_wait {
    script_t *s;
    int kind;     /* enum script_call_kind */
    int held;     /* the host holds it (-EINPROGRESS until script_wake) */
    int over;     /* the call is over; only the host's wake is left */
    int co_ref;   /* the call's coroutine, LUA_NOREF until it waits */
    int answered; /* the frame has had its answer */
    script_push_fn push; /* pushes the reply of the host call waited on */
    char *conn;          /* the call's connection ("" for a timer) */
    char *id_json;       /* the frame's id as the client wrote it, or NULL */
    size_t id_len;
    char *label;  /* a timer's, for the log */
    size_t asked; /* script__wait_asked, when counted */
    int counted;
    struct script_wait *prev, *next;
};

/* The marker the runtime's wrapper yields (a light userdata of its
 * address: no allocation, and nothing a script can make). */
static char wait_marker;

static void wait_link(script_t *s, script_wait *w) {
    w->prev = NULL;
    w->next = s->waits;
    if (s->waits) s->waits->prev = w;
    s->waits = w;
    s->nwaiting++;
}

static void wait_release(script_wait *w) {
    free(w->conn);
    free(w->id_json);
    free(w->label);
    free(w);
}

/* Unlinks w from its state and frees it. */
static void wait_free(script_wait *w) {
    script_t *s = w->s;
    if (w->prev)
        w->prev->next = w->next;
    else
        s->waits = w->next;
    if (w->next) w->next->prev = w->prev;
    s->nwaiting--;
    wait_release(w);
}

const char *script_wait_conn(const script_wait *w) {
    if (w->over) return "";
    if (w->conn) return w->conn;
    /* The call's first wait, asked from inside the host function (before
     * the record keeps the connection): the running call's. */
    return w->s && w->s->call_conn ? w->s->call_conn : "";
}

size_t script_waiting(const script_t *s) {
    return s->nwaiting;
}

/* ---- the C functions' side ----------------------------------------------- */

script_wait *script__wait_slot(lua_State *L) {
    script_t *s = script__self(L);
    if (L != s->call_L || !lua_isyieldable(L)) return NULL;
    if (s->call) return s->call->held ? NULL : s->call;
    if (!s->spare) {
        s->spare = xcalloc(1, sizeof *s->spare);
        s->spare->s = s;
        s->spare->co_ref = LUA_NOREF;
    }
    return s->spare;
}

int script__wait_begin(lua_State *L, script_wait *w, script_push_fn push) {
    script_t *s = script__self(L);
    if (w == s->spare) {
        /* The call's first wait: keep what its answer needs. */
        s->spare = NULL;
        w->kind = s->call_kind;
        w->conn = xstrdup(s->call_conn ? s->call_conn : "");
        if (s->call_id) w->id_json = xstrndup(s->call_id, s->call_id_len);
        w->id_len = s->call_id_len;
        if (s->call_label) w->label = xstrdup(s->call_label);
        wait_link(s, w);
        s->call = w;
    }
    w->held = 1;
    w->push = push;
    w->counted = 0;
    lua_pushlightuserdata(L, &wait_marker);
    return 1;
}

/* Why the running function cannot wait, for its error. */
static const char *cannot_wait_where(lua_State *L) {
    script_t *s = script__self(L);
    if (!s->call_L) return s->where ? s->where : "here";
    if (L != s->call_L) return "inside a coroutine of the script's own";
    if (s->call && s->call->held)
        return "after a call that waited was interrupted";
    return "inside a function that cannot yield (a table.sort comparator, "
           "a string.gsub callback, a metamethod called from C)";
}

void script__wait_asked(script_wait *w, size_t n) {
    w->asked = n;
    w->counted = 1;
}

int script__host_failed(lua_State *L, int rc) {
    if (rc == -EAGAIN)
        return script__fail(L, ERR_UNAVAILABLE,
                            "the cluster is unavailable; retry later "
                            "(nothing was delivered)");
    if (rc != -EDEADLK && rc != -EINPROGRESS) return 0;
    /* The running C function's name, as its caller called it (the
     * wrappers of lua/hub.lua call hub.<name>, or core.store_<verb> for
     * hub.store.<verb>). */
    lua_Debug ar;
    const char *name = "?";
    if (lua_getstack(L, 0, &ar) && lua_getinfo(L, "n", &ar) && ar.name)
        name = ar.name;
    int store = !strncmp(name, "store_", 6);
    return luaL_error(L, "hub.%s%s cannot wait for the cluster %s",
                      store ? "store." : "", store ? name + 6 : name,
                      cannot_wait_where(L));
}

int script__host_error(lua_State *L, int rc) {
    script__host_failed(L, rc);
    return luaL_error(L, "the host failed (%s)", strerror(-rc));
}

int script__reply_or_wait(lua_State *L, script_wait *w, const script_reply *r,
                          script_push_fn push) {
    if (r->rc == -EINPROGRESS && w) return script__wait_begin(L, w, push);
    return push(L, r);
}

int script__push_bool(lua_State *L, const script_reply *r) {
    if (r->rc < 0) return script__host_error(L, r->rc);
    lua_pushboolean(L, r->rc);
    return 1;
}

/* ---- the runtime's side: resume, reply ------------------------------------
 */

/* The key a call's start hands the runtime's worker with its body, and
 * the first value the worker yields when the body is over (a light
 * userdata no script can make): a resume of a script's that got hold of
 * an idle coroutine (coroutine.running() in a handler) runs nothing. */
static char done_marker;

/* The idle coroutines, suspended in the runtime's worker: s->idle_co[1..
 * nidle], each anchored in the same slot of the table idle_ref. A call
 * runs in the slot above them, so that a call that ends without waiting
 * puts its coroutine back by counting it (nidle + 1), with no call into
 * Lua; a slot above nidle may still anchor a coroutine that waits or
 * failed, until it is overwritten (at most SCRIPT_IDLE_MAX of them). */
static void idle_put(script_t *s, lua_State *co, int slot) {
    lua_State *L = s->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->idle_ref);
    lua_pushthread(co);
    lua_xmove(co, L, 1);
    lua_rawseti(L, -2, slot);
    lua_pop(L, 1);
    s->idle_co[slot] = co;
}

/* What a run of a call left in co (status st of script__guard_resume),
 * turned into what script__pcall would have left on L: the body's two
 * results (co goes back among the idle ones), or the wait marker and co,
 * or the error. slot is co's in the idle table, or 0. */
static int run_over(script_t *s, lua_State *co, int slot, int st) {
    lua_State *L = s->L;
    void *key =
        st == LUA_YIELD && lua_gettop(co) >= 1 ? lua_touserdata(co, 1) : NULL;
    if (key == &done_marker) {
        lua_settop(co, 3); /* done, and the body's two results */
        lua_xmove(co, L, 2);
        lua_settop(co, 0);
        if (slot && slot == s->nidle + 1 && s->idle_co[slot] == co)
            s->nidle = slot;
        else if (s->nidle < SCRIPT_IDLE_MAX)
            idle_put(s, co, ++s->nidle);
        return 0;
    }
    if (key == &wait_marker) {
        lua_settop(co, 0);
        lua_pushlightuserdata(L, &wait_marker);
        lua_pushthread(co);
        lua_xmove(co, L, 1);
        return 0;
    }
    if (st == LUA_YIELD) {
        /* The script yielded by itself, outside a coroutine of its own:
         * the call can never go on. */
        lua_settop(co, 0);
        lua_pushstring(L, "attempt to yield from outside a coroutine");
        return -EINVAL;
    }
    lua_xmove(co, L, 1); /* the error */
    return st == LUA_ERRMEM ? -ENOMEM : -EINVAL;
}

/* Runs co with nargs values on its stack, known to C while it runs, so
 * that only the call's own coroutine hands the host a record. */
static int run(script_t *s, lua_State *co, int slot, int nargs) {
    lua_State *outer = s->call_L;
    s->call_L = co;
    int st = script__guard_resume(s, co, nargs);
    s->call_L = outer;
    if (st == -ETIMEDOUT) return st;
    return run_over(s, co, slot, st);
}

int script__start(script_t *s, int nargs) {
    lua_State *L = s->L;
    lua_State *co;
    int slot;
    if (s->nidle > 0) {
        slot = s->nidle--;
        co = s->idle_co[slot];
    } else {
        co = lua_newthread(L);
        lua_rawgeti(L, LUA_REGISTRYINDEX, s->worker_ref);
        lua_xmove(L, co, 1);
        slot = 1;
        idle_put(s, co, slot);
        lua_pop(L, 1);
    }
    if (!lua_checkstack(co, nargs + LUA_MINSTACK)) {
        lua_pop(L, nargs + 1);
        lua_pushstring(L, "cannot start a call: stack overflow");
        return -EINVAL;
    }
    /* co's stack: [worker,] done, body, args */
    lua_pushlightuserdata(co, &done_marker);
    lua_xmove(L, co, nargs + 1);
    return run(s, co, slot, nargs + 2);
}

int script__resume(script_t *s) {
    lua_State *co = lua_tothread(s->L, -1);
    lua_pop(s->L, 1);
    return run(s, co, 0, 0);
}

/* reply(...): in a call that waited and was woken, pushes the reply with
 * the waiting function's arguments (...), through its push routine. A
 * resume that is not script_wake's (a script resumed the coroutine
 * itself) gets the marker again: the call still waits. */
static int l_reply(lua_State *L) {
    script_t *s = script__self(L);
    const script_reply *r = s->reply;
    if (!r || L != s->call_L) {
        lua_pushlightuserdata(L, &wait_marker);
        return 1;
    }
    s->reply = NULL;
    return s->reply_push(L, r);
}

void script__inject_wait(lua_State *L, script_t *s, int core) {
    static const luaL_Reg funcs[] = {{"reply", l_reply}, {NULL, NULL}};
    if (core < 0) core = lua_gettop(L) + core + 1;
    script__register(L, s, core, funcs);
    lua_pushlightuserdata(L, &done_marker);
    lua_setfield(L, core, "DONE");
    lua_pushlightuserdata(L, &wait_marker);
    lua_setfield(L, core, "WAIT");
}

/* ---- a run's end, and the wake --------------------------------------------
 */

/* script__run_end, but a record that is over and that the host no longer
 * holds is left to the caller to free (*done), whose context it may
 * still read. */
static int run_end(script_t *s, int rc, script_wait **done) {
    script_wait *w = s->call;
    lua_State *L = s->L;
    s->call = NULL;
    s->call_L = NULL;
    *done = NULL;
    if (!w) return 0;
    if (rc == 0 && w->held && lua_touserdata(L, -2) == &wait_marker) {
        if (w->co_ref == LUA_NOREF) {
            lua_pushvalue(L, -1);
            w->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        }
        w->answered = s->answered;
        return 1;
    }
    /* Over. A poisoned state's registry is not touched again. */
    if (w->co_ref != LUA_NOREF && !s->poisoned)
        luaL_unref(L, LUA_REGISTRYINDEX, w->co_ref);
    w->co_ref = LUA_NOREF;
    if (w->held)
        w->over = 1;
    else
        *done = w;
    return 0;
}

int script__run_end(script_t *s, int rc) {
    script_wait *done;
    int waits = run_end(s, rc, &done);
    if (done) wait_free(done);
    return waits;
}

void script__answer_begin(script_t *s, buf_t *b, const char *type,
                          size_t tlen) {
    buf_init(b, FRAME_HEADROOM);
    buf_puts(b, "{\"type\":");
    json_write_string(b, type, tlen);
    if (s->call_id) {
        buf_puts(b, ",\"id\":");
        buf_append(b, s->call_id, s->call_id_len);
    }
}

void script__answer_send(script_t *s, buf_t *b) {
    buf_putc(b, '}');
    frame_t *f = frame_from_buf(b);
    /* The frame's own connection: never waits. */
    script_target t = {SCRIPT_TO_CONN, &s->call_conn, 1, NULL, NULL};
    s->host->send(s->host->ud, &t, f, NULL);
    frame_unref(f);
    s->answered = 1;
}

void script__answer_error(script_t *s, const char *code, const char *msg) {
    buf_t b;
    if (s->host->answered_error) s->host->answered_error(s->host->ud, code);
    script__answer_begin(s, &b, "error", 5);
    buf_puts(&b, ",\"code\":");
    json_write_string(&b, code, strlen(code));
    buf_puts(&b, ",\"message\":");
    json_write_string(&b, msg, strlen(msg));
    script__answer_send(s, &b);
}

/* A message's call is over after a wake with rc (and, when 0, the
 * runtime's results on the stack): answers what the runtime did not, as
 * the hub answers at once what script_dispatch returns. */
static void message_over(script_t *s, int rc) {
    lua_State *L = s->L;
    if (rc == 0 && lua_type(L, -2) == LUA_TSTRING) {
        /* The hook renamed the message to a type no handler has. */
        buf_t m;
        buf_init(&m, 0);
        buf_printf(&m, "no handler for type '%s'", lua_tostring(L, -2));
        buf_putc(&m, '\0');
        script__answer_error(s, ERR_UNKNOWN_TYPE, buf_content(&m));
        buf_close(&m);
        return;
    }
    if (rc == 0 || s->answered) return;
    if (rc != -ETIMEDOUT)
        log_error("script", "a waiting call failed conn=%s: %s%s", s->call_conn,
                  rc == -ENOMEM ? "out of memory: " : "",
                  lua_isstring(L, -1) ? lua_tostring(L, -1) : "(no message)");
    script__answer_error(s, ERR_HANDLER_ERROR,
                         rc == -ETIMEDOUT ? SCRIPT_MSG_TIMED_OUT
                                          : SCRIPT_MSG_FAILED);
}

int script__timer_over(script_t *s, const char *label, int rc) {
    lua_State *L = s->L;
    if (rc == -ETIMEDOUT) return 0;
    const char *what =
        rc == 0 && lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    if (rc || (what && !strcmp(what, "failed")))
        log_error("lua", "timer %s failed: %s%s", label,
                  rc == -ENOMEM ? "out of memory: " : "",
                  lua_isstring(L, -1) ? lua_tostring(L, -1) : "(no message)");
    return what && !strcmp(what, "gone");
}

int script_wake(script_wait *w, const script_reply *r) {
    if (script__in_call()) return -EBUSY;
    script_t *s = w->s;
    w->held = 0;
    if (w->over) {
        wait_free(w);
        return 1;
    }
    /* A timer's call has no frame to answer. */
    s->call_conn = w->kind == SCRIPT_CALL_MESSAGE ? w->conn : NULL;
    s->call_id = w->id_json;
    s->call_id_len = w->id_len;
    s->answered = w->answered;
    if (s->poisoned) {
        /* Never resume Lua in a state left mid-call. */
        if (w->kind == SCRIPT_CALL_MESSAGE && !s->answered)
            script__answer_error(s, ERR_HANDLER_ERROR, SCRIPT_MSG_POISONED);
        s->call_conn = s->call_id = NULL;
        wait_free(w);
        return 1;
    }
    lua_State *L = s->L;
    s->call = w;
    s->call_kind = w->kind;
    s->call_label = w->label;
    script_reply asked;
    if (w->counted) {
        asked = *r;
        asked.nids = w->asked;
        r = &asked;
    }
    s->reply = r;
    s->reply_push = w->push;
    lua_rawgeti(L, LUA_REGISTRYINDEX, w->co_ref);
    int rc = script__resume(s);
    s->reply = NULL;
    script_wait *done;
    int waits = run_end(s, rc, &done);
    if (!waits) {
        /* The context in s is w's, freed only after this. */
        if (w->kind == SCRIPT_CALL_MESSAGE)
            message_over(s, rc);
        else
            script__timer_over(s, w->label ? w->label : "?", rc);
    }
    s->call_conn = s->call_id = NULL;
    s->call_label = NULL;
    if (!s->poisoned) lua_settop(L, 0);
    if (done) wait_free(done);
    return waits ? 0 : 1;
}

void script__waits_close(script_t *s) {
    for (script_wait *w = s->waits, *next; w; w = next) {
        next = w->next;
        wait_release(w);
    }
    s->waits = NULL;
    s->nwaiting = 0;
    free(s->spare);
    s->spare = NULL;
}
