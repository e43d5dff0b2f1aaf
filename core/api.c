/* api.c -- see api.h. */
#include "api.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "buf.h"
#include "codes.h"
#include "json.h"
#include "room.h"

/* A key shorter than this is refused at the start: a guessable key on an
 * endpoint that speaks for the server is worse than none. */
#define API_KEY_MIN 16
/* The most users one publish may name (as the chat handler). */
#define API_TO_MAX 1000

struct api {
    hub_t *h;
    const config_t *cfg;
    char *key; /* NULL: the API is off */
    size_t keylen;
};

/* A request in flight. cancelled: the client is gone; sync: the hub is
 * answering inside the call that made it (the handle is not out yet). */
struct api_req {
    api_answer_fn fn;
    void *ctx;
    char *id; /* the room or user asked for */
    int kind; /* what it asked (K_*) */
    int cancelled, sync, answered;
};

enum { K_PUBLISH, K_SEND, K_ROOM, K_USER };

/* ---- the key ------------------------------------------------------------- */

static char *trimmed(const char *s, size_t n, size_t *out) {
    while (n && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    *out = n;
    return n ? xstrndup(s, n) : NULL;
}

static int read_key(api_t *a, char *err, size_t errlen) {
    const char *file = a->cfg->api_key_file;
    if (file[0]) {
        FILE *f = fopen(file, "rb");
        if (!f) {
            snprintf(err, errlen, "--api-key-file %s: %s", file,
                     strerror(errno));
            return -1;
        }
        char buf[4097];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        if (n == sizeof buf) {
            snprintf(err, errlen, "--api-key-file %s: longer than 4096 bytes",
                     file);
            return -1;
        }
        a->key = trimmed(buf, n, &a->keylen);
    } else {
        /* Set but empty is unset, as for LUAHUB_AUTH_SECRET. */
        const char *env = getenv("LUAHUB_API_KEY");
        if (!env || !*env) return 0;
        a->key = trimmed(env, strlen(env), &a->keylen);
    }
    if (!a->key || a->keylen < API_KEY_MIN) {
        snprintf(err, errlen,
                 "%s: the API key must be at least %d bytes (no whitespace "
                 "around it counts)",
                 file[0] ? "--api-key-file" : "LUAHUB_API_KEY", API_KEY_MIN);
        return -1;
    }
    return 0;
}

api_t *api_create(hub_t *h, const config_t *cfg, char *err, size_t errlen) {
    api_t *a = xcalloc(1, sizeof *a);
    a->h = h;
    a->cfg = cfg;
    if (read_key(a, err, errlen) < 0) {
        api_destroy(a);
        return NULL;
    }
    if (cfg->metrics == CONFIG_METRICS_KEY && !a->key) {
        snprintf(err, errlen,
                 "--metrics key needs an API key (--api-key-file or "
                 "LUAHUB_API_KEY)");
        api_destroy(a);
        return NULL;
    }
    return a;
}

void api_destroy(api_t *a) {
    if (!a) return;
    if (a->key) {
        /* Not left in freed memory. */
        volatile char *p = a->key;
        for (size_t i = 0; i < a->keylen; i++)
            p[i] = 0;
        free(a->key);
    }
    free(a);
}

int api_enabled(const api_t *a) {
    return a->key != NULL;
}

int api_serves(const char *path, size_t n) {
    return (n == 8 && memcmp(path, "/metrics", 8) == 0) ||
           (n == 4 && memcmp(path, "/api", 4) == 0) ||
           (n > 4 && memcmp(path, "/api/", 5) == 0);
}

/* Constant time in the key: every byte of the key is looked at, whatever
 * the client sent, so timing tells nothing of where they differ. */
static int key_matches(const api_t *a, const char *given, size_t n) {
    unsigned char diff = n != a->keylen;
    for (size_t i = 0; i < a->keylen; i++)
        diff |= (unsigned char)(a->key[i] ^ (i < n ? given[i] : 0));
    return diff == 0;
}

static int authorized(const api_t *a, const http_req *r) {
    size_t n;
    const char *v = http_header_get(r, "Authorization", &n);
    if (!v || n < 7 || strncasecmp(v, "Bearer ", 7) != 0) return 0;
    v += 7;
    n -= 7;
    while (n && *v == ' ') {
        v++;
        n--;
    }
    return key_matches(a, v, n);
}

/* ---- answers ------------------------------------------------------------- */

static void answer_json(api_answer_fn fn, void *ctx, int status, const buf_t *b,
                        const char *extra) {
    api_answer an = {status, "application/json", buf_content(b), b->len, extra};
    fn(ctx, &an);
}

/* {"error":{"code":code,"message":message}} with status. */
static void answer_error(api_answer_fn fn, void *ctx, int status,
                         const char *code, const char *message,
                         const char *extra) {
    buf_t b;
    buf_init(&b, 0);
    buf_puts(&b, "{\"error\":{\"code\":");
    json_write_string(&b, code, strlen(code));
    buf_puts(&b, ",\"message\":");
    json_write_string(&b, message, strlen(message));
    buf_puts(&b, "}}\n");
    answer_json(fn, ctx, status, &b, extra);
    buf_close(&b);
}

static void put_ids(buf_t *b, const char *const *ids, size_t n) {
    buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i) buf_putc(b, ',');
        json_write_string(b, ids[i], strlen(ids[i]));
    }
    buf_putc(b, ']');
}

static void req_free(api_req *q) {
    free(q->id);
    free(q);
}

/* The hub's answer to q (hub_api_fn). */
static void on_reply(void *ctx, const hub_api_reply *r) {
    api_req *q = ctx;
    q->answered = 1;
    if (q->cancelled || r->rc == -ECANCELED) {
        if (!q->sync) req_free(q);
        return;
    }
    buf_t b;
    buf_init(&b, 0);
    char msg[300];
    if (r->rc == -EAGAIN) {
        answer_error(q->fn, q->ctx, 503, ERR_UNAVAILABLE,
                     "the cluster (Redis) is unavailable: nothing was done, "
                     "retry later",
                     "Retry-After: 1\r\n");
    } else if (r->rc == -ENOENT) {
        snprintf(msg, sizeof msg,
                 q->kind == K_USER ? "user '%.200s' is not online"
                                   : "no room '%.200s'",
                 q->id);
        answer_error(q->fn, q->ctx, 404, ERR_NOT_FOUND, msg, NULL);
    } else if (r->rc < 0) {
        answer_error(q->fn, q->ctx, 500, ERR_HANDLER_ERROR, "internal error",
                     NULL);
    } else {
        switch (q->kind) {
        case K_PUBLISH:
            buf_printf(&b, "{\"seq\":%llu}\n", (unsigned long long)r->seq);
            break;
        case K_SEND:
            buf_printf(&b, "{\"delivered\":%zu}\n", r->delivered);
            break;
        case K_ROOM:
            buf_puts(&b, "{\"room_id\":");
            json_write_string(&b, q->id, strlen(q->id));
            buf_puts(&b, ",\"members\":");
            put_ids(&b, r->ids, r->nids);
            buf_printf(&b, ",\"member_count\":%zu,\"seq\":%llu,\"epoch\":",
                       r->members, (unsigned long long)r->seq);
            json_write_string(&b, r->epoch ? r->epoch : "",
                              r->epoch ? strlen(r->epoch) : 0);
            buf_printf(&b, ",\"message_count\":%llu,\"created_at\":%lld}\n",
                       (unsigned long long)r->message_count,
                       (long long)r->created_at);
            break;
        case K_USER:
            buf_puts(&b, "{\"user_id\":");
            json_write_string(&b, q->id, strlen(q->id));
            buf_printf(&b, ",\"online\":%s,\"status\":",
                       strcmp(r->status, "offline") ? "true" : "false");
            json_write_string(&b, r->status, strlen(r->status));
            buf_puts(&b, ",\"connections\":");
            put_ids(&b, r->ids, r->nids);
            buf_puts(&b, "}\n");
            break;
        }
        answer_json(q->fn, q->ctx, 200, &b, NULL);
    }
    buf_close(&b);
    if (!q->sync) req_free(q);
}

static api_req *req_new(int kind, const char *id, api_answer_fn fn, void *ctx) {
    api_req *q = xcalloc(1, sizeof *q);
    q->kind = kind;
    q->id = xstrdup(id ? id : "");
    q->fn = fn;
    q->ctx = ctx;
    q->sync = 1;
    return q;
}

/* After the hub call that took q: API_DONE when it answered within it. */
static api_step req_started(api_req *q, api_req **out) {
    q->sync = 0;
    if (q->answered) {
        req_free(q);
        *out = NULL;
        return API_DONE;
    }
    *out = q;
    return API_WAIT;
}

void api_cancel(api_req *q) {
    if (q) q->cancelled = 1;
}

/* ---- routes -------------------------------------------------------------- */

/* Percent-decodes path[0..n) into out (cap bytes, NUL-terminated): the
 * length, or -1 when malformed, too long or holding a NUL. */
static int decode_id(const char *p, size_t n, char *out, size_t cap) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)p[i];
        if (ch == '%') {
            if (i + 2 >= n || !isxdigit((unsigned char)p[i + 1]) ||
                !isxdigit((unsigned char)p[i + 2]))
                return -1;
            char hex[3] = {p[i + 1], p[i + 2], 0};
            ch = (int)strtol(hex, NULL, 16);
            i += 2;
        }
        if (ch == 0 || k + 1 >= cap) return -1;
        out[k++] = (char)ch;
    }
    out[k] = '\0';
    return (int)k;
}

static int method_is(const http_req *r, const char *m) {
    size_t n = strlen(m);
    return r->method_len == n && memcmp(r->method, m, n) == 0;
}

static api_step wrong_method(api_answer_fn fn, void *ctx, const char *allow) {
    char extra[64], msg[64];
    snprintf(extra, sizeof extra, "Allow: %s\r\n", allow);
    snprintf(msg, sizeof msg, "this path answers %s only", allow);
    answer_error(fn, ctx, 405, ERR_BAD_MESSAGE, msg, extra);
    return API_DONE;
}

static api_step serve_metrics(api_t *a, const http_req *r, api_answer_fn fn,
                              void *ctx) {
    if (a->cfg->metrics == CONFIG_METRICS_OFF) {
        answer_error(fn, ctx, 404, ERR_NOT_FOUND, "metrics are off (--metrics)",
                     NULL);
        return API_DONE;
    }
    if (a->cfg->metrics == CONFIG_METRICS_KEY && !authorized(a, r)) {
        answer_error(fn, ctx, 401, ERR_FORBIDDEN,
                     "Authorization: Bearer <API key> required",
                     "WWW-Authenticate: Bearer\r\n");
        return API_DONE;
    }
    if (!method_is(r, "GET")) return wrong_method(fn, ctx, "GET");
    buf_t b;
    buf_init(&b, 0);
    hub_metrics_write(a->h, &b);
    api_answer an = {200, "text/plain; version=0.0.4; charset=utf-8",
                     buf_content(&b), b.len, NULL};
    fn(ctx, &an);
    buf_close(&b);
    return API_DONE;
}

/* Content-Length as the body's size: 1 with *len, or 0 when the request
 * was answered (none, chunked, malformed, over --max-message). */
static int body_length(api_t *a, const http_req *r, size_t *len,
                       api_answer_fn fn, void *ctx) {
    size_t n;
    const char *v = http_header_get(r, "Transfer-Encoding", NULL);
    const char *cl = http_header_get(r, "Content-Length", &n);
    if (v || !cl) {
        answer_error(fn, ctx, 411, ERR_BAD_MESSAGE,
                     "send the body with a Content-Length", NULL);
        return 0;
    }
    unsigned long long x = 0;
    for (size_t i = 0; i < n; i++) {
        if (cl[i] < '0' || cl[i] > '9' || x > (1ull << 40)) {
            answer_error(fn, ctx, 400, ERR_BAD_MESSAGE,
                         "malformed Content-Length", NULL);
            return 0;
        }
        x = x * 10 + (unsigned)(cl[i] - '0');
    }
    if (!n || x > a->cfg->max_message) {
        char msg[96];
        snprintf(msg, sizeof msg,
                 n ? "the body is larger than %zu bytes (--max-message)"
                   : "malformed Content-Length",
                 a->cfg->max_message);
        answer_error(fn, ctx, n ? 413 : 400, ERR_BAD_MESSAGE, msg, NULL);
        return 0;
    }
    *len = (size_t)x;
    return 1;
}

api_step api_head(api_t *a, const http_req *r, size_t *need, api_req **req,
                  api_answer_fn fn, void *ctx) {
    const char *path = r->target;
    size_t n = r->path_len;
    *req = NULL;
    if (n == 8 && memcmp(path, "/metrics", 8) == 0)
        return serve_metrics(a, r, fn, ctx);
    if (!a->key) {
        answer_error(fn, ctx, 404, ERR_NOT_FOUND,
                     "the API is off (no --api-key-file or LUAHUB_API_KEY)",
                     NULL);
        return API_DONE;
    }
    if (!authorized(a, r)) {
        answer_error(fn, ctx, 401, ERR_FORBIDDEN,
                     "Authorization: Bearer <API key> required",
                     "WWW-Authenticate: Bearer\r\n");
        return API_DONE;
    }
    if (n == 12 && memcmp(path, "/api/publish", 12) == 0) {
        if (!method_is(r, "POST")) return wrong_method(fn, ctx, "POST");
        if (!body_length(a, r, need, fn, ctx)) return API_DONE;
        return API_BODY;
    }
    static const char rooms[] = "/api/rooms/", users[] = "/api/users/";
    int kind = -1;
    size_t pre = 0;
    if (n > sizeof rooms - 1 && memcmp(path, rooms, sizeof rooms - 1) == 0)
        kind = K_ROOM, pre = sizeof rooms - 1;
    else if (n > sizeof users - 1 && memcmp(path, users, sizeof users - 1) == 0)
        kind = K_USER, pre = sizeof users - 1;
    if (kind < 0) {
        answer_error(fn, ctx, 404, ERR_NOT_FOUND,
                     "no such API path (POST /api/publish, GET "
                     "/api/rooms/ID, GET /api/users/ID)",
                     NULL);
        return API_DONE;
    }
    if (!method_is(r, "GET")) return wrong_method(fn, ctx, "GET");
    char id[ROOM_ID_MAX + 1];
    int len = decode_id(path + pre, n - pre, id, sizeof id);
    if (len <= 0 || (kind == K_USER && !conns_valid_user_id(id, (size_t)len))) {
        answer_error(fn, ctx, 400, ERR_BAD_MESSAGE,
                     kind == K_ROOM ? "malformed room id in the path"
                                    : "malformed user id in the path",
                     NULL);
        return API_DONE;
    }
    api_req *q = req_new(kind, id, fn, ctx);
    if (kind == K_ROOM)
        hub_api_room(a->h, id, on_reply, q);
    else
        hub_api_user(a->h, id, on_reply, q);
    return req_started(q, req);
}

/* ---- the publish body ------------------------------------------------------
 * One pass of the strict parser: room_id, to (a string or an array of
 * strings) and payload (an object, written back out as the JSON it was:
 * strings and numbers as the client wrote them). Other fields are
 * ignored. */

typedef struct body {
    int depth;
    enum { F_NONE, F_ROOM, F_TO, F_PAYLOAD, F_OTHER } field;
    int field_depth; /* the depth the field's value opened at */
    char *room;      /* room_id */
    int has_room, has_to, has_payload;
    char **to; /* the users */
    size_t nto;
    buf_t to_json, payload;   /* to and payload as JSON */
    unsigned long long comma; /* payload: one bit per depth, a member or
                               * element was written there */
    int after_key;            /* payload: a key was written, its value next */
    const char *bad;          /* why the body is refused */
} body;

static int set_bad(body *b, const char *why) {
    if (!b->bad) b->bad = why;
    return 1; /* stops the parse */
}

/* The comma before a member or element at the current depth (payload). */
static void sep(body *b) {
    unsigned long long bit = 1ull << b->depth;
    if (b->comma & bit) buf_putc(&b->payload, ',');
    b->comma |= bit;
}

/* Before a value in the payload: an object member's value follows its
 * key; an array element needs its comma. */
static void value_sep(body *b) {
    if (b->after_key)
        b->after_key = 0;
    else
        sep(b);
}

/* A container opens in the payload. */
static void payload_open(body *b, char ch) {
    value_sep(b);
    buf_putc(&b->payload, ch);
    b->depth++;
    b->comma &= ~(1ull << b->depth);
}

/* The list of users given so far is dropped (to given twice: the last
 * counts, as in most parsers). */
static void to_reset(body *b) {
    for (size_t i = 0; i < b->nto; i++)
        free(b->to[i]);
    b->nto = 0;
    buf_reset(&b->to_json);
}

static int in_payload(const body *b) {
    return b->field == F_PAYLOAD && b->depth >= 2;
}

/* A value ended at depth 1: the field is done. */
static void value_done(body *b) {
    if (b->depth == 1) b->field = F_NONE;
}

static int b_begin_object(void *ud) {
    body *b = ud;
    if (b->depth == 0) {
        b->depth = 1;
        return 0;
    }
    if (b->depth == 1 && b->field == F_PAYLOAD) {
        b->has_payload = 1;
        buf_reset(&b->payload);
        buf_putc(&b->payload, '{');
        b->depth = 2;
        b->comma &= ~(1ull << 2);
        b->after_key = 0;
        return 0;
    }
    if (in_payload(b)) {
        payload_open(b, '{');
        return 0;
    }
    if (b->field == F_TO)
        return set_bad(b, "to must be a user id or an array of user ids");
    if (b->field == F_ROOM) return set_bad(b, "room_id must be a string");
    b->depth++;
    return 0;
}

static int b_end_object(void *ud) {
    body *b = ud;
    if (in_payload(b)) buf_putc(&b->payload, '}');
    b->depth--;
    value_done(b);
    return 0;
}

static int b_begin_array(void *ud) {
    body *b = ud;
    if (b->depth == 0) return set_bad(b, "the body must be a JSON object");
    if (b->depth == 1 && b->field == F_TO) {
        to_reset(b);
        b->has_to = 1;
        buf_putc(&b->to_json, '[');
        b->depth = 2;
        return 0;
    }
    if (b->depth == 1 && b->field == F_PAYLOAD)
        return set_bad(b, "payload must be an object");
    if (b->depth == 1 && b->field == F_ROOM)
        return set_bad(b, "room_id must be a string");
    if (b->field == F_TO)
        return set_bad(b, "to must be a user id or an array of user ids");
    if (in_payload(b)) {
        payload_open(b, '[');
        return 0;
    }
    b->depth++;
    return 0;
}

static int b_end_array(void *ud) {
    body *b = ud;
    if (b->field == F_TO && b->depth == 2) buf_putc(&b->to_json, ']');
    if (in_payload(b)) buf_putc(&b->payload, ']');
    b->depth--;
    value_done(b);
    return 0;
}

static int b_key(void *ud, const char *s, size_t n) {
    body *b = ud;
    if (b->depth == 1) {
        b->field = n == 7 && !memcmp(s, "room_id", 7)   ? F_ROOM
                   : n == 2 && !memcmp(s, "to", 2)      ? F_TO
                   : n == 7 && !memcmp(s, "payload", 7) ? F_PAYLOAD
                                                        : F_OTHER;
        return 0;
    }
    if (in_payload(b)) {
        sep(b);
        json_write_string(&b->payload, s, n);
        buf_putc(&b->payload, ':');
        b->after_key = 1;
    }
    return 0;
}

/* A scalar value (raw: its JSON text). */
static int scalar(body *b, const char *raw, size_t rawlen, int is_string,
                  const char *s, size_t n) {
    if (in_payload(b)) {
        value_sep(b);
        buf_append(&b->payload, raw, rawlen);
        return 0;
    }
    if (b->depth == 1) {
        if (b->field == F_ROOM) {
            if (!is_string) return set_bad(b, "room_id must be a string");
            if (n == 0 || n > ROOM_ID_MAX || memchr(s, '\0', n))
                return set_bad(b, "room_id must be 1 to 128 bytes");
            free(b->room);
            b->room = xstrndup(s, n);
            b->has_room = 1;
        } else if (b->field == F_TO) {
            if (!is_string)
                return set_bad(b,
                               "to must be a user id or an array of user ids");
            to_reset(b);
            b->has_to = 1;
            buf_append(&b->to_json, raw, rawlen);
            b->to = xrealloc(b->to, sizeof *b->to);
            if (!conns_valid_user_id(s, n))
                return set_bad(b, "to: not a valid user id");
            b->to[b->nto++] = xstrndup(s, n);
        } else if (b->field == F_PAYLOAD) {
            return set_bad(b, "payload must be an object");
        }
        b->field = F_NONE;
        return 0;
    }
    if (b->field == F_TO && b->depth == 2) {
        if (!is_string || !conns_valid_user_id(s, n))
            return set_bad(b, "each user in to must be a valid user id");
        if (b->nto >= API_TO_MAX)
            return set_bad(b, "to may name at most 1000 users");
        if (b->nto) buf_putc(&b->to_json, ',');
        buf_append(&b->to_json, raw, rawlen);
        b->to = xrealloc(b->to, (b->nto + 1) * sizeof *b->to);
        b->to[b->nto++] = xstrndup(s, n);
    }
    return 0;
}

static int b_string(void *ud, const char *s, size_t n, const char *raw,
                    size_t rawlen) {
    body *b = ud;
    if (b->depth == 0) return set_bad(b, "the body must be a JSON object");
    return scalar(b, raw, rawlen, 1, s, n);
}

static int b_number(void *ud, double v, const char *raw, size_t rawlen) {
    body *b = ud;
    (void)v;
    if (b->depth == 0) return set_bad(b, "the body must be a JSON object");
    return scalar(b, raw, rawlen, 0, NULL, 0);
}

static int b_boolean(void *ud, int v) {
    body *b = ud;
    if (b->depth == 0) return set_bad(b, "the body must be a JSON object");
    return v ? scalar(b, "true", 4, 0, NULL, 0)
             : scalar(b, "false", 5, 0, NULL, 0);
}

static int b_null(void *ud) {
    body *b = ud;
    if (b->depth == 0) return set_bad(b, "the body must be a JSON object");
    return scalar(b, "null", 4, 0, NULL, 0);
}

static const json_sink body_sink = {
    b_begin_object, b_end_object, b_begin_array, b_end_array, b_key,
    b_string,       b_number,     b_boolean,     b_null,      NULL};

static void body_free(body *b) {
    free(b->room);
    for (size_t i = 0; i < b->nto; i++)
        free(b->to[i]);
    free(b->to);
    buf_close(&b->to_json);
    buf_close(&b->payload);
}

/* Why the parsed body cannot be published, or NULL. */
static const char *body_check(const body *b) {
    if (b->bad) return b->bad;
    if (b->has_room && b->has_to)
        return "give room_id (a room) or to (users), not both";
    if (!b->has_room && !b->has_to)
        return "room_id (a room) or to (users) is required";
    if (!b->has_payload) return "payload must be an object";
    if (b->has_to && !b->nto) return "to must name at least one user";
    return NULL;
}

api_step api_body(api_t *a, const char *data, size_t len, api_req **req,
                  api_answer_fn fn, void *ctx) {
    body b;
    memset(&b, 0, sizeof b);
    buf_init(&b.to_json, 0);
    buf_init(&b.payload, 0);
    json_error jerr;
    *req = NULL;
    json_status st =
        json_parse(data, len, JSON_MAX_DEPTH, &body_sink, &b, &jerr);
    const char *why = NULL;
    char msg[160];
    if (st != JSON_OK && !b.bad) {
        snprintf(msg, sizeof msg, "the body is not JSON: %s", jerr.message);
        why = msg;
    } else {
        why = body_check(&b);
    }
    if (why) {
        answer_error(fn, ctx, 400, ERR_BAD_MESSAGE, why, NULL);
        body_free(&b);
        return API_DONE;
    }
    api_req *q = req_new(b.has_room ? K_PUBLISH : K_SEND, b.room, fn, ctx);
    if (b.has_room)
        hub_api_publish(a->h, b.room, buf_content(&b.payload), b.payload.len,
                        on_reply, q);
    else
        hub_api_send(a->h, (const char *const *)b.to, b.nto,
                     buf_content(&b.to_json), b.to_json.len,
                     buf_content(&b.payload), b.payload.len, on_reply, q);
    body_free(&b);
    return req_started(q, req);
}
