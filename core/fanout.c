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

size_t fanout_room(const fanout_t *fo, const room_t *r, frame_t *f,
                   const conn_t *except_conn, const user_t *except_user) {
    size_t n = 0, pos = 0;
    user_t *u;
    while ((u = room_next_member(r, &pos)))
        if (u != except_user) n += fanout_user(fo, u, f, except_conn);
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
