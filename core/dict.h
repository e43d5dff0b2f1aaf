/* dict.h -- a hash table from strings to pointers.
 *
 * Open addressing with linear probing and backward-shift deletion, so there
 * are no tombstones and a lookup touches a short run of adjacent slots. The
 * table copies its keys; values are borrowed unless dict_destroy is given a
 * free method. Iteration visits every entry once in slot order; changing
 * the table while iterating is not allowed.
 *
 * A table made by dict_create_borrowed does not copy its keys: each key
 * must stay valid and unchanged while its entry is in the table (say, a
 * name stored in the value itself). That saves an allocation per entry. */
#ifndef LUAHUB_DICT_H
#define LUAHUB_DICT_H

#include <stddef.h>
#include <stdint.h>

typedef struct dict dict_t;

dict_t *dict_create(void);
dict_t *dict_create_borrowed(void);
/* Frees the table and its keys; calls free_value (if not NULL) on every
 * value. */
void dict_destroy(dict_t *d, void (*free_value)(void *));

/* Returns the value for key, or NULL. */
void *dict_get(const dict_t *d, const char *key);
/* The table's own copy of key (stable until the entry is removed), or NULL:
 * lets several structures share one copy of a name. */
const char *dict_key(const dict_t *d, const char *key);
/* Inserts or replaces. Returns 1 when the key is new, 0 when replaced. */
int dict_set(dict_t *d, const char *key, void *value);
/* Removes key; returns its value, or NULL when absent. */
void *dict_remove(dict_t *d, const char *key);
size_t dict_size(const dict_t *d);
/* Makes the table smaller when at most an eighth of it is used (tables
 * grow with the connections and never shrink otherwise: 10,000 that came
 * and went left 256 KiB a table). Moves entries, so never while
 * iterating: call it from a timer. Returns the bytes freed. */
size_t dict_shrink(dict_t *d);

/* Iteration: start with *pos = 0; returns 1 and fills key and value while
 * entries remain, 0 at the end. */
int dict_next(const dict_t *d, size_t *pos, const char **key, void **value);

uint64_t dict_hash(const char *s, size_t n);

#endif
