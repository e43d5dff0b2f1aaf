/* main.c -- luahub: a Lua-scriptable realtime WebSocket server. */
#include <stdio.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "process.h"
#include "script.h"
#include "server.h"

/* luahub --check DIR: load the scripts exactly as the server would (same
 * runtime, same sandbox) and report the handlers and hooks. Exit 0 when
 * they all load, 1 with every error (file:line) otherwise, or when a file
 * in hooks/ is no hook. */
static int check_scripts(const config_t *cfg) {
    char err[8192];
    script_options opt = {cfg->lua_dir,
                          cfg->check_dir,
                          cfg->unsafe_lua,
                          NULL,
                          cfg->script_timeout,
                          cfg->script_memory,
                          (size_t)cfg->max_listed_members};
    script_t *s = script_create(&opt, script_null_host(), err, sizeof err);
    if (!s) {
        fprintf(stderr, "%s\n", err);
        fprintf(stderr, "luahub: %s: the scripts do not load\n",
                cfg->check_dir);
        return 1;
    }
    /* A file in hooks/ that is no hook is a mistake (a misspelled name)
     * the server would only warn about: here it fails the check. */
    const char *stray = script_stray_hooks(s);
    if (stray) fprintf(stderr, "%s\n", stray);
    printf("luahub: %s: %zu handlers load: %s\n", cfg->check_dir,
           script_count(s), script_types(s));
    printf("luahub: %s: hooks: %s\n", cfg->check_dir,
           *script_hooks(s) ? script_hooks(s) : "none");
    script_destroy(s);
    if (stray) {
        fprintf(stderr, "luahub: %s: the scripts do not load cleanly\n",
                cfg->check_dir);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    config_t cfg;
    config_defaults(&cfg);
    switch (config_parse(&cfg, argc, argv, stdout, stderr)) {
    case CONFIG_HELP:
    case CONFIG_VERSION:
        return 0;
    case CONFIG_ERROR:
        return 2;
    case CONFIG_CHECK:
    case CONFIG_RUN:
    case CONFIG_PRINT:
        break;
    }
    /* The default directories may be beside the binary rather than in the
     * working directory (build/luahub run from elsewhere, an install). */
    char exe[1024];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) exe[n] = '\0';
    if (cfg.print_config) {
        /* The directories as the server would use them; one not found is
         * said on stderr and printed as given. */
        config_locate(&cfg, n > 0 ? exe : NULL, stderr);
        config_print(&cfg, stdout);
        return 0;
    }
    if (config_locate(&cfg, n > 0 ? exe : NULL, stderr) < 0) return 1;
    log_set_level(cfg.level);
    log_set_format(cfg.log_format);
    if (cfg.check_dir[0]) return check_scripts(&cfg);
    process_setup();

    server_t *s = server_create(&cfg);
    if (!s) return 1;
    int rc = process_run(s, &cfg);
    server_destroy(s);
    return rc;
}
