/* frame.c -- see frame.h. */
#include "frame.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "pmd.h"

/* A frame is one block: this struct, then LWS_PRE and header room, then
 * the payload. */
struct frame {
    int refs;
    /* The delivery class (frame.h), in the padding after refs: a frame
     * costs no byte more for it. */
    unsigned char ephemeral;
    size_t hdr;    /* header bytes */
    size_t len;    /* payload bytes */
    char *payload; /* inside the same block */
    /* The compressed variant (owned, freed with the frame), the frame
     * itself when compressing does not pay, NULL until someone asks. */
    struct frame *z;
};

_Static_assert(sizeof(struct frame) + FRAME_LWS_PRE_MAX + 10 <= FRAME_HEADROOM,
               "FRAME_HEADROOM too small for the frame and its header");

/* Writes the RFC 6455 header of an unmasked, final text frame (b0: FIN,
 * RSV1 and the opcode) just in front of payload; returns its length. */
static size_t write_header(char *payload, size_t len, unsigned char b0) {
    unsigned char *p;
    if (len < 126) {
        p = (unsigned char *)payload - 2;
        p[1] = (unsigned char)len;
        p[0] = b0;
        return 2;
    }
    if (len <= 0xffff) {
        p = (unsigned char *)payload - 4;
        p[0] = b0;
        p[1] = 126;
        p[2] = (unsigned char)(len >> 8);
        p[3] = (unsigned char)len;
        return 4;
    }
    p = (unsigned char *)payload - 10;
    p[0] = b0;
    p[1] = 127;
    for (int i = 0; i < 8; i++)
        p[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

/* A final text frame (RSV1 too when deflated). */
#define B0_TEXT 0x81
#define B0_TEXT_DEFLATED 0xc1

static frame_t *frame_in(char *block, size_t head, size_t len,
                         unsigned char b0) {
    frame_t *f = (frame_t *)(void *)block;
    f->refs = 1;
    f->ephemeral = 0;
    f->len = len;
    f->payload = block + head;
    f->hdr = write_header(f->payload, len, b0);
    f->z = NULL;
    return f;
}

frame_t *frame_from_buf(buf_t *b) {
    assert(b->head >= FRAME_HEADROOM);
    if (!b->data) buf_reserve(b, 1);
    size_t head = b->head, len = b->len;
    return frame_in(buf_steal(b), head, len, B0_TEXT);
}

frame_t *frame_create_text(const char *payload, size_t len) {
    char *block = xmalloc(FRAME_HEADROOM + len + 1);
    memcpy(block + FRAME_HEADROOM, payload, len);
    return frame_in(block, FRAME_HEADROOM, len, B0_TEXT);
}

frame_t *frame_ref(frame_t *f) {
    f->refs++;
    return f;
}

void frame_unref(frame_t *f) {
    if (!f) return;
    assert(f->refs > 0);
    if (--f->refs) return;
    if (f->z != f) free(f->z);
    free(f);
}

frame_t *frame_deflated(frame_t *f, pmd_deflater *d) {
    if (f->z) return f->z;
    f->z = f;
    if (f->len < PMD_MIN_PAYLOAD) return f;
    /* Room for the payload itself: anything longer is no gain. */
    char *block = xmalloc(FRAME_HEADROOM + f->len + 4);
    size_t zn =
        pmd_deflate(d, (const unsigned char *)f->payload, f->len,
                    (unsigned char *)block + FRAME_HEADROOM, f->len + 4);
    if (!zn) {
        free(block);
        return f;
    }
    block = xrealloc(block, FRAME_HEADROOM + zn);
    f->z = frame_in(block, FRAME_HEADROOM, zn, B0_TEXT_DEFLATED);
    return f->z;
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

void frame_set_ephemeral(frame_t *f) {
    f->ephemeral = 1;
}

int frame_ephemeral(const frame_t *f) {
    return f->ephemeral;
}

int frame_refs(const frame_t *f) {
    return f->refs;
}
