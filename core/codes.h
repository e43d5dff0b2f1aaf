/* codes.h -- the protocol's codes in one place: the WebSocket close codes
 * the server sends or reports (RFC 6455's and luahub's own 4xxx), and the
 * error codes of `error` frames (../shared/PROTOCOL.md). */
#ifndef LUAHUB_CODES_H
#define LUAHUB_CODES_H

enum close_code {
    CLOSE_NORMAL = 1000,
    CLOSE_GOING_AWAY = 1001,   /* the server is shutting down */
    CLOSE_PROTOCOL = 1002,     /* an RFC 6455 violation */
    CLOSE_NO_STATUS = 1005,    /* reported: the close frame had no code */
    CLOSE_ABNORMAL = 1006,     /* reported: gone without a close frame */
    CLOSE_BAD_DATA = 1007,     /* text that is not UTF-8 */
    CLOSE_TOO_BIG = 1009,      /* over --max-message */
    CLOSE_UNAUTHORIZED = 4001, /* no valid identity */
    CLOSE_REFUSED = 4003,      /* refused by the on_connect hook */
    CLOSE_SLOW = 4008,         /* over --send-queue: a slow consumer */
    CLOSE_RATE_LIMITED = 4029, /* kept sending while rate limited */
};

#define ERR_BAD_JSON "bad_json"
#define ERR_BAD_MESSAGE "bad_message"
#define ERR_UNKNOWN_TYPE "unknown_type"
#define ERR_NOT_IN_ROOM "not_in_room"
#define ERR_NOT_FOUND "not_found"
#define ERR_FORBIDDEN "forbidden"
#define ERR_RATE_LIMITED "rate_limited"
#define ERR_HANDLER_ERROR "handler_error"
/* The cluster (Redis) cannot be reached: retry later, nothing was done. */
#define ERR_UNAVAILABLE "unavailable"

#endif
