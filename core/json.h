/* json.h -- a strict, streaming JSON parser and the encoding helpers.
 *
 * The parser follows RFC 8259 exactly (no comments, no trailing commas, no
 * NaN, no leading zeros, no unescaped control characters in strings, one
 * value followed only by whitespace) and reports what it reads to a sink of
 * callbacks, so the same parser serves the envelope check in C and the
 * building of Lua tables in the script bridge. Strings reach the sink
 * unescaped (\u escapes and surrogate pairs turned into UTF-8); a lone or
 * mismatched surrogate is a syntax error. Invalid UTF-8 inside strings is
 * a syntax error too. */
#ifndef LUAHUB_JSON_H
#define LUAHUB_JSON_H

#include "buf.h"
#include <stddef.h>

/* The protocol's limit: JSON nested deeper than this is bad_json.
 * "{}" has depth 1; 32 nested arrays are accepted, 33 are not. */
#define JSON_MAX_DEPTH 32

typedef enum json_status {
    JSON_OK = 0,
    JSON_ERR_SYNTAX = -1, /* not JSON */
    JSON_ERR_DEPTH = -2,  /* nested deeper than max_depth */
    JSON_ERR_ABORT = -3,  /* a sink callback returned non-zero */
    JSON_ERR_RANGE = -4,  /* a number too large for a double (1e999) */
} json_status;

/* Every callback returns 0 to go on or non-zero to stop the parse with
 * JSON_ERR_ABORT. String and key bytes are borrowed for the call only and
 * are NUL-terminated at s[n] (they may contain NUL bytes from \u0000).
 * A NULL callback is skipped. `raw` of a number or a string is its text in
 * the input (a string's with its quotes and escapes as written). */
typedef struct json_sink {
    int (*begin_object)(void *ud);
    int (*end_object)(void *ud);
    int (*begin_array)(void *ud);
    int (*end_array)(void *ud);
    int (*key)(void *ud, const char *s, size_t n);
    int (*string)(void *ud, const char *s, size_t n, const char *raw,
                  size_t rawlen);
    int (*number)(void *ud, double v, const char *raw, size_t rawlen);
    int (*boolean)(void *ud, int v);
    int (*null)(void *ud);
    /* A container whose begin_object or begin_array returned
     * JSON_SINK_SKIP: its contents are checked as everything else (depth,
     * strings, UTF-8, numbers' range) but not reported; instead this gets
     * its text as written, brackets included, in place of the end_object
     * or end_array call. Needed by a sink that skips. */
    int (*skipped)(void *ud, const char *raw, size_t rawlen);
} json_sink;

/* What begin_object or begin_array returns to have the container skipped
 * (see json_sink.skipped). */
#define JSON_SINK_SKIP 2

typedef struct json_error {
    json_status status;
    size_t offset;    /* byte offset of the problem in the input */
    char message[96]; /* for people, e.g. "unexpected ',' at byte 12" */
} json_error;

/* Parses s[0..n) (need not be NUL-terminated) and reports it to sink.
 * Returns JSON_OK or a negative json_status; err, when not NULL, says why.
 * Does not allocate for inputs whose strings are shorter than 256 bytes.
 * A number too large for a double (1e999, -1e999) is reported to the sink
 * as an infinity and the parse goes on to the end (so that a sink sees
 * every field, a frame's id included); then, unless something else failed
 * first, the result is JSON_ERR_RANGE, err pointing at the first such
 * number. So JSON this parser accepts can always be written back out:
 * json_write_number refuses infinities. */
json_status json_parse(const char *s, size_t n, int max_depth,
                       const json_sink *sink, void *ud, json_error *err);

/* Appends s[0..n) as a JSON string literal, quotes included: ", \ and
 * control characters escaped, valid UTF-8 passed through, every byte of an
 * invalid UTF-8 sequence replaced by U+FFFD, so that the output is always
 * a valid text frame. */
void json_write_string(buf_t *b, const char *s, size_t n);

/* Appends a number: integers of magnitude below 2^53 without a fraction
 * ("42", "-7"), anything else with the shortest "%.17g" form that round-
 * trips. Returns -1 (and appends nothing) for NaN and infinities, which
 * JSON cannot carry. */
int json_write_number(buf_t *b, double v);

#endif
