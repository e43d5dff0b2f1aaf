/* history.c -- see history.h. */
#include "history.h"

#include <stdlib.h>

#include "alloc.h"

void history_init(history_t *h) {
    *h = (history_t){0};
}

static void drop_oldest(history_t *h) {
    frame_unref(h->slots[h->head].frame);
    h->head = (h->head + 1) % h->cap;
    h->len--;
}

void history_close(history_t *h) {
    while (h->len)
        drop_oldest(h);
    free(h->slots);
    history_init(h);
}

void history_add(history_t *h, frame_t *f, uint64_t seq, int64_t at,
                 size_t cap) {
    if (!cap) return;
    if (!h->slots) {
        h->slots = xmalloc(cap * sizeof *h->slots);
        h->cap = cap;
    }
    if (h->len == h->cap) drop_oldest(h);
    size_t i = (h->head + h->len) % h->cap;
    h->slots[i] = (history_entry){frame_ref(f), seq, at};
    h->len++;
}

size_t history_expire(history_t *h, int64_t until) {
    size_t n = 0;
    while (h->len && h->slots[h->head].at <= until) {
        drop_oldest(h);
        n++;
    }
    /* An empty ring gives its slots back: an idle room costs nothing. */
    if (!h->len && h->slots) {
        free(h->slots);
        history_init(h);
    }
    return n;
}

size_t history_len(const history_t *h) {
    return h->len;
}

const history_entry *history_at(const history_t *h, size_t i) {
    return &h->slots[(h->head + i) % h->cap];
}

size_t history_after(const history_t *h, uint64_t since) {
    /* The seqs kept increase: the first greater than since, by bisection. */
    size_t lo = 0, hi = h->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (history_at(h, mid)->seq <= since)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}
