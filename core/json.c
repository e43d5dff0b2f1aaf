/* json.c -- see json.h.
 *
 * One pass, no recursion: an explicit stack of open containers bounded by
 * max_depth, so hostile nesting costs nothing but the check. Strings are
 * unescaped into a scratch buffer (on the stack for short ones) so that the
 * sink gets NUL-terminated UTF-8. */
#include "json.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "json_int.h"

typedef struct parser {
    const char *start, *p, *end;
    const json_sink *sink;
    void *ud;
    json_error *err;
    const char *range; /* the first number too large for a double */
    /* Scratch for unescaped strings: small ones on the stack. */
    char small[256];
    char *heap;
    size_t heap_cap;
} parser_t;

static json_status fail(parser_t *ps, json_status st, const char *what) {
    if (ps->err) {
        size_t off = (size_t)(ps->p - ps->start);
        ps->err->status = st;
        ps->err->offset = off;
        if (st == JSON_ERR_SYNTAX) {
            if (ps->p >= ps->end)
                snprintf(ps->err->message, sizeof ps->err->message,
                         "%s: unexpected end of input at byte %zu", what, off);
            else if ((unsigned char)*ps->p >= 0x20 &&
                     (unsigned char)*ps->p < 0x7f)
                snprintf(ps->err->message, sizeof ps->err->message,
                         "%s: unexpected '%c' at byte %zu", what, *ps->p, off);
            else
                snprintf(ps->err->message, sizeof ps->err->message,
                         "%s: unexpected byte 0x%02x at byte %zu", what,
                         (unsigned char)*ps->p, off);
        } else {
            snprintf(ps->err->message, sizeof ps->err->message, "%s", what);
        }
    }
    return st;
}

static inline void skip_ws(parser_t *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\n' ||
                               *ps->p == '\r' || *ps->p == '\t'))
        ps->p++;
}

/* The length of the run at p (at most n bytes) of bytes that stand for
 * themselves inside a JSON string: printable ASCII but '"' and '\\'. Most
 * strings on the wire are one such run, so this looks at eight bytes at a
 * time: a word has a byte worth a closer look if one is below 0x20, equal
 * to '"' or '\\', or has its top bit set. Each test is exact for its
 * lowest byte flagged. */
#define PLAIN16(b)                                                             \
    (b) != '"' && (b) != '\\', (b) + 1 != '"' && (b) + 1 != '\\',              \
        (b) + 2 != '"' && (b) + 2 != '\\', (b) + 3 != '"' && (b) + 3 != '\\',  \
        (b) + 4 != '"' && (b) + 4 != '\\', (b) + 5 != '"' && (b) + 5 != '\\',  \
        (b) + 6 != '"' && (b) + 6 != '\\', (b) + 7 != '"' && (b) + 7 != '\\',  \
        (b) + 8 != '"' && (b) + 8 != '\\', (b) + 9 != '"' && (b) + 9 != '\\',  \
        (b) + 10 != '"' && (b) + 10 != '\\',                                   \
        (b) + 11 != '"' && (b) + 11 != '\\',                                   \
        (b) + 12 != '"' && (b) + 12 != '\\',                                   \
        (b) + 13 != '"' && (b) + 13 != '\\',                                   \
        (b) + 14 != '"' && (b) + 14 != '\\',                                   \
        (b) + 15 != '"' && (b) + 15 != '\\'
/* 1 for the bytes plain_run passes: 0x20-0x7f but '"' and '\\'. */
static const unsigned char plain_byte[256] = {
    [0x20] = PLAIN16(0x20), PLAIN16(0x30), PLAIN16(0x40),
    PLAIN16(0x50),          PLAIN16(0x60), PLAIN16(0x70)};
#undef PLAIN16

size_t json__plain_run(const char *p, size_t n) {
    const uint64_t ones = 0x0101010101010101ull;
    const uint64_t high = 0x8080808080808080ull;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w, q, bs;
        memcpy(&w, p + i, 8);
        q = w ^ (ones * '"');
        bs = w ^ (ones * '\\');
        uint64_t hit = ((w - ones * 0x20) & ~w & high) |
                       ((q - ones) & ~q & high) | ((bs - ones) & ~bs & high) |
                       (w & high);
        if (hit) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            /* The lowest byte flagged is exact (a borrow only climbs
             * from a byte that is a hit itself): the run ends there, found
             * without a byte-by-byte look at the word. Most strings end in
             * their first or second word. */
            return i + (size_t)(__builtin_ctzll(hit) >> 3);
#else
            break;
#endif
        }
    }
    while (i < n && plain_byte[(unsigned char)p[i]])
        i++;
    return i;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
size_t json__utf8_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        if (n < 2 || (s[1] & 0xc0) != 0x80) return 0;
        return 2;
    }
    if (c >= 0xe0 && c <= 0xef) {
        if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80) return 0;
        if (c == 0xe0 && s[1] < 0xa0) return 0;  /* overlong */
        if (c == 0xed && s[1] >= 0xa0) return 0; /* surrogate */
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 ||
            (s[3] & 0xc0) != 0x80)
            return 0;
        if (c == 0xf0 && s[1] < 0x90) return 0;  /* overlong */
        if (c == 0xf4 && s[1] >= 0x90) return 0; /* > U+10FFFF */
        return 4;
    }
    return 0;
}

static int hex4(const char *s, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *d, unsigned cp) {
    if (cp < 0x80) {
        d[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (char)(0xc0 | (cp >> 6));
        d[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (char)(0xe0 | (cp >> 12));
        d[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        d[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    d[0] = (char)(0xf0 | (cp >> 18));
    d[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    d[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    d[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Room for an unescaped string of n bytes and its NUL: the parser's own
 * small buffer, or its heap buffer grown to fit. */
static char *scratch(parser_t *ps, size_t n) {
    if (n < sizeof ps->small) return ps->small;
    if (ps->heap_cap < n + 1) {
        free(ps->heap);
        ps->heap_cap = n + 1;
        ps->heap = xmalloc(ps->heap_cap);
    }
    return ps->heap;
}

/* Parses the string whose opening quote is at ps->p. On success *out and
 * *outlen hold the unescaped, NUL-terminated bytes, valid until the next
 * string. */
static json_status parse_string(parser_t *ps, const char **out,
                                size_t *outlen) {
    const char *s = ps->p + 1;
    /* The common string is plain bytes up to its closing quote: found in
     * one scan and copied in one go. */
    size_t plain = json__plain_run(s, (size_t)(ps->end - s));
    const char *q = s + plain;
    if (q < ps->end && *q == '"') {
        char *d = scratch(ps, plain);
        memcpy(d, s, plain);
        d[plain] = '\0';
        *out = d;
        *outlen = plain;
        ps->p = q + 1;
        return JSON_OK;
    }
    /* The unescaped form is never longer than the escaped one. */
    while (q < ps->end && *q != '"')
        q += (*q == '\\' && q + 1 < ps->end) ? 2 : 1;
    char *d = scratch(ps, (size_t)(q - s));
    /* The plain prefix is known good. */
    memcpy(d, s, plain);
    char *w = d + plain;
    const char *p = s + plain;
    for (;;) {
        if (p >= ps->end) {
            ps->p = p;
            return fail(ps, JSON_ERR_SYNTAX, "unterminated string");
        }
        unsigned char c = (unsigned char)*p;
        if (c == '"') break;
        if (c < 0x20) {
            ps->p = p;
            return fail(ps, JSON_ERR_SYNTAX, "control character in string");
        }
        if (c == '\\') {
            if (p + 1 >= ps->end) {
                ps->p = p + 1;
                return fail(ps, JSON_ERR_SYNTAX, "unterminated string");
            }
            char e = p[1];
            p += 2;
            switch (e) {
            case '"':
                *w++ = '"';
                break;
            case '\\':
                *w++ = '\\';
                break;
            case '/':
                *w++ = '/';
                break;
            case 'b':
                *w++ = '\b';
                break;
            case 'f':
                *w++ = '\f';
                break;
            case 'n':
                *w++ = '\n';
                break;
            case 'r':
                *w++ = '\r';
                break;
            case 't':
                *w++ = '\t';
                break;
            case 'u': {
                unsigned cp, lo;
                if (ps->end - p < 4 || hex4(p, &cp) < 0) {
                    ps->p = p;
                    return fail(ps, JSON_ERR_SYNTAX, "bad \\u escape");
                }
                p += 4;
                if (cp >= 0xdc00 && cp <= 0xdfff) {
                    ps->p = p - 6;
                    return fail(ps, JSON_ERR_SYNTAX, "lone low surrogate");
                }
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    if (ps->end - p < 6 || p[0] != '\\' || p[1] != 'u' ||
                        hex4(p + 2, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff) {
                        ps->p = p - 6;
                        return fail(ps, JSON_ERR_SYNTAX,
                                    "unpaired high surrogate");
                    }
                    p += 6;
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                }
                w += put_utf8(w, cp);
                break;
            }
            default:
                ps->p = p - 1;
                return fail(ps, JSON_ERR_SYNTAX, "bad escape");
            }
            continue;
        }
        if (c < 0x80) {
            *w++ = (char)c;
            p++;
            continue;
        }
        size_t n =
            json__utf8_len((const unsigned char *)p, (size_t)(ps->end - p));
        if (!n) {
            ps->p = p;
            return fail(ps, JSON_ERR_SYNTAX, "invalid UTF-8 in string");
        }
        memcpy(w, p, n);
        w += n;
        p += n;
    }
    *w = '\0';
    *out = d;
    *outlen = (size_t)(w - d);
    ps->p = p + 1;
    return JSON_OK;
}

static json_status parse_number(parser_t *ps) {
    const char *s = ps->p, *p = s;
    if (p < ps->end && *p == '-') p++;
    if (p >= ps->end) {
        ps->p = p;
        return fail(ps, JSON_ERR_SYNTAX, "bad number");
    }
    int integer = 1;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < ps->end && *p >= '0' && *p <= '9')
            p++;
    } else {
        ps->p = p;
        return fail(ps, JSON_ERR_SYNTAX, "bad number");
    }
    if (p < ps->end && *p == '.') {
        integer = 0;
        p++;
        if (p >= ps->end || *p < '0' || *p > '9') {
            ps->p = p;
            return fail(ps, JSON_ERR_SYNTAX, "bad number");
        }
        while (p < ps->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < ps->end && (*p == 'e' || *p == 'E')) {
        integer = 0;
        p++;
        if (p < ps->end && (*p == '+' || *p == '-')) p++;
        if (p >= ps->end || *p < '0' || *p > '9') {
            ps->p = p;
            return fail(ps, JSON_ERR_SYNTAX, "bad number");
        }
        while (p < ps->end && *p >= '0' && *p <= '9')
            p++;
    }
    size_t n = (size_t)(p - s);
    ps->p = p;
    int wanted = ps->sink && ps->sink->number;
    double v;
    size_t digits = n - (*s == '-');
    if (integer && digits <= 15) {
        /* Exact in a double: no need for strtod, and never out of range. */
        if (!wanted) return JSON_OK;
        int64_t i = 0;
        for (const char *d = s + (*s == '-'); d < p; d++)
            i = i * 10 + (*d - '0');
        v = *s == '-' ? -(double)i : (double)i;
    } else {
        /* strtod needs a terminated copy; the input is not terminated.
         * Read even without a sink: the range check is the parser's. */
        char tmp[64];
        char *copy = n < sizeof tmp ? tmp : xmalloc(n + 1);
        memcpy(copy, s, n);
        copy[n] = '\0';
        v = strtod(copy, NULL);
        if (copy != tmp) free(copy);
        if (isinf(v) && !ps->range) ps->range = s;
        if (!wanted) return JSON_OK;
    }
    if (ps->sink->number(ps->ud, v, s, n))
        return fail(ps, JSON_ERR_ABORT, "stopped by the sink");
    return JSON_OK;
}

static int literal(parser_t *ps, const char *word, size_t n) {
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) return -1;
    ps->p += n;
    return 0;
}

#define EMIT(cb, ...)                                                          \
    do {                                                                       \
        if (sink && sink->cb && sink->cb(__VA_ARGS__)) {                       \
            st = fail(&ps, JSON_ERR_ABORT, "stopped by the sink");             \
            goto out;                                                          \
        }                                                                      \
    } while (0)

json_status json_parse(const char *s, size_t n, int max_depth,
                       const json_sink *sink, void *ud, json_error *err) {
    parser_t ps = {
        .start = s, .p = s, .end = s + n, .sink = sink, .ud = ud, .err = err};
    char stack[JSON_MAX_DEPTH > 0 ? 256 : 1];
    char *stk = stack;
    if (max_depth < 0) max_depth = 0;
    if ((size_t)max_depth > sizeof stack) stk = xmalloc((size_t)max_depth);
    int depth = 0;
    /* A skipped container: the depth inside it and where it began; the
     * sink is off (NULL) until it closes. */
    int skip_depth = 0;
    const char *skip_from = NULL;
    const json_sink *outer = sink;
    json_status st = JSON_OK;
    const char *str;
    size_t slen;
    if (err) {
        err->status = JSON_OK;
        err->offset = 0;
        err->message[0] = '\0';
    }

value:
    skip_ws(&ps);
    if (ps.p >= ps.end) {
        st = fail(&ps, JSON_ERR_SYNTAX, "expected a value");
        goto out;
    }
    switch (*ps.p) {
    case '{':
    case '[': {
        char open = *ps.p;
        if (depth >= max_depth) {
            char msg[64];
            snprintf(msg, sizeof msg, "nested deeper than %d levels",
                     max_depth);
            st = fail(&ps, JSON_ERR_DEPTH, msg);
            goto out;
        }
        stk[depth++] = open;
        ps.p++;
        if (sink && (open == '{' ? sink->begin_object : sink->begin_array)) {
            int rc =
                open == '{' ? sink->begin_object(ud) : sink->begin_array(ud);
            if (rc == JSON_SINK_SKIP && sink->skipped) {
                skip_depth = depth;
                skip_from = ps.p - 1;
                sink = ps.sink = NULL;
            } else if (rc) {
                st = fail(&ps, JSON_ERR_ABORT, "stopped by the sink");
                goto out;
            }
        }
        skip_ws(&ps);
        if (ps.p < ps.end && *ps.p == (open == '{' ? '}' : ']')) {
            ps.p++;
            goto close;
        }
        if (open == '{') goto key;
        goto value;
    }
    case '"': {
        const char *raw = ps.p;
        if ((st = parse_string(&ps, &str, &slen)) != JSON_OK) goto out;
        EMIT(string, ud, str, slen, raw, (size_t)(ps.p - raw));
        goto after_value;
    }
    case 't':
        if (literal(&ps, "true", 4)) break;
        EMIT(boolean, ud, 1);
        goto after_value;
    case 'f':
        if (literal(&ps, "false", 5)) break;
        EMIT(boolean, ud, 0);
        goto after_value;
    case 'n':
        if (literal(&ps, "null", 4)) break;
        EMIT(null, ud);
        goto after_value;
    default:
        if (*ps.p == '-' || (*ps.p >= '0' && *ps.p <= '9')) {
            if ((st = parse_number(&ps)) != JSON_OK) goto out;
            goto after_value;
        }
        break;
    }
    st = fail(&ps, JSON_ERR_SYNTAX, "expected a value");
    goto out;

key:
    skip_ws(&ps);
    if (ps.p >= ps.end || *ps.p != '"') {
        st = fail(&ps, JSON_ERR_SYNTAX, "expected a key");
        goto out;
    }
    if ((st = parse_string(&ps, &str, &slen)) != JSON_OK) goto out;
    EMIT(key, ud, str, slen);
    skip_ws(&ps);
    if (ps.p >= ps.end || *ps.p != ':') {
        st = fail(&ps, JSON_ERR_SYNTAX, "expected ':'");
        goto out;
    }
    ps.p++;
    goto value;

after_value:
    skip_ws(&ps);
    if (depth == 0) {
        if (ps.p != ps.end) {
            st = fail(&ps, JSON_ERR_SYNTAX, "trailing data");
        } else if (ps.range) {
            char msg[80];
            ps.p = ps.range;
            snprintf(msg, sizeof msg,
                     "number out of range (too large for a double) at byte %zu",
                     (size_t)(ps.range - s));
            st = fail(&ps, JSON_ERR_RANGE, msg);
        }
        goto out;
    }
    if (ps.p >= ps.end) {
        st = fail(&ps, JSON_ERR_SYNTAX, "unterminated");
        goto out;
    }
    if (*ps.p == ',') {
        ps.p++;
        if (stk[depth - 1] == '{') goto key;
        goto value;
    }
    if (*ps.p == (stk[depth - 1] == '{' ? '}' : ']')) {
        ps.p++;
        goto close;
    }
    st = fail(&ps, JSON_ERR_SYNTAX,
              stk[depth - 1] == '{' ? "expected ',' or '}'"
                                    : "expected ',' or ']'");
    goto out;

close: /* the container stk[depth - 1] has just been closed, ps.p past it */
    if (skip_depth && depth == skip_depth) {
        skip_depth = 0;
        sink = ps.sink = outer;
        depth--;
        EMIT(skipped, ud, skip_from, (size_t)(ps.p - skip_from));
        goto after_value;
    }
    depth--;
    if (stk[depth] == '{')
        EMIT(end_object, ud);
    else
        EMIT(end_array, ud);
    goto after_value;

out:
    if (stk != stack) free(stk);
    free(ps.heap);
    return st;
}
