/* script_json.c -- JSON to and from Lua values, with the project's own
 * parser and encoder (script_int.h), so that JSON arrays stay arrays when
 * empty (marked with the array metatable) and null stays null (the NULL
 * light userdata, as cjson.null). */
#include <errno.h>
#include <string.h>

#include "script_int.h"

/* ---- lazy payloads --------------------------------------------------------
 *
 * Most handlers pass a client's payload on as it came (chat: `payload =
 * msg.payload` into hub.publish). Decoding it into tables and encoding it
 * back was about a third of such a message's cost, so the payload of a
 * client frame is not decoded up front: the handler gets an empty table
 * with the lazy metatable, and its text (checked by the parser like the
 * rest of the frame) is kept in a weak table keyed by it. The first read
 * or write of a field (__index, __newindex) decodes it into the table
 * itself and drops the metatable: from then on it is the plain table it
 * always was, identity kept. The encoder writes a lazy table that nothing
 * has touched as the client's text. The sandbox's pairs, next, rawget,
 * rawset, getmetatable, setmetatable and table functions, and its cjson's
 * encode, decode it first (lua/sandbox.lua), so no script can tell. `#t`
 * is 0 either way: the keys of a JSON object are strings. */

static const char lazy_mt_key = 'm';  /* registry: the lazy metatable */
static const char lazy_raw_key = 'r'; /* registry: table -> its text */

static void push_reg(lua_State *L, const char *key) {
    lua_pushlightuserdata(L, (void *)key);
    lua_rawget(L, LUA_REGISTRYINDEX);
}

/* 1 when the table at idx (absolute) is lazy, still undecoded. */
static int is_lazy(lua_State *L, int idx) {
    if (!lua_getmetatable(L, idx)) return 0;
    push_reg(L, &lazy_mt_key);
    int lazy = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return lazy;
}

static int decode_text(lua_State *L, const char *json, size_t len);

/* Decodes the lazy table at idx (absolute) into itself: the fields it
 * was given raw (table.insert, which bypasses __newindex) are kept over
 * the decoded ones. */
static void materialize(lua_State *L, int idx) {
    if (!is_lazy(L, idx)) return;
    luaL_checkstack(L, 6, "materialize");
    push_reg(L, &lazy_raw_key);
    lua_pushvalue(L, idx);
    lua_rawget(L, -2);
    size_t n;
    const char *raw = lua_tolstring(L, -1, &n);
    if (!raw || decode_text(L, raw, n) < 0)
        lua_newtable(L); /* cannot be: the text passed the same parser */
    /* stack: weak, raw, decoded */
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        lua_pushvalue(L, -2);
        lua_rawget(L, idx);
        int absent = lua_isnil(L, -1);
        lua_pop(L, 1);
        if (absent) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, idx);
        } else {
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 2);
    lua_pushvalue(L, idx);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_setmetatable(L, idx);
}

/* __index(t, k) */
static int l_lazy_index(lua_State *L) {
    materialize(L, 1);
    lua_settop(L, 2);
    lua_rawget(L, 1);
    return 1;
}

/* __newindex(t, k, v) */
static int l_lazy_newindex(lua_State *L) {
    materialize(L, 1);
    lua_settop(L, 3);
    lua_rawset(L, 1);
    return 0;
}

/* core.materialize(t): decodes t if it is a lazy table; returns t. */
static int l_materialize(lua_State *L) {
    if (lua_type(L, 1) == LUA_TTABLE) materialize(L, 1);
    lua_settop(L, 1);
    return 1;
}

/* core.set_lazy(on): client payloads are decoded lazily from now on (the
 * runtime turns it on when the sandbox, which hides it, is on). */
static int l_set_lazy(lua_State *L) {
    script__self(L)->lazy = lua_toboolean(L, 1);
    return 0;
}

/* Makes the registry's lazy metatable and weak table (once per state),
 * and sets core.lazy_raw to the weak table (for the sandbox: a table is
 * lazy while it is a key there). */
static void inject_lazy(lua_State *L, script_t *s, int core) {
    static const luaL_Reg meta[] = {
        {"__index", l_lazy_index},
        {"__newindex", l_lazy_newindex},
        {NULL, NULL},
    };
    lua_pushlightuserdata(L, (void *)&lazy_mt_key);
    lua_createtable(L, 0, 3);
    script__register(L, s, -1, meta);
    /* getmetatable (Lua's) answers false: no script holds this table. */
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_rawset(L, LUA_REGISTRYINDEX);
    lua_pushlightuserdata(L, (void *)&lazy_raw_key);
    lua_createtable(L, 0, 0);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_setfield(L, core, "lazy_raw");
    lua_rawset(L, LUA_REGISTRYINDEX);
}

/* ---- JSON -> Lua ------------------------------------------------------- */

typedef script_decoder decoder_t;

/* Stores the value on top of the stack into the open container. */
static int dec_store(decoder_t *d) {
    if (d->depth == 0) return 0; /* the top-level value stays on the stack */
    if (d->is_array[d->depth])
        lua_rawseti(d->L, -2, ++d->index[d->depth]);
    else
        lua_rawset(d->L, -3); /* stack: table, key, value */
    return 0;
}

static int dec_open(decoder_t *d, int array) {
    if (!lua_checkstack(d->L, 4)) return -EINVAL;
    /* Room for a few entries up front: most frames' tables are small, and
     * growing a table one rehash at a time costs an allocation each. */
    lua_createtable(d->L, array ? 4 : 0, array ? 0 : 4);
    if (array) {
        lua_rawgeti(d->L, LUA_REGISTRYINDEX, d->array_mt_ref);
        lua_setmetatable(d->L, -2);
    }
    d->depth++;
    d->is_array[d->depth] = (unsigned char)array;
    d->index[d->depth] = 0;
    return 0;
}

static int dec_close(decoder_t *d) {
    d->depth--;
    return dec_store(d);
}

static int dec_begin_object(void *ud) {
    decoder_t *d = ud;
    if (d->at_payload && d->depth == 1) return JSON_SINK_SKIP; /* lazy */
    return dec_open(d, 0);
}

/* The top-level payload object, skipped: a lazy table with its text. */
static int dec_skipped(void *ud, const char *raw, size_t rawlen) {
    decoder_t *d = ud;
    lua_State *L = d->L;
    if (!lua_checkstack(L, 5)) return -EINVAL;
    lua_createtable(L, 0, 0);
    push_reg(L, &lazy_mt_key);
    lua_setmetatable(L, -2);
    push_reg(L, &lazy_raw_key);
    lua_pushvalue(L, -2);
    lua_pushlstring(L, raw, rawlen);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    return dec_store(d);
}
static int dec_begin_array(void *ud) {
    return dec_open(ud, 1);
}
static int dec_end(void *ud) {
    return dec_close(ud);
}

static const struct {
    const char *s;
    size_t n;
} keys[SCRIPT_KEYS] = {
    {"type", 4}, {"id", 2}, {"room_id", 7}, {"to", 2}, {"payload", 7}};
enum { KEY_TYPE, KEY_PAYLOAD = 4 };

void script__key_refs(script_t *s) {
    for (int i = 0; i < SCRIPT_KEYS; i++) {
        lua_pushlstring(s->L, keys[i].s, keys[i].n);
        s->key_ref[i] = luaL_ref(s->L, LUA_REGISTRYINDEX);
    }
}

/* The index in keys of s[0..n), or -1. */
static int key_of(const char *s, size_t n) {
    for (int i = 0; i < SCRIPT_KEYS; i++)
        if (n == keys[i].n && memcmp(s, keys[i].s, n) == 0) return i;
    return -1;
}

static int dec_key(void *ud, const char *s, size_t n) {
    decoder_t *d = ud;
    if (d->depth == 1 && d->key_ref) {
        /* A client frame's own keys: the same few on every frame, pushed
         * from references rather than hashed and interned again (about 250
         * instructions each). */
        int k = key_of(s, n);
        d->at_payload = d->lazy && k == KEY_PAYLOAD;
        d->at_type = k == KEY_TYPE;
        if (k >= 0) {
            lua_rawgeti(d->L, LUA_REGISTRYINDEX, d->key_ref[k]);
            return 0;
        }
    } else if (d->lazy && d->depth == 1) {
        d->at_payload = n == 7 && memcmp(s, "payload", 7) == 0;
    }
    lua_pushlstring(d->L, s, n);
    return 0;
}

static int dec_string(void *ud, const char *s, size_t n, const char *raw,
                      size_t rawlen) {
    decoder_t *d = ud;
    lua_pushlstring(d->L, s, n);
    if (d->at_type && d->depth == 1 && d->type_slot) {
        /* The frame's type, for the dispatch's argument: the same string,
         * not interned a second time. */
        lua_pushvalue(d->L, -1);
        lua_replace(d->L, d->type_slot);
    }
    return dec_store(d);
}

static int dec_number(void *ud, double v, const char *raw, size_t rawlen) {
    decoder_t *d = ud;
    lua_pushnumber(d->L, v);
    return dec_store(d);
}

static int dec_boolean(void *ud, int v) {
    decoder_t *d = ud;
    lua_pushboolean(d->L, v);
    return dec_store(d);
}

static int dec_null(void *ud) {
    decoder_t *d = ud;
    lua_pushlightuserdata(d->L, NULL);
    return dec_store(d);
}

const json_sink script__decoder_sink = {
    dec_begin_object, dec_end,    dec_begin_array, dec_end,  dec_key,
    dec_string,       dec_number, dec_boolean,     dec_null, dec_skipped,
};

void script__decoder_init(script_decoder *d, script_t *s) {
    d->L = s->L;
    d->array_mt_ref = s->array_mt_ref;
    d->depth = 0;
    d->lazy = d->at_payload = 0;
    d->key_ref = NULL;
    d->type_slot = d->at_type = 0;
}

/* json[0..len), checked already, decoded on L, with the state's array
 * metatable (from the registry: the encoder's callers have no script_t). */
static int decode_text(lua_State *L, const char *json, size_t len) {
    lua_getfield(L, LUA_REGISTRYINDEX, "luahub.array_mt_ref");
    decoder_t d = {.L = L, .array_mt_ref = (int)lua_tointeger(L, -1)};
    lua_pop(L, 1);
    json_error err;
    return json_parse(json, len, JSON_MAX_DEPTH, &script__decoder_sink, &d,
                      &err) == JSON_OK
               ? 0
               : -1;
}

int script__decode(script_t *s, lua_State *L, const char *json, size_t len,
                   json_error *err) {
    int top = lua_gettop(L);
    decoder_t d;
    script__decoder_init(&d, s);
    d.L = L;
    if (json_parse(json, len, JSON_MAX_DEPTH, &script__decoder_sink, &d, err) !=
        JSON_OK) {
        lua_settop(L, top);
        return -EINVAL;
    }
    return 0;
}

/* ---- Lua -> JSON ------------------------------------------------------- */

static int encode_value(lua_State *L, int idx, buf_t *b, int depth,
                        int array_mt_ref);

static int is_array_table(lua_State *L, int idx, int array_mt_ref,
                          size_t *len) {
    *len = lua_objlen(L, idx);
    if (lua_getmetatable(L, idx)) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, array_mt_ref);
        int marked = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
        if (marked) return 1;
    }
    if (*len == 0) return 0;
    /* An unmarked table is an array when its keys are exactly 1..n. */
    size_t count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TNUMBER) {
            lua_pop(L, 1);
            return 0;
        }
        count++;
    }
    return count == *len;
}

/* 1 when the string key k is one of skip (NULL-terminated). Its first
 * byte is compared before the call: most keys differ there, and this runs
 * for every key of every published message. */
static int skipped(const char *k, const char *const *skip) {
    for (; *skip; skip++)
        if (k[0] == (*skip)[0] && !strcmp(k, *skip)) return 1;
    return 0;
}

/* Writes the table's fields as "key":value pairs (no braces), each after a
 * comma unless *first; keys listed in skip (NULL-terminated, or NULL) are
 * left out. */
int script__encode_members(lua_State *L, int idx, buf_t *b, int depth,
                           int array_mt_ref, int *first,
                           const char *const *skip) {
    materialize(L, idx); /* an ack made of a lazy payload: its fields */
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        /* stack: key, value */
        int kt = lua_type(L, -2);
        if (kt != LUA_TSTRING && kt != LUA_TNUMBER) {
            lua_pop(L, 2);
            lua_pushfstring(L, "cannot encode a table key of type %s",
                            lua_typename(L, kt));
            return -EINVAL;
        }
        /* A number key is converted on a copy: lua_next needs the key
         * itself untouched. A string key is read in place. */
        int copied = kt == LUA_TNUMBER;
        if (copied) lua_pushvalue(L, -2);
        size_t klen;
        const char *k = lua_tolstring(L, copied ? -1 : -2, &klen);
        if (!copied && skip && skipped(k, skip)) {
            lua_pop(L, 1);
            continue;
        }
        if (!*first) buf_putc(b, ',');
        *first = 0;
        json_write_string(b, k, klen);
        buf_putc(b, ':');
        /* stack: key, value[, key copy] */
        int rc =
            encode_value(L, lua_gettop(L) - copied, b, depth + 1, array_mt_ref);
        if (rc) {
            /* stack: key, value[, key copy], message */
            lua_insert(L, -3 - copied);
            lua_pop(L, 2 + copied);
            return rc;
        }
        lua_pop(L, 1 + copied);
    }
    return 0;
}

static int encode_table(lua_State *L, int idx, buf_t *b, int depth,
                        int array_mt_ref) {
    if (depth > JSON_MAX_DEPTH) {
        lua_pushstring(L, "cannot encode: nested too deeply (or a cycle)");
        return -EINVAL;
    }
    if (!lua_checkstack(L, 6)) {
        lua_pushstring(L, "cannot encode: out of stack");
        return -EINVAL;
    }
    int top = lua_gettop(L);
    if (is_lazy(L, idx)) {
        /* Untouched since the client sent it: its text, as checked. Given
         * fields raw (table.insert): decoded, and written as a table. Its
         * text nests up to 30 levels below it (the frame's limit, 32, less
         * the frame and the payload): written deeper than 2 it could pass
         * the limit, so it is decoded and written (and refused) as a
         * table would be. */
        lua_pushnil(L);
        if (depth <= JSON_MAX_DEPTH - 30 && !lua_next(L, idx)) {
            push_reg(L, &lazy_raw_key);
            lua_pushvalue(L, idx);
            lua_rawget(L, -2);
            size_t n;
            const char *raw = lua_tolstring(L, -1, &n);
            buf_append(b, raw, n);
            lua_pop(L, 2);
            return 0;
        }
        lua_settop(L, top);
        materialize(L, idx);
    }
    size_t len;
    if (is_array_table(L, idx, array_mt_ref, &len)) {
        buf_putc(b, '[');
        for (size_t i = 1; i <= len; i++) {
            if (i > 1) buf_putc(b, ',');
            lua_rawgeti(L, idx, (int)i);
            int rc = encode_value(L, lua_gettop(L), b, depth + 1, array_mt_ref);
            if (rc) {
                lua_remove(L, -2); /* keep the message */
                return rc;
            }
            lua_pop(L, 1);
        }
        buf_putc(b, ']');
        return 0;
    }
    buf_putc(b, '{');
    int first = 1;
    int rc =
        script__encode_members(L, idx, b, depth, array_mt_ref, &first, NULL);
    if (rc) return rc;
    buf_putc(b, '}');
    return 0;
}

static int encode_value(lua_State *L, int idx, buf_t *b, int depth,
                        int array_mt_ref) {
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        buf_puts(b, "null");
        return 0;
    case LUA_TBOOLEAN:
        buf_puts(b, lua_toboolean(L, idx) ? "true" : "false");
        return 0;
    case LUA_TNUMBER:
        if (json_write_number(b, lua_tonumber(L, idx)) < 0) {
            lua_pushstring(L, "cannot encode NaN or infinity");
            return -EINVAL;
        }
        return 0;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        json_write_string(b, s, n);
        return 0;
    }
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) {
            buf_puts(b, "null");
            return 0;
        }
        break;
    case LUA_TTABLE:
        return encode_table(L, idx, b, depth, array_mt_ref);
    case LUA_TUSERDATA:
        if (script__encode_frames(L, idx, b)) return 0;
        break;
    }
    lua_pushfstring(L, "cannot encode a %s", luaL_typename(L, idx));
    return -EINVAL;
}

int script__encode(lua_State *L, int idx, buf_t *b, int array_mt_ref) {
    return encode_value(L, idx, b, 0, array_mt_ref);
}

int script_encode(lua_State *L, int idx, buf_t *b) {
    /* The array metatable lives in the registry of the state's script. */
    lua_getfield(L, LUA_REGISTRYINDEX, "luahub.array_mt_ref");
    int ref = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (idx < 0) idx = lua_gettop(L) + idx + 1;
    return encode_value(L, idx, b, 0, ref);
}

/* ---- JSON: hub.encode, hub.decode, hub.null ------------------------------ */

static int l_encode(lua_State *L) {
    script_t *s = script__self(L);
    luaL_checkany(L, 1);
    buf_t b;
    buf_init(&b, 0);
    if (script__encode(L, 1, &b, s->array_mt_ref)) {
        buf_close(&b);
        return lua_error(L);
    }
    lua_pushlstring(L, b.data ? buf_content(&b) : "", b.len);
    buf_close(&b);
    return 1;
}

static int l_decode(lua_State *L) {
    script_t *s = script__self(L);
    size_t n;
    const char *json = luaL_checklstring(L, 1, &n);
    json_error err;
    if (script__decode(s, L, json, n, &err) < 0)
        return luaL_error(L, "not JSON: %s", err.message);
    return 1;
}

/* set_array_mt(mt), the runtime's: the metatable that marks a JSON array
 * (lua/protocol.lua's). */
static int l_set_array_mt(lua_State *L) {
    script_t *s = script__self(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_pushvalue(L, 1);
    lua_rawseti(L, LUA_REGISTRYINDEX, s->array_mt_ref);
    return 0;
}

void script__inject_json(lua_State *L, script_t *s, int hub, int core) {
    static const luaL_Reg public[] = {
        {"encode", l_encode},
        {"decode", l_decode},
        {NULL, NULL},
    };
    static const luaL_Reg private[] = {
        {"set_array_mt", l_set_array_mt},
        {"materialize", l_materialize},
        {"set_lazy", l_set_lazy},
        {NULL, NULL},
    };
    script__register(L, s, hub, public);
    script__register(L, s, core, private);
    if (hub < 0) hub = lua_gettop(L) + hub + 1;
    if (core < 0) core = lua_gettop(L) + core + 1;
    inject_lazy(L, s, core);
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, hub, "null");
}
