/* fuzz_inflate.c -- libFuzzer target: compressed frames (permessage-
 * deflate) through the frame parser and the bounded inflater, as the
 * transport feeds them. The first byte picks the read size, the message
 * limit and whether the client keeps its context; the rest is what the
 * client sends. Whatever it is: no crash, no undefined behaviour, no more
 * handed out at once than the buffer, and a message never inflates past
 * the limit without PMD_ERR_TOO_BIG.
 *
 * A second pass deflates the input as the server would (pmd_deflate),
 * frames it as a client would, and must inflate back to the same bytes.
 *   make fuzz            (tests/fuzz/run.sh; clang with libFuzzer) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pmd.h"
#include "wsproto.h"

#define CHUNK 4096

static pmd_inflater *inflater(void) {
    static pmd_inflater *z;
    if (!z) z = pmd_inflater_create();
    return z;
}

/* Parses wire[0..n) in reads of `step` bytes (carrying what the parser
 * leaves, as the transport does) and inflates every compressed piece.
 * out/out_len: the last message inflated, whole (NULL: not kept). */
static void run(unsigned char *wire, size_t n, size_t step, uint64_t limit,
                int no_context, unsigned char *out, size_t *out_len) {
    pmd_inflater *z = inflater();
    ws_parser_t p;
    ws_parser_init(&p, limit);
    ws_parser_allow_deflate(&p);
    unsigned char *buf = malloc(n + WS_MAX_CONTROL_FRAME + 1);
    unsigned char chunk[CHUNK];
    size_t carry = 0, off = 0, msg = 0;
    int open = 0;
    while (off < n) {
        size_t k = n - off < step ? n - off : step;
        memcpy(buf + carry, wire + off, k);
        off += k;
        size_t len = carry + k, pos = 0;
        ws_piece pc;
        for (;;) {
            ws_result r = ws_parse(&p, buf, len, &pos, &pc);
            if (r == WS_MORE) break;
            if (r == WS_FAIL) goto done;
            if (r != WS_DATA || !pc.compressed) continue;
            if (!open) {
                pmd_inflate_begin(z, limit, no_context);
                open = 1;
                msg = 0;
            }
            pmd_inflate_input(z, pc.data, pc.len, pc.fin);
            long got;
            while ((got = pmd_inflate_next(z, chunk, sizeof chunk)) > 0) {
                if ((size_t)got > sizeof chunk) __builtin_trap();
                if (out && msg + (size_t)got <= limit)
                    memcpy(out + msg, chunk, (size_t)got);
                msg += (size_t)got;
                if (msg > limit) __builtin_trap();
            }
            if (got < 0) goto done; /* the transport closes here */
            if (pc.fin) {
                open = 0;
                if (out_len) *out_len = msg;
            }
        }
        carry = len - pos;
        if (carry > WS_MAX_CONTROL_FRAME) __builtin_trap();
        memmove(buf, buf + pos, carry);
    }
done:
    free(buf);
}

/* A masked client frame around payload (mask 0x5a...): into out. */
static size_t client_frame(unsigned char *out, unsigned b0,
                           const unsigned char *payload, size_t len) {
    size_t h = 0;
    out[h++] = (unsigned char)b0;
    if (len < 126) {
        out[h++] = (unsigned char)(0x80 | len);
    } else if (len <= 0xffff) {
        out[h++] = 0x80 | 126;
        out[h++] = (unsigned char)(len >> 8);
        out[h++] = (unsigned char)len;
    } else {
        out[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            out[h++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    static const unsigned char mask[4] = {0x5a, 0xa5, 0x3c, 0xc3};
    memcpy(out + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < len; i++)
        out[h + i] = payload[i] ^ mask[i & 3];
    return h + len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static const size_t steps[] = {1, 2, 7, 64, 1000, 65536};
    static const uint64_t limits[] = {0, 1, 100, 4096, 65536};
    unsigned sel = data[0];
    size_t step = steps[sel % 6];
    uint64_t limit = limits[(sel / 6) % 5];
    int no_context = (sel / 30) & 1;
    data++, size--;

    /* The bytes as they came. */
    unsigned char *wire = malloc(size ? size : 1);
    memcpy(wire, data, size);
    run(wire, size, step, limit, no_context, NULL, NULL);
    free(wire);

    /* The bytes as a message we deflate: it must come back the same. */
    static pmd_deflater *d;
    if (!d) d = pmd_deflater_create();
    unsigned char *z = malloc(size + 4);
    size_t zn = pmd_deflate(d, data, size, z, size + 4);
    if (zn) {
        if (zn >= size) __builtin_trap();
        unsigned char *framed = malloc(zn + 14);
        size_t fn = client_frame(framed, 0xc2, z, zn); /* binary */
        unsigned char *back = malloc(size);
        size_t back_len = (size_t)-1;
        run(framed, fn, step, 1 << 20, 1, back, &back_len);
        if (back_len != size || memcmp(back, data, size) != 0) __builtin_trap();
        free(back);
        free(framed);
    }
    free(z);
    return 0;
}
