/* test_http.c -- unit tests for core/http.c: the request heads the front
 * door reads from strangers, the refusals it answers with, and the head it
 * hands on to libwebsockets.
 *
 * Heads are copied into buffers of exactly their size, so that ASan sees
 * any byte read past what the transport would have read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "http.h"

/* A heap copy of s of exactly strlen(s) bytes (no NUL). */
static char *exact(const char *s, size_t n) {
    char *p = malloc(n ? n : 1);
    memcpy(p, s, n);
    return p;
}

/* http_head_complete on the whole of s at once. */
static int complete_whole(const char *s, size_t n) {
    char *b = exact(s, n);
    size_t scanned = 0;
    int rc = http_head_complete(b, n, &scanned);
    free(b);
    return rc;
}

/* http_head_complete as bytes arrive one at a time: the first nonzero
 * answer, or 0 when all of s gave none. */
static int complete_bytewise(const char *s, size_t n) {
    size_t scanned = 0;
    for (size_t k = 1; k <= n; k++) {
        char *b = exact(s, k);
        int rc = http_head_complete(b, k, &scanned);
        free(b);
        if (rc) return rc;
    }
    return 0;
}

/* The same in two reads split at k. */
static int complete_split(const char *s, size_t n, size_t k) {
    size_t scanned = 0;
    char *b = exact(s, k);
    int rc = http_head_complete(b, k, &scanned);
    free(b);
    if (rc) return rc;
    b = exact(s, n);
    rc = http_head_complete(b, n, &scanned);
    free(b);
    return rc;
}

/* Parses the string s as a head (copied to an exact buffer kept in *keep,
 * which the caller frees). */
static int parse(http_req *r, const char *s, char **keep) {
    size_t n = strlen(s);
    *keep = exact(s, n);
    return http_parse(r, *keep, n);
}

static int parse_rc(const char *s) {
    http_req r;
    char *keep;
    int rc = parse(&r, s, &keep);
    free(keep);
    return rc;
}

/* ---- http_head_complete ---- */

static void test_head_complete_crlf_whole_and_bytewise_agree(void **state) {
    const char *head = "GET /ws?room=a HTTP/1.1\r\nHost: example\r\n"
                       "Upgrade: websocket\r\n\r\n";
    size_t n = strlen(head);
    assert_int_equal(complete_whole(head, n), (int)n);
    assert_int_equal(complete_bytewise(head, n), (int)n);
    /* Nothing before the blank line is a whole head. */
    for (size_t k = 1; k < n; k++)
        if (complete_whole(head, k) != 0)
            fail_msg("prefix of %zu bytes taken as a whole head", k);
}

static void test_head_complete_bare_lf(void **state) {
    const char *head = "GET / HTTP/1.1\nHost: example\n\n";
    size_t n = strlen(head);
    assert_int_equal(complete_whole(head, n), (int)n);
    assert_int_equal(complete_bytewise(head, n), (int)n);
}

static void
test_head_complete_reports_head_length_not_buffer_length(void **state) {
    /* A client that sends its first frame with the head: the head ends at
     * the blank line, the rest is not part of it. */
    const char *s = "GET / HTTP/1.1\r\nHost: a\r\n\r\n\x81\x85junk";
    size_t head = strlen("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_int_equal(complete_whole(s, strlen(s)), (int)head);
    assert_int_equal(complete_bytewise(s, strlen(s)), (int)head);
}

static void test_head_complete_blank_line_split_across_calls(void **state) {
    const char *heads[] = {
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\nHost: a\n\n",
        "GET / HTTP/1.1\r\nHost: a\r\n\n",
    };
    for (size_t h = 0; h < 3; h++) {
        size_t n = strlen(heads[h]);
        for (size_t k = 1; k < n; k++) {
            int rc = complete_split(heads[h], n, k);
            if (rc != (int)n)
                fail_msg("head %zu split at %zu: got %d, want %zu", h, k, rc,
                         n);
        }
    }
}

static void
test_head_complete_refuses_long_request_line_before_its_end(void **state) {
    /* A request line still arriving, far past any target we take. */
    size_t n = HTTP_MAX_TARGET + 200;
    char *s = malloc(n + 1);
    memcpy(s, "GET /", 5);
    memset(s + 5, 'a', n - 5);
    s[n] = '\0';
    assert_int_equal(complete_whole(s, n), -414);
    assert_int_equal(complete_bytewise(s, n), -414);
    /* Whole, with its line end and a blank line: still 414. */
    char *t = malloc(n + 64);
    snprintf(t, n + 64, "%s HTTP/1.1\r\nHost: a\r\n\r\n", s);
    assert_int_equal(complete_whole(t, strlen(t)), -414);
    assert_int_equal(complete_bytewise(t, strlen(t)), -414);
    free(t);
    free(s);
}

static void test_head_complete_accepts_target_at_the_limit(void **state) {
    char *s = malloc(HTTP_MAX_TARGET + 64);
    int n = snprintf(s, HTTP_MAX_TARGET + 64, "GET /%0*d HTTP/1.1\r\n\r\n",
                     HTTP_MAX_TARGET - 1, 0);
    assert_int_equal(complete_whole(s, (size_t)n), n);
    assert_int_equal(complete_bytewise(s, (size_t)n), n);
    http_req r;
    assert_int_equal(http_parse(&r, s, (size_t)n), 0);
    assert_int_equal(r.target_len, HTTP_MAX_TARGET);
    free(s);
}

/* A head of n bytes: the request line, header lines of about 100 bytes,
 * then the blank line when blank is set; without it, the head is cut at n
 * bytes in the middle of a line. */
static char *padded_head(size_t n, int blank) {
    char *s = malloc(n + 300);
    size_t at = (size_t)sprintf(s, "GET / HTTP/1.1\r\n");
    size_t end = blank ? n - 2 : n + 200;
    int k = 0;
    while (at < end) {
        size_t left = end - at, line = left >= 200 ? 100 : left;
        int pl = sprintf(s + at, "X-Pad-%d: ", k++);
        memset(s + at + pl, 'a', line - (size_t)pl - 2);
        s[at + line - 2] = '\r';
        s[at + line - 1] = '\n';
        at += line;
    }
    if (blank) {
        s[n - 2] = '\r';
        s[n - 1] = '\n';
    }
    s[n] = '\0';
    return s;
}

static void test_head_complete_refuses_head_over_max(void **state) {
    /* Incomplete and already at the limit: it can only end past it. */
    char *s = padded_head(HTTP_MAX_HEAD, 0);
    assert_int_equal(complete_whole(s, HTTP_MAX_HEAD), -431);
    assert_int_equal(complete_bytewise(s, HTTP_MAX_HEAD), -431);
    free(s);
    /* Whole, one byte too long. */
    s = padded_head(HTTP_MAX_HEAD + 1, 1);
    assert_int_equal(complete_whole(s, HTTP_MAX_HEAD + 1), -431);
    free(s);
    /* Whole, exactly at the limit: taken. */
    s = padded_head(HTTP_MAX_HEAD, 1);
    assert_int_equal(complete_whole(s, HTTP_MAX_HEAD), HTTP_MAX_HEAD);
    assert_int_equal(complete_bytewise(s, HTTP_MAX_HEAD), HTTP_MAX_HEAD);
    free(s);
}

/* ---- http_parse ---- */

static void test_parse_request_line_and_headers(void **state) {
    http_req r;
    char *keep;
    assert_int_equal(parse(&r,
                           "GET /chat?room=a&user=b HTTP/1.1\r\n"
                           "Host:   example.org  \t\r\n"
                           "Upgrade: websocket\r\n"
                           "X-Empty:\r\n"
                           "\r\n",
                           &keep),
                     0);
    assert_int_equal(r.method_len, 3);
    assert_memory_equal(r.method, "GET", 3);
    assert_int_equal(r.target_len, strlen("/chat?room=a&user=b"));
    assert_memory_equal(r.target, "/chat?room=a&user=b", r.target_len);
    assert_int_equal(r.path_len, 5);
    assert_int_equal(r.minor, 1);
    assert_int_equal(r.nheaders, 3);
    assert_int_equal(r.headers[0].name_len, 4);
    assert_memory_equal(r.headers[0].name, "Host", 4);
    assert_int_equal(r.headers[0].value_len, strlen("example.org"));
    assert_memory_equal(r.headers[0].value, "example.org", 11);
    assert_memory_equal(r.headers[1].name, "Upgrade", 7);
    assert_memory_equal(r.headers[1].value, "websocket", 9);
    assert_int_equal(r.headers[2].value_len, 0);
    free(keep);
}

static void test_parse_bare_lf_and_http10(void **state) {
    http_req r;
    char *keep;
    assert_int_equal(parse(&r, "POST /x HTTP/1.0\nA: 1\nB: 2\n\n", &keep), 0);
    assert_memory_equal(r.method, "POST", 4);
    assert_int_equal(r.method_len, 4);
    assert_int_equal(r.target_len, 2);
    assert_int_equal(r.path_len, 2);
    assert_int_equal(r.minor, 0);
    assert_int_equal(r.nheaders, 2);
    assert_memory_equal(r.headers[1].value, "2", 1);
    assert_int_equal(r.headers[1].value_len, 1);
    free(keep);
}

static void test_parse_refuses_malformed_request_lines(void **state) {
    const char *bad[] = {
        "\r\n\r\n",
        "GET\r\n\r\n",
        "GET /\r\n\r\n",
        "GET  / HTTP/1.1\r\n\r\n",
        " GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1 \r\n\r\n",
        "GET / HTTP/1.1x\r\n\r\n",
        "GET / HTTP/1\r\n\r\n",
        "GET / http/1.1\r\n\r\n",
        "GET / FTP/1.1\r\n\r\n",
        "GET http://example/ HTTP/1.1\r\n\r\n",
        "GET * HTTP/1.1\r\n\r\n",
        "G(T / HTTP/1.1\r\n\r\n",
        "GET /a\x01 HTTP/1.1\r\n\r\n",
        "GET /a\x7f HTTP/1.1\r\n\r\n",
        "GET /a\tb HTTP/1.1\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = parse_rc(bad[i]);
        if (rc != -400) fail_msg("request line %zu: got %d, want -400", i, rc);
    }
}

static void test_parse_refuses_other_http_versions_with_505(void **state) {
    assert_int_equal(parse_rc("GET / HTTP/2.0\r\n\r\n"), -505);
    assert_int_equal(parse_rc("GET / HTTP/0.9\r\n\r\n"), -505);
    assert_int_equal(parse_rc("GET / HTTP/3.0\r\n\r\n"), -505);
}

static void test_parse_refuses_malformed_header_lines(void **state) {
    const char *bad[] = {
        "GET / HTTP/1.1\r\nHost example\r\n\r\n",     /* no colon */
        "GET / HTTP/1.1\r\nHost : example\r\n\r\n",   /* space before colon */
        "GET / HTTP/1.1\r\nHost\t: example\r\n\r\n",  /* tab before colon */
        "GET / HTTP/1.1\r\n: example\r\n\r\n",        /* empty name */
        "GET / HTTP/1.1\r\nX: a\x01z\r\n\r\n",        /* control character */
        "GET / HTTP/1.1\r\nX: a\x7fz\r\n\r\n",        /* DEL */
        "GET / HTTP/1.1\r\nX: a\rz\r\n\r\n",          /* a CR alone */
        "GET / HTTP/1.1\r\nX: a\x00z\r\n\r\n",        /* NUL: cut by strlen */
        "GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",  /* obsolete folding */
        "GET / HTTP/1.1\r\nX: a\r\n\tfolded\r\n\r\n", /* folding with a tab */
        "GET / HTTP/1.1\r\nX(y): a\r\n\r\n",          /* not a token */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (i == 7) continue; /* a C string cannot carry the NUL; below */
        int rc = parse_rc(bad[i]);
        if (rc != -400) fail_msg("header case %zu: got %d, want -400", i, rc);
    }
    const char nul[] = "GET / HTTP/1.1\r\nX: a\0z\r\n\r\n";
    http_req r;
    char *b = exact(nul, sizeof nul - 1);
    assert_int_equal(http_parse(&r, b, sizeof nul - 1), -400);
    free(b);
}

static char *many_headers(int n) {
    char *s = malloc((size_t)n * 32 + 64);
    size_t at = (size_t)sprintf(s, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < n; i++)
        at += (size_t)sprintf(s + at, "H%d: v\r\n", i);
    strcpy(s + at, "\r\n");
    return s;
}

static void test_parse_header_count_limit(void **state) {
    char *s = many_headers(HTTP_MAX_HEADERS);
    http_req r;
    char *keep;
    assert_int_equal(parse(&r, s, &keep), 0);
    assert_int_equal(r.nheaders, HTTP_MAX_HEADERS);
    free(keep);
    free(s);
    s = many_headers(HTTP_MAX_HEADERS + 1);
    assert_int_equal(parse_rc(s), -431);
    free(s);
}

static void test_header_get_is_case_insensitive(void **state) {
    http_req r;
    char *keep;
    assert_int_equal(parse(&r,
                           "GET / HTTP/1.1\r\nSec-WebSocket-Key: k1\r\n"
                           "HOST: h\r\nsec-websocket-key: k2\r\n\r\n",
                           &keep),
                     0);
    size_t len = 99;
    const char *v = http_header_get(&r, "sec-websocket-key", &len);
    assert_non_null(v);
    assert_int_equal(len, 2);
    assert_memory_equal(v, "k1", 2); /* the first of that name */
    v = http_header_get(&r, "Host", &len);
    assert_non_null(v);
    assert_memory_equal(v, "h", 1);
    assert_null(http_header_get(&r, "Hos", &len));
    assert_null(http_header_get(&r, "Hostname", &len));
    assert_non_null(http_header_get(&r, "host", NULL));
    free(keep);
}

static void test_header_has_token_in_lists(void **state) {
    http_req r;
    char *keep;
    assert_int_equal(parse(&r,
                           "GET / HTTP/1.1\r\n"
                           "Connection: keep-alive, Upgrade\r\n"
                           "Upgrade:  h2c ,\tWebSocket  \r\n"
                           "X-List: , ,a,,b ,\r\n"
                           "Origin: upgrade\r\n\r\n",
                           &keep),
                     0);
    assert_true(http_header_has_token(&r, "Connection", "upgrade"));
    assert_true(http_header_has_token(&r, "connection", "Keep-Alive"));
    assert_false(http_header_has_token(&r, "Connection", "close"));
    assert_false(http_header_has_token(&r, "Connection", "Upgrad"));
    assert_false(http_header_has_token(&r, "Connection", "keep"));
    assert_true(http_header_has_token(&r, "Upgrade", "websocket"));
    assert_true(http_header_has_token(&r, "Upgrade", "h2c"));
    assert_true(http_header_has_token(&r, "X-List", "a"));
    assert_true(http_header_has_token(&r, "X-List", "b"));
    /* Another header holding the token does not count. */
    assert_false(
        http_header_has_token(&r, "Sec-WebSocket-Protocol", "upgrade"));
    free(keep);
}

static void test_header_has_token_across_repeated_headers(void **state) {
    http_req r;
    char *keep;
    assert_int_equal(parse(&r,
                           "GET / HTTP/1.1\r\nConnection: keep-alive\r\n"
                           "Host: h\r\nconnection: Upgrade\r\n\r\n",
                           &keep),
                     0);
    assert_true(http_header_has_token(&r, "Connection", "upgrade"));
    assert_true(http_header_has_token(&r, "Connection", "keep-alive"));
    free(keep);
}

/* ---- http_query_arg ---- */

static void test_query_arg_decodes_escapes_and_plus(void **state) {
    http_req r;
    char *keep;
    assert_int_equal(parse(&r,
                           "GET /ws?user=j%C3%b6rg+x&room=a%2Fb%20c&n=%41 "
                           "HTTP/1.1\r\n\r\n",
                           &keep),
                     0);
    char out[64];
    assert_int_equal(http_query_arg(&r, "user", out, sizeof out), 7);
    assert_string_equal(out, "j\xc3\xb6rg x");
    assert_int_equal(http_query_arg(&r, "room", out, sizeof out), 5);
    assert_string_equal(out, "a/b c");
    assert_int_equal(http_query_arg(&r, "n", out, sizeof out), 1);
    assert_string_equal(out, "A");
    free(keep);
}

static void test_query_arg_absent(void **state) {
    const char *heads[] = {
        "GET /ws HTTP/1.1\r\n\r\n",
        "GET /ws? HTTP/1.1\r\n\r\n",
        "GET /ws?room=a HTTP/1.1\r\n\r\n",
        "GET /ws?username=bob HTTP/1.1\r\n\r\n",
        "GET /ws?xuser=bob HTTP/1.1\r\n\r\n",
        "GET /user=bob HTTP/1.1\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof heads / sizeof *heads; i++) {
        http_req r;
        char *keep;
        assert_int_equal(parse(&r, heads[i], &keep), 0);
        char out[16];
        int rc = http_query_arg(&r, "user", out, sizeof out);
        if (rc != -1) fail_msg("head %zu: got %d, want -1 (absent)", i, rc);
        free(keep);
    }
}

static void test_query_arg_name_prefix_of_another(void **state) {
    http_req r;
    char *keep;
    assert_int_equal(
        parse(&r, "GET /ws?username=bob&user=al&users=x HTTP/1.1\r\n\r\n",
              &keep),
        0);
    char out[16];
    assert_int_equal(http_query_arg(&r, "user", out, sizeof out), 2);
    assert_string_equal(out, "al");
    assert_int_equal(http_query_arg(&r, "username", out, sizeof out), 3);
    assert_string_equal(out, "bob");
    assert_int_equal(http_query_arg(&r, "use", out, sizeof out), -1);
    free(keep);
}

static void test_query_arg_empty_value(void **state) {
    http_req r;
    char *keep;
    assert_int_equal(parse(&r, "GET /ws?a=&b&c=1 HTTP/1.1\r\n\r\n", &keep), 0);
    char out[16];
    memset(out, 'x', sizeof out);
    assert_int_equal(http_query_arg(&r, "a", out, sizeof out), 0);
    assert_string_equal(out, "");
    memset(out, 'x', sizeof out);
    assert_int_equal(http_query_arg(&r, "b", out, sizeof out), 0);
    assert_string_equal(out, "");
    assert_int_equal(http_query_arg(&r, "c", out, sizeof out), 1);
    assert_string_equal(out, "1");
    free(keep);
}

static void test_query_arg_refuses_malformed_escape(void **state) {
    const char *heads[] = {
        "GET /ws?t=%zz HTTP/1.1\r\n\r\n",    "GET /ws?t=%4 HTTP/1.1\r\n\r\n",
        "GET /ws?t=% HTTP/1.1\r\n\r\n",      "GET /ws?t=ab%4g HTTP/1.1\r\n\r\n",
        "GET /ws?t=%4&u=1 HTTP/1.1\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof heads / sizeof *heads; i++) {
        http_req r;
        char *keep;
        assert_int_equal(parse(&r, heads[i], &keep), 0);
        char out[16];
        int rc = http_query_arg(&r, "t", out, sizeof out);
        if (rc != -2) fail_msg("head %zu: got %d, want -2", i, rc);
        free(keep);
    }
}

static void test_query_arg_refuses_value_too_long(void **state) {
    http_req r;
    char *keep;
    assert_int_equal(
        parse(&r, "GET /ws?t=abcd&e=%41%42 HTTP/1.1\r\n\r\n", &keep), 0);
    char out[8];
    memset(out, 'x', sizeof out);
    assert_int_equal(http_query_arg(&r, "t", out, 4), -2); /* no room: NUL */
    assert_int_equal(out[4], 'x');                         /* nothing past */
    assert_int_equal(http_query_arg(&r, "t", out, 5), 4);
    assert_string_equal(out, "abcd");
    /* Decoded length counts, not the escaped one. */
    assert_int_equal(http_query_arg(&r, "e", out, 3), 2);
    assert_string_equal(out, "AB");
    free(keep);
}

static void test_query_arg_with_no_room_writes_nothing(void **state) {
    /* cap 0: not even the NUL fits, so the value does not fit. */
    http_req r;
    char *keep;
    assert_int_equal(parse(&r, "GET /ws?t= HTTP/1.1\r\n\r\n", &keep), 0);
    char out[2] = {'x', 'x'};
    int rc = http_query_arg(&r, "t", out, 0);
    free(keep);
    assert_int_equal(rc, -2);
    assert_int_equal(out[0], 'x');
}

/* ---- refusals and the forwarded head ---- */

/* Checks that the response in b is well formed: a status line with the
 * status, header lines, a blank line, and a body of Content-Length bytes
 * that is why and a newline. */
static void check_refusal(const buf_t *b, int status, const char *why,
                          const char *extra) {
    size_t n = b->len;
    char *s = malloc(n + 1);
    memcpy(s, buf_content(b), n);
    s[n] = '\0';
    char want[128];
    snprintf(want, sizeof want, "HTTP/1.1 %d %s\r\n", status,
             http_reason(status));
    assert_true(strncmp(s, want, strlen(want)) == 0);
    char *end = strstr(s, "\r\n\r\n");
    assert_non_null(end);
    *end = '\0';
    const char *body = end + 4;
    size_t body_len = n - (size_t)(body - s);
    /* Every head line ends in CR LF; no bare LF. */
    for (const char *p = s; *p; p++)
        if (*p == '\n') assert_true(p > s && p[-1] == '\r');
    const char *cl = strstr(s, "\r\nContent-Length: ");
    assert_non_null(cl);
    unsigned long v = strtoul(cl + strlen("\r\nContent-Length: "), NULL, 10);
    assert_int_equal(v, body_len);
    assert_non_null(strstr(s, "\r\nConnection: close"));
    assert_int_equal(body_len, strlen(why) + 1);
    assert_memory_equal(body, why, strlen(why));
    assert_int_equal(body[body_len - 1], '\n');
    if (extra) {
        char *line = strdup(extra);
        line[strlen(line) - 2] = '\0'; /* without its CR LF */
        assert_non_null(strstr(s, line));
        free(line);
    }
    free(s);
}

static void
test_refusal_is_well_formed_with_correct_content_length(void **state) {
    const int statuses[] = {400, 404, 405, 408, 414, 426, 431, 505};
    for (size_t i = 0; i < sizeof statuses / sizeof *statuses; i++) {
        assert_string_not_equal(http_reason(statuses[i]), "Error");
        buf_t b;
        buf_init(&b, 0);
        http_refusal(&b, statuses[i], "request head too large (\xc3\xa9)",
                     NULL);
        check_refusal(&b, statuses[i], "request head too large (\xc3\xa9)",
                      NULL);
        buf_close(&b);
    }
    buf_t b;
    buf_init(&b, 0);
    const char *extra = "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n";
    http_refusal(&b, 426, "this endpoint speaks WebSocket only", extra);
    check_refusal(&b, 426, "this endpoint speaks WebSocket only", extra);
    buf_close(&b);
    /* An empty reason still has its newline, and a length of 1. */
    buf_init(&b, 0);
    http_refusal(&b, 400, "", NULL);
    check_refusal(&b, 400, "", NULL);
    buf_close(&b);
}

static void test_forward_head_keeps_only_listed_headers(void **state) {
    http_req r;
    char *keep;
    assert_int_equal(parse(&r,
                           "GET /index.html?v=2 HTTP/1.1\r\n"
                           "Host: example.org\r\n"
                           "Connection: keep-alive, Upgrade\r\n"
                           "Upgrade: h2c\r\n"
                           "X-Secret: do-not-forward\r\n"
                           "Cookie: a=b\r\n"
                           "accept-encoding: gzip\r\n"
                           "Transfer-Encoding: chunked\r\n"
                           "Keep-Alive: timeout=5\r\n\r\n",
                           &keep),
                     0);
    buf_t b;
    buf_init(&b, 0);
    assert_int_equal(http_forward_head(&r, &b, 4096), 0);
    buf_putc(&b, '\0');
    const char *s = buf_content(&b);
    assert_true(strncmp(s, "GET /index.html?v=2 HTTP/1.1\r\n", 30) == 0);
    assert_non_null(strstr(s, "\r\nHost: example.org\r\n"));
    assert_non_null(strstr(s, "\r\nCookie: a=b\r\n"));
    assert_non_null(strstr(s, "\r\nAccept-Encoding: gzip\r\n"));
    assert_null(strstr(s, "X-Secret"));
    assert_null(strstr(s, "Upgrade"));
    assert_null(strstr(s, "keep-alive"));
    assert_null(strstr(s, "Keep-Alive"));
    assert_null(strstr(s, "Transfer-Encoding"));
    /* Connection: close once, and the head ends right after it. */
    const char *c = strstr(s, "Connection:");
    assert_non_null(c);
    assert_string_equal(c, "Connection: close\r\n\r\n");
    /* And what lws gets is itself a head we would take. */
    size_t n = b.len - 1, scanned = 0;
    assert_int_equal(http_head_complete(s, n, &scanned), (int)n);
    http_req f;
    assert_int_equal(http_parse(&f, s, n), 0);
    assert_int_equal(f.nheaders, 4);
    assert_true(http_header_has_token(&f, "Connection", "close"));
    buf_close(&b);
    free(keep);
}

static void test_forward_head_refuses_past_max(void **state) {
    char *s = malloc(6000);
    int n = sprintf(s, "GET / HTTP/1.1\r\nHost: h\r\nCookie: ");
    memset(s + n, 'c', 3000);
    strcpy(s + n + 3000, "\r\n\r\n");
    http_req r;
    assert_int_equal(http_parse(&r, s, strlen(s)), 0);
    buf_t b;
    buf_init(&b, 0);
    buf_puts(&b, "before");
    assert_int_equal(http_forward_head(&r, &b, 8192), 0);
    size_t full = b.len - strlen("before");
    /* Exactly fits; one byte less does not, and leaves the buf as it was. */
    buf_reset(&b);
    buf_puts(&b, "before");
    assert_int_equal(http_forward_head(&r, &b, full), 0);
    assert_int_equal(b.len, strlen("before") + full);
    buf_reset(&b);
    buf_puts(&b, "before");
    assert_int_equal(http_forward_head(&r, &b, full - 1), -431);
    assert_int_equal(b.len, strlen("before"));
    assert_memory_equal(buf_content(&b), "before", 6);
    buf_close(&b);
    free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_complete_crlf_whole_and_bytewise_agree),
        cmocka_unit_test(test_head_complete_bare_lf),
        cmocka_unit_test(
            test_head_complete_reports_head_length_not_buffer_length),
        cmocka_unit_test(test_head_complete_blank_line_split_across_calls),
        cmocka_unit_test(
            test_head_complete_refuses_long_request_line_before_its_end),
        cmocka_unit_test(test_head_complete_accepts_target_at_the_limit),
        cmocka_unit_test(test_head_complete_refuses_head_over_max),
        cmocka_unit_test(test_parse_request_line_and_headers),
        cmocka_unit_test(test_parse_bare_lf_and_http10),
        cmocka_unit_test(test_parse_refuses_malformed_request_lines),
        cmocka_unit_test(test_parse_refuses_other_http_versions_with_505),
        cmocka_unit_test(test_parse_refuses_malformed_header_lines),
        cmocka_unit_test(test_parse_header_count_limit),
        cmocka_unit_test(test_header_get_is_case_insensitive),
        cmocka_unit_test(test_header_has_token_in_lists),
        cmocka_unit_test(test_header_has_token_across_repeated_headers),
        cmocka_unit_test(test_query_arg_decodes_escapes_and_plus),
        cmocka_unit_test(test_query_arg_absent),
        cmocka_unit_test(test_query_arg_name_prefix_of_another),
        cmocka_unit_test(test_query_arg_empty_value),
        cmocka_unit_test(test_query_arg_refuses_malformed_escape),
        cmocka_unit_test(test_query_arg_refuses_value_too_long),
        cmocka_unit_test(test_query_arg_with_no_room_writes_nothing),
        cmocka_unit_test(
            test_refusal_is_well_formed_with_correct_content_length),
        cmocka_unit_test(test_forward_head_keeps_only_listed_headers),
        cmocka_unit_test(test_forward_head_refuses_past_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
