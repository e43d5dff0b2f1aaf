/* api.h -- the HTTP endpoints the server answers itself: GET /metrics and
 * the API for backends (POST /api/publish, GET /api/rooms/ID, GET
 * /api/users/ID).
 *
 * The transport reads the request (head, then a body of at most
 * --max-message bytes) and writes the answer; this module decides what
 * the answer is: the routes, the API key (Authorization: Bearer, compared
 * in constant time), the JSON bodies, and the hub calls behind them. With
 * --redis an answer may come later, once Redis answered: the transport
 * keeps the request's handle meanwhile and cancels it when its client
 * goes. Nothing here blocks the loop.
 *
 * The API is on only when a key is set (--api-key-file FILE, or the
 * environment variable LUAHUB_API_KEY); without one every /api/ path is
 * 404. /metrics is open to whoever reaches the port (--metrics on, the
 * default), needs the API key (--metrics key) or is 404 (--metrics off). */
#ifndef LUAHUB_API_H
#define LUAHUB_API_H

#include <stddef.h>

#include "config.h"
#include "http.h"
#include "hub.h"

typedef struct api api_t;
/* A request whose answer comes later. */
typedef struct api_req api_req;

/* A whole answer; everything borrowed for the callback. */
typedef struct api_answer {
    int status;
    const char *type; /* Content-Type */
    const char *body;
    size_t len;
    const char *extra; /* more header lines, each ending in \r\n, or NULL */
} api_answer;
typedef void (*api_answer_fn)(void *ctx, const api_answer *a);

/* Reads the key (cfg->api_key_file, else $LUAHUB_API_KEY unless empty;
 * surrounding whitespace trimmed). Returns NULL with a sentence in err when the
 * file cannot be read, the key is empty or shorter than 16 bytes, or --metrics
 * key is given without a key. h and cfg are borrowed for the api's
 * life. */
api_t *api_create(hub_t *h, const config_t *cfg, char *err, size_t errlen);
/* Requests still waiting need not be over: they hold nothing of a. */
void api_destroy(api_t *a);
/* Whether the API is on (a key is set). */
int api_enabled(const api_t *a);

/* Whether path[0..n) is one of ours (/metrics, /api, /api/...). */
int api_serves(const char *path, size_t n);

typedef enum api_step {
    API_DONE = 0, /* answered: fn was called */
    API_WAIT = 1, /* the answer comes later: *req is its handle */
    API_BODY = 2, /* read *need bytes of body, then api_body */
} api_step;

/* A request head for one of our paths. r, and the body given to
 * api_body, are borrowed until fn is called (which may be within the
 * call): not read after it, so fn may free them. */
api_step api_head(api_t *a, const http_req *r, size_t *need, api_req **req,
                  api_answer_fn fn, void *ctx);
/* The body api_head asked for. */
api_step api_body(api_t *a, const char *body, size_t len, api_req **req,
                  api_answer_fn fn, void *ctx);
/* The client is gone: the answer, when it comes, goes nowhere. */
void api_cancel(api_req *req);

#endif
