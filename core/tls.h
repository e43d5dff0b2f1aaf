/* tls.h -- TLS on the transport's own sockets (OpenSSL, non-blocking).
 *
 * With --tls-cert and --tls-key the port speaks TLS only. A tls_t holds
 * the server's context: the certificate chain and key, TLS 1.2 at least,
 * forward-secret AEAD ciphers only. tls_reload builds a new context from
 * the same files aside and takes it only when it loads: a renewed
 * certificate is served to the next client, a broken one leaves the old
 * in place (connections already open keep the context they began with).
 *
 * A tls_conn is one client's session on a non-blocking socket. Every call
 * returns at once; TLS_WANT_READ or TLS_WANT_WRITE says which socket
 * event to wait for before calling again. Writing takes at most one
 * record (TLS_RECORD bytes) a call: when the socket is full, the bytes
 * are kept by the tls_conn (OpenSSL needs the same bytes again) and
 * tls_flush writes them later, so a caller never has to hold its data
 * still. */
#ifndef LUAHUB_TLS_H
#define LUAHUB_TLS_H

#include <stddef.h>

/* The most plaintext one record carries, and tls_write takes at once. */
#define TLS_RECORD 16384

enum {
    TLS_WANT_READ = -1,
    TLS_WANT_WRITE = -2,
    TLS_ERR = -3, /* the connection broke or the peer failed TLS */
};

typedef struct tls tls_t;
typedef struct tls_conn tls_conn;

/* Loads cert_file (PEM chain) and key_file (PEM key). Returns NULL with a
 * one-line reason in err when either does not load or they do not
 * match. */
tls_t *tls_create(const char *cert_file, const char *key_file, char *err,
                  size_t errlen);
/* Loads the same files again into a new context; on success the next
 * connections get it (returns 0), on failure the old one stays (returns
 * -1, the reason in err). */
int tls_reload(tls_t *t, char *err, size_t errlen);
void tls_destroy(tls_t *t);

/* A server session on fd (borrowed: the caller closes it, after
 * tls_conn_free). NULL when out of memory. */
tls_conn *tls_conn_new(tls_t *t, int fd);
/* Advances the handshake. Returns 0 once it is done, or TLS_WANT_READ,
 * TLS_WANT_WRITE, TLS_ERR. */
int tls_handshake(tls_conn *c);
/* Whether the handshake is done. */
int tls_ready(const tls_conn *c);
/* Returns bytes read (> 0), 0 when the peer closed (close_notify or
 * EOF), or TLS_WANT_READ, TLS_WANT_WRITE, TLS_ERR. */
long tls_read(tls_conn *c, void *buf, size_t len);
/* Whether bytes already taken from the socket wait to be read: no socket
 * event will announce them. */
int tls_pending(const tls_conn *c);
/* Takes up to TLS_RECORD bytes of buf. Returns the bytes taken (> 0):
 * written, or kept for tls_flush when the socket is full; TLS_WANT_WRITE
 * (nothing taken) while kept bytes wait; TLS_ERR. */
long tls_write(tls_conn *c, const void *buf, size_t len);
/* Writes the kept bytes. Returns 0 when none are left, or TLS_WANT_READ,
 * TLS_WANT_WRITE, TLS_ERR. */
int tls_flush(tls_conn *c);
/* Whether bytes are kept (tls_flush has work). */
int tls_blocked(const tls_conn *c);
/* Sends close_notify once, best effort (a full socket drops it). */
void tls_shutdown(tls_conn *c);
/* Sends close_notify if the session is sound and not yet closed, and
 * frees the session. NULL is fine. */
void tls_conn_free(tls_conn *c);

/* A TLS connection starts with a handshake record (0x16): any other
 * first byte is a client speaking something else to a TLS port. */
#define TLS_FIRST_BYTE 0x16

#endif
