/* fuzz_token.c -- libFuzzer target: token=<JWT> as a client sends it.
 * Each input is tried twice: as the whole token (the signature check must
 * refuse it without a crash), and as the claims part of a token signed
 * here, so that the claims reader behind the signature is reached too.
 *   make fuzz            (tests/fuzz/run.sh; clang with libFuzzer) */
#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "auth.h"

static const char key[] = "fuzz";

static size_t b64url(const unsigned char *in, size_t n, char *out) {
    static const char t[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        out[o++] = t[v >> 18 & 63];
        out[o++] = t[v >> 12 & 63];
        if (i + 1 < n) out[o++] = t[v >> 6 & 63];
        if (i + 2 < n) out[o++] = t[v & 63];
    }
    out[o] = '\0';
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char sub[80];
    auth_verify((const char *)data, size, key, strlen(key), 1000, sub,
                sizeof sub);

    if (size > 1400) return 0;
    static char tok[4096];
    static const char header[] = "{\"alg\":\"HS256\"}";
    size_t n = b64url((const unsigned char *)header, sizeof header - 1, tok);
    tok[n++] = '.';
    n += b64url(data, size, tok + n);
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t ml = 0;
    if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, strlen(key),
                   (unsigned char *)tok, n, mac, sizeof mac, &ml))
        __builtin_trap();
    tok[n++] = '.';
    n += b64url(mac, ml, tok + n);
    if (auth_verify(tok, n, key, strlen(key), 1000, sub, sizeof sub) ==
            AUTH_OK &&
        strlen(sub) >= sizeof sub)
        __builtin_trap();
    return 0;
}
