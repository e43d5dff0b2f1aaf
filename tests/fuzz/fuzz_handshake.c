/* fuzz_handshake.c -- libFuzzer target: a request head as a stranger
 * sends it, before any limit or identity applies. The head reader is fed
 * the input in chunks of random sizes (as reads would deliver it) and must
 * find the same end as in one piece; a whole head goes through everything
 * the front door reads from it (the parser, query arguments, header
 * tokens, the head handed to libwebsockets, the origin check, the client
 * a trusted proxy names). The input is also tried as a --trusted-proxies
 * and an --allowed-origins value. No crash, no leak, no undefined
 * behaviour under ASan+UBSan.
 *   make fuzz            (tests/fuzz/run.sh; clang with libFuzzer) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "http.h"
#include "netaddr.h"
#include "origin.h"
#include "pmd.h"

/* The chunk sizes come from a generator seeded by the input, so that the
 * input's bytes are all head. */
static uint64_t next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* The head's end read chunk by chunk: the first answer that is not 0. */
static int chunked(const char *d, size_t size, uint64_t seed) {
    size_t len = 0, scanned = 0;
    while (len < size) {
        size_t step = 1 + next(&seed) % 97;
        len = len + step > size ? size : len + step;
        int rc = http_head_complete(d, len, &scanned);
        if (rc) return rc;
    }
    return 0;
}

static void whole_head(const char *d, size_t hl) {
    http_req r;
    if (http_parse(&r, d, hl) < 0) return;
    char out[64];
    http_query_arg(&r, "user", out, sizeof out);
    http_query_arg(&r, "token", out, 1);
    http_header_has_token(&r, "Connection", "upgrade");
    http_header_has_token(&r, "Sec-WebSocket-Protocol", "luahub");

    buf_t b;
    buf_init(&b, 0);
    if (http_forward_head(&r, &b, 4000) == 0 && b.len > 4000) __builtin_trap();
    buf_close(&b);

    size_t ol = 0, hl2 = 0;
    const char *o = http_header_get(&r, "Origin", &ol);
    const char *h = http_header_get(&r, "Host", &hl2);
    origin_allowed("https://chat.example.com,http://localhost:3000", o, ol, h,
                   hl2);

    /* Every extension offer, as the upgrade reads them. */
    for (size_t i = 0; i < r.nheaders; i++) {
        char resp[PMD_RESPONSE_MAX];
        if (r.headers[i].name_len == 24 &&
            strncasecmp(r.headers[i].name, "Sec-WebSocket-Extensions", 24) ==
                0 &&
            pmd_negotiate(r.headers[i].value, r.headers[i].value_len, resp,
                          sizeof resp) &&
            strncmp(resp, "permessage-deflate; server_no_context_takeover",
                    46) != 0)
            __builtin_trap();
    }

    static netaddr_list trusted;
    if (!trusted.n) {
        char err[128];
        if (netaddr_list_parse("127.0.0.0/8,10.0.0.0/8,::1/128,fd00::/8",
                               &trusted, err, sizeof err) < 0)
            __builtin_trap();
    }
    netaddr peer, client;
    netaddr_parse("10.0.0.1", 8, &peer);
    client = peer;
    if (!netaddr_forwarded_client(&r, &trusted, &client) &&
        !netaddr_equal(&client, &peer))
        __builtin_trap();
    char text[NETADDR_TEXT];
    netaddr_format(&client, text);
    if (strlen(text) >= NETADDR_TEXT) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* An exact copy, so that ASan sees a read past the bytes received. */
    char *d = malloc(size ? size : 1);
    memcpy(d, data, size);
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < size; i++)
        seed = (seed ^ data[i]) * 0x100000001b3ULL;
    seed |= 1;

    size_t scanned = 0;
    int whole = size ? http_head_complete(d, size, &scanned) : 0;
    if (size && chunked(d, size, seed) != whole) __builtin_trap();
    if (whole > 0) whole_head(d, (size_t)whole);

    /* The same bytes as a flag's value. */
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    netaddr_list l;
    char err[256];
    if (netaddr_list_parse(s, &l, err, sizeof err) == 0) {
        netaddr a;
        if (netaddr_parse(s, strcspn(s, ",/"), &a) == 0)
            netaddr_list_match(&l, &a);
        netaddr_list_free(&l);
    }
    if (origin_list_check(s, err, sizeof err) == 0)
        origin_allowed(s, "https://a.example", 17, "b.example", 9);
    free(s);
    free(d);
    return 0;
}
