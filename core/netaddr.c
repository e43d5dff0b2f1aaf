/* netaddr.c -- see netaddr.h. */
#include "netaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "alloc.h"
#include "http.h"

static const uint8_t v4_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static void set_v4(netaddr *out, const void *four) {
    memcpy(out->b, v4_prefix, 12);
    memcpy(out->b + 12, four, 4);
}

int netaddr_parse(const char *s, size_t n, netaddr *out) {
    char tmp[NETADDR_TEXT];
    if (n == 0 || n >= sizeof tmp) return -EINVAL;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    unsigned char b[16];
    if (inet_pton(AF_INET, tmp, b) == 1) {
        set_v4(out, b);
        return 0;
    }
    if (inet_pton(AF_INET6, tmp, b) == 1) {
        memcpy(out->b, b, 16);
        return 0;
    }
    return -EINVAL;
}

int netaddr_from_sockaddr(const struct sockaddr *sa, netaddr *out) {
    if (sa->sa_family == AF_INET) {
        set_v4(out, &((const struct sockaddr_in *)sa)->sin_addr);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(out->b, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return 0;
    }
    return -EAFNOSUPPORT;
}

int netaddr_is_v4(const netaddr *a) {
    return memcmp(a->b, v4_prefix, 12) == 0;
}

int netaddr_equal(const netaddr *a, const netaddr *b) {
    return memcmp(a->b, b->b, 16) == 0;
}

const char *netaddr_format(const netaddr *a, char *out) {
    if (netaddr_is_v4(a))
        inet_ntop(AF_INET, a->b + 12, out, NETADDR_TEXT);
    else
        inet_ntop(AF_INET6, a->b, out, NETADDR_TEXT);
    return out;
}

static int is_ows(char c) {
    return c == ' ' || c == '\t';
}

static void trim(const char **s, size_t *n) {
    while (*n && is_ows(**s))
        (*s)++, (*n)--;
    while (*n && is_ows((*s)[*n - 1]))
        (*n)--;
}

/* Keeps the first bits bits of a. */
static void mask_to(netaddr *a, unsigned bits) {
    for (unsigned i = 0; i < 16; i++) {
        unsigned keep = bits >= 8 * (i + 1) ? 8
                        : bits > 8 * i      ? bits - 8 * i
                                            : 0;
        a->b[i] &= (uint8_t)(0xff00u >> keep);
    }
}

/* One entry of a CIDR list: an address, with an optional /prefix. */
static int cidr_parse(const char *s, size_t n, netaddr_cidr *out) {
    const char *slash = memchr(s, '/', n);
    size_t an = slash ? (size_t)(slash - s) : n;
    if (netaddr_parse(s, an, &out->net) < 0) return -1;
    unsigned max = netaddr_is_v4(&out->net) && !memchr(s, ':', an) ? 32 : 128;
    unsigned bits = max;
    if (slash) {
        const char *p = slash + 1, *end = s + n;
        if (p == end || end - p > 3) return -1;
        bits = 0;
        for (; p < end; p++) {
            if (*p < '0' || *p > '9') return -1;
            bits = bits * 10 + (unsigned)(*p - '0');
        }
        if (bits > max) return -1;
    }
    out->bits = max == 32 ? bits + 96 : bits;
    mask_to(&out->net, out->bits);
    return 0;
}

int netaddr_list_parse(const char *s, netaddr_list *out, char *err,
                       size_t errlen) {
    out->v = NULL;
    out->n = 0;
    size_t cap = 0;
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *e = comma ? comma : p + strlen(p);
        const char *v = p;
        size_t n = (size_t)(e - p);
        trim(&v, &n);
        netaddr_cidr c;
        if (n == 0 || cidr_parse(v, n, &c) < 0) {
            if (n == 0)
                snprintf(err, errlen, "an empty entry in '%s'", s);
            else
                snprintf(err, errlen,
                         "'%.*s' is not an address or network (like "
                         "10.0.0.0/8 or ::1/128)",
                         (int)n, v);
            netaddr_list_free(out);
            return -EINVAL;
        }
        if (out->n == cap) {
            cap = cap ? cap * 2 : 4;
            out->v = xrealloc(out->v, cap * sizeof *out->v);
        }
        out->v[out->n++] = c;
        if (!comma) return 0;
        p = comma + 1;
    }
}

void netaddr_list_free(netaddr_list *l) {
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int cidr_match(const netaddr_cidr *c, const netaddr *a) {
    unsigned full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->net.b, a->b, full) != 0) return 0;
    if (!rest) return 1;
    uint8_t m = (uint8_t)(0xff00u >> rest);
    return (a->b[full] & m) == c->net.b[full];
}

int netaddr_list_match(const netaddr_list *l, const netaddr *a) {
    for (size_t i = 0; i < l->n; i++)
        if (cidr_match(&l->v[i], a)) return 1;
    return 0;
}

/* A host as proxies write it: "192.0.2.1", "192.0.2.1:4711",
 * "2001:db8::1", "[2001:db8::1]" or "[2001:db8::1]:4711". */
static int host_parse(const char *s, size_t n, netaddr *out) {
    trim(&s, &n);
    const char *port = NULL, *end = s + n;
    if (n && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close) return -1;
        if (close + 1 < end) {
            if (close[1] != ':') return -1;
            port = close + 2;
        }
        if (!memchr(s + 1, ':', (size_t)(close - s - 1))) return -1;
        if (netaddr_parse(s + 1, (size_t)(close - s - 1), out) < 0) return -1;
    } else {
        const char *colon = memchr(s, ':', n);
        if (colon && !memchr(colon + 1, ':', (size_t)(end - colon - 1))) {
            /* One colon: IPv4 with a port. */
            port = colon + 1;
            n = (size_t)(colon - s);
            if (!memchr(s, '.', n)) return -1;
        }
        if (netaddr_parse(s, n, out) < 0) return -1;
    }
    if (port) {
        if (port == end || end - port > 5) return -1;
        for (const char *p = port; p < end; p++)
            if (*p < '0' || *p > '9') return -1;
    }
    return 0;
}

/* The walk over a forwarding header's entries, left to right: res is the
 * client the entries so far name (see netaddr.h). */
typedef struct walk {
    const netaddr_list *trusted;
    netaddr res;
    int have;
} walk;

static void walk_entry(walk *w, const char *s, size_t n) {
    netaddr a;
    if (host_parse(s, n, &a) < 0) {
        w->have = 0; /* the chain is broken here */
        return;
    }
    if (!w->have || !netaddr_list_match(w->trusted, &a)) {
        w->res = a;
        w->have = 1;
    }
}

static void walk_xff(walk *w, const char *v, size_t n) {
    const char *p = v, *end = v + n;
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;
        const char *s = p;
        size_t len = (size_t)(e - p);
        trim(&s, &len);
        if (len) walk_entry(w, s, len);
        if (!comma) return;
        p = comma + 1;
    }
}

static int is_token(char c) {
    return c > 0x20 && c < 0x7f && !strchr("\"(),/:;<=>?@[\\]{}", c);
}

/* Reads a Forwarded value at p, a token or a quoted string, into out
 * (cap bytes; NULL: skipped). Returns where it ends; *len is its length,
 * and *bad is set when it does not fit or a quote is not closed. */
static const char *read_value(const char *p, const char *end, char *out,
                              size_t cap, size_t *len, int *bad) {
    size_t k = 0;
    int quoted = p < end && *p == '"';
    if (quoted) p++;
    while (p < end &&
           (quoted ? *p != '"' : *p != ';' && *p != ',' && !is_ows(*p))) {
        if (quoted && *p == '\\' && p + 1 < end) p++;
        if (out && k < cap)
            out[k] = *p;
        else if (out)
            *bad = 1;
        k++;
        p++;
    }
    if (quoted) {
        if (p == end)
            *bad = 1;
        else
            p++;
    }
    *len = k;
    return p;
}

/* Forwarded: elements separated by commas, each pairs name=value
 * separated by semicolons, a value a token or a quoted string (RFC
 * 7239 section 4). Each element's for= is one entry; an element without
 * one, or that does not parse, breaks the chain. */
static void walk_forwarded(walk *w, const char *v, size_t n) {
    const char *p = v, *end = v + n;
    while (p < end) {
        char val[NETADDR_TEXT + 16] = "";
        size_t vl = 0, skipped;
        int got = 0, bad = 0, any = 0;
        while (p < end && *p != ',') {
            while (p < end && (is_ows(*p) || *p == ';'))
                p++;
            if (p == end || *p == ',') break;
            any = 1;
            const char *name = p;
            while (p < end && is_token(*p))
                p++;
            size_t nl = (size_t)(p - name);
            if (p < end && *p == '=' && nl) {
                int is_for =
                    !got && nl == 3 && strncasecmp(name, "for", 3) == 0;
                p = read_value(p + 1, end, is_for ? val : NULL, sizeof val,
                               is_for ? &vl : &skipped, &bad);
                got |= is_for;
                while (p < end && is_ows(*p))
                    p++;
            } else {
                bad = 1;
            }
            if (p < end && *p != ';' && *p != ',') {
                bad = 1; /* not name=value: skip to the next pair */
                while (p < end && *p != ',' && *p != ';')
                    p++;
            }
        }
        if (any) {
            if (got && !bad)
                walk_entry(w, val, vl);
            else
                w->have = 0;
        }
        if (p < end) p++; /* the comma */
    }
}

int netaddr_forwarded_client(const http_req *r, const netaddr_list *trusted,
                             netaddr *client) {
    walk w = {trusted, {{0}}, 0};
    int xff = http_header_get(r, "X-Forwarded-For", NULL) != NULL;
    const char *want = xff ? "X-Forwarded-For" : "Forwarded";
    size_t wl = strlen(want);
    int seen = 0;
    /* Every line of the header, in order, as one list. */
    for (size_t i = 0; i < r->nheaders; i++) {
        const http_header *h = &r->headers[i];
        if (h->name_len != wl || strncasecmp(h->name, want, wl) != 0) continue;
        seen = 1;
        if (xff)
            walk_xff(&w, h->value, h->value_len);
        else
            walk_forwarded(&w, h->value, h->value_len);
    }
    if (!seen || !w.have) return 0;
    *client = w.res;
    return 1;
}
