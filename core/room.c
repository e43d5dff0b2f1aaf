/* room.c -- see room.h. */
#include "room.h"

#include <stdlib.h>

#include "alloc.h"
#include "dict.h"

struct room {
    char *id;
    dict_t *members; /* user id -> user_t (borrowed) */
    int64_t created_at;
    uint64_t seq, message_count;
};

struct rooms {
    dict_t *rooms;      /* room id -> room_t */
    dict_t *user_rooms; /* user id -> dict(room id -> room_t) */
};

rooms_t *rooms_create(void) {
    rooms_t *rs = xmalloc(sizeof *rs);
    rs->rooms = dict_create();
    rs->user_rooms = dict_create();
    return rs;
}

static void room_free(void *p) {
    room_t *r = p;
    dict_destroy(r->members, NULL);
    free(r->id);
    free(r);
}

static void user_rooms_free(void *p) {
    dict_destroy(p, NULL);
}

void rooms_destroy(rooms_t *rs) {
    if (!rs) return;
    dict_destroy(rs->rooms, room_free);
    dict_destroy(rs->user_rooms, user_rooms_free);
    free(rs);
}

room_t *rooms_get(const rooms_t *rs, const char *id) {
    return dict_get(rs->rooms, id);
}

size_t rooms_count(const rooms_t *rs) {
    return dict_size(rs->rooms);
}

int rooms_join(rooms_t *rs, const char *id, user_t *u, int64_t now_ms) {
    room_t *r = dict_get(rs->rooms, id);
    if (!r) {
        r = xcalloc(1, sizeof *r);
        r->id = xstrdup(id);
        r->members = dict_create();
        r->created_at = now_ms;
        dict_set(rs->rooms, id, r);
    }
    if (!dict_set(r->members, user_id(u), u)) return 0;
    dict_t *mine = dict_get(rs->user_rooms, user_id(u));
    if (!mine) {
        mine = dict_create();
        dict_set(rs->user_rooms, user_id(u), mine);
    }
    dict_set(mine, id, r);
    return 1;
}

int rooms_leave(rooms_t *rs, const char *id, user_t *u) {
    room_t *r = dict_get(rs->rooms, id);
    if (!r || !dict_remove(r->members, user_id(u))) return 0;
    /* The room's own copy: the caller's id may be a key freed below. */
    id = r->id;
    dict_t *mine = dict_get(rs->user_rooms, user_id(u));
    if (mine) {
        dict_remove(mine, id);
        if (!dict_size(mine)) {
            dict_remove(rs->user_rooms, user_id(u));
            dict_destroy(mine, NULL);
        }
    }
    if (!dict_size(r->members)) {
        dict_remove(rs->rooms, id);
        room_free(r);
    }
    return 1;
}

int rooms_is_member(const rooms_t *rs, const char *id, const user_t *u) {
    room_t *r = dict_get(rs->rooms, id);
    return r && room_has_member(r, u);
}

int room_has_member(const room_t *r, const user_t *u) {
    return dict_get(r->members, user_id(u)) != NULL;
}

const char *rooms_next_of_user(const rooms_t *rs, const char *uid,
                               size_t *pos) {
    dict_t *mine = dict_get(rs->user_rooms, uid);
    const char *key;
    if (!mine || !dict_next(mine, pos, &key, NULL)) return NULL;
    return key;
}

size_t rooms_count_of_user(const rooms_t *rs, const char *uid) {
    dict_t *mine = dict_get(rs->user_rooms, uid);
    return mine ? dict_size(mine) : 0;
}

const char *room_id(const room_t *r) {
    return r->id;
}
int64_t room_created_at(const room_t *r) {
    return r->created_at;
}
uint64_t room_message_count(const room_t *r) {
    return r->message_count;
}
uint64_t room_seq(const room_t *r) {
    return r->seq;
}
size_t room_member_count(const room_t *r) {
    return dict_size(r->members);
}

uint64_t room_next_seq(room_t *r) {
    r->message_count++;
    return ++r->seq;
}

user_t *room_next_member(const room_t *r, size_t *pos) {
    void *v;
    return dict_next(r->members, pos, NULL, &v) ? v : NULL;
}
