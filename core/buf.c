/* buf.c -- see buf.h. */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

void buf_init(buf_t *b, size_t headroom) {
    b->data = NULL;
    b->head = headroom;
    b->len = 0;
    b->cap = 0;
}

void buf_close(buf_t *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void buf_reset(buf_t *b) {
    b->len = 0;
}

void buf_reserve(buf_t *b, size_t n) {
    size_t need = b->head + b->len + n;
    if (need <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

void buf_append(buf_t *b, const void *p, size_t n) {
    buf_reserve(b, n);
    memcpy(b->data + b->head + b->len, p, n);
    b->len += n;
}

size_t buf_format_u64(char out[20], unsigned long long v) {
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

void buf_put_int(buf_t *b, long long v) {
    buf_reserve(b, 21);
    char *w = b->data + b->head + b->len;
    unsigned long long u = (unsigned long long)v;
    if (v < 0) {
        *w++ = '-';
        b->len++;
        u = 0 - u; /* LLONG_MIN too */
    }
    b->len += buf_format_u64(w, u);
}

void buf_printf(buf_t *b, const char *fmt, ...) {
    va_list ap;
    buf_reserve(b, 64);
    va_start(ap, fmt);
    size_t room = b->cap - b->head - b->len;
    int n = vsnprintf(b->data + b->head + b->len, room, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= room) {
        buf_reserve(b, (size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf(b->data + b->head + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

char *buf_steal(buf_t *b) {
    char *p = b->data;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
