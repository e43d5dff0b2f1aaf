/* jwt_sign.h -- test tokens for the unit tests and fuzz targets: signs
 * header and claims (any bytes) as a compact JWS, header.claims.signature,
 * each part base64url without padding, the signature HMAC-SHA256 under
 * key. Not for the server, which only verifies (core/auth.c). */
#ifndef LUAHUB_TEST_JWT_SIGN_H
#define LUAHUB_TEST_JWT_SIGN_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Writes in[0..n) as base64url into out, NUL-terminated; returns its
 * length (4 * n / 3 rounded up). */
static size_t jwt_b64url(const void *in, size_t n, char *out) {
    static const char t[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *b = in;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)b[i] << 16;
        if (i + 1 < n) v |= (uint32_t)b[i + 1] << 8;
        if (i + 2 < n) v |= b[i + 2];
        out[o++] = t[v >> 18 & 63];
        out[o++] = t[v >> 12 & 63];
        if (i + 1 < n) out[o++] = t[v >> 6 & 63];
        if (i + 2 < n) out[o++] = t[v & 63];
    }
    out[o] = '\0';
    return o;
}

/* The token in out (room for 4 * (hn + cn + 32) / 3 + 8 bytes); returns its
 * length, or 0 if HMAC failed. */
static size_t jwt_sign(const void *header, size_t hn, const void *claims,
                       size_t cn, const char *key, char *out) {
    size_t n = jwt_b64url(header, hn, out);
    out[n++] = '.';
    n += jwt_b64url(claims, cn, out + n);
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t ml = 0;
    if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, strlen(key),
                   (const unsigned char *)out, n, mac, sizeof mac, &ml))
        return 0;
    out[n++] = '.';
    return n + jwt_b64url(mac, ml, out + n);
}

#endif
