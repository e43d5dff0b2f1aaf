/* server.h -- one luahub server: its loop, its parts, and plain HTTP.
 *
 * A server owns the libuv loop and puts its parts on it: the transport
 * (transport.h: the client sockets, WebSocket clients at /ws), the hub
 * (connections, rooms, presence, scripts), and libwebsockets for plain
 * HTTP (GET /healthz, static files from --static at /), which the
 * transport hands each such request. Signals and --watch belong to the
 * process around it (process.h). */
#ifndef LUAHUB_SERVER_H
#define LUAHUB_SERVER_H

#include <uv.h>

#include "config.h"
#include "hub.h"

typedef struct server server_t;

/* Creates the loop, the hub (scripts loaded) and the listening socket.
 * Returns NULL, having logged why, when any of them fails. cfg is borrowed
 * for the server's life. */
server_t *server_create(const config_t *cfg);
/* Runs the loop until server_stop has closed every connection (or given
 * up on them). Returns 0. */
int server_run(server_t *s);
/* Stops gracefully: no new connections, every connection closed with
 * 1001 after its queued frames, the loop ended within 2 seconds. why
 * names the cause in the log ("SIGTERM"). */
void server_stop(server_t *s, const char *why);
/* The loop the server runs on, for the process's own handles. */
uv_loop_t *server_loop(server_t *s);
void server_destroy(server_t *s);
/* --tls-cert: loads the certificate and key again for the next clients;
 * a failure is logged and the ones loaded before are served on. */
void server_reload_tls(server_t *s);
/* The server's hub, e.g. to add native handlers before server_run. */
hub_t *server_hub(server_t *s);

#endif
