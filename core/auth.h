/* auth.h -- client identity from a signed token.
 *
 * With an auth secret, a client proves its user id with token=<JWT> in the
 * upgrade request (../shared/PROTOCOL.md): a JSON Web Token (RFC 7519) in
 * compact form, signed with HMAC-SHA256 ("alg":"HS256", RFC 7515) under
 * the server's secret, whose "sub" is the user id. "exp" and "nbf", when
 * present, are honoured against the wall clock. Every other algorithm,
 * "none" included, is refused: the server decides the algorithm, not the
 * token. */
#ifndef LUAHUB_AUTH_H
#define LUAHUB_AUTH_H

#include <stddef.h>
#include <stdint.h>

/* The longest token accepted, in bytes. */
#define AUTH_MAX_TOKEN 2048

typedef enum auth_status {
    AUTH_OK = 0,
    AUTH_MALFORMED = -1, /* not three base64url parts of JSON objects */
    AUTH_BAD_ALG = -2,   /* "alg" is not "HS256" */
    AUTH_BAD_SIGNATURE = -3,
    AUTH_EXPIRED = -4,    /* now >= "exp" */
    AUTH_NOT_YET = -5,    /* now < "nbf" */
    AUTH_NO_SUBJECT = -6, /* "sub" missing, not a string, or too long */
} auth_status;

/* Checks token[0..len) against key[0..keylen) at now (seconds since the
 * epoch). On AUTH_OK, sub holds the "sub" claim, NUL-terminated (it is not
 * checked as a user id here). */
auth_status auth_verify(const char *token, size_t len, const void *key,
                        size_t keylen, int64_t now, char *sub, size_t subcap);

/* A short phrase for a status, for close reasons and logs. */
const char *auth_reason(auth_status st);

/* The server's identity policy. With a secret, a client must present
 * token=<JWT>; without one (development mode) it may claim any user=<id>,
 * or gets a guest id. */
typedef struct auth auth_t;
struct http_req;

/* The secret comes from secret_file (a trailing newline is not part of
 * it) or, when secret_file is empty, from LUAHUB_AUTH_SECRET; neither
 * means development mode. Returns NULL with a one-line reason in err when
 * the file cannot serve (missing, empty, longer than 4096 bytes). */
auth_t *auth_create(const char *secret_file, char *err, size_t errlen);
void auth_destroy(auth_t *a);
int auth_has_secret(const auth_t *a);
/* The user id an upgrade request proves, into uid (NUL-terminated).
 * Returns NULL, or why the request is refused (for a 4001 close). */
const char *auth_identify(auth_t *a, const struct http_req *r, int64_t now,
                          char *uid, size_t uidlen);

#endif
