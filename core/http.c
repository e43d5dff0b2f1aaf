/* http.c -- see http.h. */
#include "http.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int http_head_complete(const char *buf, size_t len, size_t *scanned) {
    size_t i = *scanned;
    /* Resume one byte back, so a blank line split across reads is seen. */
    if (i > 0) i--;
    const char *nl = memchr(buf, '\n', len);
    if (!nl && len > HTTP_MAX_TARGET + 32) return -414;
    if (nl && (size_t)(nl - buf) > HTTP_MAX_TARGET + 32) return -414;
    /* From line end to line end (memchr), not byte by byte. */
    for (; i < len; i++) {
        const char *lf = memchr(buf + i, '\n', len - i);
        if (!lf) break;
        i = (size_t)(lf - buf);
        /* A line that is empty ("\n" or "\r\n") after a line end. */
        if (i >= 1 && buf[i - 1] == '\n') {
            *scanned = len;
            return i + 1 > HTTP_MAX_HEAD ? -431 : (int)(i + 1);
        }
        if (i >= 2 && buf[i - 1] == '\r' && buf[i - 2] == '\n') {
            *scanned = len;
            return i + 1 > HTTP_MAX_HEAD ? -431 : (int)(i + 1);
        }
    }
    *scanned = len;
    return len >= HTTP_MAX_HEAD ? -431 : 0;
}

/* RFC 9110's tchar: a table, not a strchr() for every '-' of every
 * header name. */
static const unsigned char tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1,
    ['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1,
    ['`'] = 1, ['|'] = 1, ['~'] = 1, ['0'] = 1, ['1'] = 1, ['2'] = 1,
    ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,
    ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1,
    ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1,
    ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1,
    ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,
    ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1,
    ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1,
    ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

static int is_tchar(unsigned char c) {
    return tchar[c];
}

/* One line: [p, *end) without its CR LF; returns the next line's start. */
static const char *line_end(const char *p, const char *lim, const char **end) {
    const char *nl = memchr(p, '\n', (size_t)(lim - p));
    if (!nl) nl = lim;
    *end = nl > p && nl[-1] == '\r' ? nl - 1 : nl;
    return nl < lim ? nl + 1 : lim;
}

int http_parse(http_req *r, const char *buf, size_t len) {
    const char *lim = buf + len, *e;
    const char *next = line_end(buf, lim, &e);
    memset(r, 0, offsetof(http_req, headers));

    /* Request line: METHOD SP target SP HTTP/1.x */
    const char *p = buf;
    while (p < e && is_tchar((unsigned char)*p))
        p++;
    if (p == buf || p >= e || *p != ' ') return -400;
    r->method = buf;
    r->method_len = (size_t)(p - buf);
    const char *t = ++p;
    while (p < e && *p != ' ') {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) return -400;
        p++;
    }
    if (p == t || p >= e || *t != '/') return -400;
    r->target = t;
    r->target_len = (size_t)(p - t);
    if (r->target_len > HTTP_MAX_TARGET) return -414;
    const char *q = memchr(t, '?', r->target_len);
    r->path_len = q ? (size_t)(q - t) : r->target_len;
    p++;
    if (e - p != 8 || memcmp(p, "HTTP/", 5) != 0) return -400;
    if (p[5] != '1' || p[6] != '.' || p[7] < '0' || p[7] > '9') return -505;
    r->minor = p[7] - '0';

    /* Headers, up to the blank line. */
    for (p = next; p < lim; p = next) {
        next = line_end(p, lim, &e);
        if (e == p) break;                        /* the blank line */
        if (*p == ' ' || *p == '\t') return -400; /* obsolete folding */
        const char *n = p;
        while (p < e && is_tchar((unsigned char)*p))
            p++;
        if (p == n || p >= e || *p != ':') return -400;
        if (r->nheaders == HTTP_MAX_HEADERS) return -431;
        http_header *h = &r->headers[r->nheaders++];
        h->name = n;
        h->name_len = (size_t)(p - n);
        p++;
        while (p < e && (*p == ' ' || *p == '\t'))
            p++;
        const char *v = p, *ve = e;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        for (const char *c = v; c < ve; c++)
            if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
                return -400;
        h->value = v;
        h->value_len = (size_t)(ve - v);
    }
    return 0;
}

const char *http_header_get(const http_req *r, const char *name, size_t *len) {
    size_t nl = strlen(name);
    for (size_t i = 0; i < r->nheaders; i++) {
        const http_header *h = &r->headers[i];
        if (h->name_len == nl && strncasecmp(h->name, name, nl) == 0) {
            if (len) *len = h->value_len;
            return h->value;
        }
    }
    return NULL;
}

int http_header_has_token(const http_req *r, const char *name,
                          const char *token) {
    size_t tl = strlen(token), nl = strlen(name);
    /* Every header line of that name counts (Connection may repeat). */
    for (size_t i = 0; i < r->nheaders; i++) {
        const http_header *h = &r->headers[i];
        if (h->name_len != nl || strncasecmp(h->name, name, nl) != 0) continue;
        const char *p = h->value, *end = h->value + h->value_len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
                p++;
            const char *s = p;
            while (p < end && *p != ',')
                p++;
            const char *e = p;
            while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            if ((size_t)(e - s) == tl && strncasecmp(s, token, tl) == 0)
                return 1;
        }
    }
    return 0;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int http_query_arg(const http_req *r, const char *name, char *out, size_t cap) {
    if (r->path_len >= r->target_len) return -1;
    const char *p = r->target + r->path_len + 1;
    const char *end = r->target + r->target_len;
    size_t nl = strlen(name);
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        if ((size_t)(pe - p) >= nl && memcmp(p, name, nl) == 0 &&
            (p + nl == pe || p[nl] == '=')) {
            const char *v = p + nl + (p + nl < pe);
            size_t n = 0;
            while (v < pe) {
                int c = (unsigned char)*v++;
                if (c == '+') {
                    c = ' ';
                } else if (c == '%') {
                    int hi = v < pe ? hexval(v[0]) : -1;
                    int lo = v + 1 < pe ? hexval(v[1]) : -1;
                    if (hi < 0 || lo < 0) return -2;
                    c = hi << 4 | lo;
                    v += 2;
                }
                if (n + 1 >= cap) return -2;
                out[n++] = (char)c;
            }
            if (n >= cap) return -2; /* not even the NUL fits */
            out[n] = '\0';
            return (int)n;
        }
        p = amp ? amp + 1 : end;
    }
    return -1;
}

const char *http_reason(int status) {
    switch (status) {
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 414:
        return "URI Too Long";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Error";
    }
}

void http_refusal(buf_t *out, int status, const char *why, const char *extra) {
    buf_printf(out,
               "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
               "Content-Length: %zu\r\nConnection: close\r\n%s\r\n%s\n",
               status, http_reason(status), strlen(why) + 1, extra ? extra : "",
               why);
}

int http_forward_head(const http_req *r, buf_t *out, size_t max) {
    /* What lws reads for static files and the routes it serves. */
    static const char *const keep[] = {
        "Host",
        "If-Modified-Since",
        "If-None-Match",
        "Range",
        "If-Range",
        "Accept-Encoding",
        "Accept-Language",
        "Content-Length",
        "Content-Type",
        "Authorization",
        "Origin",
        "Cookie",
        "Referer",
        "User-Agent",
        "Accept",
    };
    size_t start = out->len;
    buf_printf(out, "%.*s %.*s HTTP/1.%d\r\n", (int)r->method_len, r->method,
               (int)r->target_len, r->target, r->minor);
    for (size_t k = 0; k < sizeof keep / sizeof *keep; k++) {
        size_t vl;
        const char *v = http_header_get(r, keep[k], &vl);
        if (v) buf_printf(out, "%s: %.*s\r\n", keep[k], (int)vl, v);
    }
    buf_puts(out, "Connection: close\r\n\r\n");
    if (out->len - start > max) {
        out->len = start;
        return -431;
    }
    return 0;
}
