/* test_conn.c -- unit tests for core/conn.c.
 *
 * The registry decides when a user comes online and goes offline (first
 * and last connection), and its send queues decide what a client receives
 * and in which order, and when a slow client is cut off. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conn.h"
#include "frame.h"

#define LIMIT (1024 * 1024)

static int setup(void **state) {
    *state = conns_create(LIMIT);
    return 0;
}

static int teardown(void **state) {
    conns_destroy(*state);
    return 0;
}

static conn_t *add(conns_t *cs, const char *uid, int *first) {
    int dummy;
    return conns_add(cs, uid, NULL, 1000, first ? first : &dummy);
}

static void drop(conns_t *cs, conn_t *c, int *last) {
    int dummy;
    conns_remove(cs, c, last ? last : &dummy);
}

/* A frame whose payload is the decimal number n. */
static frame_t *numbered(int n) {
    char s[16];
    int len = snprintf(s, sizeof s, "%d", n);
    return frame_create_text(s, (size_t)len);
}

static int frame_number(const frame_t *f) {
    size_t len;
    const char *p = frame_payload(f, &len);
    char s[16];
    assert_true(len < sizeof s);
    memcpy(s, p, len);
    s[len] = '\0';
    return atoi(s);
}

/* --- registry ----------------------------------------------------------- */

static void test_conns_add_registers_connection_and_user(void **state) {
    conns_t *cs = *state;
    int first = -1;
    int transport;
    conn_t *c = conns_add(cs, "alice", &transport, 1234, &first);
    assert_non_null(c);
    assert_int_equal(first, 1);
    assert_int_equal(conns_count(cs), 1);
    assert_int_equal(conns_user_count(cs), 1);
    assert_ptr_equal(conn_transport(c), &transport);
    assert_int_equal(conn_connected_at(c), 1234);
    assert_int_equal(conn_last_activity(c), 1234);
    user_t *u = conn_user(c);
    assert_non_null(u);
    assert_string_equal(user_id(u), "alice");
    assert_ptr_equal(conns_user(cs, "alice"), u);
    assert_int_equal(user_conn_count(u), 1);
    assert_false(conn_closing(c));
    assert_int_equal(conn_queue_len(c), 0);
    assert_int_equal(conn_queue_bytes(c), 0);
}

static void test_conns_second_connection_of_user_is_not_first(void **state) {
    conns_t *cs = *state;
    int first;
    conn_t *a = add(cs, "alice", &first);
    assert_int_equal(first, 1);
    conn_t *b = add(cs, "alice", &first);
    assert_int_equal(first, 0);
    assert_ptr_equal(conn_user(a), conn_user(b));
    assert_int_equal(user_conn_count(conn_user(a)), 2);
    assert_int_equal(conns_count(cs), 2);
    assert_int_equal(conns_user_count(cs), 1);
}

static void test_conns_connection_ids_are_unique(void **state) {
    conns_t *cs = *state;
    conn_t *a = add(cs, "alice", NULL);
    conn_t *b = add(cs, "alice", NULL);
    conn_t *c = add(cs, "bob", NULL);
    assert_string_not_equal(conn_id(a), conn_id(b));
    assert_string_not_equal(conn_id(a), conn_id(c));
    assert_string_not_equal(conn_id(b), conn_id(c));
    /* An id is not reused after its connection goes. */
    char old[32];
    snprintf(old, sizeof old, "%s", conn_id(c));
    drop(cs, c, NULL);
    conn_t *d = add(cs, "bob", NULL);
    assert_string_not_equal(conn_id(d), old);
    assert_null(conns_lookup(cs, old));
}

static void test_conns_lookup_finds_connection_by_id(void **state) {
    conns_t *cs = *state;
    conn_t *a = add(cs, "alice", NULL);
    conn_t *b = add(cs, "bob", NULL);
    assert_ptr_equal(conns_lookup(cs, conn_id(a)), a);
    assert_ptr_equal(conns_lookup(cs, conn_id(b)), b);
    assert_null(conns_lookup(cs, "999999"));
    assert_null(conns_user(cs, "carol"));
}

static void test_conns_remove_last_connection_frees_user(void **state) {
    conns_t *cs = *state;
    int last = -1;
    conn_t *a = add(cs, "alice", NULL);
    conn_t *b = add(cs, "alice", NULL);
    char aid[32];
    snprintf(aid, sizeof aid, "%s", conn_id(a));

    drop(cs, a, &last);
    assert_int_equal(last, 0);
    assert_null(conns_lookup(cs, aid));
    assert_non_null(conns_user(cs, "alice"));
    assert_int_equal(user_conn_count(conns_user(cs, "alice")), 1);
    assert_ptr_equal(user_next_conn(conns_user(cs, "alice"), NULL), b);

    drop(cs, b, &last);
    assert_int_equal(last, 1);
    assert_null(conns_user(cs, "alice"));
    assert_int_equal(conns_count(cs), 0);
    assert_int_equal(conns_user_count(cs), 0);
}

static void test_conns_user_comes_back_as_first_after_leaving(void **state) {
    conns_t *cs = *state;
    int first, last;
    conn_t *a = add(cs, "alice", &first);
    drop(cs, a, &last);
    assert_int_equal(last, 1);
    a = add(cs, "alice", &first);
    assert_int_equal(first, 1);
    assert_int_equal(user_conn_count(conn_user(a)), 1);
}

static void
test_conns_user_connection_list_tracks_add_and_remove(void **state) {
    conns_t *cs = *state;
    conn_t *c[5];
    for (int i = 0; i < 5; i++)
        c[i] = add(cs, "alice", NULL);
    add(cs, "bob", NULL);
    user_t *u = conns_user(cs, "alice");

    /* Remove a middle one, the first and the last added. */
    drop(cs, c[2], NULL);
    drop(cs, c[0], NULL);
    drop(cs, c[4], NULL);
    assert_int_equal(user_conn_count(u), 2);
    int seen1 = 0, seen3 = 0, n = 0;
    for (conn_t *x = user_next_conn(u, NULL); x; x = user_next_conn(u, x)) {
        assert_ptr_equal(conn_user(x), u);
        if (x == c[1]) seen1++;
        if (x == c[3]) seen3++;
        n++;
    }
    assert_int_equal(n, 2);
    assert_int_equal(seen1, 1);
    assert_int_equal(seen3, 1);
}

static void test_conns_next_visits_every_connection_once(void **state) {
    conns_t *cs = *state;
    enum { N = 50 };
    conn_t *c[N];
    char uid[16];
    for (int i = 0; i < N; i++) {
        snprintf(uid, sizeof uid, "u%d", i % 7);
        c[i] = add(cs, uid, NULL);
    }
    for (int i = 0; i < N; i += 5)
        drop(cs, c[i], NULL);
    int seen[N] = {0};
    size_t n = 0;
    for (conn_t *x = conns_next(cs, NULL); x; x = conns_next(cs, x)) {
        int found = 0;
        for (int i = 0; i < N; i++)
            if (i % 5 && c[i] == x) {
                seen[i]++;
                found = 1;
            }
        assert_true(found);
        n++;
    }
    assert_int_equal(n, conns_count(cs));
    assert_int_equal(n, N - N / 5);
    for (int i = 0; i < N; i++)
        assert_int_equal(seen[i], i % 5 ? 1 : 0);
}

static void test_conns_next_user_visits_every_online_user_once(void **state) {
    conns_t *cs = *state;
    add(cs, "alice", NULL);
    add(cs, "alice", NULL);
    add(cs, "bob", NULL);
    conn_t *c = add(cs, "carol", NULL);
    drop(cs, c, NULL);
    int alice = 0, bob = 0, n = 0;
    size_t pos = 0;
    for (user_t *u; (u = conns_next_user(cs, &pos));) {
        if (strcmp(user_id(u), "alice") == 0) alice++;
        if (strcmp(user_id(u), "bob") == 0) bob++;
        n++;
    }
    assert_int_equal(n, 2);
    assert_int_equal(alice, 1);
    assert_int_equal(bob, 1);
}

static void test_conn_touch_and_ping_bookkeeping(void **state) {
    conns_t *cs = *state;
    conn_t *c = add(cs, "alice", NULL);
    conn_touch(c, 5000);
    assert_int_equal(conn_last_activity(c), 5000);
    assert_int_equal(conn_connected_at(c), 1000);
    conn_set_ping_sent_at(c, 6000);
    assert_int_equal(conn_ping_sent_at(c), 6000);
    int t;
    conn_set_transport(c, &t);
    assert_ptr_equal(conn_transport(c), &t);
    conn_set_closing(c, 1008);
    assert_true(conn_closing(c));
    assert_int_equal(conn_close_code(c), 1008);
}

static void
test_conns_destroy_frees_connections_and_queued_frames(void **state) {
    /* Its own registry: everything left in it must be freed (ASan). */
    conns_t *cs = conns_create(LIMIT);
    frame_t *f = frame_create_text("hello", 5);
    for (int i = 0; i < 10; i++) {
        conn_t *c = add(cs, i % 2 ? "alice" : "bob", NULL);
        assert_int_equal(conn_enqueue(c, f), 0);
    }
    assert_int_equal(frame_refs(f), 11);
    conns_destroy(cs);
    assert_int_equal(frame_refs(f), 1);
    frame_unref(f);
}

/* --- send queue --------------------------------------------------------- */

static void test_conn_enqueue_refs_frame_and_counts_wire_bytes(void **state) {
    conns_t *cs = *state;
    conn_t *c = add(cs, "alice", NULL);
    frame_t *f = frame_create_text("hello", 5);
    assert_int_equal(conn_enqueue(c, f), 0);
    assert_int_equal(frame_refs(f), 2);
    assert_int_equal(conn_queue_len(c), 1);
    assert_int_equal(conn_queue_bytes(c), frame_wire_len(f));
    assert_int_equal(conn_queue_bytes(c), 7);
    assert_ptr_equal(conn_queue_peek(c, 0), f);
    assert_null(conn_queue_peek(c, 1));

    /* The same frame twice is two messages. */
    assert_int_equal(conn_enqueue(c, f), 0);
    assert_int_equal(frame_refs(f), 3);
    assert_int_equal(conn_queue_len(c), 2);
    assert_int_equal(conn_queue_bytes(c), 2 * frame_wire_len(f));
    frame_unref(f);
}

static void
test_conn_enqueue_over_limit_returns_error_and_queues_nothing(void **state) {
    frame_t *f = frame_create_text("0123456789", 10); /* 12 wire bytes */
    size_t w = frame_wire_len(f);
    conns_t *cs = conns_create(3 * w);
    conn_t *c = add(cs, "alice", NULL);
    /* Exactly at the limit is allowed. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(conn_enqueue(c, f), 0);
    assert_int_equal(conn_queue_bytes(c), 3 * w);
    assert_int_equal(frame_refs(f), 4);

    assert_int_equal(conn_enqueue(c, f), -ENOBUFS);
    assert_int_equal(conn_queue_len(c), 3);
    assert_int_equal(conn_queue_bytes(c), 3 * w);
    assert_int_equal(frame_refs(f), 4);

    /* A smaller frame that still does not fit is refused as well. */
    frame_t *small = frame_create_text("", 0);
    assert_int_equal(conn_enqueue(c, small), -ENOBUFS);
    assert_int_equal(frame_refs(small), 1);

    /* Once some drains, there is room again. */
    conn_queue_consume(c, 1);
    assert_int_equal(conn_enqueue(c, f), 0);
    assert_int_equal(conn_queue_len(c), 3);
    frame_unref(small);
    frame_unref(f);
    conns_destroy(cs);
}

static void test_conn_enqueue_frame_larger_than_limit_is_refused(void **state) {
    conns_t *cs = conns_create(100);
    conn_t *c = add(cs, "alice", NULL);
    char big[200];
    memset(big, 'x', sizeof big);
    frame_t *f = frame_create_text(big, sizeof big);
    assert_int_equal(conn_enqueue(c, f), -ENOBUFS);
    assert_int_equal(conn_queue_len(c), 0);
    assert_int_equal(conn_queue_bytes(c), 0);
    assert_int_equal(frame_refs(f), 1);
    assert_false(conns_has_dirty(cs));
    frame_unref(f);
    conns_destroy(cs);
}

static void
test_conn_queue_consume_counts_messages_and_bytes_out(void **state) {
    conns_t *cs = *state;
    conn_t *c = add(cs, "alice", NULL);
    frame_t *a = frame_create_text("abc", 3);    /* 5 wire bytes */
    frame_t *b = frame_create_text("abcdef", 6); /* 8 wire bytes */
    conn_enqueue(c, a);
    conn_enqueue(c, b);
    conn_enqueue(c, a);
    conn_queue_consume(c, 2);
    assert_int_equal(conn_stats(c)->messages_out, 2);
    assert_int_equal(conn_stats(c)->bytes_out, 5 + 8);
    assert_int_equal(conn_queue_len(c), 1);
    assert_int_equal(conn_queue_bytes(c), 5);
    assert_ptr_equal(conn_queue_peek(c, 0), a);
    assert_int_equal(frame_refs(a), 2);
    assert_int_equal(frame_refs(b), 1);
    /* Consuming more than queued stops at empty. */
    conn_queue_consume(c, 10);
    assert_int_equal(conn_queue_len(c), 0);
    assert_int_equal(conn_queue_bytes(c), 0);
    assert_int_equal(conn_stats(c)->messages_out, 3);
    assert_int_equal(conn_stats(c)->bytes_out, 5 + 8 + 5);
    assert_int_equal(frame_refs(a), 1);
    frame_unref(a);
    frame_unref(b);
}

static void
test_conn_queue_clear_drops_frames_without_counting_sent(void **state) {
    conns_t *cs = *state;
    conn_t *c = add(cs, "alice", NULL);
    frame_t *f = frame_create_text("abc", 3);
    for (int i = 0; i < 20; i++)
        conn_enqueue(c, f);
    assert_int_equal(frame_refs(f), 21);
    conn_queue_clear(c);
    assert_int_equal(conn_queue_len(c), 0);
    assert_int_equal(conn_queue_bytes(c), 0);
    assert_int_equal(frame_refs(f), 1);
    assert_int_equal(conn_stats(c)->messages_out, 0);
    assert_int_equal(conn_stats(c)->bytes_out, 0);
    /* Still usable afterwards. */
    assert_int_equal(conn_enqueue(c, f), 0);
    assert_ptr_equal(conn_queue_peek(c, 0), f);
    frame_unref(f);
}

static void
test_conn_queue_keeps_fifo_order_across_wrap_and_growth(void **state) {
    conns_t *cs = *state;
    conn_t *c = add(cs, "alice", NULL);
    int next_in = 0, next_out = 0;
    /* Interleave enqueue and consume so that the ring's head walks round
     * and the ring grows while wrapped (8 -> 16 -> 32 -> 64). The pattern
     * enqueues a few more than it consumes each round. */
    for (int round = 0; round < 40; round++) {
        int in = 3 + round % 5, out = 2 + round % 4;
        for (int i = 0; i < in; i++) {
            frame_t *f = numbered(next_in++);
            assert_int_equal(conn_enqueue(c, f), 0);
            frame_unref(f); /* the queue holds the only reference */
        }
        /* Everything queued is in order from the head. */
        size_t len = conn_queue_len(c);
        assert_int_equal(len, (size_t)(next_in - next_out));
        for (size_t i = 0; i < len; i++)
            assert_int_equal(frame_number(conn_queue_peek(c, i)),
                             next_out + (int)i);
        for (int i = 0; i < out && conn_queue_len(c); i++) {
            assert_int_equal(frame_number(conn_queue_peek(c, 0)), next_out);
            conn_queue_consume(c, 1);
            next_out++;
        }
    }
    assert_true(next_in - next_out > 32); /* it did grow past 32 */
    while (conn_queue_len(c)) {
        assert_int_equal(frame_number(conn_queue_peek(c, 0)), next_out++);
        conn_queue_consume(c, 1);
    }
    assert_int_equal(next_out, next_in);
    assert_int_equal(conn_queue_bytes(c), 0);
    assert_int_equal(conn_stats(c)->messages_out, (uint64_t)next_in);
}

static void test_conn_queue_grows_when_full_at_wrapped_position(void **state) {
    conns_t *cs = *state;
    conn_t *c = add(cs, "alice", NULL);
    /* Fill the first ring (8), take 5 off the head, refill to full so the
     * live run wraps, then add one more to force growth while wrapped. */
    int n = 0;
    for (; n < 8; n++) {
        frame_t *f = numbered(n);
        conn_enqueue(c, f);
        frame_unref(f);
    }
    conn_queue_consume(c, 5);
    for (; n < 8 + 5 + 1; n++) {
        frame_t *f = numbered(n);
        conn_enqueue(c, f);
        frame_unref(f);
    }
    assert_int_equal(conn_queue_len(c), 9);
    for (size_t i = 0; i < 9; i++)
        assert_int_equal(frame_number(conn_queue_peek(c, i)), 5 + (int)i);
    assert_null(conn_queue_peek(c, 9));
}

static void test_conn_queue_release_frees_only_an_empty_ring(void **state) {
    conns_t *cs = *state;
    conn_t *c = add(cs, "alice", NULL);
    assert_int_equal(conn_queue_release(c), 0); /* none yet */
    /* A burst grows the ring to 1,024 slots. */
    int n = 0;
    for (; n < 1000; n++) {
        frame_t *f = numbered(n);
        conn_enqueue(c, f);
        frame_unref(f);
    }
    /* Not while a frame is queued. */
    conn_queue_consume(c, 999);
    assert_int_equal(conn_queue_release(c), 0);
    assert_int_equal(frame_number(conn_queue_peek(c, 0)), 999);
    conn_queue_consume(c, 1);
    assert_int_equal(conn_queue_release(c), 1024 * sizeof(frame_t *));
    assert_int_equal(conn_queue_release(c), 0);
    /* The queue works as before, from a small ring again. */
    for (; n < 1010; n++) {
        frame_t *f = numbered(n);
        assert_int_equal(conn_enqueue(c, f), 0);
        frame_unref(f);
    }
    assert_int_equal(conn_queue_len(c), 10);
    for (size_t i = 0; i < 10; i++)
        assert_int_equal(frame_number(conn_queue_peek(c, i)), 1000 + (int)i);
    assert_int_equal(conn_queue_drop_ephemeral(c, 0), 0);
    conn_queue_consume(c, 10);
    assert_int_equal(conn_queue_release(c), 16 * sizeof(frame_t *));
}

static void test_conn_closing_drops_new_frames_silently(void **state) {
    conns_t *cs = *state;
    conn_t *c = add(cs, "alice", NULL);
    frame_t *f = frame_create_text("bye", 3);
    conn_enqueue(c, f);
    while (conns_pop_dirty(cs)) {
    }
    conn_set_closing(c, 1000);
    assert_int_equal(conn_enqueue(c, f), 0);
    assert_int_equal(conn_queue_len(c), 1);
    assert_int_equal(conn_queue_bytes(c), frame_wire_len(f));
    assert_int_equal(frame_refs(f), 2);
    assert_false(conns_has_dirty(cs));
    frame_unref(f);
}

static void test_conn_closing_drop_ignores_limit(void **state) {
    /* A closing connection is not reported again as overflowing. */
    conns_t *cs = conns_create(4);
    conn_t *c = add(cs, "alice", NULL);
    frame_t *f = frame_create_text("0123456789", 10);
    assert_int_equal(conn_enqueue(c, f), -ENOBUFS);
    conn_set_closing(c, 1008);
    assert_int_equal(conn_enqueue(c, f), 0);
    assert_int_equal(conn_queue_len(c), 0);
    frame_unref(f);
    conns_destroy(cs);
}

/* --- dirty list --------------------------------------------------------- */

static void test_conns_dirty_lists_connection_once_per_flush(void **state) {
    conns_t *cs = *state;
    conn_t *c = add(cs, "alice", NULL);
    frame_t *f = frame_create_text("x", 1);
    assert_false(conns_has_dirty(cs));
    assert_null(conns_pop_dirty(cs));
    for (int i = 0; i < 10; i++)
        conn_enqueue(c, f);
    assert_true(conns_has_dirty(cs));
    assert_ptr_equal(conns_pop_dirty(cs), c);
    assert_false(conns_has_dirty(cs));
    assert_null(conns_pop_dirty(cs));
    /* New frames after the flush make it dirty again. */
    conn_enqueue(c, f);
    assert_ptr_equal(conns_pop_dirty(cs), c);
    assert_null(conns_pop_dirty(cs));
    frame_unref(f);
}

static void test_conns_dirty_pops_in_first_dirtied_order(void **state) {
    conns_t *cs = *state;
    conn_t *a = add(cs, "alice", NULL);
    conn_t *b = add(cs, "bob", NULL);
    conn_t *c = add(cs, "carol", NULL);
    frame_t *f = frame_create_text("x", 1);
    conn_enqueue(b, f);
    conn_enqueue(a, f);
    conn_enqueue(b, f);
    conn_enqueue(c, f);
    conn_enqueue(a, f);
    assert_ptr_equal(conns_pop_dirty(cs), b);
    assert_ptr_equal(conns_pop_dirty(cs), a);
    assert_ptr_equal(conns_pop_dirty(cs), c);
    assert_null(conns_pop_dirty(cs));
    frame_unref(f);
}

/* The flush asks for the next connection's transport handle to warm it
 * up: it must be the one conns_pop_dirty returns next. */
static void test_conns_prefetch_dirty_names_the_next_popped(void **state) {
    conns_t *cs = *state;
    int ta, tb;
    conn_t *a = add(cs, "alice", NULL);
    conn_t *b = add(cs, "bob", NULL);
    conn_set_transport(a, &ta);
    conn_set_transport(b, &tb);
    frame_t *f = frame_create_text("x", 1);
    assert_null(conns_prefetch_dirty(cs));
    conn_enqueue(b, f);
    conn_enqueue(a, f);
    assert_ptr_equal(conns_prefetch_dirty(cs), &tb);
    assert_ptr_equal(conns_pop_dirty(cs), b);
    assert_ptr_equal(conns_prefetch_dirty(cs), &ta);
    assert_ptr_equal(conns_pop_dirty(cs), a);
    assert_null(conns_prefetch_dirty(cs));
    frame_unref(f);
}

static void test_conns_mark_dirty_requeues_at_tail_once(void **state) {
    conns_t *cs = *state;
    conn_t *a = add(cs, "alice", NULL);
    conn_t *b = add(cs, "bob", NULL);
    conns_mark_dirty(cs, a);
    conns_mark_dirty(cs, b);
    conns_mark_dirty(cs, a);
    assert_ptr_equal(conns_pop_dirty(cs), a);
    /* The socket had no room: a goes back, behind b. */
    conns_mark_dirty(cs, a);
    assert_ptr_equal(conns_pop_dirty(cs), b);
    assert_ptr_equal(conns_pop_dirty(cs), a);
    assert_null(conns_pop_dirty(cs));
}

static void test_conns_remove_unlinks_dirty_connection(void **state) {
    conns_t *cs = *state;
    conn_t *c[5];
    for (int i = 0; i < 5; i++) {
        c[i] = add(cs, "alice", NULL);
        conns_mark_dirty(cs, c[i]);
    }
    /* Middle, head and tail of the dirty list. */
    drop(cs, c[2], NULL);
    drop(cs, c[0], NULL);
    drop(cs, c[4], NULL);
    /* The tail must now be c[3]: a newly dirtied connection goes after
     * it and nothing is lost. */
    conn_t *d = add(cs, "bob", NULL);
    conns_mark_dirty(cs, d);
    assert_ptr_equal(conns_pop_dirty(cs), c[1]);
    assert_ptr_equal(conns_pop_dirty(cs), c[3]);
    assert_ptr_equal(conns_pop_dirty(cs), d);
    assert_null(conns_pop_dirty(cs));
}

static void test_conns_remove_only_dirty_connection_empties_list(void **state) {
    conns_t *cs = *state;
    conn_t *a = add(cs, "alice", NULL);
    conns_mark_dirty(cs, a);
    drop(cs, a, NULL);
    assert_false(conns_has_dirty(cs));
    assert_null(conns_pop_dirty(cs));
    conn_t *b = add(cs, "bob", NULL);
    conns_mark_dirty(cs, b);
    assert_ptr_equal(conns_pop_dirty(cs), b);
    assert_null(conns_pop_dirty(cs));
}

static void test_conns_remove_drops_queued_frames(void **state) {
    conns_t *cs = *state;
    conn_t *a = add(cs, "alice", NULL);
    frame_t *f = frame_create_text("x", 1);
    for (int i = 0; i < 12; i++)
        conn_enqueue(a, f);
    assert_int_equal(frame_refs(f), 13);
    drop(cs, a, NULL);
    assert_int_equal(frame_refs(f), 1);
    assert_false(conns_has_dirty(cs));
    frame_unref(f);
}

/* --- user ids ----------------------------------------------------------- */

static int valid(const char *s) {
    return conns_valid_user_id(s, strlen(s));
}

static void test_conns_valid_user_id_accepts_allowed_characters(void **state) {
    assert_true(valid("a"));
    assert_true(valid("alice"));
    assert_true(valid("Alice_Smith-2"));
    assert_true(valid("alice@example.com"));
    assert_true(valid("0123456789"));
    assert_true(valid("._@-"));
    char s[65];
    memset(s, 'x', 64);
    s[64] = '\0';
    assert_true(valid(s));
}

static void test_conns_valid_user_id_rejects_empty_and_too_long(void **state) {
    assert_false(valid(""));
    char s[66];
    memset(s, 'x', 65);
    s[65] = '\0';
    assert_false(valid(s));
}

static void test_conns_valid_user_id_rejects_other_characters(void **state) {
    const char *bad[] = {"a b",  "a/b",  "a:b",      "a\"b", "a\\b",
                         "a+b",  "a#b",  "a%b",      "a*b",  "é",
                         "a\tb", "a\nb", "<script>", "a,b",  "a{b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(valid(bad[i]));
    /* Every byte outside the set, in the middle of an otherwise good id. */
    for (int ch = 1; ch < 256; ch++) {
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                 (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' ||
                 ch == '@' || ch == '-';
        char s[4] = {'a', (char)ch, 'b', '\0'};
        assert_int_equal(conns_valid_user_id(s, 3), ok);
    }
}

static void test_conns_valid_user_id_honours_length_not_nul(void **state) {
    /* The length is what counts: an embedded NUL is a bad character, and
     * bytes past n are not looked at. */
    assert_false(conns_valid_user_id("ab\0cd", 5));
    assert_true(conns_valid_user_id("ab cd", 2));
}

/* ---- delivery classes: what a connection that falls behind loses ---- */

/* A frame whose payload is text, of the class given. */
static frame_t *classed(const char *text, int ephemeral) {
    frame_t *f = frame_create_text(text, strlen(text));
    if (ephemeral) frame_set_ephemeral(f);
    return f;
}

/* The payloads queued on c, in order, joined by ',' into out. */
static const char *queued_text(const conn_t *c, char *out, size_t cap) {
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < conn_queue_len(c); i++) {
        size_t len;
        const char *p = frame_payload(conn_queue_peek(c, i), &len);
        n += (size_t)snprintf(out + n, cap - n, "%s%.*s", i ? "," : "",
                              (int)len, p);
    }
    return out;
}

/* Queues each of spec's items: "d1" durable, "e1" ephemeral. */
static void queue_classed(conn_t *c, const char *const *items, size_t n) {
    for (size_t i = 0; i < n; i++) {
        frame_t *f = classed(items[i], items[i][0] == 'e');
        assert_int_equal(conn_enqueue(c, f), 0);
        frame_unref(f);
    }
}

static void
test_conn_queue_drop_ephemeral_keeps_durable_in_order(void **state) {
    conn_t *c = add(*state, "alice", NULL);
    static const char *const items[] = {"e1", "d1", "e2", "e3", "d2",
                                        "d3", "e4", "d4", "e5"};
    queue_classed(c, items, 9);
    size_t before = conn_queue_bytes(c);
    assert_int_equal(conn_queue_drop_ephemeral(c, 0), 5);
    char buf[128];
    assert_string_equal(queued_text(c, buf, sizeof buf), "d1,d2,d3,d4");
    /* Each frame is 2 bytes of header and 2 of payload. */
    assert_int_equal(conn_queue_bytes(c), before - 5 * 4);
    /* Dropped, not sent. */
    conn_queue_consume(c, 4);
    assert_int_equal(conn_stats(c)->messages_out, 4);
    assert_int_equal(conn_queue_bytes(c), 0);
}

static void
test_conn_queue_drop_ephemeral_never_drops_a_begun_frame(void **state) {
    conn_t *c = add(*state, "alice", NULL);
    static const char *const items[] = {"e1", "e2", "d1", "e3"};
    queue_classed(c, items, 4);
    /* e1 is partly written: it must be finished, whatever its class. */
    assert_int_equal(conn_queue_drop_ephemeral(c, 1), 2);
    char buf[128];
    assert_string_equal(queued_text(c, buf, sizeof buf), "e1,d1");
}

static void test_conn_queue_drop_ephemeral_across_wrap_and_again(void **state) {
    conn_t *c = add(*state, "alice", NULL);
    static const char *const first[] = {"d0", "d1", "d2"};
    queue_classed(c, first, 3);
    conn_queue_consume(c, 2); /* the ring's head moves on */
    static const char *const more[] = {"e1", "d3", "e2", "d4", "e3"};
    queue_classed(c, more, 5); /* wraps, grows */
    assert_int_equal(conn_queue_drop_ephemeral(c, 0), 3);
    char buf[128];
    assert_string_equal(queued_text(c, buf, sizeof buf), "d2,d3,d4");
    /* What comes after a drop is looked at by the next one. */
    static const char *const later[] = {"e4", "d5", "e5"};
    queue_classed(c, later, 3);
    conn_queue_consume(c, 1);
    assert_int_equal(conn_queue_drop_ephemeral(c, 0), 2);
    assert_string_equal(queued_text(c, buf, sizeof buf), "d3,d4,d5");
    assert_int_equal(conn_queue_drop_ephemeral(c, 0), 0);
    assert_int_equal(conn_queue_bytes(c), 3 * 4);
}

static void
test_conn_queue_drop_ephemeral_frees_only_its_reference(void **state) {
    conns_t *cs = *state;
    conn_t *a = add(cs, "alice", NULL), *b = add(cs, "bob", NULL);
    frame_t *e = classed("e1", 1);
    conn_enqueue(a, e);
    conn_enqueue(b, e);
    assert_int_equal(frame_refs(e), 3);
    assert_int_equal(conn_queue_drop_ephemeral(a, 0), 1);
    assert_int_equal(frame_refs(e), 2);
    assert_ptr_equal(conn_queue_peek(b, 0), e);
    frame_unref(e);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_conns_add_registers_connection_and_user),
        T(test_conns_second_connection_of_user_is_not_first),
        T(test_conns_connection_ids_are_unique),
        T(test_conns_lookup_finds_connection_by_id),
        T(test_conns_remove_last_connection_frees_user),
        T(test_conns_user_comes_back_as_first_after_leaving),
        T(test_conns_user_connection_list_tracks_add_and_remove),
        T(test_conns_next_visits_every_connection_once),
        T(test_conns_next_user_visits_every_online_user_once),
        T(test_conn_touch_and_ping_bookkeeping),
        cmocka_unit_test(
            test_conns_destroy_frees_connections_and_queued_frames),
        T(test_conn_enqueue_refs_frame_and_counts_wire_bytes),
        cmocka_unit_test(
            test_conn_enqueue_over_limit_returns_error_and_queues_nothing),
        cmocka_unit_test(test_conn_enqueue_frame_larger_than_limit_is_refused),
        T(test_conn_queue_consume_counts_messages_and_bytes_out),
        T(test_conn_queue_clear_drops_frames_without_counting_sent),
        T(test_conn_queue_keeps_fifo_order_across_wrap_and_growth),
        T(test_conn_queue_grows_when_full_at_wrapped_position),
        T(test_conn_queue_release_frees_only_an_empty_ring),
        T(test_conn_closing_drops_new_frames_silently),
        cmocka_unit_test(test_conn_closing_drop_ignores_limit),
        T(test_conns_dirty_lists_connection_once_per_flush),
        T(test_conns_dirty_pops_in_first_dirtied_order),
        T(test_conns_prefetch_dirty_names_the_next_popped),
        T(test_conns_mark_dirty_requeues_at_tail_once),
        T(test_conns_remove_unlinks_dirty_connection),
        T(test_conns_remove_only_dirty_connection_empties_list),
        T(test_conns_remove_drops_queued_frames),
        T(test_conn_queue_drop_ephemeral_keeps_durable_in_order),
        T(test_conn_queue_drop_ephemeral_never_drops_a_begun_frame),
        T(test_conn_queue_drop_ephemeral_across_wrap_and_again),
        T(test_conn_queue_drop_ephemeral_frees_only_its_reference),
        cmocka_unit_test(test_conns_valid_user_id_accepts_allowed_characters),
        cmocka_unit_test(test_conns_valid_user_id_rejects_empty_and_too_long),
        cmocka_unit_test(test_conns_valid_user_id_rejects_other_characters),
        cmocka_unit_test(test_conns_valid_user_id_honours_length_not_nul),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
