/* test_netaddr.c -- unit tests for core/netaddr.c: addresses, CIDR lists,
 * and the client a trusted proxy's X-Forwarded-For or Forwarded names,
 * with the headers a client would write to pass for someone else. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "http.h"
#include "netaddr.h"

static netaddr addr(const char *s) {
    netaddr a;
    if (netaddr_parse(s, strlen(s), &a) < 0) fail_msg("not an address: %s", s);
    return a;
}

static const char *text(const netaddr *a, char *buf) {
    return netaddr_format(a, buf);
}

static void test_parse_and_format_both_families(void **state) {
    char buf[NETADDR_TEXT];
    netaddr a = addr("192.0.2.1");
    assert_true(netaddr_is_v4(&a));
    assert_string_equal(text(&a, buf), "192.0.2.1");
    a = addr("2001:DB8::1");
    assert_false(netaddr_is_v4(&a));
    assert_string_equal(text(&a, buf), "2001:db8::1");
    a = addr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
    assert_string_equal(text(&a, buf),
                        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
}

static void test_ipv4_mapped_ipv6_is_the_ipv4_address(void **state) {
    char buf[NETADDR_TEXT];
    netaddr m = addr("::ffff:198.51.100.7"), v4 = addr("198.51.100.7");
    assert_true(netaddr_equal(&m, &v4));
    assert_true(netaddr_is_v4(&m));
    assert_string_equal(text(&m, buf), "198.51.100.7");

    struct sockaddr_in6 s6;
    memset(&s6, 0, sizeof s6);
    s6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::ffff:198.51.100.7", &s6.sin6_addr);
    netaddr k;
    assert_int_equal(netaddr_from_sockaddr((struct sockaddr *)&s6, &k), 0);
    assert_true(netaddr_equal(&k, &v4));
    struct sockaddr_in s4;
    memset(&s4, 0, sizeof s4);
    s4.sin_family = AF_INET;
    inet_pton(AF_INET, "198.51.100.7", &s4.sin_addr);
    assert_int_equal(netaddr_from_sockaddr((struct sockaddr *)&s4, &k), 0);
    assert_true(netaddr_equal(&k, &v4));
    struct sockaddr un = {.sa_family = AF_UNIX};
    assert_int_equal(netaddr_from_sockaddr(&un, &k), -EAFNOSUPPORT);
}

static void test_parse_refuses_what_is_not_an_address(void **state) {
    static const char *const bad[] = {
        "",
        "1.2.3",
        "1.2.3.4.5",
        "256.1.1.1",
        "1.2.3.4 ",
        " 1.2.3.4",
        "[::1]",
        "fe80::1%eth0",
        "1.2.3.4:80",
        "localhost",
        "::1::2",
        "1.2.3.-4",
        "unknown",
        "_gazonk",
        "0x7f.0.0.1",
        "1.2.3.4/32",
        "12345678901234567890123456789012345678901234567890.1",
    };
    netaddr a;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (netaddr_parse(bad[i], strlen(bad[i]), &a) == 0)
            fail_msg("'%s' was taken for an address", bad[i]);
    /* Only the n bytes given are read. */
    assert_int_equal(netaddr_parse("10.0.0.1junk", 8, &a), 0);
}

static netaddr_list list(const char *s) {
    netaddr_list l;
    char err[200];
    if (netaddr_list_parse(s, &l, err, sizeof err) < 0)
        fail_msg("%s: %s", s, err);
    return l;
}

static int in(const netaddr_list *l, const char *s) {
    netaddr a = addr(s);
    return netaddr_list_match(l, &a);
}

static void test_list_matches_networks_of_both_families(void **state) {
    netaddr_list l = list("127.0.0.1/32, 10.0.0.0/8,::1/128 ,192.168.0.0/23");
    assert_int_equal(l.n, 4);
    assert_true(in(&l, "127.0.0.1"));
    assert_false(in(&l, "127.0.0.2"));
    assert_true(in(&l, "10.0.0.0"));
    assert_true(in(&l, "10.255.255.255"));
    assert_true(in(&l, "::ffff:10.1.2.3"));
    assert_false(in(&l, "11.0.0.0"));
    assert_false(in(&l, "9.255.255.255"));
    assert_true(in(&l, "::1"));
    assert_false(in(&l, "::2"));
    assert_true(in(&l, "192.168.1.200"));
    assert_false(in(&l, "192.168.2.1"));
    /* 10.0.0.0 in IPv6 space is another address. */
    assert_false(in(&l, "::a00:0"));
    netaddr_list_free(&l);

    l = list("2001:db8::/32,0.0.0.0/0");
    assert_true(in(&l, "2001:db8:ffff::1"));
    assert_false(in(&l, "2001:db9::1"));
    assert_true(in(&l, "203.0.113.1"));
    assert_false(in(&l, "::1"));
    netaddr_list_free(&l);

    /* An address alone is a network of one; bits past the prefix are
     * ignored. */
    l = list("198.51.100.7,10.1.2.3/8");
    assert_true(in(&l, "198.51.100.7"));
    assert_false(in(&l, "198.51.100.8"));
    assert_true(in(&l, "10.9.9.9"));
    netaddr_list_free(&l);

    l = list("::/0");
    assert_true(in(&l, "2001:db8::1"));
    assert_true(in(&l, "192.0.2.1"));
    netaddr_list_free(&l);
}

static void test_list_errors_name_the_entry(void **state) {
    static const char *const bad[][2] = {
        {"10.0.0.0/33", "'10.0.0.0/33'"},
        {"::/129", "'::/129'"},
        {"10.0.0.0/", "'10.0.0.0/'"},
        {"10.0.0.0/8x", "'10.0.0.0/8x'"},
        {"10.0.0.0/-1", "'10.0.0.0/-1'"},
        {"1.2.3.4,localhost", "'localhost'"},
        {"", "empty entry"},
        {"127.0.0.1,,::1", "empty entry"},
        {"127.0.0.1,", "empty entry"},
        {"10.0.0.0/0008", "'10.0.0.0/0008'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        netaddr_list l;
        char err[200];
        if (netaddr_list_parse(bad[i][0], &l, err, sizeof err) == 0)
            fail_msg("'%s' was accepted", bad[i][0]);
        if (!strstr(err, bad[i][1]))
            fail_msg("error for '%s' is '%s'", bad[i][0], err);
        assert_null(l.v);
        assert_int_equal(l.n, 0);
    }
}

/* The client a request with these header lines names, when it comes from
 * the trusted peer 10.0.0.1 (trusted: 10.0.0.0/8 and ::1): its text, or
 * "peer" when the headers named nobody. */
static const char *client(const char *headers, char *buf) {
    char head[2048];
    snprintf(head, sizeof head, "GET /ws HTTP/1.1\r\nHost: x\r\n%s\r\n",
             headers);
    http_req r;
    if (http_parse(&r, head, strlen(head)) < 0) fail_msg("head: %s", head);
    netaddr_list l = list("10.0.0.0/8,::1");
    netaddr peer = addr("10.0.0.1"), c = peer;
    int named = netaddr_forwarded_client(&r, &l, &c);
    netaddr_list_free(&l);
    if (!named) {
        assert_true(netaddr_equal(&c, &peer));
        return "peer";
    }
    return netaddr_format(&c, buf);
}

#define assert_client(headers, want)                                           \
    do {                                                                       \
        char b_[NETADDR_TEXT];                                                 \
        assert_string_equal(client(headers, b_), want);                        \
    } while (0)

static void test_xff_rightmost_untrusted_is_the_client(void **state) {
    assert_client("X-Forwarded-For: 198.51.100.1\r\n", "198.51.100.1");
    /* What the client wrote to the left of its real address is ignored. */
    assert_client("X-Forwarded-For: 203.0.113.9, 198.51.100.1\r\n",
                  "198.51.100.1");
    /* Trusted proxies on the right are skipped. */
    assert_client("X-Forwarded-For: 203.0.113.9,198.51.100.1, 10.2.3.4,"
                  "::1\r\n",
                  "198.51.100.1");
    /* Every one trusted: the leftmost. */
    assert_client("X-Forwarded-For: 10.0.0.7, 10.0.0.8\r\n", "10.0.0.7");
    /* Several header lines are one list, in order. */
    assert_client("X-Forwarded-For: 203.0.113.9\r\n"
                  "X-Forwarded-For: 198.51.100.1\r\n",
                  "198.51.100.1");
    assert_client("X-Forwarded-For: 198.51.100.1\r\n"
                  "x-forwarded-for: 10.0.0.9\r\n",
                  "198.51.100.1");
    /* Empty entries are skipped. */
    assert_client("X-Forwarded-For: ,198.51.100.1,, \r\n", "198.51.100.1");
}

static void test_xff_forms_proxies_write(void **state) {
    assert_client("X-Forwarded-For: 198.51.100.1:4711\r\n", "198.51.100.1");
    assert_client("X-Forwarded-For: 2001:db8::1\r\n", "2001:db8::1");
    assert_client("X-Forwarded-For: [2001:db8::1]\r\n", "2001:db8::1");
    assert_client("X-Forwarded-For: [2001:db8::1]:443\r\n", "2001:db8::1");
    assert_client("X-Forwarded-For: ::ffff:198.51.100.1\r\n", "198.51.100.1");
}

static void test_xff_garbage_breaks_the_chain(void **state) {
    /* Nobody named: the peer stays the client. */
    assert_client("X-Forwarded-For: 198.51.100.1, unknown\r\n", "peer");
    assert_client("X-Forwarded-For: 198.51.100.7, junk, 10.0.0.2\r\n",
                  "10.0.0.2");
    assert_client("X-Forwarded-For: unknown, 198.51.100.1\r\n", "198.51.100.1");
    static const char *const bad[] = {
        "X-Forwarded-For: [2001:db8::1\r\n",
        "X-Forwarded-For: [2001:db8::1]x\r\n",
        "X-Forwarded-For: [198.51.100.1]\r\n",
        "X-Forwarded-For: 198.51.100.1:\r\n",
        "X-Forwarded-For: 198.51.100.1:123456\r\n",
        "X-Forwarded-For: 198.51.100.1:http\r\n",
        "X-Forwarded-For: host:80\r\n",
        "X-Forwarded-For: \r\n",
        "X-Forwarded-For: ,,,\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char b[NETADDR_TEXT];
        if (strcmp(client(bad[i], b), "peer") != 0)
            fail_msg("%s named %s", bad[i], b);
    }
}

static void test_forwarded_for_rfc7239(void **state) {
    assert_client("Forwarded: for=198.51.100.1\r\n", "198.51.100.1");
    assert_client("Forwarded: For=\"[2001:db8:cafe::17]:4711\"\r\n",
                  "2001:db8:cafe::17");
    /* RFC 7239's own example, behind two proxies. */
    assert_client("Forwarded: for=192.0.2.43, for=198.51.100.17;"
                  "by=203.0.113.60;proto=http;host=example.com\r\n",
                  "198.51.100.17");
    assert_client("Forwarded: proto=https; for=\"198.51.100.1:80\"\r\n",
                  "198.51.100.1");
    assert_client("Forwarded: for=198.51.100.1, for=10.0.0.3\r\n",
                  "198.51.100.1");
    assert_client("Forwarded: for=\"\\[::1\\]\"\r\n", "::1");
    /* Obfuscated or unknown clients, broken elements: nobody. */
    static const char *const nobody[] = {
        "Forwarded: for=unknown\r\n",
        "Forwarded: for=\"_gazonk\"\r\n",
        "Forwarded: proto=https\r\n",
        "Forwarded: for=\"198.51.100.1\r\n",
        "Forwarded: for=198.51.100.1;junk\r\n",
        "Forwarded: for=198.51.100.1 x\r\n",
        "Forwarded: =198.51.100.1\r\n",
        "Forwarded: for=198.51.100.1, for=\r\n",
        "Forwarded: "
        "for=\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\r\n",
    };
    for (size_t i = 0; i < sizeof nobody / sizeof *nobody; i++) {
        char b[NETADDR_TEXT];
        if (strcmp(client(nobody[i], b), "peer") != 0)
            fail_msg("%s named %s", nobody[i], b);
    }
    /* A for= in a quoted value of another parameter is not one. */
    assert_client("Forwarded: host=\"for=203.0.113.1\";for=198.51.100.1\r\n",
                  "198.51.100.1");
}

static void test_xff_wins_over_forwarded_and_none_names_nobody(void **state) {
    assert_client("Forwarded: for=203.0.113.1\r\n"
                  "X-Forwarded-For: 198.51.100.1\r\n",
                  "198.51.100.1");
    assert_client("X-Real-IP: 198.51.100.1\r\n", "peer");
    assert_client("", "peer");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_format_both_families),
        cmocka_unit_test(test_ipv4_mapped_ipv6_is_the_ipv4_address),
        cmocka_unit_test(test_parse_refuses_what_is_not_an_address),
        cmocka_unit_test(test_list_matches_networks_of_both_families),
        cmocka_unit_test(test_list_errors_name_the_entry),
        cmocka_unit_test(test_xff_rightmost_untrusted_is_the_client),
        cmocka_unit_test(test_xff_forms_proxies_write),
        cmocka_unit_test(test_xff_garbage_breaks_the_chain),
        cmocka_unit_test(test_forwarded_for_rfc7239),
        cmocka_unit_test(test_xff_wins_over_forwarded_and_none_names_nobody),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
