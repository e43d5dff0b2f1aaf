/* tls.c -- see tls.h. */
#include "tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

/* TLS 1.2's suites: ECDHE key exchange (forward secrecy) with AES-GCM or
 * ChaCha20-Poly1305, nothing else. TLS 1.3's own suites are all sound and
 * left at OpenSSL's defaults. */
#define TLS12_CIPHERS                                                          \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"               \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"               \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

struct tls {
    SSL_CTX *ctx;
    char *cert_file, *key_file;
};

struct tls_conn {
    SSL *ssl;
    unsigned char *kept; /* bytes SSL_write must be given again */
    size_t kept_len;
    int ready;  /* the handshake is done */
    int broken; /* a fatal error: no close_notify */
    int shut;   /* close_notify sent */
};

/* OpenSSL's reason for the last failure, or errno's. */
static void last_error(char *out, size_t cap) {
    unsigned long e = ERR_peek_last_error();
    if (e) {
        const char *r = ERR_reason_error_string(e);
        snprintf(out, cap, "%s", r ? r : "unknown error");
    } else {
        snprintf(out, cap, "%s", strerror(errno ? errno : EINVAL));
    }
    ERR_clear_error();
}

static SSL_CTX *load(const char *cert_file, const char *key_file, char *err,
                     size_t errlen) {
    char why[256] = "";
    const char *files[2] = {cert_file, key_file};
    const char *names[2] = {"--tls-cert", "--tls-key"};
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(files[i], "r");
        if (!f) {
            snprintf(err, errlen, "%s %s: %s", names[i], files[i],
                     strerror(errno));
            return NULL;
        }
        fclose(f);
    }
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        last_error(why, sizeof why);
        snprintf(err, errlen, "TLS: %s", why);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
    /* A client that closes without close_notify has just left. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    /* No session cache: clients reconnect rarely, and a reload would
     * have to flush it. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1) {
        last_error(why, sizeof why);
        snprintf(err, errlen, "TLS ciphers: %s", why);
    } else if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        last_error(why, sizeof why);
        snprintf(err, errlen, "--tls-cert %s: not a PEM certificate (%s)",
                 cert_file, why);
    } else {
        /* Loading the key checks it against the certificate too. */
        int ok =
            SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) == 1 &&
            SSL_CTX_check_private_key(ctx) == 1;
        if (ok) return ctx;
        int mismatch =
            ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
        last_error(why, sizeof why);
        if (mismatch)
            snprintf(err, errlen,
                     "--tls-key %s does not match the certificate in %s",
                     key_file, cert_file);
        else
            snprintf(err, errlen, "--tls-key %s: not a PEM private key (%s)",
                     key_file, why);
    }
    SSL_CTX_free(ctx);
    return NULL;
}

tls_t *tls_create(const char *cert_file, const char *key_file, char *err,
                  size_t errlen) {
    SSL_CTX *ctx = load(cert_file, key_file, err, errlen);
    if (!ctx) return NULL;
    tls_t *t = xcalloc(1, sizeof *t);
    t->ctx = ctx;
    t->cert_file = xstrdup(cert_file);
    t->key_file = xstrdup(key_file);
    return t;
}

int tls_reload(tls_t *t, char *err, size_t errlen) {
    SSL_CTX *ctx = load(t->cert_file, t->key_file, err, errlen);
    if (!ctx) return -1;
    /* Sessions hold their own reference: the old context lives on in
     * them until the last closes. */
    SSL_CTX_free(t->ctx);
    t->ctx = ctx;
    return 0;
}

void tls_destroy(tls_t *t) {
    if (!t) return;
    SSL_CTX_free(t->ctx);
    free(t->cert_file);
    free(t->key_file);
    free(t);
}

tls_conn *tls_conn_new(tls_t *t, int fd) {
    SSL *ssl = SSL_new(t->ctx);
    if (!ssl) {
        ERR_clear_error();
        return NULL;
    }
    if (SSL_set_fd(ssl, fd) != 1) {
        ERR_clear_error();
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_accept_state(ssl);
    tls_conn *c = xcalloc(1, sizeof *c);
    c->ssl = ssl;
    return c;
}

/* Maps the result of an SSL call (rc <= 0) to TLS_WANT_* or TLS_ERR (0
 * for a clean close from the peer). */
static int outcome(tls_conn *c, int rc) {
    int e = SSL_get_error(c->ssl, rc);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        return TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    default:
        ERR_clear_error();
        c->broken = 1;
        return TLS_ERR;
    }
}

int tls_handshake(tls_conn *c) {
    if (c->ready) return 0;
    ERR_clear_error();
    int rc = SSL_do_handshake(c->ssl);
    if (rc == 1) {
        c->ready = 1;
        return 0;
    }
    rc = outcome(c, rc);
    return rc == 0 ? TLS_ERR : rc;
}

int tls_ready(const tls_conn *c) {
    return c->ready;
}

long tls_read(tls_conn *c, void *buf, size_t len) {
    ERR_clear_error();
    int rc = SSL_read(c->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
    if (rc > 0) return rc;
    return outcome(c, rc);
}

int tls_pending(const tls_conn *c) {
    return SSL_has_pending(c->ssl);
}

int tls_blocked(const tls_conn *c) {
    return c->kept_len > 0;
}

int tls_flush(tls_conn *c) {
    if (!c->kept_len) return 0;
    ERR_clear_error();
    int rc = SSL_write(c->ssl, c->kept, (int)c->kept_len);
    if (rc <= 0) {
        rc = outcome(c, rc);
        return rc == 0 ? TLS_ERR : rc;
    }
    if ((size_t)rc < c->kept_len) {
        /* Partial writes: a record at a time. */
        memmove(c->kept, c->kept + rc, c->kept_len - (size_t)rc);
        c->kept_len -= (size_t)rc;
        return TLS_WANT_WRITE;
    }
    free(c->kept);
    c->kept = NULL;
    c->kept_len = 0;
    return 0;
}

long tls_write(tls_conn *c, const void *buf, size_t len) {
    if (c->kept_len) return TLS_WANT_WRITE;
    if (len > TLS_RECORD) len = TLS_RECORD;
    if (!len) return 0;
    ERR_clear_error();
    int rc = SSL_write(c->ssl, buf, (int)len);
    if (rc > 0 && (size_t)rc == len) return rc;
    if (rc <= 0) {
        rc = outcome(c, rc);
        if (rc == TLS_ERR || rc == 0) return TLS_ERR;
        rc = 0; /* nothing written: all of it is kept */
    }
    /* The socket is full: OpenSSL has begun the record and wants the
     * same bytes again; keep them, so the caller's buffer is free. */
    c->kept_len = len - (size_t)rc;
    c->kept = xmalloc(c->kept_len);
    memcpy(c->kept, (const unsigned char *)buf + rc, c->kept_len);
    return (long)len;
}

void tls_shutdown(tls_conn *c) {
    if (!c || !c->ready || c->broken || c->shut) return;
    c->shut = 1;
    ERR_clear_error();
    (void)SSL_shutdown(c->ssl);
    ERR_clear_error();
}

void tls_conn_free(tls_conn *c) {
    if (!c) return;
    if (!c->kept_len) tls_shutdown(c);
    SSL_free(c->ssl);
    free(c->kept);
    free(c);
}
