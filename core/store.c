/* store.c -- see store.h. */
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "dict.h"

typedef struct value {
    size_t len;
    char json[]; /* NUL-terminated */
} value_t;

struct store {
    /* kind -> scope name -> dict(key -> value_t) */
    dict_t *scopes[3];
};

store_t *store_create(void) {
    store_t *st = xmalloc(sizeof *st);
    for (int i = 0; i < 3; i++)
        st->scopes[i] = dict_create();
    return st;
}

static void scope_free(void *p) {
    dict_destroy(p, free);
}

void store_destroy(store_t *st) {
    if (!st) return;
    for (int i = 0; i < 3; i++)
        dict_destroy(st->scopes[i], scope_free);
    free(st);
}

static dict_t *scope_of(const store_t *st, store_scope_kind kind,
                        const char *scope) {
    return dict_get(st->scopes[kind], kind == STORE_GLOBAL ? "" : scope);
}

const char *store_get(const store_t *st, store_scope_kind kind,
                      const char *scope, const char *key, size_t *len) {
    dict_t *d = scope_of(st, kind, scope);
    value_t *v = d ? dict_get(d, key) : NULL;
    if (!v) return NULL;
    if (len) *len = v->len;
    return v->json;
}

int store_set(store_t *st, store_scope_kind kind, const char *scope,
              const char *key, const char *json, size_t len) {
    if (len > STORE_MAX_VALUE) return -E2BIG;
    const char *name = kind == STORE_GLOBAL ? "" : scope;
    dict_t *d = dict_get(st->scopes[kind], name);
    if (!d) {
        d = dict_create();
        dict_set(st->scopes[kind], name, d);
    }
    value_t *old = dict_get(d, key);
    if (!old && dict_size(d) >= STORE_MAX_KEYS) return -ENOSPC;
    value_t *v = xmalloc(sizeof *v + len + 1);
    v->len = len;
    memcpy(v->json, json, len);
    v->json[len] = '\0';
    dict_set(d, key, v);
    free(old);
    return 0;
}

int store_delete(store_t *st, store_scope_kind kind, const char *scope,
                 const char *key) {
    dict_t *d = scope_of(st, kind, scope);
    value_t *v = d ? dict_remove(d, key) : NULL;
    if (!v) return 0;
    free(v);
    return 1;
}

void store_drop(store_t *st, store_scope_kind kind, const char *scope) {
    dict_t *d = dict_remove(st->scopes[kind], scope);
    if (d) scope_free(d);
}

size_t store_count(const store_t *st, store_scope_kind kind,
                   const char *scope) {
    dict_t *d = scope_of(st, kind, scope);
    return d ? dict_size(d) : 0;
}
