/* test_tls.c -- unit tests for core/tls.c, on real sockets.
 *
 * Certificates are made at test time with the openssl command into a
 * temporary directory. A server session (tls_conn) on one end of a
 * socketpair talks to an OpenSSL client on the other, both non-blocking,
 * driven by hand: the handshake, bytes both ways, bytes kept while the
 * socket is full, and what a reload serves to the next client. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "tls.h"

static char dir[64];
static char cert1[128], key1[128], cert2[128], key2[128], cert[128], key[128];

static void assert_contains(const char *s, const char *part) {
    if (!strstr(s, part)) fail_msg("\"%s\" does not say \"%s\"", s, part);
}

static void make_cert(const char *c, const char *k, const char *cn) {
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=%s -days 1 "
             "-keyout %s -out %s 2>/dev/null",
             cn, k, c);
    assert_int_equal(system(cmd), 0);
}

static void copy_file(const char *from, const char *to) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "cp %s %s", from, to);
    assert_int_equal(system(cmd), 0);
}

static int setup(void **state) {
    signal(SIGPIPE, SIG_IGN);
    snprintf(dir, sizeof dir, "/tmp/luahub-tls-XXXXXX");
    if (!mkdtemp(dir)) return -1;
    snprintf(cert1, sizeof cert1, "%s/one.crt", dir);
    snprintf(key1, sizeof key1, "%s/one.key", dir);
    snprintf(cert2, sizeof cert2, "%s/two.crt", dir);
    snprintf(key2, sizeof key2, "%s/two.key", dir);
    snprintf(cert, sizeof cert, "%s/server.crt", dir);
    snprintf(key, sizeof key, "%s/server.key", dir);
    make_cert(cert1, key1, "one.test");
    make_cert(cert2, key2, "two.test");
    return 0;
}

static int teardown(void **state) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* The server's files are one.crt/one.key, loaded. */
static tls_t *serve_one(void) {
    copy_file(cert1, cert);
    copy_file(key1, key);
    char err[256] = "";
    tls_t *t = tls_create(cert, key, err, sizeof err);
    if (!t) fail_msg("%s", err);
    return t;
}

typedef struct pair {
    int sfd, cfd;
    tls_conn *server;
    SSL_CTX *cctx;
    SSL *client;
} pair;

static void pair_open(pair *p, tls_t *t) {
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv),
                     0);
    p->sfd = sv[0];
    p->cfd = sv[1];
    p->server = tls_conn_new(t, p->sfd);
    assert_non_null(p->server);
    p->cctx = SSL_CTX_new(TLS_client_method());
    p->client = SSL_new(p->cctx);
    SSL_set_fd(p->client, p->cfd);
    SSL_set_connect_state(p->client);
}

static void pair_close(pair *p) {
    tls_conn_free(p->server);
    SSL_free(p->client);
    SSL_CTX_free(p->cctx);
    close(p->sfd);
    close(p->cfd);
}

/* Both sides take turns until the handshake is done on both. Returns 0,
 * or the server's TLS_ERR. */
static int pair_handshake(pair *p) {
    for (int i = 0; i < 100; i++) {
        int s = tls_handshake(p->server);
        if (s == TLS_ERR) return TLS_ERR;
        int c = SSL_do_handshake(p->client);
        if (s == 0 && c == 1) return 0;
    }
    fail_msg("the handshake did not finish");
    return TLS_ERR;
}

/* The CN of the certificate the client was shown. */
static void peer_cn(pair *p, char *out, size_t cap) {
    X509 *x = SSL_get1_peer_certificate(p->client);
    assert_non_null(x);
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, out,
                              (int)cap);
    X509_free(x);
}

static void test_tls_handshake_and_bytes_both_ways(void **state) {
    tls_t *t = serve_one();
    pair p;
    pair_open(&p, t);
    assert_int_equal(pair_handshake(&p), 0);
    char cn[64];
    peer_cn(&p, cn, sizeof cn);
    assert_string_equal(cn, "one.test");
    /* TLS 1.2 at least, and the version both speak (1.3) is taken. */
    assert_int_equal(SSL_version(p.client), TLS1_3_VERSION);

    assert_int_equal(SSL_write(p.client, "hello", 5), 5);
    char buf[64];
    assert_int_equal(tls_read(p.server, buf, sizeof buf), 5);
    assert_memory_equal(buf, "hello", 5);
    assert_int_equal(tls_read(p.server, buf, sizeof buf), TLS_WANT_READ);
    assert_int_equal(tls_write(p.server, "world", 5), 5);
    assert_int_equal(SSL_read(p.client, buf, sizeof buf), 5);
    assert_memory_equal(buf, "world", 5);

    /* Two records in at once, read in small pieces: what OpenSSL holds
     * is announced by tls_pending, not by the socket. */
    assert_int_equal(SSL_write(p.client, "0123456789", 10), 10);
    assert_int_equal(tls_read(p.server, buf, 4), 4);
    assert_true(tls_pending(p.server));
    assert_int_equal(tls_read(p.server, buf, sizeof buf), 6);
    assert_memory_equal(buf, "456789", 6);
    assert_false(tls_pending(p.server));

    /* The client closes: read says so. */
    SSL_shutdown(p.client);
    assert_int_equal(tls_read(p.server, buf, sizeof buf), 0);
    pair_close(&p);
    tls_destroy(t);
}

/* A full socket: the record is kept, the caller's buffer is free at once,
 * and tls_flush writes exactly those bytes once the client reads. */
static void test_tls_write_keeps_bytes_while_the_socket_is_full(void **state) {
    tls_t *t = serve_one();
    pair p;
    pair_open(&p, t);
    assert_int_equal(pair_handshake(&p), 0);
    static unsigned char out[TLS_RECORD], got[TLS_RECORD];
    size_t sent = 0;
    int blocked = 0;
    for (int i = 0; i < 1000 && !blocked; i++) {
        memset(out, 'a' + i % 26, sizeof out);
        long n = tls_write(p.server, out, sizeof out);
        assert_int_equal(n, TLS_RECORD);
        sent += (size_t)n;
        blocked = tls_blocked(p.server);
        /* The buffer is the caller's again: scribble over it. */
        memset(out, '!', sizeof out);
    }
    assert_true(blocked);
    assert_int_equal(tls_write(p.server, out, 1), TLS_WANT_WRITE);
    size_t recvd = 0;
    int i = 0;
    while (recvd < sent) {
        if (tls_blocked(p.server)) {
            int rc = tls_flush(p.server);
            assert_true(rc == 0 || rc == TLS_WANT_WRITE);
        }
        int n = SSL_read(p.client, got, sizeof got);
        if (n <= 0) continue;
        for (int k = 0; k < n; k++) {
            size_t at = recvd + (size_t)k;
            if (got[k] != 'a' + (int)(at / TLS_RECORD) % 26)
                fail_msg("byte %zu is '%c'", at, got[k]);
        }
        recvd += (size_t)n;
        if (++i > 100000) fail_msg("stuck at %zu of %zu", recvd, sent);
    }
    assert_false(tls_blocked(p.server));
    pair_close(&p);
    tls_destroy(t);
}

static void test_tls_missing_or_mismatched_files_are_said(void **state) {
    char err[256] = "";
    char missing[160];
    snprintf(missing, sizeof missing, "%s/nope.key", dir);
    assert_null(tls_create(cert1, missing, err, sizeof err));
    assert_contains(err, "--tls-key");
    assert_contains(err, "nope.key");
    assert_contains(err, "No such file");
    assert_null(tls_create(key1, key1, err, sizeof err));
    assert_contains(err, "--tls-cert");
    assert_contains(err, "not a PEM certificate");
    assert_null(tls_create(cert1, key2, err, sizeof err));
    assert_contains(err, "does not match");
}

static void
test_tls_reload_serves_the_new_certificate_or_keeps_the_old(void **state) {
    char err[256] = "", cn[64];
    tls_t *t = serve_one();
    pair before;
    pair_open(&before, t);
    assert_int_equal(pair_handshake(&before), 0);

    copy_file(cert2, cert);
    copy_file(key2, key);
    assert_int_equal(tls_reload(t, err, sizeof err), 0);
    pair p;
    pair_open(&p, t);
    assert_int_equal(pair_handshake(&p), 0);
    peer_cn(&p, cn, sizeof cn);
    assert_string_equal(cn, "two.test");
    pair_close(&p);

    /* The session begun before the reload goes on. */
    assert_int_equal(SSL_write(before.client, "still", 5), 5);
    char buf[16];
    assert_int_equal(tls_read(before.server, buf, sizeof buf), 5);
    pair_close(&before);

    /* A broken certificate: the reload fails, saying why, and the
     * certificate loaded last is served on. */
    FILE *f = fopen(cert, "w");
    assert_non_null(f);
    fputs("-----BEGIN CERTIFICATE-----\nnot base64\n", f);
    fclose(f);
    assert_int_equal(tls_reload(t, err, sizeof err), -1);
    assert_contains(err, "--tls-cert");
    pair_open(&p, t);
    assert_int_equal(pair_handshake(&p), 0);
    peer_cn(&p, cn, sizeof cn);
    assert_string_equal(cn, "two.test");
    pair_close(&p);
    tls_destroy(t);
}

/* A TLS 1.2 client that offers only a suite without forward secrecy
 * (RSA key exchange, CBC) gets no session; offering a modern one as well,
 * it gets that one. */
static void test_tls_refuses_weak_ciphers(void **state) {
    tls_t *t = serve_one();
    pair p;
    pair_open(&p, t);
    SSL_set_max_proto_version(p.client, TLS1_2_VERSION);
    assert_int_equal(SSL_set_cipher_list(p.client, "AES128-SHA"), 1);
    assert_int_equal(pair_handshake(&p), TLS_ERR);
    pair_close(&p);

    pair_open(&p, t);
    SSL_set_max_proto_version(p.client, TLS1_2_VERSION);
    SSL_set_cipher_list(p.client, "AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256");
    assert_int_equal(pair_handshake(&p), 0);
    assert_string_equal(SSL_get_cipher_name(p.client),
                        "ECDHE-RSA-AES128-GCM-SHA256");
    pair_close(&p);
    tls_destroy(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_handshake_and_bytes_both_ways),
        cmocka_unit_test(test_tls_write_keeps_bytes_while_the_socket_is_full),
        cmocka_unit_test(test_tls_missing_or_mismatched_files_are_said),
        cmocka_unit_test(
            test_tls_reload_serves_the_new_certificate_or_keeps_the_old),
        cmocka_unit_test(test_tls_refuses_weak_ciphers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
