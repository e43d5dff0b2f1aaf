/* test_history.c -- unit tests for core/history.c.
 *
 * The ring holds references to the frames delivered live, newest last,
 * bounded by a count and by age; reading after a seq finds the first
 * frame past it. (The history rooms keep: test_room.c.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frame.h"
#include "history.h"

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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_history_keeps_the_newest_cap_frames_in_order),
        cmocka_unit_test(test_history_holds_the_live_frame_itself),
        cmocka_unit_test(test_history_drops_a_frame_it_pushes_out),
        cmocka_unit_test(test_history_cap_zero_keeps_nothing),
        cmocka_unit_test(test_history_expire_drops_by_age_from_the_oldest),
        cmocka_unit_test(test_history_after_finds_the_first_seq_past_since),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
