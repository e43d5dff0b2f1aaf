/* auth.c -- see auth.h. HMAC-SHA256 is OpenSSL's (libcrypto, which
 * libwebsockets already links); the rest is base64url and our JSON
 * parser. */
#include "auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "conn.h"
#include "http.h"

#include "json.h"

#define SIG_LEN 32 /* HMAC-SHA256 */

/* Decodes base64url without padding (RFC 4648 section 5, as JWS uses it)
 * into out (room for n * 3 / 4 bytes). Returns the length, or -1 for a
 * byte outside the alphabet (padding included) or an impossible length. */
static long b64url_decode(const char *s, size_t n, unsigned char *out) {
    if (n % 4 == 1) return -1;
    uint32_t acc = 0;
    int bits = 0;
    long o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int v;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '-')
            v = 62;
        else if (c == '_')
            v = 63;
        else
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return o;
}

/* The claims this server reads, from a header or a payload object. */
typedef struct claims {
    int depth;
    char key[8]; /* the top-level key being read ("" when not ours) */
    char alg[16];
    char sub[80];
    int sub_kind; /* 0 absent, 1 a string that fits, -1 anything else */
    double exp, nbf;
    int has_exp, has_nbf, bad_time;
} claims_t;

static void other_value(claims_t *c);

static int c_open(void *ud) {
    claims_t *c = ud;
    other_value(c);
    c->depth++;
    c->key[0] = '\0';
    return 0;
}
static int c_array(void *ud) {
    claims_t *c = ud;
    if (c->depth == 0) return 1; /* the token's parts must be objects */
    other_value(c);
    c->depth++;
    c->key[0] = '\0';
    return 0;
}
static int c_close(void *ud) {
    ((claims_t *)ud)->depth--;
    return 0;
}
static int c_key(void *ud, const char *s, size_t n) {
    claims_t *c = ud;
    if (c->depth != 1 || n >= sizeof c->key) {
        c->key[0] = '\0';
        return 0;
    }
    memcpy(c->key, s, n + 1);
    return 0;
}
/* A value at the top level that is not a string, number or container. */
static void other_value(claims_t *c) {
    if (c->depth != 1) return;
    if (!strcmp(c->key, "sub")) c->sub_kind = -1;
    if (!strcmp(c->key, "exp") || !strcmp(c->key, "nbf")) c->bad_time = 1;
    if (!strcmp(c->key, "alg")) c->alg[0] = '\0';
}
static int c_string(void *ud, const char *s, size_t n, const char *raw,
                    size_t rawlen) {
    claims_t *c = ud;
    if (c->depth == 0) return 1;
    if (c->depth != 1) return 0;
    if (!strcmp(c->key, "alg")) {
        if (n < sizeof c->alg && strlen(s) == n)
            memcpy(c->alg, s, n + 1);
        else
            c->alg[0] = '\0';
    } else if (!strcmp(c->key, "sub")) {
        if (n < sizeof c->sub && strlen(s) == n) {
            memcpy(c->sub, s, n + 1);
            c->sub_kind = 1;
        } else {
            c->sub_kind = -1;
        }
    } else {
        other_value(c);
    }
    return 0;
}
static int c_number(void *ud, double v, const char *raw, size_t rawlen) {
    claims_t *c = ud;
    if (c->depth == 0) return 1;
    if (c->depth != 1) return 0;
    if (!strcmp(c->key, "exp")) {
        c->exp = v;
        c->has_exp = 1;
    } else if (!strcmp(c->key, "nbf")) {
        c->nbf = v;
        c->has_nbf = 1;
    } else {
        other_value(c);
    }
    return 0;
}
static int c_bool(void *ud, int v) {
    claims_t *c = ud;
    if (c->depth == 0) return 1;
    other_value(c);
    return 0;
}
static int c_null(void *ud) {
    claims_t *c = ud;
    if (c->depth == 0) return 1;
    other_value(c);
    return 0;
}

static const json_sink claims_sink = {c_open, c_close,  c_array,  c_close,
                                      c_key,  c_string, c_number, c_bool,
                                      c_null, NULL};

/* Decodes one base64url part and reads its JSON object into c. */
static int read_part(const char *s, size_t n, claims_t *c) {
    unsigned char json[AUTH_MAX_TOKEN];
    long len = b64url_decode(s, n, json);
    if (len <= 0) return -1;
    memset(c, 0, sizeof *c);
    if (json_parse((const char *)json, (size_t)len, 8, &claims_sink, c, NULL) !=
        JSON_OK)
        return -1;
    return 0;
}

auth_status auth_verify(const char *token, size_t len, const void *key,
                        size_t keylen, int64_t now, char *sub, size_t subcap) {
    if (len == 0 || len > AUTH_MAX_TOKEN) return AUTH_MALFORMED;
    const char *dot1 = memchr(token, '.', len);
    if (!dot1) return AUTH_MALFORMED;
    const char *dot2 = memchr(dot1 + 1, '.', (size_t)(token + len - dot1 - 1));
    if (!dot2 || memchr(dot2 + 1, '.', (size_t)(token + len - dot2 - 1)))
        return AUTH_MALFORMED;
    const char *h = token, *p = dot1 + 1, *g = dot2 + 1;
    size_t hl = (size_t)(dot1 - h), pl = (size_t)(dot2 - p),
           gl = (size_t)(token + len - g);

    /* The algorithm first: nothing else of a token in another one is
     * looked at. */
    claims_t c;
    if (read_part(h, hl, &c) < 0) return AUTH_MALFORMED;
    if (strcmp(c.alg, "HS256") != 0) return AUTH_BAD_ALG;

    unsigned char want[EVP_MAX_MD_SIZE], got[AUTH_MAX_TOKEN];
    size_t wl = 0;
    if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, keylen,
                   (const unsigned char *)token, (size_t)(dot2 - token), want,
                   sizeof want, &wl) ||
        wl != SIG_LEN)
        return AUTH_BAD_SIGNATURE;
    long sl = b64url_decode(g, gl, got);
    if (sl != SIG_LEN || CRYPTO_memcmp(want, got, SIG_LEN) != 0)
        return AUTH_BAD_SIGNATURE;

    if (read_part(p, pl, &c) < 0) return AUTH_MALFORMED;
    if (c.bad_time) return AUTH_MALFORMED;
    if (c.has_exp && (double)now >= c.exp) return AUTH_EXPIRED;
    if (c.has_nbf && (double)now < c.nbf) return AUTH_NOT_YET;
    if (c.sub_kind != 1 || strlen(c.sub) >= subcap) return AUTH_NO_SUBJECT;
    memcpy(sub, c.sub, strlen(c.sub) + 1);
    return AUTH_OK;
}

const char *auth_reason(auth_status st) {
    switch (st) {
    case AUTH_OK:
        return "ok";
    case AUTH_MALFORMED:
        return "malformed token";
    case AUTH_BAD_ALG:
        return "token algorithm must be HS256";
    case AUTH_BAD_SIGNATURE:
        return "bad token signature";
    case AUTH_EXPIRED:
        return "token expired";
    case AUTH_NOT_YET:
        return "token not yet valid";
    case AUTH_NO_SUBJECT:
        return "token has no sub";
    }
    return "bad token";
}

/* ---- the identity policy ----------------------------------------------- */

struct auth {
    char *secret; /* NULL in development mode */
    size_t secret_len;
    uint64_t guests;
};

auth_t *auth_create(const char *secret_file, char *err, size_t errlen) {
    auth_t *a = xcalloc(1, sizeof *a);
    if (!secret_file[0]) {
        const char *env = getenv("LUAHUB_AUTH_SECRET");
        if (env && *env) {
            a->secret_len = strlen(env);
            a->secret = xstrndup(env, a->secret_len);
        }
        return a;
    }
    FILE *f = fopen(secret_file, "rb");
    if (!f) {
        snprintf(err, errlen, "--auth-secret-file %s: cannot open",
                 secret_file);
        free(a);
        return NULL;
    }
    char buf[4097];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    if (n == 0 || n >= sizeof buf) {
        snprintf(err, errlen, "--auth-secret-file %s: %s", secret_file,
                 n ? "longer than 4096 bytes" : "empty");
        OPENSSL_cleanse(buf, sizeof buf);
        free(a);
        return NULL;
    }
    a->secret = xstrndup(buf, n);
    a->secret_len = n;
    OPENSSL_cleanse(buf, sizeof buf);
    return a;
}

void auth_destroy(auth_t *a) {
    if (!a) return;
    if (a->secret) {
        OPENSSL_cleanse(a->secret, a->secret_len);
        free(a->secret);
    }
    free(a);
}

int auth_has_secret(const auth_t *a) {
    return a->secret != NULL;
}

const char *auth_identify(auth_t *a, const http_req *r, int64_t now, char *uid,
                          size_t uidlen) {
    char v[AUTH_MAX_TOKEN + 1];
    int n;
    if (a->secret) {
        if (http_query_arg(r, "user", v, sizeof v) != -1)
            return "user= is not accepted: this server requires a token";
        n = http_query_arg(r, "token", v, sizeof v);
        if (n == -1) return "token required";
        if (n < 0) return auth_reason(AUTH_MALFORMED);
        auth_status st = auth_verify(v, (size_t)n, a->secret, a->secret_len,
                                     now, uid, uidlen);
        if (st != AUTH_OK) return auth_reason(st);
        if (!conns_valid_user_id(uid, strlen(uid)))
            return "bad user id in token";
        return NULL;
    }
    n = http_query_arg(r, "user", v, sizeof v);
    if (n == -1) {
        snprintf(uid, uidlen, "guest-%llu", (unsigned long long)++a->guests);
        return NULL;
    }
    if (n < 0 || (size_t)n >= uidlen || !conns_valid_user_id(v, (size_t)n))
        return "bad user id";
    memcpy(uid, v, (size_t)n + 1);
    return NULL;
}
