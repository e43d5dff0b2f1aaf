/* alloc.h -- allocation that never returns NULL.
 *
 * A realtime server that runs out of memory cannot degrade usefully, so
 * every allocation goes through these wrappers, which abort with a message
 * instead of returning NULL (the Redis zmalloc convention). */
#ifndef LUAHUB_ALLOC_H
#define LUAHUB_ALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Gives memory freed since back to the system, where the allocator keeps
 * it (glibc keeps free pages inside its heap, out of reach of its own
 * trimming, which only ever gives back the top). Costs time in
 * proportion to the heap: for after a large drop, not for every free. */
void alloc_release(void);

#endif
