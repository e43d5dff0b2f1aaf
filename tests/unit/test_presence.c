/* test_presence.c -- unit tests for core/presence.c.
 *
 * Who is told about a status change is decided by the subscriber lists
 * here; a closed connection left on a list would be a dangling pointer the
 * next notification dereferences, so presence_conn_closed is tested with
 * several watchers sharing a user, under ASan. */
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
#include "presence.h"

typedef struct fixture {
    conns_t *conns;
    presence_t *p;
} fixture_t;

static int setup(void **state) {
    fixture_t *fx = calloc(1, sizeof *fx);
    fx->conns = conns_create(1 << 20);
    fx->p = presence_create();
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    fixture_t *fx = *state;
    presence_destroy(fx->p);
    conns_destroy(fx->conns);
    free(fx);
    return 0;
}

static conn_t *add(fixture_t *fx, const char *uid) {
    int first;
    return conns_add(fx->conns, uid, NULL, 0, &first);
}

/* Closes c the way the hub does: presence first, then the registry. */
static void close_conn(fixture_t *fx, conn_t *c) {
    int last;
    presence_conn_closed(fx->p, c);
    conns_remove(fx->conns, c, &last);
}

static int is_subscriber(fixture_t *fx, const char *uid, const conn_t *c) {
    size_t pos = 0;
    int n = 0;
    for (conn_t *x; (x = presence_next_subscriber(fx->p, uid, &pos));)
        if (x == c) n++;
    return n;
}

/* --- status ------------------------------------------------------------- */

static void test_presence_unknown_user_is_offline(void **state) {
    fixture_t *fx = *state;
    assert_int_equal(presence_get(fx->p, "alice"), PRESENCE_OFFLINE);
}

static void test_presence_set_then_get(void **state) {
    fixture_t *fx = *state;
    assert_int_equal(presence_set(fx->p, "alice", PRESENCE_ONLINE), 1);
    assert_int_equal(presence_get(fx->p, "alice"), PRESENCE_ONLINE);
    assert_int_equal(presence_set(fx->p, "alice", PRESENCE_AWAY), 1);
    assert_int_equal(presence_get(fx->p, "alice"), PRESENCE_AWAY);
    assert_int_equal(presence_set(fx->p, "alice", PRESENCE_BUSY), 1);
    assert_int_equal(presence_get(fx->p, "alice"), PRESENCE_BUSY);
    /* Users are independent. */
    assert_int_equal(presence_get(fx->p, "bob"), PRESENCE_OFFLINE);
}

static void test_presence_set_same_status_returns_zero(void **state) {
    fixture_t *fx = *state;
    presence_set(fx->p, "alice", PRESENCE_AWAY);
    assert_int_equal(presence_set(fx->p, "alice", PRESENCE_AWAY), 0);
    assert_int_equal(presence_get(fx->p, "alice"), PRESENCE_AWAY);
    /* Offline for an unknown user is no change either. */
    assert_int_equal(presence_set(fx->p, "bob", PRESENCE_OFFLINE), 0);
}

static void test_presence_set_offline_forgets_user(void **state) {
    fixture_t *fx = *state;
    presence_set(fx->p, "alice", PRESENCE_ONLINE);
    assert_int_equal(presence_set(fx->p, "alice", PRESENCE_OFFLINE), 1);
    assert_int_equal(presence_get(fx->p, "alice"), PRESENCE_OFFLINE);
    assert_int_equal(presence_set(fx->p, "alice", PRESENCE_OFFLINE), 0);
    /* And can come back. */
    assert_int_equal(presence_set(fx->p, "alice", PRESENCE_ONLINE), 1);
}

/* --- subscriptions ------------------------------------------------------ */

static void test_presence_subscribe_lists_connection(void **state) {
    fixture_t *fx = *state;
    conn_t *c = add(fx, "bob");
    assert_int_equal(presence_subscriber_count(fx->p, "alice"), 0);
    assert_int_equal(presence_subscribe(fx->p, c, "alice"), 0);
    assert_int_equal(presence_subscriber_count(fx->p, "alice"), 1);
    assert_int_equal(is_subscriber(fx, "alice", c), 1);
    /* Subscribing does not change the watched user's status. */
    assert_int_equal(presence_get(fx->p, "alice"), PRESENCE_OFFLINE);
}

static void test_presence_subscribe_twice_is_one_subscription(void **state) {
    fixture_t *fx = *state;
    conn_t *c = add(fx, "bob");
    assert_int_equal(presence_subscribe(fx->p, c, "alice"), 0);
    assert_int_equal(presence_subscribe(fx->p, c, "alice"), 0);
    assert_int_equal(presence_subscriber_count(fx->p, "alice"), 1);
    assert_int_equal(is_subscriber(fx, "alice", c), 1);
    /* One close removes it entirely. */
    presence_conn_closed(fx->p, c);
    assert_int_equal(presence_subscriber_count(fx->p, "alice"), 0);
}

static void test_presence_subscriber_iteration_visits_each_once(void **state) {
    fixture_t *fx = *state;
    enum { N = 20 };
    conn_t *c[N];
    char uid[16];
    for (int i = 0; i < N; i++) {
        snprintf(uid, sizeof uid, "w%d", i % 4);
        c[i] = add(fx, uid);
        presence_subscribe(fx->p, c[i], "alice");
    }
    conn_t *other = add(fx, "x");
    presence_subscribe(fx->p, other, "bob");
    assert_int_equal(presence_subscriber_count(fx->p, "alice"), N);
    int seen[N] = {0};
    size_t pos = 0, n = 0;
    for (conn_t *x; (x = presence_next_subscriber(fx->p, "alice", &pos));) {
        assert_ptr_not_equal(x, other);
        for (int i = 0; i < N; i++)
            if (x == c[i]) seen[i]++;
        n++;
    }
    assert_int_equal(n, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(seen[i], 1);
    /* No subscribers: iteration ends at once. */
    pos = 0;
    assert_null(presence_next_subscriber(fx->p, "nobody", &pos));
}

static void
test_presence_conn_closed_removes_it_from_every_watched_user(void **state) {
    fixture_t *fx = *state;
    conn_t *a = add(fx, "a");
    conn_t *b = add(fx, "b");
    const char *watched[] = {"u1", "u2", "u3", "u4", "u5"};
    for (int i = 0; i < 5; i++) {
        presence_subscribe(fx->p, a, watched[i]);
        if (i % 2) presence_subscribe(fx->p, b, watched[i]);
    }
    close_conn(fx, a);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(is_subscriber(fx, watched[i], a), 0);
        assert_int_equal(presence_subscriber_count(fx->p, watched[i]),
                         i % 2 ? 1 : 0);
        assert_int_equal(is_subscriber(fx, watched[i], b), i % 2 ? 1 : 0);
    }
    /* b's subscriptions are intact and can be closed in turn: the shared
     * key copies were not freed under it (ASan). */
    close_conn(fx, b);
    for (int i = 0; i < 5; i++)
        assert_int_equal(presence_subscriber_count(fx->p, watched[i]), 0);
}

static void
test_presence_conn_closed_keeps_other_watchers_order_safe(void **state) {
    /* Several watchers of one user close in an order different from
     * subscription order; the rest stay listed each time. */
    fixture_t *fx = *state;
    enum { N = 8 };
    conn_t *c[N];
    int open[N];
    for (int i = 0; i < N; i++) {
        c[i] = add(fx, "w");
        open[i] = 1;
        presence_subscribe(fx->p, c[i], "alice");
        presence_subscribe(fx->p, c[i], "bob");
    }
    const int order[N] = {3, 0, 7, 5, 1, 6, 2, 4};
    for (int k = 0; k < N; k++) {
        close_conn(fx, c[order[k]]);
        open[order[k]] = 0;
        size_t expect = (size_t)(N - k - 1);
        assert_int_equal(presence_subscriber_count(fx->p, "alice"), expect);
        assert_int_equal(presence_subscriber_count(fx->p, "bob"), expect);
        for (int i = 0; i < N; i++)
            if (open[i]) {
                assert_int_equal(is_subscriber(fx, "alice", c[i]), 1);
                assert_int_equal(is_subscriber(fx, "bob", c[i]), 1);
            }
    }
}

static void
test_presence_conn_closed_without_subscriptions_is_noop(void **state) {
    fixture_t *fx = *state;
    conn_t *a = add(fx, "a");
    conn_t *b = add(fx, "b");
    presence_subscribe(fx->p, b, "alice");
    presence_conn_closed(fx->p, a);
    presence_conn_closed(fx->p, a);
    assert_int_equal(presence_subscriber_count(fx->p, "alice"), 1);
}

static void test_presence_resubscribe_after_last_watcher_left(void **state) {
    /* The watched user's entry was freed with its last watcher; a new
     * subscription must recreate it cleanly. */
    fixture_t *fx = *state;
    conn_t *a = add(fx, "a");
    presence_subscribe(fx->p, a, "alice");
    close_conn(fx, a);
    conn_t *b = add(fx, "b");
    assert_int_equal(presence_subscribe(fx->p, b, "alice"), 0);
    assert_int_equal(presence_subscriber_count(fx->p, "alice"), 1);
    assert_int_equal(is_subscriber(fx, "alice", b), 1);
    close_conn(fx, b);
    assert_int_equal(presence_subscriber_count(fx->p, "alice"), 0);
}

static void test_presence_subscription_cap_returns_error(void **state) {
    fixture_t *fx = *state;
    conn_t *c = add(fx, "greedy");
    conn_t *other = add(fx, "other");
    char uid[32];
    for (int i = 0; i < PRESENCE_MAX_SUBSCRIPTIONS; i++) {
        snprintf(uid, sizeof uid, "u%d", i);
        assert_int_equal(presence_subscribe(fx->p, c, uid), 0);
    }
    /* One more new user is refused and leaves nothing behind. */
    assert_int_equal(presence_subscribe(fx->p, c, "one-too-many"), -ENOSPC);
    assert_int_equal(presence_subscriber_count(fx->p, "one-too-many"), 0);
    /* Re-subscribing to a user already watched is still the no-op. */
    assert_int_equal(presence_subscribe(fx->p, c, "u0"), 0);
    /* Refused even to a user someone else watches, which stays as it
     * was. */
    assert_int_equal(presence_subscribe(fx->p, other, "popular"), 0);
    assert_int_equal(presence_subscribe(fx->p, c, "popular"), -ENOSPC);
    assert_int_equal(presence_subscriber_count(fx->p, "popular"), 1);
    assert_int_equal(is_subscriber(fx, "popular", c), 0);
    /* The cap is per connection: others are not affected. */
    assert_int_equal(presence_subscribe(fx->p, other, "u1"), 0);
    assert_int_equal(presence_subscriber_count(fx->p, "u1"), 2);
    /* Closing frees all 10000 (ASan). */
    close_conn(fx, c);
    assert_int_equal(presence_subscriber_count(fx->p, "u0"), 0);
    assert_int_equal(presence_subscriber_count(fx->p, "u1"), 1);
}

static void
test_presence_destroy_with_subscriptions_left_frees_all(void **state) {
    /* Teardown destroys presence with live subscriptions (LeakSanitizer
     * checks). */
    fixture_t *fx = *state;
    conn_t *a = add(fx, "a");
    conn_t *b = add(fx, "b");
    presence_subscribe(fx->p, a, "alice");
    presence_subscribe(fx->p, b, "alice");
    presence_subscribe(fx->p, b, "bob");
    presence_set(fx->p, "alice", PRESENCE_ONLINE);
    assert_int_equal(presence_subscriber_count(fx->p, "alice"), 2);
}

/* --- names -------------------------------------------------------------- */

static void test_presence_status_name_and_parse_round_trip(void **state) {
    const presence_status all[] = {PRESENCE_OFFLINE, PRESENCE_ONLINE,
                                   PRESENCE_AWAY, PRESENCE_BUSY};
    const char *names[] = {"offline", "online", "away", "busy"};
    for (int i = 0; i < 4; i++) {
        assert_string_equal(presence_status_name(all[i]), names[i]);
        presence_status st = (presence_status)-1;
        assert_int_equal(presence_parse_status(names[i], &st), 0);
        assert_int_equal(st, all[i]);
    }
}

static void test_presence_parse_rejects_unknown_names(void **state) {
    const char *bad[] = {"",      "Online", "ONLINE",    "onlin", "online ",
                         " away", "busyy",  "invisible", "0",     "dnd"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        presence_status st = PRESENCE_BUSY;
        assert_int_equal(presence_parse_status(bad[i], &st), -EINVAL);
        assert_int_equal(st, PRESENCE_BUSY); /* untouched */
    }
}

static void test_presence_status_name_of_bad_value_is_offline(void **state) {
    assert_string_equal(presence_status_name((presence_status)17), "offline");
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_presence_unknown_user_is_offline),
        T(test_presence_set_then_get),
        T(test_presence_set_same_status_returns_zero),
        T(test_presence_set_offline_forgets_user),
        T(test_presence_subscribe_lists_connection),
        T(test_presence_subscribe_twice_is_one_subscription),
        T(test_presence_subscriber_iteration_visits_each_once),
        T(test_presence_conn_closed_removes_it_from_every_watched_user),
        T(test_presence_conn_closed_keeps_other_watchers_order_safe),
        T(test_presence_conn_closed_without_subscriptions_is_noop),
        T(test_presence_resubscribe_after_last_watcher_left),
        T(test_presence_subscription_cap_returns_error),
        T(test_presence_destroy_with_subscriptions_left_frees_all),
        cmocka_unit_test(test_presence_status_name_and_parse_round_trip),
        cmocka_unit_test(test_presence_parse_rejects_unknown_names),
        cmocka_unit_test(test_presence_status_name_of_bad_value_is_offline),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
