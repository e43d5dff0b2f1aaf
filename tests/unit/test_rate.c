/* test_rate.c -- unit tests for core/rate.c, the per-connection token
 * bucket behind --rate-limit.
 *
 * The clock is the caller's, so every test drives it by hand: what a
 * client can get through is counted over simulated seconds, and must stay
 * within the rate (plus the burst) however the messages are spread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "config.h"
#include "rate.h"

/* Takes n messages at now; returns how many passed. */
static int take_n(rate_bucket *b, const rate_limit *l, uint32_t now, int n) {
    int passed = 0;
    for (int i = 0; i < n; i++)
        passed += rate_take(b, l, now);
    return passed;
}

static void test_rate_burst_passes_then_next_is_refused(void **state) {
    rate_limit l = rate_limit_make(1, 5);
    rate_bucket b;
    rate_bucket_init(&b, &l, 1000);
    assert_int_equal(take_n(&b, &l, 1000, 5), 5);
    assert_int_equal(rate_take(&b, &l, 1000), 0);
    assert_int_equal(b.over, 1);
    /* A millisecond later, still nothing: one message takes a second. */
    assert_int_equal(rate_take(&b, &l, 1001), 0);
    assert_int_equal(b.over, 2);
}

static void test_rate_refills_over_time(void **state) {
    rate_limit l = rate_limit_make(2, 4); /* one message per 500 ms */
    rate_bucket b;
    rate_bucket_init(&b, &l, 0);
    assert_int_equal(take_n(&b, &l, 0, 10), 4);
    assert_int_equal(rate_take(&b, &l, 499), 0);
    assert_int_equal(rate_take(&b, &l, 500), 1);
    assert_int_equal(b.over, 0); /* a pass resets the refusals */
    assert_int_equal(rate_take(&b, &l, 500), 0);
    /* Idle long enough to fill, and no more than the burst. */
    assert_int_equal(take_n(&b, &l, 60000, 10), 4);
}

static void test_rate_keeps_fractional_tokens(void **state) {
    /* 3 messages/s polled every 30 ms: each poll earns 1.44/16 of a
     * message; dropping the fraction would lose almost a third. (Burst 2,
     * spent first, so that the cap never eats what was earned.) */
    rate_limit l = rate_limit_make(3, 2);
    rate_bucket b;
    rate_bucket_init(&b, &l, 0);
    assert_int_equal(take_n(&b, &l, 0, 3), 2);
    int passed = 0;
    for (uint32_t t = 30; t <= 10000; t += 30)
        passed += rate_take(&b, &l, t);
    if (passed < 29 || passed > 31)
        fail_msg("%d passed in 10 s at 3/s, want 30", passed);
}

/* Sends `per_ms` messages every millisecond for `ms` milliseconds from a
 * drained bucket; returns how many passed. */
static int flood(double rate, int burst, int per_ms, uint32_t ms) {
    rate_limit l = rate_limit_make(rate, burst);
    rate_bucket b;
    rate_bucket_init(&b, &l, 0);
    take_n(&b, &l, 0, l.burst); /* drained */
    int passed = 0;
    for (uint32_t t = 1; t <= ms; t++)
        passed += take_n(&b, &l, t, per_ms);
    return passed;
}

static void
test_rate_flood_in_many_small_steps_stays_within_rate(void **state) {
    /* A client sending as fast as it can: in 10 s it may get 10 * rate
     * through (the burst was spent before), however often it asks and
     * whatever the rate. */
    const double rates[] = {3, 10, 50, 62.5, 100, 200, 500};
    const int bursts[] = {1, 0};
    const int per_ms[] = {1, 5, 50};
    int bad = 0;
    for (size_t r = 0; r < sizeof rates / sizeof *rates; r++)
        for (size_t bi = 0; bi < 2; bi++)
            for (size_t p = 0; p < 3; p++) {
                int got = flood(rates[r], bursts[bi], per_ms[p], 10000);
                double want = rates[r] * 10;
                if (got > want * 1.02 + 1 || got < want * 0.98 - 1) {
                    print_error("rate %g burst %d, %d messages/ms: %d passed "
                                "in 10 s, want %g\n",
                                rates[r], bursts[bi], per_ms[p], got, want);
                    bad++;
                }
            }
    if (bad) fail_msg("%d cases over or under the rate", bad);
}

static void test_rate_refills_after_long_idle_at_high_rate(void **state) {
    /* --rate-limit 10000 allows, idle 2^27 ms (37 hours): the bucket is
     * full again, whatever the product of time and rate. */
    const struct {
        double rate;
        uint32_t idle;
    } cases[] = {
        {10000, 1u << 27}, {1000000, 1u << 25}, {1000000, 300000},
        {5000, 3600000},   {100000, 86400000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        rate_limit l = rate_limit_make(cases[i].rate, 0);
        rate_bucket b;
        rate_bucket_init(&b, &l, 0);
        take_n(&b, &l, 0, l.burst);
        int got = take_n(&b, &l, cases[i].idle, l.burst + 1);
        if (got != l.burst)
            fail_msg("rate %g idle %u ms: %d passed, want the burst %d",
                     cases[i].rate, cases[i].idle, got, l.burst);
    }
}

static void
test_rate_flooding_after_more_than_a_burst_of_refusals(void **state) {
    rate_limit l = rate_limit_make(1, 3);
    rate_bucket b;
    rate_bucket_init(&b, &l, 0);
    assert_int_equal(take_n(&b, &l, 0, 3), 3);
    assert_false(rate_flooding(&b, &l));
    /* A burst's worth of refusals: a client may still be reading them. */
    assert_int_equal(take_n(&b, &l, 0, 3), 0);
    assert_false(rate_flooding(&b, &l));
    /* One more: it is not. */
    assert_int_equal(rate_take(&b, &l, 0), 0);
    assert_true(rate_flooding(&b, &l));
    /* A message let through forgives. */
    assert_int_equal(rate_take(&b, &l, 1000), 1);
    assert_false(rate_flooding(&b, &l));
}

static void test_rate_refusal_count_saturates(void **state) {
    rate_limit l = rate_limit_make(0.001, 1);
    rate_bucket b;
    rate_bucket_init(&b, &l, 0);
    assert_int_equal(take_n(&b, &l, 0, 70001), 1);
    assert_int_equal(b.over, UINT16_MAX);
    assert_true(rate_flooding(&b, &l));
}

static void test_rate_clock_wrapping_around(void **state) {
    rate_limit l = rate_limit_make(2, 2); /* one message per 500 ms */
    rate_bucket b;
    uint32_t t0 = UINT32_MAX - 200;
    rate_bucket_init(&b, &l, t0);
    assert_int_equal(take_n(&b, &l, t0, 5), 2);
    /* 201 + 100 = 301 ms later, past the wrap: not yet. */
    assert_int_equal(rate_take(&b, &l, 100), 0);
    /* 501 ms after t0: one. */
    assert_int_equal(rate_take(&b, &l, 300), 1);
    assert_int_equal(rate_take(&b, &l, 300), 0);
    /* Seconds later, a full burst and no more. */
    assert_int_equal(take_n(&b, &l, 5000, 5), 2);
}

static void test_rate_limit_make_default_burst(void **state) {
    assert_int_equal(rate_limit_make(10, 0).burst, 10);
    assert_int_equal(rate_limit_make(2.5, 0).burst, 3);
    assert_int_equal(rate_limit_make(0.1, 0).burst, 1);
    assert_int_equal(rate_limit_make(RATE_BURST_MAX + 0.5, 0).burst,
                     RATE_BURST_MAX);
    assert_int_equal(rate_limit_make(1000000, 0).burst, RATE_BURST_MAX);
    /* A burst given is kept. */
    assert_int_equal(rate_limit_make(10, 7).burst, 7);
    assert_int_equal(rate_limit_make(0.5, 40).burst, 40);
    rate_limit l = rate_limit_make(2.5, 0);
    assert_true(l.rate == 2.5);
}

static void test_rate_largest_burst_fits_the_bucket(void **state) {
    rate_limit l = rate_limit_make(1, RATE_BURST_MAX);
    rate_bucket b;
    rate_bucket_init(&b, &l, 0);
    assert_int_equal(take_n(&b, &l, 0, RATE_BURST_MAX + 10), RATE_BURST_MAX);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rate_burst_passes_then_next_is_refused),
        cmocka_unit_test(test_rate_refills_over_time),
        cmocka_unit_test(test_rate_keeps_fractional_tokens),
        cmocka_unit_test(test_rate_flood_in_many_small_steps_stays_within_rate),
        cmocka_unit_test(test_rate_refills_after_long_idle_at_high_rate),
        cmocka_unit_test(
            test_rate_flooding_after_more_than_a_burst_of_refusals),
        cmocka_unit_test(test_rate_refusal_count_saturates),
        cmocka_unit_test(test_rate_clock_wrapping_around),
        cmocka_unit_test(test_rate_limit_make_default_burst),
        cmocka_unit_test(test_rate_largest_burst_fits_the_bucket),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
