/* frame.c -- see frame.h. */
#include "frame.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

struct frame {
    int refs;
    size_t hdr;      /* header bytes */
    size_t len;      /* payload bytes */
    char *storage;   /* owned: headroom, header, payload */
    char *payload;   /* inside storage */
};

/* Writes the RFC 6455 header of an unmasked, final text frame just in
 * front of payload; returns its length. */
static size_t write_header(char *payload, size_t len) {
    unsigned char *p;
    if (len < 126) {
        p = (unsigned char *)payload - 2;
        p[1] = (unsigned char)len;
        p[0] = 0x81;
        return 2;
    }
    if (len <= 0xffff) {
        p = (unsigned char *)payload - 4;
        p[0] = 0x81;
        p[1] = 126;
        p[2] = (unsigned char)(len >> 8);
        p[3] = (unsigned char)len;
        return 4;
    }
    p = (unsigned char *)payload - 10;
    p[0] = 0x81;
    p[1] = 127;
    for (int i = 0; i < 8; i++)
        p[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

frame_t *frame_from_buf(buf_t *b) {
    assert(b->head >= FRAME_HEADROOM);
    frame_t *f = xmalloc(sizeof *f);
    if (!b->data) buf_reserve(b, 1);
    f->refs = 1;
    f->len = b->len;
    f->payload = b->data + b->head;
    f->storage = buf_steal(b);
    f->hdr = write_header(f->payload, f->len);
    return f;
}

frame_t *frame_create_text(const char *payload, size_t len) {
    buf_t b;
    buf_init(&b, FRAME_HEADROOM);
    buf_append(&b, payload, len);
    return frame_from_buf(&b);
}

frame_t *frame_ref(frame_t *f) {
    f->refs++;
    return f;
}

void frame_unref(frame_t *f) {
    if (!f) return;
    assert(f->refs > 0);
    if (--f->refs) return;
    free(f->storage);
    free(f);
}

unsigned char *frame_wire(const frame_t *f) {
    return (unsigned char *)f->payload - f->hdr;
}

size_t frame_wire_len(const frame_t *f) { return f->hdr + f->len; }

const char *frame_payload(const frame_t *f, size_t *len) {
    if (len) *len = f->len;
    return f->payload;
}

int frame_refs(const frame_t *f) { return f->refs; }
