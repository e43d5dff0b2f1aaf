/* peers.c -- see peers.h. */
#include "peers.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"

/* The smallest table; it never shrinks below. */
#define MIN_CAP 16

/* 32 bytes: the table holds one per address connected. */
typedef struct slot {
    netaddr addr;
    uint32_t count; /* 0: empty */
    uint32_t unlogged;
    int64_t logged_at; /* 0: never */
} slot;

struct peers {
    slot *slots;
    size_t mask; /* capacity - 1, a power of two */
    size_t size;
    uint64_t k0, k1;
};

static uint64_t load64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                               \
    do {                                                                       \
        v0 += v1;                                                              \
        v1 = ROTL(v1, 13);                                                     \
        v1 ^= v0;                                                              \
        v0 = ROTL(v0, 32);                                                     \
        v2 += v3;                                                              \
        v3 = ROTL(v3, 16);                                                     \
        v3 ^= v2;                                                              \
        v0 += v3;                                                              \
        v3 = ROTL(v3, 21);                                                     \
        v3 ^= v0;                                                              \
        v2 += v1;                                                              \
        v1 = ROTL(v1, 17);                                                     \
        v1 ^= v2;                                                              \
        v2 = ROTL(v2, 32);                                                     \
    } while (0)

/* SipHash-1-3 of the 16 address bytes. */
static uint64_t hash(const peers_t *p, const netaddr *a) {
    uint64_t v0 = p->k0 ^ 0x736f6d6570736575ULL;
    uint64_t v1 = p->k1 ^ 0x646f72616e646f6dULL;
    uint64_t v2 = p->k0 ^ 0x6c7967656e657261ULL;
    uint64_t v3 = p->k1 ^ 0x7465646279746573ULL;
    for (size_t i = 0; i < 16; i += 8) {
        uint64_t m = load64(a->b + i);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)16 << 56;
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

peers_t *peers_create(const uint8_t key[16]) {
    peers_t *p = xcalloc(1, sizeof *p);
    p->k0 = load64(key);
    p->k1 = load64(key + 8);
    p->mask = MIN_CAP - 1;
    p->slots = xcalloc(MIN_CAP, sizeof *p->slots);
    return p;
}

void peers_destroy(peers_t *p) {
    if (!p) return;
    free(p->slots);
    free(p);
}

/* The slot holding a, or the empty slot where it would go. */
static size_t find(const peers_t *p, const netaddr *a) {
    size_t i = hash(p, a) & p->mask;
    while (p->slots[i].count && !netaddr_equal(&p->slots[i].addr, a))
        i = (i + 1) & p->mask;
    return i;
}

static void resize(peers_t *p, size_t cap) {
    slot *old = p->slots;
    size_t oldcap = p->mask + 1;
    p->slots = xcalloc(cap, sizeof *p->slots);
    p->mask = cap - 1;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].count) p->slots[find(p, &old[i].addr)] = old[i];
    free(old);
}

uint32_t peers_add(peers_t *p, const netaddr *a) {
    /* At most three quarters full, so that probes stay short. */
    if ((p->size + 1) * 4 > (p->mask + 1) * 3) resize(p, (p->mask + 1) * 2);
    slot *s = &p->slots[find(p, a)];
    if (!s->count) {
        memset(s, 0, sizeof *s);
        s->addr = *a;
        p->size++;
    }
    return ++s->count;
}

/* Empties slot i, moving back the entries after it that would otherwise
 * be cut off from their home slot (no tombstones). */
static void delete_at(peers_t *p, size_t i) {
    size_t j = i;
    for (;;) {
        j = (j + 1) & p->mask;
        if (!p->slots[j].count) break;
        size_t k = hash(p, &p->slots[j].addr) & p->mask;
        /* Does j's home k lie cyclically in (i, j]? Then it stays. */
        int stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            p->slots[i] = p->slots[j];
            i = j;
        }
    }
    p->slots[i].count = 0;
    p->size--;
}

void peers_remove(peers_t *p, const netaddr *a) {
    size_t i = find(p, a);
    if (!p->slots[i].count) return;
    if (--p->slots[i].count) return;
    delete_at(p, i);
    /* Shrinks once an eighth full, so that a crowd that came and went
     * leaves no large table behind, and a count hovering at a boundary
     * does not resize at every step. */
    if (p->mask + 1 > MIN_CAP && p->size * 8 < p->mask + 1)
        resize(p, (p->mask + 1) / 2);
}

uint32_t peers_count(const peers_t *p, const netaddr *a) {
    return p->slots[find(p, a)].count;
}

size_t peers_size(const peers_t *p) {
    return p->size;
}

int peers_refusal_log(peers_t *p, const netaddr *a, int64_t now_ms,
                      int64_t interval_ms, uint32_t *unlogged) {
    slot *s = &p->slots[find(p, a)];
    *unlogged = 0;
    if (!s->count) return 1; /* not counted: nothing to remember it by */
    if (s->logged_at && now_ms - s->logged_at < interval_ms) {
        s->unlogged++;
        return 0;
    }
    *unlogged = s->unlogged;
    s->unlogged = 0;
    s->logged_at = now_ms;
    return 1;
}
