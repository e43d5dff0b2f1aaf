/* test_origin.c -- unit tests for core/origin.c: which pages may open a
 * WebSocket under --allowed-origins, and which values the flag takes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "origin.h"

/* origin and host as C strings (NULL: the header is absent). */
static int allowed(const char *list, const char *origin, const char *host) {
    return origin_allowed(list, origin, origin ? strlen(origin) : 0, host,
                          host ? strlen(host) : 0);
}

static void test_listed_origins_only(void **state) {
    const char *l = "https://chat.example.com, http://localhost:3000";
    assert_true(allowed(l, "https://chat.example.com", "ws.example.com"));
    assert_true(allowed(l, "HTTPS://Chat.Example.COM", "ws.example.com"));
    assert_true(allowed(l, "http://localhost:3000", "ws.example.com"));
    assert_false(allowed(l, "https://evil.example", "ws.example.com"));
    assert_false(allowed(l, "https://chat.example.com.evil.example", "x"));
    assert_false(allowed(l, "https://chat.example.co", "x"));
    assert_false(allowed(l, "http://chat.example.com", "x"));
    assert_false(allowed(l, "http://localhost:30000", "x"));
    assert_false(allowed(l, "null", "x"));
    assert_false(allowed(l, "", "x"));
}

static void test_no_origin_and_no_list_and_star_let_in(void **state) {
    assert_true(allowed("https://chat.example.com", NULL, "x"));
    assert_true(allowed("", "https://evil.example", "x"));
    assert_true(allowed("https://a.example,*", "https://evil.example", "x"));
}

static void test_own_page_is_always_allowed(void **state) {
    const char *l = "https://chat.example.com";
    assert_true(allowed(l, "http://127.0.0.1:8080", "127.0.0.1:8080"));
    assert_true(allowed(l, "https://hub.example.net", "HUB.example.net"));
    assert_false(allowed(l, "http://127.0.0.1:8081", "127.0.0.1:8080"));
    assert_false(allowed(l, "http://127.0.0.1", "127.0.0.1:8080"));
    assert_false(allowed(l, "ftp://127.0.0.1:8080", "127.0.0.1:8080"));
    assert_false(allowed(l, "http://", ""));
    assert_false(allowed(l, "http://x", NULL));
    assert_false(allowed(l, "http://127.0.0.1:8080/", "127.0.0.1:8080"));
}

static void test_list_check_names_the_bad_entry(void **state) {
    char err[200];
    assert_int_equal(
        origin_list_check("https://chat.example.com", err, sizeof err), 0);
    assert_int_equal(origin_list_check("*", err, sizeof err), 0);
    assert_int_equal(origin_list_check(" https://a.example:8443 , "
                                       "http://[::1]:8080,chrome-extension://"
                                       "abc",
                                       err, sizeof err),
                     0);
    static const char *const bad[][2] = {
        {"https://chat.example.com/", "has no path"},
        {"https://chat.example.com/chat", "has no path"},
        {"https://a.example?x", "has no path"},
        {"chat.example.com", "scheme://host"},
        {"https://", "no host"},
        {"://x", "scheme://host"},
        {"ht tp://x", "scheme"},
        {"https://user@x", "host has a character"},
        {"https://a b", "host has a character"},
        {"https://a.example,", "empty entry"},
        {"", "empty entry"},
        {"**", "scheme://host"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (origin_list_check(bad[i][0], err, sizeof err) == 0)
            fail_msg("'%s' was accepted", bad[i][0]);
        if (!strstr(err, bad[i][1]))
            fail_msg("error for '%s' is '%s'", bad[i][0], err);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listed_origins_only),
        cmocka_unit_test(test_no_origin_and_no_list_and_star_let_in),
        cmocka_unit_test(test_own_page_is_always_allowed),
        cmocka_unit_test(test_list_check_names_the_bad_entry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
