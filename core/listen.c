/* listen.c -- see listen.h. */
#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BACKLOG 4096

static void describe(const struct sockaddr *sa, int port, char *out,
                     size_t cap) {
    char a[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, a,
                  sizeof a);
    else
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, a,
                  sizeof a);
    snprintf(out, cap, sa->sa_family == AF_INET6 ? "[%s]:%d" : "%s:%d", a,
             port);
}

static void set_port(struct sockaddr *sa, int port) {
    if (sa->sa_family == AF_INET)
        ((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)port);
}

static int bound_port(int fd) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) return -1;
    return ss.ss_family == AF_INET
               ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
               : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* One socket bound to sa. Returns its fd, or a negative errno with the
 * reason in err. */
static int open_one(struct sockaddr *sa, socklen_t sl, int port, int flags,
                    const char *host, char *err, size_t errlen) {
    char where[80], addr[INET6_ADDRSTRLEN + 2];
    describe(sa, port, where, sizeof where);
    /* The address alone: "[::1]" from "[::1]:8080". */
    snprintf(addr, sizeof addr, "%.*s", (int)(strrchr(where, ':') - where),
             where);
    int fd =
        socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot listen on %s: %s", where, strerror(e));
        return -e;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (flags & LISTEN_REUSE_PORT)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (sa->sa_family == AF_INET6) {
        /* "::" means every interface, IPv4 included; any other IPv6
         * address means that address alone. */
        const struct in6_addr *a = &((struct sockaddr_in6 *)sa)->sin6_addr;
        int only = !IN6_IS_ADDR_UNSPECIFIED(a);
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &only, sizeof only);
    }
    /* Frames are batched here; the kernel must not hold them back. Set
     * on the listening socket, it is every accepted socket's from the
     * start (Linux copies it), which saves a call per connection. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (bind(fd, sa, sl) < 0) {
        int e = errno;
        if (e == EADDRINUSE)
            snprintf(err, errlen, "port %d is in use on %s", port, addr);
        else if (e == EADDRNOTAVAIL)
            snprintf(err, errlen,
                     "--host %s: %s is not an address of this machine", host,
                     addr);
        else if (e == EACCES)
            snprintf(err, errlen,
                     "port %d needs privileges on %s (try one above 1023)",
                     port, addr);
        else
            snprintf(err, errlen, "cannot bind %s: %s", where, strerror(e));
        close(fd);
        return -e;
    }
    if (listen(fd, BACKLOG) < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot listen on %s: %s", where, strerror(e));
        close(fd);
        return -e;
    }
    return fd;
}

int listen_open(listen_set *ls, const char *host, int port, int flags,
                char *err, size_t errlen) {
    memset(ls, 0, sizeof *ls);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%d", port);
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "--host %s: cannot resolve it (%s)", host,
                 gai_strerror(rc));
        return -EADDRNOTAVAIL;
    }
    ls->port = port;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
        if (ls->count == LISTEN_MAX_SOCKETS) break;
        /* A name may list one address twice (one per protocol). */
        int dup = 0;
        for (struct addrinfo *b = res; b != ai; b = b->ai_next)
            if (b->ai_addrlen == ai->ai_addrlen &&
                memcmp(b->ai_addr, ai->ai_addr, ai->ai_addrlen) == 0)
                dup = 1;
        if (dup) continue;
        /* Port 0: the kernel picks for the first address, and the others
         * get the same port. */
        set_port(ai->ai_addr, ls->port);
        int fd = open_one(ai->ai_addr, ai->ai_addrlen, ls->port, flags, host,
                          err, errlen);
        if (fd < 0) {
            freeaddrinfo(res);
            listen_close(ls);
            return fd;
        }
        ls->fds[ls->count++] = fd;
        if (ls->port == 0) ls->port = bound_port(fd);
        size_t used = strlen(ls->addresses);
        if (used) ls->addresses[used++] = ',';
        describe(ai->ai_addr, ls->port, ls->addresses + used,
                 sizeof ls->addresses - used);
    }
    freeaddrinfo(res);
    if (!ls->count) {
        snprintf(err, errlen, "--host %s: no IPv4 or IPv6 address", host);
        return -EADDRNOTAVAIL;
    }
    return 0;
}

void listen_close(listen_set *ls) {
    for (size_t i = 0; i < ls->count; i++)
        close(ls->fds[i]);
    ls->count = 0;
}
