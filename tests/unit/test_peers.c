/* test_peers.c -- unit tests for core/peers.c: connections counted per
 * client address, entries freed at zero, the table growing and shrinking
 * under a crowd of addresses, and refusals logged once a minute. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "peers.h"

static const uint8_t key[16] = "0123456789abcdef";

static netaddr addr(const char *s) {
    netaddr a;
    if (netaddr_parse(s, strlen(s), &a) < 0) fail_msg("not an address: %s", s);
    return a;
}

/* The i-th address of a crowd: IPv6 in 2001:db8::/32, or IPv4. */
static netaddr nth(uint32_t i, int v6) {
    netaddr a;
    char s[64];
    if (v6)
        snprintf(s, sizeof s, "2001:db8:%x::%x", i >> 16, i & 0xffff);
    else
        snprintf(s, sizeof s, "10.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255,
                 i & 255);
    netaddr_parse(s, strlen(s), &a);
    return a;
}

static void test_counts_per_address_and_frees_at_zero(void **state) {
    peers_t *p = peers_create(key);
    netaddr a = addr("192.0.2.1"), b = addr("2001:db8::1");
    assert_int_equal(peers_add(p, &a), 1);
    assert_int_equal(peers_add(p, &a), 2);
    assert_int_equal(peers_add(p, &b), 1);
    assert_int_equal(peers_count(p, &a), 2);
    assert_int_equal(peers_size(p), 2);
    peers_remove(p, &a);
    assert_int_equal(peers_count(p, &a), 1);
    peers_remove(p, &a);
    assert_int_equal(peers_count(p, &a), 0);
    assert_int_equal(peers_size(p), 1);
    assert_int_equal(peers_count(p, &b), 1);
    peers_remove(p, &b);
    assert_int_equal(peers_size(p), 0);
    peers_destroy(p);
}

static void test_ipv4_mapped_counts_as_ipv4(void **state) {
    peers_t *p = peers_create(key);
    netaddr v4 = addr("198.51.100.7"), m = addr("::ffff:198.51.100.7");
    peers_add(p, &v4);
    assert_int_equal(peers_add(p, &m), 2);
    assert_int_equal(peers_size(p), 1);
    peers_remove(p, &m);
    peers_remove(p, &v4);
    assert_int_equal(peers_size(p), 0);
    peers_destroy(p);
}

/* A crowd comes and goes in an order unlike the one it came in: every
 * count stays right through growth, deletion's moves and shrinking. */
static void test_crowd_of_addresses_comes_and_goes(void **state) {
    for (int v6 = 0; v6 <= 1; v6++) {
        peers_t *p = peers_create(key);
        const uint32_t n = 20000;
        for (uint32_t i = 0; i < n; i++) {
            netaddr a = nth(i, v6);
            assert_int_equal(peers_add(p, &a), 1);
            if (i % 3 == 0) assert_int_equal(peers_add(p, &a), 2);
        }
        assert_int_equal(peers_size(p), n);
        /* Every other address leaves, from the end. */
        for (uint32_t i = n; i-- > 0;) {
            if (i % 2) continue;
            netaddr a = nth(i, v6);
            peers_remove(p, &a);
            if (i % 3 == 0) {
                assert_int_equal(peers_count(p, &a), 1);
                peers_remove(p, &a);
            }
            assert_int_equal(peers_count(p, &a), 0);
        }
        assert_int_equal(peers_size(p), n / 2);
        for (uint32_t i = 0; i < n; i++) {
            netaddr a = nth(i, v6);
            uint32_t want = i % 2 ? (i % 3 == 0 ? 2 : 1) : 0;
            if (peers_count(p, &a) != want)
                fail_msg("address %u: %u, not %u", i, peers_count(p, &a), want);
        }
        for (uint32_t i = 1; i < n; i += 2) {
            netaddr a = nth(i, v6);
            while (peers_count(p, &a))
                peers_remove(p, &a);
        }
        assert_int_equal(peers_size(p), 0);
        peers_destroy(p);
    }
}

static void test_refusals_logged_once_a_minute_per_address(void **state) {
    peers_t *p = peers_create(key);
    netaddr a = addr("192.0.2.1"), b = addr("192.0.2.2");
    peers_add(p, &a);
    peers_add(p, &b);
    uint32_t unlogged = 99;
    int64_t t0 = 1000000;
    assert_true(peers_refusal_log(p, &a, t0, 60000, &unlogged));
    assert_int_equal(unlogged, 0);
    for (int i = 1; i <= 5; i++)
        assert_false(peers_refusal_log(p, &a, t0 + i * 1000, 60000, &unlogged));
    /* Another address has its own minute. */
    assert_true(peers_refusal_log(p, &b, t0 + 5000, 60000, &unlogged));
    assert_false(peers_refusal_log(p, &a, t0 + 59999, 60000, &unlogged));
    assert_true(peers_refusal_log(p, &a, t0 + 60000, 60000, &unlogged));
    assert_int_equal(unlogged, 6);
    assert_false(peers_refusal_log(p, &a, t0 + 60001, 60000, &unlogged));
    /* An address with nothing counted has nothing to remember it by. */
    netaddr c = addr("192.0.2.3");
    assert_true(peers_refusal_log(p, &c, t0, 60000, &unlogged));
    assert_true(peers_refusal_log(p, &c, t0 + 1, 60000, &unlogged));
    assert_int_equal(peers_size(p), 2);
    peers_destroy(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_per_address_and_frees_at_zero),
        cmocka_unit_test(test_ipv4_mapped_counts_as_ipv4),
        cmocka_unit_test(test_crowd_of_addresses_comes_and_goes),
        cmocka_unit_test(test_refusals_logged_once_a_minute_per_address),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
