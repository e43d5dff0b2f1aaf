/* buf.h -- a growable byte buffer with reserved headroom.
 *
 * Outgoing messages are encoded straight into a buf whose first `head` bytes
 * are left free, so that the WebSocket frame header (and libwebsockets'
 * LWS_PRE) can be written in front of the payload without a copy. */
#ifndef LUAHUB_BUF_H
#define LUAHUB_BUF_H

#include <stddef.h>
#include <string.h>

typedef struct buf {
    char *data;  /* owned; NULL until the first write */
    size_t head; /* bytes reserved in front of the content */
    size_t len;  /* bytes of content, starting at data + head */
    size_t cap;  /* allocated bytes, headroom included */
} buf_t;

/* Embedded init: no allocation until the first append. */
void buf_init(buf_t *b, size_t headroom);
/* Frees the storage; the buf may be init'ed again. */
void buf_close(buf_t *b);
/* Drops the content, keeps the storage and the headroom. */
void buf_reset(buf_t *b);
/* Makes room for n more bytes of content. */
void buf_reserve(buf_t *b, size_t n);
void buf_append(buf_t *b, const void *p, size_t n);
/* Inline, so that a literal's length is known when compiled. */
static inline void buf_puts(buf_t *b, const char *s) {
    buf_append(b, s, strlen(s));
}
/* Inline: the frame writers put a byte of punctuation at a time. */
static inline void buf_putc(buf_t *b, char c) {
    if (b->head + b->len >= b->cap) buf_reserve(b, 1);
    b->data[b->head + b->len++] = c;
}
/* Appends v in decimal (what "%lld" writes, without printf's cost). */
void buf_put_int(buf_t *b, long long v);
/* Writes v in decimal to out (no NUL); returns the length (at most 20). */
size_t buf_format_u64(char out[20], unsigned long long v);
/* printf-style append. */
void buf_printf(buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The content (not NUL-terminated unless you appended a NUL). */
static inline char *buf_content(const buf_t *b) {
    return b->data + b->head;
}
/* Hands the storage to the caller, who frees it with free(); the buf is
 * left empty. */
char *buf_steal(buf_t *b);

#endif
