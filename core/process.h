/* process.h -- the process around a server: its setup, its signals and
 * --watch.
 *
 * SIGPIPE is ignored (a peer that vanishes mid-write must not kill the
 * process) and the descriptor limit raised to the hard limit (one per
 * connection). On the server's loop: SIGINT and SIGTERM stop the server
 * gracefully (every connection closed with 1001), SIGHUP reloads the
 * scripts, and with --watch a change under the scripts directory (or its
 * lib/ and hooks/) reloads them too, a burst of changes gathered into one
 * reload. */
#ifndef LUAHUB_PROCESS_H
#define LUAHUB_PROCESS_H

#include "config.h"
#include "server.h"

/* For main() to call first. */
void process_setup(void);
/* Runs s until a signal has stopped it, with the signals and (cfg->watch)
 * the watcher installed. cfg is borrowed. Returns 0. */
int process_run(server_t *s, const config_t *cfg);

#endif
