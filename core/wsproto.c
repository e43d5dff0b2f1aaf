/* wsproto.c -- see wsproto.h. */
#include "wsproto.h"

#include <openssl/evp.h>
#include <string.h>

#include "codes.h"

void ws_parser_init(ws_parser_t *p, uint64_t max_message) {
    memset(p, 0, sizeof *p);
    p->max_message = max_message;
}

void ws_parser_allow_deflate(ws_parser_t *p) {
    p->deflate = 1;
}

int ws_close_code_valid(unsigned code) {
    /* 1004-1006 and 1015 are reserved for reports, never sent; 1016-2999
     * are unassigned in the protocol's range. */
    if (code >= 1000 && code <= 1003) return 1;
    if (code >= 1007 && code <= 1014) return 1;
    return code >= 3000 && code <= 4999;
}

int ws_utf8_check(uint32_t *state, const unsigned char *s, size_t n) {
    /* state: continuation bytes still due (low 2 bits), and which range
     * the next one must fall in (the rest): 0 80-BF, 1 A0-BF (after E0,
     * no overlong), 2 80-9F (after ED, no surrogates), 3 90-BF (after F0),
     * 4 80-8F (after F4, nothing past U+10FFFF). */
    uint32_t need = *state & 3, range = *state >> 2;
    size_t i = 0;
    while (i < n) {
        if (need == 0) {
            /* Plain ASCII runs eight bytes at a time. */
            while (i + 8 <= n) {
                uint64_t w;
                memcpy(&w, s + i, 8);
                if (w & 0x8080808080808080ULL) break;
                i += 8;
            }
            if (i >= n) break;
            unsigned char c = s[i++];
            if (c < 0x80) continue;
            if (c < 0xc2) return -1;
            if (c < 0xe0) {
                need = 1, range = 0;
            } else if (c < 0xf0) {
                need = 2, range = c == 0xe0 ? 1 : c == 0xed ? 2 : 0;
            } else if (c < 0xf5) {
                need = 3, range = c == 0xf0 ? 3 : c == 0xf4 ? 4 : 0;
            } else {
                return -1;
            }
            continue;
        }
        unsigned char c = s[i++];
        unsigned lo = range == 1 ? 0xa0 : range == 3 ? 0x90 : 0x80;
        unsigned hi = range == 2 ? 0x9f : range == 4 ? 0x8f : 0xbf;
        if (c < lo || c > hi) return -1;
        range = 0;
        need--;
    }
    *state = need | (range << 2);
    return 0;
}

/* XORs s[0..n) with the frame's mask, starting at mask byte *pos. */
static void unmask(unsigned char *s, size_t n, const uint8_t mask[4],
                   uint8_t *pos) {
    size_t i = 0;
    if (n >= 16) {
        unsigned char m8[8];
        for (int k = 0; k < 8; k++)
            m8[k] = mask[(*pos + k) & 3];
        uint64_t m;
        memcpy(&m, m8, 8);
        for (; i + 8 <= n; i += 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            w ^= m;
            memcpy(s + i, &w, 8);
        }
    }
    for (; i < n; i++)
        s[i] ^= mask[(*pos + i) & 3];
    *pos = (uint8_t)((*pos + n) & 3);
}

static ws_result fail(ws_piece *out, uint16_t code, const char *why) {
    out->code = code;
    out->reason = why;
    out->data = NULL;
    out->len = 0;
    return WS_FAIL;
}

ws_result ws_parse(ws_parser_t *p, unsigned char *buf, size_t len, size_t *pos,
                   ws_piece *out) {
    size_t i = *pos;
    for (;;) {
        if (p->in_frame) {
            size_t n = len - i;
            if (n > p->remaining) n = (size_t)p->remaining;
            if (n == 0 && p->remaining) {
                *pos = i;
                return WS_MORE;
            }
            unsigned char *d = buf + i;
            unmask(d, n, p->mask, &p->mask_pos);
            /* Compressed text is checked once inflated (by the caller). */
            if (p->msg_op == WS_OP_TEXT && !p->msg_deflate &&
                ws_utf8_check(&p->utf8, d, n) < 0)
                return fail(out, CLOSE_BAD_DATA, "invalid UTF-8");
            p->remaining -= n;
            i += n;
            *pos = i;
            out->data = d;
            out->len = n;
            out->opcode = p->msg_op;
            out->compressed = p->msg_deflate;
            out->fin = 0;
            if (p->remaining == 0) {
                p->in_frame = 0;
                if (p->frame_fin) {
                    if (p->utf8 != 0)
                        return fail(out, CLOSE_BAD_DATA, "invalid UTF-8");
                    out->fin = 1;
                    p->msg_op = 0;
                    p->msg_len = 0;
                }
            }
            if (n == 0 && !out->fin) continue; /* an empty fragment */
            return WS_DATA;
        }

        size_t avail = len - i;
        if (avail < 2) {
            *pos = i;
            return WS_MORE;
        }
        const unsigned char *h = buf + i;
        int fin = h[0] >> 7, op = h[0] & 0x0f, masked = h[1] >> 7;
        unsigned len7 = h[1] & 0x7f;
        /* RSV1: a compressed message, marked on its first frame only. */
        int rsv1 = (h[0] & 0x40) != 0;
        if ((h[0] & 0x30) ||
            (rsv1 && (!p->deflate || (op != WS_OP_TEXT && op != WS_OP_BINARY))))
            return fail(out, CLOSE_PROTOCOL, "reserved bits set");
        switch (op) {
        case WS_OP_CONTINUATION:
            if (!p->msg_op)
                return fail(out, CLOSE_PROTOCOL,
                            "continuation without a message");
            break;
        case WS_OP_TEXT:
        case WS_OP_BINARY:
            if (p->msg_op)
                return fail(out, CLOSE_PROTOCOL,
                            "new message inside a fragmented one");
            break;
        case WS_OP_CLOSE:
        case WS_OP_PING:
        case WS_OP_PONG:
            if (!fin)
                return fail(out, CLOSE_PROTOCOL, "fragmented control frame");
            if (len7 > 125)
                return fail(out, CLOSE_PROTOCOL, "control frame too long");
            break;
        default:
            return fail(out, CLOSE_PROTOCOL, "reserved opcode");
        }
        if (!masked)
            return fail(out, CLOSE_PROTOCOL, "client frame not masked");

        size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
        if (avail < 2 + ext) {
            *pos = i;
            return WS_MORE;
        }
        uint64_t flen = len7;
        if (ext) {
            flen = 0;
            for (size_t k = 0; k < ext; k++)
                flen = (flen << 8) | h[2 + k];
        }
        int data = !(op & 0x8);
        /* Refused at the header, before a byte of the payload. */
        if (data &&
            (flen > p->max_message || p->msg_len > p->max_message - flen))
            return fail(out, CLOSE_TOO_BIG, "message too large");
        if (ext == 8 && flen >> 63)
            return fail(out, CLOSE_PROTOCOL, "length with its top bit set");

        size_t hlen = 2 + ext + 4;
        if (avail < hlen || (!data && avail < hlen + flen)) {
            *pos = i;
            return WS_MORE;
        }
        memcpy(p->mask, h + 2 + ext, 4);
        p->mask_pos = 0;
        i += hlen;

        if (!data) {
            unsigned char *d = buf + i;
            uint8_t mp = 0;
            unmask(d, (size_t)flen, p->mask, &mp);
            i += (size_t)flen;
            *pos = i;
            out->data = d;
            out->len = (size_t)flen;
            out->opcode = (uint8_t)op;
            out->fin = 1;
            out->code = 0;
            if (op == WS_OP_CLOSE) {
                if (flen == 1)
                    return fail(out, CLOSE_PROTOCOL,
                                "close frame with a 1-byte payload");
                out->code = CLOSE_NO_STATUS;
                if (flen >= 2) {
                    unsigned code = (unsigned)d[0] << 8 | d[1];
                    uint32_t st = 0;
                    if (!ws_close_code_valid(code))
                        return fail(out, CLOSE_PROTOCOL, "invalid close code");
                    if (ws_utf8_check(&st, d + 2, (size_t)flen - 2) < 0 || st)
                        return fail(out, CLOSE_BAD_DATA,
                                    "invalid UTF-8 in close reason");
                    out->code = (uint16_t)code;
                }
            }
            return WS_CONTROL;
        }

        p->in_frame = 1;
        p->remaining = flen;
        p->frame_fin = (uint8_t)fin;
        if (op != WS_OP_CONTINUATION) {
            p->msg_op = (uint8_t)op;
            p->msg_deflate = (uint8_t)rsv1;
            p->utf8 = 0;
        }
        p->msg_len += flen;
    }
}

size_t ws_control_frame(unsigned char *out, int opcode, const void *payload,
                        size_t len) {
    if (len > 125) len = 125;
    out[0] = (unsigned char)(0x80 | opcode);
    out[1] = (unsigned char)len;
    if (len) memcpy(out + 2, payload, len);
    return len + 2;
}

size_t ws_close_frame(unsigned char *out, unsigned code, const char *reason) {
    size_t n = strlen(reason);
    if (n > 123) {
        n = 123;
        /* Never cut a character in two. */
        while (n && ((unsigned char)reason[n] & 0xc0) == 0x80)
            n--;
    }
    out[0] = 0x80 | WS_OP_CLOSE;
    out[1] = (unsigned char)(n + 2);
    out[2] = (unsigned char)(code >> 8);
    out[3] = (unsigned char)code;
    memcpy(out + 4, reason, n);
    return n + 4;
}

void ws_accept_key(const char *key, size_t keylen, char out[29]) {
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    /* SHA-1 fetched from OpenSSL's providers once, and one context reused:
     * EVP_Digest() with EVP_sha1() looks the digest up again and builds a
     * context on every call, which cost three times the hash itself
     * (docs/benchmarks.md, "The handshake path"). Kept for the process's
     * life: one thread, and nothing in them outlives a call. */
    static EVP_MD *sha1;
    static EVP_MD_CTX *ctx;
    unsigned char in[128 + sizeof guid], md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (keylen > 128) keylen = 128; /* the handshake checks it is 24 */
    memcpy(in, key, keylen);
    memcpy(in + keylen, guid, sizeof guid - 1);
    size_t n = keylen + sizeof guid - 1;
    if (!sha1) sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
    if (!ctx) ctx = EVP_MD_CTX_new();
    if (!sha1 || !ctx || !EVP_DigestInit_ex2(ctx, sha1, NULL) ||
        !EVP_DigestUpdate(ctx, in, n) || !EVP_DigestFinal_ex(ctx, md, &mdlen))
        EVP_Digest(in, n, md, &mdlen, EVP_sha1(), NULL);
    EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
}
