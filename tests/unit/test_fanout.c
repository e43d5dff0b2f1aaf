/* test_fanout.c -- unit tests for core/fanout.c.
 *
 * A send must reach exactly the intended connections, all sharing the one
 * frame (refcount = 1 + recipients), and a slow consumer must be reported
 * without stopping delivery to the others. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conn.h"
#include "fanout.h"
#include "frame.h"
#include "room.h"

#define LIMIT 4096

typedef struct fixture {
    conns_t *conns;
    rooms_t *rooms;
    fanout_t fo;
    /* Overflow callback record. */
    int overflows;
    conn_t *overflowed[16];
    int close_on_overflow;
    int drains;
} fixture_t;

static void on_overflow(void *ud, conn_t *c) {
    fixture_t *fx = ud;
    if (fx->overflows < 16) fx->overflowed[fx->overflows] = c;
    fx->overflows++;
    /* What the hub does: the transport closes it later. */
    if (fx->close_on_overflow) conn_set_closing(c, 4008);
}

static int setup(void **state) {
    fixture_t *fx = calloc(1, sizeof *fx);
    fx->conns = conns_create(LIMIT);
    fx->rooms = rooms_create();
    fx->fo = (fanout_t){.conns = fx->conns, .overflow = on_overflow, .ud = fx};
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    fixture_t *fx = *state;
    rooms_destroy(fx->rooms);
    conns_destroy(fx->conns);
    free(fx);
    return 0;
}

static conn_t *add(fixture_t *fx, const char *uid) {
    int first;
    return conns_add(fx->conns, uid, NULL, 0, &first);
}

static void join(fixture_t *fx, const char *room, conn_t *c) {
    rooms_join(fx->rooms, room, conn_user(c), 0);
}

/* 1 when f is the only thing queued on c, 0 when nothing is queued;
 * fails otherwise. */
static int got(const conn_t *c, const frame_t *f) {
    size_t n = conn_queue_len(c);
    assert_true(n <= 1);
    if (n) assert_ptr_equal(conn_queue_peek(c, 0), f);
    return (int)n;
}

static frame_t *msg(void) {
    return frame_create_text("{\"t\":1}", 7);
}

/* Fills c's queue so that it has less than `room` bytes left. */
static void fill(conn_t *c, size_t room) {
    frame_t *pad = frame_create_text("", 0); /* 2 wire bytes */
    while (LIMIT - conn_queue_bytes(c) >= room)
        assert_int_equal(conn_enqueue(c, pad), 0);
    frame_unref(pad);
}

/* --- fanout_conn -------------------------------------------------------- */

static void test_fanout_conn_queues_frame(void **state) {
    fixture_t *fx = *state;
    conn_t *c = add(fx, "alice");
    frame_t *f = msg();
    assert_int_equal(fanout_conn(&fx->fo, c, f), 1);
    assert_int_equal(got(c, f), 1);
    assert_int_equal(frame_refs(f), 2);
    assert_ptr_equal(conns_pop_dirty(fx->conns), c);
    frame_unref(f);
}

static void
test_fanout_conn_skips_closing_connection_without_overflow(void **state) {
    fixture_t *fx = *state;
    conn_t *c = add(fx, "alice");
    conn_set_closing(c, 1000);
    frame_t *f = msg();
    assert_int_equal(fanout_conn(&fx->fo, c, f), 0);
    assert_int_equal(got(c, f), 0);
    assert_int_equal(fx->overflows, 0);
    assert_int_equal(frame_refs(f), 1);
    frame_unref(f);
}

static void test_fanout_conn_overflow_calls_callback_once(void **state) {
    fixture_t *fx = *state;
    conn_t *c = add(fx, "alice");
    frame_t *f = msg();
    fill(c, frame_wire_len(f));
    size_t before = conn_queue_len(c);
    assert_int_equal(fanout_conn(&fx->fo, c, f), 0);
    assert_int_equal(fx->overflows, 1);
    assert_ptr_equal(fx->overflowed[0], c);
    assert_int_equal(conn_queue_len(c), before);
    assert_int_equal(frame_refs(f), 1);
    frame_unref(f);
}

/* --- fanout_room -------------------------------------------------------- */

static void
test_fanout_room_shares_one_frame_with_every_member_conn(void **state) {
    fixture_t *fx = *state;
    conn_t *a1 = add(fx, "alice"), *a2 = add(fx, "alice");
    conn_t *b = add(fx, "bob");
    conn_t *c = add(fx, "carol");
    conn_t *outsider = add(fx, "dave");
    join(fx, "lobby", a1);
    join(fx, "lobby", b);
    join(fx, "lobby", c);
    join(fx, "other", outsider);
    frame_t *f = msg();
    size_t n =
        fanout_room(&fx->fo, rooms_get(fx->rooms, "lobby"), f, NULL, NULL);
    assert_int_equal(n, 4);
    /* A user with two connections gets it on both. */
    assert_int_equal(got(a1, f), 1);
    assert_int_equal(got(a2, f), 1);
    assert_int_equal(got(b, f), 1);
    assert_int_equal(got(c, f), 1);
    assert_int_equal(got(outsider, f), 0);
    /* One frame, referenced once per recipient plus ours. */
    assert_int_equal(frame_refs(f), 1 + 4);
    frame_unref(f);
}

static void test_fanout_room_skips_except_conn_only(void **state) {
    fixture_t *fx = *state;
    conn_t *a1 = add(fx, "alice"), *a2 = add(fx, "alice");
    conn_t *b = add(fx, "bob");
    join(fx, "lobby", a1);
    join(fx, "lobby", b);
    frame_t *f = msg();
    /* The sender's own connection is skipped, but not their other one. */
    size_t n = fanout_room(&fx->fo, rooms_get(fx->rooms, "lobby"), f, a1, NULL);
    assert_int_equal(n, 2);
    assert_int_equal(got(a1, f), 0);
    assert_int_equal(got(a2, f), 1);
    assert_int_equal(got(b, f), 1);
    assert_int_equal(frame_refs(f), 3);
    frame_unref(f);
}

static void test_fanout_room_skips_every_conn_of_except_user(void **state) {
    fixture_t *fx = *state;
    conn_t *a1 = add(fx, "alice"), *a2 = add(fx, "alice");
    conn_t *b1 = add(fx, "bob"), *b2 = add(fx, "bob");
    join(fx, "lobby", a1);
    join(fx, "lobby", b1);
    frame_t *f = msg();
    size_t n = fanout_room(&fx->fo, rooms_get(fx->rooms, "lobby"), f, NULL,
                           conn_user(a1));
    assert_int_equal(n, 2);
    assert_int_equal(got(a1, f), 0);
    assert_int_equal(got(a2, f), 0);
    assert_int_equal(got(b1, f), 1);
    assert_int_equal(got(b2, f), 1);
    assert_int_equal(frame_refs(f), 3);
    frame_unref(f);
}

static void test_fanout_room_skips_left_member(void **state) {
    fixture_t *fx = *state;
    conn_t *a = add(fx, "alice");
    conn_t *b = add(fx, "bob");
    join(fx, "lobby", a);
    join(fx, "lobby", b);
    rooms_leave(fx->rooms, "lobby", conn_user(b));
    frame_t *f = msg();
    assert_int_equal(
        fanout_room(&fx->fo, rooms_get(fx->rooms, "lobby"), f, NULL, NULL), 1);
    assert_int_equal(got(a, f), 1);
    assert_int_equal(got(b, f), 0);
    frame_unref(f);
}

static void test_fanout_room_leaves_non_members_untouched(void **state) {
    fixture_t *fx = *state;
    enum { OUTSIDERS = 1000, MEMBERS = 5 };
    char uid[16];
    conn_t *out[OUTSIDERS], *in[MEMBERS];
    for (int i = 0; i < OUTSIDERS; i++) {
        snprintf(uid, sizeof uid, "out%d", i);
        out[i] = add(fx, uid);
        /* Some outsiders are in other rooms. */
        if (i % 3 == 0) join(fx, "elsewhere", out[i]);
    }
    for (int i = 0; i < MEMBERS; i++) {
        snprintf(uid, sizeof uid, "in%d", i);
        in[i] = add(fx, uid);
        join(fx, "lobby", in[i]);
    }
    frame_t *f = msg();
    assert_int_equal(
        fanout_room(&fx->fo, rooms_get(fx->rooms, "lobby"), f, NULL, NULL),
        MEMBERS);
    for (int i = 0; i < OUTSIDERS; i++) {
        assert_int_equal(conn_queue_len(out[i]), 0);
        assert_int_equal(conn_queue_bytes(out[i]), 0);
    }
    for (int i = 0; i < MEMBERS; i++)
        assert_int_equal(got(in[i], f), 1);
    assert_int_equal(frame_refs(f), 1 + MEMBERS);
    /* Only the members were marked for flushing. */
    size_t dirty = 0;
    for (conn_t *c; (c = conns_pop_dirty(fx->conns));) {
        assert_true(strncmp(user_id(conn_user(c)), "in", 2) == 0);
        dirty++;
    }
    assert_int_equal(dirty, MEMBERS);
    frame_unref(f);
}

static void
test_fanout_room_overflow_reports_slow_conn_and_delivers_rest(void **state) {
    fixture_t *fx = *state;
    conn_t *a = add(fx, "alice");
    conn_t *slow = add(fx, "slow");
    conn_t *b = add(fx, "bob");
    join(fx, "lobby", a);
    join(fx, "lobby", slow);
    join(fx, "lobby", b);
    frame_t *f = msg();
    fill(slow, frame_wire_len(f));
    size_t slow_len = conn_queue_len(slow);
    room_t *r = rooms_get(fx->rooms, "lobby");

    assert_int_equal(fanout_room(&fx->fo, r, f, NULL, NULL), 2);
    assert_int_equal(fx->overflows, 1);
    assert_ptr_equal(fx->overflowed[0], slow);
    assert_int_equal(got(a, f), 1);
    assert_int_equal(got(b, f), 1);
    assert_int_equal(conn_queue_len(slow), slow_len);
    assert_int_equal(frame_refs(f), 1 + 2);

    /* The callback did not close it: every further failed enqueue is
     * reported again, once each. */
    assert_int_equal(fanout_room(&fx->fo, r, f, NULL, NULL), 2);
    assert_int_equal(fx->overflows, 2);
    assert_ptr_equal(fx->overflowed[1], slow);
    frame_unref(f);
}

static void test_fanout_overflow_not_reported_again_once_closing(void **state) {
    fixture_t *fx = *state;
    fx->close_on_overflow = 1;
    conn_t *a = add(fx, "alice");
    conn_t *slow = add(fx, "slow");
    join(fx, "lobby", a);
    join(fx, "lobby", slow);
    frame_t *f = msg();
    fill(slow, frame_wire_len(f));
    room_t *r = rooms_get(fx->rooms, "lobby");
    assert_int_equal(fanout_room(&fx->fo, r, f, NULL, NULL), 1);
    assert_int_equal(fx->overflows, 1);
    assert_true(conn_closing(slow));
    /* Closing now: the next sends skip it without a report. */
    assert_int_equal(fanout_room(&fx->fo, r, f, NULL, NULL), 1);
    assert_int_equal(fanout_all(&fx->fo, f, NULL, NULL), 1);
    assert_int_equal(fx->overflows, 1);
    assert_int_equal(conn_queue_len(a), 3);
    frame_unref(f);
}

/* --- fanout_user -------------------------------------------------------- */

static void test_fanout_user_reaches_every_conn_but_except_conn(void **state) {
    fixture_t *fx = *state;
    conn_t *a1 = add(fx, "alice"), *a2 = add(fx, "alice"),
           *a3 = add(fx, "alice");
    conn_t *b = add(fx, "bob");
    frame_t *f = msg();
    assert_int_equal(fanout_user(&fx->fo, conn_user(a1), f, a2), 2);
    assert_int_equal(got(a1, f), 1);
    assert_int_equal(got(a2, f), 0);
    assert_int_equal(got(a3, f), 1);
    assert_int_equal(got(b, f), 0);
    assert_int_equal(frame_refs(f), 3);
    /* Without an exception: all three. */
    frame_t *g = msg();
    assert_int_equal(fanout_user(&fx->fo, conn_user(a1), g, NULL), 3);
    assert_int_equal(frame_refs(g), 4);
    frame_unref(g);
    frame_unref(f);
}

static void test_fanout_user_counts_only_queued(void **state) {
    fixture_t *fx = *state;
    conn_t *a1 = add(fx, "alice"), *a2 = add(fx, "alice");
    conn_set_closing(a2, 1000);
    frame_t *f = msg();
    assert_int_equal(fanout_user(&fx->fo, conn_user(a1), f, NULL), 1);
    assert_int_equal(got(a1, f), 1);
    assert_int_equal(got(a2, f), 0);
    assert_int_equal(frame_refs(f), 2);
    frame_unref(f);
}

/* --- fanout_all --------------------------------------------------------- */

static void test_fanout_all_reaches_every_connection(void **state) {
    fixture_t *fx = *state;
    enum { N = 30 };
    conn_t *c[N];
    char uid[16];
    for (int i = 0; i < N; i++) {
        snprintf(uid, sizeof uid, "u%d", i % 10);
        c[i] = add(fx, uid);
    }
    frame_t *f = msg();
    assert_int_equal(fanout_all(&fx->fo, f, NULL, NULL), N);
    for (int i = 0; i < N; i++)
        assert_int_equal(got(c[i], f), 1);
    assert_int_equal(frame_refs(f), 1 + N);
    frame_unref(f);
}

static void test_fanout_all_honours_except_conn_and_except_user(void **state) {
    fixture_t *fx = *state;
    conn_t *a1 = add(fx, "alice"), *a2 = add(fx, "alice");
    conn_t *b1 = add(fx, "bob"), *b2 = add(fx, "bob");
    conn_t *c = add(fx, "carol");
    frame_t *f = msg();
    assert_int_equal(fanout_all(&fx->fo, f, b1, conn_user(a1)), 2);
    assert_int_equal(got(a1, f), 0);
    assert_int_equal(got(a2, f), 0);
    assert_int_equal(got(b1, f), 0);
    assert_int_equal(got(b2, f), 1);
    assert_int_equal(got(c, f), 1);
    assert_int_equal(frame_refs(f), 3);
    frame_unref(f);
}

static void test_fanout_all_overflow_reports_each_slow_conn_once(void **state) {
    fixture_t *fx = *state;
    conn_t *s1 = add(fx, "s1"), *ok = add(fx, "ok"), *s2 = add(fx, "s2");
    frame_t *f = msg();
    fill(s1, frame_wire_len(f));
    fill(s2, frame_wire_len(f));
    assert_int_equal(fanout_all(&fx->fo, f, NULL, NULL), 1);
    assert_int_equal(fx->overflows, 2);
    assert_true((fx->overflowed[0] == s1 && fx->overflowed[1] == s2) ||
                (fx->overflowed[0] == s2 && fx->overflowed[1] == s1));
    assert_int_equal(got(ok, f), 1);
    assert_int_equal(frame_refs(f), 2);
    frame_unref(f);
}

static void test_fanout_frames_freed_when_queues_drain(void **state) {
    /* The caller drops its reference right after the send, as the hub
     * does; the queues keep the frame alive until they are consumed and
     * then it is freed (LeakSanitizer checks). */
    fixture_t *fx = *state;
    conn_t *a = add(fx, "alice"), *b = add(fx, "bob");
    join(fx, "lobby", a);
    join(fx, "lobby", b);
    frame_t *f = msg();
    fanout_room(&fx->fo, rooms_get(fx->rooms, "lobby"), f, NULL, NULL);
    frame_unref(f);
    assert_int_equal(frame_refs(conn_queue_peek(a, 0)), 2);
    size_t len;
    assert_memory_equal(frame_payload(conn_queue_peek(b, 0), &len), "{\"t\":1}",
                        7);
    conn_queue_consume(a, 1);
    assert_int_equal(frame_refs(conn_queue_peek(b, 0)), 1);
    conn_queue_consume(b, 1);
    assert_int_equal(conn_stats(a)->messages_out, 1);
    assert_int_equal(conn_stats(b)->messages_out, 1);
}

/* What the transport does when asked to drain: the socket took
 * everything queued. */
static void drain_all(void *ud, conn_t *c) {
    fixture_t *fx = ud;
    fx->drains++;
    conn_queue_consume(c, conn_queue_len(c));
}

static void test_full_queue_is_drained_before_overflow(void **state) {
    fixture_t *fx = *state;
    fx->fo.drain = drain_all;
    conn_t *a = add(fx, "alice");
    join(fx, "r", a);
    /* Ten times the queue limit in one burst: a client whose socket keeps
     * up is never called slow. */
    char body[1000];
    memset(body, 'x', sizeof body);
    for (int i = 0; i < 40; i++) {
        frame_t *f = frame_create_text(body, sizeof body);
        assert_int_equal(
            fanout_room(&fx->fo, rooms_get(fx->rooms, "r"), f, NULL, NULL), 1);
        frame_unref(f);
    }
    assert_true(fx->drains > 0);
    assert_int_equal(fx->overflows, 0);
}

/* A drain that can write nothing (the socket is full). */
static void drain_none(void *ud, conn_t *c) {
    fixture_t *fx = ud;
    fx->drains++;
}

static void test_overflow_reported_when_drain_cannot_write(void **state) {
    fixture_t *fx = *state;
    fx->fo.drain = drain_none;
    fx->close_on_overflow = 1;
    conn_t *a = add(fx, "alice");
    char body[1000];
    memset(body, 'x', sizeof body);
    for (int i = 0; i < 10; i++) {
        frame_t *f = frame_create_text(body, sizeof body);
        fanout_conn(&fx->fo, a, f);
        frame_unref(f);
    }
    assert_int_equal(fx->drains, 1);
    assert_int_equal(fx->overflows, 1);
    assert_ptr_equal(fx->overflowed[0], a);
}

/* What the transport does to shed (nothing partly written here). */
static void shed(void *ud, conn_t *c) {
    conn_queue_drop_ephemeral(c, 0);
}

/* Fills a's queue to LIMIT with 1 KiB frames (4 of them), each
 * ephemeral when the bit of its index is set in mask. */
static void fill_queue(conn_t *a, unsigned mask) {
    char body[1020];
    memset(body, 'x', sizeof body);
    for (int i = 0; i < 4; i++) {
        frame_t *f = frame_create_text(body, sizeof body);
        if (mask & (1u << i)) frame_set_ephemeral(f);
        assert_int_equal(conn_enqueue(a, f), 0);
        frame_unref(f);
    }
    assert_int_equal(conn_queue_bytes(a), LIMIT);
}

static void
test_behind_loses_ephemeral_frames_before_being_closed(void **state) {
    fixture_t *fx = *state;
    fx->fo.drain = drain_none;
    fx->fo.shed = shed;
    fx->close_on_overflow = 1;
    conn_t *a = add(fx, "alice");
    fill_queue(a, 0x5); /* frames 0 and 2 ephemeral */
    frame_t *d = msg();
    assert_int_equal(fanout_conn(&fx->fo, a, d), 1);
    assert_int_equal(fx->overflows, 0);
    assert_int_equal(conn_queue_len(a), 3);
    assert_false(frame_ephemeral(conn_queue_peek(a, 0)));
    assert_false(frame_ephemeral(conn_queue_peek(a, 1)));
    assert_ptr_equal(conn_queue_peek(a, 2), d);
    frame_unref(d);
}

static void test_behind_with_durable_frames_only_is_closed(void **state) {
    fixture_t *fx = *state;
    fx->fo.drain = drain_none;
    fx->fo.shed = shed;
    fx->close_on_overflow = 1;
    conn_t *a = add(fx, "alice");
    fill_queue(a, 0);
    frame_t *d = msg();
    assert_int_equal(fanout_conn(&fx->fo, a, d), 0);
    assert_int_equal(fx->overflows, 1);
    assert_int_equal(conn_close_code(a), 4008);
    frame_unref(d);
}

static void
test_ephemeral_frame_that_finds_no_room_is_dropped_not_closed(void **state) {
    fixture_t *fx = *state;
    fx->fo.drain = drain_none;
    fx->fo.shed = shed;
    fx->close_on_overflow = 1;
    conn_t *a = add(fx, "alice");
    fill_queue(a, 0);
    frame_t *e = msg();
    frame_set_ephemeral(e);
    assert_int_equal(fanout_conn(&fx->fo, a, e), 0);
    assert_int_equal(fx->overflows, 0);
    assert_false(conn_closing(a));
    assert_int_equal(conn_queue_len(a), 4);
    assert_int_equal(frame_refs(e), 1);
    frame_unref(e);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_fanout_conn_queues_frame),
        T(test_fanout_conn_skips_closing_connection_without_overflow),
        T(test_fanout_conn_overflow_calls_callback_once),
        T(test_fanout_room_shares_one_frame_with_every_member_conn),
        T(test_fanout_room_skips_except_conn_only),
        T(test_fanout_room_skips_every_conn_of_except_user),
        T(test_fanout_room_skips_left_member),
        T(test_fanout_room_leaves_non_members_untouched),
        T(test_fanout_room_overflow_reports_slow_conn_and_delivers_rest),
        T(test_fanout_overflow_not_reported_again_once_closing),
        T(test_fanout_user_reaches_every_conn_but_except_conn),
        T(test_fanout_user_counts_only_queued),
        T(test_fanout_all_reaches_every_connection),
        T(test_fanout_all_honours_except_conn_and_except_user),
        T(test_fanout_all_overflow_reports_each_slow_conn_once),
        T(test_fanout_frames_freed_when_queues_drain),
        T(test_full_queue_is_drained_before_overflow),
        T(test_overflow_reported_when_drain_cannot_write),
        T(test_behind_loses_ephemeral_frames_before_being_closed),
        T(test_behind_with_durable_frames_only_is_closed),
        T(test_ephemeral_frame_that_finds_no_room_is_dropped_not_closed),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
