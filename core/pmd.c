/* pmd.c -- see pmd.h. */
#include "pmd.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "alloc.h"

/* ---- the offer ---- */

static int is_tchar(unsigned char ch) {
    if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
        (ch >= 'A' && ch <= 'Z'))
        return 1;
    return ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

typedef struct scan {
    const char *s;
    size_t n, i;
} scan;

static void skip_ows(scan *sc) {
    while (sc->i < sc->n && (sc->s[sc->i] == ' ' || sc->s[sc->i] == '\t'))
        sc->i++;
}

/* A token at sc->i: its start and length (0: none there). */
static size_t take_token(scan *sc, const char **tok) {
    *tok = sc->s + sc->i;
    size_t start = sc->i;
    while (sc->i < sc->n && is_tchar((unsigned char)sc->s[sc->i]))
        sc->i++;
    return sc->i - start;
}

/* A parameter value: a token, or a quoted string whose content is a token
 * (RFC 6455 9.1), copied unquoted into out. Returns its length, or -1 when
 * malformed. */
static int take_value(scan *sc, char *out, size_t cap) {
    size_t len = 0;
    if (sc->i < sc->n && sc->s[sc->i] == '"') {
        sc->i++;
        while (sc->i < sc->n && sc->s[sc->i] != '"') {
            char ch = sc->s[sc->i++];
            if (ch == '\\') {
                if (sc->i == sc->n) return -1;
                ch = sc->s[sc->i++];
            }
            if (!is_tchar((unsigned char)ch) || len + 1 >= cap) return -1;
            out[len++] = ch;
        }
        if (sc->i == sc->n) return -1;
        sc->i++; /* the closing quote */
    } else {
        const char *tok;
        len = take_token(sc, &tok);
        if (len + 1 > cap) return -1;
        memcpy(out, tok, len);
    }
    if (!len) return -1;
    out[len] = '\0';
    return (int)len;
}

static int name_is(const char *tok, size_t len, const char *name) {
    return strlen(name) == len && strncasecmp(tok, name, len) == 0;
}

/* Window bits as RFC 7692 writes them: 8 to 15, no leading zero. */
static int window_bits(const char *v) {
    if (v[0] == '1' && v[1] >= '0' && v[1] <= '5' && !v[2])
        return 10 + (v[1] - '0');
    if ((v[0] == '8' || v[0] == '9') && !v[1]) return v[0] - '0';
    return -1;
}

enum {
    SEEN_SERVER_NO_CONTEXT = 1,
    SEEN_CLIENT_NO_CONTEXT = 2,
    SEEN_SERVER_BITS = 4,
    SEEN_CLIENT_BITS = 8,
};

/* One extension's parameters, from after its name to the comma or the
 * end. Returns 1 when the offer is one we take (with *flags), 0 when we
 * decline it, -1 when the syntax is broken (the header is not read
 * further: where the next offer starts is anyone's guess). */
static int read_params(scan *sc, int deflate, int *flags) {
    int seen = 0, ok = deflate;
    *flags = PMD_ON;
    for (;;) {
        skip_ows(sc);
        if (sc->i == sc->n || sc->s[sc->i] == ',') return ok;
        if (sc->s[sc->i] != ';') return -1;
        sc->i++;
        skip_ows(sc);
        const char *name;
        size_t nl = take_token(sc, &name);
        if (!nl) return -1;
        skip_ows(sc);
        char val[16];
        int has_val = 0;
        if (sc->i < sc->n && sc->s[sc->i] == '=') {
            sc->i++;
            skip_ows(sc);
            if (take_value(sc, val, sizeof val) < 0) return -1;
            has_val = 1;
        }
        if (!ok) continue; /* declined already: only the syntax matters */
        int bit;
        if (name_is(name, nl, "server_no_context_takeover")) {
            bit = SEEN_SERVER_NO_CONTEXT;
            if (has_val) ok = 0;
        } else if (name_is(name, nl, "client_no_context_takeover")) {
            bit = SEEN_CLIENT_NO_CONTEXT;
            if (has_val) ok = 0;
            *flags |= PMD_CLIENT_NO_CONTEXT;
        } else if (name_is(name, nl, "server_max_window_bits")) {
            /* Our messages are deflated once for everyone, with a 32 KiB
             * window: a client that needs a smaller one is declined. */
            bit = SEEN_SERVER_BITS;
            if (!has_val || window_bits(val) != 15) ok = 0;
        } else if (name_is(name, nl, "client_max_window_bits")) {
            /* Any window the client picks fits our inflater's. */
            bit = SEEN_CLIENT_BITS;
            if (has_val && window_bits(val) < 0) ok = 0;
        } else {
            bit = 0;
            ok = 0; /* a parameter we do not know */
        }
        if (seen & bit) ok = 0; /* the same parameter twice */
        seen |= bit;
    }
}

int pmd_negotiate(const char *offer, size_t len, char *resp, size_t cap) {
    scan sc = {offer, len, 0};
    for (;;) {
        skip_ows(&sc);
        if (sc.i == sc.n) return 0;
        if (sc.s[sc.i] == ',') { /* an empty element of the list */
            sc.i++;
            continue;
        }
        const char *name;
        size_t nl = take_token(&sc, &name);
        if (!nl) return 0;
        int flags;
        int r =
            read_params(&sc, name_is(name, nl, "permessage-deflate"), &flags);
        if (r < 0) return 0;
        if (r > 0) {
            snprintf(
                resp, cap, "permessage-deflate; server_no_context_takeover%s",
                flags & PMD_CLIENT_NO_CONTEXT ? "; client_no_context_takeover"
                                              : "");
            return flags;
        }
        if (sc.i < sc.n) sc.i++; /* the comma */
    }
}

/* ---- inflating ---- */

struct pmd_inflater {
    z_stream s;
    uint64_t total, limit;
    uint8_t fin, tail_fed, broken;
};

pmd_inflater *pmd_inflater_create(void) {
    pmd_inflater *z = xcalloc(1, sizeof *z);
    if (inflateInit2(&z->s, -15) != Z_OK) abort();
    return z;
}

void pmd_inflater_destroy(pmd_inflater *z) {
    if (!z) return;
    inflateEnd(&z->s);
    free(z);
}

void pmd_inflate_begin(pmd_inflater *z, uint64_t limit, int no_context) {
    if (no_context || z->broken) inflateReset(&z->s);
    z->broken = 0;
    z->total = 0;
    z->limit = limit;
    z->s.avail_in = 0;
    z->fin = z->tail_fed = 0;
}

void pmd_inflate_input(pmd_inflater *z, const unsigned char *in, size_t n,
                       int fin) {
    z->s.next_in = (unsigned char *)in;
    z->s.avail_in = (uInt)n;
    z->fin = (uint8_t)fin;
    z->tail_fed = 0;
}

long pmd_inflate_next(pmd_inflater *z, unsigned char *out, size_t cap) {
    /* The empty stored block the sender stripped (RFC 7692 7.2.2). */
    static const unsigned char tail[4] = {0x00, 0x00, 0xff, 0xff};
    if (z->broken) return PMD_ERR_DATA;
    if (cap > LONG_MAX / 2) cap = LONG_MAX / 2;
    if (cap > UINT_MAX) cap = UINT_MAX;
    for (;;) {
        if (z->s.avail_in == 0) {
            if (!z->fin || z->tail_fed) return 0;
            z->s.next_in = (unsigned char *)tail;
            z->s.avail_in = sizeof tail;
            z->tail_fed = 1;
        }
        uInt before = z->s.avail_in;
        z->s.next_out = out;
        z->s.avail_out = (uInt)cap;
        int rc = inflate(&z->s, Z_SYNC_FLUSH);
        size_t got = cap - z->s.avail_out;
        if (rc == Z_STREAM_END) {
            /* A final block (BFINAL): the message needs no tail, and
             * what follows starts a new stream. */
            inflateReset(&z->s);
            if (z->tail_fed) z->s.avail_in = 0;
            if (!z->s.avail_in) z->tail_fed = 1;
        } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
            z->broken = 1;
            return PMD_ERR_DATA;
        }
        z->total += got;
        if (z->total > z->limit) {
            z->broken = 1;
            return PMD_ERR_TOO_BIG;
        }
        if (got) return (long)got;
        if (z->s.avail_in == before && rc != Z_STREAM_END) {
            /* Input left, room left, and no progress. */
            z->broken = 1;
            return PMD_ERR_DATA;
        }
    }
}

/* ---- deflating ---- */

struct pmd_deflater {
    z_stream s;
};

pmd_deflater *pmd_deflater_create(void) {
    pmd_deflater *d = xcalloc(1, sizeof *d);
    if (deflateInit2(&d->s, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    return d;
}

void pmd_deflater_destroy(pmd_deflater *d) {
    if (!d) return;
    deflateEnd(&d->s);
    free(d);
}

size_t pmd_deflate(pmd_deflater *d, const unsigned char *in, size_t n,
                   unsigned char *out, size_t cap) {
    if (!n || n > UINT_MAX || cap > UINT_MAX || cap < 5) return 0;
    deflateReset(&d->s); /* server_no_context_takeover */
    d->s.next_in = (unsigned char *)in;
    d->s.avail_in = (uInt)n;
    d->s.next_out = out;
    d->s.avail_out = (uInt)cap;
    int rc = deflate(&d->s, Z_SYNC_FLUSH);
    /* No room left: there may be more to come, and it was no gain. */
    if (rc != Z_OK || d->s.avail_in || !d->s.avail_out) return 0;
    size_t got = cap - d->s.avail_out;
    if (got < 4 || memcmp(out + got - 4, "\x00\x00\xff\xff", 4) != 0) return 0;
    got -= 4;
    return got < n ? got : 0;
}
