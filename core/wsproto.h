/* wsproto.h -- RFC 6455 framing, server side: the parser of what clients
 * send, the control frames the server writes, and the handshake's accept
 * key.
 *
 * Pure: no sockets, no allocation. The transport (transport.c) feeds it
 * the bytes it read; the parser unmasks payload in place and hands back
 * pieces of messages, whole control frames, or the close code a violation
 * earns. Every rule the contract names is checked here, as soon as the
 * bytes that break it arrive: a frame header announcing more than the
 * message limit is refused before any of its payload (1009), an unmasked
 * frame, reserved bits or opcodes, a fragmented or oversized control frame,
 * a stray continuation, a one-byte close payload or a close code that may
 * not be sent are 1002, text that is not UTF-8 is 1007. RSV1 marks a
 * compressed message (permessage-deflate, pmd.h) on the first frame of a
 * data message, and only where it was negotiated; the pieces of such a
 * message are handed out compressed, and their text is checked once
 * inflated, by the caller. */
#ifndef LUAHUB_WSPROTO_H
#define LUAHUB_WSPROTO_H

#include <stddef.h>
#include <stdint.h>

enum {
    WS_OP_CONTINUATION = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xa,
};

/* The longest frame header a client can send: 2 + 8 (length) + 4 (mask). */
#define WS_MAX_HEADER 14
/* The longest control frame a client can send, header included. */
#define WS_MAX_CONTROL_FRAME (WS_MAX_HEADER + 125)

typedef struct ws_parser {
    uint64_t remaining; /* payload bytes of the current frame still due */
    uint64_t msg_len;   /* payload bytes of the open message so far */
    uint64_t max_message;
    uint32_t utf8; /* validator state across pieces (0: at a char) */
    uint8_t mask[4];
    uint8_t mask_pos;    /* next mask byte for the current frame */
    uint8_t in_frame;    /* a data frame's header was read, payload due */
    uint8_t frame_fin;   /* the current data frame ends its message */
    uint8_t msg_op;      /* WS_OP_TEXT/BINARY while a message is open */
    uint8_t deflate;     /* permessage-deflate negotiated: RSV1 allowed */
    uint8_t msg_deflate; /* the open message is compressed */
} ws_parser_t;

typedef enum ws_result {
    WS_MORE = 0,    /* every complete thing in the input was consumed */
    WS_DATA = 1,    /* a piece of a text or binary message */
    WS_CONTROL = 2, /* one whole control frame */
    WS_FAIL = 3,    /* a violation: close with .code */
} ws_result;

typedef struct ws_piece {
    unsigned char *data; /* unmasked, inside the caller's buffer */
    size_t len;
    uint8_t opcode;     /* message opcode (TEXT/BINARY), or the control's */
    uint8_t fin;        /* WS_DATA: this piece ends the message */
    uint8_t compressed; /* WS_DATA: the message is deflated (RSV1) */
    uint16_t code;      /* WS_FAIL: the close code (1002, 1007, 1009);
                           WS_CONTROL close: the peer's code, 1005 if none */
    const char *reason; /* WS_FAIL: why, for the close frame and the log */
} ws_piece;

/* max_message: the largest message (all its fragments) a client may send. */
void ws_parser_init(ws_parser_t *p, uint64_t max_message);

/* Lets RSV1 mark compressed messages (permessage-deflate negotiated). */
void ws_parser_allow_deflate(ws_parser_t *p);

/* Parses buf[*pos..len), unmasking in place, and advances *pos past what
 * it consumed. A frame header or a control frame that is not whole in the
 * input is not consumed: WS_MORE returns with *pos before it, and the
 * caller keeps those bytes (at most WS_MAX_CONTROL_FRAME) to put in front
 * of the next read. Data payload is handed out as it arrives, in pieces.
 * After WS_FAIL the parser must not be fed again. */
ws_result ws_parse(ws_parser_t *p, unsigned char *buf, size_t len, size_t *pos,
                   ws_piece *out);

/* Is code one a peer may send in a close frame (RFC 6455 7.4)? */
int ws_close_code_valid(unsigned code);

/* Writes an unmasked, final frame of opcode with payload[0..len) (len at
 * most 125) into out (room for len + 2). Returns the bytes written. */
size_t ws_control_frame(unsigned char *out, int opcode, const void *payload,
                        size_t len);
/* A close frame with code and reason (cut to 123 bytes, on a character
 * boundary) into out (room for 127). Returns the bytes written. */
size_t ws_close_frame(unsigned char *out, unsigned code, const char *reason);

/* Validates UTF-8 incrementally: *state starts at 0; returns 0 while the
 * text so far is valid (a character may be left open in *state), -1 at the
 * first invalid byte. The text ends valid when *state is 0 again. */
int ws_utf8_check(uint32_t *state, const unsigned char *s, size_t n);

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + GUID))
 * into out (room for 29: 28 characters and a NUL). */
void ws_accept_key(const char *key, size_t keylen, char out[29]);

#endif
