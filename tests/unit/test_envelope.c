/* test_envelope.c -- unit tests for core/envelope.c: the checks every
 * client frame passes before any script runs, and the codes a client gets
 * back when it fails them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "envelope.h"

typedef struct expect {
    const char *frame;
    envelope_status status;
    const char *message_part; /* a piece of env.message, or NULL */
} expect_t;

static void check_all(const expect_t *cases, size_t n) {
    for (size_t i = 0; i < n; i++) {
        envelope_t env;
        envelope_status st =
            envelope_parse(cases[i].frame, strlen(cases[i].frame), &env);
        if (st != cases[i].status)
            fail_msg("frame %s: status %d, expected %d (%s)", cases[i].frame,
                     st, cases[i].status, env.message ? env.message : "");
        if (cases[i].message_part &&
            (!env.message || !strstr(env.message, cases[i].message_part)))
            fail_msg("frame %s: message '%s' lacks '%s'", cases[i].frame,
                     env.message ? env.message : "(null)",
                     cases[i].message_part);
        envelope_clear(&env);
    }
}

static void test_not_json_is_bad_json(void **state) {
    static const expect_t cases[] = {
        {"", ENVELOPE_BAD_JSON, "not JSON"},
        {"hello", ENVELOPE_BAD_JSON, NULL},
        {"{\"type\":\"chat\",}", ENVELOPE_BAD_JSON, NULL},
        {"{\"type\":'chat'}", ENVELOPE_BAD_JSON, NULL},
        {"{\"type\":\"chat\"} x", ENVELOPE_BAD_JSON, NULL},
    };
    check_all(cases, sizeof cases / sizeof *cases);
}

static void nest(char *buf, int depth) {
    char *p = buf;
    /* frame (1) > payload (2) > depth-3 arrays > {} (depth) */
    p += sprintf(p, "{\"type\":\"chat\",\"payload\":{\"a\":");
    for (int i = 0; i < depth - 3; i++)
        *p++ = '[';
    *p++ = '{';
    *p++ = '}';
    for (int i = 0; i < depth - 3; i++)
        *p++ = ']';
    *p++ = '}';
    *p++ = '}';
    *p = '\0';
}

static void test_depth_32_accepted_33_is_bad_json(void **state) {
    char buf[256];
    envelope_t env;
    nest(buf, 32);
    assert_int_equal(envelope_parse(buf, strlen(buf), &env), ENVELOPE_OK);
    envelope_clear(&env);
    nest(buf, 33);
    assert_int_equal(envelope_parse(buf, strlen(buf), &env), ENVELOPE_BAD_JSON);
    assert_non_null(strstr(env.message, "32"));
    envelope_clear(&env);
}

static void test_non_objects_are_bad_message(void **state) {
    static const expect_t cases[] = {
        {"[1,2]", ENVELOPE_BAD_MESSAGE, "object"},
        {"\"chat\"", ENVELOPE_BAD_MESSAGE, "object"},
        {"42", ENVELOPE_BAD_MESSAGE, "object"},
        {"null", ENVELOPE_BAD_MESSAGE, "object"},
    };
    check_all(cases, sizeof cases / sizeof *cases);
}

static void test_field_kinds_are_checked(void **state) {
    static const expect_t cases[] = {
        {"{}", ENVELOPE_BAD_MESSAGE, "no type"},
        {"{\"type\":1}", ENVELOPE_BAD_MESSAGE, "type must be a string"},
        {"{\"type\":\"chat\",\"id\":true}", ENVELOPE_BAD_MESSAGE, "id"},
        {"{\"type\":\"chat\",\"id\":null}", ENVELOPE_BAD_MESSAGE, "id"},
        {"{\"type\":\"chat\",\"id\":{}}", ENVELOPE_BAD_MESSAGE, "id"},
        {"{\"type\":\"chat\",\"room_id\":5}", ENVELOPE_BAD_MESSAGE, "room_id"},
        {"{\"type\":\"chat\",\"to\":5}", ENVELOPE_BAD_MESSAGE, "to must"},
        {"{\"type\":\"chat\",\"to\":[\"a\",5]}", ENVELOPE_BAD_MESSAGE, "to"},
        {"{\"type\":\"chat\",\"to\":[[\"a\"]]}", ENVELOPE_BAD_MESSAGE, "to"},
        {"{\"type\":\"chat\",\"payload\":[]}", ENVELOPE_BAD_MESSAGE, "payload"},
        {"{\"type\":\"chat\",\"payload\":\"hi\"}", ENVELOPE_BAD_MESSAGE,
         "payload"},
    };
    check_all(cases, sizeof cases / sizeof *cases);
}

static void test_valid_frames_pass(void **state) {
    static const expect_t cases[] = {
        {"{\"type\":\"chat\"}", ENVELOPE_OK, NULL},
        {"{\"type\":\"chat\",\"room_id\":\"r\",\"payload\":{\"text\":\"hi\"}}",
         ENVELOPE_OK, NULL},
        {"{\"type\":\"chat\",\"to\":\"bob\"}", ENVELOPE_OK, NULL},
        {"{\"type\":\"chat\",\"to\":[]}", ENVELOPE_OK, NULL},
        {"{\"type\":\"chat\",\"to\":[\"a\",\"b\"],\"id\":\"x\"}", ENVELOPE_OK,
         NULL},
        {" {\"extra\":[1,{\"type\":5}],\"type\":\"Join_Room2\"} ", ENVELOPE_OK,
         NULL},
    };
    check_all(cases, sizeof cases / sizeof *cases);
}

static void test_type_that_cannot_name_a_file_is_unknown_type(void **state) {
    char long_type[100];
    snprintf(long_type, sizeof long_type, "{\"type\":\"%065d\"}", 0);
    const expect_t cases[] = {
        {"{\"type\":\"../chat\"}", ENVELOPE_UNKNOWN_TYPE, NULL},
        {"{\"type\":\"\"}", ENVELOPE_UNKNOWN_TYPE, NULL},
        {"{\"type\":\"a b\"}", ENVELOPE_UNKNOWN_TYPE, NULL},
        {"{\"type\":\"chat.lua\"}", ENVELOPE_UNKNOWN_TYPE, NULL},
        {long_type, ENVELOPE_UNKNOWN_TYPE, NULL},
    };
    check_all(cases, sizeof cases / sizeof *cases);
}

static void test_type_is_copied_out(void **state) {
    envelope_t env;
    const char *f = "{\"payload\":{\"type\":\"inner\"},\"type\":\"chat\"}";
    assert_int_equal(envelope_parse(f, strlen(f), &env), ENVELOPE_OK);
    assert_string_equal(env.type, "chat");
    envelope_clear(&env);
}

static void test_last_duplicate_key_counts(void **state) {
    envelope_t env;
    const char *f = "{\"type\":5,\"type\":\"chat\"}";
    assert_int_equal(envelope_parse(f, strlen(f), &env), ENVELOPE_OK);
    assert_string_equal(env.type, "chat");
    envelope_clear(&env);
    f = "{\"type\":\"chat\",\"type\":5}";
    assert_int_equal(envelope_parse(f, strlen(f), &env), ENVELOPE_BAD_MESSAGE);
    envelope_clear(&env);
}

static void test_number_id_echoed_as_written(void **state) {
    envelope_t env;
    const char *f = "{\"type\":\"chat\",\"id\":1.50}";
    assert_int_equal(envelope_parse(f, strlen(f), &env), ENVELOPE_OK);
    assert_string_equal(env.id_json, "1.50");
    assert_int_equal(env.id_json_len, 4);
    envelope_clear(&env);
}

static void test_string_id_echoed_as_written(void **state) {
    envelope_t env;
    const char *f = "{\"type\":\"chat\",\"id\":\"a\\\"b\\u00e9\\/\"}";
    assert_int_equal(envelope_parse(f, strlen(f), &env), ENVELOPE_OK);
    assert_string_equal(env.id_json, "\"a\\\"b\\u00e9\\/\"");
    envelope_clear(&env);
}

static void test_number_ids_keep_their_text(void **state) {
    const char *ids[] = {"-0", "1e2", "1.50", "12345678901234567890", "-1E-2"};
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
        char f[96];
        snprintf(f, sizeof f, "{\"type\":\"chat\",\"id\":%s}", ids[i]);
        envelope_t env;
        assert_int_equal(envelope_parse(f, strlen(f), &env), ENVELOPE_OK);
        assert_string_equal(env.id_json, ids[i]);
        envelope_clear(&env);
    }
}

/* A number a double cannot hold could not be written back out: the frame
 * is bad_json. The id is echoed unless it is itself that number, wherever
 * it stands in the frame. */
static void test_number_out_of_range_is_bad_json_with_the_id(void **state) {
    envelope_t env;
    const char *f = "{\"type\":\"ping\",\"id\":1e999}";
    assert_int_equal(envelope_parse(f, strlen(f), &env), ENVELOPE_BAD_JSON);
    assert_null(env.id_json);
    assert_non_null(strstr(env.message, "out of range"));
    envelope_clear(&env);
    f = "{\"type\":\"ping\",\"id\":-1e999}";
    assert_int_equal(envelope_parse(f, strlen(f), &env), ENVELOPE_BAD_JSON);
    assert_null(env.id_json);
    envelope_clear(&env);
    f = "{\"type\":\"chat\",\"payload\":{\"n\":1e999},\"id\":5}";
    assert_int_equal(envelope_parse(f, strlen(f), &env), ENVELOPE_BAD_JSON);
    assert_string_equal(env.id_json, "5");
    envelope_clear(&env);
    f = "{\"id\":\"x\",\"type\":\"chat\",\"payload\":{\"n\":[-1e400]}}";
    assert_int_equal(envelope_parse(f, strlen(f), &env), ENVELOPE_BAD_JSON);
    assert_string_equal(env.id_json, "\"x\"");
    envelope_clear(&env);
}

static void test_id_kept_when_later_check_fails(void **state) {
    envelope_t env;
    const char *f = "{\"id\":7,\"room_id\":1,\"type\":\"chat\"}";
    assert_int_equal(envelope_parse(f, strlen(f), &env), ENVELOPE_BAD_MESSAGE);
    assert_string_equal(env.id_json, "7");
    envelope_clear(&env);
    f = "{\"id\":\"q\"}";
    assert_int_equal(envelope_parse(f, strlen(f), &env), ENVELOPE_BAD_MESSAGE);
    assert_string_equal(env.id_json, "\"q\"");
    envelope_clear(&env);
}

static void test_no_id_when_id_is_bad_or_json_is_bad(void **state) {
    envelope_t env;
    const char *f = "{\"id\":[1],\"type\":\"chat\"}";
    assert_int_equal(envelope_parse(f, strlen(f), &env), ENVELOPE_BAD_MESSAGE);
    assert_null(env.id_json);
    envelope_clear(&env);
    f = "{\"id\":1,\"type\":\"chat\"";
    assert_int_equal(envelope_parse(f, strlen(f), &env), ENVELOPE_BAD_JSON);
    assert_null(env.id_json);
    envelope_clear(&env);
}

static void test_codes_are_protocol_strings(void **state) {
    assert_string_equal(envelope_code(ENVELOPE_BAD_JSON), "bad_json");
    assert_string_equal(envelope_code(ENVELOPE_BAD_MESSAGE), "bad_message");
    assert_string_equal(envelope_code(ENVELOPE_UNKNOWN_TYPE), "unknown_type");
    assert_null(envelope_code(ENVELOPE_OK));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_not_json_is_bad_json),
        cmocka_unit_test(test_depth_32_accepted_33_is_bad_json),
        cmocka_unit_test(test_non_objects_are_bad_message),
        cmocka_unit_test(test_field_kinds_are_checked),
        cmocka_unit_test(test_valid_frames_pass),
        cmocka_unit_test(test_type_that_cannot_name_a_file_is_unknown_type),
        cmocka_unit_test(test_type_is_copied_out),
        cmocka_unit_test(test_last_duplicate_key_counts),
        cmocka_unit_test(test_number_id_echoed_as_written),
        cmocka_unit_test(test_string_id_echoed_as_written),
        cmocka_unit_test(test_number_ids_keep_their_text),
        cmocka_unit_test(test_number_out_of_range_is_bad_json_with_the_id),
        cmocka_unit_test(test_id_kept_when_later_check_fails),
        cmocka_unit_test(test_no_id_when_id_is_bad_or_json_is_bad),
        cmocka_unit_test(test_codes_are_protocol_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
