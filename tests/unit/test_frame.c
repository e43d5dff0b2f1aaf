/* test_frame.c -- unit tests for core/frame.c.
 *
 * A frame's wire bytes go to every recipient as they are, so the header
 * must be exactly what RFC 6455 says for an unmasked final text frame,
 * and the headroom in front must be there for libwebsockets' LWS_PRE.
 * Reference counting is checked with ASan's leak checker: a frame must be
 * freed with its last reference, not before and not never. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "frame.h"
#include "pmd.h"

/* A payload of n bytes with a recognisable pattern. */
static char *pattern(size_t n) {
    char *p = calloc(n ? n : 1, 1);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)('a' + i % 26);
    return p;
}

/* Checks wire = expected header + payload. */
static void check_wire(size_t len, const unsigned char *hdr, size_t hdr_len) {
    char *payload = pattern(len);
    frame_t *f = frame_create_text(payload, len);
    assert_int_equal(frame_wire_len(f), hdr_len + len);
    const unsigned char *w = frame_wire(f);
    assert_memory_equal(w, hdr, hdr_len);
    if (len) assert_memory_equal(w + hdr_len, payload, len);
    size_t plen = 0;
    const char *p = frame_payload(f, &plen);
    assert_int_equal(plen, len);
    assert_ptr_equal(p, (const char *)w + hdr_len);
    frame_unref(f);
    free(payload);
}

static void test_frame_empty_payload_has_two_byte_header(void **state) {
    const unsigned char hdr[] = {0x81, 0x00};
    check_wire(0, hdr, sizeof hdr);
}

static void test_frame_125_bytes_uses_seven_bit_length(void **state) {
    const unsigned char hdr[] = {0x81, 125};
    check_wire(125, hdr, sizeof hdr);
}

static void test_frame_126_bytes_uses_sixteen_bit_length(void **state) {
    const unsigned char hdr[] = {0x81, 126, 0x00, 126};
    check_wire(126, hdr, sizeof hdr);
}

static void test_frame_65535_bytes_uses_sixteen_bit_length(void **state) {
    const unsigned char hdr[] = {0x81, 126, 0xff, 0xff};
    check_wire(65535, hdr, sizeof hdr);
}

static void test_frame_65536_bytes_uses_sixty_four_bit_length(void **state) {
    const unsigned char hdr[] = {0x81, 127, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00};
    check_wire(65536, hdr, sizeof hdr);
}

static void test_frame_large_payload_length_is_big_endian(void **state) {
    /* 0x0102A3 bytes: every byte of the length field differs. */
    const unsigned char hdr[] = {0x81, 127, 0, 0, 0, 0, 0, 0x01, 0x02, 0xa3};
    check_wire(0x0102a3, hdr, sizeof hdr);
}

static void test_frame_is_unmasked_final_text(void **state) {
    const size_t lens[] = {0, 1, 125, 126, 65535, 65536};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char *payload = pattern(lens[i]);
        frame_t *f = frame_create_text(payload, lens[i]);
        const unsigned char *w = frame_wire(f);
        assert_int_equal(w[0], 0x81);     /* FIN, opcode 1 (text) */
        assert_int_equal(w[1] & 0x80, 0); /* MASK bit clear */
        frame_unref(f);
        free(payload);
    }
}

static void test_frame_copies_payload(void **state) {
    char payload[] = "{\"type\":\"hello\"}";
    frame_t *f = frame_create_text(payload, strlen(payload));
    memset(payload, 'X', strlen(payload));
    size_t len;
    const char *p = frame_payload(f, &len);
    assert_int_equal(len, strlen("{\"type\":\"hello\"}"));
    assert_memory_equal(p, "{\"type\":\"hello\"}", len);
    frame_unref(f);
}

static void test_frame_from_buf_takes_buf_storage(void **state) {
    buf_t b;
    buf_init(&b, FRAME_HEADROOM);
    buf_puts(&b, "{\"n\":");
    buf_printf(&b, "%d}", 42);
    const char *content = buf_content(&b);
    frame_t *f = frame_from_buf(&b);
    /* The buf is left empty, and the frame did not copy. */
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    size_t len;
    const char *p = frame_payload(f, &len);
    assert_ptr_equal(p, content);
    assert_int_equal(len, 8);
    assert_memory_equal(p, "{\"n\":42}", 8);
    const unsigned char hdr[] = {0x81, 8};
    assert_memory_equal(frame_wire(f), hdr, 2);
    buf_close(&b); /* harmless on an empty buf */
    frame_unref(f);
}

static void test_frame_from_empty_buf_makes_empty_frame(void **state) {
    buf_t b;
    buf_init(&b, FRAME_HEADROOM);
    frame_t *f = frame_from_buf(&b);
    assert_int_equal(frame_wire_len(f), 2);
    assert_int_equal(frame_wire(f)[0], 0x81);
    assert_int_equal(frame_wire(f)[1], 0);
    frame_unref(f);
}

static void test_frame_wire_has_lws_pre_writable_bytes_in_front(void **state) {
    /* libwebsockets writes into the LWS_PRE bytes before the buffer it is
     * given; ASan reports it if they are outside the allocation. */
    const size_t lens[] = {0, 125, 126, 65535, 65536};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char *payload = pattern(lens[i]);
        frame_t *f = frame_create_text(payload, lens[i]);
        unsigned char *w = frame_wire(f);
        memset(w - FRAME_LWS_PRE_MAX, 0xee, FRAME_LWS_PRE_MAX);
        /* ... without touching the frame itself. */
        assert_int_equal(w[0], 0x81);
        if (lens[i])
            assert_memory_equal(w + frame_wire_len(f) - lens[i], payload,
                                lens[i]);
        frame_unref(f);
        free(payload);
    }
    /* The headroom covers LWS_PRE plus the longest header. */
    assert_true(FRAME_HEADROOM >= FRAME_LWS_PRE_MAX + 10);
}

static void test_frame_created_with_one_reference(void **state) {
    frame_t *f = frame_create_text("x", 1);
    assert_int_equal(frame_refs(f), 1);
    frame_unref(f);
}

static void test_frame_ref_returns_same_frame_and_counts(void **state) {
    frame_t *f = frame_create_text("x", 1);
    assert_ptr_equal(frame_ref(f), f);
    assert_ptr_equal(frame_ref(f), f);
    assert_int_equal(frame_refs(f), 3);
    frame_unref(f);
    assert_int_equal(frame_refs(f), 2);
    /* Still readable while references remain (ASan checks). */
    assert_int_equal(frame_wire(f)[2], 'x');
    frame_unref(f);
    assert_int_equal(frame_refs(f), 1);
    assert_int_equal(frame_wire(f)[2], 'x');
    frame_unref(f); /* the last one frees; LeakSanitizer checks */
}

static void test_frame_shared_by_many_is_freed_with_last_unref(void **state) {
    enum { HOLDERS = 1000 };
    frame_t *f = frame_create_text("{\"type\":\"msg\"}", 14);
    static frame_t *held[HOLDERS];
    for (int i = 0; i < HOLDERS; i++)
        held[i] = frame_ref(f);
    frame_unref(f); /* the creator lets go first */
    assert_int_equal(frame_refs(held[0]), HOLDERS);
    for (int i = 0; i < HOLDERS; i++) {
        size_t len;
        assert_memory_equal(frame_payload(held[i], &len), "{\"type\"", 7);
        frame_unref(held[i]);
    }
}

static void test_frame_unref_null_is_noop(void **state) {
    frame_unref(NULL);
}

/* ---- the compressed variant (permessage-deflate) ---- */

/* A chat frame's JSON, n bytes, that compresses well. */
static char *chat_json(size_t n) {
    char *p = malloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = "{\"type\":\"chat\",\"text\":\"hello hello\"}"[i % 37];
    return p;
}

static void test_frame_deflated_is_made_once_and_shared(void **state) {
    pmd_deflater *d = pmd_deflater_create();
    char *payload = chat_json(1000);
    frame_t *f = frame_create_text(payload, 1000);
    frame_t *z = frame_deflated(f, d);
    assert_ptr_not_equal(z, f);
    /* Every later recipient gets the same bytes, not a new deflate. */
    assert_ptr_equal(frame_deflated(f, d), z);
    assert_ptr_equal(frame_deflated(f, d), z);
    /* The plain frame is untouched for recipients without compression. */
    assert_int_equal(frame_wire(f)[0], 0x81);
    size_t plen;
    assert_memory_equal(frame_payload(f, &plen), payload, 1000);

    /* FIN, RSV1, text; a 7-bit length; a payload that inflates back. */
    const unsigned char *w = frame_wire(z);
    size_t zn;
    const char *zp = frame_payload(z, &zn);
    assert_true(zn < 126 && zn < 1000);
    assert_int_equal(w[0], 0xc1);
    assert_int_equal(w[1], zn);
    assert_int_equal(frame_wire_len(z), 2 + zn);
    pmd_inflater *in = pmd_inflater_create();
    pmd_inflate_begin(in, 65536, 1);
    pmd_inflate_input(in, (const unsigned char *)zp, zn, 1);
    unsigned char out[2048];
    size_t got = 0;
    long r;
    while ((r = pmd_inflate_next(in, out + got, sizeof out - got)) > 0)
        got += (size_t)r;
    assert_int_equal(r, 0);
    assert_int_equal(got, 1000);
    assert_memory_equal(out, payload, 1000);
    pmd_inflater_destroy(in);
    /* The variant goes with the frame's last reference (ASan: no leak). */
    frame_unref(f);
    free(payload);
    pmd_deflater_destroy(d);
}

static void
test_frame_deflated_is_the_plain_frame_when_it_does_not_pay(void **state) {
    pmd_deflater *d = pmd_deflater_create();
    /* Short: not worth it. */
    char *payload = chat_json(PMD_MIN_PAYLOAD - 1);
    frame_t *f = frame_create_text(payload, PMD_MIN_PAYLOAD - 1);
    assert_ptr_equal(frame_deflated(f, d), f);
    frame_unref(f);
    free(payload);
    /* Incompressible: no smaller. */
    char rnd[600];
    uint32_t x = 7;
    for (size_t i = 0; i < sizeof rnd; i++) {
        x = x * 1103515245u + 12345u;
        rnd[i] = (char)(x >> 16);
    }
    f = frame_create_text(rnd, sizeof rnd);
    assert_ptr_equal(frame_deflated(f, d), f);
    assert_ptr_equal(frame_deflated(f, d), f);
    frame_unref(f);
    pmd_deflater_destroy(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_empty_payload_has_two_byte_header),
        cmocka_unit_test(test_frame_125_bytes_uses_seven_bit_length),
        cmocka_unit_test(test_frame_126_bytes_uses_sixteen_bit_length),
        cmocka_unit_test(test_frame_65535_bytes_uses_sixteen_bit_length),
        cmocka_unit_test(test_frame_65536_bytes_uses_sixty_four_bit_length),
        cmocka_unit_test(test_frame_large_payload_length_is_big_endian),
        cmocka_unit_test(test_frame_is_unmasked_final_text),
        cmocka_unit_test(test_frame_copies_payload),
        cmocka_unit_test(test_frame_from_buf_takes_buf_storage),
        cmocka_unit_test(test_frame_from_empty_buf_makes_empty_frame),
        cmocka_unit_test(test_frame_wire_has_lws_pre_writable_bytes_in_front),
        cmocka_unit_test(test_frame_created_with_one_reference),
        cmocka_unit_test(test_frame_ref_returns_same_frame_and_counts),
        cmocka_unit_test(test_frame_shared_by_many_is_freed_with_last_unref),
        cmocka_unit_test(test_frame_unref_null_is_noop),
        cmocka_unit_test(test_frame_deflated_is_made_once_and_shared),
        cmocka_unit_test(
            test_frame_deflated_is_the_plain_frame_when_it_does_not_pay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
