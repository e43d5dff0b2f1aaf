/* json_write.c -- the JSON encoders of json.h: strings (escaped, invalid
 * UTF-8 replaced) and numbers (integers exactly, others shortest
 * round-trip). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "json_int.h"

void json_write_string(buf_t *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    /* Room for the common string, plain bytes between quotes; the first
     * byte that needs more reserves the worst case for the rest: each byte
     * becomes \u00XX (6) or U+FFFD (3). */
    buf_reserve(b, n + 2);
    char *base = b->data + b->head, *w = base + b->len;
    int roomy = 0;
    *w++ = '"';
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        size_t run = json__plain_run((const char *)p, (size_t)(end - p));
        memcpy(w, p, run);
        w += run;
        p += run;
        if (p == end) break;
        if (!roomy) {
            b->len = (size_t)(w - base);
            buf_reserve(b, (size_t)(end - p) * 6 + 1);
            base = b->data + b->head;
            w = base + b->len;
            roomy = 1;
        }
        unsigned char c = *p;
        if (c >= 0x80) {
            size_t k = json__utf8_len(p, (size_t)(end - p));
            if (k) {
                memcpy(w, p, k);
                w += k;
                p += k;
            } else {
                memcpy(w, "\xef\xbf\xbd", 3);
                w += 3;
                p++;
            }
            continue;
        }
        *w++ = '\\';
        switch (c) {
        case '"':
            *w++ = '"';
            break;
        case '\\':
            *w++ = '\\';
            break;
        case '\n':
            *w++ = 'n';
            break;
        case '\r':
            *w++ = 'r';
            break;
        case '\t':
            *w++ = 't';
            break;
        case '\b':
            *w++ = 'b';
            break;
        case '\f':
            *w++ = 'f';
            break;
        default:
            *w++ = 'u';
            *w++ = '0';
            *w++ = '0';
            *w++ = hex[c >> 4];
            *w++ = hex[c & 15];
        }
        p++;
    }
    *w++ = '"';
    b->len = (size_t)(w - base);
}

int json_write_number(buf_t *b, double v) {
    if (!isfinite(v)) return -1;
    char tmp[32];
    int n;
    if (v > -9007199254740992.0 && v < 9007199254740992.0 &&
        v == (double)(long long)v) {
        /* Integers are most numbers on the wire (ids, seq, timestamps). */
        long long i = (long long)v;
        unsigned long long u =
            i < 0 ? 0ULL - (unsigned long long)i : (unsigned long long)i;
        char *e = tmp + sizeof tmp, *d = e;
        do
            *--d = (char)('0' + u % 10);
        while (u /= 10);
        if (i < 0) *--d = '-';
        buf_append(b, d, (size_t)(e - d));
        return 0;
    } else {
        /* The shortest form that reads back as the same double. */
        n = snprintf(tmp, sizeof tmp, "%.15g", v);
        if (strtod(tmp, NULL) != v) n = snprintf(tmp, sizeof tmp, "%.16g", v);
        if (strtod(tmp, NULL) != v) n = snprintf(tmp, sizeof tmp, "%.17g", v);
    }
    buf_append(b, tmp, (size_t)n);
    return 0;
}
