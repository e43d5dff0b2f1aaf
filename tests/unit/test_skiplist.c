/* test_skiplist.c -- unit tests for core/skiplist.c.
 *
 * room_members pages through a big room with it, so a string lost or
 * out of order after a remove would be a member missing from every page.
 * The randomized test checks adds, removes and pages against a plain
 * sorted array. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "skiplist.h"

typedef struct page {
    const char *got[64];
    size_t n;
} page;

static void collect(void *ctx, const char *s) {
    page *p = ctx;
    p->got[p->n++] = s;
}

static void test_skiplist_pages_in_byte_order(void **state) {
    skiplist_t *sl = skiplist_create();
    const char *in[] = {"dan", "bob", "eve", "amy", "cat", "Zed"};
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(skiplist_add(sl, in[i]), 1);
    assert_int_equal(skiplist_add(sl, "bob"), 0);
    assert_int_equal(skiplist_size(sl), 6);
    page p = {0};
    assert_int_equal(skiplist_range(sl, NULL, 3, collect, &p), 3);
    assert_string_equal(p.got[0], "Zed"); /* 'Z' < 'a' */
    assert_string_equal(p.got[1], "amy");
    assert_string_equal(p.got[2], "bob");
    p.n = 0;
    /* After a string that is not in the set, and after one that is. */
    assert_int_equal(skiplist_range(sl, "bz", 10, collect, &p), 3);
    assert_string_equal(p.got[0], "cat");
    assert_string_equal(p.got[2], "eve");
    p.n = 0;
    assert_int_equal(skiplist_range(sl, "cat", 1, collect, &p), 1);
    assert_string_equal(p.got[0], "dan");
    p.n = 0;
    assert_int_equal(skiplist_range(sl, "eve", 10, collect, &p), 0);
    assert_int_equal(skiplist_remove(sl, "cat"), 1);
    assert_int_equal(skiplist_remove(sl, "cat"), 0);
    assert_int_equal(skiplist_range(sl, "bob", 10, collect, &p), 2);
    assert_string_equal(p.got[0], "dan");
    skiplist_destroy(sl);
}

static int cmp(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void test_skiplist_agrees_with_a_sorted_array(void **state) {
    enum { N = 2000 };
    static char names[N][8];
    static int in[N];
    const char *model[N];
    for (int i = 0; i < N; i++)
        snprintf(names[i], sizeof names[i], "u%05d", (i * 7919) % N);
    skiplist_t *sl = skiplist_create();
    srand(7);
    for (int step = 0; step < 20000; step++) {
        int k = rand() % N;
        if (rand() % 3) {
            assert_int_equal(skiplist_add(sl, names[k]), !in[k]);
            in[k] = 1;
        } else {
            assert_int_equal(skiplist_remove(sl, names[k]), in[k]);
            in[k] = 0;
        }
        if (step % 500) continue;
        size_t m = 0;
        for (int i = 0; i < N; i++)
            if (in[i]) model[m++] = names[i];
        qsort(model, m, sizeof model[0], cmp);
        assert_int_equal(skiplist_size(sl), m);
        /* Every page of 64 from every 97th string on. */
        for (size_t at = 0; at < m; at += 97) {
            page p = {0};
            size_t n = skiplist_range(sl, model[at], 64, collect, &p);
            size_t want = m - at - 1 < 64 ? m - at - 1 : 64;
            assert_int_equal(n, want);
            for (size_t i = 0; i < n; i++)
                assert_string_equal(p.got[i], model[at + 1 + i]);
        }
    }
    skiplist_destroy(sl);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_skiplist_pages_in_byte_order),
        cmocka_unit_test(test_skiplist_agrees_with_a_sorted_array),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
