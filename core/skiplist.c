/* skiplist.c -- see skiplist.h. */
#include "skiplist.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

/* 16 levels at p = 1/4 serve 2^32 strings (a set's head holds one link a
 * level, and every room has a set); a node's level is drawn from the
 * set's own generator, so that a run is reproducible. */
#define SKIPLIST_MAX_LEVEL 16

typedef struct sl_node {
    const char *key;
    struct sl_node *next[]; /* one per level the node is on */
} sl_node;

struct skiplist {
    sl_node *head; /* no key; on every level */
    int level;     /* the highest level in use, 1 when empty */
    size_t size;
    uint64_t rng;
};

static sl_node *node_new(const char *key, int level) {
    sl_node *n = xcalloc(1, sizeof *n + (size_t)level * sizeof n->next[0]);
    n->key = key;
    return n;
}

skiplist_t *skiplist_create(void) {
    skiplist_t *sl = xcalloc(1, sizeof *sl);
    sl->head = node_new(NULL, SKIPLIST_MAX_LEVEL);
    sl->level = 1;
    sl->rng = 0x9e3779b97f4a7c15ULL;
    return sl;
}

void skiplist_destroy(skiplist_t *sl) {
    if (!sl) return;
    sl_node *n = sl->head;
    while (n) {
        sl_node *next = n->next[0];
        free(n);
        n = next;
    }
    free(sl);
}

/* A level from 1 up, each one more with probability 1/4 (xorshift64*). */
static int random_level(skiplist_t *sl) {
    sl->rng ^= sl->rng >> 12;
    sl->rng ^= sl->rng << 25;
    sl->rng ^= sl->rng >> 27;
    uint64_t bits = sl->rng * 0x2545f4914f6cdd1dULL;
    int level = 1;
    while (level < SKIPLIST_MAX_LEVEL && (bits & 3) == 0) {
        level++;
        bits >>= 2;
    }
    return level;
}

/* The last node before key on each level into update; returns the node
 * after the one on level 0 (the first not less than key), or NULL. */
static sl_node *find(const skiplist_t *sl, const char *key, sl_node **update) {
    sl_node *x = sl->head;
    for (int i = sl->level - 1; i >= 0; i--) {
        while (x->next[i] && strcmp(x->next[i]->key, key) < 0)
            x = x->next[i];
        if (update) update[i] = x;
    }
    return x->next[0];
}

int skiplist_add(skiplist_t *sl, const char *key) {
    sl_node *update[SKIPLIST_MAX_LEVEL];
    sl_node *x = find(sl, key, update);
    if (x && strcmp(x->key, key) == 0) return 0;
    int level = random_level(sl);
    for (int i = sl->level; i < level; i++)
        update[i] = sl->head;
    if (level > sl->level) sl->level = level;
    sl_node *n = node_new(key, level);
    for (int i = 0; i < level; i++) {
        n->next[i] = update[i]->next[i];
        update[i]->next[i] = n;
    }
    sl->size++;
    return 1;
}

int skiplist_remove(skiplist_t *sl, const char *key) {
    sl_node *update[SKIPLIST_MAX_LEVEL];
    sl_node *x = find(sl, key, update);
    if (!x || strcmp(x->key, key) != 0) return 0;
    for (int i = 0; i < sl->level && update[i]->next[i] == x; i++)
        update[i]->next[i] = x->next[i];
    free(x);
    while (sl->level > 1 && !sl->head->next[sl->level - 1])
        sl->level--;
    sl->size--;
    return 1;
}

size_t skiplist_size(const skiplist_t *sl) {
    return sl->size;
}

size_t skiplist_range(const skiplist_t *sl, const char *after, size_t limit,
                      void (*each)(void *ctx, const char *s), void *ctx) {
    sl_node *x = after ? find(sl, after, NULL) : sl->head->next[0];
    if (x && after && strcmp(x->key, after) == 0) x = x->next[0];
    size_t n = 0;
    for (; x && n < limit; x = x->next[0], n++)
        each(ctx, x->key);
    return n;
}
