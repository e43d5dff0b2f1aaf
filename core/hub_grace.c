/* hub_grace.c -- --presence-grace on one node (see hub_int.h): a user
 * whose last connection closed stays registered, online and in their
 * rooms until the grace is over; a connection of theirs back by then
 * cancels it, and nothing was ever announced. With several nodes Redis
 * keeps the grace instead (broker_lua.c), since the user may come back on
 * another node.
 *
 * The grace is one length for every user, so the users waiting are a
 * list in deadline order and one timer, set for the head, is enough. A
 * user who comes back and leaves again is listed twice; the map says
 * which entry is the live one, and a stale one is dropped when it comes
 * up. */
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "alloc.h"
#include "clock.h"
#include "hub_int.h"
#include "log.h"

typedef struct grace_entry {
    struct grace_entry *next;
    int64_t due;
    char uid[];
} grace_entry;

struct hub_grace {
    uv_timer_t timer; /* freed in its close callback */
    hub_t *h;
    grace_entry *head, *tail;
    dict_t *live; /* uid -> its current entry */
};

static void grace_free(uv_handle_t *t) {
    hub_grace *g = t->data;
    while (g->head) {
        grace_entry *e = g->head;
        g->head = e->next;
        free(e);
    }
    dict_destroy(g->live, NULL);
    free(g);
}

static void arm(hub_grace *g);

static void on_due(uv_timer_t *t) {
    hub_grace *g = t->data;
    hub_t *h = g->h;
    int64_t now = clock_now_ms();
    while (g->head && g->head->due <= now) {
        grace_entry *e = g->head;
        g->head = e->next;
        if (!g->head) g->tail = NULL;
        if (dict_get(g->live, e->uid) == e) {
            dict_remove(g->live, e->uid);
            user_t *u = conns_user(h->conns, e->uid);
            /* Still without a connection: what the last close does
             * without a grace happens now. */
            if (u && user_conn_count(u) == 0) {
                log_info("conn", "presence grace over user=%s", e->uid);
                hub__user_gone(h, u);
            }
        }
        free(e);
    }
    arm(g);
}

static void arm(hub_grace *g) {
    if (!g->head) return;
    int64_t wait = g->head->due - clock_now_ms();
    uv_timer_start(&g->timer, on_due, wait > 0 ? (uint64_t)wait : 0, 0);
}

void hub__grace_start(hub_t *h, user_t *u) {
    hub_grace *g = h->grace;
    if (!g) {
        g = h->grace = xcalloc(1, sizeof *g);
        g->h = h;
        g->live = dict_create();
        uv_timer_init(h->t->loop, &g->timer);
        g->timer.data = g;
    }
    size_t n = strlen(user_id(u));
    grace_entry *e = xmalloc(sizeof *e + n + 1);
    e->next = NULL;
    e->due = clock_now_ms() + (int64_t)(h->cfg->presence_grace * 1000);
    memcpy(e->uid, user_id(u), n + 1);
    dict_set(g->live, e->uid, e);
    int idle = !g->head;
    if (g->tail)
        g->tail->next = e;
    else
        g->head = e;
    g->tail = e;
    if (idle) arm(g);
}

void hub__grace_cancel(hub_t *h, const char *uid) {
    if (h->grace) dict_remove(h->grace->live, uid);
}

void hub__grace_stop(hub_t *h) {
    if (!h->grace) return;
    uv_timer_stop(&h->grace->timer);
    uv_close((uv_handle_t *)&h->grace->timer, grace_free);
    h->grace = NULL;
}
