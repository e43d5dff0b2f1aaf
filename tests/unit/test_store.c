/* test_store.c -- unit tests for core/store.c: the key-value state that
 * scripts keep across reloads. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store.h"

static void test_set_get_replace_delete(void **state) {
    store_t *st = store_create();
    size_t len;
    assert_null(store_get(st, STORE_GLOBAL, "", "k", &len));
    assert_int_equal(store_set(st, STORE_GLOBAL, "", "k", "1", 1), 0);
    assert_string_equal(store_get(st, STORE_GLOBAL, "", "k", &len), "1");
    assert_int_equal(len, 1);
    assert_int_equal(store_set(st, STORE_GLOBAL, "", "k", "{\"a\":2}", 7), 0);
    assert_string_equal(store_get(st, STORE_GLOBAL, NULL, "k", NULL),
                        "{\"a\":2}");
    assert_int_equal(store_delete(st, STORE_GLOBAL, "", "k"), 1);
    assert_int_equal(store_delete(st, STORE_GLOBAL, "", "k"), 0);
    assert_null(store_get(st, STORE_GLOBAL, "", "k", NULL));
    store_destroy(st);
}

static void test_scopes_are_separate(void **state) {
    store_t *st = store_create();
    store_set(st, STORE_ROOM, "lobby", "k", "1", 1);
    store_set(st, STORE_ROOM, "other", "k", "2", 1);
    store_set(st, STORE_USER, "lobby", "k", "3", 1);
    store_set(st, STORE_GLOBAL, "", "k", "4", 1);
    assert_string_equal(store_get(st, STORE_ROOM, "lobby", "k", NULL), "1");
    assert_string_equal(store_get(st, STORE_ROOM, "other", "k", NULL), "2");
    assert_string_equal(store_get(st, STORE_USER, "lobby", "k", NULL), "3");
    assert_string_equal(store_get(st, STORE_GLOBAL, "", "k", NULL), "4");
    store_destroy(st);
}

static void test_dropping_a_scope_forgets_only_it(void **state) {
    store_t *st = store_create();
    store_set(st, STORE_ROOM, "a", "x", "1", 1);
    store_set(st, STORE_ROOM, "a", "y", "1", 1);
    store_set(st, STORE_ROOM, "b", "x", "1", 1);
    assert_int_equal(store_count(st, STORE_ROOM, "a"), 2);
    store_drop(st, STORE_ROOM, "a");
    assert_int_equal(store_count(st, STORE_ROOM, "a"), 0);
    assert_null(store_get(st, STORE_ROOM, "a", "x", NULL));
    assert_non_null(store_get(st, STORE_ROOM, "b", "x", NULL));
    store_drop(st, STORE_USER, "never-there");
    store_destroy(st);
}

static void test_oversized_values_are_refused(void **state) {
    store_t *st = store_create();
    char *big = calloc(1, STORE_MAX_VALUE + 2);
    memset(big, '1', STORE_MAX_VALUE + 1);
    assert_int_equal(
        store_set(st, STORE_GLOBAL, "", "k", big, STORE_MAX_VALUE + 1), -E2BIG);
    assert_int_equal(store_set(st, STORE_GLOBAL, "", "k", big, STORE_MAX_VALUE),
                     0);
    free(big);
    store_destroy(st);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_get_replace_delete),
        cmocka_unit_test(test_scopes_are_separate),
        cmocka_unit_test(test_dropping_a_scope_forgets_only_it),
        cmocka_unit_test(test_oversized_values_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
