/* test_pmd.c -- unit tests for core/pmd.c (permessage-deflate).
 *
 * The offers are the ones browsers and libraries send (Chrome, Firefox,
 * Node's ws) and the ones a stranger might; the compressed data is made
 * with zlib itself, as a client would make it: raw deflate, flushed with
 * Z_SYNC_FLUSH, the trailing 00 00 ff ff cut off. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <cmocka.h>

#include "pmd.h"

#define CHUNK 16384

/* A client's deflater: context kept between messages unless reset. */
static void client_init(z_stream *s) {
    memset(s, 0, sizeof *s);
    assert_int_equal(deflateInit2(s, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY),
                     Z_OK);
}

/* Compresses one message as a client does; returns a malloc'd payload. */
static unsigned char *client_deflate(z_stream *s, const void *in, size_t n,
                                     size_t *out_len) {
    size_t cap = deflateBound(s, n) + 64;
    unsigned char *out = malloc(cap);
    s->next_in = (unsigned char *)in;
    s->avail_in = (uInt)n;
    s->next_out = out;
    s->avail_out = (uInt)cap;
    assert_int_equal(deflate(s, Z_SYNC_FLUSH), Z_OK);
    assert_int_equal(s->avail_in, 0);
    size_t got = cap - s->avail_out;
    assert_memory_equal(out + got - 4, "\x00\x00\xff\xff", 4);
    *out_len = got - 4;
    return out;
}

/* Inflates a whole message fed in pieces of `piece` bytes; returns what
 * came out (malloc'd), or NULL with *err set. */
static unsigned char *inflate_all(pmd_inflater *z, const unsigned char *in,
                                  size_t n, size_t piece, uint64_t limit,
                                  int no_context, size_t *out_len, long *err) {
    unsigned char buf[CHUNK];
    size_t cap = 1024, len = 0;
    unsigned char *out = malloc(cap);
    *err = 0;
    pmd_inflate_begin(z, limit, no_context);
    size_t off = 0;
    do {
        size_t k = n - off < piece ? n - off : piece;
        pmd_inflate_input(z, in + off, k, off + k == n);
        off += k;
        long r;
        while ((r = pmd_inflate_next(z, buf, sizeof buf)) > 0) {
            assert_true((size_t)r <= sizeof buf);
            if (len + (size_t)r > cap) {
                cap = (len + (size_t)r) * 2;
                out = realloc(out, cap);
            }
            memcpy(out + len, buf, (size_t)r);
            len += (size_t)r;
        }
        if (r < 0) {
            *err = r;
            free(out);
            return NULL;
        }
    } while (off < n);
    *out_len = len;
    return out;
}

static void test_pmd_plain_offer_is_taken_without_server_context(void **st) {
    char resp[PMD_RESPONSE_MAX];
    const char *o = "permessage-deflate";
    assert_int_equal(pmd_negotiate(o, strlen(o), resp, sizeof resp), PMD_ON);
    assert_string_equal(resp, "permessage-deflate; server_no_context_takeover");
}

static void test_pmd_browser_offer_with_client_window_is_taken(void **st) {
    /* What Chrome and Firefox send. */
    char resp[PMD_RESPONSE_MAX];
    const char *o = "permessage-deflate; client_max_window_bits";
    assert_int_equal(pmd_negotiate(o, strlen(o), resp, sizeof resp), PMD_ON);
    assert_string_equal(resp, "permessage-deflate; server_no_context_takeover");
}

static void test_pmd_client_no_context_takeover_is_echoed(void **st) {
    char resp[PMD_RESPONSE_MAX];
    const char *o = "permessage-deflate;client_no_context_takeover ; "
                    "client_max_window_bits=\"10\"";
    assert_int_equal(pmd_negotiate(o, strlen(o), resp, sizeof resp),
                     PMD_ON | PMD_CLIENT_NO_CONTEXT);
    assert_string_equal(resp, "permessage-deflate; server_no_context_takeover; "
                              "client_no_context_takeover");
}

static void test_pmd_small_server_window_falls_back_to_next_offer(void **st) {
    char resp[PMD_RESPONSE_MAX];
    const char *o = "permessage-deflate; server_max_window_bits=10, "
                    "permessage-deflate; server_max_window_bits=15";
    assert_int_equal(pmd_negotiate(o, strlen(o), resp, sizeof resp), PMD_ON);
    const char *only = "permessage-deflate; server_max_window_bits=10";
    assert_int_equal(pmd_negotiate(only, strlen(only), resp, sizeof resp), 0);
}

static void test_pmd_other_extensions_are_passed_over(void **st) {
    char resp[PMD_RESPONSE_MAX];
    const char *o = "x-webkit-deflate-frame, permessage-deflate";
    assert_int_equal(pmd_negotiate(o, strlen(o), resp, sizeof resp), PMD_ON);
    const char *none = "x-webkit-deflate-frame; max_window_bits=15";
    assert_int_equal(pmd_negotiate(none, strlen(none), resp, sizeof resp), 0);
}

static void test_pmd_invalid_offers_are_declined(void **st) {
    char resp[PMD_RESPONSE_MAX];
    const char *bad[] = {
        "permessage-deflate; server_no_context_takeover; "
        "server_no_context_takeover",                       /* twice */
        "permessage-deflate; client_max_window_bits=16",    /* out of range */
        "permessage-deflate; client_max_window_bits=08",    /* leading zero */
        "permessage-deflate; server_max_window_bits",       /* needs a value */
        "permessage-deflate; client_no_context_takeover=1", /* takes none */
        "permessage-deflate; mystery",                      /* unknown */
        "permessage-deflate; client_max_window_bits=\"10",  /* open quote */
        "permessage-deflate; =10",                          /* no name */
        "permessage-deflate;; client_max_window_bits",      /* empty param */
        "permessage-deflate client_max_window_bits",        /* no ';' */
        ";permessage-deflate",                              /* no name */
        "",
        "   ",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(
            pmd_negotiate(bad[i], strlen(bad[i]), resp, sizeof resp), 0);
}

/* A message a fresh client deflated, inflated from pieces of `piece`
 * bytes: it must come back whole. */
static void check_round_trip(const void *msg, size_t len, size_t piece) {
    z_stream c;
    client_init(&c);
    size_t zn, n;
    long err;
    unsigned char *zd = client_deflate(&c, msg, len, &zn);
    assert_true(zn < len);
    pmd_inflater *z = pmd_inflater_create();
    unsigned char *out = inflate_all(z, zd, zn, piece, 65536, 0, &n, &err);
    assert_non_null(out);
    assert_int_equal(n, len);
    assert_memory_equal(out, msg, n);
    free(out);
    free(zd);
    pmd_inflater_destroy(z);
    deflateEnd(&c);
}

static void test_pmd_inflates_what_a_client_deflated(void **st) {
    char msg[3000];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = "hello luahub "[i % 13];
    check_round_trip(msg, sizeof msg, sizeof msg);
}

static void test_pmd_inflates_a_message_arriving_byte_by_byte(void **st) {
    const char *msg = "{\"type\":\"chat\",\"room_id\":\"lobby\",\"text\":"
                      "\"byte by byte, byte by byte, byte by byte\"}";
    check_round_trip(msg, strlen(msg), 1);
}

static void test_pmd_client_context_is_kept_between_messages(void **st) {
    /* The second message refers back into the first one's window. */
    z_stream c;
    client_init(&c);
    const char *m1 = "the quick brown fox jumps over the lazy dog, twice";
    const char *m2 = "the quick brown fox jumps over the lazy dog, thrice";
    size_t z1n, z2n, n;
    long err;
    unsigned char *z1 = client_deflate(&c, m1, strlen(m1), &z1n);
    unsigned char *z2 = client_deflate(&c, m2, strlen(m2), &z2n);
    assert_true(z2n < z1n);
    pmd_inflater *z = pmd_inflater_create();
    unsigned char *o1 = inflate_all(z, z1, z1n, z1n, 65536, 0, &n, &err);
    assert_non_null(o1);
    unsigned char *o2 = inflate_all(z, z2, z2n, z2n, 65536, 0, &n, &err);
    assert_non_null(o2);
    assert_int_equal(n, strlen(m2));
    assert_memory_equal(o2, m2, n);
    free(o1);
    free(o2);
    free(z1);
    free(z2);
    pmd_inflater_destroy(z);
    deflateEnd(&c);
}

static void test_pmd_deflate_bomb_stops_at_the_limit(void **st) {
    /* 64 MiB of zeros, compressed to some 64 KiB, as a client sends it. */
    z_stream c;
    client_init(&c);
    size_t cap = 1 << 20, zn = 0;
    unsigned char *zd = malloc(cap);
    unsigned char *zeros = calloc(1, 1 << 20);
    for (int i = 0; i < 64; i++) {
        c.next_in = zeros;
        c.avail_in = 1 << 20;
        do {
            c.next_out = zd + zn;
            c.avail_out = (uInt)(cap - zn);
            assert_int_equal(deflate(&c, i == 63 ? Z_SYNC_FLUSH : Z_NO_FLUSH),
                             Z_OK);
            zn = cap - c.avail_out;
        } while (c.avail_in);
    }
    assert_true(zn < 256 * 1024);
    zn -= 4;
    pmd_inflater *z = pmd_inflater_create();
    pmd_inflate_begin(z, 65536, 0);
    pmd_inflate_input(z, zd, zn, 1);
    unsigned char buf[CHUNK];
    size_t total = 0;
    long r;
    while ((r = pmd_inflate_next(z, buf, sizeof buf)) > 0)
        total += (size_t)r;
    assert_int_equal(r, PMD_ERR_TOO_BIG);
    /* Stopped within one buffer of the limit, never further. */
    assert_true(total <= 65536);
    assert_int_equal(pmd_inflate_next(z, buf, sizeof buf), PMD_ERR_DATA);
    /* A new message starts clean. */
    z_stream c2;
    client_init(&c2);
    size_t n2, n;
    long err;
    unsigned char *m = client_deflate(&c2, "after", 5, &n2);
    unsigned char *out = inflate_all(z, m, n2, n2, 65536, 1, &n, &err);
    assert_non_null(out);
    assert_memory_equal(out, "after", 5);
    free(out);
    free(m);
    deflateEnd(&c2);
    pmd_inflater_destroy(z);
    free(zeros);
    free(zd);
    deflateEnd(&c);
}

static void test_pmd_corrupt_data_is_an_error(void **st) {
    /* Block type 3 is reserved. */
    const unsigned char bad[] = {0xff, 0xff, 0xff, 0xff};
    pmd_inflater *z = pmd_inflater_create();
    size_t n;
    long err;
    assert_null(
        inflate_all(z, bad, sizeof bad, sizeof bad, 65536, 0, &n, &err));
    assert_int_equal(err, PMD_ERR_DATA);
    pmd_inflater_destroy(z);
}

static void test_pmd_final_block_then_next_message(void **st) {
    /* A client may end a message with a final block (BFINAL): the next
     * message is a new stream. */
    z_stream c;
    memset(&c, 0, sizeof c);
    assert_int_equal(
        deflateInit2(&c, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    unsigned char zd[256];
    c.next_in = (unsigned char *)"final";
    c.avail_in = 5;
    c.next_out = zd;
    c.avail_out = sizeof zd;
    assert_int_equal(deflate(&c, Z_FINISH), Z_STREAM_END);
    size_t zn = sizeof zd - c.avail_out, n;
    long err;
    pmd_inflater *z = pmd_inflater_create();
    unsigned char *o = inflate_all(z, zd, zn, zn, 65536, 0, &n, &err);
    assert_non_null(o);
    assert_int_equal(n, 5);
    assert_memory_equal(o, "final", 5);
    free(o);
    z_stream c2;
    client_init(&c2);
    size_t n2;
    unsigned char *m = client_deflate(&c2, "next", 4, &n2);
    o = inflate_all(z, m, n2, n2, 65536, 0, &n, &err);
    assert_non_null(o);
    assert_memory_equal(o, "next", 4);
    free(o);
    free(m);
    deflateEnd(&c2);
    deflateEnd(&c);
    pmd_inflater_destroy(z);
}

static void test_pmd_deflate_round_trips_without_context(void **st) {
    pmd_deflater *d = pmd_deflater_create();
    char msg[1024];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = "{\"type\":\"chat\",\"text\":\"hi\"}"[i % 27];
    unsigned char out[sizeof msg + 4];
    pmd_inflater *z = pmd_inflater_create();
    for (int round = 0; round < 2; round++) {
        /* Each deflated alone: a fresh inflater (another recipient) reads
         * the second as well as the first. */
        size_t zn =
            pmd_deflate(d, (unsigned char *)msg, sizeof msg, out, sizeof out);
        assert_true(zn > 0 && zn < sizeof msg);
        pmd_inflater *fresh = pmd_inflater_create();
        size_t n;
        long err;
        unsigned char *o = inflate_all(fresh, out, zn, zn, 65536, 0, &n, &err);
        assert_non_null(o);
        assert_int_equal(n, sizeof msg);
        assert_memory_equal(o, msg, n);
        free(o);
        pmd_inflater_destroy(fresh);
        o = inflate_all(z, out, zn, zn, 65536, 0, &n, &err);
        assert_non_null(o);
        assert_memory_equal(o, msg, n);
        free(o);
    }
    pmd_inflater_destroy(z);
    pmd_deflater_destroy(d);
}

static void test_pmd_deflate_declines_what_does_not_shrink(void **st) {
    pmd_deflater *d = pmd_deflater_create();
    unsigned char rnd[512], out[512 + 4];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof rnd; i++) {
        x = x * 1103515245u + 12345u;
        rnd[i] = (unsigned char)(x >> 16);
    }
    assert_int_equal(pmd_deflate(d, rnd, sizeof rnd, out, sizeof out), 0);
    assert_int_equal(pmd_deflate(d, rnd, 0, out, sizeof out), 0);
    pmd_deflater_destroy(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pmd_plain_offer_is_taken_without_server_context),
        cmocka_unit_test(test_pmd_browser_offer_with_client_window_is_taken),
        cmocka_unit_test(test_pmd_client_no_context_takeover_is_echoed),
        cmocka_unit_test(test_pmd_small_server_window_falls_back_to_next_offer),
        cmocka_unit_test(test_pmd_other_extensions_are_passed_over),
        cmocka_unit_test(test_pmd_invalid_offers_are_declined),
        cmocka_unit_test(test_pmd_inflates_what_a_client_deflated),
        cmocka_unit_test(test_pmd_inflates_a_message_arriving_byte_by_byte),
        cmocka_unit_test(test_pmd_client_context_is_kept_between_messages),
        cmocka_unit_test(test_pmd_deflate_bomb_stops_at_the_limit),
        cmocka_unit_test(test_pmd_corrupt_data_is_an_error),
        cmocka_unit_test(test_pmd_final_block_then_next_message),
        cmocka_unit_test(test_pmd_deflate_round_trips_without_context),
        cmocka_unit_test(test_pmd_deflate_declines_what_does_not_shrink),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
