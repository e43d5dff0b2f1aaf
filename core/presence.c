/* presence.c -- see presence.h. */
#include "presence.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "dict.h"

/* A growable array of pointers; removal swaps in the last element. */
typedef struct vec {
    void **items;
    size_t len, cap;
} vec_t;

static void vec_push(vec_t *v, void *x) {
    if (v->len == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 4;
        v->items = xrealloc(v->items, v->cap * sizeof *v->items);
    }
    v->items[v->len++] = x;
}

static int vec_remove(vec_t *v, const void *x) {
    for (size_t i = 0; i < v->len; i++) {
        if (v->items[i] != x) continue;
        v->items[i] = v->items[--v->len];
        return 1;
    }
    return 0;
}

static void vec_free(void *p) {
    vec_t *v = p;
    free(v->items);
    free(v);
}

struct presence {
    dict_t *status;   /* user id -> (presence_status as pointer) */
    dict_t *watchers; /* user id -> vec of conn_t* */
    dict_t *watching; /* conn id -> vec of user ids (keys of watchers) */
};

presence_t *presence_create(void) {
    presence_t *p = xmalloc(sizeof *p);
    p->status = dict_create_borrowed(); /* see presence_set */
    p->watchers = dict_create();
    p->watching = dict_create();
    return p;
}

size_t presence_shrink(presence_t *p) {
    return dict_shrink(p->status) + dict_shrink(p->watchers) +
           dict_shrink(p->watching);
}

void presence_destroy(presence_t *p) {
    if (!p) return;
    dict_destroy(p->status, NULL);
    dict_destroy(p->watchers, vec_free);
    dict_destroy(p->watching, vec_free);
    free(p);
}

presence_status presence_get(const presence_t *p, const char *uid) {
    return (presence_status)(uintptr_t)dict_get(p->status, uid);
}

int presence_set(presence_t *p, const char *uid, presence_status st) {
    if (presence_get(p, uid) == st) return 0;
    if (st == PRESENCE_OFFLINE)
        dict_remove(p->status, uid);
    else
        dict_set(p->status, uid, (void *)(uintptr_t)st);
    return 1;
}

int presence_subscribe(presence_t *p, conn_t *c, const char *uid) {
    vec_t *mine = dict_get(p->watching, conn_id(c));
    if (!mine) {
        mine = xcalloc(1, sizeof *mine);
        dict_set(p->watching, conn_id(c), mine);
    }
    vec_t *w = dict_get(p->watchers, uid);
    if (!w) {
        w = xcalloc(1, sizeof *w);
        dict_set(p->watchers, uid, w);
    }
    for (size_t i = 0; i < w->len; i++)
        if (w->items[i] == c) return 0;
    if (mine->len >= PRESENCE_MAX_SUBSCRIPTIONS) {
        if (!w->len) vec_free(dict_remove(p->watchers, uid));
        return -ENOSPC;
    }
    vec_push(w, c);
    /* The watchers dict owns the key copy we keep in `mine`; the entry
     * lives as long as it has a watcher, and we are one. */
    vec_push(mine, (void *)dict_key(p->watchers, uid));
    return 0;
}

void presence_conn_closed_each(presence_t *p, conn_t *c,
                               void (*unwatched)(void *ctx, const char *uid),
                               void *ctx) {
    vec_t *mine = dict_remove(p->watching, conn_id(c));
    if (!mine) return;
    for (size_t i = 0; i < mine->len; i++) {
        const char *uid = mine->items[i];
        vec_t *w = dict_get(p->watchers, uid);
        if (!w) continue;
        vec_remove(w, c);
        if (w->len) continue;
        if (unwatched) unwatched(ctx, uid);
        vec_free(dict_remove(p->watchers, uid)); /* frees uid */
    }
    vec_free(mine);
}

void presence_conn_closed(presence_t *p, conn_t *c) {
    presence_conn_closed_each(p, c, NULL, NULL);
}

conn_t *presence_next_subscriber(const presence_t *p, const char *uid,
                                 size_t *pos) {
    vec_t *w = dict_get(p->watchers, uid);
    if (!w || *pos >= w->len) return NULL;
    return w->items[(*pos)++];
}

size_t presence_subscriber_count(const presence_t *p, const char *uid) {
    vec_t *w = dict_get(p->watchers, uid);
    return w ? w->len : 0;
}

static const char *const names[] = {"offline", "online", "away", "busy"};

const char *presence_status_name(presence_status st) {
    return (unsigned)st < 4 ? names[st] : "offline";
}

int presence_parse_status(const char *s, presence_status *st) {
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            *st = (presence_status)i;
            return 0;
        }
    }
    return -EINVAL;
}
