/* native_server.c -- luahub with the ping and chat handlers in C
 * (natives.c) instead of Lua: the baseline luahub's Lua path is measured
 * against, end to end. Same options as luahub. */
#include <stdio.h>

#include "config.h"
#include "log.h"
#include "natives.h"
#include "process.h"
#include "server.h"

int main(int argc, char **argv) {
    config_t cfg;
    config_defaults(&cfg);
    switch (config_parse(&cfg, argc, argv, stdout, stderr)) {
    case CONFIG_RUN:
        break;
    case CONFIG_ERROR:
        return 2;
    default:
        return 0;
    }
    log_set_level(cfg.level);
    process_setup();
    server_t *s = server_create(&cfg);
    if (!s) return 1;
    natives_install(server_hub(s));
    log_info("bench", "ping and chat run in C (natives.c), not Lua");
    int rc = process_run(s, &cfg);
    server_destroy(s);
    return rc;
}
