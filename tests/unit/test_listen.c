/* test_listen.c -- unit tests for core/listen.c, on real sockets.
 *
 * --host means exactly that address: the tests bind port 0 (the kernel's
 * pick) and ask the kernel what was bound, and check that each failure a
 * person can meet (port taken, an address of another machine, a name that
 * does not resolve) comes back as a line naming it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "listen.h"

static void assert_contains(const char *s, const char *part) {
    if (!strstr(s, part)) fail_msg("\"%s\" does not say \"%s\"", s, part);
}

/* What fd is bound to. */
static struct sockaddr_storage bound(int fd) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    memset(&ss, 0, sizeof ss);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &sl), 0);
    return ss;
}

static void test_listen_loopback_binds_loopback_only(void **state) {
    listen_set ls;
    char err[256] = "";
    assert_int_equal(listen_open(&ls, "127.0.0.1", 0, 0, err, sizeof err), 0);
    assert_int_equal(ls.count, 1);
    assert_true(ls.port > 0 && ls.port < 65536);
    struct sockaddr_storage ss = bound(ls.fds[0]);
    assert_int_equal(ss.ss_family, AF_INET);
    const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
    assert_int_equal(ntohl(in->sin_addr.s_addr), INADDR_LOOPBACK);
    assert_int_equal(ntohs(in->sin_port), ls.port);
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%d", ls.port);
    assert_string_equal(ls.addresses, want);
    listen_close(&ls);
    assert_int_equal(ls.count, 0);
}

static void test_listen_socket_accepts_connections(void **state) {
    listen_set ls;
    char err[256] = "";
    assert_int_equal(listen_open(&ls, "127.0.0.1", 0, 0, err, sizeof err), 0);
    int fd = ls.fds[0];
    /* Non-blocking and close-on-exec, as the header says. */
    assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)ls.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(c, (struct sockaddr *)&sa, sizeof sa), 0);
    int a = -1;
    for (int i = 0; i < 100 && a < 0; i++) {
        a = accept(fd, NULL, NULL);
        if (a < 0) {
            assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
            usleep(10000);
        }
    }
    assert_true(a >= 0);
    close(a);
    close(c);
    listen_close(&ls);
}

static void test_listen_port_in_use_is_said(void **state) {
    listen_set ls, again;
    char err[256] = "";
    assert_int_equal(listen_open(&ls, "127.0.0.1", 0, 0, err, sizeof err), 0);
    memset(&again, 0x5a, sizeof again);
    assert_int_equal(
        listen_open(&again, "127.0.0.1", ls.port, 0, err, sizeof err),
        -EADDRINUSE);
    assert_contains(err, "is in use");
    char port[16];
    snprintf(port, sizeof port, "%d", ls.port);
    assert_contains(err, port);
    assert_contains(err, "127.0.0.1");
    assert_int_equal(again.count, 0);
    /* Closed, the port is free again. */
    int port_was = ls.port;
    listen_close(&ls);
    assert_int_equal(
        listen_open(&again, "127.0.0.1", port_was, 0, err, sizeof err), 0);
    assert_int_equal(again.port, port_was);
    listen_close(&again);
}

/* --reuse-port: two nodes on one port, each asking for it; one that does
 * not ask is still refused. */
static void test_listen_reuse_port_shares_a_port(void **state) {
    listen_set a, b, c;
    char err[256] = "";
    assert_int_equal(
        listen_open(&a, "127.0.0.1", 0, LISTEN_REUSE_PORT, err, sizeof err), 0);
    assert_int_equal(listen_open(&b, "127.0.0.1", a.port, LISTEN_REUSE_PORT,
                                 err, sizeof err),
                     0);
    assert_int_equal(b.port, a.port);
    assert_int_equal(listen_open(&c, "127.0.0.1", a.port, 0, err, sizeof err),
                     -EADDRINUSE);
    assert_contains(err, "is in use");
    listen_close(&a);
    listen_close(&b);
}

static void test_listen_address_of_another_machine_is_said(void **state) {
    listen_set ls;
    char err[256] = "";
    /* TEST-NET-1 (RFC 5737): never an address of this machine. */
    assert_int_equal(listen_open(&ls, "192.0.2.1", 0, 0, err, sizeof err),
                     -EADDRNOTAVAIL);
    assert_contains(err, "not an address of this machine");
    assert_contains(err, "192.0.2.1");
    assert_int_equal(ls.count, 0);
}

static void test_listen_unresolvable_name_is_said(void **state) {
    listen_set ls;
    char err[256] = "";
    assert_int_equal(
        listen_open(&ls, "nosuchhost.invalid", 0, 0, err, sizeof err),
        -EADDRNOTAVAIL);
    assert_contains(err, "cannot resolve");
    assert_contains(err, "nosuchhost.invalid");
    assert_int_equal(ls.count, 0);
}

/* Can this machine bind ::1 at all? */
static int have_ipv6_loopback(void) {
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6};
    sa.sin6_addr = in6addr_loopback;
    int ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

static void test_listen_ipv6_loopback_binds_ipv6_only(void **state) {
    if (!have_ipv6_loopback()) skip();
    listen_set ls;
    char err[256] = "";
    assert_int_equal(listen_open(&ls, "::1", 0, 0, err, sizeof err), 0);
    assert_int_equal(ls.count, 1);
    struct sockaddr_storage ss = bound(ls.fds[0]);
    assert_int_equal(ss.ss_family, AF_INET6);
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
    assert_true(IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr));
    assert_int_equal(ntohs(in6->sin6_port), ls.port);
    int only = 0;
    socklen_t ol = sizeof only;
    assert_int_equal(
        getsockopt(ls.fds[0], IPPROTO_IPV6, IPV6_V6ONLY, &only, &ol), 0);
    assert_int_equal(only, 1);
    char want[64];
    snprintf(want, sizeof want, "[::1]:%d", ls.port);
    assert_string_equal(ls.addresses, want);
    /* The same port on IPv4 loopback is not taken by it. */
    listen_set v4;
    assert_int_equal(listen_open(&v4, "127.0.0.1", ls.port, 0, err, sizeof err),
                     0);
    listen_close(&v4);
    listen_close(&ls);
}

static void test_listen_wildcard_binds_every_ipv4_interface(void **state) {
    listen_set ls;
    char err[256] = "";
    assert_int_equal(listen_open(&ls, "0.0.0.0", 0, 0, err, sizeof err), 0);
    assert_int_equal(ls.count, 1);
    struct sockaddr_storage ss = bound(ls.fds[0]);
    assert_int_equal(ss.ss_family, AF_INET);
    const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
    assert_int_equal(ntohl(in->sin_addr.s_addr), INADDR_ANY);
    assert_int_equal(ntohs(in->sin_port), ls.port);
    listen_close(&ls);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listen_loopback_binds_loopback_only),
        cmocka_unit_test(test_listen_socket_accepts_connections),
        cmocka_unit_test(test_listen_port_in_use_is_said),
        cmocka_unit_test(test_listen_reuse_port_shares_a_port),
        cmocka_unit_test(test_listen_address_of_another_machine_is_said),
        cmocka_unit_test(test_listen_unresolvable_name_is_said),
        cmocka_unit_test(test_listen_ipv6_loopback_binds_ipv6_only),
        cmocka_unit_test(test_listen_wildcard_binds_every_ipv4_interface),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
