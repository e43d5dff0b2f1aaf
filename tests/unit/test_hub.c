/* test_hub.c -- unit tests for core/hub.c: connections, rooms, presence,
 * scripts and native handlers tied together, with the shipped lua/ and
 * scripts/ loaded and a recording transport in place of the sockets (the
 * transport is not what is tested here; the hub is). */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "config.h"
#include "hub.h"
#include "hub_int.h"
#include "log.h"

typedef struct fixture {
    config_t cfg;
    hub_transport t;
    hub_t *h;
    int closes, last_close_code;
    conn_t *last_closed;
} fixture_t;

static void t_wake(void *ud) {}
static void t_drain(void *ud, conn_t *c) {}
static void t_close(void *ud, conn_t *c, int code, const char *reason) {
    fixture_t *fx = ud;
    fx->closes++;
    fx->last_close_code = code;
    fx->last_closed = c;
}

static int setup(void **state) {
    fixture_t *fx = calloc(1, sizeof *fx);
    config_defaults(&fx->cfg);
    fx->t = (hub_transport){
        fx, uv_default_loop(), t_wake, t_drain, t_close, NULL, NULL};
    log_set_level(LOG_ERROR);
    char err[1024];
    fx->h = hub_create(&fx->cfg, &fx->t, err, sizeof err);
    if (!fx->h) fail_msg("hub_create: %s", err);
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    fixture_t *fx = *state;
    hub_destroy(fx->h);
    free(fx);
    return 0;
}

static void send_json(fixture_t *fx, conn_t *c, const char *json) {
    hub_conn_message(fx->h, c, json, strlen(json));
}

/* Takes every frame queued on c; returns how many, the i-th (from 0)
 * containing needle copied into out (or out left empty). */
static size_t take(conn_t *c, const char *needle, char *out, size_t outlen) {
    size_t n = conn_queue_len(c);
    if (out) out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *p = frame_payload(conn_queue_peek(c, i), &len);
        if (out && needle && !out[0] && memmem(p, len, needle, strlen(needle)))
            snprintf(out, outlen, "%.*s", (int)len, p);
    }
    conn_queue_consume(c, n);
    return n;
}

static void test_open_queues_welcome_and_counts_users(void **state) {
    fixture_t *fx = *state;
    conn_t *a1 = hub_conn_open(fx->h, "ann", NULL);
    conn_t *a2 = hub_conn_open(fx->h, "ann", NULL);
    conn_t *b = hub_conn_open(fx->h, "bob", NULL);
    char f[512];
    assert_int_equal(take(a1, "welcome", f, sizeof f), 1);
    assert_non_null(strstr(f, "\"user_id\":\"ann\""));
    assert_non_null(strstr(f, "\"conn_id\":\"1\""));
    take(a2, NULL, NULL, 0);
    take(b, NULL, NULL, 0);
    assert_int_equal(conns_count(hub_conns(fx->h)), 3);
    assert_int_equal(conns_user_count(hub_conns(fx->h)), 2);
    hub_conn_closed(fx->h, a2);
    assert_int_equal(conns_user_count(hub_conns(fx->h)), 2);
    hub_conn_closed(fx->h, a1);
    assert_int_equal(conns_user_count(hub_conns(fx->h)), 1);
    hub_conn_closed(fx->h, b);
}

static void test_bad_envelope_is_answered_in_c(void **state) {
    fixture_t *fx = *state;
    conn_t *c = hub_conn_open(fx->h, "ann", NULL);
    take(c, NULL, NULL, 0);
    char f[512];
    send_json(fx, c, "{\"id\":7,\"type\":");
    assert_int_equal(take(c, "error", f, sizeof f), 1);
    assert_non_null(strstr(f, "\"code\":\"bad_json\""));
    send_json(fx, c, "{\"id\":\"x\",\"type\":\"no/such\"}");
    take(c, "error", f, sizeof f);
    assert_non_null(strstr(f, "\"id\":\"x\""));
    assert_non_null(strstr(f, "\"code\":\"unknown_type\""));
    hub_conn_closed(fx->h, c);
}

static void test_room_chat_reaches_every_member_once(void **state) {
    fixture_t *fx = *state;
    conn_t *a1 = hub_conn_open(fx->h, "ann", NULL);
    conn_t *a2 = hub_conn_open(fx->h, "ann", NULL);
    conn_t *b = hub_conn_open(fx->h, "bob", NULL);
    conn_t *out = hub_conn_open(fx->h, "eve", NULL);
    send_json(fx, a1, "{\"type\":\"join_room\",\"room_id\":\"r\",\"id\":1}");
    send_json(fx, b, "{\"type\":\"join_room\",\"room_id\":\"r\",\"id\":2}");
    take(a1, NULL, NULL, 0);
    take(a2, NULL, NULL, 0);
    take(b, NULL, NULL, 0);
    take(out, NULL, NULL, 0);
    send_json(fx, b,
              "{\"type\":\"chat\",\"room_id\":\"r\",\"id\":3,"
              "\"payload\":{\"text\":\"hi\"}}");
    char f[512];
    /* Both of ann's devices, and bob (the chat and his ack). */
    assert_int_equal(take(a1, "\"chat\"", f, sizeof f), 1);
    assert_non_null(strstr(f, "\"seq\":1"));
    assert_non_null(strstr(f, "\"from\":\"bob\""));
    assert_int_equal(take(a2, NULL, NULL, 0), 1);
    assert_int_equal(take(b, "ack", f, sizeof f), 2);
    assert_non_null(strstr(f, "\"id\":3"));
    assert_int_equal(take(out, NULL, NULL, 0), 0);
    /* Ann's last device goes: bob is told she left. */
    hub_conn_closed(fx->h, a1);
    assert_int_equal(take(b, NULL, NULL, 0), 0);
    hub_conn_closed(fx->h, a2);
    assert_int_equal(take(b, "user_left", f, sizeof f), 1);
    assert_non_null(strstr(f, "\"from\":\"ann\""));
    hub_conn_closed(fx->h, b);
    hub_conn_closed(fx->h, out);
}

static void test_presence_subscribers_hear_online_and_offline(void **state) {
    fixture_t *fx = *state;
    conn_t *w = hub_conn_open(fx->h, "watcher", NULL);
    send_json(fx, w,
              "{\"type\":\"presence_subscribe\",\"id\":1,"
              "\"payload\":{\"user_ids\":[\"zed\"]}}");
    char f[512];
    take(w, "ack", f, sizeof f);
    assert_non_null(strstr(f, "\"zed\":\"offline\""));
    conn_t *z = hub_conn_open(fx->h, "zed", NULL);
    assert_int_equal(take(w, "presence", f, sizeof f), 1);
    assert_non_null(strstr(f, "\"status\":\"online\""));
    hub_conn_closed(fx->h, z);
    take(w, "presence", f, sizeof f);
    assert_non_null(strstr(f, "\"status\":\"offline\""));
    hub_conn_closed(fx->h, w);
}

static int native_calls;
static void native_echo(hub_t *h, const hub_call *call) {
    native_calls++;
    hub_send_error(h, call->conn, call->id_json, "forbidden", call->user_id);
}

static void
test_native_handler_replaces_the_script_until_removed(void **state) {
    fixture_t *fx = *state;
    conn_t *c = hub_conn_open(fx->h, "ann", NULL);
    take(c, NULL, NULL, 0);
    hub_set_native(fx->h, "ping", native_echo);
    char f[512];
    send_json(fx, c, "{\"type\":\"ping\",\"id\":5}");
    assert_int_equal(native_calls, 1);
    take(c, "error", f, sizeof f);
    assert_non_null(strstr(f, "\"message\":\"ann\""));
    assert_non_null(strstr(f, "\"id\":5"));
    /* A bad frame never reaches the native handler. */
    send_json(fx, c, "[1]");
    assert_int_equal(native_calls, 1);
    take(c, NULL, NULL, 0);
    hub_set_native(fx->h, "ping", NULL);
    send_json(fx, c, "{\"type\":\"ping\",\"id\":6}");
    assert_int_equal(native_calls, 1);
    take(c, "pong", f, sizeof f);
    assert_non_null(strstr(f, "\"id\":6"));
    hub_conn_closed(fx->h, c);
}

static void test_reload_keeps_rooms_and_connections(void **state) {
    fixture_t *fx = *state;
    conn_t *a = hub_conn_open(fx->h, "ann", NULL);
    send_json(fx, a, "{\"type\":\"join_room\",\"room_id\":\"r\",\"id\":1}");
    take(a, NULL, NULL, 0);
    assert_int_equal(hub_reload(fx->h), 0);
    char f[512];
    send_json(fx, a, "{\"type\":\"room_info\",\"room_id\":\"r\",\"id\":2}");
    take(a, "ack", f, sizeof f);
    assert_non_null(strstr(f, "\"members\":[\"ann\"]"));
    hub_conn_closed(fx->h, a);
}

/* ---- a handler that waits on the host (a cluster) ---------------------------
 *
 * The hub's host answers at once; these tests make its publish wait, as a
 * cluster's does, and play the cluster's reply (script_wake), then call
 * hub__call_over as the cluster's code does. */

static script_wait *waiting; /* the publish that waits */
static int h_deferred_publish(void *ud, const char *room, const char *member,
                              script_stamp_fn stamp, void *ctx,
                              const char *head, size_t headlen, uint64_t *seq,
                              script_wait *w) {
    assert_non_null(w);
    assert_null(waiting);
    waiting = w;
    return -EINPROGRESS;
}

/* ann in room r, her chat with id 1 waiting on its publish. */
static conn_t *chat_waits(fixture_t *fx) {
    conn_t *c = hub_conn_open(fx->h, "ann", NULL);
    send_json(fx, c, "{\"type\":\"join_room\",\"room_id\":\"r\",\"id\":0}");
    take(c, NULL, NULL, 0);
    script_host *host = (script_host *)hub_host(fx->h);
    int (*publish)(void *, const char *, const char *, script_stamp_fn, void *,
                   const char *, size_t, uint64_t *, script_wait *) =
        host->publish;
    host->publish = h_deferred_publish;
    waiting = NULL;
    send_json(fx, c,
              "{\"type\":\"chat\",\"room_id\":\"r\",\"id\":1,"
              "\"payload\":{\"text\":\"hi\"}}");
    host->publish = publish;
    assert_non_null(waiting);
    assert_int_equal(take(c, NULL, NULL, 0), 0);
    return c;
}

/* The cluster's reply to the publish: seq 9. Returns 1 when the call is
 * over, and then runs what waited behind it. */
static int publish_answers(fixture_t *fx) {
    char conn[64];
    snprintf(conn, sizeof conn, "%s", script_wait_conn(waiting));
    script_reply r = {.rc = 0, .seq = 9};
    int over = script_wake(waiting, &r);
    waiting = NULL;
    if (over) hub__call_over(fx->h, conn);
    return over;
}

/* The i-th frame (from 0) queued on c. */
static void frame_at(conn_t *c, size_t i, char *out, size_t outlen) {
    size_t len;
    const char *p = frame_payload(conn_queue_peek(c, i), &len);
    snprintf(out, outlen, "%.*s", (int)len, p);
}

static void
test_messages_behind_a_waiting_call_run_in_order_after_it(void **state) {
    fixture_t *fx = *state;
    conn_t *c = chat_waits(fx);
    send_json(fx, c, "{\"type\":\"ping\",\"id\":2}");
    send_json(fx, c, "{\"type\":\"ping\",\"id\":3}");
    /* Nothing runs ahead of the chat. */
    assert_int_equal(conn_queue_len(c), 0);
    assert_int_equal(publish_answers(fx), 1);
    assert_int_equal(conn_queue_len(c), 3);
    char f[512];
    frame_at(c, 0, f, sizeof f);
    assert_non_null(strstr(f, "\"type\":\"ack\""));
    assert_non_null(strstr(f, "\"id\":1"));
    assert_non_null(strstr(f, "\"seq\":9"));
    frame_at(c, 1, f, sizeof f);
    assert_non_null(strstr(f, "\"type\":\"pong\",\"id\":2"));
    frame_at(c, 2, f, sizeof f);
    assert_non_null(strstr(f, "\"type\":\"pong\",\"id\":3"));
    take(c, NULL, NULL, 0);
    /* The connection is back to answering at once. */
    send_json(fx, c, "{\"type\":\"ping\",\"id\":4}");
    assert_int_equal(take(c, "pong", f, sizeof f), 1);
    hub_conn_closed(fx->h, c);
}

static void test_a_waiting_connection_queues_a_bounded_number(void **state) {
    fixture_t *fx = *state;
    conn_t *c = chat_waits(fx);
    char f[512];
    for (int i = 0; i < HUB_HELD_MAX; i++)
        send_json(fx, c, "{\"type\":\"ping\",\"id\":2}");
    assert_int_equal(conn_queue_len(c), 0);
    send_json(fx, c, "{\"type\":\"ping\",\"id\":99}");
    assert_int_equal(take(c, "error", f, sizeof f), 1);
    assert_non_null(strstr(f, "\"id\":99"));
    assert_non_null(strstr(f, "\"code\":\"rate_limited\""));
    assert_non_null(strstr(f, "too many messages waiting for the cluster"));
    assert_int_equal(publish_answers(fx), 1);
    assert_int_equal(take(c, "pong", f, sizeof f), 1 + HUB_HELD_MAX);
    hub_conn_closed(fx->h, c);
}

static void test_a_waiting_connection_queues_a_bounded_size(void **state) {
    fixture_t *fx = *state;
    conn_t *c = chat_waits(fx);
    size_t n = HUB_HELD_BYTES / 2 + 1;
    char *big = malloc(n + 1);
    int head = snprintf(big, n, "{\"type\":\"ping\",\"id\":5,\"pad\":\"");
    memset(big + head, 'x', n - head - 2);
    memcpy(big + n - 2, "\"}", 3);
    hub_conn_message(fx->h, c, big, n);
    assert_int_equal(conn_queue_len(c), 0);
    hub_conn_message(fx->h, c, big, n);
    char f[512];
    assert_int_equal(take(c, "rate_limited", f, sizeof f), 1);
    assert_non_null(strstr(f, "\"id\":5"));
    free(big);
    assert_int_equal(publish_answers(fx), 1);
    assert_int_equal(take(c, "pong", f, sizeof f), 2);
    hub_conn_closed(fx->h, c);
}

static void test_a_closed_connection_drops_its_queue(void **state) {
    fixture_t *fx = *state;
    conn_t *c = chat_waits(fx);
    send_json(fx, c, "{\"type\":\"ping\",\"id\":2}");
    hub_conn_closed(fx->h, c);
    /* The call still completes; its answer and the queue find nobody. */
    assert_int_equal(publish_answers(fx), 1);
    conn_t *d = hub_conn_open(fx->h, "bob", NULL);
    send_json(fx, d, "{\"type\":\"ping\",\"id\":3}");
    char f[512];
    assert_int_equal(take(d, "pong", f, sizeof f), 2);
    hub_conn_closed(fx->h, d);
}

static void
test_a_reload_keeps_the_old_state_for_its_waiting_call(void **state) {
    fixture_t *fx = *state;
    conn_t *c = chat_waits(fx);
    assert_int_equal(hub_reload(fx->h), 0);
    assert_non_null(fx->h->retired);
    assert_int_equal(publish_answers(fx), 1);
    char f[512];
    assert_int_equal(take(c, "ack", f, sizeof f), 1);
    assert_non_null(strstr(f, "\"seq\":9"));
    /* Its call over, the old state is gone. */
    assert_null(fx->h->retired);
    hub_conn_closed(fx->h, c);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_open_queues_welcome_and_counts_users),
        T(test_bad_envelope_is_answered_in_c),
        T(test_room_chat_reaches_every_member_once),
        T(test_presence_subscribers_hear_online_and_offline),
        T(test_native_handler_replaces_the_script_until_removed),
        T(test_reload_keeps_rooms_and_connections),
        T(test_messages_behind_a_waiting_call_run_in_order_after_it),
        T(test_a_waiting_connection_queues_a_bounded_number),
        T(test_a_waiting_connection_queues_a_bounded_size),
        T(test_a_closed_connection_drops_its_queue),
        T(test_a_reload_keeps_the_old_state_for_its_waiting_call),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
