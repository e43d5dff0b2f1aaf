/* transport.h -- client connections on raw sockets, from accept to close.
 *
 * The transport owns every socket a client opens. It accepts on the
 * listening sockets, reads each request head into memory of its own,
 * bounded in size (http.h) and in time (--handshake-timeout), and answers
 * every refusal with an HTTP status. A WebSocket upgrade at /ws it answers
 * itself (101) and keeps: it reads frames (wsproto.h), hands whole
 * messages to the hub, and writes the hub's queued frames, several per
 * sendmsg() (an iovec). Any other request goes to the HTTP side (libwebsockets,
 * in server.c) with a head rebuilt to fit it. Nothing a stranger sends holds a
 * fixed, shared resource: a connection that has not finished its handshake
 * costs only its own memory, and only for the timeout.
 *
 * Writing. A fan-out only queues frame references on the recipients and
 * marks them dirty (conn.c); a uv_check handle, run once per loop pass
 * after the I/O callbacks, flushes the dirty connections in the order
 * they became dirty, for at most FLUSH_BUDGET_NS a pass: the rest wait
 * for the next pass, which reads what came in first, so a fan-out to
 * 10,000 sockets does not hold up every reader for its whole length. A
 * connection
 * whose socket is full is polled for writing and flushed when it drains.
 * Control frames (pings, pongs, the close frame) go out between whole
 * frames, never inside one.
 *
 * Closing. A close the hub asks for (transport_close through the hub's
 * table) lets queued frames go first (except for a slow consumer, 4008),
 * then writes the close frame, shuts the socket's sending side and reads
 * and drops what the client still sends until it closes (at most
 * CLOSE_GRACE): closing at once would reset a client that is still
 * sending, and the client would lose the close code. The hub hears of the
 * end (hub_conn_closed) from a check handle that frees the connections
 * torn down (the reap), never under the feet of the code that decided it.
 *
 * Polling. Every client socket is in one epoll set of the transport's,
 * itself watched by one poll handle on the loop: a socket is added with
 * one epoll_ctl() and leaves the set as it is closed. The handshake
 * answers the upgrade and the hub's welcome with one sendmsg().
 *
 * TLS (--tls-cert). The same machinery on the same sockets: a connection
 * first does its TLS handshake (within --handshake-timeout; one whose
 * first byte is no TLS record is answered 400 in plain), then its request
 * head is read through TLS. Reads drain what TLS holds, so no frame waits
 * for the next socket event. Writes gather the queued frames into one
 * scratch buffer a record at a time (TLS has no writev), taken off the
 * queue as they are gathered; a record the socket did not take is kept by
 * the session (tls.h). Plain HTTP cannot be handed to libwebsockets in the
 * middle of a TLS session, so the transport hands it one end of a
 * socketpair instead, with the same rebuilt head, and relays the answer
 * from the other end to the client through TLS (one request per
 * connection, as on a plain port). A plain port goes on with the iovec. */
#ifndef LUAHUB_TRANSPORT_H
#define LUAHUB_TRANSPORT_H

#include <stddef.h>
#include <uv.h>

#include "api.h"
#include "auth.h"
#include "config.h"
#include "hub.h"
#include "tls.h"

typedef struct transport transport_t;

/* Serves one plain HTTP request: takes ownership of fd (closed by the
 * callee when it is done, or fails), with the request in head[0..len)
 * (borrowed for the call). */
typedef void (*transport_http_fn)(void *ud, int fd, const char *head,
                                  size_t len);

/* cfg and auth are borrowed for the transport's life. */
transport_t *transport_create(uv_loop_t *loop, const config_t *cfg,
                              auth_t *auth, transport_http_fn http, void *ud);
/* /metrics and /api/ are answered through api (borrowed; NULL: they go
 * to the HTTP side like any path). */
void transport_set_api(transport_t *t, api_t *api);
/* What the hub calls (wake, drain, close), to pass to hub_create. */
hub_transport transport_hub_ops(transport_t *t);
/* The hub whose connections these are (borrowed). */
void transport_set_hub(transport_t *t, hub_t *h);
/* --tls-cert: every connection accepted from now on speaks TLS with the
 * context in tls (borrowed; tls_reload may swap it underneath). */
void transport_set_tls(transport_t *t, tls_t *tls);

/* Binds cfg->host:cfg->port (listen.h) and starts accepting. Returns 0, or
 * a negative errno with a one-line reason in err. */
int transport_listen(transport_t *t, char *err, size_t errlen);
int transport_port(const transport_t *t);
/* The bound addresses, "127.0.0.1:8080" (several comma-separated). */
const char *transport_addresses(const transport_t *t);

/* Stops accepting, refuses handshakes in progress (503) and closes every
 * connection with code and reason (the frames already queued go first). */
void transport_shutdown(transport_t *t, int code, const char *reason);
/* Drops every connection at once and closes the transport's handles; the
 * loop must run afterwards for the close callbacks (hub_conn_closed), and
 * only then transport_destroy. */
void transport_close_all(transport_t *t);
void transport_destroy(transport_t *t);

#endif
