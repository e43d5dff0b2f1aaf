/* natives.c -- see natives.h. */
#include "natives.h"

#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "clock.h"
#include "json.h"
#include "room.h"

/* {"type":"pong","id":…,"timestamp":…}, as scripts/ping.lua answers. */
void native_ping(hub_t *h, const hub_call *call) {
    buf_t b;
    buf_init(&b, FRAME_HEADROOM);
    buf_puts(&b, "{\"type\":\"pong\"");
    if (call->id_json) {
        buf_puts(&b, ",\"id\":");
        buf_puts(&b, call->id_json);
    }
    buf_puts(&b, ",\"timestamp\":");
    json_write_number(&b, (double)clock_now_ms());
    buf_putc(&b, '}');
    frame_t *f = frame_from_buf(&b);
    const script_host *host = hub_host(h);
    script_target t = {SCRIPT_TO_CONN, &call->conn_id, 1, NULL, NULL};
    host->send(host->ud, &t, f, NULL);
    frame_unref(f);
}

/* ---- chat ---------------------------------------------------------------
 *
 * What scripts/chat.lua does for a message to a room, the C way: one pass
 * over the frame picks up room_id and re-emits payload as JSON (the Lua
 * path decodes the whole frame into tables and encodes the payload back
 * out), then the same checks, seq, frame and ack. */

typedef struct chat_scan {
    int depth;      /* object/array nesting, 1 = the frame */
    int in_payload; /* depth at which payload began, 0: outside */
    int need_comma[JSON_MAX_DEPTH + 2];
    int after_key;    /* the next value follows a key */
    int want;         /* 1: next value is room_id, 2: payload */
    int payload_kind; /* 0 absent, 1 object, 2 something else */
    char room[129];
    size_t room_len;
    int room_bad;
    buf_t *out; /* the payload, re-emitted */
} chat_scan;

static void emit_sep(chat_scan *sc) {
    if (sc->after_key) {
        sc->after_key = 0;
        return;
    }
    if (sc->need_comma[sc->depth]) buf_putc(sc->out, ',');
    sc->need_comma[sc->depth] = 1;
}

static int top_value(chat_scan *sc, int kind) {
    if (sc->depth == 1 && sc->want == 2) sc->payload_kind = kind;
    if (sc->depth == 1) sc->want = 0;
    return 0;
}

static int s_open(void *ud, char c) {
    chat_scan *sc = ud;
    if (sc->in_payload) {
        emit_sep(sc);
        buf_putc(sc->out, c);
    } else if (sc->depth == 1 && sc->want == 2) {
        if (c == '{') {
            sc->in_payload = sc->depth + 1;
            buf_putc(sc->out, '{');
        }
        top_value(sc, c == '{' ? 1 : 2);
    } else if (sc->depth == 1) {
        top_value(sc, 0);
    }
    sc->depth++;
    sc->need_comma[sc->depth] = 0;
    return 0;
}

static int s_close(void *ud, char c) {
    chat_scan *sc = ud;
    if (sc->in_payload) {
        buf_putc(sc->out, c);
        if (sc->depth == sc->in_payload) sc->in_payload = 0;
    }
    sc->depth--;
    return 0;
}

static int s_bo(void *ud) {
    return s_open(ud, '{');
}
static int s_ba(void *ud) {
    return s_open(ud, '[');
}
static int s_eo(void *ud) {
    return s_close(ud, '}');
}
static int s_ea(void *ud) {
    return s_close(ud, ']');
}

static int s_key(void *ud, const char *s, size_t n) {
    chat_scan *sc = ud;
    if (sc->in_payload) {
        emit_sep(sc);
        json_write_string(sc->out, s, n);
        buf_putc(sc->out, ':');
        sc->after_key = 1;
    } else if (sc->depth == 1) {
        sc->want = n == 7 && !memcmp(s, "room_id", 7)   ? 1
                   : n == 7 && !memcmp(s, "payload", 7) ? 2
                                                        : 0;
    }
    return 0;
}

static int s_string(void *ud, const char *s, size_t n, const char *raw,
                    size_t rawlen) {
    chat_scan *sc = ud;
    if (sc->in_payload) {
        emit_sep(sc);
        json_write_string(sc->out, s, n);
    } else if (sc->depth == 1 && sc->want == 1) {
        sc->room_bad = n == 0 || n >= sizeof sc->room || memchr(s, 0, n);
        if (!sc->room_bad) memcpy(sc->room, s, n + 1);
        sc->room_len = n;
        sc->want = 0;
    } else {
        top_value(sc, 2);
    }
    return 0;
}

static int s_number(void *ud, double v, const char *raw, size_t rawlen) {
    chat_scan *sc = ud;
    if (sc->in_payload) {
        emit_sep(sc);
        json_write_number(sc->out, v);
    } else {
        top_value(sc, 2);
    }
    return 0;
}

static int s_literal(chat_scan *sc, const char *lit) {
    if (sc->in_payload) {
        emit_sep(sc);
        buf_puts(sc->out, lit);
    } else {
        top_value(sc, 2);
    }
    return 0;
}

static int s_bool(void *ud, int v) {
    return s_literal(ud, v ? "true" : "false");
}
static int s_null(void *ud) {
    return s_literal(ud, "null");
}

static const json_sink chat_sink = {s_bo,     s_eo,     s_ba,   s_ea,   s_key,
                                    s_string, s_number, s_bool, s_null, NULL};

/* The chat message, but for its seq and room id (a script_stamp_fn's
 * context). */
typedef struct chat_frame {
    buf_t b;
    const char *room;
    size_t room_len;
} chat_frame;

static frame_t *chat_stamp(void *ctx, uint64_t seq) {
    chat_frame *cf = ctx;
    buf_puts(&cf->b, ",\"seq\":");
    json_write_number(&cf->b, (double)seq);
    buf_puts(&cf->b, ",\"room_id\":");
    json_write_string(&cf->b, cf->room, cf->room_len);
    buf_putc(&cf->b, '}');
    return frame_from_buf(&cf->b);
}

void native_chat(hub_t *h, const hub_call *call) {
    const script_host *host = hub_host(h);
    buf_t payload;
    buf_init(&payload, 0);
    chat_scan sc;
    memset(&sc, 0, sizeof sc);
    sc.out = &payload;
    json_parse(call->json, call->len, JSON_MAX_DEPTH, &chat_sink, &sc, NULL);
    if (sc.payload_kind != 1 || !sc.room_len || sc.room_bad) {
        const char *err = sc.payload_kind != 1 ? "payload must be an object"
                          : sc.room_len > ROOM_ID_MAX
                              ? "room_id must be at most 128 bytes"
                              : "room_id is required";
        hub_send_error(h, call->conn, call->id_json, "bad_message", err);
        buf_close(&payload);
        return;
    }
    /* {"type":"chat","from":…,"payload":…,"timestamp":…,"seq":…,
     *  "room_id":…} to every member, if the sender is one. */
    chat_frame cf = {.room = sc.room, .room_len = sc.room_len};
    buf_init(&cf.b, FRAME_HEADROOM);
    buf_puts(&cf.b, "{\"type\":\"chat\",\"from\":");
    json_write_string(&cf.b, call->user_id, strlen(call->user_id));
    buf_puts(&cf.b, ",\"payload\":");
    buf_append(&cf.b, buf_content(&payload), payload.len);
    buf_puts(&cf.b, ",\"timestamp\":");
    json_write_number(&cf.b, (double)clock_now_ms());
    buf_close(&payload);
    uint64_t seq = 0;
    if (host->publish(host->ud, sc.room, call->user_id, chat_stamp, &cf,
                      buf_content(&cf.b), cf.b.len, &seq, NULL) < 0) {
        char msg[192];
        snprintf(msg, sizeof msg, "you are not in room '%s'", sc.room);
        buf_close(&cf.b);
        hub_send_error(h, call->conn, call->id_json, "not_in_room", msg);
        return;
    }
    if (!call->id_json) return;
    buf_t b;
    buf_init(&b, FRAME_HEADROOM);
    buf_puts(&b, "{\"type\":\"ack\",\"id\":");
    buf_puts(&b, call->id_json);
    buf_puts(&b, ",\"seq\":");
    json_write_number(&b, (double)seq);
    buf_putc(&b, '}');
    frame_t *f = frame_from_buf(&b);
    script_target t = {SCRIPT_TO_CONN, &call->conn_id, 1, NULL, NULL};
    host->send(host->ud, &t, f, NULL);
    frame_unref(f);
}

void natives_install(hub_t *h) {
    hub_set_native(h, "ping", native_ping);
    hub_set_native(h, "chat", native_chat);
}
