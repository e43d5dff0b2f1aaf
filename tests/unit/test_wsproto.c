/* test_wsproto.c -- unit tests for core/wsproto.c, the RFC 6455 parser
 * every byte a client sends goes through.
 *
 * The parser is driven the way the transport drives it: bytes arrive in
 * reads of any size, the caller loops on ws_parse until WS_MORE, and keeps
 * whatever was not consumed to put in front of the next read. Each read is
 * copied into a buffer of exactly its size, so that ASan sees any byte the
 * parser reads past what it was given. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wsproto.h"

static const uint8_t MASK[4] = {0x37, 0xfa, 0x21, 0x3d};

/* Writes a client frame: b0 is FIN|RSV|opcode, the payload is masked with
 * MASK unless masked is 0. Returns its length. */
static size_t frame_raw(unsigned char *out, unsigned b0, int masked,
                        const void *payload, size_t len) {
    size_t n = 0;
    out[n++] = (unsigned char)b0;
    unsigned char mbit = masked ? 0x80 : 0;
    if (len < 126) {
        out[n++] = (unsigned char)(mbit | len);
    } else if (len <= 0xffff) {
        out[n++] = mbit | 126;
        out[n++] = (unsigned char)(len >> 8);
        out[n++] = (unsigned char)len;
    } else {
        out[n++] = mbit | 127;
        for (int k = 7; k >= 0; k--)
            out[n++] = (unsigned char)((uint64_t)len >> (8 * k));
    }
    if (masked) {
        memcpy(out + n, MASK, 4);
        n += 4;
    }
    const unsigned char *p = payload;
    for (size_t i = 0; i < len; i++)
        out[n + i] = masked ? (unsigned char)(p[i] ^ MASK[i & 3]) : p[i];
    return n + len;
}

/* A masked frame with FIN set or not. */
static size_t frame(unsigned char *out, int fin, int op, const void *payload,
                    size_t len) {
    return frame_raw(out, (fin ? 0x80u : 0) | (unsigned)op, 1, payload, len);
}

/* Only the header of a masked frame announcing len bytes (64-bit form when
 * len7 is 127, 16-bit when 126), mask included or not. */
static size_t header_only(unsigned char *out, unsigned b0, unsigned len7,
                          uint64_t len, int with_mask) {
    size_t n = 0;
    out[n++] = (unsigned char)b0;
    out[n++] = (unsigned char)(0x80 | len7);
    if (len7 == 126) {
        out[n++] = (unsigned char)(len >> 8);
        out[n++] = (unsigned char)len;
    } else if (len7 == 127) {
        for (int k = 7; k >= 0; k--)
            out[n++] = (unsigned char)(len >> (8 * k));
    }
    if (with_mask) {
        memcpy(out + n, MASK, 4);
        n += 4;
    }
    return n;
}

/* What the parser handed out, in order. */
#define MAX_EVENTS 512
typedef struct event {
    ws_result r;
    uint8_t opcode, fin, compressed;
    uint16_t code;
    size_t len;
    unsigned char *data; /* a copy */
} event;

typedef struct driver {
    ws_parser_t p;
    unsigned char *pending; /* unconsumed bytes kept for the next read */
    size_t npending, max_pending;
    event ev[MAX_EVENTS];
    size_t nev;
    int failed;
} driver;

static void driver_init(driver *d, uint64_t max_message) {
    memset(d, 0, sizeof *d);
    ws_parser_init(&d->p, max_message);
}

static void driver_close(driver *d) {
    for (size_t i = 0; i < d->nev; i++)
        free(d->ev[i].data);
    free(d->pending);
    d->pending = NULL;
}

/* One read of n bytes, handled as the transport does. */
static void feed(driver *d, const void *bytes, size_t n) {
    assert_false(d->failed); /* never fed again after WS_FAIL */
    size_t len = d->npending + n;
    unsigned char *buf = malloc(len ? len : 1);
    if (d->npending) memcpy(buf, d->pending, d->npending);
    if (n) memcpy(buf + d->npending, bytes, n);
    free(d->pending);
    d->pending = NULL;
    d->npending = 0;
    size_t pos = 0;
    for (;;) {
        ws_piece out;
        memset(&out, 0xa5, sizeof out);
        size_t before = pos;
        ws_result r = ws_parse(&d->p, buf, len, &pos, &out);
        assert_true(pos >= before && pos <= len);
        if (r == WS_MORE) break;
        assert_true(d->nev < MAX_EVENTS);
        event *e = &d->ev[d->nev++];
        memset(e, 0, sizeof *e);
        e->r = r;
        if (r == WS_FAIL) {
            e->code = out.code;
            assert_non_null(out.reason);
            d->failed = 1;
            break;
        }
        e->opcode = out.opcode;
        e->fin = out.fin;
        e->compressed = r == WS_DATA ? out.compressed : 0;
        e->len = out.len;
        if (r == WS_CONTROL) e->code = out.code;
        e->data = malloc(out.len ? out.len : 1);
        if (out.len) {
            assert_true(out.data >= buf && out.data + out.len <= buf + len);
            memcpy(e->data, out.data, out.len);
        }
    }
    if (!d->failed && pos < len) {
        d->npending = len - pos;
        d->pending = malloc(d->npending);
        memcpy(d->pending, buf + pos, d->npending);
        if (d->npending > d->max_pending) d->max_pending = d->npending;
    }
    free(buf);
}

/* The data pieces since event `from`, joined; returns the count of
 * messages ended (pieces with fin) and the opcode of the last. */
static size_t join_data(const driver *d, size_t from, unsigned char *out,
                        size_t *len, int *fins) {
    size_t n = 0;
    *fins = 0;
    for (size_t i = from; i < d->nev; i++) {
        if (d->ev[i].r != WS_DATA) continue;
        memcpy(out + n, d->ev[i].data, d->ev[i].len);
        n += d->ev[i].len;
        if (d->ev[i].fin) (*fins)++;
    }
    *len = n;
    return n;
}

/* The last event must be a WS_FAIL with code. */
static void assert_fails_with(const driver *d, uint16_t code) {
    assert_true(d->nev > 0);
    const event *e = &d->ev[d->nev - 1];
    if (e->r != WS_FAIL)
        fail_msg("expected WS_FAIL %u, got result %d", code, (int)e->r);
    assert_int_equal(e->code, code);
}

/* Feeds a whole byte string to a fresh parser and expects WS_FAIL code. */
static void expect_fail(const void *bytes, size_t n, uint64_t max,
                        uint16_t code) {
    driver d;
    driver_init(&d, max);
    feed(&d, bytes, n);
    assert_fails_with(&d, code);
    driver_close(&d);
}

static unsigned char *pattern(size_t n) {
    unsigned char *p = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)('a' + i % 26);
    return p;
}

/* ---- whole frames and frames split across reads ---- */

static void test_parse_rfc_example_masked_hello(void **state) {
    /* RFC 6455 5.7: a single-frame masked text message "Hello". */
    const unsigned char wire[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                  0x7f, 0x9f, 0x4d, 0x51, 0x58};
    driver d;
    driver_init(&d, 65536);
    feed(&d, wire, sizeof wire);
    assert_int_equal(d.nev, 1);
    assert_int_equal(d.ev[0].r, WS_DATA);
    assert_int_equal(d.ev[0].opcode, WS_OP_TEXT);
    assert_int_equal(d.ev[0].fin, 1);
    assert_int_equal(d.ev[0].len, 5);
    assert_memory_equal(d.ev[0].data, "Hello", 5);
    assert_int_equal(d.npending, 0);
    driver_close(&d);
}

/* Feeds wire in two reads split at every position and checks that the
 * message comes out whole, once, and that the caller never had to keep
 * more than a header's worth. */
static void check_split_everywhere(const unsigned char *wire, size_t n,
                                   int opcode, const unsigned char *payload,
                                   size_t plen) {
    unsigned char *got = malloc(plen + 1);
    for (size_t k = 0; k <= n; k++) {
        driver d;
        driver_init(&d, 1 << 20);
        feed(&d, wire, k);
        feed(&d, wire + k, n - k);
        size_t len;
        int fins;
        join_data(&d, 0, got, &len, &fins);
        if (len != plen || memcmp(got, payload, plen) != 0 || fins != 1)
            fail_msg("split at %zu: got %zu bytes, %d ends", k, len, fins);
        for (size_t i = 0; i < d.nev; i++) {
            assert_int_equal(d.ev[i].r, WS_DATA);
            assert_int_equal(d.ev[i].opcode, opcode);
        }
        assert_true(d.ev[d.nev - 1].fin);
        assert_int_equal(d.npending, 0);
        assert_true(d.max_pending <= WS_MAX_HEADER);
        driver_close(&d);
    }
    free(got);
}

static void test_parse_text_frame_split_at_every_byte(void **state) {
    const char *msg = "Hello, world: a text frame in two reads";
    unsigned char wire[128];
    size_t n = frame(wire, 1, WS_OP_TEXT, msg, strlen(msg));
    check_split_everywhere(wire, n, WS_OP_TEXT, (const unsigned char *)msg,
                           strlen(msg));
}

static void test_parse_16bit_length_frame_split_at_every_byte(void **state) {
    unsigned char *msg = pattern(300);
    unsigned char wire[400];
    size_t n = frame(wire, 1, WS_OP_BINARY, msg, 300);
    assert_int_equal(wire[1], 0x80 | 126);
    check_split_everywhere(wire, n, WS_OP_BINARY, msg, 300);
    free(msg);
}

static void test_parse_multibyte_text_split_at_every_byte(void **state) {
    /* Every split lands once inside each of a 2, 3 and 4-byte character. */
    const char *msg = "h\xc3\xa9llo \xe2\x82\xac \xf0\x9d\x84\x9e end";
    unsigned char wire[64];
    size_t n = frame(wire, 1, WS_OP_TEXT, msg, strlen(msg));
    check_split_everywhere(wire, n, WS_OP_TEXT, (const unsigned char *)msg,
                           strlen(msg));
}

static void test_parse_ping_split_is_kept_until_whole(void **state) {
    const char *body = "are you there";
    unsigned char wire[64];
    size_t n = frame(wire, 1, WS_OP_PING, body, strlen(body));
    for (size_t k = 0; k < n; k++) {
        driver d;
        driver_init(&d, 65536);
        feed(&d, wire, k);
        assert_int_equal(d.nev, 0);
        assert_int_equal(d.npending, k);
        feed(&d, wire + k, n - k);
        assert_int_equal(d.nev, 1);
        assert_int_equal(d.ev[0].r, WS_CONTROL);
        assert_int_equal(d.ev[0].opcode, WS_OP_PING);
        assert_int_equal(d.ev[0].len, strlen(body));
        assert_memory_equal(d.ev[0].data, body, strlen(body));
        assert_true(d.max_pending <= WS_MAX_CONTROL_FRAME);
        driver_close(&d);
    }
}

static void test_parse_unmasks_across_pieces_of_odd_sizes(void **state) {
    /* Payload pieces of 1, 2, 3, ... bytes: the mask must continue at the
     * right byte in each, including through the 8-byte fast path. */
    size_t plen = 1000;
    unsigned char *msg = pattern(plen);
    unsigned char *wire = malloc(plen + 14);
    size_t n = frame(wire, 1, WS_OP_BINARY, msg, plen);
    driver d;
    driver_init(&d, 65536);
    size_t at = 0, step = 1;
    while (at < n) {
        size_t k = n - at < step ? n - at : step;
        feed(&d, wire + at, k);
        at += k;
        step = step % 29 + 1;
    }
    unsigned char *got = malloc(plen);
    size_t len;
    int fins;
    join_data(&d, 0, got, &len, &fins);
    assert_int_equal(len, plen);
    assert_int_equal(fins, 1);
    assert_memory_equal(got, msg, plen);
    assert_true(d.nev > 10); /* really handed out in pieces */
    driver_close(&d);
    free(got);
    free(wire);
    free(msg);
}

static void test_parse_16bit_lengths(void **state) {
    size_t sizes[] = {126, 1000, 65535};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        unsigned char *msg = pattern(sizes[s]);
        unsigned char *wire = malloc(sizes[s] + 14);
        size_t n = frame(wire, 1, WS_OP_TEXT, msg, sizes[s]);
        assert_int_equal(n, sizes[s] + 8);
        driver d;
        driver_init(&d, 65536);
        feed(&d, wire, n);
        assert_int_equal(d.nev, 1);
        assert_int_equal(d.ev[0].len, sizes[s]);
        assert_int_equal(d.ev[0].fin, 1);
        assert_memory_equal(d.ev[0].data, msg, sizes[s]);
        driver_close(&d);
        free(wire);
        free(msg);
    }
}

static void test_parse_64bit_length(void **state) {
    size_t plen = 70000;
    unsigned char *msg = pattern(plen);
    unsigned char *wire = malloc(plen + 14);
    size_t n = frame(wire, 1, WS_OP_BINARY, msg, plen);
    assert_int_equal(n, plen + 14);
    assert_int_equal(wire[1], 0x80 | 127);
    driver d;
    driver_init(&d, 1 << 20);
    /* In three reads: the header, then two halves of the payload. */
    feed(&d, wire, 14);
    feed(&d, wire + 14, plen / 2);
    feed(&d, wire + 14 + plen / 2, plen - plen / 2);
    unsigned char *got = malloc(plen);
    size_t len;
    int fins;
    join_data(&d, 0, got, &len, &fins);
    assert_int_equal(len, plen);
    assert_int_equal(fins, 1);
    assert_memory_equal(got, msg, plen);
    driver_close(&d);
    free(got);
    free(wire);
    free(msg);
}

static void test_parse_fragmented_message_with_ping_between(void **state) {
    unsigned char wire[128];
    size_t n = 0;
    n += frame(wire + n, 0, WS_OP_TEXT, "Hel", 3);
    n += frame(wire + n, 1, WS_OP_PING, "p1", 2);
    n += frame(wire + n, 0, WS_OP_CONTINUATION, "lo, ", 4);
    n += frame(wire + n, 1, WS_OP_PONG, "", 0);
    n += frame(wire + n, 1, WS_OP_CONTINUATION, "world", 5);
    n += frame(wire + n, 1, WS_OP_BINARY, "\x00\x01", 2);
    driver d;
    driver_init(&d, 65536);
    feed(&d, wire, n);
    assert_int_equal(d.nev, 6);
    const struct {
        ws_result r;
        int op, fin;
        const char *data;
        size_t len;
    } want[] = {
        {WS_DATA, WS_OP_TEXT, 0, "Hel", 3},
        {WS_CONTROL, WS_OP_PING, 1, "p1", 2},
        {WS_DATA, WS_OP_TEXT, 0, "lo, ", 4},
        {WS_CONTROL, WS_OP_PONG, 1, "", 0},
        {WS_DATA, WS_OP_TEXT, 1, "world", 5},
        {WS_DATA, WS_OP_BINARY, 1, "\x00\x01", 2},
    };
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(d.ev[i].r, want[i].r);
        assert_int_equal(d.ev[i].opcode, want[i].op);
        assert_int_equal(d.ev[i].fin, want[i].fin);
        assert_int_equal(d.ev[i].len, want[i].len);
        assert_memory_equal(d.ev[i].data, want[i].data, want[i].len);
    }
    driver_close(&d);
}

static void test_parse_fragmented_message_split_at_every_byte(void **state) {
    unsigned char wire[128];
    size_t n = 0;
    n += frame(wire + n, 0, WS_OP_TEXT, "ab\xe2", 3);
    n += frame(wire + n, 1, WS_OP_PING, "x", 1);
    n += frame(wire + n, 1, WS_OP_CONTINUATION,
               "\x82\xac"
               "cd",
               4);
    const unsigned char want[] = "ab\xe2\x82\xac"
                                 "cd";
    for (size_t k = 0; k <= n; k++) {
        driver d;
        driver_init(&d, 65536);
        feed(&d, wire, k);
        feed(&d, wire + k, n - k);
        unsigned char got[16];
        size_t len;
        int fins;
        join_data(&d, 0, got, &len, &fins);
        assert_int_equal(len, 7);
        assert_memory_equal(got, want, 7);
        assert_int_equal(fins, 1);
        size_t pings = 0;
        for (size_t i = 0; i < d.nev; i++)
            pings += d.ev[i].r == WS_CONTROL && d.ev[i].opcode == WS_OP_PING;
        assert_int_equal(pings, 1);
        driver_close(&d);
    }
}

static void test_parse_empty_frames(void **state) {
    unsigned char wire[64];
    driver d;

    /* An empty text message: one empty piece that ends it. */
    driver_init(&d, 65536);
    feed(&d, wire, frame(wire, 1, WS_OP_TEXT, "", 0));
    assert_int_equal(d.nev, 1);
    assert_int_equal(d.ev[0].r, WS_DATA);
    assert_int_equal(d.ev[0].len, 0);
    assert_int_equal(d.ev[0].fin, 1);
    assert_int_equal(d.ev[0].opcode, WS_OP_TEXT);
    driver_close(&d);

    /* Empty first fragment, then the content. */
    size_t n = frame(wire, 0, WS_OP_BINARY, "", 0);
    n += frame(wire + n, 1, WS_OP_CONTINUATION, "abc", 3);
    driver_init(&d, 65536);
    feed(&d, wire, n);
    unsigned char got[8];
    size_t len;
    int fins;
    join_data(&d, 0, got, &len, &fins);
    assert_int_equal(len, 3);
    assert_memory_equal(got, "abc", 3);
    assert_int_equal(fins, 1);
    assert_int_equal(d.ev[d.nev - 1].opcode, WS_OP_BINARY);
    driver_close(&d);

    /* Content, then an empty last fragment that ends the message. */
    n = frame(wire, 0, WS_OP_TEXT, "abc", 3);
    n += frame(wire + n, 1, WS_OP_CONTINUATION, "", 0);
    driver_init(&d, 65536);
    feed(&d, wire, n);
    join_data(&d, 0, got, &len, &fins);
    assert_int_equal(len, 3);
    assert_int_equal(fins, 1);
    assert_true(d.ev[d.nev - 1].fin);
    driver_close(&d);

    /* An empty ping. */
    driver_init(&d, 65536);
    feed(&d, wire, frame(wire, 1, WS_OP_PING, "", 0));
    assert_int_equal(d.nev, 1);
    assert_int_equal(d.ev[0].r, WS_CONTROL);
    assert_int_equal(d.ev[0].len, 0);
    driver_close(&d);
}

static void test_parse_several_messages_in_one_read(void **state) {
    unsigned char wire[64];
    size_t n = 0;
    n += frame(wire + n, 1, WS_OP_TEXT, "one", 3);
    n += frame(wire + n, 1, WS_OP_TEXT, "two", 3);
    n += frame(wire + n, 1, WS_OP_BINARY, "three", 5);
    driver d;
    driver_init(&d, 65536);
    feed(&d, wire, n);
    assert_int_equal(d.nev, 3);
    assert_memory_equal(d.ev[0].data, "one", 3);
    assert_memory_equal(d.ev[1].data, "two", 3);
    assert_memory_equal(d.ev[2].data, "three", 5);
    assert_int_equal(d.ev[2].opcode, WS_OP_BINARY);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(d.ev[i].fin, 1);
    driver_close(&d);
}

/* ---- the message size limit, at the header ---- */

static void test_parse_refuses_oversized_frame_at_header(void **state) {
    const uint64_t lens[] = {65537, 70000, UINT64_MAX >> 1, UINT64_MAX};
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
        for (int with_mask = 0; with_mask <= 1; with_mask++) {
            unsigned char hdr[WS_MAX_HEADER];
            size_t n =
                header_only(hdr, 0x80 | WS_OP_TEXT, 127, lens[i], with_mask);
            driver d;
            driver_init(&d, 65536);
            feed(&d, hdr, n); /* not one payload byte */
            if (d.nev != 1 || d.ev[0].r != WS_FAIL || d.ev[0].code != 1009)
                fail_msg("length %llu (mask %d): not refused with 1009",
                         (unsigned long long)lens[i], with_mask);
            driver_close(&d);
        }
    }
    /* 16-bit form too: 65535 with a limit of 1000. */
    unsigned char hdr[WS_MAX_HEADER];
    size_t n = header_only(hdr, 0x80 | WS_OP_BINARY, 126, 65535, 0);
    expect_fail(hdr, n, 1000, 1009);
    /* 7-bit form: 125 with a limit of 100. */
    n = header_only(hdr, 0x80 | WS_OP_BINARY, 125, 125, 0);
    expect_fail(hdr, n, 100, 1009);
}

static void test_parse_accepts_frame_at_exactly_the_limit(void **state) {
    unsigned char hdr[WS_MAX_HEADER];
    size_t n = header_only(hdr, 0x80 | WS_OP_BINARY, 127, 65536, 1);
    driver d;
    driver_init(&d, 65536);
    feed(&d, hdr, n);
    assert_int_equal(d.nev, 0); /* waiting for payload, not failed */
    assert_false(d.failed);
    assert_int_equal(d.npending, 0); /* the header was consumed */
    driver_close(&d);
}

static void
test_parse_refuses_fragment_crossing_limit_at_its_header(void **state) {
    unsigned char *a = pattern(60), wire[256], hdr[WS_MAX_HEADER];
    driver d;
    driver_init(&d, 100);
    feed(&d, wire, frame(wire, 0, WS_OP_TEXT, a, 60));
    feed(&d, wire, frame(wire, 0, WS_OP_CONTINUATION, a, 40)); /* 100 */
    assert_false(d.failed);
    /* A ping between does not count toward the message. */
    feed(&d, wire, frame(wire, 1, WS_OP_PING, a, 50));
    assert_false(d.failed);
    /* The next fragment's header, alone, announcing one byte more. */
    feed(&d, hdr, header_only(hdr, 0x80 | WS_OP_CONTINUATION, 1, 1, 0));
    assert_fails_with(&d, 1009);
    driver_close(&d);

    /* A message that ends resets the count: 60 + 40, then a new 100. */
    driver_init(&d, 100);
    feed(&d, wire, frame(wire, 0, WS_OP_TEXT, a, 60));
    feed(&d, wire, frame(wire, 1, WS_OP_CONTINUATION, a, 40));
    unsigned char *b = pattern(100);
    feed(&d, wire, frame(wire, 1, WS_OP_TEXT, b, 100));
    assert_false(d.failed);
    driver_close(&d);

    /* The crossing fragment announced with a 64-bit length. */
    driver_init(&d, 100);
    feed(&d, wire, frame(wire, 0, WS_OP_BINARY, a, 60));
    feed(&d, hdr,
         header_only(hdr, 0x00 | WS_OP_CONTINUATION, 127, UINT64_MAX - 30, 0));
    assert_fails_with(&d, 1009);
    driver_close(&d);
    free(a);
    free(b);
}

/* ---- protocol errors: 1002 ---- */

static void test_parse_refuses_unmasked_frame(void **state) {
    unsigned char wire[32];
    expect_fail(wire, frame_raw(wire, 0x81, 0, "Hello", 5), 65536, 1002);
    expect_fail(wire, frame_raw(wire, 0x89, 0, "", 0), 65536, 1002);
    /* Refused at the two header bytes, before the rest arrives. */
    expect_fail(wire, 2, 65536, 1002);
}

static void test_parse_refuses_reserved_bits(void **state) {
    const unsigned rsv[] = {0x40, 0x20, 0x10, 0x70};
    for (size_t i = 0; i < sizeof rsv / sizeof *rsv; i++) {
        unsigned char wire[32];
        expect_fail(wire, frame_raw(wire, 0x81 | rsv[i], 1, "a", 1), 65536,
                    1002);
        expect_fail(wire, frame_raw(wire, 0x89 | rsv[i], 1, "", 0), 65536,
                    1002);
    }
}

/* With permessage-deflate, RSV1 marks the first frame of a compressed
 * message; its pieces come out marked and unchecked (the bytes are
 * compressed, not text); the other bits, and RSV1 anywhere else, are still
 * 1002. */
static void
test_parse_rsv1_marks_a_compressed_message_when_negotiated(void **state) {
    /* Bytes that are not UTF-8, as compressed text often is not. */
    const unsigned char z[] = {0xf2, 0x48, 0xcd, 0xc9, 0xff};
    unsigned char wire[64];
    size_t n = frame_raw(wire, 0x41, 1, z, 3);   /* RSV1, text, not FIN */
    n += frame_raw(wire + n, 0x80, 1, z + 3, 2); /* FIN continuation */
    n += frame_raw(wire + n, 0x81, 1, "ok", 2);  /* then plain text */
    driver d;
    driver_init(&d, 65536);
    ws_parser_allow_deflate(&d.p);
    feed(&d, wire, n);
    assert_false(d.failed);
    assert_int_equal(d.nev, 3);
    assert_true(d.ev[0].compressed && d.ev[1].compressed);
    assert_true(d.ev[1].fin);
    assert_memory_equal(d.ev[1].data, z + 3, 2);
    assert_false(d.ev[2].compressed);
    driver_close(&d);

    /* Not negotiated: 1002 as before. */
    expect_fail(wire, frame_raw(wire, 0xc1, 1, z, 3), 65536, 1002);
    /* Negotiated, but on a continuation, a control frame, or RSV2/3. */
    const unsigned char *bad[4];
    size_t lens[4];
    unsigned char w0[64], w1[64], w2[64], w3[64];
    lens[0] = frame_raw(w0, 0x01, 1, "a", 1);
    lens[0] += frame_raw(w0 + lens[0], 0xc0, 1, "b", 1);
    lens[1] = frame_raw(w1, 0xc9, 1, "", 0);
    lens[2] = frame_raw(w2, 0xe1, 1, "a", 1);
    lens[3] = frame_raw(w3, 0x91, 1, "a", 1);
    bad[0] = w0, bad[1] = w1, bad[2] = w2, bad[3] = w3;
    for (int i = 0; i < 4; i++) {
        driver_init(&d, 65536);
        ws_parser_allow_deflate(&d.p);
        feed(&d, bad[i], lens[i]);
        assert_fails_with(&d, 1002);
        driver_close(&d);
    }
}

static void test_parse_refuses_reserved_opcodes(void **state) {
    const unsigned ops[] = {3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf};
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
        unsigned char wire[32];
        driver d;
        driver_init(&d, 65536);
        feed(&d, wire, frame_raw(wire, 0x80 | ops[i], 1, "", 0));
        if (!d.failed || d.ev[d.nev - 1].code != 1002)
            fail_msg("opcode 0x%x not refused with 1002", ops[i]);
        driver_close(&d);
    }
}

static void test_parse_refuses_fragmented_control_frame(void **state) {
    const int ops[] = {WS_OP_CLOSE, WS_OP_PING, WS_OP_PONG};
    for (size_t i = 0; i < 3; i++) {
        unsigned char wire[32];
        expect_fail(wire, frame(wire, 0, ops[i], "", 0), 65536, 1002);
    }
}

static void test_parse_refuses_control_frame_longer_than_125(void **state) {
    unsigned char *p = pattern(126), wire[200];
    expect_fail(wire, frame(wire, 1, WS_OP_PING, p, 126), 65536, 1002);
    expect_fail(wire, frame(wire, 1, WS_OP_CLOSE, p, 126), 65536, 1002);
    /* At the header: neither the length nor the payload needed. */
    expect_fail(wire, header_only(wire, 0x80 | WS_OP_PONG, 127, 200, 0), 65536,
                1002);
    /* 125 is the most a control frame may carry. */
    driver d;
    driver_init(&d, 65536);
    feed(&d, wire, frame(wire, 1, WS_OP_PING, p, 125));
    assert_int_equal(d.nev, 1);
    assert_int_equal(d.ev[0].r, WS_CONTROL);
    assert_int_equal(d.ev[0].len, 125);
    driver_close(&d);
    free(p);
}

static void test_parse_refuses_continuation_without_message(void **state) {
    unsigned char wire[64];
    expect_fail(wire, frame(wire, 1, WS_OP_CONTINUATION, "a", 1), 65536, 1002);
    /* After a message that ended, too. */
    size_t n = frame(wire, 1, WS_OP_TEXT, "done", 4);
    n += frame(wire + n, 0, WS_OP_CONTINUATION, "more", 4);
    driver d;
    driver_init(&d, 65536);
    feed(&d, wire, n);
    assert_int_equal(d.nev, 2);
    assert_int_equal(d.ev[0].r, WS_DATA);
    assert_fails_with(&d, 1002);
    driver_close(&d);
}

static void test_parse_refuses_new_message_inside_fragmented_one(void **state) {
    const int ops[] = {WS_OP_TEXT, WS_OP_BINARY};
    for (size_t i = 0; i < 2; i++) {
        unsigned char wire[64];
        size_t n = frame(wire, 0, WS_OP_TEXT, "part", 4);
        n += frame(wire + n, 1, ops[i], "new", 3);
        driver d;
        driver_init(&d, 65536);
        feed(&d, wire, n);
        assert_fails_with(&d, 1002);
        driver_close(&d);
    }
}

static void test_parse_refuses_close_with_one_byte_payload(void **state) {
    unsigned char wire[32];
    expect_fail(wire, frame(wire, 1, WS_OP_CLOSE, "\x03", 1), 65536, 1002);
}

static void test_parse_refuses_invalid_close_codes(void **state) {
    const unsigned codes[] = {0,    999,  1004, 1005, 1006,
                              1015, 1016, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++) {
        unsigned char body[2] = {(unsigned char)(codes[i] >> 8),
                                 (unsigned char)codes[i]};
        unsigned char wire[32];
        driver d;
        driver_init(&d, 65536);
        feed(&d, wire, frame(wire, 1, WS_OP_CLOSE, body, 2));
        if (!d.failed || d.ev[d.nev - 1].code != 1002)
            fail_msg("close code %u not refused with 1002", codes[i]);
        driver_close(&d);
        assert_false(ws_close_code_valid(codes[i]));
    }
}

static void test_parse_accepts_valid_close_codes(void **state) {
    const unsigned codes[] = {1000, 1001, 1002, 1003, 1007, 1008,
                              1011, 1012, 3000, 4000, 4999};
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++) {
        unsigned char body[16] = {(unsigned char)(codes[i] >> 8),
                                  (unsigned char)codes[i]};
        memcpy(body + 2, "bye \xc3\xa9", 6);
        unsigned char wire[32];
        driver d;
        driver_init(&d, 65536);
        feed(&d, wire, frame(wire, 1, WS_OP_CLOSE, body, 8));
        if (d.nev != 1 || d.ev[0].r != WS_CONTROL)
            fail_msg("close code %u refused", codes[i]);
        assert_int_equal(d.ev[0].opcode, WS_OP_CLOSE);
        assert_int_equal(d.ev[0].code, codes[i]);
        assert_int_equal(d.ev[0].len, 8);
        assert_memory_equal(d.ev[0].data, body, 8);
        driver_close(&d);
        assert_true(ws_close_code_valid(codes[i]));
    }
}

static void test_parse_close_without_payload_reports_1005(void **state) {
    unsigned char wire[32];
    driver d;
    driver_init(&d, 65536);
    feed(&d, wire, frame(wire, 1, WS_OP_CLOSE, "", 0));
    assert_int_equal(d.nev, 1);
    assert_int_equal(d.ev[0].r, WS_CONTROL);
    assert_int_equal(d.ev[0].opcode, WS_OP_CLOSE);
    assert_int_equal(d.ev[0].code, 1005);
    assert_int_equal(d.ev[0].len, 0);
    driver_close(&d);
}

/* ---- UTF-8: 1007 ---- */

static const struct {
    const char *name, *bytes;
} bad_utf8[] = {
    {"overlong C0 80", "\xc0\x80"},
    {"overlong E0 80 80", "\xe0\x80\x80"},
    {"overlong F0 80 80 80", "\xf0\x80\x80\x80"},
    {"surrogate ED A0 80", "\xed\xa0\x80"},
    {"surrogate ED BF BF", "\xed\xbf\xbf"},
    {"above U+10FFFF F4 90 80 80", "\xf4\x90\x80\x80"},
    {"F5", "\xf5\x80\x80\x80"},
    {"FF", "\xff"},
    {"lone continuation", "\x80"},
    {"continuation after ASCII run", "abcdefghij\xbf"},
    {"lead byte then ASCII", "\xc3"
                             "a"},
    {"truncated at the end", "ok \xe2\x82"},
    {"truncated 4-byte at the end", "\xf0\x9f\x98"},
};

static void test_parse_refuses_invalid_utf8_text(void **state) {
    for (size_t i = 0; i < sizeof bad_utf8 / sizeof *bad_utf8; i++) {
        const char *s = bad_utf8[i].bytes;
        unsigned char wire[64];
        driver d;
        driver_init(&d, 65536);
        feed(&d, wire, frame(wire, 1, WS_OP_TEXT, s, strlen(s)));
        if (!d.failed || d.ev[d.nev - 1].code != 1007)
            fail_msg("%s: not refused with 1007", bad_utf8[i].name);
        driver_close(&d);
    }
}

static void test_parse_refuses_invalid_utf8_across_fragments(void **state) {
    /* A surrogate whose lead byte ends the first fragment. */
    unsigned char wire[64];
    driver d;
    driver_init(&d, 65536);
    feed(&d, wire, frame(wire, 0, WS_OP_TEXT, "ab\xed", 3));
    assert_false(d.failed);
    feed(&d, wire, frame(wire, 1, WS_OP_CONTINUATION, "\xa0\x80", 2));
    assert_fails_with(&d, 1007);
    driver_close(&d);

    /* A message whose last fragment is empty and leaves a character open. */
    driver_init(&d, 65536);
    feed(&d, wire, frame(wire, 0, WS_OP_TEXT, "ab\xe2\x82", 4));
    assert_false(d.failed);
    feed(&d, wire, frame(wire, 1, WS_OP_CONTINUATION, "", 0));
    assert_fails_with(&d, 1007);
    driver_close(&d);
}

static void test_parse_refuses_invalid_utf8_before_message_ends(void **state) {
    /* The first fragment's bad byte is enough: no need to wait for FIN. */
    unsigned char wire[64];
    driver d;
    driver_init(&d, 65536);
    feed(&d, wire, frame(wire, 0, WS_OP_TEXT, "ok\xc0\x80", 4));
    assert_fails_with(&d, 1007);
    driver_close(&d);
}

static void
test_parse_accepts_multibyte_text_split_across_fragments(void **state) {
    /* U+1D11E (F0 9D 84 9E) cut after each of its bytes. */
    const char *c = "\xf0\x9d\x84\x9e";
    for (size_t cut = 1; cut < 4; cut++) {
        unsigned char wire[64];
        driver d;
        driver_init(&d, 65536);
        size_t n = frame(wire, 0, WS_OP_TEXT, c, cut);
        n += frame(wire + n, 1, WS_OP_CONTINUATION, c + cut, 4 - cut);
        feed(&d, wire, n);
        unsigned char got[8];
        size_t len;
        int fins;
        join_data(&d, 0, got, &len, &fins);
        assert_false(d.failed);
        assert_int_equal(len, 4);
        assert_memory_equal(got, c, 4);
        assert_int_equal(fins, 1);
        driver_close(&d);
    }
}

static void test_parse_refuses_invalid_utf8_in_close_reason(void **state) {
    const char *reasons[] = {"\xc0\x80", "bye \xed\xa0\x80", "\xe2\x82",
                             "\xff"};
    for (size_t i = 0; i < sizeof reasons / sizeof *reasons; i++) {
        unsigned char body[32] = {0x03, 0xe8}; /* 1000 */
        size_t rl = strlen(reasons[i]);
        memcpy(body + 2, reasons[i], rl);
        unsigned char wire[64];
        driver d;
        driver_init(&d, 65536);
        feed(&d, wire, frame(wire, 1, WS_OP_CLOSE, body, rl + 2));
        if (!d.failed || d.ev[d.nev - 1].code != 1007)
            fail_msg("close reason %zu: not refused with 1007", i);
        driver_close(&d);
    }
}

static void test_parse_does_not_check_binary_as_utf8(void **state) {
    const unsigned char bin[] = {0xff, 0xfe, 0xc0, 0x80,
                                 0xed, 0xa0, 0x80, 0xe2};
    unsigned char wire[64];
    driver d;
    driver_init(&d, 65536);
    size_t n = frame(wire, 0, WS_OP_BINARY, bin, 5);
    n += frame(wire + n, 1, WS_OP_CONTINUATION, bin + 5, sizeof bin - 5);
    feed(&d, wire, n);
    unsigned char got[16];
    size_t len;
    int fins;
    join_data(&d, 0, got, &len, &fins);
    assert_false(d.failed);
    assert_int_equal(len, sizeof bin);
    assert_memory_equal(got, bin, sizeof bin);
    assert_int_equal(fins, 1);
    driver_close(&d);
}

static void test_parse_ping_payload_not_checked_as_utf8(void **state) {
    unsigned char wire[32];
    driver d;
    driver_init(&d, 65536);
    feed(&d, wire, frame(wire, 1, WS_OP_PING, "\xff\xc0", 2));
    assert_int_equal(d.nev, 1);
    assert_int_equal(d.ev[0].r, WS_CONTROL);
    driver_close(&d);
}

/* ---- ws_utf8_check ---- */

/* 1: valid and whole, 0: valid so far with a character open, -1: invalid. */
static int utf8_verdict(const char *s, size_t n) {
    uint32_t st = 0;
    if (ws_utf8_check(&st, (const unsigned char *)s, n) < 0) return -1;
    return st == 0;
}

static int utf8_verdict_bytewise(const char *s, size_t n) {
    uint32_t st = 0;
    for (size_t i = 0; i < n; i++)
        if (ws_utf8_check(&st, (const unsigned char *)s + i, 1) < 0) return -1;
    return st == 0;
}

static void test_utf8_check_table(void **state) {
    static const struct {
        const char *s;
        int want;
    } cases[] = {
        {"", 1},
        {"plain ASCII, longer than eight bytes", 1},
        {"\x7f", 1},
        {"\xc2\x80", 1},                  /* U+0080 */
        {"\xdf\xbf", 1},                  /* U+07FF */
        {"\xe0\xa0\x80", 1},              /* U+0800 */
        {"\xed\x9f\xbf", 1},              /* U+D7FF */
        {"\xee\x80\x80", 1},              /* U+E000 */
        {"\xef\xbf\xbf", 1},              /* U+FFFF */
        {"\xf0\x90\x80\x80", 1},          /* U+10000 */
        {"\xf4\x8f\xbf\xbf", 1},          /* U+10FFFF */
        {"abcdefg\xc3\xa9hijklmnopq", 1}, /* a character across 8-byte runs */
        {"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 1}, /* kosme */
        {"\xc2", 0},
        {"\xe2\x82", 0},
        {"\xf0\x9f\x98", 0},
        {"abcdefghijklmnop\xe2", 0},
        {"\x80", -1},
        {"\xbf", -1},
        {"\xc0\x80", -1},
        {"\xc1\xbf", -1},
        {"\xe0\x80\x80", -1},
        {"\xe0\x9f\xbf", -1},
        {"\xed\xa0\x80", -1},
        {"\xed\xbf\xbf", -1},
        {"\xf0\x80\x80\x80", -1},
        {"\xf0\x8f\xbf\xbf", -1},
        {"\xf4\x90\x80\x80", -1},
        {"\xf5\x80\x80\x80", -1},
        {"\xf8\x88\x80\x80\x80", -1},
        {"\xfe", -1},
        {"\xff", -1},
        {"\xc2\x41", -1},
        {"\xe2\x82\x41", -1},
        {"\xe2\x28\xa1", -1},
        {"abcdefgh\x80", -1},
        {"abcdefghijklmno\xc0", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t n = strlen(cases[i].s);
        int whole = utf8_verdict(cases[i].s, n);
        int bytewise = utf8_verdict_bytewise(cases[i].s, n);
        if (whole != cases[i].want || bytewise != cases[i].want)
            fail_msg("case %zu: want %d, got %d whole, %d byte by byte", i,
                     cases[i].want, whole, bytewise);
    }
}

static void test_utf8_check_every_code_point_round_trip(void **state) {
    /* Every scalar value encoded by hand is valid; every surrogate is not. */
    for (uint32_t cp = 0; cp <= 0x10ffff; cp++) {
        char b[4];
        size_t n;
        if (cp < 0x80) {
            b[0] = (char)cp, n = 1;
        } else if (cp < 0x800) {
            b[0] = (char)(0xc0 | cp >> 6), b[1] = (char)(0x80 | (cp & 0x3f));
            n = 2;
        } else if (cp < 0x10000) {
            b[0] = (char)(0xe0 | cp >> 12);
            b[1] = (char)(0x80 | (cp >> 6 & 0x3f));
            b[2] = (char)(0x80 | (cp & 0x3f));
            n = 3;
        } else {
            b[0] = (char)(0xf0 | cp >> 18);
            b[1] = (char)(0x80 | (cp >> 12 & 0x3f));
            b[2] = (char)(0x80 | (cp >> 6 & 0x3f));
            b[3] = (char)(0x80 | (cp & 0x3f));
            n = 4;
        }
        int want = cp >= 0xd800 && cp <= 0xdfff ? -1 : 1;
        if (utf8_verdict(b, n) != want)
            fail_msg("U+%04X: want %d", (unsigned)cp, want);
    }
}

/* ---- what the server writes ---- */

static void test_accept_key_matches_rfc_example(void **state) {
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    char out[29];
    memset(out, 'x', sizeof out);
    ws_accept_key(key, strlen(key), out);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

/* The hash is the server's own: keys whose input pads into one, two
 * (the 55/56-byte edge) and three blocks, against Python's hashlib. */
static void test_accept_key_other_lengths(void **state) {
    static const struct {
        const char *key, *want;
    } cases[] = {
        {"AQIDBAUGBwgJCgsMDQ4PEA==", "C/0nmHhBztSRGR1CwL6Tf4ZjwpY="},
        {"", "Kfh9QIsMVZcl6xEPYxPHzW8SZ8w="},
        {"aaaaaaaaaaaaaaaaaaaa", "dUYRM7bOMwDmbriNIPr11x+r3E0="},
        {"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
         "d5DxsU9is+/O9m7nTbwV0cK0jLc="},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[29];
        ws_accept_key(cases[i].key, strlen(cases[i].key), out);
        assert_string_equal(out, cases[i].want);
    }
}

static void test_control_frame_layout(void **state) {
    unsigned char out[130];
    assert_int_equal(ws_control_frame(out, WS_OP_PONG, "abc", 3), 5);
    const unsigned char pong[] = {0x8a, 0x03, 'a', 'b', 'c'};
    assert_memory_equal(out, pong, 5);
    assert_int_equal(ws_control_frame(out, WS_OP_PING, NULL, 0), 2);
    assert_int_equal(out[0], 0x89);
    assert_int_equal(out[1], 0x00);
    unsigned char *p = pattern(125);
    assert_int_equal(ws_control_frame(out, WS_OP_PING, p, 125), 127);
    assert_int_equal(out[1], 125);
    assert_memory_equal(out + 2, p, 125);
    free(p);
}

static void test_close_frame_layout(void **state) {
    unsigned char out[127];
    size_t n = ws_close_frame(out, 1009, "message too large");
    assert_int_equal(n, 4 + 17);
    assert_int_equal(out[0], 0x88);
    assert_int_equal(out[1], 2 + 17);
    assert_int_equal(out[2], 1009 >> 8);
    assert_int_equal(out[3], 1009 & 0xff);
    assert_memory_equal(out + 4, "message too large", 17);
    n = ws_close_frame(out, 1000, "");
    assert_int_equal(n, 4);
    assert_int_equal(out[1], 2);
}

/* A server close frame, masked as a client would send it back, parses to
 * the same code and reason. */
static void check_close_frame_parses(const unsigned char *f, size_t n,
                                     unsigned code) {
    assert_true(n >= 4 && n <= 127);
    assert_int_equal(f[0], 0x88);
    assert_int_equal(f[1], n - 2);
    unsigned char wire[140];
    size_t wn = frame(wire, 1, WS_OP_CLOSE, f + 2, n - 2);
    driver d;
    driver_init(&d, 65536);
    feed(&d, wire, wn);
    assert_int_equal(d.nev, 1);
    assert_int_equal(d.ev[0].r, WS_CONTROL);
    assert_int_equal(d.ev[0].code, code);
    driver_close(&d);
}

static void
test_close_frame_cuts_long_reason_on_character_boundary(void **state) {
    unsigned char out[127 + 16]; /* spare, checked untouched */
    /* ASCII: cut at exactly 123. */
    char reason[400];
    memset(reason, 'r', 300);
    reason[300] = '\0';
    memset(out, 0xee, sizeof out);
    size_t n = ws_close_frame(out, 1011, reason);
    assert_int_equal(n, 127);
    assert_int_equal(out[1], 125);
    for (size_t i = 127; i < sizeof out; i++)
        assert_int_equal(out[i], 0xee);
    check_close_frame_parses(out, n, 1011);

    /* Characters of 2, 3 and 4 bytes straddling the cut at every offset. */
    const char *chars[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    for (size_t c = 0; c < 3; c++) {
        size_t cl = strlen(chars[c]);
        for (size_t lead = 115; lead <= 123; lead++) {
            memset(reason, 'a', lead);
            size_t at = lead;
            while (at + cl < sizeof reason - 1) {
                memcpy(reason + at, chars[c], cl);
                at += cl;
            }
            reason[at] = '\0';
            memset(out, 0xee, sizeof out);
            n = ws_close_frame(out, 1000, reason);
            size_t rl = n - 4;
            if (rl > 123 || rl + cl <= 123)
                fail_msg("char %zu lead %zu: reason cut to %zu bytes", c, lead,
                         rl);
            assert_memory_equal(out + 4, reason, rl);
            uint32_t st = 0;
            assert_int_equal(ws_utf8_check(&st, out + 4, rl), 0);
            if (st != 0)
                fail_msg("char %zu lead %zu: a character cut in two", c, lead);
            for (size_t i = 127; i < sizeof out; i++)
                assert_int_equal(out[i], 0xee);
            check_close_frame_parses(out, n, 1000);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_rfc_example_masked_hello),
        cmocka_unit_test(test_parse_text_frame_split_at_every_byte),
        cmocka_unit_test(test_parse_16bit_length_frame_split_at_every_byte),
        cmocka_unit_test(test_parse_multibyte_text_split_at_every_byte),
        cmocka_unit_test(test_parse_ping_split_is_kept_until_whole),
        cmocka_unit_test(test_parse_unmasks_across_pieces_of_odd_sizes),
        cmocka_unit_test(test_parse_16bit_lengths),
        cmocka_unit_test(test_parse_64bit_length),
        cmocka_unit_test(test_parse_fragmented_message_with_ping_between),
        cmocka_unit_test(test_parse_fragmented_message_split_at_every_byte),
        cmocka_unit_test(test_parse_empty_frames),
        cmocka_unit_test(test_parse_several_messages_in_one_read),
        cmocka_unit_test(test_parse_refuses_oversized_frame_at_header),
        cmocka_unit_test(test_parse_accepts_frame_at_exactly_the_limit),
        cmocka_unit_test(
            test_parse_refuses_fragment_crossing_limit_at_its_header),
        cmocka_unit_test(test_parse_refuses_unmasked_frame),
        cmocka_unit_test(test_parse_refuses_reserved_bits),
        cmocka_unit_test(
            test_parse_rsv1_marks_a_compressed_message_when_negotiated),
        cmocka_unit_test(test_parse_refuses_reserved_opcodes),
        cmocka_unit_test(test_parse_refuses_fragmented_control_frame),
        cmocka_unit_test(test_parse_refuses_control_frame_longer_than_125),
        cmocka_unit_test(test_parse_refuses_continuation_without_message),
        cmocka_unit_test(test_parse_refuses_new_message_inside_fragmented_one),
        cmocka_unit_test(test_parse_refuses_close_with_one_byte_payload),
        cmocka_unit_test(test_parse_refuses_invalid_close_codes),
        cmocka_unit_test(test_parse_accepts_valid_close_codes),
        cmocka_unit_test(test_parse_close_without_payload_reports_1005),
        cmocka_unit_test(test_parse_refuses_invalid_utf8_text),
        cmocka_unit_test(test_parse_refuses_invalid_utf8_across_fragments),
        cmocka_unit_test(test_parse_refuses_invalid_utf8_before_message_ends),
        cmocka_unit_test(
            test_parse_accepts_multibyte_text_split_across_fragments),
        cmocka_unit_test(test_parse_refuses_invalid_utf8_in_close_reason),
        cmocka_unit_test(test_parse_does_not_check_binary_as_utf8),
        cmocka_unit_test(test_parse_ping_payload_not_checked_as_utf8),
        cmocka_unit_test(test_utf8_check_table),
        cmocka_unit_test(test_utf8_check_every_code_point_round_trip),
        cmocka_unit_test(test_accept_key_matches_rfc_example),
        cmocka_unit_test(test_accept_key_other_lengths),
        cmocka_unit_test(test_control_frame_layout),
        cmocka_unit_test(test_close_frame_layout),
        cmocka_unit_test(
            test_close_frame_cuts_long_reason_on_character_boundary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
