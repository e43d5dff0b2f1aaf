/* netaddr.h -- client addresses: parsed, matched against CIDR lists, and
 * read from a trusted proxy's X-Forwarded-For or Forwarded header.
 *
 * Pure: no sockets. Every address is kept as 16 bytes, an IPv4 address in
 * its IPv4-mapped IPv6 form (::ffff:a.b.c.d), so that a client reaching a
 * dual-stack socket as ::ffff:192.0.2.1 is the same client as 192.0.2.1,
 * and one comparison serves both families.
 *
 * Which client a request comes from. A connection's peer is the kernel's
 * address for it. Only when the peer is a trusted proxy (--trusted-proxies)
 * does a forwarding header name the client: X-Forwarded-For when the
 * request has one, else Forwarded's for= (RFC 7239). The header is read
 * right to left, as proxies append to it: the client is the rightmost
 * address that is not itself a trusted proxy (an address a client wrote
 * further left has no say), or the leftmost when every one is trusted. An
 * entry that is not an address ("unknown", an obfuscated name, garbage)
 * ends the walk: the client is then the address right of it, or the peer
 * itself. From anyone else these headers are ignored. */
#ifndef LUAHUB_NETADDR_H
#define LUAHUB_NETADDR_H

#include <stddef.h>
#include <stdint.h>

struct sockaddr;
struct http_req;

/* The longest text netaddr_format writes, with its NUL. */
#define NETADDR_TEXT 46

typedef struct netaddr {
    uint8_t b[16]; /* network order; IPv4 as ::ffff:a.b.c.d */
} netaddr;

/* A network: the addresses whose first bits bits equal net's (IPv4
 * prefixes count the 96 bits of the mapped prefix). */
typedef struct netaddr_cidr {
    netaddr net;
    unsigned bits; /* 0..128 */
} netaddr_cidr;

typedef struct netaddr_list {
    netaddr_cidr *v;
    size_t n;
} netaddr_list;

/* Parses an IPv4 (dotted quad) or IPv6 address, s[0..n) (no brackets, no
 * port, no zone). Returns 0, or -EINVAL when it is not one. */
int netaddr_parse(const char *s, size_t n, netaddr *out);
/* The address of an AF_INET or AF_INET6 socket address. Returns 0, or
 * -EAFNOSUPPORT for another family. */
int netaddr_from_sockaddr(const struct sockaddr *sa, netaddr *out);
/* Writes "192.0.2.1" or "2001:db8::1" into out (NETADDR_TEXT bytes). */
const char *netaddr_format(const netaddr *a, char *out);
int netaddr_equal(const netaddr *a, const netaddr *b);
int netaddr_is_v4(const netaddr *a);

/* Parses a comma-separated list of addresses and networks
 * ("127.0.0.1/32,10.0.0.0/8, ::1/128"; an address alone is a network of
 * one). Bits past the prefix are ignored (10.1.2.3/8 is 10.0.0.0/8).
 * Returns 0 with the list filled (free it with netaddr_list_free), or
 * -EINVAL with the list empty and, in err, which entry is wrong. */
int netaddr_list_parse(const char *s, netaddr_list *out, char *err,
                       size_t errlen);
void netaddr_list_free(netaddr_list *l);
/* Is a in one of l's networks? */
int netaddr_list_match(const netaddr_list *l, const netaddr *a);

/* The client a request from a trusted proxy names (see the top of this
 * file): client holds the peer's address on entry, and the client's on
 * return. Returns 1 when a forwarding header named the client, 0 when the
 * request had none or it named nobody (client unchanged). The caller
 * checks that the peer is trusted. */
int netaddr_forwarded_client(const struct http_req *r,
                             const netaddr_list *trusted, netaddr *client);

#endif
