/* test_dict.c -- unit tests for core/dict.c.
 *
 * Every index in the server (connections, users, rooms, presence) is a
 * dict, so a lost entry after a delete would show up as a user who cannot
 * be reached. The randomized test checks backward-shift deletion against a
 * plain reference model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dict.h"

static void test_dict_get_missing_key_returns_null(void **state) {
    dict_t *d = dict_create();
    assert_null(dict_get(d, "nobody"));
    assert_null(dict_key(d, "nobody"));
    assert_null(dict_remove(d, "nobody"));
    assert_int_equal(dict_size(d), 0);
    dict_destroy(d, NULL);
}

static void test_dict_set_then_get_returns_value(void **state) {
    dict_t *d = dict_create();
    int a = 1, b = 2;
    assert_int_equal(dict_set(d, "alice", &a), 1);
    assert_int_equal(dict_set(d, "bob", &b), 1);
    assert_ptr_equal(dict_get(d, "alice"), &a);
    assert_ptr_equal(dict_get(d, "bob"), &b);
    assert_int_equal(dict_size(d), 2);
    dict_destroy(d, NULL);
}

static void test_dict_set_existing_key_replaces_and_returns_zero(void **state) {
    dict_t *d = dict_create();
    int a = 1, b = 2;
    assert_int_equal(dict_set(d, "alice", &a), 1);
    assert_int_equal(dict_set(d, "alice", &b), 0);
    assert_ptr_equal(dict_get(d, "alice"), &b);
    assert_int_equal(dict_size(d), 1);
    dict_destroy(d, NULL);
}

static void test_dict_remove_returns_value_and_forgets_key(void **state) {
    dict_t *d = dict_create();
    int a = 1;
    dict_set(d, "alice", &a);
    assert_ptr_equal(dict_remove(d, "alice"), &a);
    assert_null(dict_get(d, "alice"));
    assert_null(dict_remove(d, "alice"));
    assert_int_equal(dict_size(d), 0);
    /* The key can come back. */
    assert_int_equal(dict_set(d, "alice", &a), 1);
    assert_ptr_equal(dict_get(d, "alice"), &a);
    dict_destroy(d, NULL);
}

static void test_dict_copies_keys(void **state) {
    dict_t *d = dict_create();
    int a = 1;
    char key[16];
    strcpy(key, "room-1");
    dict_set(d, key, &a);
    strcpy(key, "XXXXXX");
    assert_ptr_equal(dict_get(d, "room-1"), &a);
    assert_null(dict_get(d, "XXXXXX"));
    dict_destroy(d, NULL);
}

static void
test_dict_key_is_stable_copy_across_growth_and_removes(void **state) {
    dict_t *d = dict_create();
    int v = 0;
    char name[32];
    dict_set(d, "keeper", &v);
    const char *k = dict_key(d, "keeper");
    assert_non_null(k);
    assert_string_equal(k, "keeper");
    /* The table's copy, not the caller's string. */
    const char *mine = "keeper";
    assert_ptr_not_equal(k, mine);
    /* Grow the table many times and shuffle slots with removes: the copy
     * must stay at the same address with the same content. */
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof name, "k%d", i);
        dict_set(d, name, &v);
    }
    for (int i = 0; i < 5000; i += 2) {
        snprintf(name, sizeof name, "k%d", i);
        dict_remove(d, name);
    }
    assert_ptr_equal(dict_key(d, "keeper"), k);
    assert_string_equal(k, "keeper");
    /* Replacing the value keeps the key copy too. */
    dict_set(d, "keeper", &name);
    assert_ptr_equal(dict_key(d, "keeper"), k);
    dict_destroy(d, NULL);
}

static void
test_dict_many_keys_with_interleaved_removes_stay_findable(void **state) {
    enum { N = 100000 };
    dict_t *d = dict_create();
    static int vals[N];
    char name[32];
    /* Insert N keys; every third insert, remove an earlier key. */
    for (int i = 0; i < N; i++) {
        vals[i] = i;
        snprintf(name, sizeof name, "user-%d", i);
        assert_int_equal(dict_set(d, name, &vals[i]), 1);
        if (i % 3 == 2) {
            snprintf(name, sizeof name, "user-%d", i / 2);
            dict_remove(d, name);
        }
    }
    size_t present = 0;
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "user-%d", i);
        int removed = 0;
        /* Was i removed? It is i/2 for some j with j % 3 == 2 and j >= i,
         * i.e. some j in {2i, 2i+1} with j % 3 == 2 and j < N. */
        for (int j = 2 * i; j <= 2 * i + 1 && j < N; j++)
            if (j % 3 == 2) removed = 1;
        if (removed) {
            assert_null(dict_get(d, name));
        } else {
            assert_ptr_equal(dict_get(d, name), &vals[i]);
            present++;
        }
    }
    assert_int_equal(dict_size(d), present);
    dict_destroy(d, NULL);
}

/* A tiny deterministic PRNG (xorshift64*), so failures reproduce. */
static uint64_t rng_state;
static uint64_t rng(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static void test_dict_random_ops_match_reference_model(void **state) {
    /* A small key space makes long probe runs, wrap-around and many
     * delete/reinsert cycles on the same slots. */
    enum { KEYS = 2000, OPS = 200000 };
    static int model_present[KEYS];
    static int vals[KEYS];
    memset(model_present, 0, sizeof model_present);
    size_t model_size = 0;
    char name[32];
    rng_state = 0x9e3779b97f4a7c15ULL;
    dict_t *d = dict_create();

    for (int op = 0; op < OPS; op++) {
        int k = (int)(rng() % KEYS);
        snprintf(name, sizeof name, "%d", k);
        switch (rng() % 3) {
        case 0:
        case 1: {
            int r = dict_set(d, name, &vals[k]);
            assert_int_equal(r, !model_present[k]);
            if (!model_present[k]) model_size++;
            model_present[k] = 1;
            break;
        }
        case 2: {
            void *v = dict_remove(d, name);
            if (model_present[k]) {
                assert_ptr_equal(v, &vals[k]);
                model_size--;
            } else {
                assert_null(v);
            }
            model_present[k] = 0;
            break;
        }
        }
        assert_int_equal(dict_size(d), model_size);
        /* Every so often, check the whole table against the model. */
        if (op % 5000 == 0) {
            for (int i = 0; i < KEYS; i++) {
                snprintf(name, sizeof name, "%d", i);
                if (model_present[i])
                    assert_ptr_equal(dict_get(d, name), &vals[i]);
                else
                    assert_null(dict_get(d, name));
            }
        }
    }
    for (int i = 0; i < KEYS; i++) {
        snprintf(name, sizeof name, "%d", i);
        if (model_present[i])
            assert_ptr_equal(dict_get(d, name), &vals[i]);
        else
            assert_null(dict_get(d, name));
    }
    dict_destroy(d, NULL);
}

static void test_dict_remove_everything_leaves_empty_table(void **state) {
    enum { N = 3000 };
    dict_t *d = dict_create();
    char name[32];
    int v;
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "r%d", i);
        dict_set(d, name, &v);
    }
    /* Remove in an order unrelated to insertion. */
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "r%d", (i * 7919) % N);
        assert_ptr_equal(dict_remove(d, name), &v);
    }
    assert_int_equal(dict_size(d), 0);
    size_t pos = 0;
    assert_int_equal(dict_next(d, &pos, NULL, NULL), 0);
    dict_destroy(d, NULL);
}

static void test_dict_iteration_visits_each_entry_once(void **state) {
    enum { N = 1000 };
    dict_t *d = dict_create();
    static int vals[N];
    static int seen[N];
    memset(seen, 0, sizeof seen);
    char name[32];
    for (int i = 0; i < N; i++) {
        vals[i] = i;
        snprintf(name, sizeof name, "c%d", i);
        dict_set(d, name, &vals[i]);
    }
    /* Remove a few, so iteration runs over a table with holes. */
    for (int i = 0; i < N; i += 10) {
        snprintf(name, sizeof name, "c%d", i);
        dict_remove(d, name);
    }
    size_t pos = 0, count = 0;
    const char *key;
    void *value;
    while (dict_next(d, &pos, &key, &value)) {
        /* The value points into vals: its index names the entry. */
        assert_true((int *)value >= vals && (int *)value < vals + N);
        int i = (int)((int *)value - vals);
        assert_int_equal(*(int *)value, i);
        assert_true(i % 10 != 0);
        snprintf(name, sizeof name, "c%d", i);
        assert_string_equal(key, name);
        seen[i]++;
        count++;
    }
    assert_int_equal(count, dict_size(d));
    for (int i = 0; i < N; i++)
        assert_int_equal(seen[i], i % 10 ? 1 : 0);
    /* At the end it stays at the end. */
    assert_int_equal(dict_next(d, &pos, &key, &value), 0);
    dict_destroy(d, NULL);
}

static void test_dict_iteration_of_empty_table_ends_at_once(void **state) {
    dict_t *d = dict_create();
    size_t pos = 0;
    const char *key = NULL;
    void *value = NULL;
    assert_int_equal(dict_next(d, &pos, &key, &value), 0);
    assert_null(key);
    assert_null(value);
    dict_destroy(d, NULL);
}

static int freed_count;
static void count_free(void *p) {
    freed_count++;
    free(p);
}

static void test_dict_destroy_calls_free_method_on_every_value(void **state) {
    dict_t *d = dict_create();
    char name[16];
    freed_count = 0;
    for (int i = 0; i < 50; i++) {
        snprintf(name, sizeof name, "%d", i);
        dict_set(d, name, malloc(8));
    }
    /* A removed value belongs to the caller again. */
    free(dict_remove(d, "7"));
    dict_destroy(d, count_free);
    assert_int_equal(freed_count, 49);
}

static void test_dict_empty_key_is_a_key(void **state) {
    dict_t *d = dict_create();
    int v;
    assert_int_equal(dict_set(d, "", &v), 1);
    assert_ptr_equal(dict_get(d, ""), &v);
    assert_ptr_equal(dict_remove(d, ""), &v);
    dict_destroy(d, NULL);
}

static void test_dict_hash_is_deterministic_and_length_bounded(void **state) {
    assert_true(dict_hash("abc", 3) == dict_hash("abc", 3));
    /* Only the first n bytes count. */
    assert_true(dict_hash("abcdef", 3) == dict_hash("abc", 3));
    assert_true(dict_hash("abc", 3) != dict_hash("abd", 3));
}

static void test_dict_shrink_keeps_every_entry_and_frees_slots(void **state) {
    (void)state;
    dict_t *d = dict_create();
    char key[16];
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof key, "u%d", i);
        dict_set(d, key, (void *)(intptr_t)(i + 1));
    }
    /* Still full enough: nothing to give back. */
    assert_int_equal(dict_shrink(d), 0);
    for (int i = 100; i < 10000; i++) {
        snprintf(key, sizeof key, "u%d", i);
        assert_non_null(dict_remove(d, key));
    }
    /* 100 left of 16,384 slots: down to 512 (a quarter used). */
    assert_int_equal(dict_shrink(d), (16384 - 512) * 2 * sizeof(void *));
    assert_int_equal(dict_shrink(d), 0);
    assert_int_equal(dict_size(d), 100);
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof key, "u%d", i);
        if (i < 100)
            assert_int_equal((intptr_t)dict_get(d, key), i + 1);
        else
            assert_null(dict_get(d, key));
    }
    /* It grows again as before. */
    for (int i = 100; i < 2000; i++) {
        snprintf(key, sizeof key, "u%d", i);
        assert_int_equal(dict_set(d, key, (void *)(intptr_t)(i + 1)), 1);
    }
    assert_int_equal(dict_size(d), 2000);
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof key, "u%d", i);
        assert_int_equal((intptr_t)dict_get(d, key), i + 1);
    }
    /* Emptied: back to the first size. */
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof key, "u%d", i);
        dict_remove(d, key);
    }
    assert_int_equal(dict_shrink(d), (4096 - 8) * 2 * sizeof(void *));
    dict_destroy(d, NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dict_get_missing_key_returns_null),
        cmocka_unit_test(test_dict_set_then_get_returns_value),
        cmocka_unit_test(test_dict_set_existing_key_replaces_and_returns_zero),
        cmocka_unit_test(test_dict_remove_returns_value_and_forgets_key),
        cmocka_unit_test(test_dict_copies_keys),
        cmocka_unit_test(
            test_dict_key_is_stable_copy_across_growth_and_removes),
        cmocka_unit_test(
            test_dict_many_keys_with_interleaved_removes_stay_findable),
        cmocka_unit_test(test_dict_random_ops_match_reference_model),
        cmocka_unit_test(test_dict_remove_everything_leaves_empty_table),
        cmocka_unit_test(test_dict_iteration_visits_each_entry_once),
        cmocka_unit_test(test_dict_iteration_of_empty_table_ends_at_once),
        cmocka_unit_test(test_dict_destroy_calls_free_method_on_every_value),
        cmocka_unit_test(test_dict_empty_key_is_a_key),
        cmocka_unit_test(test_dict_shrink_keeps_every_entry_and_frees_slots),
        cmocka_unit_test(test_dict_hash_is_deterministic_and_length_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
