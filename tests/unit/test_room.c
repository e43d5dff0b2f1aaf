/* test_room.c -- unit tests for core/room.c.
 *
 * Rooms are created by the first join and deleted by the last leave; the
 * user -> rooms index is what a disconnect walks to leave every room, so
 * it must agree with the room -> members index after any sequence of
 * joins and leaves. With history (rooms_set_history), a room outlives its
 * members for the history's time, then goes, and each room made gets a new
 * epoch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clock.h"
#include "conn.h"
#include "frame.h"
#include "history.h"
#include "room.h"

typedef struct fixture {
    conns_t *conns;
    rooms_t *rooms;
    user_t *alice, *bob, *carol;
} fixture_t;

static user_t *new_user(conns_t *cs, const char *uid) {
    int first;
    return conn_user(conns_add(cs, uid, NULL, 0, &first));
}

static int setup(void **state) {
    fixture_t *fx = calloc(1, sizeof *fx);
    fx->conns = conns_create(1 << 20);
    fx->rooms = rooms_create();
    fx->alice = new_user(fx->conns, "alice");
    fx->bob = new_user(fx->conns, "bob");
    fx->carol = new_user(fx->conns, "carol");
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

static void test_room_missing_room_is_null(void **state) {
    fixture_t *fx = *state;
    assert_null(rooms_get(fx->rooms, "lobby"));
    assert_int_equal(rooms_count(fx->rooms), 0);
    assert_false(rooms_is_member(fx->rooms, "lobby", fx->alice));
    assert_int_equal(rooms_count_of_user(fx->rooms, "alice"), 0);
    size_t pos = 0;
    assert_null(rooms_next_of_user(fx->rooms, "alice", &pos));
}

static void test_room_join_creates_room_with_created_at(void **state) {
    fixture_t *fx = *state;
    assert_int_equal(rooms_join(fx->rooms, "lobby", fx->alice, 4242), 1);
    room_t *r = rooms_get(fx->rooms, "lobby");
    assert_non_null(r);
    assert_string_equal(room_id(r), "lobby");
    assert_int_equal(room_created_at(r), 4242);
    assert_int_equal(room_member_count(r), 1);
    assert_int_equal(room_seq(r), 0);
    assert_int_equal(room_message_count(r), 0);
    assert_int_equal(rooms_count(fx->rooms), 1);
    assert_true(rooms_is_member(fx->rooms, "lobby", fx->alice));
    assert_false(rooms_is_member(fx->rooms, "lobby", fx->bob));
}

static void test_room_later_join_keeps_created_at(void **state) {
    fixture_t *fx = *state;
    rooms_join(fx->rooms, "lobby", fx->alice, 100);
    rooms_join(fx->rooms, "lobby", fx->bob, 200);
    room_t *r = rooms_get(fx->rooms, "lobby");
    assert_int_equal(room_created_at(r), 100);
    assert_int_equal(room_member_count(r), 2);
    assert_int_equal(rooms_count(fx->rooms), 1);
}

static void test_room_join_twice_returns_zero_and_adds_nothing(void **state) {
    fixture_t *fx = *state;
    assert_int_equal(rooms_join(fx->rooms, "lobby", fx->alice, 1), 1);
    assert_int_equal(rooms_join(fx->rooms, "lobby", fx->alice, 2), 0);
    room_t *r = rooms_get(fx->rooms, "lobby");
    assert_int_equal(room_member_count(r), 1);
    assert_int_equal(room_created_at(r), 1);
    assert_int_equal(rooms_count_of_user(fx->rooms, "alice"), 1);
}

static void test_room_leave_by_non_member_returns_zero(void **state) {
    fixture_t *fx = *state;
    assert_int_equal(rooms_leave(fx->rooms, "lobby", fx->alice), 0);
    rooms_join(fx->rooms, "lobby", fx->alice, 1);
    assert_int_equal(rooms_leave(fx->rooms, "lobby", fx->bob), 0);
    /* The non-member's leave did not disturb the room. */
    room_t *r = rooms_get(fx->rooms, "lobby");
    assert_non_null(r);
    assert_int_equal(room_member_count(r), 1);
    assert_int_equal(rooms_count_of_user(fx->rooms, "bob"), 0);
}

static void test_room_leave_twice_returns_zero_second_time(void **state) {
    fixture_t *fx = *state;
    rooms_join(fx->rooms, "lobby", fx->alice, 1);
    rooms_join(fx->rooms, "lobby", fx->bob, 1);
    assert_int_equal(rooms_leave(fx->rooms, "lobby", fx->alice), 1);
    assert_int_equal(rooms_leave(fx->rooms, "lobby", fx->alice), 0);
    assert_false(rooms_is_member(fx->rooms, "lobby", fx->alice));
    assert_true(rooms_is_member(fx->rooms, "lobby", fx->bob));
    assert_int_equal(room_member_count(rooms_get(fx->rooms, "lobby")), 1);
}

static void test_room_deleted_when_last_member_leaves(void **state) {
    fixture_t *fx = *state;
    rooms_join(fx->rooms, "lobby", fx->alice, 1);
    rooms_join(fx->rooms, "lobby", fx->bob, 1);
    rooms_join(fx->rooms, "other", fx->bob, 1);
    assert_int_equal(rooms_leave(fx->rooms, "lobby", fx->alice), 1);
    assert_non_null(rooms_get(fx->rooms, "lobby"));
    assert_int_equal(rooms_leave(fx->rooms, "lobby", fx->bob), 1);
    assert_null(rooms_get(fx->rooms, "lobby"));
    assert_int_equal(rooms_count(fx->rooms), 1);
    assert_non_null(rooms_get(fx->rooms, "other"));
}

static void test_room_recreated_after_deletion_starts_fresh(void **state) {
    fixture_t *fx = *state;
    rooms_join(fx->rooms, "lobby", fx->alice, 1);
    room_next_seq(rooms_get(fx->rooms, "lobby"));
    room_next_seq(rooms_get(fx->rooms, "lobby"));
    rooms_leave(fx->rooms, "lobby", fx->alice);
    assert_int_equal(rooms_join(fx->rooms, "lobby", fx->bob, 99), 1);
    room_t *r = rooms_get(fx->rooms, "lobby");
    assert_int_equal(room_created_at(r), 99);
    assert_int_equal(room_seq(r), 0);
    assert_int_equal(room_message_count(r), 0);
    assert_int_equal(room_next_seq(r), 1);
}

static void test_room_next_seq_counts_up_from_one(void **state) {
    fixture_t *fx = *state;
    rooms_join(fx->rooms, "lobby", fx->alice, 1);
    rooms_join(fx->rooms, "other", fx->alice, 1);
    room_t *r = rooms_get(fx->rooms, "lobby");
    assert_int_equal(room_next_seq(r), 1);
    assert_int_equal(room_next_seq(r), 2);
    assert_int_equal(room_next_seq(r), 3);
    assert_int_equal(room_seq(r), 3);
    assert_int_equal(room_message_count(r), 3);
    /* Each room has its own sequence. */
    room_t *o = rooms_get(fx->rooms, "other");
    assert_int_equal(room_next_seq(o), 1);
    assert_int_equal(room_seq(r), 3);
}

static void test_room_seq_survives_membership_changes(void **state) {
    fixture_t *fx = *state;
    rooms_join(fx->rooms, "lobby", fx->alice, 1);
    room_t *r = rooms_get(fx->rooms, "lobby");
    room_next_seq(r);
    rooms_join(fx->rooms, "lobby", fx->bob, 2);
    rooms_leave(fx->rooms, "lobby", fx->alice);
    assert_ptr_equal(rooms_get(fx->rooms, "lobby"), r);
    assert_int_equal(room_next_seq(r), 2);
}

/* Checks both indexes against each other: u is a member of exactly the
 * rooms listed for it, and each listed once. */
static void check_user_rooms(fixture_t *fx, user_t *u, const char **expect,
                             size_t n) {
    assert_int_equal(rooms_count_of_user(fx->rooms, user_id(u)), n);
    int seen[16] = {0};
    size_t pos = 0, count = 0;
    const char *id;
    while ((id = rooms_next_of_user(fx->rooms, user_id(u), &pos))) {
        int found = 0;
        for (size_t i = 0; i < n; i++)
            if (strcmp(id, expect[i]) == 0) {
                seen[i]++;
                found = 1;
            }
        assert_true(found);
        assert_true(rooms_is_member(fx->rooms, id, u));
        count++;
    }
    assert_int_equal(count, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(seen[i], 1);
}

static void test_room_user_index_follows_joins_and_leaves(void **state) {
    fixture_t *fx = *state;
    rooms_join(fx->rooms, "a", fx->alice, 1);
    rooms_join(fx->rooms, "b", fx->alice, 1);
    rooms_join(fx->rooms, "c", fx->alice, 1);
    rooms_join(fx->rooms, "b", fx->bob, 1);
    rooms_join(fx->rooms, "b", fx->alice, 1); /* again: no change */
    const char *alice1[] = {"a", "b", "c"};
    check_user_rooms(fx, fx->alice, alice1, 3);
    const char *bob1[] = {"b"};
    check_user_rooms(fx, fx->bob, bob1, 1);

    rooms_leave(fx->rooms, "b", fx->alice);
    rooms_leave(fx->rooms, "x", fx->alice); /* never joined: no change */
    const char *alice2[] = {"a", "c"};
    check_user_rooms(fx, fx->alice, alice2, 2);
    check_user_rooms(fx, fx->bob, bob1, 1);

    rooms_leave(fx->rooms, "a", fx->alice);
    rooms_leave(fx->rooms, "c", fx->alice);
    check_user_rooms(fx, fx->alice, NULL, 0);
    assert_int_equal(rooms_count(fx->rooms), 1);
}

static void test_room_leave_every_room_from_copied_index(void **state) {
    /* What a last disconnect does: copy the user's room ids, then leave
     * each. Every room the user was alone in disappears. */
    fixture_t *fx = *state;
    char name[16];
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof name, "r%d", i);
        rooms_join(fx->rooms, name, fx->alice, 1);
        if (i % 2) rooms_join(fx->rooms, name, fx->bob, 1);
    }
    size_t n = rooms_count_of_user(fx->rooms, "alice");
    assert_int_equal(n, 10);
    char **ids = calloc(n, sizeof *ids);
    size_t pos = 0, k = 0;
    const char *id;
    while ((id = rooms_next_of_user(fx->rooms, "alice", &pos)))
        ids[k++] = strdup(id);
    assert_int_equal(k, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(rooms_leave(fx->rooms, ids[i], fx->alice), 1);
        free(ids[i]);
    }
    free(ids);
    assert_int_equal(rooms_count_of_user(fx->rooms, "alice"), 0);
    assert_int_equal(rooms_count(fx->rooms), 5);
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof name, "r%d", i);
        if (i % 2)
            assert_int_equal(room_member_count(rooms_get(fx->rooms, name)), 1);
        else
            assert_null(rooms_get(fx->rooms, name));
    }
}

static void test_room_leave_with_room_own_id_string(void **state) {
    /* Passing room_id(r) itself must work even though the room (and that
     * string) is freed by the call. */
    fixture_t *fx = *state;
    rooms_join(fx->rooms, "lobby", fx->alice, 1);
    room_t *r = rooms_get(fx->rooms, "lobby");
    assert_int_equal(rooms_leave(fx->rooms, room_id(r), fx->alice), 1);
    assert_null(rooms_get(fx->rooms, "lobby"));
    assert_int_equal(rooms_count_of_user(fx->rooms, "alice"), 0);
}

static void test_room_members_iteration_visits_each_member_once(void **state) {
    fixture_t *fx = *state;
    rooms_join(fx->rooms, "lobby", fx->alice, 1);
    rooms_join(fx->rooms, "lobby", fx->bob, 1);
    rooms_join(fx->rooms, "lobby", fx->carol, 1);
    rooms_leave(fx->rooms, "lobby", fx->bob);
    room_t *r = rooms_get(fx->rooms, "lobby");
    int alice = 0, carol = 0, n = 0;
    size_t pos = 0;
    for (user_t *u; (u = room_next_member(r, &pos));) {
        if (u == fx->alice)
            alice++;
        else if (u == fx->carol)
            carol++;
        else
            fail_msg("unexpected member %s", user_id(u));
        n++;
    }
    assert_int_equal(n, 2);
    assert_int_equal(alice, 1);
    assert_int_equal(carol, 1);
    assert_int_equal(room_member_count(r), 2);
}

static void test_room_many_members_and_rooms_stay_consistent(void **state) {
    fixture_t *fx = *state;
    enum { USERS = 200, ROOMS = 20 };
    user_t *u[USERS];
    char name[16];
    for (int i = 0; i < USERS; i++) {
        snprintf(name, sizeof name, "user%d", i);
        u[i] = new_user(fx->conns, name);
    }
    /* user i joins room j when (i + j) % 3 == 0, then leaves when also
     * (i * j) % 2 == 1. */
    for (int i = 0; i < USERS; i++)
        for (int j = 0; j < ROOMS; j++) {
            snprintf(name, sizeof name, "room%d", j);
            if ((i + j) % 3 == 0) rooms_join(fx->rooms, name, u[i], 1);
        }
    for (int i = 0; i < USERS; i++)
        for (int j = 0; j < ROOMS; j++) {
            snprintf(name, sizeof name, "room%d", j);
            if ((i + j) % 3 == 0 && (i * j) % 2 == 1)
                assert_int_equal(rooms_leave(fx->rooms, name, u[i]), 1);
        }
    for (int j = 0; j < ROOMS; j++) {
        snprintf(name, sizeof name, "room%d", j);
        size_t expect = 0;
        for (int i = 0; i < USERS; i++) {
            int member = (i + j) % 3 == 0 && (i * j) % 2 == 0;
            assert_int_equal(rooms_is_member(fx->rooms, name, u[i]), member);
            expect += (size_t)member;
        }
        room_t *r = rooms_get(fx->rooms, name);
        if (expect)
            assert_int_equal(room_member_count(r), expect);
        else
            assert_null(r);
    }
    for (int i = 0; i < USERS; i++) {
        size_t expect = 0;
        for (int j = 0; j < ROOMS; j++)
            expect += (i + j) % 3 == 0 && (i * j) % 2 == 0;
        assert_int_equal(rooms_count_of_user(fx->rooms, user_id(u[i])), expect);
    }
}

/* Walks r and checks it visits exactly the users with in[i] set, once
 * each. */
static void assert_walk(const room_t *r, user_t **u, const char *in, int n) {
    char seen[1024] = {0};
    size_t pos = 0, walked = 0;
    assert_true(n <= (int)sizeof seen);
    for (user_t *m; (m = room_next_member(r, &pos));) {
        int i = 0;
        while (i < n && u[i] != m)
            i++;
        if (i == n) fail_msg("walked a stranger %s", user_id(m));
        if (!in[i]) fail_msg("walked %s, not a member", user_id(m));
        if (seen[i]++) fail_msg("walked %s twice", user_id(m));
        walked++;
    }
    size_t expect = 0;
    for (int i = 0; i < n; i++)
        expect += (size_t)in[i];
    assert_int_equal(walked, expect);
    assert_int_equal(room_member_count(r), expect);
}

static void test_room_members_walk_in_join_order(void **state) {
    fixture_t *fx = *state;
    rooms_join(fx->rooms, "lobby", fx->carol, 1);
    rooms_join(fx->rooms, "lobby", fx->alice, 1);
    rooms_join(fx->rooms, "lobby", fx->bob, 1);
    room_t *r = rooms_get(fx->rooms, "lobby");
    size_t pos = 0;
    assert_ptr_equal(room_next_member(r, &pos), fx->carol);
    assert_ptr_equal(room_next_member(r, &pos), fx->alice);
    assert_ptr_equal(room_next_member(r, &pos), fx->bob);
    assert_null(room_next_member(r, &pos));
    /* A leave keeps the walk whole: every other member once. */
    assert_int_equal(rooms_leave(fx->rooms, "lobby", fx->carol), 1);
    user_t *u[] = {fx->alice, fx->bob, fx->carol};
    assert_walk(r, u, (const char[]){1, 1, 0}, 3);
    assert_true(room_has_member(r, fx->alice));
    assert_true(room_has_member(r, fx->bob));
    assert_false(room_has_member(r, fx->carol));
}

/* Joins and leaves in a pseudo-random order against a model: after every
 * step the walk, the count and the membership checks agree with it. */
static void test_room_members_walk_matches_joins_and_leaves(void **state) {
    fixture_t *fx = *state;
    enum { USERS = 300, STEPS = 6000 };
    user_t *u[USERS];
    char in[USERS] = {0}, name[16];
    for (int i = 0; i < USERS; i++) {
        snprintf(name, sizeof name, "w%d", i);
        u[i] = new_user(fx->conns, name);
    }
    rooms_join(fx->rooms, "walk", fx->alice, 1); /* keeps the room alive */
    uint32_t x = 12345;
    for (int step = 0; step < STEPS; step++) {
        x = x * 1103515245u + 12345u;
        int i = (int)((x >> 8) % USERS);
        if (in[i]) {
            assert_int_equal(rooms_leave(fx->rooms, "walk", u[i]), 1);
            in[i] = 0;
        } else {
            assert_int_equal(rooms_join(fx->rooms, "walk", u[i], 1), 1);
            in[i] = 1;
        }
        if (step % 97 == 0 || step == STEPS - 1) {
            room_t *r = rooms_get(fx->rooms, "walk");
            size_t n = 0;
            for (int k = 0; k < USERS; k++) {
                assert_int_equal(room_has_member(r, u[k]), in[k]);
                n += (size_t)in[k];
            }
            assert_int_equal(room_member_count(r), n + 1);
        }
    }
    assert_int_equal(rooms_leave(fx->rooms, "walk", fx->alice), 1);
    assert_walk(rooms_get(fx->rooms, "walk"), u, in, USERS);
}

static void test_room_shrinks_after_most_members_left(void **state) {
    fixture_t *fx = *state;
    enum { USERS = 1000 };
    user_t *u[USERS];
    char in[USERS], name[16];
    for (int i = 0; i < USERS; i++) {
        snprintf(name, sizeof name, "s%d", i);
        u[i] = new_user(fx->conns, name);
        rooms_join(fx->rooms, "big", u[i], 1);
        in[i] = 1;
    }
    for (int i = 0; i < USERS; i++)
        if (i % 50) {
            rooms_leave(fx->rooms, "big", u[i]);
            in[i] = 0;
        }
    /* The member table and the walk's array: both were sized for 1,000. */
    assert_true(rooms_shrink(fx->rooms) >= (USERS - 64) * sizeof(void *));
    room_t *r = rooms_get(fx->rooms, "big");
    assert_walk(r, u, in, USERS);
    for (int i = 0; i < USERS; i++)
        assert_int_equal(room_has_member(r, u[i]), in[i]);
    /* And it grows again. */
    for (int i = 0; i < USERS; i++)
        if (!in[i]) {
            rooms_join(fx->rooms, "big", u[i], 1);
            in[i] = 1;
        }
    assert_walk(r, u, in, USERS);
}

static void test_room_destroy_with_rooms_left_frees_everything(void **state) {
    /* Teardown destroys a registry that still has rooms and members;
     * LeakSanitizer checks nothing is left behind. */
    fixture_t *fx = *state;
    rooms_join(fx->rooms, "a", fx->alice, 1);
    rooms_join(fx->rooms, "a", fx->bob, 1);
    rooms_join(fx->rooms, "b", fx->carol, 1);
    assert_int_equal(rooms_count(fx->rooms), 2);
}

/* ---- rooms with history ---------------------------------------------- */

#define TTL 10000

/* The fixture's rooms keep 3 frames for TTL ms; the node started at 1234. */
static int setup_history(void **state) {
    setup(state);
    fixture_t *fx = *state;
    rooms_set_history(fx->rooms, 3, TTL, 1234);
    return 0;
}

static frame_t *text_frame(uint64_t seq) {
    char json[64];
    int n =
        snprintf(json, sizeof json, "{\"seq\":%llu}", (unsigned long long)seq);
    return frame_create_text(json, (size_t)n);
}

static void publish(fixture_t *fx, room_t *r, int64_t now) {
    uint64_t seq = room_next_seq(r);
    frame_t *f = text_frame(seq);
    room_keep(fx->rooms, r, f, seq, now);
    frame_unref(f);
}

/* Room "r" with alice in it and one message, as of now; its epoch copied
 * into epoch. */
static room_t *room_with_a_message(fixture_t *fx, int64_t now,
                                   char epoch[ROOM_EPOCH_MAX + 1]) {
    rooms_join(fx->rooms, "r", fx->alice, now);
    room_t *r = rooms_get(fx->rooms, "r");
    publish(fx, r, now);
    snprintf(epoch, ROOM_EPOCH_MAX + 1, "%s", room_epoch(r));
    return r;
}

static void test_room_history_keeps_the_newest_and_drops_old(void **state) {
    fixture_t *fx = *state;
    int64_t now = clock_now_ms();
    rooms_join(fx->rooms, "r", fx->alice, now);
    room_t *r = rooms_get(fx->rooms, "r");
    for (int i = 0; i < 5; i++)
        publish(fx, r, now + i);
    const history_t *h = room_history(fx->rooms, r, now + 5);
    assert_int_equal(history_len(h), 3);
    assert_int_equal(history_at(h, 0)->seq, 3);
    /* At TTL after the frame of seq 3 (kept at now + 2), it is gone. */
    h = room_history(fx->rooms, r, now + 2 + TTL);
    assert_int_equal(history_len(h), 2);
    rooms_expire(fx->rooms, now + 10 + TTL);
    assert_int_equal(history_len(room_history(fx->rooms, r, now)), 0);
    assert_int_equal(room_seq(r), 5);
}

static void test_room_left_empty_stays_for_the_ttl_then_goes(void **state) {
    fixture_t *fx = *state;
    int64_t now = clock_now_ms();
    char epoch[ROOM_EPOCH_MAX + 1];
    room_t *r = room_with_a_message(fx, now, epoch);
    assert_int_equal(rooms_leave(fx->rooms, "r", fx->alice), 1);
    r = rooms_get(fx->rooms, "r");
    assert_non_null(r);
    assert_int_equal(room_member_count(r), 0);
    assert_int_equal(room_seq(r), 1);
    assert_int_equal(rooms_expire(fx->rooms, now + TTL / 2), 0);
    /* Joined again within the time: the same stream. */
    rooms_join(fx->rooms, "r", fx->alice, now + TTL / 2);
    assert_ptr_equal(rooms_get(fx->rooms, "r"), r);
    assert_string_equal(room_epoch(r), epoch);
    rooms_leave(fx->rooms, "r", fx->alice);
    int64_t left = clock_now_ms();
    assert_int_equal(rooms_expire(fx->rooms, left + TTL + 1000), 1);
    assert_null(rooms_get(fx->rooms, "r"));
    assert_int_equal(rooms_count(fx->rooms), 0);
}

static void test_room_made_again_after_expiry_has_a_new_epoch(void **state) {
    fixture_t *fx = *state;
    int64_t now = clock_now_ms();
    char epoch[ROOM_EPOCH_MAX + 1];
    room_t *r = room_with_a_message(fx, now, epoch);
    assert_non_null(strstr(epoch, "4d2")); /* the start, 1234, in hex */
    rooms_leave(fx->rooms, "r", fx->alice);
    /* Past its time but not swept yet: a join makes it anew all the same. */
    rooms_join(fx->rooms, "r", fx->alice, clock_now_ms() + TTL + 1000);
    r = rooms_get(fx->rooms, "r");
    assert_int_equal(room_seq(r), 0);
    assert_string_not_equal(room_epoch(r), epoch);
    /* Another room's epoch differs too. */
    rooms_join(fx->rooms, "s", fx->alice, now);
    assert_string_not_equal(room_epoch(rooms_get(fx->rooms, "s")),
                            room_epoch(r));
}

static void test_rooms_without_history_delete_an_empty_room(void **state) {
    fixture_t *fx = *state;
    rooms_t *plain = rooms_create();
    rooms_join(plain, "r", fx->alice, 1);
    room_t *r = rooms_get(plain, "r");
    uint64_t seq = room_next_seq(r);
    frame_t *f = text_frame(seq);
    room_keep(plain, r, f, seq, 1);
    assert_int_equal(frame_refs(f), 1);
    frame_unref(f);
    rooms_leave(plain, "r", fx->alice);
    assert_null(rooms_get(plain, "r"));
    rooms_destroy(plain);
}

typedef struct ids {
    const char *got[8];
    size_t n;
} ids_t;

static void collect(void *ctx, const char *id) {
    ids_t *l = ctx;
    l->got[l->n++] = id;
}

static void test_room_pages_follow_joins_and_leaves(void **state) {
    fixture_t *fx = *state;
    rooms_join(fx->rooms, "r", fx->carol, 1);
    rooms_join(fx->rooms, "r", fx->alice, 1);
    room_t *r = rooms_get(fx->rooms, "r");
    ids_t l = {0};
    assert_int_equal(room_members_page(r, NULL, 8, collect, &l), 2);
    assert_string_equal(l.got[0], "alice");
    assert_string_equal(l.got[1], "carol");
    /* The order follows joins and leaves. */
    rooms_join(fx->rooms, "r", fx->bob, 1);
    rooms_leave(fx->rooms, "r", fx->alice);
    l.n = 0;
    assert_int_equal(room_members_page(r, NULL, 8, collect, &l), 2);
    assert_string_equal(l.got[0], "bob");
    assert_string_equal(l.got[1], "carol");
    l.n = 0;
    assert_int_equal(room_members_page(r, "bob", 1, collect, &l), 1);
    assert_string_equal(l.got[0], "carol");
    assert_int_equal(room_member_count(r), 2);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
#define H(f) cmocka_unit_test_setup_teardown(f, setup_history, teardown)
    const struct CMUnitTest tests[] = {
        T(test_room_missing_room_is_null),
        T(test_room_pages_follow_joins_and_leaves),
        T(test_room_join_creates_room_with_created_at),
        T(test_room_later_join_keeps_created_at),
        T(test_room_join_twice_returns_zero_and_adds_nothing),
        T(test_room_leave_by_non_member_returns_zero),
        T(test_room_leave_twice_returns_zero_second_time),
        T(test_room_deleted_when_last_member_leaves),
        T(test_room_recreated_after_deletion_starts_fresh),
        T(test_room_next_seq_counts_up_from_one),
        T(test_room_seq_survives_membership_changes),
        T(test_room_user_index_follows_joins_and_leaves),
        T(test_room_leave_every_room_from_copied_index),
        T(test_room_leave_with_room_own_id_string),
        T(test_room_members_iteration_visits_each_member_once),
        T(test_room_members_walk_in_join_order),
        T(test_room_members_walk_matches_joins_and_leaves),
        T(test_room_shrinks_after_most_members_left),
        T(test_room_many_members_and_rooms_stay_consistent),
        T(test_room_destroy_with_rooms_left_frees_everything),
        H(test_room_history_keeps_the_newest_and_drops_old),
        H(test_room_left_empty_stays_for_the_ttl_then_goes),
        H(test_room_made_again_after_expiry_has_a_new_epoch),
        T(test_rooms_without_history_delete_an_empty_room),
    };
#undef T
#undef H
    return cmocka_run_group_tests(tests, NULL, NULL);
}
