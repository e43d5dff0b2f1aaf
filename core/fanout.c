/* fanout.c -- see fanout.h. */
#include "fanout.h"

/* f was queued on a connection. */
static int queued(const fanout_t *fo) {
    if (fo->delivered) (*fo->delivered)++;
    return 1;
}

int fanout_conn(const fanout_t *fo, conn_t *c, frame_t *f) {
    if (conn_closing(c)) return 0;
    if (conn_enqueue(c, f) == 0) return queued(fo);
    /* Full: write what the socket takes now, then drop what may be
     * dropped; only a durable frame that still finds no room closes the
     * connection. */
    if (fo->drain) {
        fo->drain(fo->ud, c);
        if (!conn_closing(c) && conn_enqueue(c, f) == 0) return queued(fo);
    }
    if (fo->shed && !conn_closing(c)) {
        fo->shed(fo->ud, c);
        if (!conn_closing(c) && conn_enqueue(c, f) == 0) return queued(fo);
    }
    if (!conn_closing(c) && !frame_ephemeral(f)) fo->overflow(fo->ud, c);
    return 0;
}

size_t fanout_user(const fanout_t *fo, const user_t *u, frame_t *f,
                   const conn_t *except_conn) {
    size_t n = 0;
    for (conn_t *c = user_next_conn(u, NULL); c; c = user_next_conn(u, c))
        if (c != except_conn) n += (size_t)fanout_conn(fo, c, f);
    return n;
}

/* Members taken at a time by fanout_room. At 10,000 subscribers their
 * user_t, conn_t and ring are not in the cache: one after another, each
 * delivery waits on three or four misses in turn; a batch at a time, the
 * misses of a whole batch are in flight together, stage by stage (each
 * stage reads what the one before fetched). */
#define ROOM_BATCH 16

size_t fanout_room(const fanout_t *fo, const room_t *r, frame_t *f,
                   const conn_t *except_conn, const user_t *except_user) {
    size_t n = 0, pos = 0, k;
    user_t *batch[ROOM_BATCH];
    do {
        for (k = 0; k < ROOM_BATCH && (batch[k] = room_next_member(r, &pos));
             k++)
            user_prefetch(batch[k]);
        for (size_t i = 0; i < k; i++)
            conn_prefetch(user_next_conn(batch[i], NULL));
        for (size_t i = 0; i < k; i++)
            conn_prefetch_slot(user_next_conn(batch[i], NULL));
        for (size_t i = 0; i < k; i++)
            if (batch[i] != except_user)
                n += fanout_user(fo, batch[i], f, except_conn);
    } while (k == ROOM_BATCH);
    return n;
}

size_t fanout_all(const fanout_t *fo, frame_t *f, const conn_t *except_conn,
                  const user_t *except_user) {
    size_t n = 0;
    for (conn_t *c = conns_next(fo->conns, NULL); c;
         c = conns_next(fo->conns, c))
        if (c != except_conn && conn_user(c) != except_user)
            n += (size_t)fanout_conn(fo, c, f);
    return n;
}
