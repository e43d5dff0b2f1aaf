/* join_bench.c -- what one join costs in a room of n members (one node).
 *
 * Drives the hub in process, as luahub-handler-bench does (no sockets:
 * each frame through hub_conn_message, the queues emptied after each as
 * the transport would, minus the write), so that the figures are the
 * server's own work. For each room size it fills a room with that many
 * users (each a connection that joined), then has `joins` more users
 * join_room and leave_room it one after another (so the size stays put),
 * and reports per join: the CPU time of the join_room call (envelope,
 * handler, ack, announcements) and the bytes it queued (the ack and every
 * user_joined). Then the cost of a room_members page of 100 at the start,
 * middle and end of the room (the first one apart: cold caches).
 *
 *   luahub-join-bench [--sizes 1,1000,10000,100000] [--joins N]
 *                     [--max-listed-members N] [--json]
 *
 * --max-listed-members 10000000 shows the cost before big rooms (every
 * member listed in the ack, every member told). Run it from the
 * repository root (it loads lua/ and scripts/). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "config.h"
#include "hub.h"
#include "log.h"

static conns_t *the_conns;
static uint64_t queued_bytes, queued_frames;

static void t_wake(void *ud) {}

static void drain_conn(conn_t *c) {
    size_t n = conn_queue_len(c);
    for (size_t i = 0; i < n; i++)
        queued_bytes += frame_wire_len(conn_queue_peek(c, i));
    queued_frames += n;
    conn_queue_consume(c, n);
}

static void t_drain(void *ud, conn_t *c) {
    drain_conn(c);
}

static void t_close(void *ud, conn_t *c, int code, const char *reason) {
    fprintf(stderr, "join-bench: a connection was closed (%d %s)\n", code,
            reason);
    exit(1);
}

static void flush(void) {
    conn_t *c;
    while ((c = conns_pop_dirty(the_conns)))
        drain_conn(c);
}

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void send_msg(hub_t *h, conn_t *c, const char *json) {
    hub_conn_message(h, c, json, strlen(json));
}

typedef struct result {
    long size;
    double join_us, page_first_us, page_us;
    double join_bytes;
} result_t;

static void run(long size, long joins, long listed, result_t *r) {
    config_t cfg;
    config_defaults(&cfg);
    cfg.max_listed_members = listed;
    cfg.send_queue = (size_t)1 << 30; /* the bytes are counted, not sent */
    hub_transport t = {NULL, uv_default_loop(), t_wake, t_drain, t_close, NULL,
                       NULL};
    char err[1024], uid[32];
    hub_t *h = hub_create(&cfg, &t, err, sizeof err);
    if (!h) {
        fprintf(stderr, "join-bench: %s\n", err);
        exit(1);
    }
    the_conns = hub_conns(h);
    conn_t **cs = calloc((size_t)size, sizeof *cs);
    for (long i = 0; i < size; i++) {
        /* Ids in no order of joining, so that the order is the index's. */
        snprintf(uid, sizeof uid, "m%08lx", (unsigned long)(i * 2654435761u));
        cs[i] = hub_conn_open(h, uid, NULL);
        send_msg(h, cs[i], "{\"type\":\"join_room\",\"room_id\":\"big\"}");
        flush();
    }
    conn_t **js = calloc((size_t)joins, sizeof *js);
    for (long i = 0; i < joins; i++) {
        snprintf(uid, sizeof uid, "j%06ld", i);
        js[i] = hub_conn_open(h, uid, NULL);
    }
    flush();
    double cpu = 0;
    queued_bytes = queued_frames = 0;
    for (long i = 0; i < joins; i++) {
        double c0 = cpu_s();
        send_msg(h, js[i],
                 "{\"type\":\"join_room\",\"id\":1,\"room_id\":\"big\"}");
        flush();
        cpu += cpu_s() - c0;
        uint64_t b = queued_bytes;
        send_msg(h, js[i],
                 "{\"type\":\"leave_room\",\"id\":2,\"room_id\":\"big\"}");
        flush();
        queued_bytes = b;
    }
    r->size = size;
    r->join_us = cpu * 1e6 / (double)joins;
    r->join_bytes = (double)queued_bytes / (double)joins;
    /* Pages, asked by a member: the first orders the room. */
    const char *first =
        "{\"type\":\"room_members\",\"id\":3,\"room_id\":\"big\",\"payload\":"
        "{\"limit\":100}}";
    double c0 = cpu_s();
    send_msg(h, cs[0], first);
    flush();
    r->page_first_us = (cpu_s() - c0) * 1e6;
    const char *afters[] = {NULL, "m8", "mf"};
    int pages = 0;
    c0 = cpu_s();
    for (int k = 0; k < 300; k++) {
        char buf[160];
        const char *a = afters[k % 3];
        if (a)
            snprintf(buf, sizeof buf,
                     "{\"type\":\"room_members\",\"id\":4,\"room_id\":\"big\","
                     "\"payload\":{\"after\":\"%s\",\"limit\":100}}",
                     a);
        else
            snprintf(buf, sizeof buf, "%s", first);
        send_msg(h, cs[0], buf);
        flush();
        pages++;
    }
    r->page_us = (cpu_s() - c0) * 1e6 / pages;
    for (long i = 0; i < size; i++)
        hub_conn_closed(h, cs[i]);
    for (long i = 0; i < joins; i++)
        hub_conn_closed(h, js[i]);
    free(cs);
    free(js);
    hub_destroy(h);
}

int main(int argc, char **argv) {
    char sizes[256] = "1,1000,10000,100000";
    long joins = 200, listed = 1000;
    int json = 0;
    static const struct option longopts[] = {{"sizes", 1, 0, 's'},
                                             {"joins", 1, 0, 'n'},
                                             {"max-listed-members", 1, 0, 'l'},
                                             {"json", 0, 0, 'j'},
                                             {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 's':
            snprintf(sizes, sizeof sizes, "%s", optarg);
            break;
        case 'n':
            joins = atol(optarg);
            break;
        case 'l':
            listed = atol(optarg);
            break;
        case 'j':
            json = 1;
            break;
        default:
            fprintf(stderr, "usage: luahub-join-bench [--sizes A,B,...] "
                            "[--joins N] [--max-listed-members N] [--json]\n");
            return 2;
        }
    }
    if (joins < 1) joins = 1;
    log_set_level(LOG_ERROR);
    if (!json)
        printf("one join_room into a room of n members, in process "
               "(--max-listed-members %ld, %ld joins each)\n\n"
               "%10s %12s %14s %16s %12s\n",
               listed, joins, "members", "join us CPU", "bytes queued",
               "first page us", "page us");
    else
        printf("[");
    int first = 1;
    for (char *p = strtok(sizes, ","); p; p = strtok(NULL, ",")) {
        result_t r;
        run(atol(p), joins, listed, &r);
        if (json) {
            printf("%s{\"members\":%ld,\"join_us\":%.2f,\"join_bytes\":%.0f,"
                   "\"page_first_us\":%.1f,\"page_us\":%.2f}",
                   first ? "" : ",", r.size, r.join_us, r.join_bytes,
                   r.page_first_us, r.page_us);
        } else {
            printf("%10ld %12.2f %14.0f %16.1f %12.2f\n", r.size, r.join_us,
                   r.join_bytes, r.page_first_us, r.page_us);
        }
        fflush(stdout);
        first = 0;
    }
    if (json) printf("]\n");
    return 0;
}
