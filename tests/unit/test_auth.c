/* test_auth.c -- unit tests for core/auth.c.
 *
 * The token check is held to the standard's own example (RFC 7515 A.1, an
 * HS256 JWS whose signature was computed by the RFC's authors), then to
 * tokens built here for each way a token can be wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../support/jwt_sign.h"
#include "auth.h"

/* RFC 7515, appendix A.1. */
static const char rfc_token[] =
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLm"
    "NvbS9pc19yb290Ijp0cnVlfQ"
    ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/* Its key: the JWK's "k", base64url-decoded. */
static const unsigned char rfc_key[64] = {
    3,   35,  53,  75,  43,  15,  165, 188, 131, 126, 6,   101, 119,
    123, 166, 143, 90,  179, 40,  230, 240, 84,  201, 40,  169, 15,
    132, 178, 210, 80,  46,  191, 211, 251, 90,  146, 210, 6,   71,
    239, 150, 138, 180, 195, 119, 98,  61,  34,  61,  46,  33,  114,
    5,   46,  79,  8,   192, 205, 154, 245, 103, 208, 128, 163};
#define RFC_EXP 1300819380

static auth_status check(const char *tok, const void *key, size_t keylen,
                         int64_t now, char *sub) {
    char tmp[80];
    return auth_verify(tok, strlen(tok), key, keylen, now, sub ? sub : tmp,
                       sizeof tmp);
}

static void test_rfc7515_example_verifies(void **state) {
    (void)state;
    /* Signature and algorithm good; it has no sub, so it names no user. */
    assert_int_equal(
        check(rfc_token, rfc_key, sizeof rfc_key, RFC_EXP - 1, NULL),
        AUTH_NO_SUBJECT);
    /* At exp it has expired: exp is the first second it is not valid. */
    assert_int_equal(check(rfc_token, rfc_key, sizeof rfc_key, RFC_EXP, NULL),
                     AUTH_EXPIRED);
}

static void test_rfc7515_example_tampered(void **state) {
    (void)state;
    char t[sizeof rfc_token];
    memcpy(t, rfc_token, sizeof t);
    t[sizeof t - 2] = t[sizeof t - 2] == 'k' ? 'j' : 'k'; /* the signature */
    assert_int_equal(check(t, rfc_key, sizeof rfc_key, 0, NULL),
                     AUTH_BAD_SIGNATURE);
    memcpy(t, rfc_token, sizeof t);
    t[60] ^= 1; /* the payload */
    assert_int_equal(check(t, rfc_key, sizeof rfc_key, 0, NULL),
                     AUTH_BAD_SIGNATURE);
    assert_int_equal(check(rfc_token, "secret", 6, 0, NULL),
                     AUTH_BAD_SIGNATURE);
}

/* ---- tokens made here -----------------------------------------------------
 */

static const char key[] = "k3y";

/* header.claims.signature, signed with key. */
static char *make(const char *header, const char *claims) {
    static char tok[4096];
    assert_true(
        jwt_sign(header, strlen(header), claims, strlen(claims), key, tok) > 0);
    return tok;
}

#define HS256 "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

static auth_status mine(const char *tok, int64_t now, char *sub) {
    return check(tok, key, strlen(key), now, sub);
}

static void test_sub_is_returned(void **state) {
    (void)state;
    char sub[80];
    assert_int_equal(
        mine(make(HS256, "{\"sub\":\"alice\",\"exp\":100}"), 99, sub), AUTH_OK);
    assert_string_equal(sub, "alice");
    /* Claims it does not read are ignored, nested ones included. */
    assert_int_equal(
        mine(make(HS256, "{\"x\":{\"sub\":\"eve\",\"exp\":1},\"sub\":\"bob\","
                         "\"roles\":[\"a\",{\"exp\":\"no\"}],\"n\":null}"),
             5, sub),
        AUTH_OK);
    assert_string_equal(sub, "bob");
}

static void test_exp_and_nbf_bounds(void **state) {
    (void)state;
    const char *t = make(HS256, "{\"sub\":\"a\",\"nbf\":10,\"exp\":20}");
    assert_int_equal(mine(t, 9, NULL), AUTH_NOT_YET);
    assert_int_equal(mine(t, 10, NULL), AUTH_OK);
    assert_int_equal(mine(t, 19, NULL), AUTH_OK);
    assert_int_equal(mine(t, 20, NULL), AUTH_EXPIRED);
    assert_int_equal(
        mine(make(HS256, "{\"sub\":\"a\",\"exp\":\"20\"}"), 0, NULL),
        AUTH_MALFORMED);
    assert_int_equal(mine(make(HS256, "{\"sub\":\"a\",\"nbf\":[1]}"), 0, NULL),
                     AUTH_MALFORMED);
}

static void test_only_hs256(void **state) {
    (void)state;
    const char *claims = "{\"sub\":\"a\"}";
    assert_int_equal(mine(make("{\"alg\":\"none\"}", claims), 0, NULL),
                     AUTH_BAD_ALG);
    assert_int_equal(mine(make("{\"alg\":\"HS512\"}", claims), 0, NULL),
                     AUTH_BAD_ALG);
    assert_int_equal(mine(make("{\"alg\":\"hs256\"}", claims), 0, NULL),
                     AUTH_BAD_ALG);
    assert_int_equal(mine(make("{\"typ\":\"JWT\"}", claims), 0, NULL),
                     AUTH_BAD_ALG);
    assert_int_equal(mine(make("{\"alg\":[\"HS256\"]}", claims), 0, NULL),
                     AUTH_BAD_ALG);
    /* "none" with an empty signature, as an attacker would send it. */
    char t[256];
    snprintf(t, sizeof t, "%s", make("{\"alg\":\"none\"}", claims));
    *(strrchr(t, '.') + 1) = '\0';
    assert_int_equal(mine(t, 0, NULL), AUTH_BAD_ALG);
}

static void test_sub_must_be_a_short_string(void **state) {
    (void)state;
    assert_int_equal(mine(make(HS256, "{\"name\":\"a\"}"), 0, NULL),
                     AUTH_NO_SUBJECT);
    assert_int_equal(mine(make(HS256, "{\"sub\":7}"), 0, NULL),
                     AUTH_NO_SUBJECT);
    assert_int_equal(mine(make(HS256, "{\"sub\":{\"id\":\"a\"}}"), 0, NULL),
                     AUTH_NO_SUBJECT);
    assert_int_equal(mine(make(HS256, "{\"sub\":\"a\\u0000b\"}"), 0, NULL),
                     AUTH_NO_SUBJECT);
    char claims[200];
    snprintf(claims, sizeof claims, "{\"sub\":\"%0100d\"}", 0);
    assert_int_equal(mine(make(HS256, claims), 0, NULL), AUTH_NO_SUBJECT);
}

static void test_malformed_tokens(void **state) {
    (void)state;
    const char *good = make(HS256, "{\"sub\":\"a\"}");
    char t[4096];
    assert_int_equal(mine("", 0, NULL), AUTH_MALFORMED);
    assert_int_equal(mine("abc", 0, NULL), AUTH_MALFORMED);
    assert_int_equal(mine("a.b", 0, NULL), AUTH_MALFORMED);
    snprintf(t, sizeof t, "%s.x", good); /* four parts */
    assert_int_equal(mine(t, 0, NULL), AUTH_MALFORMED);
    snprintf(t, sizeof t, "%s=", good); /* padding is not base64url here */
    assert_int_equal(mine(t, 0, NULL), AUTH_BAD_SIGNATURE);
    snprintf(t, sizeof t, "+%s", good); /* a byte outside the alphabet */
    assert_int_equal(mine(t, 0, NULL), AUTH_MALFORMED);
    /* Parts that are JSON but not objects, or not JSON. */
    assert_int_equal(mine(make("[1]", "{}"), 0, NULL), AUTH_MALFORMED);
    assert_int_equal(mine(make(HS256, "\"sub\""), 0, NULL), AUTH_MALFORMED);
    assert_int_equal(mine(make(HS256, "{\"sub\":\"a\""), 0, NULL),
                     AUTH_MALFORMED);
    /* Longer than AUTH_MAX_TOKEN: refused before anything is decoded. */
    memset(t, 'A', AUTH_MAX_TOKEN + 1);
    t[AUTH_MAX_TOKEN + 1] = '\0';
    t[10] = t[20] = '.';
    assert_int_equal(mine(t, 0, NULL), AUTH_MALFORMED);
}

static void test_reasons_are_phrases(void **state) {
    (void)state;
    for (int st = AUTH_NO_SUBJECT; st <= AUTH_OK; st++)
        assert_true(strlen(auth_reason((auth_status)st)) > 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc7515_example_verifies),
        cmocka_unit_test(test_rfc7515_example_tampered),
        cmocka_unit_test(test_sub_is_returned),
        cmocka_unit_test(test_exp_and_nbf_bounds),
        cmocka_unit_test(test_only_hs256),
        cmocka_unit_test(test_sub_must_be_a_short_string),
        cmocka_unit_test(test_malformed_tokens),
        cmocka_unit_test(test_reasons_are_phrases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
