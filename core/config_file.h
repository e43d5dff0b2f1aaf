/* config_file.h -- reads a --config file: a Lua chunk that returns a table
 * of settings (`return { port = 9000, reuse_port = true }`).
 *
 * The chunk runs in a throwaway LuaJIT state of its own, in a sandbox: no
 * io, os, require, load or print, only string, math, table and the plain
 * base functions; the interpreter only (no JIT, so that the count hook
 * sees every loop), at most CONFIG_FILE_SECONDS of run time and
 * CONFIG_FILE_MEMORY_MB of memory. The file is operator-written, but a
 * mistake in it (an endless loop) must stop the start with a message, not
 * hang it. This module only reads: what the names and values mean is
 * config.c's business. */
#ifndef LUAHUB_CONFIG_FILE_H
#define LUAHUB_CONFIG_FILE_H

#include <stddef.h>

#define CONFIG_FILE_SECONDS 2
#define CONFIG_FILE_MEMORY_MB 64

typedef enum config_value_kind {
    CONFIG_VALUE_BOOLEAN, /* text "true" or "false" */
    CONFIG_VALUE_NUMBER,  /* text as Lua prints it: 50, 0.5 */
    CONFIG_VALUE_STRING,  /* text the string */
    CONFIG_VALUE_LIST,    /* an array of strings or numbers, text the items
                             joined with ',' ("" for an empty table) */
    CONFIG_VALUE_OTHER,   /* a function, a table that is no list...: text
                             says what it is ("a function") */
} config_value_kind;

typedef struct config_entry {
    char *name; /* the table's key */
    config_value_kind kind;
    char *text;
} config_entry;

typedef struct config_entries {
    config_entry *v; /* sorted by name */
    size_t n;
} config_entries;

/* Runs the file at path and reads the table it returns into out (owned by
 * the caller: config_file_free). Returns 0, or -1 with why (one line, no
 * "luahub: " in front) when the file does not open, does not parse, fails
 * or runs too long while it runs, does not return a table, or the table
 * has a key that is not a name or a string with a NUL byte. */
int config_file_read(const char *path, config_entries *out, char *why,
                     size_t cap);

void config_file_free(config_entries *e);

#endif
