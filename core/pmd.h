/* pmd.h -- permessage-deflate (RFC 7692): the offer answered, messages
 * inflated within a bound, payloads deflated once.
 *
 * Pure: no sockets; zlib only. The front door (gate.c) asks pmd_negotiate
 * whether a client's Sec-WebSocket-Extensions offer is one we accept and
 * what to answer. We always take server_no_context_takeover: every
 * message we send is compressed on its own, so one compressed payload is
 * valid for every recipient and a fan-out deflates once, not once per
 * connection (frame.h keeps the compressed variant beside the plain one).
 * The client may keep its context when it compresses to us; its inflater
 * then keeps its window between messages.
 *
 * The inflater never holds a message: it hands out at most the caller's
 * buffer at a time and counts what it produced against a limit, so a small
 * frame that inflates to gigabytes stops at the limit with the server
 * holding one buffer (a "deflate bomb"). */
#ifndef LUAHUB_PMD_H
#define LUAHUB_PMD_H

#include <stddef.h>
#include <stdint.h>

/* What a connection negotiated. */
enum {
    PMD_ON = 1,                /* permessage-deflate is in use */
    PMD_CLIENT_NO_CONTEXT = 2, /* the client resets its context per message */
};

/* Payloads shorter than this go out plain: a chat line this short gains
 * too little to pay for inflating it. */
#define PMD_MIN_PAYLOAD 256
/* The longest response value pmd_negotiate writes, NUL included. */
#define PMD_RESPONSE_MAX 96

/* Reads one Sec-WebSocket-Extensions header value (a comma-separated list
 * of offers, RFC 7692 section 5) and takes the first permessage-deflate
 * offer we can honour. Returns the PMD_ flags negotiated, with the
 * response header's value in resp (cap bytes, at least PMD_RESPONSE_MAX),
 * or 0 when there is none to take (no such offer, or every one malformed
 * or asking for what we do not do, as a server window under 15 bits).
 * A malformed offer is declined, never an error: the connection goes on
 * without compression. */
int pmd_negotiate(const char *offer, size_t len, char *resp, size_t cap);

/* ---- inflating ---- */

typedef struct pmd_inflater pmd_inflater;

enum {
    PMD_ERR_TOO_BIG = -1, /* the message inflates past the limit */
    PMD_ERR_DATA = -2,    /* not a valid deflate stream */
};

/* A raw inflater with a 32 KiB window (any client window fits in it).
 * About 40 KiB: create it when a compressed message arrives. */
pmd_inflater *pmd_inflater_create(void);
void pmd_inflater_destroy(pmd_inflater *z);
/* Starts a message that may inflate to at most limit bytes. no_context:
 * the client compressed it without the previous messages' window. */
void pmd_inflate_begin(pmd_inflater *z, uint64_t limit, int no_context);
/* The next piece of the message's compressed payload, in[0..n) (borrowed
 * until pmd_inflate_next returns 0 or an error); fin: it ends the
 * message. */
void pmd_inflate_input(pmd_inflater *z, const unsigned char *in, size_t n,
                       int fin);
/* Inflates what it can into out[0..cap). Returns the bytes written (> 0),
 * 0 once the input is spent (after a fin piece: the message is whole), or
 * PMD_ERR_TOO_BIG as soon as the message passes the limit, or
 * PMD_ERR_DATA. After an error the message is abandoned: begin again. */
long pmd_inflate_next(pmd_inflater *z, unsigned char *out, size_t cap);

/* ---- deflating ---- */

typedef struct pmd_deflater pmd_deflater;

/* One deflater serves every message (each compressed on its own). */
pmd_deflater *pmd_deflater_create(void);
void pmd_deflater_destroy(pmd_deflater *d);
/* Compresses in[0..n) as one message without context, into out (room
 * for cap bytes), without the 00 00 ff ff tail RFC 7692 strips. Returns
 * the bytes written, or 0 when the result would not be shorter than n
 * (or fit in cap): then the message is better sent plain. */
size_t pmd_deflate(pmd_deflater *d, const unsigned char *in, size_t n,
                   unsigned char *out, size_t cap);

#endif
