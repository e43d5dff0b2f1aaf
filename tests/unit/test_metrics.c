/* test_metrics.c -- unit tests for core/metrics.c: slots by handler type,
 * kept across reloads, bounded labels, and the text written. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"

/* The exposition as a NUL-terminated string (the caller frees b). */
static const char *text_of(const metrics_t *m, buf_t *b) {
    metrics_gauges g = {3, 2, 1, -1};
    buf_init(b, 0);
    metrics_write(m, &g, b);
    buf_putc(b, '\0');
    return buf_content(b);
}

static void test_metrics_unknown_types_share_other(void **state) {
    metrics_t *m = metrics_create();
    metrics_set_types(m, "chat,ping");
    assert_int_not_equal(metrics_slot(m, "chat"), METRICS_OTHER);
    assert_int_equal(metrics_slot(m, "made_up"), METRICS_OTHER);
    assert_int_equal(metrics_slot(m, NULL), METRICS_OTHER);
    assert_int_equal(metrics_slot(m, ""), METRICS_OTHER);
    for (int i = 0; i < 100; i++)
        metrics_received(m, metrics_slot(m, "made_up"));
    buf_t b;
    const char *t = text_of(m, &b);
    assert_non_null(
        strstr(t, "luahub_messages_received_total{type=\"other\"} 100\n"));
    assert_null(strstr(t, "made_up"));
    buf_close(&b);
    metrics_destroy(m);
}

static void test_metrics_reload_keeps_counts_of_types_that_stay(void **state) {
    metrics_t *m = metrics_create();
    metrics_set_types(m, "chat,gone");
    unsigned chat = metrics_slot(m, "chat");
    metrics_received(m, chat);
    metrics_received(m, metrics_slot(m, "gone"));
    metrics_set_types(m, "new,chat");
    assert_int_equal(metrics_slot(m, "chat"), chat);
    assert_int_equal(metrics_slot(m, "gone"), METRICS_OTHER);
    metrics_received(m, metrics_slot(m, "chat"));
    buf_t b;
    const char *t = text_of(m, &b);
    assert_non_null(
        strstr(t, "luahub_messages_received_total{type=\"chat\"} 2\n"));
    /* A removed type keeps its series; a new one has one at zero. */
    assert_non_null(
        strstr(t, "luahub_messages_received_total{type=\"gone\"} 1\n"));
    assert_non_null(
        strstr(t, "luahub_messages_received_total{type=\"new\"} 0\n"));
    buf_close(&b);
    metrics_destroy(m);
}

static void test_metrics_codes_outside_the_set_are_other(void **state) {
    metrics_t *m = metrics_create();
    metrics_set_types(m, "chat");
    unsigned chat = metrics_slot(m, "chat");
    metrics_error(m, chat, "not_in_room");
    metrics_error(m, chat, "my_own_code");
    metrics_error(m, chat, "also_mine");
    buf_t b;
    const char *t = text_of(m, &b);
    assert_non_null(strstr(t, "luahub_handler_errors_total{type=\"chat\","
                              "code=\"not_in_room\"} 1\n"));
    assert_non_null(strstr(
        t, "luahub_handler_errors_total{type=\"chat\",code=\"other\"} 2\n"));
    assert_null(strstr(t, "my_own_code"));
    buf_close(&b);
    metrics_destroy(m);
}

static void test_metrics_histogram_is_cumulative(void **state) {
    metrics_t *m = metrics_create();
    metrics_set_types(m, "chat");
    unsigned chat = metrics_slot(m, "chat");
    metrics_observe(m, chat, 0.00005); /* first bucket */
    metrics_observe(m, chat, 0.003);   /* le 0.005 */
    metrics_observe(m, chat, 100);     /* +Inf only */
    buf_t b;
    const char *t = text_of(m, &b);
    assert_non_null(strstr(t, "luahub_handler_duration_seconds_bucket{type="
                              "\"chat\",le=\"0.0001\"} 1\n"));
    assert_non_null(strstr(t, "luahub_handler_duration_seconds_bucket{type="
                              "\"chat\",le=\"0.0025\"} 1\n"));
    assert_non_null(strstr(t, "luahub_handler_duration_seconds_bucket{type="
                              "\"chat\",le=\"0.005\"} 2\n"));
    assert_non_null(strstr(t, "luahub_handler_duration_seconds_bucket{type="
                              "\"chat\",le=\"5\"} 2\n"));
    assert_non_null(strstr(t, "luahub_handler_duration_seconds_bucket{type="
                              "\"chat\",le=\"+Inf\"} 3\n"));
    assert_non_null(
        strstr(t, "luahub_handler_duration_seconds_count{type=\"chat\"} 3\n"));
    assert_non_null(strstr(t, "# TYPE luahub_handler_duration_seconds "
                              "histogram\n"));
    buf_close(&b);
    metrics_destroy(m);
}

static void test_metrics_gauges_and_counters(void **state) {
    metrics_t *m = metrics_create();
    (*metrics_deliveries(m)) += 7;
    metrics_slow_consumer(m);
    metrics_reload(m, 1);
    metrics_reload(m, 0);
    metrics_reload(m, 0);
    buf_t b;
    const char *t = text_of(m, &b);
    assert_non_null(strstr(t, "luahub_connections 3\n"));
    assert_non_null(strstr(t, "luahub_users_online 2\n"));
    assert_non_null(strstr(t, "luahub_rooms 1\n"));
    assert_null(strstr(t, "luahub_redis_up"));
    assert_non_null(strstr(t, "luahub_deliveries_total 7\n"));
    assert_non_null(strstr(t, "luahub_slow_consumer_closes_total 1\n"));
    assert_non_null(strstr(t, "luahub_reloads_total{result=\"ok\"} 1\n"));
    assert_non_null(strstr(t, "luahub_reloads_total{result=\"failed\"} 2\n"));
    buf_close(&b);
    metrics_gauges g = {0, 0, 0, 1};
    buf_init(&b, 0);
    metrics_write(m, &g, &b);
    buf_putc(&b, '\0');
    assert_non_null(strstr(buf_content(&b), "luahub_redis_up 1\n"));
    buf_close(&b);
    metrics_destroy(m);
}

static void test_metrics_slots_are_bounded(void **state) {
    metrics_t *m = metrics_create();
    char name[32];
    for (unsigned i = 0; i < METRICS_SLOTS_MAX + 10; i++) {
        snprintf(name, sizeof name, "t%u", i);
        metrics_add_type(m, name);
    }
    snprintf(name, sizeof name, "t%u", METRICS_SLOTS_MAX + 5);
    assert_int_equal(metrics_slot(m, name), METRICS_OTHER);
    assert_int_not_equal(metrics_slot(m, "t1"), METRICS_OTHER);
    metrics_destroy(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_unknown_types_share_other),
        cmocka_unit_test(test_metrics_reload_keeps_counts_of_types_that_stay),
        cmocka_unit_test(test_metrics_codes_outside_the_set_are_other),
        cmocka_unit_test(test_metrics_histogram_is_cumulative),
        cmocka_unit_test(test_metrics_gauges_and_counters),
        cmocka_unit_test(test_metrics_slots_are_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
