/* config_file.c -- see config_file.h. */
#include "config_file.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <luajit.h>
#include <lualib.h>

#include "alloc.h"

/* What one read needs while the chunk runs (the state's allocator and
 * hook reach it through the allocator's ud and the registry). */
typedef struct reader {
    lua_Alloc base_alloc;
    void *base_ud;
    size_t used, limit;
    struct timespec deadline;
    const char *path;
} reader;

static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    reader *r = ud;
    if (nsize > osize && nsize - osize > r->limit - r->used) return NULL;
    void *p = r->base_alloc(r->base_ud, ptr, osize, nsize);
    if (p || nsize == 0) r->used = r->used - osize + nsize;
    return p;
}

static const char reader_key = 0; /* registry key of the reader */

/* Every few thousand instructions: past the deadline, an error that ends
 * the chunk (the sandbox has no pcall to catch it). */
static void deadline_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    lua_pushlightuserdata(L, (void *)&reader_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    const reader *r = lua_touserdata(L, -1);
    lua_pop(L, 1);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec > r->deadline.tv_sec ||
        (now.tv_sec == r->deadline.tv_sec &&
         now.tv_nsec >= r->deadline.tv_nsec)) {
        lua_pushfstring(L,
                        "%s: took longer than %d s to run (an endless loop?)",
                        r->path, CONFIG_FILE_SECONDS);
        lua_error(L);
    }
}

/* The backstop for what the hook cannot see, a C function that runs long
 * (a backtracking string.find): the start is stopped outright, with the
 * same kind of line. Only async-signal-safe calls here. */
static const char *alarm_path;

static void on_alarm(int sig) {
    (void)sig;
    static const char a[] = "luahub: ", b[] = ": took too long to run\n";
    /* Nothing to do about a failed write on the way out. */
    if (write(STDERR_FILENO, a, sizeof a - 1) < 0 ||
        write(STDERR_FILENO, alarm_path, strlen(alarm_path)) < 0 ||
        write(STDERR_FILENO, b, sizeof b - 1) < 0)
        _exit(2);
    _exit(2);
}

/* The globals the chunk sees: enough to compute a value, nothing that
 * reaches outside the state or catches the deadline's error. */
static void push_sandbox(lua_State *L) {
    static const char *const names[] = {
        "string", "math",   "table",    "tostring", "tonumber", "type",
        "pairs",  "ipairs", "next",     "select",   "error",    "assert",
        "unpack", "rawget", "rawequal", NULL};
    lua_newtable(L);
    for (int i = 0; names[i]; i++) {
        lua_getglobal(L, names[i]);
        lua_setfield(L, -2, names[i]);
    }
}

/* The value on top of the stack as an entry's kind and text (a new
 * string). */
static config_value_kind describe(lua_State *L, char **text) {
    char num[64];
    size_t len;
    switch (lua_type(L, -1)) {
    case LUA_TBOOLEAN:
        *text = xstrdup(lua_toboolean(L, -1) ? "true" : "false");
        return CONFIG_VALUE_BOOLEAN;
    case LUA_TNUMBER:
        snprintf(num, sizeof num, "%.14g", lua_tonumber(L, -1));
        *text = xstrdup(num);
        return CONFIG_VALUE_NUMBER;
    case LUA_TSTRING: {
        const char *s = lua_tolstring(L, -1, &len);
        if (strlen(s) != len) {
            *text = xstrdup("a string with a NUL byte");
            return CONFIG_VALUE_OTHER;
        }
        *text = xstrdup(s);
        return CONFIG_VALUE_STRING;
    }
    case LUA_TTABLE: {
        /* A list: items 1..n, strings or numbers, and nothing else. */
        size_t n = lua_objlen(L, -1), keys = 0, total = 0;
        int listy = 1;
        lua_pushnil(L);
        while (listy && lua_next(L, -2)) {
            int t = lua_type(L, -1);
            listy = t == LUA_TSTRING || t == LUA_TNUMBER;
            total += t == LUA_TSTRING ? lua_objlen(L, -1) + 1 : 32;
            keys++;
            lua_pop(L, listy ? 1 : 2); /* the key too when leaving early */
        }
        if (!listy || keys != n) {
            *text = xstrdup("a table that is not a list of strings");
            return CONFIG_VALUE_OTHER;
        }
        char *out = xmalloc(total + 1);
        size_t used = 0;
        out[0] = '\0';
        for (size_t i = 1; i <= n; i++) {
            lua_rawgeti(L, -1, (int)i);
            if (lua_type(L, -1) == LUA_TNUMBER)
                snprintf(num, sizeof num, "%.14g", lua_tonumber(L, -1));
            const char *item = lua_type(L, -1) == LUA_TNUMBER
                                   ? num
                                   : lua_tolstring(L, -1, &len);
            if (!item) item = ""; /* a hole the length did not see */
            used += (size_t)snprintf(out + used, total + 1 - used, "%s%s",
                                     i > 1 ? "," : "", item);
            lua_pop(L, 1);
        }
        *text = out;
        return CONFIG_VALUE_LIST;
    }
    default:
        snprintf(num, sizeof num, "a %s", luaL_typename(L, -1));
        *text = xstrdup(num);
        return CONFIG_VALUE_OTHER;
    }
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const config_entry *)a)->name,
                  ((const config_entry *)b)->name);
}

/* Reads the table on top of the stack into out. */
static int read_table(lua_State *L, const char *path, config_entries *out,
                      char *why, size_t cap) {
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            snprintf(why, cap,
                     "%s: the table has a key that is not a name (a %s); "
                     "write settings as name = value",
                     path, luaL_typename(L, -2));
            lua_pop(L, 2);
            return -1;
        }
        n++;
        lua_pop(L, 1);
    }
    out->v = xcalloc(n ? n : 1, sizeof *out->v);
    lua_pushnil(L);
    while (out->n < n && lua_next(L, -2)) {
        config_entry *e = &out->v[out->n++];
        e->name = xstrdup(lua_tostring(L, -2));
        e->kind = describe(L, &e->text);
        lua_pop(L, 1);
    }
    qsort(out->v, out->n, sizeof *out->v, by_name);
    return 0;
}

int config_file_read(const char *path, config_entries *out, char *why,
                     size_t cap) {
    out->v = NULL;
    out->n = 0;
    lua_State *L = luaL_newstate();
    if (!L) {
        snprintf(why, cap, "%s: cannot create a Lua state", path);
        return -1;
    }
    reader r;
    r.path = path;
    r.base_alloc = lua_getallocf(L, &r.base_ud);
    r.used = (size_t)lua_gc(L, LUA_GCCOUNT, 0) * 1024 +
             (size_t)lua_gc(L, LUA_GCCOUNTB, 0);
    r.limit = (size_t)CONFIG_FILE_MEMORY_MB * 1024 * 1024;
    lua_setallocf(L, capped_alloc, &r);
    luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    static const lua_CFunction libs[] = {luaopen_base, luaopen_string,
                                         luaopen_table, luaopen_math};
    for (size_t i = 0; i < sizeof libs / sizeof *libs; i++) {
        lua_pushcfunction(L, libs[i]);
        lua_call(L, 0, 0);
    }
    lua_pushlightuserdata(L, (void *)&reader_key);
    lua_pushlightuserdata(L, &r);
    lua_rawset(L, LUA_REGISTRYINDEX);

    int rc = -1;
    if (luaL_loadfilex(L, path, "t")) {
        snprintf(why, cap, "%s", lua_tostring(L, -1));
        goto done;
    }
    push_sandbox(L);
    lua_setfenv(L, -2);
    /* stack: chunk */
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    alarm_path = path;
    sigaction(SIGALRM, &sa, &old);
    unsigned left = alarm(CONFIG_FILE_SECONDS * 2 + 1);
    clock_gettime(CLOCK_MONOTONIC, &r.deadline);
    r.deadline.tv_sec += CONFIG_FILE_SECONDS;
    lua_sethook(L, deadline_hook, LUA_MASKCOUNT, 10000);
    int call = lua_pcall(L, 0, 1, 0);
    lua_sethook(L, NULL, 0, 0);
    alarm(left);
    sigaction(SIGALRM, &old, NULL);
    if (call) {
        const char *msg = lua_tostring(L, -1);
        if (call == LUA_ERRMEM)
            snprintf(why, cap, "%s: ran out of memory (%d MB)", path,
                     CONFIG_FILE_MEMORY_MB);
        else
            snprintf(why, cap, "%s", msg ? msg : "an error that is no text");
        goto done;
    }
    /* stack: result */
    if (!lua_istable(L, -1)) {
        snprintf(why, cap,
                 "%s: returns %s%s, not a table of settings "
                 "(return { port = 8080, ... })",
                 path, lua_isnil(L, -1) ? "" : "a ", luaL_typename(L, -1));
        goto done;
    }
    rc = read_table(L, path, out, why, cap);
done:
    lua_close(L);
    if (rc < 0) config_file_free(out);
    return rc;
}

void config_file_free(config_entries *e) {
    for (size_t i = 0; i < e->n; i++) {
        free(e->v[i].name);
        free(e->v[i].text);
    }
    free(e->v);
    e->v = NULL;
    e->n = 0;
}
