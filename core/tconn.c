/* tconn.c -- what every client socket has: its deadline list, its polling,
 * its teardown, and refusals (see transport_int.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "codes.h"
#include "hub.h"
#include "log.h"
#include "transport_int.h"

static void on_sweep(uv_timer_t *h);

void transport__reap_init(transport_t *t) {
    uv_check_init(t->loop, &t->reap);
    t->reap.data = t;
}

void transport__list_remove(tconn *c) {
    tlist *l = c->list;
    if (!l) return;
    if (c->lprev)
        c->lprev->lnext = c->lnext;
    else
        l->head = c->lnext;
    if (c->lnext)
        c->lnext->lprev = c->lprev;
    else
        l->tail = c->lprev;
    c->lnext = c->lprev = NULL;
    c->list = NULL;
}

void transport__list_push(tlist *l, tconn *c, uint64_t ms) {
    transport__list_remove(c);
    transport_t *t = c->t;
    c->deadline = uv_now(t->loop) + ms;
    c->list = l;
    c->lprev = l->tail;
    c->lnext = NULL;
    if (l->tail)
        l->tail->lnext = c;
    else
        l->head = c;
    l->tail = c;
    if (!t->sweeping) {
        uv_timer_start(&t->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
        t->sweeping = 1;
    }
}

/* Frees c, torn down earlier, and tells the hub. */
static void conn_free(tconn *c) {
    if (c->conn) hub_conn_closed(c->t->hub, c->conn);
    if (c->msg) {
        buf_close(c->msg);
        free(c->msg);
    }
    pmd_inflater_destroy(c->zin);
    free(c->head);
    free(c->ctl);
    free(c->closef);
    free(c->carry);
    free(c);
}

/* Frees the connections torn down since the last time (those the hub's
 * on_disconnect work tears down meanwhile too). */
static void on_reap(uv_check_t *h) {
    transport_t *t = h->data;
    tconn *c;
    while ((c = t->dead)) {
        t->dead = c->dead_next;
        conn_free(c);
    }
    uv_check_stop(h);
    t->reap_active = 0;
    if (t->closed_all) uv_close((uv_handle_t *)h, NULL);
}

static void free_handle(uv_handle_t *h) {
    free(h);
}

void transport__relay_close(tconn *c) {
    if (!c->relay) return;
    uv_close((uv_handle_t *)c->relay, free_handle);
    close(c->relay_fd);
    c->relay = NULL;
}

void transport__teardown(tconn *c, int code) {
    if (c->state == T_DEAD) return;
    if (c->conn) {
        if (!conn_closing(c->conn)) conn_set_closing(c->conn, code);
        conn_queue_clear(c->conn);
    }
    transport__list_remove(c);
    if (c->counted) {
        peers_remove(c->t->peers, &c->addr);
        c->t->nconns--;
        c->counted = 0;
    }
    c->state = T_DEAD;
    if (c->api) {
        /* The answer, when it comes, goes nowhere. */
        api_cancel(c->api);
        c->api = NULL;
    }
    /* A session's close_notify, best effort, before the socket goes. */
    tls_conn_free(c->tls);
    c->tls = NULL;
    transport__relay_close(c);
    /* Closing the socket takes it out of the epoll set (nothing else holds
     * it: it is close-on-exec, and the process does not fork); an event
     * already read for it finds it T_DEAD, and it is freed once the loop
     * is past them. */
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->polling = 0;
    c->dead_next = c->t->dead;
    c->t->dead = c;
    if (!c->t->reap_active && !uv_is_closing((uv_handle_t *)&c->t->reap)) {
        uv_check_start(&c->t->reap, on_reap);
        c->t->reap_active = 1;
    }
}

int transport__poll_set(tconn *c, int events) {
    if (c->polling == events || c->state == T_DEAD) return 0;
    struct epoll_event ev = {.events = ((events & UV_READABLE) ? EPOLLIN : 0u) |
                                       ((events & UV_WRITABLE) ? EPOLLOUT : 0u),
                             .data.ptr = c};
    int op = c->polling ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(c->t->epfd, op, c->fd, &ev) < 0) return -1;
    c->polling = (uint8_t)events;
    return 0;
}

void transport__poll_forget(tconn *c) {
    if (!c->polling) return;
    epoll_ctl(c->t->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    c->polling = 0;
}

void transport__log_refusal(transport_t *t, const netaddr *ip, int status,
                            const char *why) {
    int64_t sec = clock_now_ms() / 1000;
    if (sec != t->log_second) {
        if (t->unlogged)
            log_info("http", "%u more refusals not logged", t->unlogged);
        t->log_second = sec;
        t->logged = t->unlogged = 0;
    }
    char a[NETADDR_TEXT] = "-";
    if (t->logged++ < 10)
        log_info("http", "refused %d ip=%s: %s", status,
                 ip ? netaddr_format(ip, a) : a, why);
    else
        t->unlogged++;
}

void transport__answer(tconn *c, int status, const char *why,
                       const char *extra) {
    transport_t *t = c->t;
    buf_t b;
    buf_init(&b, 0);
    http_refusal(&b, status, why, extra);
    /* A few hundred bytes into an empty socket buffer: one send. A TLS
     * client still in its handshake cannot be answered. */
    if (!c->tls || tls_ready(c->tls))
        (void)transport__send(c, buf_content(&b), b.len);
    buf_close(&b);
    transport__shut_wr(c);
    free(c->head);
    c->head = NULL;
    c->head_len = c->head_cap = 0;
    c->state = T_LINGER;
    transport__list_push(&t->lingering, c, LINGER_MS);
    transport__poll_set(c, UV_READABLE);
}

void transport__refuse(tconn *c, int status, const char *why,
                       const char *extra) {
    transport__log_refusal(c->t, &c->addr, status, why);
    transport__answer(c, status, why, extra);
}

uint32_t transport__count(tconn *c, const netaddr *addr) {
    transport_t *t = c->t;
    if (c->counted) {
        peers_remove(t->peers, &c->addr);
        t->nconns--;
    }
    c->addr = *addr;
    c->counted = 1;
    t->nconns++;
    if (t->nconns > t->conns_peak) t->conns_peak = t->nconns;
    return peers_add(t->peers, addr);
}

int transport__over_ip_limit(tconn *c, uint32_t count) {
    transport_t *t = c->t;
    long max = t->cfg->max_conns_per_ip;
    if (max <= 0 || count <= (uint32_t)max) return 0;
    char why[80], a[NETADDR_TEXT];
    snprintf(why, sizeof why, "over the limit of %ld connections per address",
             max);
    uint32_t unlogged;
    if (peers_refusal_log(t->peers, &c->addr, clock_now_ms(), LIMIT_LOG_MS,
                          &unlogged))
        log_warn("http",
                 "refused 429 ip=%s: %s (--max-conns-per-ip; logged once a "
                 "minute per address; %u not logged since the last line)",
                 netaddr_format(&c->addr, a), why, unlogged);
    transport__answer(c, 429, why, NULL);
    return 1;
}

/* Reads and drops; closes at the client's end, or past LINGER_BYTES. */
void transport__drop_input(tconn *c, uint32_t limit) {
    transport_t *t = c->t;
    /* Raw, even under TLS: nothing in it is read any more. */
    ssize_t n = recv(c->fd, t->rbuf, sizeof t->rbuf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        transport__teardown(c, CLOSE_ABNORMAL);
        return;
    }
    if (limit) {
        c->head_len += (uint32_t)n;
        if (c->head_len > limit) transport__teardown(c, CLOSE_ABNORMAL);
    }
}

ssize_t transport__recv(tconn *c, void *buf, size_t len) {
    if (!c->tls) {
        ssize_t n = recv(c->fd, buf, len, 0);
        if (n < 0 &&
            (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return -1;
        return n < 0 ? 0 : n;
    }
    long n = tls_read(c->tls, buf, len);
    if (n == TLS_WANT_READ) return -1;
    if (n == TLS_WANT_WRITE) {
        transport__poll_set(c, c->polling | UV_WRITABLE);
        return -1;
    }
    return n < 0 ? 0 : n;
}

int transport__pending(const tconn *c) {
    return c->tls && tls_pending(c->tls);
}

int transport__send(tconn *c, const void *buf, size_t len) {
    if (!c->tls)
        return send(c->fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
    /* Short: one record, written or kept by the session. */
    return tls_write(c->tls, buf, len) == (long)len ? 0 : -1;
}

void transport__shut_wr(tconn *c) {
    if (c->tls) tls_shutdown(c->tls);
    shutdown(c->fd, SHUT_WR);
}

static void on_sweep(uv_timer_t *h) {
    transport_t *t = h->data;
    uint64_t now = uv_now(t->loop);
    tconn *c;
    while ((c = t->handshakes.head) && c->deadline <= now) {
        char why[64];
        snprintf(why, sizeof why, "request %s not received within %gs",
                 c->state == T_BODY ? "body" : "head",
                 t->cfg->handshake_timeout);
        transport__refuse(c, 408, why, NULL);
    }
    while ((c = t->lingering.head) && c->deadline <= now)
        transport__teardown(c, 0);
    while ((c = t->closing.head) && c->deadline <= now)
        transport__teardown(c, CLOSE_ABNORMAL);
    while ((c = t->relaying.head) && c->deadline <= now)
        transport__teardown(c, 0);
    if (!t->handshakes.head && !t->lingering.head && !t->closing.head &&
        !t->relaying.head) {
        uv_timer_stop(&t->sweep);
        t->sweeping = 0;
    }
}
