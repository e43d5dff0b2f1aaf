/* transport.c -- see transport.h. */
#define _GNU_SOURCE /* accept4 */
#include "transport.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "codes.h"
#include "hub.h"
#include "log.h"
#include "transport_int.h"

static void on_io(tconn *c, int status, int events) {
    if (status < 0) {
        transport__teardown(c, CLOSE_ABNORMAL);
        return;
    }
    switch (c->state) {
    case T_HANDSHAKE:
        transport__head_read(c);
        return;
    case T_LINGER:
        transport__drop_input(c, LINGER_BYTES);
        return;
    case T_CLOSING:
        transport__drop_input(c, 0);
        return;
    case T_BODY:
        transport__api_read(c);
        return;
    case T_API:
        /* What more comes is dropped (not counted: head_len is the
         * answer's length in T_ANSWER; RELAY_MS bounds the time); the
         * client leaving cancels the request. */
        transport__drop_input(c, 0);
        return;
    case T_ANSWER:
        if (events & UV_READABLE) transport__drop_input(c, 0);
        if ((events & UV_WRITABLE) && c->state == T_ANSWER)
            transport__api_write(c);
        return;
    case T_RELAY:
        if (events & UV_READABLE) transport__drop_input(c, LINGER_BYTES);
        if ((events & UV_WRITABLE) && c->state == T_RELAY)
            transport__relay_pump(c);
        return;
    case T_OPEN:
        if ((events & UV_WRITABLE) && transport__flush(c) < 0) {
            transport__teardown(c, CLOSE_ABNORMAL);
            return;
        }
        if ((events & UV_READABLE) && c->state == T_OPEN)
            transport__ws_read(c);
        else if ((events & UV_READABLE) && c->state == T_CLOSING)
            transport__drop_input(c, 0);
        return;
    default:
        return;
    }
}

/* The client sockets with events, as libuv's uv_poll would report them:
 * an error fails the connection (status < 0), a hang-up reads as what is
 * polled for (the read or write then finds the end), and only what is
 * polled for is passed on. With a ring, the open plain WebSocket
 * connections that are readable are read in batches, after any write
 * their event asked for, each batch in one system call. */
static void on_epoll(uv_poll_t *h, int status, int events) {
    transport_t *t = h->data;
    struct epoll_event evs[EPOLL_BATCH];
    if (status < 0) return;
    int n = epoll_wait(t->epfd, evs, EPOLL_BATCH, 0);
    for (int i = 0; i < n; i++) {
        tconn *c = evs[i].data.ptr;
        uint32_t e = evs[i].events;
        if (c->state == T_DEAD) continue; /* torn down by an event before */
        if (e & EPOLLERR) {
            on_io(c, UV_EBADF, 0);
            continue;
        }
        if (e & EPOLLHUP) e |= EPOLLIN | EPOLLOUT;
        int ev = (((e & EPOLLIN) ? UV_READABLE : 0) |
                  ((e & EPOLLOUT) ? UV_WRITABLE : 0)) &
                 c->polling;
        if (t->ring && c->state == T_OPEN && !c->tls && (ev & UV_READABLE)) {
            if (ev & UV_WRITABLE) on_io(c, 0, UV_WRITABLE);
            if (c->state == T_OPEN)
                transport__ws_read_later(c);
            else if (c->state == T_CLOSING)
                transport__drop_input(c, 0);
            continue;
        }
        if (ev) on_io(c, 0, ev);
    }
    if (t->ring) transport__ws_read_batch(t);
}

/* Refuses c for being over --max-conns (503): the server's state, not
 * the client's, so logged once a minute in all. Returns 1 when refused. */
static int over_limit(transport_t *t, tconn *c) {
    long max = t->cfg->max_conns;
    if (max <= 0 || t->nconns <= (size_t)max) return 0;
    char why[64], a[NETADDR_TEXT];
    snprintf(why, sizeof why, "over the limit of %ld connections", max);
    int64_t now = clock_now_ms();
    if (!t->full_logged_at || now - t->full_logged_at >= LIMIT_LOG_MS) {
        log_warn("http",
                 "refused 503 ip=%s: %s (--max-conns; logged once a minute; "
                 "%u not logged since the last line)",
                 netaddr_format(&c->addr, a), why, t->full_unlogged);
        t->full_logged_at = now;
        t->full_unlogged = 0;
    } else {
        t->full_unlogged++;
    }
    transport__answer(c, 503, why, NULL);
    return 1;
}

static void accept_one(transport_t *t, int fd, const netaddr *peer) {
    tconn *c = xcalloc(1, sizeof *c);
    c->t = t;
    c->fd = fd;
    c->state = T_HANDSHAKE;
    if (t->tls && !(c->tls = tls_conn_new(t->tls, fd))) {
        close(fd);
        free(c);
        return;
    }
    if (transport__poll_set(c, UV_READABLE) < 0) {
        tls_conn_free(c->tls);
        close(fd);
        free(c);
        return;
    }
    transport__list_push(&t->handshakes, c, t->handshake_ms);
    /* Counted from here to the close. A trusted proxy's connection is
     * counted under the proxy until its head names the client (gate.c),
     * and only then held to the per-address limit. */
    uint32_t n = transport__count(c, peer);
    c->unsure = netaddr_list_match(&t->proxies, peer);
    if (t->stopping)
        transport__refuse(c, 503, "server shutting down", NULL);
    else if (!over_limit(t, c) && !c->unsure)
        transport__over_ip_limit(c, n);
}

/* Out of descriptors: the pending connection would wake us up again and
 * again. Spend the reserve descriptor to accept it and answer 503. */
static void refuse_no_fd(transport_t *t, int lfd) {
    static const char resp[] =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
        "Content-Length: 26\r\nConnection: close\r\n\r\n"
        "out of file descriptors\r\n\r\n";
    netaddr peer, *ip = NULL;
    if (t->reserve_fd >= 0) {
        close(t->reserve_fd);
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sl,
                         SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd >= 0) {
            (void)!send(fd, resp, sizeof resp - 1, MSG_NOSIGNAL);
            close(fd);
            if (netaddr_from_sockaddr((struct sockaddr *)&ss, &peer) == 0)
                ip = &peer;
        }
        t->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    transport__log_refusal(t, ip, 503, "out of file descriptors");
}

static void on_listen(uv_poll_t *h, int status, int events) {
    transport_t *t = h->data;
    int lfd;
    if (status < 0 || uv_fileno((uv_handle_t *)h, &lfd) < 0) return;
    for (int k = 0; k < ACCEPT_BATCH; k++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sl,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            netaddr peer;
            if (netaddr_from_sockaddr((struct sockaddr *)&ss, &peer) < 0)
                memset(&peer, 0, sizeof peer);
            accept_one(t, fd, &peer);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE)
            refuse_no_fd(t, lfd);
        else if (errno != EAGAIN && errno != EWOULDBLOCK)
            log_warn("server", "accept: %s", strerror(errno));
        return;
    }
}

transport_t *transport_create(uv_loop_t *loop, const config_t *cfg,
                              auth_t *auth, transport_http_fn http, void *ud) {
    transport_t *t = xcalloc(1, sizeof *t);
    t->loop = loop;
    t->on_io = on_io;
    t->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (t->epfd >= 0 && uv_poll_init(loop, &t->epoll_watch, t->epfd) == 0) {
        t->epoll_watch.data = t;
        uv_poll_start(&t->epoll_watch, UV_READABLE, on_epoll);
    } else if (t->epfd >= 0) {
        close(t->epfd);
        t->epfd = -1;
    }
    transport__reap_init(t);
    t->cfg = cfg;
    t->auth = auth;
    t->http = http;
    t->http_ud = ud;
    t->handshake_ms = (uint64_t)(cfg->handshake_timeout * 1000);
    t->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    /* A key nobody can guess, so that nobody can pick addresses that
     * collide in the table (peers.h). */
    uint8_t key[16];
    if (getrandom(key, sizeof key, 0) != (ssize_t)sizeof key) {
        uint64_t x = uv_hrtime() ^ (uint64_t)(uintptr_t)t;
        memcpy(key, &x, 8);
        memcpy(key + 8, &x, 8);
    }
    t->peers = peers_create(key);
    if (cfg->compression) t->deflater = pmd_deflater_create();
    char err[256];
    if (cfg->trusted_proxies[0] &&
        netaddr_list_parse(cfg->trusted_proxies, &t->proxies, err, sizeof err) <
            0)
        log_warn("server", "--trusted-proxies: %s: none trusted", err);
    if (cfg->rate_limit > 0)
        t->rl = rate_limit_make(cfg->rate_limit, cfg->rate_burst);
    snprintf(t->rate_msg, sizeof t->rate_msg,
             "over the limit of %g messages per second", cfg->rate_limit);
    uv_timer_init(loop, &t->sweep);
    t->sweep.data = t;
    uv_check_init(loop, &t->flush_check);
    t->flush_check.data = t;
    uv_check_start(&t->flush_check, transport__on_flush_check);
    uv_idle_init(loop, &t->flush_idle);
    t->flush_idle.data = t;

    double tick = cfg->ping_interval < cfg->idle_timeout ? cfg->ping_interval
                                                         : cfg->idle_timeout;
    uint64_t tick_ms = (uint64_t)(tick * 1000 / 4);
    if (tick_ms < 50) tick_ms = 50;
    if (tick_ms > 1000) tick_ms = 1000;
    uv_timer_init(loop, &t->heartbeat);
    t->heartbeat.data = t;
    uv_timer_start(&t->heartbeat, transport__on_heartbeat, tick_ms, tick_ms);
    return t;
}

void transport_set_hub(transport_t *t, hub_t *h) {
    t->hub = h;
}

void transport_set_api(transport_t *t, api_t *api) {
    t->api = api;
}

void transport_set_tls(transport_t *t, tls_t *tls) {
    t->tls = tls;
}

int transport_listen(transport_t *t, char *err, size_t errlen) {
    if (t->epfd < 0) {
        snprintf(err, errlen, "cannot create an epoll instance: %s",
                 strerror(errno));
        return -EMFILE;
    }
    if (!t->ring && transport__ring_setup(t, err, errlen) < 0) return -ENOSYS;
    int rc =
        listen_open(&t->ls, t->cfg->host, t->cfg->port,
                    t->cfg->reuse_port ? LISTEN_REUSE_PORT : 0, err, errlen);
    if (rc < 0) return rc;
    for (size_t i = 0; i < t->ls.count; i++) {
        uv_poll_t *p = &t->lpoll[t->nlpoll];
        if (uv_poll_init(t->loop, p, t->ls.fds[i]) < 0) continue;
        p->data = t;
        uv_poll_start(p, UV_READABLE, on_listen);
        t->nlpoll++;
    }
    return 0;
}

int transport_port(const transport_t *t) {
    return t->ls.port;
}

const char *transport_addresses(const transport_t *t) {
    return t->ls.addresses;
}

static void close_handle(uv_handle_t *h) {
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void stop_listening(transport_t *t) {
    for (size_t i = 0; i < t->nlpoll; i++)
        close_handle((uv_handle_t *)&t->lpoll[i]);
    t->nlpoll = 0;
    listen_close(&t->ls);
}

void transport_shutdown(transport_t *t, int code, const char *reason) {
    if (t->stopping) return;
    t->stopping = 1;
    stop_listening(t);
    while (t->handshakes.head)
        transport__refuse(t->handshakes.head, 503, "server shutting down",
                          NULL);
    conns_t *cs = hub_conns(t->hub);
    for (conn_t *c = conns_next(cs, NULL); c; c = conns_next(cs, c))
        transport__close_conn(t, c, code, reason);
}

void transport_close_all(transport_t *t) {
    if (t->closed_all) return;
    t->closed_all = 1;
    stop_listening(t);
    tlist *lists[] = {&t->handshakes, &t->lingering, &t->closing, &t->relaying};
    for (size_t i = 0; i < 4; i++)
        while (lists[i]->head)
            transport__teardown(lists[i]->head, CLOSE_GOING_AWAY);
    if (t->hub) {
        conns_t *cs = hub_conns(t->hub);
        for (conn_t *c = conns_next(cs, NULL); c; c = conns_next(cs, c))
            transport__teardown(conn_transport(c), CLOSE_GOING_AWAY);
    }
    close_handle((uv_handle_t *)&t->sweep);
    close_handle((uv_handle_t *)&t->heartbeat);
    close_handle((uv_handle_t *)&t->flush_check);
    close_handle((uv_handle_t *)&t->flush_idle);
    if (t->epfd >= 0) close_handle((uv_handle_t *)&t->epoll_watch);
    /* Those just torn down are freed first (on_reap closes it then). */
    if (!t->reap_active) close_handle((uv_handle_t *)&t->reap);
}

void transport_destroy(transport_t *t) {
    if (!t) return;
    if (t->reserve_fd >= 0) close(t->reserve_fd);
    if (t->epfd >= 0) close(t->epfd);
    peers_destroy(t->peers);
    pmd_deflater_destroy(t->deflater);
    netaddr_list_free(&t->proxies);
    transport__ring_destroy(t);
    free(t);
}
