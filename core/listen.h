/* listen.h -- listening sockets, bound to exactly the address given.
 *
 * A host name or address is resolved (numeric addresses without a lookup)
 * and every address it names is bound: "127.0.0.1" binds loopback only,
 * "localhost" its IPv4 and IPv6 loopback, "0.0.0.0" every IPv4 interface,
 * "::" every interface, IPv4 included. Nothing is logged as listening
 * unless every bind and listen succeeded; failures come back as one line
 * a person can act on ("port 8080 is in use on 127.0.0.1"). */
#ifndef LUAHUB_LISTEN_H
#define LUAHUB_LISTEN_H

#include <stddef.h>

#define LISTEN_MAX_SOCKETS 8

typedef struct listen_set {
    int fds[LISTEN_MAX_SOCKETS];
    size_t count;
    int port;            /* the port bound (the kernel's pick for 0) */
    char addresses[256]; /* "127.0.0.1:8080,[::1]:8080", for the log */
} listen_set;

/* flags for listen_open: SO_REUSEPORT, so that several processes listen
 * on one port and the kernel spreads the connections (each must ask). */
#define LISTEN_REUSE_PORT 1

/* Binds and listens (non-blocking, close-on-exec, SO_REUSEADDR) on every
 * address of host at port. Returns 0, or a negative errno (-EADDRINUSE,
 * -EADDRNOTAVAIL, ...) with every socket closed and the reason in err. */
int listen_open(listen_set *ls, const char *host, int port, int flags,
                char *err, size_t errlen);
void listen_close(listen_set *ls);

#endif
