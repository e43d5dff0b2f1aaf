/* server.h -- the transport: libwebsockets on a libuv loop the core owns.
 *
 * One port serves WebSocket clients at /ws, GET /healthz, and static files
 * (--static) at /. The server owns the loop, the lws context, the
 * heartbeat timer and the signal handlers (SIGINT/SIGTERM: close every
 * connection with 1001 and stop; SIGHUP: reload the scripts). It drains
 * the connections' send queues once per loop pass, several frames per
 * write. */
#ifndef LUAHUB_SERVER_H
#define LUAHUB_SERVER_H

#include "config.h"
#include "hub.h"

typedef struct server server_t;

/* Process-wide settings a server needs, for its main() to call first:
 * SIGPIPE ignored (a peer that vanishes mid-write must not kill the
 * process) and the descriptor limit raised to the hard limit (one per
 * connection). */
void server_process_setup(void);

/* Creates the loop, the hub (scripts loaded) and the listening socket.
 * Returns NULL, having logged why, when any of them fails. cfg is borrowed
 * for the server's life. */
server_t *server_create(const config_t *cfg);
/* Runs until SIGINT or SIGTERM has closed every connection. Returns 0. */
int server_run(server_t *s);
void server_destroy(server_t *s);
/* The server's hub, e.g. to add native handlers before server_run. */
hub_t *server_hub(server_t *s);

#endif
