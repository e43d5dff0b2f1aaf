/* main.c -- luahub: a Lua-scriptable realtime WebSocket server. */
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>

#include "config.h"
#include "log.h"
#include "server.h"

int main(int argc, char **argv) {
    config_t cfg;
    config_defaults(&cfg);
    switch (config_parse(&cfg, argc, argv, stdout, stderr)) {
    case CONFIG_HELP:
    case CONFIG_VERSION:
        return 0;
    case CONFIG_ERROR:
        return 2;
    case CONFIG_RUN:
        break;
    }
    log_set_level(cfg.level);
    /* A peer that vanishes mid-write must not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    /* One descriptor per connection: use all the system allows. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    server_t *s = server_create(&cfg);
    if (!s) return 1;
    int rc = server_run(s);
    server_destroy(s);
    return rc;
}
