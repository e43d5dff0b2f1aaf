/* room.c -- see room.h. */
#include "room.h"

#include <stdio.h>
#include <stdlib.h>

#include "alloc.h"
#include "clock.h"
#include "dict.h"
#include "skiplist.h"

/* A list of rooms threaded through the rooms themselves (idle: the empty
 * rooms kept, in the order they emptied; kept: the rooms with history). */
typedef struct room_link {
    room_t *prev, *next;
} room_link;

typedef struct room_list {
    room_t *head, *tail;
} room_list;

struct room {
    char *id;
    /* The members in the order they joined (a leave moves the last into
     * its place), which a room send walks: a dense array rather than the
     * table's sparse slots, and an order that follows the connections'
     * own (docs/benchmarks.md, "Fan-out in join order"). The table maps
     * each member's id (the user's own string, not copied) to its index
     * + 1, for O(1) membership checks and leaves. */
    user_t **mem;
    size_t nmem, capmem;
    dict_t *members;
    /* The members' ids in order (each the user's own id), for paging.
     * Kept with every join and leave (O(log n)) rather than made by the
     * first page: ordering 100,000 members at once takes a tenth of a
     * second, the script time limit, and a page must cost what any other
     * request does. */
    skiplist_t *order;
    int64_t created_at;
    uint64_t seq, message_count;
    char epoch[ROOM_EPOCH_MAX + 1];
    history_t history;
    int64_t empty_since; /* while on the idle list */
    int idle, kept;      /* on the idle list, on the kept list */
    room_link idle_link, kept_link;
};

struct rooms {
    dict_t *rooms;      /* room id -> room_t */
    dict_t *user_rooms; /* user id -> dict(room id -> room_t) */
    size_t history_size;
    int64_t ttl_ms;     /* 0: an empty room is deleted at once */
    int64_t started_ms; /* the epochs' first part */
    uint64_t epochs;    /* epochs given so far */
    room_list idle, kept;
};

rooms_t *rooms_create(void) {
    rooms_t *rs = xcalloc(1, sizeof *rs);
    rs->rooms = dict_create();
    rs->user_rooms = dict_create();
    return rs;
}

void rooms_set_history(rooms_t *rs, size_t size, int64_t ttl_ms,
                       int64_t started_ms) {
    rs->history_size = size;
    rs->ttl_ms = ttl_ms;
    rs->started_ms = started_ms;
}

/* The link of r in list l. */
static room_link *link_of(const rooms_t *rs, const room_list *l, room_t *r) {
    return l == &rs->idle ? &r->idle_link : &r->kept_link;
}

static void list_push(rooms_t *rs, room_list *l, room_t *r) {
    room_link *k = link_of(rs, l, r);
    *k = (room_link){l->tail, NULL};
    if (l->tail)
        link_of(rs, l, l->tail)->next = r;
    else
        l->head = r;
    l->tail = r;
}

static void list_remove(rooms_t *rs, room_list *l, room_t *r) {
    room_link *k = link_of(rs, l, r);
    if (k->prev)
        link_of(rs, l, k->prev)->next = k->next;
    else
        l->head = k->next;
    if (k->next)
        link_of(rs, l, k->next)->prev = k->prev;
    else
        l->tail = k->prev;
    *k = (room_link){NULL, NULL};
}

static void room_free(void *p) {
    room_t *r = p;
    history_close(&r->history);
    skiplist_destroy(r->order);
    dict_destroy(r->members, NULL);
    free(r->mem);
    free(r->id);
    free(r);
}

/* Deletes r (no members): room pointers to it die. */
static void room_delete(rooms_t *rs, room_t *r) {
    if (r->idle) list_remove(rs, &rs->idle, r);
    if (r->kept) list_remove(rs, &rs->kept, r);
    dict_remove(rs->rooms, r->id);
    room_free(r);
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
    /* An empty room past its time that the sweep has not reached yet is
     * gone all the same: the room made again has a new epoch. */
    if (r && r->idle && now_ms - r->empty_since >= rs->ttl_ms) {
        room_delete(rs, r);
        r = NULL;
    }
    if (!r) {
        r = xcalloc(1, sizeof *r);
        r->id = xstrdup(id);
        r->members = dict_create_borrowed();
        r->order = skiplist_create();
        r->created_at = now_ms;
        history_init(&r->history);
        snprintf(r->epoch, sizeof r->epoch, "%llx-%llx",
                 (unsigned long long)rs->started_ms,
                 (unsigned long long)++rs->epochs);
        dict_set(rs->rooms, id, r);
    }
    if (r->idle) {
        list_remove(rs, &rs->idle, r);
        r->idle = 0;
    }
    if (dict_get(r->members, user_id(u))) return 0;
    if (r->nmem == r->capmem) {
        r->capmem = r->capmem ? r->capmem * 2 : 4;
        r->mem = xrealloc(r->mem, r->capmem * sizeof *r->mem);
    }
    r->mem[r->nmem] = u;
    dict_set(r->members, user_id(u), (void *)(uintptr_t)++r->nmem);
    skiplist_add(r->order, user_id(u));
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
    uintptr_t at = r ? (uintptr_t)dict_remove(r->members, user_id(u)) : 0;
    if (!at) return 0;
    /* The last member takes the place left. */
    user_t *last = r->mem[--r->nmem];
    if (at - 1 != r->nmem) {
        r->mem[at - 1] = last;
        dict_set(r->members, user_id(last), (void *)at);
    }
    skiplist_remove(r->order, user_id(u));
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
    if (!r->nmem) {
        if (rs->ttl_ms > 0) {
            /* Kept, empty, for --history-ttl: its seq, epoch and history
             * outlive its members. */
            r->empty_since = clock_now_ms();
            r->idle = 1;
            list_push(rs, &rs->idle, r);
        } else {
            room_delete(rs, r);
        }
    }
    return 1;
}

/* Drops r's frames kept --history-ttl ago or earlier; off the kept list
 * when none is left. */
static void expire_history(rooms_t *rs, room_t *r, int64_t now_ms) {
    history_expire(&r->history, now_ms - rs->ttl_ms);
    if (r->kept && !history_len(&r->history)) {
        list_remove(rs, &rs->kept, r);
        r->kept = 0;
    }
}

void room_keep(rooms_t *rs, room_t *r, frame_t *f, uint64_t seq,
               int64_t now_ms) {
    if (!rs->history_size) return;
    /* The oldest frame only, in the common case: one comparison. */
    expire_history(rs, r, now_ms);
    history_add(&r->history, f, seq, now_ms, rs->history_size);
    if (!r->kept) {
        r->kept = 1;
        list_push(rs, &rs->kept, r);
    }
}

const history_t *room_history(rooms_t *rs, room_t *r, int64_t now_ms) {
    expire_history(rs, r, now_ms);
    return &r->history;
}

const char *room_epoch(const room_t *r) {
    return r->epoch;
}

size_t rooms_shrink(rooms_t *rs) {
    size_t n = dict_shrink(rs->rooms) + dict_shrink(rs->user_rooms);
    size_t pos = 0;
    void *v;
    while (dict_next(rs->rooms, &pos, NULL, &v)) {
        room_t *r = v;
        n += dict_shrink(r->members);
        if (r->capmem > 64 && r->nmem <= r->capmem / 8) {
            size_t cap = r->nmem * 2 > 4 ? r->nmem * 2 : 4;
            n += (r->capmem - cap) * sizeof *r->mem;
            r->mem = xrealloc(r->mem, cap * sizeof *r->mem);
            r->capmem = cap;
        }
    }
    return n;
}

size_t rooms_expire(rooms_t *rs, int64_t now_ms) {
    size_t gone = 0;
    room_t *r, *next;
    for (r = rs->kept.head; r; r = next) {
        next = r->kept_link.next;
        expire_history(rs, r, now_ms);
    }
    /* The idle list is in the order the rooms emptied: the first still
     * in its time ends the walk. */
    for (r = rs->idle.head; r && now_ms - r->empty_since >= rs->ttl_ms;
         r = next) {
        next = r->idle_link.next;
        room_delete(rs, r);
        gone++;
    }
    return gone;
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
    return r->nmem;
}

uint64_t room_next_seq(room_t *r) {
    r->message_count++;
    return ++r->seq;
}

user_t *room_next_member(const room_t *r, size_t *pos) {
    return *pos < r->nmem ? r->mem[(*pos)++] : NULL;
}

size_t room_members_page(room_t *r, const char *after, size_t limit,
                         room_each_fn each, void *ctx) {
    return skiplist_range(r->order, after, limit, each, ctx);
}
