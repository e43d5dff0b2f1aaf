/* metrics.h -- the server's counters, and GET /metrics in the Prometheus
 * text format (version 0.0.4).
 *
 * Pure: no sockets, no clock. The hub counts what happens (a message
 * received, a handler's error answer and its duration, a frame delivered,
 * a slow consumer closed, a reload) and the HTTP API writes the text.
 *
 * Label values are bounded: a client cannot mint series. Each handler
 * type loaded has a slot of its own; any other type (none loaded by that
 * name, or a frame with no valid type at all) counts in slot
 * METRICS_OTHER, type="other". Error codes are the protocol's fixed set
 * (codes.h); a code a script made up counts as code="other". Counting is
 * an index into a fixed array: nothing is allocated per message. Slots
 * are only ever added (metrics_set_types at a reload): a type that stays
 * keeps its slot and its counts, a type removed keeps its series (no
 * longer counted: its messages are "other" now), so no counter ever goes
 * back. */
#ifndef LUAHUB_METRICS_H
#define LUAHUB_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct metrics metrics_t;

/* The slot of every type that has no handler. */
#define METRICS_OTHER 0u
/* At most this many slots: handler types past it count as "other". */
#define METRICS_SLOTS_MAX 512u

metrics_t *metrics_create(void);
void metrics_destroy(metrics_t *m);

/* The handler types loaded now, comma-separated ("chat,ping"): each gets
 * a slot (the one it had, if it had one); a slot whose type is not in the
 * list stops counting but is still written. */
void metrics_set_types(metrics_t *m, const char *csv);
/* One type more (a native handler): a slot for it, if it has none. */
void metrics_add_type(metrics_t *m, const char *type);
/* type's slot (NULL, "" or a type with no handler: METRICS_OTHER). One
 * hash look-up, no allocation. */
unsigned metrics_slot(const metrics_t *m, const char *type);

void metrics_received(metrics_t *m, unsigned slot);
/* A frame of slot's type was answered with the error code (any string:
 * outside the protocol's set it counts as "other"). */
void metrics_error(metrics_t *m, unsigned slot, const char *code);
/* A handler of slot's type ran for seconds. */
void metrics_observe(metrics_t *m, unsigned slot, double seconds);
/* A reload (SIGHUP, --watch, a state replaced) succeeded (ok 1) or
 * failed (0). */
void metrics_reload(metrics_t *m, int ok);
void metrics_slow_consumer(metrics_t *m);
/* The counter of frames queued on connections, for the fan-out to bump
 * (fanout.h): borrowed for m's life. */
uint64_t *metrics_deliveries(metrics_t *m);

/* What is read at the moment of a scrape. */
typedef struct metrics_gauges {
    size_t connections;  /* WebSocket connections on this node */
    size_t users_online; /* users with a connection on this node */
    size_t rooms;        /* rooms this node holds (with --redis: those
                            with a member connected here) */
    int redis_up;        /* -1: no --redis (not written); 0 or 1 */
} metrics_gauges;

/* Appends the whole exposition: HELP and TYPE lines, then the samples. */
void metrics_write(const metrics_t *m, const metrics_gauges *g, buf_t *out);

/* The histogram's upper bounds in seconds (+Inf not included), for
 * tests and docs. */
extern const double metrics_buckets[];
extern const size_t metrics_nbuckets;

#endif
