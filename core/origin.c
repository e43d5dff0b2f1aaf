/* origin.c -- see origin.h. */
#include "origin.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The next entry of a comma-separated list, trimmed: [*s, *s + *n).
 * Returns where the one after starts, or NULL after the last. */
static const char *next_entry(const char *p, const char **s, size_t *n) {
    const char *comma = strchr(p, ',');
    const char *e = comma ? comma : p + strlen(p);
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *s = p;
    *n = (size_t)(e - p);
    return comma ? comma + 1 : NULL;
}

/* Why s[0..n) is not an origin, or NULL when it is one. */
static const char *not_origin(const char *s, size_t n) {
    const char *sep = NULL;
    for (size_t i = 0; i + 2 < n; i++)
        if (s[i] == ':' && s[i + 1] == '/' && s[i + 2] == '/') {
            sep = s + i;
            break;
        }
    if (!sep || sep == s) return "an origin is scheme://host[:port]";
    for (const char *p = s; p < sep; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '+' || *p == '-' || *p == '.'))
            return "the scheme has a character a scheme cannot";
    const char *host = sep + 3, *end = s + n;
    if (host == end) return "it has no host";
    for (const char *p = host; p < end; p++) {
        if (*p == '/' || *p == '?' || *p == '#')
            return "an origin has no path (a browser sends "
                   "scheme://host[:port] "
                   "only)";
        if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '@')
            return "the host has a character a host cannot";
    }
    return NULL;
}

int origin_list_check(const char *list, char *err, size_t errlen) {
    const char *p = list, *s;
    size_t n;
    do {
        p = next_entry(p, &s, &n);
        const char *why = n == 0                ? "an empty entry"
                          : n == 1 && *s == '*' ? NULL
                                                : not_origin(s, n);
        if (why) {
            snprintf(err, errlen, "'%.*s' is not an origin: %s", (int)n, s,
                     why);
            return -EINVAL;
        }
    } while (p);
    return 0;
}

/* Is origin http://HOST or https://HOST? */
static int own_origin(const char *origin, size_t olen, const char *host,
                      size_t hlen) {
    if (!host || hlen == 0) return 0;
    size_t skip = olen > 7 && strncasecmp(origin, "http://", 7) == 0    ? 7
                  : olen > 8 && strncasecmp(origin, "https://", 8) == 0 ? 8
                                                                        : 0;
    return skip && olen - skip == hlen &&
           strncasecmp(origin + skip, host, hlen) == 0;
}

int origin_allowed(const char *list, const char *origin, size_t olen,
                   const char *host, size_t hlen) {
    if (!origin || !list[0]) return 1;
    if (own_origin(origin, olen, host, hlen)) return 1;
    const char *p = list, *s;
    size_t n;
    do {
        p = next_entry(p, &s, &n);
        if (n == 1 && *s == '*') return 1;
        if (n == olen && strncasecmp(s, origin, n) == 0) return 1;
    } while (p);
    return 0;
}
