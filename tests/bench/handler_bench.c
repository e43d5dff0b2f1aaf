/* handler_bench.c -- what running a message through Lua costs.
 *
 * Drives the hub in process, with no sockets, so that the handler is the
 * only difference: each client frame goes through hub_conn_message
 * (envelope check, handler, fan-out into the send queues), and the queues
 * are emptied after every message as the transport would, minus the
 * write. Four runs: the shipped ping (a trivial handler) and chat (to a
 * room) handlers in Lua, then the same two written in C (natives.c).
 * Prints messages per second for each and the Lua/C ratio.
 *
 *   luahub-handler-bench [--rooms K] [--members M] [--messages N] [--json]
 *
 * Run it from the repository root (it loads lua/ and scripts/). Pin it to
 * one CPU (taskset -c 1) for steadier figures. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "config.h"
#include "hub.h"
#include "log.h"
#include "natives.h"

typedef struct counts {
    uint64_t frames, bytes, closed;
} counts_t;

static counts_t counts;
static conns_t *the_conns;

static void t_wake(void *ud) {}

static void drain_conn(conn_t *c) {
    size_t n = conn_queue_len(c);
    for (size_t i = 0; i < n; i++)
        counts.bytes += frame_wire_len(conn_queue_peek(c, i));
    counts.frames += n;
    conn_queue_consume(c, n);
}

static void t_drain(void *ud, conn_t *c) {
    drain_conn(c);
}

static void t_close(void *ud, conn_t *c, int code, const char *reason) {
    counts.closed++;
}

static void flush(void) {
    conn_t *c;
    while ((c = conns_pop_dirty(the_conns)))
        drain_conn(c);
}

static double now_s(clockid_t clk) {
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct result {
    double msgs_per_s, cpu_us_per_msg;
    uint64_t frames;
} result_t;

typedef struct opts {
    int rooms, members;
    long messages;
    int json;
    const char *only; /* "ping-lua", "chat-c", ...: one run, for profiling */
} opts_t;

/* One run: a fresh hub, rooms x members connections, `messages` frames of
 * type through it. Returns 0, or -1 when the frame count is wrong. */
static int run(const opts_t *o, const char *type, int native, result_t *r) {
    config_t cfg;
    config_defaults(&cfg);
    hub_transport t = {NULL, uv_default_loop(), t_wake, t_drain, t_close, NULL,
                       NULL};
    char err[1024];
    hub_t *h = hub_create(&cfg, &t, err, sizeof err);
    if (!h) {
        fprintf(stderr, "handler-bench: %s\n", err);
        return -1;
    }
    if (native) natives_install(h);
    the_conns = hub_conns(h);
    int n = o->rooms * o->members;
    conn_t **cs = calloc((size_t)n, sizeof *cs);
    char buf[512];
    for (int i = 0; i < n; i++) {
        char uid[32];
        snprintf(uid, sizeof uid, "u%d", i);
        cs[i] = hub_conn_open(h, uid, NULL);
        int len = snprintf(buf, sizeof buf,
                           "{\"type\":\"join_room\",\"room_id\":\"r%d\"}",
                           i / o->members);
        hub_conn_message(h, cs[i], buf, (size_t)len);
    }
    flush();
    long warm = o->messages / 10;
    double t0 = 0, c0 = 0;
    memset(&counts, 0, sizeof counts);
    for (long m = -warm; m < o->messages; m++) {
        if (m == 0) {
            flush();
            memset(&counts, 0, sizeof counts);
            t0 = now_s(CLOCK_MONOTONIC);
            c0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
        }
        int i = (int)((m + warm) % n);
        int len;
        if (!strcmp(type, "chat"))
            len = snprintf(buf, sizeof buf,
                           "{\"type\":\"chat\",\"id\":%ld,\"room_id\":\"r%d\","
                           "\"payload\":{\"text\":\"hello, room\",\"ts\":%ld,"
                           "\"tags\":[\"bench\",1,true,null]}}",
                           m, i / o->members, m);
        else
            len = snprintf(buf, sizeof buf, "{\"type\":\"%s\",\"id\":%ld}",
                           type, m);
        hub_conn_message(h, cs[i], buf, (size_t)len);
        flush();
    }
    double wall = now_s(CLOCK_MONOTONIC) - t0;
    double cpu = now_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    r->msgs_per_s = (double)o->messages / wall;
    r->cpu_us_per_msg = cpu * 1e6 / (double)o->messages;
    r->frames = counts.frames;
    /* chat: the frame to every member (sender included) and the ack. */
    uint64_t want = !strcmp(type, "chat")
                        ? (uint64_t)o->messages * (uint64_t)(o->members + 1)
                        : (uint64_t)o->messages;
    int rc = 0;
    if (counts.frames != want || counts.closed) {
        fprintf(stderr,
                "handler-bench: %s (%s): %llu frames, expected %llu; %llu "
                "closed\n",
                type, native ? "C" : "Lua", (unsigned long long)counts.frames,
                (unsigned long long)want, (unsigned long long)counts.closed);
        rc = -1;
    }
    for (int i = 0; i < n; i++)
        hub_conn_closed(h, cs[i]);
    free(cs);
    hub_destroy(h);
    return rc;
}

static void usage(FILE *f) {
    fprintf(f, "usage: luahub-handler-bench [options]\n"
               "  --rooms K       rooms for chat (default 500)\n"
               "  --members M     members per room (default 4)\n"
               "  --messages N    messages per run (default 200000)\n"
               "  --json          one JSON object instead of the table\n"
               "  --only RUN      one of ping-lua, ping-c, chat-lua, chat-c "
               "(for a profiler)\n"
               "Run from the repository root (loads lua/ and scripts/).\n");
}

int main(int argc, char **argv) {
    opts_t o = {500, 4, 200000, 0, NULL};
    static const struct option longopts[] = {
        {"rooms", 1, 0, 'r'}, {"members", 1, 0, 'm'}, {"messages", 1, 0, 'n'},
        {"json", 0, 0, 'j'},  {"only", 1, 0, 'o'},    {"help", 0, 0, 'h'},
        {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'r':
            o.rooms = atoi(optarg);
            break;
        case 'm':
            o.members = atoi(optarg);
            break;
        case 'n':
            o.messages = atol(optarg);
            break;
        case 'j':
            o.json = 1;
            break;
        case 'o':
            o.only = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (o.rooms < 1 || o.members < 1 || o.messages < 10) {
        usage(stderr);
        return 2;
    }
    log_set_level(LOG_ERROR);
    const char *types[2] = {"ping", "chat"};
    result_t res[2][2]; /* [type][0 Lua, 1 C] */
    int bad = 0;
    if (o.only) {
        char type[16], impl[8];
        result_t r;
        if (sscanf(o.only, "%15[a-z]-%7s", type, impl) != 2 ||
            (strcmp(type, "ping") && strcmp(type, "chat")) ||
            (strcmp(impl, "lua") && strcmp(impl, "c"))) {
            usage(stderr);
            return 2;
        }
        bad = run(&o, type, !strcmp(impl, "c"), &r) < 0;
        printf("%s: %.0f msg/s, %.2f us CPU per message\n", o.only,
               r.msgs_per_s, r.cpu_us_per_msg);
        return bad;
    }
    for (int k = 0; k < 2; k++)
        for (int native = 0; native < 2; native++)
            bad |= run(&o, types[k], native, &res[k][native]) < 0;
    if (o.json) {
        printf("{\"rooms\":%d,\"members\":%d,\"messages\":%ld", o.rooms,
               o.members, o.messages);
        for (int k = 0; k < 2; k++)
            printf(",\"%s\":{\"lua_msgs_per_s\":%.0f,\"c_msgs_per_s\":%.0f,"
                   "\"lua_us_per_msg\":%.2f,\"c_us_per_msg\":%.2f,"
                   "\"ratio\":%.3f}",
                   types[k], res[k][0].msgs_per_s, res[k][1].msgs_per_s,
                   res[k][0].cpu_us_per_msg, res[k][1].cpu_us_per_msg,
                   res[k][0].msgs_per_s / res[k][1].msgs_per_s);
        printf("}\n");
    } else {
        printf("handler path in process (envelope, handler, fan-out into "
               "queues; no sockets)\n%d rooms x %d members, %ld messages "
               "per run\n\n",
               o.rooms, o.members, o.messages);
        printf("%-22s %12s %12s %8s %10s %8s\n", "handler", "Lua msg/s",
               "C msg/s", "Lua/C", "Lua us", "C us");
        for (int k = 0; k < 2; k++)
            printf("%-22s %12.0f %12.0f %8.2f %10.2f %8.2f\n",
                   k ? "chat (to a room)" : "ping (trivial)",
                   res[k][0].msgs_per_s, res[k][1].msgs_per_s,
                   res[k][0].msgs_per_s / res[k][1].msgs_per_s,
                   res[k][0].cpu_us_per_msg, res[k][1].cpu_us_per_msg);
    }
    return bad ? 1 : 0;
}
