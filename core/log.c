/* log.c -- see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "json.h"

static log_level current = LOG_INFO;
static log_format format = LOG_TEXT;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int log_level_parse(const char *s, log_level *lv) {
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *lv = (log_level)i;
            return 0;
        }
    }
    return -1;
}

const char *log_level_name(log_level lv) {
    return (unsigned)lv < 4 ? level_names[lv] : "info";
}

int log_format_parse(const char *s, log_format *f) {
    if (!strcmp(s, "text") || !strcmp(s, "json")) {
        *f = s[0] == 'j' ? LOG_JSON : LOG_TEXT;
        return 0;
    }
    return -1;
}

const char *log_format_name(log_format f) {
    return f == LOG_JSON ? "json" : "text";
}

void log_set_format(log_format f) {
    format = f;
}

void log_set_level(log_level lv) {
    current = lv;
}
log_level log_get_level(void) {
    return current;
}
int log_enabled(log_level lv) {
    return lv <= current;
}

/* The length of the key of a key=value word at w (n bytes), or 0: a key is
 * a lower-case letter or '_', then those and digits. */
static size_t key_len(const char *w, size_t n) {
    size_t i = 0;
    while (i < n && (w[i] == '_' || (w[i] >= 'a' && w[i] <= 'z') ||
                     (i > 0 && w[i] >= '0' && w[i] <= '9')))
        i++;
    return i > 0 && i < n && w[i] == '=' ? i : 0;
}

static void json_field(buf_t *b, const char *k, size_t kn, const char *v,
                       size_t vn) {
    /* A field named like one of the line's own keys gets a '_' in front,
     * so that no object has a key twice. */
    static const char *const own[] = {"time", "level", "module", "msg",
                                      "detail"};
    char renamed[16];
    for (size_t i = 0; i < sizeof own / sizeof *own; i++) {
        if (strlen(own[i]) == kn && !memcmp(own[i], k, kn)) {
            snprintf(renamed, sizeof renamed, "_%s", own[i]);
            k = renamed;
            kn++;
            break;
        }
    }
    buf_putc(b, ',');
    json_write_string(b, k, kn);
    buf_putc(b, ':');
    json_write_string(b, v, vn);
}

/* The JSON line of a message m (n bytes): see log.h. */
static void json_line(buf_t *b, const char *stamp, const char *level,
                      const char *module, const char *m, size_t n) {
    buf_puts(b, "{\"time\":");
    json_write_string(b, stamp, strlen(stamp));
    buf_puts(b, ",\"level\":");
    json_write_string(b, level, strlen(level));
    buf_puts(b, ",\"module\":");
    json_write_string(b, module, strlen(module));
    /* The message: the words before the first key=value word. */
    size_t i = 0, msg_end = n;
    while (i < n) {
        size_t e = i;
        while (e < n && m[e] != ' ')
            e++;
        if (key_len(m + i, e - i)) {
            msg_end = i > 0 ? i - 1 : 0;
            break;
        }
        i = e + 1;
    }
    buf_puts(b, ",\"msg\":");
    json_write_string(b, m, msg_end);
    /* The fields, up to a value ending in ':' or a word that is none. */
    i = msg_end < n ? msg_end + (msg_end > 0) : n;
    while (i < n) {
        size_t e = i;
        while (e < n && m[e] != ' ')
            e++;
        size_t k = key_len(m + i, e - i);
        if (!k) break;
        size_t v = i + k + 1, vn = e - v;
        int last = vn > 0 && m[e - 1] == ':' && e < n;
        json_field(b, m + i, k, m + v, last ? vn - 1 : vn);
        i = e + 1;
        if (last) break;
    }
    if (i < n) {
        buf_puts(b, ",\"detail\":");
        json_write_string(b, m + i, n - i);
    }
    buf_puts(b, "}\n");
}

void log_write(log_level lv, const char *module, const char *fmt, ...) {
    if (!log_enabled(lv)) return;
    static const char *const names[] = {"error", "warn", "info", "debug"};
    char line[2048];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(
        line, sizeof line,
        "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %-5s %s: ", tm.tm_year + 1900,
        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
        (int)(tv.tv_usec / 1000), names[(unsigned)lv < 4 ? lv : 3], module);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0
                              : (size_t)m < sizeof line - (size_t)n - 1
                                  ? (size_t)m
                                  : sizeof line - (size_t)n - 2);
    if (format == LOG_JSON) {
        char stamp[32];
        memcpy(stamp, line, 24);
        stamp[24] = '\0';
        buf_t b;
        buf_init(&b, 0);
        json_line(&b, stamp, names[(unsigned)lv < 4 ? lv : 3], module, line + n,
                  len - (size_t)n);
        ssize_t w = write(STDERR_FILENO, buf_content(&b), b.len);
        (void)w;
        buf_close(&b);
        return;
    }
    line[len++] = '\n';
    /* One write per line, so that lines never interleave. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
