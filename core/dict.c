/* dict.c -- see dict.h. */
#include "dict.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"

/* Two pointers: the tables are sized by the connection count, so a slot's
 * size is per-connection memory. The hash is not kept; it is computed
 * again when a key moves (growth, deletion), which is rare. */
typedef struct slot {
    char *key; /* NULL: empty */
    void *value;
} slot_t;

static size_t home_of(const char *key, size_t mask) {
    return dict_hash(key, strlen(key)) & mask;
}

struct dict {
    slot_t *slots;
    size_t mask; /* capacity - 1; capacity is a power of two */
    size_t size;
    int borrowed; /* keys are the caller's, not copies */
};

/* FNV-1a with a final mix: short keys (user and room ids) dominate. */
uint64_t dict_hash(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

dict_t *dict_create(void) {
    dict_t *d = xmalloc(sizeof *d);
    d->mask = 7;
    d->size = 0;
    d->borrowed = 0;
    d->slots = xcalloc(d->mask + 1, sizeof(slot_t));
    return d;
}

dict_t *dict_create_borrowed(void) {
    dict_t *d = dict_create();
    d->borrowed = 1;
    return d;
}

void dict_destroy(dict_t *d, void (*free_value)(void *)) {
    if (!d) return;
    for (size_t i = 0; i <= d->mask; i++) {
        if (!d->slots[i].key) continue;
        if (!d->borrowed) free(d->slots[i].key);
        if (free_value) free_value(d->slots[i].value);
    }
    free(d->slots);
    free(d);
}

static slot_t *find(const dict_t *d, const char *key, uint64_t h) {
    for (size_t i = h & d->mask;; i = (i + 1) & d->mask) {
        slot_t *s = &d->slots[i];
        if (!s->key) return NULL;
        if (s->key[0] == key[0] && strcmp(s->key, key) == 0) return s;
    }
}

void *dict_get(const dict_t *d, const char *key) {
    slot_t *s = find(d, key, dict_hash(key, strlen(key)));
    return s ? s->value : NULL;
}

const char *dict_key(const dict_t *d, const char *key) {
    slot_t *s = find(d, key, dict_hash(key, strlen(key)));
    return s ? s->key : NULL;
}

static void place(slot_t *slots, size_t mask, slot_t e, size_t home) {
    size_t i = home & mask;
    while (slots[i].key)
        i = (i + 1) & mask;
    slots[i] = e;
}

static void rehash(dict_t *d, size_t nmask) {
    slot_t *ns = xcalloc(nmask + 1, sizeof(slot_t));
    for (size_t i = 0; i <= d->mask; i++)
        if (d->slots[i].key)
            place(ns, nmask, d->slots[i], home_of(d->slots[i].key, nmask));
    free(d->slots);
    d->slots = ns;
    d->mask = nmask;
}

static void grow(dict_t *d) {
    rehash(d, d->mask * 2 + 1);
}

size_t dict_shrink(dict_t *d) {
    size_t cap = d->mask + 1;
    if (cap <= 8 || d->size * 8 > cap) return 0;
    /* A quarter full after: room to grow before growing again. */
    size_t ncap = 8;
    while (ncap < d->size * 4)
        ncap *= 2;
    rehash(d, ncap - 1);
    return (cap - ncap) * sizeof(slot_t);
}

int dict_set(dict_t *d, const char *key, void *value) {
    uint64_t h = dict_hash(key, strlen(key));
    slot_t *s = find(d, key, h);
    if (s) {
        s->value = value;
        return 0;
    }
    /* Keep the load factor under 3/4 so probe runs stay short. */
    if ((d->size + 1) * 4 > (d->mask + 1) * 3) grow(d);
    slot_t e = {d->borrowed ? (char *)key : xstrdup(key), value};
    place(d->slots, d->mask, e, (size_t)h);
    d->size++;
    return 1;
}

void *dict_remove(dict_t *d, const char *key) {
    uint64_t h = dict_hash(key, strlen(key));
    slot_t *s = find(d, key, h);
    if (!s) return NULL;
    void *value = s->value;
    if (!d->borrowed) free(s->key);
    d->size--;
    /* Backward-shift: pull later members of the probe run into the hole so
     * that lookups never need tombstones. */
    size_t hole = (size_t)(s - d->slots);
    for (size_t i = (hole + 1) & d->mask; d->slots[i].key;
         i = (i + 1) & d->mask) {
        size_t home = home_of(d->slots[i].key, d->mask);
        /* Move entry i into the hole unless its home lies cyclically in
         * (hole, i]. */
        int stays = (hole <= i) ? (home > hole && home <= i)
                                : (home > hole || home <= i);
        if (stays) continue;
        d->slots[hole] = d->slots[i];
        hole = i;
    }
    d->slots[hole].key = NULL;
    d->slots[hole].value = NULL;
    return value;
}

size_t dict_size(const dict_t *d) {
    return d->size;
}

int dict_next(const dict_t *d, size_t *pos, const char **key, void **value) {
    for (size_t i = *pos; i <= d->mask; i++) {
        if (!d->slots[i].key) continue;
        if (key) *key = d->slots[i].key;
        if (value) *value = d->slots[i].value;
        *pos = i + 1;
        return 1;
    }
    *pos = d->mask + 1;
    return 0;
}
