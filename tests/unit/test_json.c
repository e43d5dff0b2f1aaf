/* test_json.c -- unit tests for core/json.c: the strict parser every
 * client frame goes through and the encoders every server frame is built
 * with. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <limits.h>

#include "buf.h"
#include "json.h"
#include "json_int.h"

static json_status parse(const char *s) {
    return json_parse(s, strlen(s), JSON_MAX_DEPTH, NULL, NULL, NULL);
}

static void test_accepts_every_value_kind(void **state) {
    static const char *const ok[] = {
        "{}",
        "[]",
        "0",
        "-0",
        "1.5",
        "-1e5",
        "1E+2",
        "2.5e-3",
        "\"\"",
        "\"a\"",
        "true",
        "false",
        "null",
        " [ 1 , {\"a\" : [ ] } ] ",
        "{\"a\":{\"b\":[null,true,\"\\u0041\"]}}",
        "\"\\/\\b\\f\\n\\r\\t\"",
        "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"",
        "\"\\ud83d\\ude00\"",
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        if (parse(ok[i]) != JSON_OK) fail_msg("rejected: %s", ok[i]);
}

static void test_rejects_what_rfc8259_rejects(void **state) {
    static const char *const bad[] = {
        "",
        "   ",
        "[1,]",
        "{\"a\":1,}",
        "[1 2]",
        "{\"a\" 1}",
        "{a:1}",
        "'a'",
        "01",
        "+1",
        ".5",
        "1.",
        "1e",
        "-",
        "NaN",
        "Infinity",
        "tru",
        "nul",
        "[1] [2]",
        "{} x",
        "/* c */ {}",
        "\"a",
        "[1",
        "{\"a\":1",
        "\"\x01\"",
        "\"\\x\"",
        "\"\\u12\"",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\\ud800\\u0041\"",
        "\"\xc0\xaf\"",
        "\"\xed\xa0\x80\"",
        "\"\xf5\x80\x80\x80\"",
        "\"\xe2\x82\"",
        "\"\x80\"",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (parse(bad[i]) != JSON_ERR_SYNTAX)
            fail_msg("accepted or misreported: '%s'", bad[i]);
}

static void test_depth_32_accepted_33_rejected(void **state) {
    char buf[80];
    memset(buf, '[', 32);
    memset(buf + 32, ']', 32);
    assert_int_equal(json_parse(buf, 64, JSON_MAX_DEPTH, NULL, NULL, NULL),
                     JSON_OK);
    memset(buf, '[', 33);
    memset(buf + 33, ']', 33);
    json_error err;
    assert_int_equal(json_parse(buf, 66, JSON_MAX_DEPTH, NULL, NULL, &err),
                     JSON_ERR_DEPTH);
    assert_int_equal(err.offset, 32);
    assert_non_null(strstr(err.message, "32"));
}

static void test_hostile_nesting_does_not_recurse(void **state) {
    size_t n = 100000;
    char *buf = malloc(n);
    memset(buf, '[', n);
    assert_int_equal(json_parse(buf, n, JSON_MAX_DEPTH, NULL, NULL, NULL),
                     JSON_ERR_DEPTH);
    free(buf);
}

static void test_error_reports_offset_and_reason(void **state) {
    json_error err;
    const char *s = "{\"a\":1,}";
    assert_int_equal(json_parse(s, strlen(s), 32, NULL, NULL, &err),
                     JSON_ERR_SYNTAX);
    assert_int_equal(err.offset, 7);
    assert_non_null(strstr(err.message, "'}'"));
    assert_non_null(strstr(err.message, "byte 7"));
}

/* ---- events -------------------------------------------------------------- */

typedef struct rec {
    char out[2048];
    size_t n;
    int abort_at; /* stop on this event number (1-based), 0 never */
    int events;
} rec_t;

static int put(rec_t *r, const char *s, size_t n) {
    r->events++;
    if (r->n + n < sizeof r->out) {
        memcpy(r->out + r->n, s, n);
        r->n += n;
        r->out[r->n] = '\0';
    }
    return r->abort_at && r->events == r->abort_at;
}

static int r_bo(void *ud) {
    return put(ud, "{", 1);
}
static int r_eo(void *ud) {
    return put(ud, "}", 1);
}
static int r_ba(void *ud) {
    return put(ud, "[", 1);
}
static int r_ea(void *ud) {
    return put(ud, "]", 1);
}
static int r_key(void *ud, const char *s, size_t n) {
    assert_int_equal(s[n], '\0');
    put(ud, "k:", 2);
    return put(ud, s, n);
}
static int r_str(void *ud, const char *s, size_t n, const char *raw,
                 size_t rawlen) {
    assert_int_equal(s[n], '\0');
    put(ud, "s:", 2);
    return put(ud, s, n);
}
static int r_raw(void *ud, const char *s, size_t n, const char *raw,
                 size_t rawlen) {
    put(ud, raw, rawlen);
    return put(ud, "|", 1);
}
static int r_num(void *ud, double v, const char *raw, size_t rawlen) {
    char tmp[64];
    int k = snprintf(tmp, sizeof tmp, "n:%g/%.*s", v, (int)rawlen, raw);
    return put(ud, tmp, (size_t)k);
}
static int r_bool(void *ud, int v) {
    return put(ud, v ? "T" : "F", 1);
}
static int r_null(void *ud) {
    return put(ud, "N", 1);
}

static const json_sink recorder = {r_bo,  r_eo,  r_ba,   r_ea,   r_key,
                                   r_str, r_num, r_bool, r_null, NULL};

static void test_sink_sees_events_in_order(void **state) {
    rec_t r = {0};
    const char *s = "{\"a\":[1.50,true,null],\"b\":{\"c\":\"x\"},\"d\":false}";
    assert_int_equal(json_parse(s, strlen(s), 32, &recorder, &r, NULL),
                     JSON_OK);
    assert_string_equal(r.out, "{k:a[n:1.5/1.50TN]k:b{k:cs:x}k:dF}");
}

static void test_strings_are_unescaped_to_utf8(void **state) {
    rec_t r = {0};
    const char *s = "[\"\\u00e9\\ud83d\\ude00\\n\\\"\"]";
    assert_int_equal(json_parse(s, strlen(s), 32, &recorder, &r, NULL),
                     JSON_OK);
    assert_string_equal(r.out, "[s:\xc3\xa9\xf0\x9f\x98\x80\n\"]");
}

static void test_nul_escape_keeps_length(void **state) {
    rec_t r = {0};
    const char *s = "\"a\\u0000b\"";
    assert_int_equal(json_parse(s, strlen(s), 32, &recorder, &r, NULL),
                     JSON_OK);
    /* "s:" then a, NUL, b */
    assert_int_equal(r.n, 5);
    assert_memory_equal(r.out + 2, "a\0b", 3);
}

static void test_long_strings_use_the_heap_path(void **state) {
    size_t n = 5000;
    char *s = malloc(n + 3);
    s[0] = '"';
    memset(s + 1, 'x', n);
    s[n + 1] = '"';
    rec_t r = {0};
    assert_int_equal(json_parse(s, n + 2, 32, &recorder, &r, NULL), JSON_OK);
    assert_int_equal(r.events, 2);
    free(s);
}

/* json__plain_run ends a run at the first byte that is not plain, found
 * in a word at once: strings of bytes drawn from the kinds around the
 * limits (several non-plain ones in a word too) against a byte-by-byte
 * reference, at every alignment. */
static void test_plain_run_against_bytes(void **state) {
    static const unsigned char pick[] = {'a',  '"',  '\\', 0x00, 0x1f, 0x20,
                                         0x21, 0x5b, 0x5d, 0x7e, 0x7f, 0x80,
                                         0xc3, 0xff, '\n', 'z'};
    uint32_t x = 12345;
    char s[48];
    for (int round = 0; round < 200000; round++) {
        size_t n = (size_t)(round % 41), off = (size_t)(round % 7);
        for (size_t i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            /* Mostly plain, so that runs reach past a word. */
            unsigned r = (x >> 16) % 64;
            s[off + i] = (char)(r < 48 ? 'a' + r % 26 : pick[r % sizeof pick]);
        }
        size_t want = 0;
        while (want < n) {
            unsigned char c = (unsigned char)s[off + want];
            if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') break;
            want++;
        }
        assert_int_equal(json__plain_run(s + off, n), want);
    }
}

/* Plain runs are scanned eight bytes at a time: put each kind of byte that
 * ends a run (quote, backslash, control, UTF-8, 0x7f which does not) at
 * every offset of strings of every length up to 40, both ways. */
static void test_every_offset_of_a_plain_run(void **state) {
    static const struct {
        const char *raw, *json; /* the bytes, and how they are written */
    } kinds[] = {
        {"\"", "\\\""},      {"\\", "\\\\"},           {"\n", "\\n"},
        {"\x1f", "\\u001f"}, {"\xc3\xa9", "\xc3\xa9"}, {"\x7f", "\x7f"}};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        size_t rl = strlen(kinds[k].raw);
        for (size_t len = 0; len <= 40; len++) {
            for (size_t at = 0; at <= len; at++) {
                char raw[64], json[80], want[80];
                memset(raw, 'a' + (char)(at % 26), len);
                memmove(raw + at + rl, raw + at, len - at);
                memcpy(raw + at, kinds[k].raw, rl);
                size_t n = len + rl;
                /* written: the bytes between quotes, the one escaped */
                int wl =
                    snprintf(want, sizeof want, "\"%.*s%s%.*s\"", (int)at, raw,
                             kinds[k].json, (int)(len - at), raw + at + rl);
                buf_t b;
                buf_init(&b, 0);
                json_write_string(&b, raw, n);
                assert_int_equal(b.len, (size_t)wl);
                assert_memory_equal(buf_content(&b), want, b.len);
                /* read back: the bytes themselves */
                memcpy(json, buf_content(&b), b.len);
                rec_t r = {0};
                assert_int_equal(
                    json_parse(json, b.len, 32, &recorder, &r, NULL), JSON_OK);
                assert_int_equal(r.n, n + 2);
                assert_memory_equal(r.out + 2, raw, n);
                buf_close(&b);
            }
        }
    }
}

static void test_string_raw_is_the_text_as_written(void **state) {
    rec_t r = {0};
    const char *s = "[\"a\\u0041\\/\",\"plain\"]";
    static const json_sink raw_sink = {.string = r_raw};
    assert_int_equal(json_parse(s, strlen(s), 32, &raw_sink, &r, NULL),
                     JSON_OK);
    assert_string_equal(r.out, "\"a\\u0041\\/\"|\"plain\"|");
}

/* A sink that skips every object at depth 2 (the lazy payload's way):
 * the skipped object's text arrives whole, its contents unreported, and
 * the parse goes on after it. */
typedef struct skipper {
    int depth, events;
    char raw[128];
} skipper_t;
static int k_begin(void *ud) {
    skipper_t *k = ud;
    k->events++;
    return ++k->depth == 2 ? JSON_SINK_SKIP : 0;
}
static int k_end(void *ud) {
    skipper_t *k = ud;
    k->depth--;
    return 0;
}
static int k_scalar(void *ud) {
    ((skipper_t *)ud)->events++;
    return 0;
}
static int k_key(void *ud, const char *s, size_t n) {
    return k_scalar(ud);
}
static int k_string(void *ud, const char *s, size_t n, const char *raw,
                    size_t rawlen) {
    return k_scalar(ud);
}
static int k_skipped(void *ud, const char *raw, size_t n) {
    skipper_t *k = ud;
    k->depth--;
    snprintf(k->raw, sizeof k->raw, "%.*s", (int)n, raw);
    return 0;
}
static const json_sink skip_sink = {.begin_object = k_begin,
                                    .end_object = k_end,
                                    .key = k_key,
                                    .string = k_string,
                                    .skipped = k_skipped};

static void test_sink_can_skip_a_container(void **state) {
    skipper_t k = {0};
    const char *s = "{\"p\":{ \"a\" : [1, {\"b\":\"\\u00e9\"}] },\"q\":\"x\"}";
    assert_int_equal(json_parse(s, strlen(s), 32, &skip_sink, &k, NULL),
                     JSON_OK);
    assert_string_equal(k.raw, "{ \"a\" : [1, {\"b\":\"\\u00e9\"}] }");
    /* {, "p", { (skipped), "q", "x": nothing from inside. */
    assert_int_equal(k.events, 5);
    assert_int_equal(k.depth, 0);
    /* The skipped text is checked all the same. */
    const char *bad[] = {"{\"p\":{\"a\":\"\xff\"}}", "{\"p\":{\"a\":1e999}}",
                         "{\"p\":{\"a\":[1,]}}", "{\"p\":{\"a\":\"\\ud800\"}}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        skipper_t k2 = {0};
        if (json_parse(bad[i], strlen(bad[i]), 32, &skip_sink, &k2, NULL) ==
            JSON_OK)
            fail_msg("%s accepted", bad[i]);
    }
    /* And the depth: 3 levels allowed, the skipped one nests a 4th. */
    skipper_t k3 = {0};
    const char *deep = "{\"p\":{\"a\":[[]]}}";
    assert_int_equal(json_parse(deep, strlen(deep), 3, &skip_sink, &k3, NULL),
                     JSON_ERR_DEPTH);
}

/* A number a double cannot hold cannot be written back out (json_write_
 * number refuses infinities), so the text is refused; the sink still sees
 * the whole text first, and err points at the first such number. */
static void test_number_out_of_range_is_refused(void **state) {
    const char *bad[] = {"1e999", "-1e999", "[0,1e400,-1e400]",
                         "{\"a\":1E+999}",
                         "1000000000000000000000000000000000000000000000000000"
                         "0000000000000000000000000000000000000000000000000000"
                         "0000000000000000000000000000000000000000000000000000"
                         "0000000000000000000000000000000000000000000000000000"
                         "0000000000000000000000000000000000000000000000000000"
                         "0000000000000000000000000000000000000000000000000000"
                         "0000000000000000000000000000000000000000000000000"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_error err;
        if (json_parse(bad[i], strlen(bad[i]), 32, NULL, NULL, &err) !=
            JSON_ERR_RANGE)
            fail_msg("%.20s accepted", bad[i]);
        assert_non_null(strstr(err.message, "out of range"));
    }
    json_error err;
    rec_t r = {0};
    const char *s = "[1e999,\"after\"]";
    assert_int_equal(json_parse(s, strlen(s), 32, &recorder, &r, &err),
                     JSON_ERR_RANGE);
    assert_int_equal(err.offset, 1);
    assert_non_null(strstr(r.out, "s:after"));
    /* A syntax error still wins, and small or tiny numbers are fine. */
    s = "[1e999,";
    assert_int_equal(json_parse(s, strlen(s), 32, NULL, NULL, NULL),
                     JSON_ERR_SYNTAX);
    const char *ok[] = {"1e308", "-1.7976931348623157e308", "1e-999",
                        "12345678901234567890"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        assert_int_equal(json_parse(ok[i], strlen(ok[i]), 32, NULL, NULL, NULL),
                         JSON_OK);
}

static void test_sink_can_abort(void **state) {
    rec_t r = {.abort_at = 2};
    const char *s = "[1,2,3]";
    assert_int_equal(json_parse(s, strlen(s), 32, &recorder, &r, NULL),
                     JSON_ERR_ABORT);
    assert_int_equal(r.events, 2);
}

/* ---- encoding ------------------------------------------------------------ */

static void encode(const char *s, size_t n, char *out, size_t outlen) {
    buf_t b;
    buf_init(&b, 0);
    json_write_string(&b, s, n);
    snprintf(out, outlen, "%.*s", (int)b.len, buf_content(&b));
    /* Whatever went in, what comes out is JSON a strict parser takes. */
    assert_int_equal(json_parse(buf_content(&b), b.len, 32, NULL, NULL, NULL),
                     JSON_OK);
    buf_close(&b);
}

static void test_write_string_escapes_quotes_and_controls(void **state) {
    char out[128];
    encode("a\"b\\c\n\x01/", 8, out, sizeof out);
    assert_string_equal(out, "\"a\\\"b\\\\c\\n\\u0001/\"");
}

static void test_write_string_passes_valid_utf8(void **state) {
    char out[128];
    encode("\xc3\xa9\xf0\x9f\x98\x80", 6, out, sizeof out);
    assert_string_equal(out, "\"\xc3\xa9\xf0\x9f\x98\x80\"");
}

static void test_write_string_replaces_invalid_utf8(void **state) {
    char out[128];
    encode("a\xff"
           "b\xc3",
           4, out, sizeof out);
    assert_string_equal(out, "\"a\xef\xbf\xbd"
                             "b\xef\xbf\xbd\"");
    encode("\xed\xa0\x80", 3, out, sizeof out); /* a UTF-8 surrogate */
    assert_string_equal(out, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
}

static void number(double v, const char *want) {
    buf_t b;
    buf_init(&b, 0);
    assert_int_equal(json_write_number(&b, v), 0);
    buf_putc(&b, '\0');
    assert_string_equal(buf_content(&b), want);
    buf_close(&b);
}

static void test_write_number_integers_without_fraction(void **state) {
    number(0, "0");
    number(42, "42");
    number(-7, "-7");
    number(1795406914323.0, "1795406914323");
    number(9007199254740991.0, "9007199254740991");
    number(-9007199254740991.0, "-9007199254740991");
    number(-0.0, "0");
}

/* Integers of up to 15 digits skip strtod; longer ones and fractions do
 * not. Both must give the same doubles. */
static int n_capture(void *ud, double v, const char *raw, size_t rawlen) {
    *(double *)ud = v;
    return 0;
}

static void test_parse_numbers_exactly(void **state) {
    static const json_sink sink = {.number = n_capture};
    const char *texts[] = {"0",
                           "-0",
                           "7",
                           "-42",
                           "123456789012345",
                           "-999999999999999",
                           "1234567890123456",
                           "12345678901234567890",
                           "1.5",
                           "-2e3",
                           "1E-2"};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        double v = -1;
        assert_int_equal(
            json_parse(texts[i], strlen(texts[i]), 32, &sink, &v, NULL),
            JSON_OK);
        double want = strtod(texts[i], NULL);
        if (memcmp(&v, &want, sizeof v) != 0)
            fail_msg("%s parsed as %.17g, want %.17g", texts[i], v, want);
    }
}

static void test_write_number_round_trips(void **state) {
    double vals[] = {0.1, 1e300, -2.5e-300, 3.141592653589793, 1e16 + 2};
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) {
        buf_t b;
        buf_init(&b, 0);
        assert_int_equal(json_write_number(&b, vals[i]), 0);
        buf_putc(&b, '\0');
        assert_true(strtod(buf_content(&b), NULL) == vals[i]);
        buf_close(&b);
    }
    number(0.1, "0.1");
}

static void test_write_number_refuses_nan_and_infinity(void **state) {
    buf_t b;
    buf_init(&b, 0);
    assert_int_equal(json_write_number(&b, NAN), -1);
    assert_int_equal(json_write_number(&b, INFINITY), -1);
    assert_int_equal(json_write_number(&b, -INFINITY), -1);
    assert_int_equal(b.len, 0);
    buf_close(&b);
}

/* The welcome's timestamp and the connection ids are written without
 * printf: what "%lld" would write, at the edges too. */
static void test_buf_put_int_writes_what_printf_writes(void **state) {
    const long long vs[] = {
        0, 1, -1, 9, 10, -10, 1764576000123LL, LLONG_MAX, LLONG_MIN};
    for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
        buf_t b;
        buf_init(&b, 0);
        buf_puts(&b, "x");
        buf_put_int(&b, vs[i]);
        buf_putc(&b, '\0');
        char want[32];
        snprintf(want, sizeof want, "x%lld", vs[i]);
        assert_string_equal(buf_content(&b), want);
        buf_close(&b);
    }
    char out[20];
    assert_int_equal(buf_format_u64(out, ULLONG_MAX), 20);
    assert_memory_equal(out, "18446744073709551615", 20);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_every_value_kind),
        cmocka_unit_test(test_buf_put_int_writes_what_printf_writes),
        cmocka_unit_test(test_rejects_what_rfc8259_rejects),
        cmocka_unit_test(test_depth_32_accepted_33_rejected),
        cmocka_unit_test(test_hostile_nesting_does_not_recurse),
        cmocka_unit_test(test_error_reports_offset_and_reason),
        cmocka_unit_test(test_sink_sees_events_in_order),
        cmocka_unit_test(test_strings_are_unescaped_to_utf8),
        cmocka_unit_test(test_nul_escape_keeps_length),
        cmocka_unit_test(test_long_strings_use_the_heap_path),
        cmocka_unit_test(test_every_offset_of_a_plain_run),
        cmocka_unit_test(test_plain_run_against_bytes),
        cmocka_unit_test(test_string_raw_is_the_text_as_written),
        cmocka_unit_test(test_number_out_of_range_is_refused),
        cmocka_unit_test(test_sink_can_abort),
        cmocka_unit_test(test_write_string_escapes_quotes_and_controls),
        cmocka_unit_test(test_write_string_passes_valid_utf8),
        cmocka_unit_test(test_write_string_replaces_invalid_utf8),
        cmocka_unit_test(test_write_number_integers_without_fraction),
        cmocka_unit_test(test_sink_can_skip_a_container),
        cmocka_unit_test(test_parse_numbers_exactly),
        cmocka_unit_test(test_write_number_round_trips),
        cmocka_unit_test(test_write_number_refuses_nan_and_infinity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
