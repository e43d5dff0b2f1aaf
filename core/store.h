/* store.h -- a small key-value store that outlives script reloads.
 *
 * Scripts keep state that must survive SIGHUP here (a Lua state's own
 * variables are gone with it). Values are JSON texts, encoded and decoded
 * by the script bridge. Keys live in scopes: "" (global), or a room's or a
 * user's, which the hub drops when the room is deleted or the user's last
 * connection closes, so per-room and per-user state cannot pile up. */
#ifndef LUAHUB_STORE_H
#define LUAHUB_STORE_H

#include <stddef.h>

typedef struct store store_t;

typedef enum store_scope_kind {
    STORE_GLOBAL = 0,
    STORE_ROOM = 1,
    STORE_USER = 2,
} store_scope_kind;

/* The largest value accepted, in bytes of JSON. */
#define STORE_MAX_VALUE 65536
/* At most this many keys in one scope. */
#define STORE_MAX_KEYS 100000

store_t *store_create(void);
void store_destroy(store_t *st);

/* The value (JSON text, borrowed until the key changes) or NULL. */
const char *store_get(const store_t *st, store_scope_kind kind,
                      const char *scope, const char *key, size_t *len);
/* Copies the value. Returns 0, -E2BIG when the value is too large, or
 * -ENOSPC when the scope is full. */
int store_set(store_t *st, store_scope_kind kind, const char *scope,
              const char *key, const char *json, size_t len);
/* Returns 1 when the key existed. */
int store_delete(store_t *st, store_scope_kind kind, const char *scope,
                 const char *key);
/* Drops a room's or a user's whole scope. */
void store_drop(store_t *st, store_scope_kind kind, const char *scope);
size_t store_count(const store_t *st, store_scope_kind kind, const char *scope);

#endif
