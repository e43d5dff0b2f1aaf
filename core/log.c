/* log.c -- see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static log_level current = LOG_INFO;

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

void log_set_level(log_level lv) {
    current = lv;
}
log_level log_get_level(void) {
    return current;
}
int log_enabled(log_level lv) {
    return lv <= current;
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
    line[len++] = '\n';
    /* One write per line, so that lines never interleave. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
