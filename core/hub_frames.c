/* hub_frames.c -- the frames the core writes itself (room events,
 * presence, errors) and leaving a room (see hub_int.h). */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "hub_int.h"
#include "json.h"

buf_t hub__frame_buf(void) {
    buf_t b;
    buf_init(&b, FRAME_HEADROOM);
    return b;
}

void hub__put_field(buf_t *b, const char *key, const char *val) {
    buf_putc(b, ',');
    json_write_string(b, key, strlen(key));
    buf_putc(b, ':');
    json_write_string(b, val, strlen(val));
}

/* {"type":"user_left","room_id":…,"from":…,"timestamp":…} */
frame_t *hub__room_event(const char *type, const char *room, const char *from) {
    buf_t b = hub__frame_buf();
    buf_puts(&b, "{\"type\":");
    json_write_string(&b, type, strlen(type));
    hub__put_field(&b, "room_id", room);
    hub__put_field(&b, "from", from);
    buf_printf(&b, ",\"timestamp\":%lld}", (long long)clock_now_ms());
    return frame_from_buf(&b);
}

void hub__notify_presence(hub_t *h, const char *uid, presence_status st) {
    if (!presence_subscriber_count(h->presence, uid)) return;
    buf_t b = hub__frame_buf();
    buf_puts(&b, "{\"type\":\"presence\",\"payload\":{\"user_id\":");
    json_write_string(&b, uid, strlen(uid));
    hub__put_field(&b, "status", presence_status_name(st));
    buf_printf(&b, "},\"timestamp\":%lld}", (long long)clock_now_ms());
    frame_t *f = frame_from_buf(&b);
    /* A status is worth its latest value only: what falls behind may lose
     * it first (the next change, or presence_subscribe, tells again). */
    frame_set_ephemeral(f);
    size_t pos = 0;
    conn_t *c;
    while ((c = presence_next_subscriber(h->presence, uid, &pos)))
        fanout_conn(&h->fo, c, f);
    frame_unref(f);
    h->t->wake(h->t->ud);
}

void hub_send_error(hub_t *h, conn_t *c, const char *id_json, const char *code,
                    const char *message) {
    buf_t b = hub__frame_buf();
    buf_puts(&b, "{\"type\":\"error\"");
    if (id_json) {
        buf_puts(&b, ",\"id\":");
        buf_puts(&b, id_json);
    }
    hub__put_field(&b, "code", code);
    hub__put_field(&b, "message", message);
    buf_putc(&b, '}');
    frame_t *f = frame_from_buf(&b);
    fanout_conn(&h->fo, c, f);
    frame_unref(f);
    h->t->wake(h->t->ud);
}

/* A room left empty drops its stored state: what the store holds for a
 * room is the state of its live session (a topic, counters), made by its
 * members; only the room's seq and history outlive them. */
void hub__leave_room(hub_t *h, const char *room, user_t *u) {
    if (!rooms_leave(h->rooms, room, u)) return;
    room_t *r = rooms_get(h->rooms, room);
    if (!r || !room_member_count(r)) store_drop(h->store, STORE_ROOM, room);
}

void hub__user_gone(hub_t *h, user_t *u) {
    /* Copies: leaving changes the index, and u is freed below. */
    char *uid = xstrdup(user_id(u));
    size_t n;
    char **ids = hub__rooms_of(h, uid, &n);
    for (size_t i = 0; i < n; i++) {
        hub__leave_room(h, ids[i], u);
        room_t *r = rooms_get(h->rooms, ids[i]);
        /* Told only in a room that had at most --max-listed-members, the
         * user included, as leave_room does: a big room's members are
         * not told of every coming and going. */
        if (r && room_member_count(r) &&
            room_member_count(r) < (size_t)h->cfg->max_listed_members) {
            frame_t *f = hub__room_event("user_left", ids[i], uid);
            fanout_room(&h->fo, r, f, NULL, NULL);
            frame_unref(f);
        }
    }
    hub__free_ids(ids, n);
    /* Offline before the user is freed: the presence table holds the
     * user's own id. */
    int offline = presence_set(h->presence, uid, PRESENCE_OFFLINE);
    conns_drop_user(h->conns, u);
    if (offline) hub__notify_presence(h, uid, PRESENCE_OFFLINE);
    store_drop(h->store, STORE_USER, uid);
    free(uid);
    h->t->wake(h->t->ud);
}

char **hub__rooms_of(hub_t *h, const char *uid, size_t *n) {
    size_t cap = rooms_count_of_user(h->rooms, uid), pos = 0, i = 0;
    char **ids = xmalloc((cap ? cap : 1) * sizeof *ids);
    const char *room;
    while (i < cap && (room = rooms_next_of_user(h->rooms, uid, &pos)))
        ids[i++] = xstrdup(room);
    *n = i;
    return ids;
}

void hub__free_ids(char **ids, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}
