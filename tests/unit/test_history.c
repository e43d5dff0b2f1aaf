/* test_history.c -- unit tests for core/history.c and the history rooms
 * keep (core/room.c).
 *
 * The ring holds references to the frames delivered live, newest last,
 * bounded by a count and by age; reading after a seq finds the first
 * frame past it. A room with history outlives its members for the
 * history's time, then goes; each room made gets a new epoch. */
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

static frame_t *text_frame(uint64_t seq) {
    char json[64];
    int n =
        snprintf(json, sizeof json, "{\"seq\":%llu}", (unsigned long long)seq);
    return frame_create_text(json, (size_t)n);
}

/* Adds frames first..last (at = seq ms), dropping the creator's refs. */
static void add_range(history_t *h, uint64_t first, uint64_t last, size_t cap) {
    for (uint64_t s = first; s <= last; s++) {
        frame_t *f = text_frame(s);
        history_add(h, f, s, (int64_t)s, cap);
        frame_unref(f);
    }
}

static void test_history_keeps_the_newest_cap_frames_in_order(void **state) {
    history_t h;
    history_init(&h);
    add_range(&h, 1, 7, 5);
    assert_int_equal(history_len(&h), 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(history_at(&h, i)->seq, 3 + i);
    size_t len;
    const char *json = frame_payload(history_at(&h, 0)->frame, &len);
    assert_memory_equal(json, "{\"seq\":3}", len);
    history_close(&h);
}

static void test_history_holds_the_live_frame_itself(void **state) {
    history_t h;
    history_init(&h);
    frame_t *f = text_frame(1);
    history_add(&h, f, 1, 1, 4);
    assert_ptr_equal(history_at(&h, 0)->frame, f);
    assert_int_equal(frame_refs(f), 2);
    history_close(&h);
    assert_int_equal(frame_refs(f), 1);
    frame_unref(f);
}

static void test_history_drops_a_frame_it_pushes_out(void **state) {
    history_t h;
    history_init(&h);
    add_range(&h, 1, 2, 2);
    frame_t *f = text_frame(3);
    frame_t *first = frame_ref((frame_t *)history_at(&h, 0)->frame);
    history_add(&h, f, 3, 3, 2);
    /* The oldest went: only this test's reference is left on it. */
    assert_int_equal(frame_refs(first), 1);
    frame_unref(first);
    frame_unref(f);
    history_close(&h);
}

static void test_history_cap_zero_keeps_nothing(void **state) {
    history_t h;
    history_init(&h);
    add_range(&h, 1, 3, 0);
    assert_int_equal(history_len(&h), 0);
    history_close(&h);
}

static void test_history_expire_drops_by_age_from_the_oldest(void **state) {
    history_t h;
    history_init(&h);
    add_range(&h, 1, 6, 10);
    assert_int_equal(history_expire(&h, 3), 3);
    assert_int_equal(history_len(&h), 3);
    assert_int_equal(history_at(&h, 0)->seq, 4);
    assert_int_equal(history_expire(&h, 3), 0);
    assert_int_equal(history_expire(&h, 100), 3);
    assert_int_equal(history_len(&h), 0);
    /* Empty, it takes frames again. */
    add_range(&h, 7, 8, 10);
    assert_int_equal(history_at(&h, 0)->seq, 7);
    history_close(&h);
}

static void test_history_after_finds_the_first_seq_past_since(void **state) {
    history_t h;
    history_init(&h);
    add_range(&h, 1, 12, 8); /* keeps 5..12, wrapped in its slots */
    assert_int_equal(history_after(&h, 0), 0);
    assert_int_equal(history_after(&h, 4), 0);
    assert_int_equal(history_after(&h, 5), 1);
    assert_int_equal(history_after(&h, 11), 7);
    assert_int_equal(history_after(&h, 12), 8);
    assert_int_equal(history_after(&h, 99), 8);
    history_close(&h);
    assert_int_equal(history_after(&h, 0), 0);
}

/* ---- rooms with history ---------------------------------------------- */

typedef struct fixture {
    conns_t *conns;
    rooms_t *rooms;
    user_t *alice;
} fixture_t;

#define TTL 10000

static int setup(void **state) {
    fixture_t *fx = calloc(1, sizeof *fx);
    int first;
    fx->conns = conns_create(1 << 20);
    fx->rooms = rooms_create();
    rooms_set_history(fx->rooms, 3, TTL, 1234);
    fx->alice = conn_user(conns_add(fx->conns, "alice", NULL, 0, &first));
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

static void publish(fixture_t *fx, room_t *r, int64_t now) {
    uint64_t seq = room_next_seq(r);
    frame_t *f = text_frame(seq);
    room_keep(fx->rooms, r, f, seq, now);
    frame_unref(f);
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
    rooms_join(fx->rooms, "r", fx->alice, now);
    room_t *r = rooms_get(fx->rooms, "r");
    publish(fx, r, now);
    char epoch[ROOM_EPOCH_MAX + 1];
    snprintf(epoch, sizeof epoch, "%s", room_epoch(r));
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
    rooms_join(fx->rooms, "r", fx->alice, now);
    room_t *r = rooms_get(fx->rooms, "r");
    publish(fx, r, now);
    char epoch[ROOM_EPOCH_MAX + 1];
    snprintf(epoch, sizeof epoch, "%s", room_epoch(r));
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

int main(void) {
#define R(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_history_keeps_the_newest_cap_frames_in_order),
        cmocka_unit_test(test_history_holds_the_live_frame_itself),
        cmocka_unit_test(test_history_drops_a_frame_it_pushes_out),
        cmocka_unit_test(test_history_cap_zero_keeps_nothing),
        cmocka_unit_test(test_history_expire_drops_by_age_from_the_oldest),
        cmocka_unit_test(test_history_after_finds_the_first_seq_past_since),
        R(test_room_history_keeps_the_newest_and_drops_old),
        R(test_room_left_empty_stays_for_the_ttl_then_goes),
        R(test_room_made_again_after_expiry_has_a_new_epoch),
        R(test_rooms_without_history_delete_an_empty_room),
    };
#undef R
    return cmocka_run_group_tests(tests, NULL, NULL);
}
