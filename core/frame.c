/* frame.c -- see frame.h. */
#include "frame.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

/* A frame is one block: this struct, then LWS_PRE and header room, then
 * the payload. */
struct frame {
    int refs;
    size_t hdr;    /* header bytes */
    size_t len;    /* payload bytes */
    char *payload; /* inside the same block */
};

_Static_assert(sizeof(struct frame) + FRAME_LWS_PRE_MAX + 10 <= FRAME_HEADROOM,
               "FRAME_HEADROOM too small for the frame and its header");

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

static frame_t *frame_in(char *block, size_t head, size_t len) {
    frame_t *f = (frame_t *)(void *)block;
    f->refs = 1;
    f->len = len;
    f->payload = block + head;
    f->hdr = write_header(f->payload, len);
    return f;
}

frame_t *frame_from_buf(buf_t *b) {
    assert(b->head >= FRAME_HEADROOM);
    if (!b->data) buf_reserve(b, 1);
    size_t head = b->head, len = b->len;
    return frame_in(buf_steal(b), head, len);
}

frame_t *frame_create_text(const char *payload, size_t len) {
    char *block = xmalloc(FRAME_HEADROOM + len + 1);
    memcpy(block + FRAME_HEADROOM, payload, len);
    return frame_in(block, FRAME_HEADROOM, len);
}

frame_t *frame_ref(frame_t *f) {
    f->refs++;
    return f;
}

void frame_unref(frame_t *f) {
    if (!f) return;
    assert(f->refs > 0);
    if (--f->refs) return;
    free(f);
}

unsigned char *frame_wire(const frame_t *f) {
    return (unsigned char *)f->payload - f->hdr;
}

size_t frame_wire_len(const frame_t *f) {
    return f->hdr + f->len;
}

const char *frame_payload(const frame_t *f, size_t *len) {
    if (len) *len = f->len;
    return f->payload;
}

int frame_refs(const frame_t *f) {
    return f->refs;
}
