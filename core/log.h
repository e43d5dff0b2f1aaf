/* log.h -- one log function for the core, the scripts and libwebsockets.
 *
 * Lines go to stderr as
 *   2026-11-23T03:15:21.123Z info  server: listening host=127.0.0.1 port=8080
 * with a level, a module tag and key=value fields. */
#ifndef LUAHUB_LOG_H
#define LUAHUB_LOG_H

typedef enum log_level {
    LOG_ERROR = 0,
    LOG_WARN = 1,
    LOG_INFO = 2,
    LOG_DEBUG = 3,
} log_level;

/* LOG_TEXT: the line above. LOG_JSON: one JSON object a line, for log
 * shippers:
 *   {"time":"2026-11-23T03:15:21.123Z","level":"info","module":"server",
 *    "msg":"listening","host":"127.0.0.1","port":"8080"}
 * Each key=value word after the message is a string field of its own;
 * text after a value that ends in ':' (or after a word that is no
 * key=value) is the field "detail". */
typedef enum log_format {
    LOG_TEXT = 0,
    LOG_JSON = 1,
} log_format;

/* Parses "text" or "json": 0 with *f set, or -1. */
int log_format_parse(const char *s, log_format *f);
const char *log_format_name(log_format f);
void log_set_format(log_format f);

/* Parses a level name (error, warn, info, debug): 0 with *lv set, or -1. */
int log_level_parse(const char *s, log_level *lv);
const char *log_level_name(log_level lv);

void log_set_level(log_level lv);
log_level log_get_level(void);
int log_enabled(log_level lv);
void log_write(log_level lv, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(mod, ...) log_write(LOG_ERROR, mod, __VA_ARGS__)
#define log_warn(mod, ...) log_write(LOG_WARN, mod, __VA_ARGS__)
#define log_info(mod, ...)                                                     \
    do {                                                                       \
        if (log_enabled(LOG_INFO)) log_write(LOG_INFO, mod, __VA_ARGS__);      \
    } while (0)
#define log_debug(mod, ...)                                                    \
    do {                                                                       \
        if (log_enabled(LOG_DEBUG)) log_write(LOG_DEBUG, mod, __VA_ARGS__);    \
    } while (0)

#endif
