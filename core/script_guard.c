/* script_guard.c -- the guard around every call into Lua: the memory cap,
 * the watchdog that enforces the time limit, and the guarded call itself
 * (script_int.h). It knows nothing of the API or of dispatch. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* ucontext_t's registers (REG_RIP) and dl_iterate_phdr */
#endif
#include <errno.h>
#include <link.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "log.h"
#include "script_int.h"

/* ---- the memory cap
 * ----------------------------------------------------------
 *
 * Debian's LuaJIT (x64, not GC64) must allocate in the low 2 GB, so a
 * state cannot be created with an allocator of our own. It can be given
 * one after creation, though (lua_setallocf): capped_alloc wraps LuaJIT's
 * own allocator, counts every byte, and refuses growth past the cap.
 * LuaJIT turns the refusal into a "not enough memory" error, which
 * unwinds the call like any other error. The cap holds only inside calls
 * (script__pcall): outside one, an error would have no pcall to catch it,
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

void script__guard_cap(script_t *s, size_t mb) {
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
 *      (LuaJIT's, libc's, or one of the API's, any of which may be in
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
 * The limit is CPU time, the thread's own: the timer runs on the thread's
 * CPU clock, so a call is charged for the time it runs, not for the time
 * a loaded machine gave to other processes (a wall clock stopped handlers
 * that had run a few milliseconds on a busy host). A call costs no system
 * call: the timer ticks every eighth of the limit while calls are being
 * made, the handler counts the ticks, and a call only writes down the
 * count it started at; what it has surely run is every tick since but
 * the first, partial one. The handler compares. After eight ticks with no call
 * the timer stops itself, and the next call starts it again. The signal
 * does not block itself (SA_NODEFER), so jumping out of the handler needs
 * no signal mask saved and restored either. */

static script_t *volatile running; /* the state a guarded call runs in */
static sigjmp_buf escape;
static volatile sig_atomic_t stage;
static volatile sig_atomic_t in_host; /* inside a C function of the API */
static volatile int64_t call_limit_ns;
static volatile int64_t ticks, call_start_tick; /* the timer's ticks */
static volatile int64_t tick_ns;                /* the timer's period */
static volatile sig_atomic_t calls;             /* calls started (wraps) */
static volatile sig_atomic_t armed, idle_ticks;
static sig_atomic_t calls_seen;
static timer_t watchdog;
static int watchdog_ready;
static volatile uintptr_t escape_pc; /* where the jump left the call */

/* The code of every loaded object (executable, libraries, vDSO): an address
 * in none of them is JIT-compiled Lua. Updated outside calls only. */
#define MAX_CODE_RANGES 256
static struct code_range { uintptr_t lo, hi; } code_ranges[MAX_CODE_RANGES];
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
        if (sscanf(line, "%lx-%lx %4s %*s %*s %*s %n", &lo, &hi, perms, &end) <
                3 ||
            !end)
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
    ticks++;
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
    int64_t ran = (ticks - call_start_tick - 1) * tick_ns,
            limit = call_limit_ns;
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
    if (timer_create(CLOCK_THREAD_CPUTIME_ID, &sev, &watchdog) < 0) return -1;
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
    tick_ns = tick;
    armed = 1;
    watchdog_set(tick);
}

/* lua_pcall's result in this family's terms. */
static int pcall_result(int rc) {
    if (rc == 0) return 0;
    return rc == LUA_ERRMEM ? -ENOMEM : -EINVAL;
}

/* How deep guarded calls are nested (0 or 1 in practice: script_wake
 * refuses to start one inside another). */
static int call_depth;

int script__in_call(void) {
    return call_depth > 0;
}

/* The guarded call: lua_pcall on the state, or, with co, lua_resume of
 * that coroutine (script__resume). Returns what either returned, or
 * -ETIMEDOUT when the watchdog abandoned the call. */
static int guarded(script_t *s, lua_State *co, int nargs, int nresults,
                   int msgh) {
    before_call(s);
    if (s->timeout_ms <= 0 || watchdog_init() < 0) {
        call_depth++;
        int rc =
            co ? lua_resume(co, nargs) : lua_pcall(s->L, nargs, nresults, msgh);
        call_depth--;
        after_call(s);
        return rc;
    }
    int depth = call_depth;
    if (sigsetjmp(escape, 0)) {
        call_depth = depth;
        running = NULL;
        s->poisoned = 1;
        s->closable = in_compiled_code(escape_pc);
        log_error("script",
                  "a call ran past its %.0f ms limit in %s and was abandoned; "
                  "the scripts will be reloaded%s",
                  s->timeout_ms, s->closable ? "compiled code" : "a C function",
                  s->closable ? ""
                              : " (the old state cannot be closed safely: "
                                "its memory stays taken)");
        after_call(s);
        return -ETIMEDOUT;
    }
    stage = 0;
    in_host = 0;
    call_limit_ns = (int64_t)(s->timeout_ms * 1e6);
    call_start_tick = ticks;
    calls++;
    /* The order matters: with running set, the handler cannot stop the
     * timer, so reading armed after it is safe. */
    atomic_signal_fence(memory_order_seq_cst);
    running = s;
    atomic_signal_fence(memory_order_seq_cst);
    if (!armed) watchdog_start(call_limit_ns);
    call_depth++;
    int rc =
        co ? lua_resume(co, nargs) : lua_pcall(s->L, nargs, nresults, msgh);
    call_depth--;
    running = NULL;
    atomic_signal_fence(memory_order_seq_cst);
    if (stage >= 1) lua_sethook(s->L, NULL, 0, 0);
    after_call(s);
    return rc;
}

int script__pcall(script_t *s, int nargs, int nresults, int msgh) {
    int rc = guarded(s, NULL, nargs, nresults, msgh);
    return rc < 0 ? rc : pcall_result(rc);
}

int script__guard_resume(script_t *s, lua_State *co, int nargs) {
    return guarded(s, co, nargs, 0, 0);
}

/* Every C function of the API runs through here, so that the watchdog
 * knows when a call is inside our own C code (which may be in malloc) and
 * does not jump out of it there, on a platform where the watchdog cannot
 * read the interrupted address (elsewhere that address tells it). A
 * function that raises leaves in_host set; the watchdog then waits one
 * stage longer, which is still bounded. */
static int l_host_call(lua_State *L) {
    lua_CFunction fn =
        (lua_CFunction)(uintptr_t)lua_touserdata(L, lua_upvalueindex(2));
    in_host = 1;
    int n = fn(L);
    in_host = 0;
    return n;
}

void script__register(lua_State *L, script_t *s, int idx,
                      const luaL_Reg *funcs) {
    if (idx < 0) idx = lua_gettop(L) + idx + 1;
    for (const luaL_Reg *r = funcs; r->name; r++) {
        lua_pushlightuserdata(L, s);
        lua_pushlightuserdata(L, (void *)(uintptr_t)r->func);
        lua_pushcclosure(L, l_host_call, 2);
        lua_setfield(L, idx, r->name);
    }
}

void script__guard_code_changed(void) {
    if (watchdog_ready) code_ranges_update();
}

void script__guard_close(script_t *s) {
    /* A poisoned state was left mid-call: unless that was in compiled code,
     * closing it could crash (see "time limits"), and its memory is given
     * up instead. */
    if (!s->L || (s->poisoned && !s->closable)) return;
    lua_sethook(s->L, NULL, 0, 0);
    /* LuaJIT frees its arena only when it sees its own allocator. */
    if (s->mem_limit) lua_setallocf(s->L, s->base_alloc, s->base_ud);
    lua_close(s->L);
}
