/* fuzz_token.c -- libFuzzer target: token=<JWT> as a client sends it.
 * Each input is tried twice: as the whole token (the signature check must
 * refuse it without a crash), and as the claims part of a token signed
 * here, so that the claims reader behind the signature is reached too.
 *   make fuzz            (tests/fuzz/run.sh; clang with libFuzzer) */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../support/jwt_sign.h"
#include "auth.h"

static const char key[] = "fuzz";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char sub[80];
    auth_verify((const char *)data, size, key, strlen(key), 1000, sub,
                sizeof sub);

    if (size > 1400) return 0;
    static char tok[4096];
    static const char header[] = "{\"alg\":\"HS256\"}";
    size_t n = jwt_sign(header, sizeof header - 1, data, size, key, tok);
    if (!n) __builtin_trap();
    if (auth_verify(tok, n, key, strlen(key), 1000, sub, sizeof sub) ==
            AUTH_OK &&
        strlen(sub) >= sizeof sub)
        __builtin_trap();
    return 0;
}
