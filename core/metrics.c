/* metrics.c -- see metrics.h. */
#include "metrics.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "codes.h"
#include "dict.h"

/* From a tenth of a millisecond (a small Lua handler) to the seconds a
 * call that waits on Redis may take (its command timeout is 3 s). */
const double metrics_buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                  0.005,  0.01,    0.025,  0.05,  0.1,
                                  0.25,   0.5,     1,      2.5,   5};
#define NBUCKETS (sizeof metrics_buckets / sizeof metrics_buckets[0])
const size_t metrics_nbuckets = NBUCKETS;

/* The protocol's codes; the last slot counts any other. */
static const char *const codes[] = {
    ERR_BAD_JSON,    ERR_BAD_MESSAGE, ERR_UNKNOWN_TYPE, ERR_NOT_IN_ROOM,
    ERR_NOT_FOUND,   ERR_FORBIDDEN,   ERR_RATE_LIMITED, ERR_HANDLER_ERROR,
    ERR_UNAVAILABLE, "other",
};
#define NCODES (sizeof codes / sizeof codes[0])

typedef struct slot {
    char *type;
    uint64_t received;
    uint64_t errors[NCODES];
    uint64_t buckets[NBUCKETS + 1]; /* per bucket (not cumulative); +Inf */
    uint64_t count;
    double sum;
} slot_t;

struct metrics {
    slot_t *slots;
    unsigned nslots, cap;
    dict_t *live; /* loaded type -> slot index (as a pointer) */
    uint64_t deliveries, slow_closes, reloads_ok, reloads_failed;
};

metrics_t *metrics_create(void) {
    metrics_t *m = xcalloc(1, sizeof *m);
    m->cap = 16;
    m->slots = xcalloc(m->cap, sizeof *m->slots);
    m->slots[0].type = xstrdup("other");
    m->nslots = 1;
    m->live = dict_create();
    return m;
}

void metrics_destroy(metrics_t *m) {
    if (!m) return;
    for (unsigned i = 0; i < m->nslots; i++)
        free(m->slots[i].type);
    free(m->slots);
    dict_destroy(m->live, NULL);
    free(m);
}

/* The slot named type, made if there is none (METRICS_OTHER when full). */
static unsigned slot_of(metrics_t *m, const char *type, size_t n) {
    for (unsigned i = 1; i < m->nslots; i++)
        if (strlen(m->slots[i].type) == n &&
            memcmp(m->slots[i].type, type, n) == 0)
            return i;
    if (m->nslots >= METRICS_SLOTS_MAX) return METRICS_OTHER;
    if (m->nslots == m->cap) {
        m->cap *= 2;
        m->slots = xrealloc(m->slots, m->cap * sizeof *m->slots);
    }
    slot_t *s = &m->slots[m->nslots];
    memset(s, 0, sizeof *s);
    s->type = xstrndup(type, n);
    return m->nslots++;
}

void metrics_add_type(metrics_t *m, const char *type) {
    if (!type || !*type || strcmp(type, "other") == 0) return;
    unsigned i = slot_of(m, type, strlen(type));
    if (i != METRICS_OTHER)
        dict_set(m->live, m->slots[i].type, (void *)(uintptr_t)i);
}

void metrics_set_types(metrics_t *m, const char *csv) {
    dict_destroy(m->live, NULL);
    m->live = dict_create();
    for (const char *p = csv; p && *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        /* "other" is the slot of every type without a handler: a handler
         * by that name shares it. */
        if (n && !(n == 5 && memcmp(p, "other", 5) == 0)) {
            unsigned i = slot_of(m, p, n);
            if (i != METRICS_OTHER)
                dict_set(m->live, m->slots[i].type, (void *)(uintptr_t)i);
        }
        if (!e) break;
        p = e + 1;
    }
}

unsigned metrics_slot(const metrics_t *m, const char *type) {
    if (!type || !*type) return METRICS_OTHER;
    return (unsigned)(uintptr_t)dict_get(m->live, type);
}

void metrics_received(metrics_t *m, unsigned slot) {
    m->slots[slot < m->nslots ? slot : 0].received++;
}

void metrics_error(metrics_t *m, unsigned slot, const char *code) {
    size_t k = 0;
    while (k < NCODES - 1 && strcmp(codes[k], code) != 0)
        k++;
    m->slots[slot < m->nslots ? slot : 0].errors[k]++;
}

void metrics_observe(metrics_t *m, unsigned slot, double seconds) {
    slot_t *s = &m->slots[slot < m->nslots ? slot : 0];
    size_t b = 0;
    while (b < NBUCKETS && seconds > metrics_buckets[b])
        b++;
    s->buckets[b]++;
    s->count++;
    s->sum += seconds;
}

void metrics_reload(metrics_t *m, int ok) {
    if (ok)
        m->reloads_ok++;
    else
        m->reloads_failed++;
}

void metrics_slow_consumer(metrics_t *m) {
    m->slow_closes++;
}

uint64_t *metrics_deliveries(metrics_t *m) {
    return &m->deliveries;
}

/* ---- the exposition ------------------------------------------------------ */

static void head(buf_t *b, const char *name, const char *type,
                 const char *help) {
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Is slot i written? Loaded types always (zero or not), others once they
 * counted something: a type removed keeps its series. */
static int shown(const metrics_t *m, unsigned i) {
    const slot_t *s = &m->slots[i];
    return i == METRICS_OTHER || dict_get(m->live, s->type) || s->received ||
           s->count;
}

void metrics_write(const metrics_t *m, const metrics_gauges *g, buf_t *b) {
    head(b, "luahub_connections", "gauge",
         "WebSocket connections open on this node.");
    buf_printf(b, "luahub_connections %zu\n", g->connections);
    head(b, "luahub_users_online", "gauge",
         "Users with at least one connection on this node.");
    buf_printf(b, "luahub_users_online %zu\n", g->users_online);
    head(b, "luahub_rooms", "gauge",
         "Rooms this node holds (with --redis: with a member connected "
         "here).");
    buf_printf(b, "luahub_rooms %zu\n", g->rooms);
    if (g->redis_up >= 0) {
        head(b, "luahub_redis_up", "gauge",
             "1 when Redis is reachable and this node is registered in it.");
        buf_printf(b, "luahub_redis_up %d\n", g->redis_up ? 1 : 0);
    }

    head(b, "luahub_messages_received_total", "counter",
         "Client messages received, by type (other: no handler).");
    for (unsigned i = 0; i < m->nslots; i++)
        if (shown(m, i))
            buf_printf(b, "luahub_messages_received_total{type=\"%s\"} %llu\n",
                       m->slots[i].type,
                       (unsigned long long)m->slots[i].received);

    head(b, "luahub_handler_errors_total", "counter",
         "Error answers to client messages, by type and code.");
    for (unsigned i = 0; i < m->nslots; i++)
        for (size_t k = 0; k < NCODES; k++)
            if (m->slots[i].errors[k])
                buf_printf(
                    b,
                    "luahub_handler_errors_total{type=\"%s\",code=\"%s\"}"
                    " %llu\n",
                    m->slots[i].type, codes[k],
                    (unsigned long long)m->slots[i].errors[k]);

    head(b, "luahub_deliveries_total", "counter",
         "Frames queued on connections (one per recipient connection).");
    buf_printf(b, "luahub_deliveries_total %llu\n",
               (unsigned long long)m->deliveries);
    head(b, "luahub_slow_consumer_closes_total", "counter",
         "Connections closed 4008 for falling behind (--send-queue).");
    buf_printf(b, "luahub_slow_consumer_closes_total %llu\n",
               (unsigned long long)m->slow_closes);
    head(b, "luahub_reloads_total", "counter", "Script reloads, by result.");
    buf_printf(b, "luahub_reloads_total{result=\"ok\"} %llu\n",
               (unsigned long long)m->reloads_ok);
    buf_printf(b, "luahub_reloads_total{result=\"failed\"} %llu\n",
               (unsigned long long)m->reloads_failed);

    head(b, "luahub_handler_duration_seconds", "histogram",
         "Time from a message's dispatch to its answer, by type (a call "
         "that waits on Redis included).");
    for (unsigned i = 1; i < m->nslots; i++) {
        const slot_t *s = &m->slots[i];
        if (!shown(m, i)) continue;
        uint64_t cum = 0;
        for (size_t k = 0; k <= NBUCKETS; k++) {
            cum += s->buckets[k];
            if (k < NBUCKETS)
                buf_printf(b,
                           "luahub_handler_duration_seconds_bucket{type=\"%s\","
                           "le=\"%g\"} %llu\n",
                           s->type, metrics_buckets[k],
                           (unsigned long long)cum);
            else
                buf_printf(b,
                           "luahub_handler_duration_seconds_bucket{type=\"%s\","
                           "le=\"+Inf\"} %llu\n",
                           s->type, (unsigned long long)cum);
        }
        buf_printf(b, "luahub_handler_duration_seconds_sum{type=\"%s\"} %.9g\n",
                   s->type, s->sum);
        buf_printf(b,
                   "luahub_handler_duration_seconds_count{type=\"%s\"} %llu\n",
                   s->type, (unsigned long long)s->count);
    }
}
