/* script.c -- see script.h.
 *
 * The Lua side of the runtime lives in lua/: runtime.lua loads the
 * handlers and dispatches messages, hub.lua is the `hub` module scripts
 * require, protocol.lua turns a handler call into its reply. This file
 * gives them the C functions of `hub.core` and moves JSON in and out of
 * Lua tables with the project's own parser and encoder (so that JSON
 * arrays keep being arrays when empty, and null stays null). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* ucontext_t's registers (REG_RIP) and dl_iterate_phdr */
#endif
#include "script.h"

#include <dirent.h>
#include <link.h>
#include <setjmp.h>
#include <ucontext.h>
#include <stdatomic.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "alloc.h"
#include "envelope.h"
#include "json.h"
#include "log.h"
#include "presence.h"

#define SCRIPT_MAX_ROOM_ID 128

/* A timer from hub.after / hub.every. One that calls a function (a
 * closure, fn_ref) belongs to its script state and dies with it. One that
 * calls a name ("module.function", with an argument kept as JSON) holds
 * nothing of the state: a reload hands it to the new state
 * (script_adopt_timers), which resolves the name afresh when it fires. */
typedef struct script_timer {
    uv_timer_t handle;
    script_t *s;
    int fn_ref;   /* LUA_NOREF for a named timer */
    char *name;   /* NULL for a closure */
    char *arg;    /* the argument as JSON, or NULL (nil) */
    size_t arglen;
    double id;
    int repeat;
    struct script_timer *prev, *next;
} script_timer_t;

#define SCRIPT_MAX_TIMERS 10000
#define SCRIPT_MAX_TIMER_NAME 128
#define SCRIPT_MAX_TIMER_ARG 65536

/* Timer ids are unique for the process, not per state: a named timer keeps
 * its id in the next state, whose own timers must not take it. */
static double last_timer_id;

struct script {
    lua_State *L;
    uv_loop_t *loop;
    double timeout_ms;
    int poisoned;
    int closable; /* poisoned, but left in compiled code: lua_close is safe */
    script_timer_t *timers;
    size_t ntimers;
    int timer_ref; /* the runtime's runner of named timers */
    const script_host *host;
    int dispatch_ref, connect_ref, disconnect_ref;
    int has_connect_hook, has_disconnect_hook;
    int array_mt_ref;
    int fail_ref;
    /* The frame being dispatched, for the length of script_dispatch only
     * (borrowed from the caller): the connection it came on and its id as
     * the client wrote it (NULL: none). hub.core.answer reads them. */
    const char *call_conn, *call_id;
    size_t call_id_len;
    int answered; /* the frame has had its answer */
    size_t count;
    char *types;
    char *hooks;       /* the hooks loaded, ", "-separated */
    char *stray_hooks; /* what is wrong with files in hooks/, or NULL */
    /* The memory cap (see capped_alloc); mem_limit 0: none. */
    lua_Alloc base_alloc;
    void *base_ud;
    size_t mem_used, mem_limit, mem_allowed;
    int mem_refused; /* an allocation was refused during this call */
    int exhausted;   /* still nearly full after a full collection */
    /* Scratch for listing ids: owned here, not by the call, so that a Lua
     * error raised while pushing them (out of memory) leaks nothing. */
    struct idlist {
        const char **ids;
        size_t len, cap;
    } ids;
};

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the memory cap ----------------------------------------------------------
 *
 * Debian's LuaJIT (x64, not GC64) must allocate in the low 2 GB, so a
 * state cannot be created with an allocator of our own. It can be given
 * one after creation, though (lua_setallocf): capped_alloc wraps LuaJIT's
 * own allocator, counts every byte, and refuses growth past the cap.
 * LuaJIT turns the refusal into a "not enough memory" error, which
 * unwinds the call like any other error. The cap holds only inside calls
 * (guarded_pcall): outside one, an error would have no pcall to catch it,
 * and what C pushes there is bounded by the message size. Once a call has
 * been refused it
 * gets an eighth more room, so that the runtime can still build the error
 * reply; after the call a full collection frees what the failed call left,
 * and if the state is still nearly full, its scripts hold on to the memory
 * and it is replaced (script_unhealthy). */

static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    script_t *s = ud;
    if (nsize > osize && nsize - osize > s->mem_allowed - s->mem_used) {
        if (!s->mem_refused) s->mem_allowed += s->mem_limit / 8;
        s->mem_refused = 1;
        return NULL;
    }
    void *p = s->base_alloc(s->base_ud, ptr, osize, nsize);
    if (p || nsize == 0) s->mem_used = s->mem_used - osize + nsize;
    return p;
}

static void install_cap(script_t *s, size_t mb) {
    if (!mb) return;
    lua_State *L = s->L;
    s->base_alloc = lua_getallocf(L, &s->base_ud);
    s->mem_used = (size_t)lua_gc(L, LUA_GCCOUNT, 0) * 1024 +
                  (size_t)lua_gc(L, LUA_GCCOUNTB, 0);
    s->mem_limit = mb * 1024 * 1024;
    s->mem_allowed = SIZE_MAX;
    lua_setallocf(L, capped_alloc, s);
}

static void before_call(script_t *s) {
    if (s->mem_limit) s->mem_allowed = s->mem_limit;
}

/* After every call: if the cap was hit, collect and see what is left. */
static void after_call(script_t *s) {
    s->mem_allowed = SIZE_MAX;
    if (!s->mem_refused) return;
    s->mem_refused = 0;
    if (s->poisoned) return;
    lua_gc(s->L, LUA_GCCOLLECT, 0);
    if (s->mem_used > s->mem_limit / 4 * 3) {
        s->exhausted = 1;
        log_error("script",
                  "the scripts hold %zu KB of their %zu MB after a full "
                  "collection: the state must be replaced",
                  s->mem_used / 1024, s->mem_limit >> 20);
    } else {
        log_warn("script",
                 "a call ran into the %zu MB memory cap and was stopped; "
                 "%zu KB in use after collecting",
                 s->mem_limit >> 20, s->mem_used / 1024);
    }
}

const char *script_unhealthy(const script_t *s) {
    if (s->poisoned) return "a call was abandoned past its time limit";
    if (s->exhausted) return "the memory cap is used up";
    return NULL;
}

size_t script_memory(const script_t *s) {
    if (s->mem_limit) return s->mem_used;
    return (size_t)lua_gc(s->L, LUA_GCCOUNT, 0) * 1024 +
           (size_t)lua_gc(s->L, LUA_GCCOUNTB, 0);
}

/* ---- time limits ------------------------------------------------------------
 *
 * Every call into Lua (a message, a hook, a timer) runs under a watchdog: a
 * POSIX timer aimed at this thread. Count hooks alone cannot do it: Debian's
 * LuaJIT is built without CHECKHOOK, so compiled loops never look at the
 * hook, and a C library call (a backtracking string.find) never returns to
 * the VM. So the limit works in stages:
 *   1. at the limit, the signal handler sets a hook (lua_sethook is meant
 *      to be called from a signal handler); interpreted code stops at its
 *      next instruction with the error "timed out", and the state goes on;
 *   2. at 1.5 times, if the call is still running, it is in compiled code or
 *      in a C function. If it is in compiled code (the interrupted address
 *      is in none of the loaded objects' code), the handler jumps back out
 *      of it (siglongjmp) and the state is marked poisoned, never to run
 *      again; the hub loads a fresh one. Nothing durable lives in a Lua
 *      state (rooms, presence, hub.store, connection metadata and named
 *      timers are C's), so only closure timers are lost. In a C function
 *      (LuaJIT's, libc's, or one of hub.core's, any of which may be in
 *      malloc), the jump waits for a tick that finds the call back in
 *      compiled code, or the next stage;
 *   3. at 2 times, it jumps regardless.
 *
 * A state left in compiled code is closed when it is replaced, which gives
 * its memory back. Compiled code changes the heap only through LuaJIT's C
 * helpers (allocation, table resizing, the GC), which it calls and which
 * return before it goes on: at any address in compiled code, every object
 * is whole and the allocator is between calls. What the jump leaves behind
 * is the C side of the call (L->cframe and the stack top, which lua_close
 * resets) and the hook of stage 1 (removed). A state left anywhere else
 * may be in the middle of malloc or of building an object, and closing it
 * could crash the server, so it is given up unclosed: only a call that
 * spends the whole extra half of its limit in C code (a backtracking
 * string.find) costs its memory. Whether the address was compiled code is
 * decided after the jump, from /proc/self/maps, where JIT code is an
 * anonymous executable mapping; the handler itself checks a list of the
 * loaded objects' code taken outside it (code_ranges_update).
 *
 * A call costs no system call: the timer ticks every eighth of the limit
 * while calls are being made, and a call only writes down when it started
 * (the vDSO clock). The handler compares. After eight ticks with no call
 * the timer stops itself, and the next call starts it again. The signal
 * does not block itself (SA_NODEFER), so jumping out of the handler needs
 * no signal mask saved and restored either. */

static script_t *volatile running; /* the state a guarded call runs in */
static sigjmp_buf escape;
static volatile sig_atomic_t stage;
static volatile sig_atomic_t in_host; /* inside a hub.core C function */
static volatile int64_t call_start_ns, call_limit_ns;
static volatile sig_atomic_t calls; /* calls started (wraps) */
static volatile sig_atomic_t armed, idle_ticks;
static sig_atomic_t calls_seen;
static timer_t watchdog;
static int watchdog_ready;
static volatile uintptr_t escape_pc; /* where the jump left the call */

/* The code of every loaded object (executable, libraries, vDSO): an address
 * in none of them is JIT-compiled Lua. Updated outside calls only. */
#define MAX_CODE_RANGES 256
static struct code_range {
    uintptr_t lo, hi;
} code_ranges[MAX_CODE_RANGES];
static volatile sig_atomic_t ncode_ranges;

static int add_code_ranges(struct dl_phdr_info *info, size_t size, void *n) {
    size_t *count = n;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
        if (*count == MAX_CODE_RANGES) return 1;
        code_ranges[*count].lo = info->dlpi_addr + ph->p_vaddr;
        code_ranges[*count].hi = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
        ++*count;
    }
    return 0;
}

static void code_ranges_update(void) {
    size_t n = 0;
    ncode_ranges = 0;
    dl_iterate_phdr(add_code_ranges, &n);
    ncode_ranges = (sig_atomic_t)n;
}

/* The interrupted instruction's address, or 0 where unknown. */
static uintptr_t context_pc(void *uc) {
#if defined(__x86_64__)
    return (uintptr_t)((ucontext_t *)uc)->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    return (uintptr_t)((ucontext_t *)uc)->uc_mcontext.pc;
#else
    (void)uc;
    return 0;
#endif
}

/* In the signal handler: 1 when pc is in none of the loaded objects. */
static int outside_loaded_code(uintptr_t pc) {
    for (sig_atomic_t i = 0; i < ncode_ranges; i++)
        if (pc >= code_ranges[i].lo && pc < code_ranges[i].hi) return 0;
    return 1;
}

/* After the jump: 1 when pc is in an anonymous executable mapping, which is
 * where LuaJIT puts its machine code. */
static int in_compiled_code(uintptr_t pc) {
    FILE *f = pc ? fopen("/proc/self/maps", "r") : NULL;
    if (!f) return 0;
    char *line = NULL;
    size_t cap = 0;
    int found = 0;
    while (getline(&line, &cap, f) > 0) {
        unsigned long lo, hi;
        char perms[5];
        int end = 0;
        if (sscanf(line, "%lx-%lx %4s %*s %*s %*s %n", &lo, &hi, perms,
                   &end) < 3 || !end)
            continue;
        if (pc < lo || pc >= hi) continue;
        found = perms[2] == 'x' && line[end] == '\0';
        break;
    }
    free(line);
    fclose(f);
    return found;
}

#define WATCHDOG_IDLE_TICKS 8

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void timeout_hook(lua_State *L, lua_Debug *ar) {
    lua_sethook(L, NULL, 0, 0);
    luaL_error(L, "timed out");
}

static void watchdog_set(int64_t period_ns) {
    struct itimerspec it = {
        .it_value = {period_ns / 1000000000, period_ns % 1000000000},
        .it_interval = {period_ns / 1000000000, period_ns % 1000000000},
    };
    timer_settime(watchdog, 0, &it, NULL);
}

static void on_watchdog(int sig, siginfo_t *si, void *uc) {
    script_t *s = running;
    if (!s) {
        if (calls != calls_seen) {
            calls_seen = calls;
            idle_ticks = 0;
        } else if (++idle_ticks >= WATCHDOG_IDLE_TICKS) {
            armed = 0;
            watchdog_set(0);
        }
        return;
    }
    idle_ticks = 0;
    int64_t ran = mono_ns() - call_start_ns, limit = call_limit_ns;
    if (ran < limit) return;
    if (!stage) {
        stage = 1;
        lua_sethook(s->L, timeout_hook,
                    LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
        return;
    }
    if (ran < limit + limit / 2) return;
    /* Without the list of loaded code (no address on this platform), the
     * hub's own functions are the only C code known. */
    uintptr_t pc = context_pc(uc);
    int in_c = ncode_ranges && pc ? !outside_loaded_code(pc) : in_host;
    if (in_c && ran < 2 * limit) return;
    stage = 2;
    escape_pc = pc;
    siglongjmp(escape, 1);
}

static int watchdog_init(void) {
    if (watchdog_ready) return 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_watchdog;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGRTMIN + 1, &sa, NULL) < 0) return -1;
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = SIGRTMIN + 1;
    sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    if (timer_create(CLOCK_MONOTONIC, &sev, &watchdog) < 0) return -1;
    code_ranges_update();
    watchdog_ready = 1;
    return 0;
}

/* Ticks every eighth of the limit, between 1 and 50 ms. */
static void watchdog_start(int64_t limit_ns) {
    int64_t tick = limit_ns / 8;
    if (tick < 1000000) tick = 1000000;
    if (tick > 50000000) tick = 50000000;
    idle_ticks = 0;
    armed = 1;
    watchdog_set(tick);
}

#define GUARD_ESCAPED (-100)

/* lua_pcall under the time limit. Returns lua_pcall's result, or
 * GUARD_ESCAPED when the call had to be abandoned (s is then poisoned). */
static int guarded_pcall(script_t *s, int nargs, int nresults, int msgh) {
    before_call(s);
    if (s->timeout_ms <= 0 || watchdog_init() < 0) {
        int rc = lua_pcall(s->L, nargs, nresults, msgh);
        after_call(s);
        return rc;
    }
    if (sigsetjmp(escape, 0)) {
        running = NULL;
        s->poisoned = 1;
        s->closable = in_compiled_code(escape_pc);
        log_error("script",
                  "a call ran past its %.0f ms limit in %s and was abandoned; "
                  "the scripts will be reloaded%s",
                  s->timeout_ms,
                  s->closable ? "compiled code" : "a C function",
                  s->closable ? ""
                              : " (the old state cannot be closed safely: "
                                "its memory stays taken)");
        after_call(s);
        return GUARD_ESCAPED;
    }
    stage = 0;
    in_host = 0;
    call_limit_ns = (int64_t)(s->timeout_ms * 1e6);
    call_start_ns = mono_ns();
    calls++;
    /* The order matters: with running set, the handler cannot stop the
     * timer, so reading armed after it is safe. */
    atomic_signal_fence(memory_order_seq_cst);
    running = s;
    atomic_signal_fence(memory_order_seq_cst);
    if (!armed) watchdog_start(call_limit_ns);
    int rc = lua_pcall(s->L, nargs, nresults, msgh);
    running = NULL;
    atomic_signal_fence(memory_order_seq_cst);
    if (stage >= 1) lua_sethook(s->L, NULL, 0, 0);
    after_call(s);
    return rc;
}

/* ---- JSON -> Lua ------------------------------------------------------- */

typedef struct decoder {
    lua_State *L;
    script_t *s;
    int depth;
    /* Per open container: 0 object, 1 array; and the next array index. */
    unsigned char is_array[JSON_MAX_DEPTH + 2];
    int index[JSON_MAX_DEPTH + 2];
} decoder_t;

/* Stores the value on top of the stack into the open container. */
static int dec_store(decoder_t *d) {
    if (d->depth == 0) return 0; /* the top-level value stays on the stack */
    if (d->is_array[d->depth])
        lua_rawseti(d->L, -2, ++d->index[d->depth]);
    else
        lua_rawset(d->L, -3); /* stack: table, key, value */
    return 0;
}

static int dec_open(decoder_t *d, int array) {
    if (!lua_checkstack(d->L, 4)) return -1;
    /* Room for a few entries up front: most frames' tables are small, and
     * growing a table one rehash at a time costs an allocation each. */
    lua_createtable(d->L, array ? 4 : 0, array ? 0 : 4);
    if (array) {
        lua_rawgeti(d->L, LUA_REGISTRYINDEX, d->s->array_mt_ref);
        lua_setmetatable(d->L, -2);
    }
    d->depth++;
    d->is_array[d->depth] = (unsigned char)array;
    d->index[d->depth] = 0;
    return 0;
}

static int dec_close(decoder_t *d) {
    d->depth--;
    return dec_store(d);
}

static int dec_begin_object(void *ud) { return dec_open(ud, 0); }
static int dec_begin_array(void *ud) { return dec_open(ud, 1); }
static int dec_end(void *ud) { return dec_close(ud); }

static int dec_key(void *ud, const char *s, size_t n) {
    decoder_t *d = ud;
    lua_pushlstring(d->L, s, n);
    return 0;
}

static int dec_string(void *ud, const char *s, size_t n, const char *raw,
                      size_t rawlen) {
    decoder_t *d = ud;
    lua_pushlstring(d->L, s, n);
    return dec_store(d);
}

static int dec_number(void *ud, double v, const char *raw, size_t rawlen) {
    decoder_t *d = ud;
    lua_pushnumber(d->L, v);
    return dec_store(d);
}

static int dec_boolean(void *ud, int v) {
    decoder_t *d = ud;
    lua_pushboolean(d->L, v);
    return dec_store(d);
}

static int dec_null(void *ud) {
    decoder_t *d = ud;
    lua_pushlightuserdata(d->L, NULL);
    return dec_store(d);
}

static const json_sink decoder_sink = {
    dec_begin_object, dec_end, dec_begin_array, dec_end, dec_key,
    dec_string,       dec_number, dec_boolean,  dec_null,
};

/* Pushes the decoded value, or returns -1 with the stack as it was and the
 * reason in err. */
static int decode_json(script_t *s, const char *json, size_t len,
                       json_error *err) {
    lua_State *L = s->L;
    int top = lua_gettop(L);
    decoder_t d = {.L = L, .s = s, .depth = 0};
    if (json_parse(json, len, JSON_MAX_DEPTH, &decoder_sink, &d, err) !=
        JSON_OK) {
        lua_settop(L, top);
        return -1;
    }
    return 0;
}

/* ---- Lua -> JSON ------------------------------------------------------- */

static int encode_value(lua_State *L, int idx, buf_t *b, int depth,
                        int array_mt_ref);

static int is_array_table(lua_State *L, int idx, int array_mt_ref,
                          size_t *len) {
    *len = lua_objlen(L, idx);
    if (lua_getmetatable(L, idx)) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, array_mt_ref);
        int marked = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
        if (marked) return 1;
    }
    if (*len == 0) return 0;
    /* An unmarked table is an array when its keys are exactly 1..n. */
    size_t count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TNUMBER) {
            lua_pop(L, 1);
            return 0;
        }
        count++;
    }
    return count == *len;
}

/* 1 when the string key at idx is one of skip (NULL-terminated). */
static int skipped(const char *k, const char *const *skip) {
    for (; *skip; skip++)
        if (!strcmp(k, *skip)) return 1;
    return 0;
}

/* Writes the table's fields as "key":value pairs (no braces), each after a
 * comma unless *first; keys listed in skip (NULL-terminated, or NULL) are
 * left out. */
static int encode_members(lua_State *L, int idx, buf_t *b, int depth,
                          int array_mt_ref, int *first,
                          const char *const *skip) {
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        /* stack: key, value */
        int kt = lua_type(L, -2);
        if (kt != LUA_TSTRING && kt != LUA_TNUMBER) {
            lua_pop(L, 2);
            lua_pushfstring(L, "cannot encode a table key of type %s",
                            lua_typename(L, kt));
            return -1;
        }
        /* A number key is converted on a copy: lua_next needs the key
         * itself untouched. A string key is read in place. */
        int copied = kt == LUA_TNUMBER;
        if (copied) lua_pushvalue(L, -2);
        size_t klen;
        const char *k = lua_tolstring(L, copied ? -1 : -2, &klen);
        if (!copied && skip && skipped(k, skip)) {
            lua_pop(L, 1);
            continue;
        }
        if (!*first) buf_putc(b, ',');
        *first = 0;
        json_write_string(b, k, klen);
        buf_putc(b, ':');
        /* stack: key, value[, key copy] */
        int rc = encode_value(L, lua_gettop(L) - copied, b, depth + 1,
                              array_mt_ref);
        if (rc) {
            /* stack: key, value[, key copy], message */
            lua_insert(L, -3 - copied);
            lua_pop(L, 2 + copied);
            return rc;
        }
        lua_pop(L, 1 + copied);
    }
    return 0;
}

static int encode_table(lua_State *L, int idx, buf_t *b, int depth,
                        int array_mt_ref) {
    if (depth > JSON_MAX_DEPTH) {
        lua_pushstring(L, "cannot encode: nested too deeply (or a cycle)");
        return -1;
    }
    if (!lua_checkstack(L, 6)) {
        lua_pushstring(L, "cannot encode: out of stack");
        return -1;
    }
    size_t len;
    if (is_array_table(L, idx, array_mt_ref, &len)) {
        buf_putc(b, '[');
        for (size_t i = 1; i <= len; i++) {
            if (i > 1) buf_putc(b, ',');
            lua_rawgeti(L, idx, (int)i);
            int rc = encode_value(L, lua_gettop(L), b, depth + 1,
                                  array_mt_ref);
            if (rc) {
                lua_remove(L, -2); /* keep the message */
                return rc;
            }
            lua_pop(L, 1);
        }
        buf_putc(b, ']');
        return 0;
    }
    buf_putc(b, '{');
    int first = 1;
    int rc = encode_members(L, idx, b, depth, array_mt_ref, &first, NULL);
    if (rc) return rc;
    buf_putc(b, '}');
    return 0;
}

static int encode_value(lua_State *L, int idx, buf_t *b, int depth,
                        int array_mt_ref) {
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        buf_puts(b, "null");
        return 0;
    case LUA_TBOOLEAN:
        buf_puts(b, lua_toboolean(L, idx) ? "true" : "false");
        return 0;
    case LUA_TNUMBER:
        if (json_write_number(b, lua_tonumber(L, idx)) < 0) {
            lua_pushstring(L, "cannot encode NaN or infinity");
            return -1;
        }
        return 0;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        json_write_string(b, s, n);
        return 0;
    }
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) {
            buf_puts(b, "null");
            return 0;
        }
        break;
    case LUA_TTABLE:
        return encode_table(L, idx, b, depth, array_mt_ref);
    }
    lua_pushfstring(L, "cannot encode a %s", luaL_typename(L, idx));
    return -1;
}

int script_encode(lua_State *L, int idx, buf_t *b) {
    /* The array metatable lives in the registry of the state's script. */
    lua_getfield(L, LUA_REGISTRYINDEX, "luahub.array_mt_ref");
    int ref = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (idx < 0) idx = lua_gettop(L) + idx + 1;
    return encode_value(L, idx, b, 0, ref);
}

/* ---- hub.core ---------------------------------------------------------- */

static script_t *self(lua_State *L) {
    return lua_touserdata(L, lua_upvalueindex(1));
}

/* Raises a protocol error through protocol.fail, so that the client gets
 * `code` rather than handler_error. Does not return. */
static int fail(lua_State *L, const char *code, const char *fmt, ...) {
    script_t *s = self(L);
    va_list ap;
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->fail_ref);
    lua_pushstring(L, code);
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    lua_call(L, 2, 0);
    return 0;
}

/* The message argument at idx as a frame: a table is encoded, a string is
 * checked to be JSON and sent as it is. Returns a new reference; raises on
 * error. */
static frame_t *arg_frame(lua_State *L, int idx) {
    script_t *s = self(L);
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
    if (encode_value(L, idx, &b, 0, s->array_mt_ref)) {
        buf_close(&b);
        lua_error(L);
    }
    return frame_from_buf(&b);
}

/* Reads {except_conn=, except_user=} at idx into t. */
static void arg_opts(lua_State *L, int idx, script_target *t) {
    t->except_conn = t->except_user = NULL;
    if (lua_isnoneornil(L, idx)) return;
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_getfield(L, idx, "except_conn");
    if (!lua_isnil(L, -1)) t->except_conn = luaL_checkstring(L, -1);
    lua_getfield(L, idx, "except_user");
    if (!lua_isnil(L, -1)) t->except_user = luaL_checkstring(L, -1);
    /* The strings stay referenced by the opts table for the call. */
    lua_pop(L, 2);
}

static int send_to(lua_State *L, script_target *t, int msg_idx) {
    script_t *s = self(L);
    frame_t *f = arg_frame(L, msg_idx);
    size_t n = s->host->send(s->host->ud, t, f);
    frame_unref(f);
    lua_pushinteger(L, (lua_Integer)n);
    return 1;
}

static int l_send(lua_State *L) {
    const char *id = luaL_checkstring(L, 1);
    script_target t = {SCRIPT_TO_CONN, &id, 1, NULL, NULL};
    return send_to(L, &t, 2);
}

static int l_send_user(lua_State *L) {
    const char *id = luaL_checkstring(L, 1);
    script_target t = {SCRIPT_TO_USERS, &id, 1, NULL, NULL};
    arg_opts(L, 3, &t);
    return send_to(L, &t, 2);
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
    arg_opts(L, 3, &t);
    return send_to(L, &t, 2);
}

static int l_send_room(lua_State *L) {
    const char *id = luaL_checkstring(L, 1);
    script_target t = {SCRIPT_TO_ROOM, &id, 1, NULL, NULL};
    arg_opts(L, 3, &t);
    return send_to(L, &t, 2);
}

static int l_broadcast(lua_State *L) {
    script_target t = {SCRIPT_TO_ALL, NULL, 0, NULL, NULL};
    arg_opts(L, 2, &t);
    return send_to(L, &t, 1);
}

/* publish(room_id, msg): sends msg with the room's next seq and the room
 * id added (msg itself is left as it was) to every member connection;
 * returns the seq. */
static int l_publish(lua_State *L) {
    static const char *const stamped[] = {"seq", "room_id", NULL};
    script_t *s = self(L);
    const char *room = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    buf_t b;
    buf_init(&b, FRAME_HEADROOM);
    /* One allocation for most chat messages, not one and a regrowth. */
    buf_reserve(&b, 512 - FRAME_HEADROOM);
    buf_putc(&b, '{');
    int first = 1;
    if (encode_members(L, 2, &b, 1, s->array_mt_ref, &first, stamped)) {
        buf_close(&b);
        return lua_error(L);
    }
    /* The seq is taken only once the frame is sure to go out: a message
     * that cannot be encoded (NaN, a function, a cycle) must not leave a
     * gap in the room's sequence. */
    uint64_t seq;
    if (s->host->next_seq(s->host->ud, room, &seq) < 0) {
        buf_close(&b);
        return fail(L, "not_found", "no room '%s'", room);
    }
    buf_puts(&b, first ? "\"seq\":" : ",\"seq\":");
    json_write_number(&b, (double)seq);
    buf_puts(&b, ",\"room_id\":");
    json_write_string(&b, room, strlen(room));
    buf_putc(&b, '}');
    frame_t *f = frame_from_buf(&b);
    script_target t = {SCRIPT_TO_ROOM, &room, 1, NULL, NULL};
    s->host->send(s->host->ud, &t, f);
    frame_unref(f);
    lua_pushnumber(L, (lua_Number)seq);
    return 1;
}

/* answer(type, fields): the answer to the frame being dispatched,
 * {"type":type,"id":<id>} with fields' members (a table, or nil) but type
 * and id merged in, sent to the frame's connection; without "id" when the
 * frame had none. The id is the envelope's text of it, never a Lua value:
 * a double would turn -0 into 0 and 12345678901234567890 into
 * 1.2345678901234567e+19, and the client could not match its answer. */
static int l_answer(lua_State *L) {
    static const char *const own[] = {"type", "id", NULL};
    script_t *s = self(L);
    size_t tlen;
    const char *type = luaL_checklstring(L, 1, &tlen);
    if (!s->call_conn) return luaL_error(L, "no frame to answer");
    buf_t b;
    buf_init(&b, FRAME_HEADROOM);
    buf_puts(&b, "{\"type\":");
    json_write_string(&b, type, tlen);
    if (s->call_id) {
        buf_puts(&b, ",\"id\":");
        buf_append(&b, s->call_id, s->call_id_len);
    }
    int first = 0;
    if (lua_istable(L, 2) &&
        encode_members(L, 2, &b, 1, s->array_mt_ref, &first, own)) {
        buf_close(&b);
        return lua_error(L);
    }
    buf_putc(&b, '}');
    frame_t *f = frame_from_buf(&b);
    script_target t = {SCRIPT_TO_CONN, &s->call_conn, 1, NULL, NULL};
    s->host->send(s->host->ud, &t, f);
    frame_unref(f);
    s->answered = 1;
    return 0;
}

static const char *check_room_id(lua_State *L, int idx) {
    size_t n;
    const char *room = luaL_checklstring(L, idx, &n);
    if (n == 0 || n > SCRIPT_MAX_ROOM_ID || memchr(room, '\0', n))
        fail(L, "bad_message", "room_id must be 1 to %d characters",
             SCRIPT_MAX_ROOM_ID);
    return room;
}

static int l_join(lua_State *L) {
    script_t *s = self(L);
    const char *room = check_room_id(L, 1);
    const char *uid = luaL_checkstring(L, 2);
    int rc = s->host->join(s->host->ud, room, uid);
    if (rc < 0) return fail(L, "not_found", "user '%s' is not connected", uid);
    lua_pushboolean(L, rc);
    return 1;
}

static int l_leave(lua_State *L) {
    script_t *s = self(L);
    const char *room = luaL_checkstring(L, 1);
    const char *uid = luaL_checkstring(L, 2);
    lua_pushboolean(L, s->host->leave(s->host->ud, room, uid));
    return 1;
}

static int l_is_member(lua_State *L) {
    script_t *s = self(L);
    const char *room = luaL_checkstring(L, 1);
    const char *uid = luaL_checkstring(L, 2);
    lua_pushboolean(L, s->host->is_member(s->host->ud, room, uid));
    return 1;
}

/* Collects borrowed ids (into the state's scratch list), then pushes them
 * as a sorted array. */
typedef struct idlist idlist_t;

static idlist_t *idlist_start(lua_State *L) {
    idlist_t *l = &self(L)->ids;
    l->len = 0;
    return l;
}

static void idlist_add(void *ctx, const char *id) {
    idlist_t *l = ctx;
    if (l->len == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->ids = xrealloc(l->ids, l->cap * sizeof *l->ids);
    }
    l->ids[l->len++] = id;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Pushes the ids as a sorted array. The ids are still valid here: nothing
 * ran between collecting and pushing. */
static void push_idlist(lua_State *L, idlist_t *l) {
    script_t *s = self(L);
    if (l->len > 1) qsort(l->ids, l->len, sizeof *l->ids, cmp_str);
    lua_createtable(L, (int)l->len, 0);
    for (size_t i = 0; i < l->len; i++) {
        lua_pushstring(L, l->ids[i]);
        lua_rawseti(L, -2, (int)i + 1);
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->array_mt_ref);
    lua_setmetatable(L, -2);
}

static int l_room_members(lua_State *L) {
    script_t *s = self(L);
    const char *room = luaL_checkstring(L, 1);
    idlist_t *l = idlist_start(L);
    if (s->host->room_members(s->host->ud, room, idlist_add, l) < 0) {
        lua_pushnil(L);
        return 1;
    }
    push_idlist(L, l);
    return 1;
}

static int l_room_info(lua_State *L) {
    script_t *s = self(L);
    const char *room = luaL_checkstring(L, 1);
    script_room_info info;
    if (s->host->room_info(s->host->ud, room, &info) < 0) {
        lua_pushnil(L);
        return 1;
    }
    lua_createtable(L, 0, 6);
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "room_id");
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "name");
    lua_pushnumber(L, (lua_Number)info.created_at);
    lua_setfield(L, -2, "created_at");
    lua_pushnumber(L, (lua_Number)info.message_count);
    lua_setfield(L, -2, "message_count");
    lua_pushnumber(L, (lua_Number)info.seq);
    lua_setfield(L, -2, "seq");
    idlist_t *l = idlist_start(L);
    s->host->room_members(s->host->ud, room, idlist_add, l);
    push_idlist(L, l);
    lua_setfield(L, -2, "members");
    return 1;
}

static int l_user_rooms(lua_State *L) {
    script_t *s = self(L);
    const char *uid = luaL_checkstring(L, 1);
    idlist_t *l = idlist_start(L);
    s->host->user_rooms(s->host->ud, uid, idlist_add, l);
    push_idlist(L, l);
    return 1;
}

static int l_online_users(lua_State *L) {
    script_t *s = self(L);
    idlist_t *l = idlist_start(L);
    s->host->online_users(s->host->ud, idlist_add, l);
    push_idlist(L, l);
    return 1;
}

static int l_user_connections(lua_State *L) {
    script_t *s = self(L);
    const char *uid = luaL_checkstring(L, 1);
    idlist_t *l = idlist_start(L);
    s->host->user_connections(s->host->ud, uid, idlist_add, l);
    push_idlist(L, l);
    return 1;
}

static int l_presence_get(lua_State *L) {
    script_t *s = self(L);
    const char *uid = luaL_checkstring(L, 1);
    lua_pushstring(L, presence_status_name(
                          (presence_status)s->host->presence_get(s->host->ud,
                                                                 uid)));
    return 1;
}

static int l_presence_set(lua_State *L) {
    script_t *s = self(L);
    const char *uid = luaL_checkstring(L, 1);
    const char *name = luaL_checkstring(L, 2);
    presence_status st;
    if (presence_parse_status(name, &st) < 0)
        return fail(L, "bad_message",
                    "status must be online, away, busy or offline");
    int rc = s->host->presence_set(s->host->ud, uid, (int)st);
    if (rc < 0) return fail(L, "not_found", "user '%s' is not connected", uid);
    lua_pushboolean(L, rc);
    return 1;
}

static int l_presence_subscribe(lua_State *L) {
    script_t *s = self(L);
    const char *cid = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    size_t n = lua_objlen(L, 2);
    lua_createtable(L, 0, (int)n);
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, 2, (int)i);
        if (lua_type(L, -1) != LUA_TSTRING)
            return fail(L, "bad_message", "user_ids must be strings");
        const char *uid = lua_tostring(L, -1);
        if (s->host->presence_subscribe(s->host->ud, cid, uid) < 0)
            return fail(L, "rate_limited",
                        "at most %d presence subscriptions per connection",
                        PRESENCE_MAX_SUBSCRIPTIONS);
        lua_pushstring(L, presence_status_name((presence_status)
                              s->host->presence_get(s->host->ud, uid)));
        lua_rawset(L, -3); /* statuses[uid] = status */
    }
    return 1;
}

static void set_number(lua_State *L, const char *k, double v) {
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

static int l_conn_info(lua_State *L) {
    script_t *s = self(L);
    const char *cid = luaL_checkstring(L, 1);
    script_conn_info ci;
    if (s->host->conn_info(s->host->ud, cid, &ci) < 0) {
        lua_pushnil(L);
        return 1;
    }
    lua_createtable(L, 0, 8);
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
    return 1;
}

static int l_log(lua_State *L) {
    const char *level = luaL_checkstring(L, 1);
    const char *msg = luaL_checkstring(L, 2);
    log_level lv;
    if (log_level_parse(level, &lv) < 0)
        return luaL_error(L, "unknown log level '%s'", level);
    if (!log_enabled(lv)) return 0;
    /* Name the script and line that logged: the caller at the given stack
     * level (hub.log passes 2, to skip itself; 0 means no position). */
    int depth = (int)luaL_optinteger(L, 3, 1);
    lua_Debug ar;
    if (depth > 0 && lua_getstack(L, depth, &ar) && lua_getinfo(L, "Sl", &ar) &&
        ar.currentline > 0)
        log_write(lv, "lua", "%s (%s:%d)", msg, ar.short_src,
                  ar.currentline);
    else
        log_write(lv, "lua", "%s", msg);
    return 0;
}

static int l_now(lua_State *L) {
    lua_pushnumber(L, (lua_Number)now_ms());
    return 1;
}

static int l_encode(lua_State *L) {
    script_t *s = self(L);
    luaL_checkany(L, 1);
    buf_t b;
    buf_init(&b, 0);
    if (encode_value(L, 1, &b, 0, s->array_mt_ref)) {
        buf_close(&b);
        return lua_error(L);
    }
    lua_pushlstring(L, b.data ? buf_content(&b) : "", b.len);
    buf_close(&b);
    return 1;
}

static int l_decode(lua_State *L) {
    script_t *s = self(L);
    size_t n;
    const char *json = luaL_checklstring(L, 1, &n);
    json_error err;
    if (decode_json(s, json, n, &err) < 0)
        return luaL_error(L, "not JSON: %s", err.message);
    return 1;
}

static int l_set_array_mt(lua_State *L) {
    script_t *s = self(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_pushvalue(L, 1);
    lua_rawseti(L, LUA_REGISTRYINDEX, s->array_mt_ref);
    return 0;
}

static int l_set_fail(lua_State *L) {
    script_t *s = self(L);
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_pushvalue(L, 1);
    lua_rawseti(L, LUA_REGISTRYINDEX, s->fail_ref);
    return 0;
}

/* ---- hub.store -------------------------------------------------------------- */

static int store_kind(lua_State *L, int idx) {
    static const char *const kinds[] = {"global", "room", "user", NULL};
    return luaL_checkoption(L, idx, NULL, kinds);
}

/* store_get(kind, scope, key) -> value or nil */
static int l_store_get(lua_State *L) {
    script_t *s = self(L);
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
    if (decode_json(s, json, len, &err) < 0)
        return luaL_error(L, "stored value is not JSON: %s", err.message);
    return 1;
}

/* store_set(kind, scope, key, value): nil deletes. */
static int l_store_set(lua_State *L) {
    script_t *s = self(L);
    int kind = store_kind(L, 1);
    const char *scope = luaL_checkstring(L, 2);
    const char *key = luaL_checkstring(L, 3);
    if (lua_isnoneornil(L, 4)) {
        s->host->store_delete(s->host->ud, kind, scope, key);
        return 0;
    }
    buf_t b;
    buf_init(&b, 0);
    if (encode_value(L, 4, &b, 0, s->array_mt_ref)) {
        buf_close(&b);
        return lua_error(L);
    }
    int rc = s->host->store_set(s->host->ud, kind, scope, key,
                                b.data ? buf_content(&b) : "", b.len);
    buf_close(&b);
    if (rc == -2) return fail(L, "not_found", "no %s '%s'", kind == 1 ? "room" : "user", scope);
    if (rc < 0) return luaL_error(L, "store: value too large or scope full");
    return 0;
}

static int l_store_delete(lua_State *L) {
    script_t *s = self(L);
    int kind = store_kind(L, 1);
    const char *scope = luaL_checkstring(L, 2);
    const char *key = luaL_checkstring(L, 3);
    lua_pushboolean(L, s->host->store_delete(s->host->ud, kind, scope, key));
    return 1;
}

/* ---- timers: hub.after, hub.every, hub.cancel ------------------------------- */

static void timer_free(uv_handle_t *h) {
    script_timer_t *t = h->data;
    free(t->name);
    free(t->arg);
    free(t);
}

static void timer_unlink(script_t *s, script_timer_t *t) {
    if (t->prev) t->prev->next = t->next;
    else s->timers = t->next;
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
 * goes in the close callback, as libuv requires). */
static void timer_remove(script_t *s, script_timer_t *t) {
    timer_unlink(s, t);
    if (!s->poisoned && t->fn_ref != LUA_NOREF)
        luaL_unref(s->L, LUA_REGISTRYINDEX, t->fn_ref);
    uv_timer_stop(&t->handle);
    uv_close((uv_handle_t *)&t->handle, timer_free);
}

static script_timer_t *timer_find(script_t *s, double id) {
    for (script_timer_t *t = s->timers; t; t = t->next)
        if (t->id == id) return t;
    return NULL;
}

static int traceback_msgh(lua_State *L) {
    if (lua_isstring(L, 1)) luaL_traceback(L, L, lua_tostring(L, 1), 1);
    return 1;
}

/* Pushes what a named timer calls: the runtime's runner, the name and the
 * argument (decoded afresh, so that every call gets its own copy). */
static void push_named_call(script_t *s, const script_timer_t *t) {
    lua_State *L = s->L;
    json_error jerr;
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->timer_ref);
    lua_pushstring(L, t->name);
    if (!t->arg || decode_json(s, t->arg, t->arglen, &jerr) < 0)
        lua_pushnil(L);
}

static void on_timer(uv_timer_t *h) {
    script_timer_t *t = h->data;
    script_t *s = t->s;
    if (s->poisoned) return;
    lua_State *L = s->L;
    double id = t->id;
    char name[SCRIPT_MAX_TIMER_NAME + 1] = "";
    int msgh = lua_gettop(L) + 1;
    lua_pushcfunction(L, traceback_msgh);
    int nargs = 0;
    if (t->name) {
        snprintf(name, sizeof name, "%s", t->name);
        push_named_call(s, t);
        nargs = 2;
    } else {
        lua_rawgeti(L, LUA_REGISTRYINDEX, t->fn_ref);
    }
    /* A one-shot timer is gone before it runs, so that its function may
     * start new timers or cancel others freely. */
    if (!t->repeat) timer_remove(s, t);
    /* stack: msgh, fn[, name, arg] */
    int rc = guarded_pcall(s, nargs, nargs ? 2 : 0, msgh);
    if (rc == GUARD_ESCAPED) return;
    if (rc) {
        log_error("lua", "timer %.0f%s%s%s failed: %s%s", id,
                  *name ? " (" : "", name, *name ? ")" : "",
                  rc == LUA_ERRMEM ? "out of memory: " : "",
                  lua_isstring(L, -1) ? lua_tostring(L, -1) : "(no message)");
    } else if (nargs && !lua_toboolean(L, -2)) {
        /* The name no longer resolves (the module or function is gone from
         * the scripts since the timer was set): nothing to call, ever. */
        log_warn("script", "timer %.0f cancelled: %s", id,
                 lua_isstring(L, -1) ? lua_tostring(L, -1) : name);
        script_timer_t *still = timer_find(s, id);
        if (still) timer_remove(s, still);
    }
    lua_settop(L, 0);
}

/* hub.after(ms, fn) / hub.after(ms, "module.function" [, arg]), and every. */
static int start_timer(lua_State *L, int repeat) {
    script_t *s = self(L);
    double ms = luaL_checknumber(L, 1);
    int named = lua_type(L, 2) == LUA_TSTRING;
    if (!named && !lua_isfunction(L, 2))
        return luaL_error(L, "a timer calls a function or a name "
                             "'module.function' (got %s)",
                          luaL_typename(L, 2));
    if (!s->loop) return luaL_error(L, "timers need a running server");
    if (!(ms >= 1 && ms <= 86400000.0 * 365))
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
            if (encode_value(L, 3, &arg, 0, s->array_mt_ref)) {
                buf_close(&arg);
                return lua_error(L);
            }
            if (arg.len > SCRIPT_MAX_TIMER_ARG) {
                buf_close(&arg);
                return luaL_error(L, "a timer's argument is at most %d bytes "
                                     "of JSON", SCRIPT_MAX_TIMER_ARG);
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
    uv_timer_init(s->loop, &t->handle);
    t->handle.data = t;
    uv_timer_start(&t->handle, on_timer, (uint64_t)ms,
                   repeat ? (uint64_t)ms : 0);
    timer_link(s, t);
    lua_pushnumber(L, t->id);
    return 1;
}

static int l_after(lua_State *L) { return start_timer(L, 0); }
static int l_every(lua_State *L) { return start_timer(L, 1); }

static int l_cancel(lua_State *L) {
    script_t *s = self(L);
    double id = luaL_checknumber(L, 1);
    script_timer_t *t = timer_find(s, id);
    if (t) timer_remove(s, t);
    lua_pushboolean(L, t != NULL);
    return 1;
}

static int l_set_timer_runner(lua_State *L) {
    script_t *s = self(L);
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
            timer_remove(from, t);
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

static const luaL_Reg core_funcs[] = {
    {"after", l_after},
    {"every", l_every},
    {"cancel", l_cancel},
    {"store_get", l_store_get},
    {"store_set", l_store_set},
    {"store_delete", l_store_delete},
    {"send", l_send},
    {"answer", l_answer},
    {"send_user", l_send_user},
    {"send_users", l_send_users},
    {"send_room", l_send_room},
    {"broadcast", l_broadcast},
    {"publish", l_publish},
    {"join", l_join},
    {"leave", l_leave},
    {"is_member", l_is_member},
    {"room_members", l_room_members},
    {"room_info", l_room_info},
    {"user_rooms", l_user_rooms},
    {"online_users", l_online_users},
    {"user_connections", l_user_connections},
    {"presence_get", l_presence_get},
    {"presence_set", l_presence_set},
    {"presence_subscribe", l_presence_subscribe},
    {"conn_info", l_conn_info},
    {"log", l_log},
    {"now", l_now},
    {"encode", l_encode},
    {"decode", l_decode},
    {"set_array_mt", l_set_array_mt},
    {"set_fail", l_set_fail},
    {"set_timer_runner", l_set_timer_runner},
    {NULL, NULL},
};

/* ---- a host with nothing in it ------------------------------------------- */

static size_t null_send(void *ud, const script_target *t, frame_t *f) {
    return 0;
}
static int null_next_seq(void *ud, const char *room, uint64_t *seq) {
    return -1;
}
static int null_join(void *ud, const char *room, const char *uid) {
    return -1;
}
static int null_zero(void *ud, const char *a, const char *b) { return 0; }
static int null_room_info(void *ud, const char *room, script_room_info *o) {
    return -1;
}
static int null_list(void *ud, const char *id, script_each_fn each,
                     void *ctx) {
    return -1;
}
static void null_each(void *ud, const char *id, script_each_fn each,
                      void *ctx) {}
static void null_online(void *ud, script_each_fn each, void *ctx) {}
static int null_presence_get(void *ud, const char *uid) { return 0; }
static int null_presence_set(void *ud, const char *uid, int st) { return -1; }
static int null_conn_info(void *ud, const char *cid, script_conn_info *o) {
    return -1;
}

static const char *null_store_get(void *ud, int kind, const char *scope,
                                  const char *key, size_t *len) {
    return NULL;
}
static int null_store_set(void *ud, int kind, const char *scope,
                          const char *key, const char *json, size_t len) {
    return kind == 0 ? 0 : -2;
}
static int null_store_delete(void *ud, int kind, const char *scope,
                             const char *key) {
    return 0;
}

static const script_host null_host = {
    .store_get = null_store_get,
    .store_set = null_store_set,
    .store_delete = null_store_delete,
    .send = null_send,
    .next_seq = null_next_seq,
    .join = null_join,
    .leave = null_zero,
    .is_member = null_zero,
    .room_info = null_room_info,
    .room_members = null_list,
    .user_rooms = null_each,
    .online_users = null_online,
    .user_connections = null_list,
    .presence_get = null_presence_get,
    .presence_set = null_presence_set,
    .presence_subscribe = null_join,
    .conn_info = null_conn_info,
};

const script_host *script_null_host(void) { return &null_host; }

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
 * (-1, err filled); otherwise a missing dir is an empty list. Directories
 * (lib/, hooks/, spec/) are never listed: they do not end in .lua or are
 * not read as scripts. */
static int push_lua_files(lua_State *L, const char *dir, int handlers,
                          char *err, size_t errlen) {
    idlist_t names = {0};
    DIR *d = opendir(dir);
    if (!d && handlers) {
        snprintf(err, errlen, "cannot read scripts directory %s: %s", dir,
                 strerror(errno));
        return -1;
    }
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".lua") != 0) continue;
        if (is_spec(e->d_name, n)) continue;
        if (handlers && !envelope_valid_type(e->d_name, n - 4)) {
            log_warn("script", "skipping %s/%s: a handler's file name must "
                     "be <type>.lua with type 1-64 of [A-Za-z0-9_]",
                     dir, e->d_name);
            continue;
        }
        idlist_add(&names, xstrndup(e->d_name, n - 4));
    }
    if (d) closedir(d);
    if (names.len > 1)
        qsort(names.ids, names.len, sizeof *names.ids, cmp_str);
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
    lua_pushfstring(L, "%s/?.lua;%s/lib/?.lua", opt->lua_dir,
                    opt->scripts_dir);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
}

/* Every hub.core function runs through here, so that the watchdog knows
 * when a call is inside our own C code (which may be in malloc) and does
 * not jump out of it there, on a platform where the watchdog cannot read
 * the interrupted address (elsewhere that address tells it). A function
 * that raises leaves in_host set; the watchdog then waits one stage
 * longer, which is still bounded. */
static int l_host_call(lua_State *L) {
    lua_CFunction fn =
        (lua_CFunction)(uintptr_t)lua_touserdata(L, lua_upvalueindex(2));
    in_host = 1;
    int n = fn(L);
    in_host = 0;
    return n;
}

static void register_core(lua_State *L, script_t *s) {
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "loaded");
    lua_newtable(L);
    for (const luaL_Reg *r = core_funcs; r->name; r++) {
        lua_pushlightuserdata(L, s);
        lua_pushlightuserdata(L, (void *)(uintptr_t)r->func);
        lua_pushcclosure(L, l_host_call, 2);
        lua_setfield(L, -2, r->name);
    }
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    /* stack: package, loaded, core */
    lua_setfield(L, -2, "hub.core");
    lua_pop(L, 2);
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
    s->dispatch_ref = s->array_mt_ref = s->fail_ref = LUA_NOREF;
    s->timer_ref = LUA_NOREF;
    s->connect_ref = s->disconnect_ref = LUA_NOREF;
    lua_State *L = s->L = luaL_newstate();
    if (!L) {
        snprintf(err, errlen, "cannot create a Lua state (out of memory)");
        free(s);
        return NULL;
    }
    install_cap(s, opt->memory_mb);
    luaL_openlibs(L);
    set_package_path(L, opt);

    /* Placeholders until the runtime hands over the real values. */
    lua_newtable(L);
    s->array_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushinteger(L, s->array_mt_ref);
    lua_setfield(L, LUA_REGISTRYINDEX, "luahub.array_mt_ref");
    lua_pushcfunction(L, luaopen_base); /* never called */
    s->fail_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    register_core(L, s);

    char path[2048];
    snprintf(path, sizeof path, "%s/runtime.lua", opt->lua_dir);
    if (luaL_loadfile(L, path)) {
        snprintf(err, errlen, "%s", lua_tostring(L, -1));
        goto fail;
    }
    lua_pushstring(L, opt->scripts_dir);
    if (push_lua_files(L, opt->scripts_dir, 1, err, errlen) < 0) goto fail;
    lua_pushstring(L, opt->lua_dir);
    lua_pushboolean(L, opt->unsafe);
    char hooks_dir[2048];
    snprintf(hooks_dir, sizeof hooks_dir, "%s/hooks", opt->scripts_dir);
    push_lua_files(L, hooks_dir, 0, NULL, 0);
    /* stack: runtime chunk, scripts_dir, types, lua_dir, unsafe, hooks */
    /* Loading runs every script's top level: give it ten calls' time. */
    double call_limit = s->timeout_ms;
    s->timeout_ms = call_limit > 0 ? call_limit * 10 : 0;
    int load_rc = guarded_pcall(s, 5, 1, 0);
    s->timeout_ms = call_limit;
    if (load_rc == GUARD_ESCAPED) {
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
    /* Loading may have loaded C modules (cjson): the watchdog must know
     * their code is not compiled Lua. */
    if (watchdog_ready) code_ranges_update();
    return s;

fail:
    script_destroy(s);
    return NULL;
}

void script_destroy(script_t *s) {
    if (!s) return;
    while (s->timers) timer_remove(s, s->timers);
    /* A poisoned state was left mid-call: unless that was in compiled code,
     * closing it could crash (see "time limits"), and its memory is given
     * up instead. */
    if (s->L && (!s->poisoned || s->closable)) {
        lua_sethook(s->L, NULL, 0, 0);
        /* LuaJIT frees its arena only when it sees its own allocator. */
        if (s->mem_limit) lua_setallocf(s->L, s->base_alloc, s->base_ud);
        lua_close(s->L);
    }
    free(s->ids.ids);
    free(s->types);
    free(s->hooks);
    free(s->stray_hooks);
    free(s);
}

const char *script_types(const script_t *s) { return s->types ? s->types : ""; }
const char *script_hooks(const script_t *s) { return s->hooks ? s->hooks : ""; }
const char *script_stray_hooks(const script_t *s) { return s->stray_hooks; }
size_t script_count(const script_t *s) { return s->count; }

/* Pushes the connection's metadata (decoded) or nil. */
static void push_meta(script_t *s, const char *meta, size_t metalen) {
    json_error jerr;
    if (!meta || decode_json(s, meta, metalen, &jerr) < 0)
        lua_pushnil(s->L);
}

int script_dispatch(script_t *s, const char *conn_id, const char *user_id,
                    const char *json, size_t len, const char *meta,
                    size_t metalen, envelope_t *env) {
    if (s->poisoned) return envelope_parse(json, len, env) ? 1 : -2;
    lua_State *L = s->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->dispatch_ref);
    lua_pushstring(L, conn_id);
    lua_pushstring(L, user_id);
    lua_pushnil(L); /* the type, once the check has found it */
    /* One pass: the envelope check, and the Lua table for the handler. */
    decoder_t d = {.L = L, .s = s, .depth = 0};
    if (envelope_parse_tee(json, len, env, &decoder_sink, &d) != ENVELOPE_OK) {
        lua_settop(L, 0);
        return 1;
    }
    lua_pushstring(L, env->type);
    lua_replace(L, -3);
    push_meta(s, meta, metalen);
    /* stack: dispatch, conn_id, user_id, type, msg, meta */
    s->call_conn = conn_id;
    s->call_id = env->id_json;
    s->call_id_len = env->id_json_len;
    s->answered = 0;
    int rc = guarded_pcall(s, 5, 0, 0);
    s->call_conn = s->call_id = NULL;
    if (rc == GUARD_ESCAPED) return s->answered ? 0 : -1;
    if (rc) {
        /* The runtime contains handler errors itself; reaching here means
         * the runtime failed (or memory ran out). */
        log_error("script", "dispatch failed conn=%s type=%s: %s%s", conn_id,
                  env->type, rc == LUA_ERRMEM ? "out of memory: " : "",
                  lua_isstring(L, -1) ? lua_tostring(L, -1) : "(no message)");
        lua_settop(L, 0);
        if (!s->answered) return -3;
    }
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
    int rc = guarded_pcall(s, 2, 2, 0);
    if (rc == GUARD_ESCAPED) {
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
            encode_value(L, lua_gettop(L), meta, 0, s->array_mt_ref)) {
            log_error("script", "on_connect metadata is not JSON conn=%s: %s",
                      conn_id, lua_tostring(L, -1));
            buf_reset(meta);
        }
    }
    lua_settop(L, 0);
    return accepted;
}

void script_on_disconnect(script_t *s, const char *conn_id,
                          const char *user_id, int code, const char *meta,
                          size_t metalen) {
    if (!s->has_disconnect_hook || s->poisoned) return;
    lua_State *L = s->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->disconnect_ref);
    lua_pushstring(L, conn_id);
    lua_pushstring(L, user_id);
    lua_pushinteger(L, code);
    push_meta(s, meta, metalen);
    int rc = guarded_pcall(s, 4, 0, 0);
    if (rc == GUARD_ESCAPED) return;
    if (rc)
        log_error("script", "on_disconnect failed conn=%s: %s", conn_id,
                  lua_isstring(L, -1) ? lua_tostring(L, -1) : "?");
    lua_settop(L, 0);
}
