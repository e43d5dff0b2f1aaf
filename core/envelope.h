/* envelope.h -- checking a client frame against the protocol's envelope.
 *
 * One pass over the frame with the JSON parser: is it JSON, no deeper than
 * JSON_MAX_DEPTH, an object, with a string `type` that can name a handler,
 * and are the envelope's fields of the right kind. What the handler needs
 * beyond that (the decoded table) is built later by the script bridge. */
#ifndef LUAHUB_ENVELOPE_H
#define LUAHUB_ENVELOPE_H

#include <stddef.h>

#include "json.h"

/* A handler name: 1 to 64 of [A-Za-z0-9_]. Anything else cannot name a
 * file under scripts/ and is answered unknown_type. */
#define ENVELOPE_TYPE_MAX 64

typedef enum envelope_status {
    ENVELOPE_OK = 0,
    ENVELOPE_BAD_JSON,     /* code "bad_json" */
    ENVELOPE_BAD_MESSAGE,  /* code "bad_message" */
    ENVELOPE_UNKNOWN_TYPE, /* code "unknown_type": type is not a handler name */
} envelope_status;

typedef struct envelope {
    envelope_status status;           /* what envelope_parse returned */
    char type[ENVELOPE_TYPE_MAX + 1]; /* set when the type is a valid name */
    /* The client's `id`, re-encoded as JSON (a number as written, a string
     * quoted and escaped), ready to be echoed; NULL when the frame has no
     * usable id. Owned by the envelope; freed by envelope_clear(). An id
     * is picked up even when the frame fails later checks, so that the
     * error can echo it. */
    char *id_json;
    size_t id_json_len;
    char id_buf[48]; /* id_json points here when it fits */
    /* For people, when status != ENVELOPE_OK, e.g. "room_id must be a
     * string". Static or inside the envelope; valid until envelope_clear. */
    const char *message;
    char message_buf[128];
    char *message_owned; /* message, when longer than message_buf */
} envelope_t;

/* Checks the frame s[0..n). The rules, in this order:
 * - not JSON, or nested deeper than JSON_MAX_DEPTH: ENVELOPE_BAD_JSON;
 * - not an object: ENVELOPE_BAD_MESSAGE;
 * - `id` present and neither a number nor a string: ENVELOPE_BAD_MESSAGE
 *   (id_json stays NULL);
 * - no `type`, or `type` not a string: ENVELOPE_BAD_MESSAGE;
 * - `room_id` present and not a string; `to` present and neither a
 *   string nor an array of strings; `payload` present and not an object:
 *   ENVELOPE_BAD_MESSAGE, with a message naming the field;
 * - `type` not 1..64 of [A-Za-z0-9_]: ENVELOPE_UNKNOWN_TYPE.
 * A key that appears twice: the last one counts, as in most parsers.
 * Always fills env (call envelope_clear after); returns the status. */
envelope_status envelope_parse(const char *s, size_t n, envelope_t *env);

/* The same check, in the same single pass reporting every event to sink
 * as well (with ud): for a caller that needs the values too (the script
 * bridge builds the Lua table from it), one parse instead of two. When
 * the check fails, sink has seen some or all of the frame. A sink that
 * stops the parse makes it ENVELOPE_BAD_JSON. */
envelope_status envelope_parse_tee(const char *s, size_t n, envelope_t *env,
                                   const json_sink *sink, void *ud);

/* After the frame passed the check: no handler has type[0..n) (the
 * scripts have none by that name, or a hook renamed the frame to one).
 * Sets status ENVELOPE_UNKNOWN_TYPE and the message "no handler for type
 * '<type>'", so that the caller answers it as it answers a type that
 * cannot name a handler. */
void envelope_set_no_handler(envelope_t *env, const char *type, size_t n);

/* The protocol's error code for a status: "bad_json", "bad_message",
 * "unknown_type"; NULL for ENVELOPE_OK. */
const char *envelope_code(envelope_status st);

/* 1 when s[0..n) can name a handler: 1 to ENVELOPE_TYPE_MAX of
 * [A-Za-z0-9_] (so it can never name a path outside scripts/). */
int envelope_valid_type(const char *s, size_t n);

void envelope_clear(envelope_t *env);

#endif
