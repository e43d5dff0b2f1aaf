/* skiplist.h -- an ordered set of strings: a skip list (Pugh, 1990; the
 * shape of Redis's sorted sets), in byte order (strcmp).
 *
 * For walking a big set in order a page at a time while it changes:
 * adding and removing cost O(log n) expected, and a page of m strings
 * after a given one costs O(log n + m), whatever the set's size and
 * whatever changed since the last page. The set does not copy its
 * strings: each must stay valid and unchanged while it is in the set (a
 * name stored in the object it names). */
#ifndef LUAHUB_SKIPLIST_H
#define LUAHUB_SKIPLIST_H

#include <stddef.h>

typedef struct skiplist skiplist_t;

skiplist_t *skiplist_create(void);
/* Frees the set (not its strings). */
void skiplist_destroy(skiplist_t *sl);

/* Adds key (borrowed while it is in the set). Returns 1 when it is new, 0
 * when an equal string was in already (the set keeps that one). */
int skiplist_add(skiplist_t *sl, const char *key);
/* Removes the string equal to key. Returns 1 when there was one. */
int skiplist_remove(skiplist_t *sl, const char *key);
size_t skiplist_size(const skiplist_t *sl);

/* Calls each(ctx, s) for the strings greater than after (NULL: from the
 * first), in order, at most limit of them, and returns how many. The set
 * must not change during the walk. */
size_t skiplist_range(const skiplist_t *sl, const char *after, size_t limit,
                      void (*each)(void *ctx, const char *s), void *ctx);

#endif
