/* envelope.c -- see envelope.h. */
#include "envelope.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "codes.h"
#include "json.h"

/* The kinds a top-level field can have, as the sink saw them. */
typedef enum kind {
    K_ABSENT = 0,
    K_STRING,
    K_NUMBER,
    K_OBJECT,
    K_ARRAY_OF_STRINGS,
    K_ARRAY_OTHER,
    K_OTHER, /* bool, null, or an array holding non-strings */
} kind_t;

typedef enum field {
    F_NONE = -1,
    F_TYPE,
    F_ID,
    F_ROOM_ID,
    F_TO,
    F_PAYLOAD,
    F_COUNT
} field_t;

typedef struct scan {
    envelope_t *env;
    int depth;
    int top_is_object;
    field_t current; /* the top-level key whose value is being read */
    kind_t kind[F_COUNT];
    int type_valid; /* the last `type` string was a valid name */
} scan_t;

static field_t field_of(const char *k, size_t n) {
    if (n == 4 && memcmp(k, "type", 4) == 0) return F_TYPE;
    if (n == 2 && memcmp(k, "id", 2) == 0) return F_ID;
    if (n == 7 && memcmp(k, "room_id", 7) == 0) return F_ROOM_ID;
    if (n == 2 && memcmp(k, "to", 2) == 0) return F_TO;
    if (n == 7 && memcmp(k, "payload", 7) == 0) return F_PAYLOAD;
    return F_NONE;
}

int envelope_valid_type(const char *s, size_t n) {
    if (n < 1 || n > ENVELOPE_TYPE_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return 1;
}

static void clear_id(envelope_t *env) {
    if (env->id_json != env->id_buf) free(env->id_json);
    env->id_json = NULL;
    env->id_json_len = 0;
}

static void set_id(envelope_t *env, const char *json, size_t n) {
    clear_id(env);
    if (n < sizeof env->id_buf) {
        memcpy(env->id_buf, json, n);
        env->id_buf[n] = '\0';
        env->id_json = env->id_buf;
    } else {
        env->id_json = xstrndup(json, n);
    }
    env->id_json_len = n;
}

/* A scalar or the start of a container at depth 1 (a top-level value) or
 * inside `to` (depth 2). */
static void top_value(scan_t *sc, kind_t k) {
    if (sc->current == F_NONE) return;
    sc->kind[sc->current] = k;
    if (sc->current == F_ID && k != K_STRING && k != K_NUMBER)
        clear_id(sc->env);
    if (sc->current == F_TYPE && k != K_STRING) sc->type_valid = 0;
}

static int s_begin(scan_t *sc, kind_t k) {
    if (sc->depth == 0)
        sc->top_is_object = (k == K_OBJECT);
    else if (sc->depth == 1)
        top_value(sc, k);
    else if (sc->depth == 2 && sc->current == F_TO)
        sc->kind[F_TO] = K_ARRAY_OTHER; /* a container inside `to` */
    sc->depth++;
    return 0;
}

static int s_begin_object(void *ud) {
    return s_begin(ud, K_OBJECT);
}
static int s_begin_array(void *ud) {
    return s_begin(ud, K_ARRAY_OF_STRINGS); /* until a non-string shows */
}

static int s_end(void *ud) {
    scan_t *sc = ud;
    sc->depth--;
    if (sc->depth == 1) sc->current = F_NONE;
    return 0;
}

static int s_key(void *ud, const char *s, size_t n) {
    scan_t *sc = ud;
    if (sc->depth == 1) sc->current = field_of(s, n);
    return 0;
}

/* A scalar value somewhere: at depth 1 it is a field's value; inside the
 * `to` array (depth 2) it must be a string. */
static void scalar(scan_t *sc, kind_t k) {
    if (sc->depth == 1) {
        top_value(sc, k);
        sc->current = F_NONE;
    } else if (sc->depth == 2 && sc->current == F_TO && k != K_STRING) {
        sc->kind[F_TO] = K_ARRAY_OTHER;
    }
}

/* An id is echoed as the client wrote it: its raw text, escapes and all
 * for a string, digits and exponent as written for a number (-0, 1.50,
 * 1e2 and 12345678901234567890 stay what they were). */
static int s_string(void *ud, const char *s, size_t n, const char *raw,
                    size_t rawlen) {
    scan_t *sc = ud;
    if (sc->depth == 1 && sc->current == F_TYPE) {
        sc->type_valid = envelope_valid_type(s, n);
        if (sc->type_valid) {
            memcpy(sc->env->type, s, n);
            sc->env->type[n] = '\0';
        }
    } else if (sc->depth == 1 && sc->current == F_ID) {
        set_id(sc->env, raw, rawlen);
    }
    scalar(sc, K_STRING);
    return 0;
}

static int s_number(void *ud, double v, const char *raw, size_t rawlen) {
    scan_t *sc = ud;
    if (sc->depth == 1 && sc->current == F_ID) {
        /* 1e999 cannot be echoed: the frame is refused (JSON_ERR_RANGE)
         * and the error goes out without an id. */
        if (isfinite(v))
            set_id(sc->env, raw, rawlen);
        else
            clear_id(sc->env);
    }
    scalar(sc, K_NUMBER);
    return 0;
}

static int s_boolean(void *ud, int v) {
    scalar(ud, K_OTHER);
    return 0;
}

static int s_null(void *ud) {
    scalar(ud, K_OTHER);
    return 0;
}

static const json_sink scan_sink = {
    s_begin_object, s_end,    s_begin_array, s_end,  s_key,
    s_string,       s_number, s_boolean,     s_null, NULL,
};

/* The scan and another sink, fed by one parse. */
typedef struct tee {
    scan_t sc;
    const json_sink *sink;
    void *ud;
} tee_t;

static int t_begin_object(void *ud) {
    tee_t *t = ud;
    s_begin_object(&t->sc);
    return t->sink->begin_object(t->ud);
}
static int t_end_object(void *ud) {
    tee_t *t = ud;
    s_end(&t->sc);
    return t->sink->end_object(t->ud);
}
static int t_begin_array(void *ud) {
    tee_t *t = ud;
    s_begin_array(&t->sc);
    return t->sink->begin_array(t->ud);
}
static int t_end_array(void *ud) {
    tee_t *t = ud;
    s_end(&t->sc);
    return t->sink->end_array(t->ud);
}
static int t_key(void *ud, const char *s, size_t n) {
    tee_t *t = ud;
    s_key(&t->sc, s, n);
    return t->sink->key(t->ud, s, n);
}
static int t_string(void *ud, const char *s, size_t n, const char *raw,
                    size_t rawlen) {
    tee_t *t = ud;
    s_string(&t->sc, s, n, raw, rawlen);
    return t->sink->string(t->ud, s, n, raw, rawlen);
}
static int t_number(void *ud, double v, const char *raw, size_t rawlen) {
    tee_t *t = ud;
    s_number(&t->sc, v, raw, rawlen);
    return t->sink->number(t->ud, v, raw, rawlen);
}
static int t_boolean(void *ud, int v) {
    tee_t *t = ud;
    s_boolean(&t->sc, v);
    return t->sink->boolean(t->ud, v);
}
static int t_null(void *ud) {
    tee_t *t = ud;
    s_null(&t->sc);
    return t->sink->null(t->ud);
}

/* The other sink skipped a container (its begin said so): the scan has
 * seen it begin, and needs no more of it than its end. */
static int t_skipped(void *ud, const char *raw, size_t rawlen) {
    tee_t *t = ud;
    s_end(&t->sc);
    return t->sink->skipped(t->ud, raw, rawlen);
}

static const json_sink tee_sink = {
    t_begin_object, t_end_object, t_begin_array, t_end_array, t_key,
    t_string,       t_number,     t_boolean,     t_null,      t_skipped,
};

static envelope_status failed(envelope_t *env, envelope_status st,
                              const char *msg) {
    env->message = msg;
    return env->status = st;
}

/* The checks on what the scan saw. */
static envelope_status verdict(envelope_t *env, scan_t *scp);

envelope_status envelope_parse(const char *s, size_t n, envelope_t *env) {
    return envelope_parse_tee(s, n, env, NULL, NULL);
}

envelope_status envelope_parse_tee(const char *s, size_t n, envelope_t *env,
                                   const json_sink *sink, void *ud) {
    memset(env, 0, sizeof *env);
    tee_t t = {{.env = env, .current = F_NONE}, sink, ud};
    json_error err;
    json_status js =
        sink ? json_parse(s, n, JSON_MAX_DEPTH, &tee_sink, &t, &err)
             : json_parse(s, n, JSON_MAX_DEPTH, &scan_sink, &t.sc, &err);
    if (js == JSON_ERR_RANGE) {
        /* JSON all through, so the id (if usable) was seen wherever it
         * stood, and the answer can carry it. */
        snprintf(env->message_buf, sizeof env->message_buf, "%s", err.message);
        return failed(env, ENVELOPE_BAD_JSON, env->message_buf);
    }
    if (js != JSON_OK) {
        clear_id(env);
        snprintf(env->message_buf, sizeof env->message_buf, "not JSON: %s",
                 err.message);
        return failed(env, ENVELOPE_BAD_JSON, env->message_buf);
    }
    return verdict(env, &t.sc);
}

static envelope_status verdict(envelope_t *env, scan_t *scp) {
    scan_t sc = *scp;
    if (!sc.top_is_object)
        return failed(env, ENVELOPE_BAD_MESSAGE,
                      "a frame must be a JSON object");
    kind_t *k = sc.kind;
    if (k[F_ID] != K_ABSENT && k[F_ID] != K_STRING && k[F_ID] != K_NUMBER)
        return failed(env, ENVELOPE_BAD_MESSAGE,
                      "id must be a number or a string");
    if (k[F_TYPE] == K_ABSENT)
        return failed(env, ENVELOPE_BAD_MESSAGE, "no type");
    if (k[F_TYPE] != K_STRING)
        return failed(env, ENVELOPE_BAD_MESSAGE, "type must be a string");
    if (k[F_ROOM_ID] != K_ABSENT && k[F_ROOM_ID] != K_STRING)
        return failed(env, ENVELOPE_BAD_MESSAGE, "room_id must be a string");
    if (k[F_TO] != K_ABSENT && k[F_TO] != K_STRING &&
        k[F_TO] != K_ARRAY_OF_STRINGS)
        return failed(env, ENVELOPE_BAD_MESSAGE,
                      "to must be a user id or an array of user ids");
    if (k[F_PAYLOAD] != K_ABSENT && k[F_PAYLOAD] != K_OBJECT)
        return failed(env, ENVELOPE_BAD_MESSAGE, "payload must be an object");
    if (!sc.type_valid) {
        env->type[0] = '\0';
        return failed(env, ENVELOPE_UNKNOWN_TYPE,
                      "no such type: a type is 1 to 64 of [A-Za-z0-9_]");
    }
    return ENVELOPE_OK;
}

const char *envelope_code(envelope_status st) {
    switch (st) {
    case ENVELOPE_BAD_JSON:
        return ERR_BAD_JSON;
    case ENVELOPE_BAD_MESSAGE:
        return ERR_BAD_MESSAGE;
    case ENVELOPE_UNKNOWN_TYPE:
        return ERR_UNKNOWN_TYPE;
    default:
        return NULL;
    }
}

void envelope_set_no_handler(envelope_t *env, const char *type, size_t n) {
    static const char fmt[] = "no handler for type '%.*s'";
    free(env->message_owned);
    env->message_owned = NULL;
    char *out = env->message_buf;
    size_t cap = sizeof env->message_buf;
    if (n + sizeof fmt > cap) {
        cap = n + sizeof fmt;
        out = env->message_owned = xmalloc(cap);
    }
    snprintf(out, cap, fmt, (int)n, type);
    failed(env, ENVELOPE_UNKNOWN_TYPE, out);
}

void envelope_clear(envelope_t *env) {
    clear_id(env);
    free(env->message_owned);
    env->message_owned = NULL;
}
