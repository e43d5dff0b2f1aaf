/* frame.h -- a WebSocket text frame built once and shared by every
 * recipient.
 *
 * A message bound for N connections is encoded once, framed once (server
 * frames are not masked, so the bytes are the same for everyone) and
 * queued on each connection as a reference. The frame is freed when the
 * last queue lets go of it. Single-threaded: the event loop owns all
 * frames.
 *
 * For recipients that negotiated permessage-deflate the frame keeps a
 * second, compressed variant, made by the first of them to be flushed and
 * shared by the rest: one deflate per message, not per recipient (the
 * server compresses without context, so the bytes suit everyone). */
#ifndef LUAHUB_FRAME_H
#define LUAHUB_FRAME_H

#include <stddef.h>

#include "buf.h"
#include "pmd.h"

/* Bytes a buf must keep free in front of the payload for frame_from_buf:
 * the frame's own bookkeeping (which lives there, so that a frame is one
 * allocation), libwebsockets' LWS_PRE (16 on x86-64) and the longest frame
 * header (10). server.c checks LWS_PRE against it at compile time. */
#define FRAME_HEADROOM 96
#define FRAME_LWS_PRE_MAX 16

typedef struct frame frame_t;

/* A text frame carrying a copy of payload[0..len). Returns a new
 * reference. */
frame_t *frame_create_text(const char *payload, size_t len);
/* A text frame whose payload is b's content; takes ownership of b's
 * storage (b is left empty). b must have been init'ed with at least
 * FRAME_HEADROOM of headroom. Returns a new reference. */
frame_t *frame_from_buf(buf_t *b);

/* The frame as a permessage-deflate recipient gets it: the payload
 * deflated (RSV1 set, the 00 00 ff ff tail cut), made on the first call
 * with d (borrowed for the call) and kept with f; or f itself when that
 * does not pay (under PMD_MIN_PAYLOAD, or no smaller). Borrowed: valid as
 * long as f is. */
frame_t *frame_deflated(frame_t *f, pmd_deflater *d);

/* The delivery class. A frame is durable when built (a room chat: it
 * must reach everyone, in order, or the connection is closed); an
 * ephemeral one (typing, presence) may be dropped from a queue that
 * falls behind, before that queue's owner is closed as a slow consumer
 * (conn_queue_drop_ephemeral). Set once, by whoever builds the frame,
 * before it is queued anywhere. */
void frame_set_ephemeral(frame_t *f);
int frame_ephemeral(const frame_t *f);

frame_t *frame_ref(frame_t *f);
/* Drops a reference; the frame is freed with the last one. */
void frame_unref(frame_t *f);

/* The bytes to put on the wire, header included. At least
 * FRAME_LWS_PRE_MAX writable bytes precede them. */
unsigned char *frame_wire(const frame_t *f);
size_t frame_wire_len(const frame_t *f);
/* The JSON text inside (for logs and tests). */
const char *frame_payload(const frame_t *f, size_t *len);
int frame_refs(const frame_t *f);

#endif
