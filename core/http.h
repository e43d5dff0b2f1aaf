/* http.h -- HTTP/1.1 request heads as the front door reads them.
 *
 * Pure: no sockets. The transport reads a request head into a buffer of
 * its own, bounded in size, and asks this module whether the head is
 * whole, what it says, and what to answer: the refusals (400, 404, 405,
 * 408, 414, 426, 431, 505) are built here, and so is the head handed on to
 * libwebsockets for plain HTTP (static files, /healthz), rebuilt from the
 * headers it needs so that lws's own parser, which drops a connection
 * without a word when a head overflows it, never meets one it cannot
 * take. */
#ifndef LUAHUB_HTTP_H
#define LUAHUB_HTTP_H

#include <stddef.h>

#include "buf.h"

/* The longest request head read (request line and headers). */
#define HTTP_MAX_HEAD 8192
/* The longest request target (path and query). */
#define HTTP_MAX_TARGET 2048
/* The most header lines in one head. */
#define HTTP_MAX_HEADERS 64

typedef struct http_header {
    const char *name, *value;
    size_t name_len, value_len;
} http_header;

/* A parsed head; every pointer points into the caller's buffer. */
typedef struct http_req {
    const char *method, *target; /* target: path, then ?query if any */
    size_t method_len, target_len, path_len;
    int minor; /* HTTP/1.<minor> */
    size_t nheaders;
    http_header headers[HTTP_MAX_HEADERS];
} http_req;

/* Is buf[0..len) a whole head yet? Scans only what it has not scanned
 * (*scanned, 0 at first), so a head arriving a byte at a time costs
 * O(length). Returns the head's length with its blank line, 0 when more
 * is needed, or a negative status: -414 for a request line too long,
 * -431 for a head longer than HTTP_MAX_HEAD. */
int http_head_complete(const char *buf, size_t len, size_t *scanned);

/* Parses a whole head of len bytes. Returns 0, or a negative status: -400
 * (malformed), -414 (a target over HTTP_MAX_TARGET), -431 (too many
 * headers), -505 (not HTTP/1.x). */
int http_parse(http_req *r, const char *buf, size_t len);

/* A header's value (the first with that name, case-insensitive), or NULL. */
const char *http_header_get(const http_req *r, const char *name, size_t *len);
/* Does a comma-separated header (Connection, Upgrade) hold token,
 * case-insensitive? */
int http_header_has_token(const http_req *r, const char *name,
                          const char *token);

/* Finds name=value in the target's query and percent-decodes it ('+' is a
 * space) into out (cap bytes, NUL-terminated). Returns the value's length,
 * -1 when absent, -2 when it does not fit or a %-escape is malformed. */
int http_query_arg(const http_req *r, const char *name, char *out, size_t cap);

/* The reason phrase of a status ("Request Header Fields Too Large"). */
const char *http_reason(int status);
/* Appends a whole response refusing a request: status line, a text body
 * (why, one line), Connection: close, and extra headers (each line ending
 * in \r\n, or NULL). */
void http_refusal(buf_t *out, int status, const char *why, const char *extra);

/* Appends the head handed to libwebsockets for a plain HTTP request: the
 * request line and only the headers lws uses, then Connection: close (so
 * that the next request on the connection comes through the front door
 * again). Returns 0, or -431 when that would not fit lws's header space
 * (max bytes). */
int http_forward_head(const http_req *r, buf_t *out, size_t max);

#endif
