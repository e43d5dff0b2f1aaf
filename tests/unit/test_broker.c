/* test_broker.c -- unit tests for the pure parts of core/broker.c: the
 * --redis address forms and --node-id. (What the broker does with Redis
 * is tested against a real redis-server: tests/integration/cluster*.) */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "broker.h"

static broker_url parse_ok(const char *s) {
    broker_url u;
    char err[256] = "";
    assert_int_equal(broker_parse_url(s, &u, err, sizeof err), 0);
    return u;
}

static void parse_fails(const char *s, const char *why) {
    broker_url u;
    char err[256] = "";
    assert_int_equal(broker_parse_url(s, &u, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, why));
}

static void test_url_host_and_port(void **state) {
    broker_url u = parse_ok("redis://127.0.0.1:6390");
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6390);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.password, "");
    assert_string_equal(u.path, "");
    u = parse_ok("redis://cache.internal");
    assert_string_equal(u.host, "cache.internal");
    assert_int_equal(u.port, 6379);
    u = parse_ok("redis://[::1]:7000/");
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 7000);
}

static void test_url_password_and_db(void **state) {
    broker_url u = parse_ok("redis://:s3cr:et@10.0.0.5:6380/3");
    assert_string_equal(u.password, "s3cr:et");
    assert_string_equal(u.host, "10.0.0.5");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 3);
}

static void test_url_unix_socket(void **state) {
    broker_url u = parse_ok("/run/redis/redis.sock");
    assert_string_equal(u.path, "/run/redis/redis.sock");
    assert_string_equal(u.host, "");
    u = parse_ok("unix:///tmp/r.sock");
    assert_string_equal(u.path, "/tmp/r.sock");
}

static void test_url_refusals(void **state) {
    parse_fails("ftp://x", "expected redis://");
    parse_fails("redis://", "no host");
    parse_fails("redis://h:0", "port");
    parse_fails("redis://h:99999", "port");
    parse_fails("redis://h:12x", "port");
    parse_fails("redis://h/db", "database");
    parse_fails("redis://user:pw@h", "only a password");
    parse_fails("redis://[::1", "brackets");
    parse_fails("unix://", "unix socket");
}

static void test_node_ids(void **state) {
    assert_true(broker_valid_node_id("n1"));
    assert_true(broker_valid_node_id("web-3.eu_west"));
    assert_false(broker_valid_node_id(""));
    assert_false(broker_valid_node_id("has space"));
    assert_false(broker_valid_node_id("a:b"));
    char long_id[66];
    memset(long_id, 'n', 65);
    long_id[65] = '\0';
    assert_false(broker_valid_node_id(long_id));
    long_id[64] = '\0';
    assert_true(broker_valid_node_id(long_id));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_host_and_port),
        cmocka_unit_test(test_url_password_and_db),
        cmocka_unit_test(test_url_unix_socket),
        cmocka_unit_test(test_url_refusals),
        cmocka_unit_test(test_node_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
