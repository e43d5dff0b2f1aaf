/* config.h -- command-line configuration.
 *
 * Every setting has a default that runs a development server on
 * 127.0.0.1:8080 with the shipped scripts; `luahub --help` lists them all
 * with those defaults. */
#ifndef LUAHUB_CONFIG_H
#define LUAHUB_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "log.h"

#define LUAHUB_VERSION "0.1.0"

/* The largest --rate-burst (the bucket is counted in 1/16 messages in 16
 * bits per connection). */
#define RATE_BURST_MAX 4000

typedef struct config {
    char host[256];           /* --host, default "127.0.0.1" */
    int port;                 /* --port, default 8080; 0 picks a free port */
    char scripts_dir[1024];   /* --scripts DIR, default "scripts" */
    char lua_dir[1024];       /* --lua DIR (the runtime), default "lua" */
    char static_dir[1024];    /* --static DIR, default "examples/chat" */
    double ping_interval;     /* --ping-interval SECONDS, default 25 */
    double idle_timeout;      /* --idle-timeout SECONDS, default 60 */
    double handshake_timeout; /* --handshake-timeout SECONDS, default 5 */
    size_t max_message;       /* --max-message BYTES, default 65536 */
    size_t send_queue;        /* --send-queue BYTES, default 1048576 */
    log_level level;       /* --log-level error|warn|info|debug, default info */
    int unsafe_lua;        /* --unsafe-lua: no sandbox for scripts */
    int watch;             /* --watch: reload when scripts/ changes */
    int compression;       /* --compression: permessage-deflate offered */
    double script_timeout; /* --script-timeout MS, default 100; 0: none */
    size_t script_memory;  /* --script-memory MB, default 256; 0: none */
    char check_dir[1024];  /* --check DIR: load the scripts, report, exit */
    char auth_secret_file[1024]; /* --auth-secret-file FILE: tokens required */
    /* --tls-cert FILE --tls-key FILE (both or neither): the port speaks
     * TLS only; "": plain */
    char tls_cert[1024], tls_key[1024];
    /* --redis URL: several nodes as one over that Redis ("": one node);
     * --node-id ID ("": <hostname>-<pid>); --presence-ttl SECONDS, default
     * 30; --reuse-port: SO_REUSEPORT, several nodes on one port. */
    char redis[1024];
    char node_id[65];
    double presence_ttl;
    /* --presence-grace SECONDS, default 0: how long a user whose last
     * connection closed stays online and in their rooms, waiting for a
     * connection of theirs to come back (hub_grace.c). */
    double presence_grace;
    int reuse_port;
    /* --history-size N (default 100; 0: none kept), --history-ttl SECONDS
     * (default 300): each room's newest room chats, and how long they and
     * a room left empty are kept. */
    long history_size;
    double history_ttl;
    double rate_limit; /* --rate-limit N messages/s per connection; 0: none */
    int rate_burst;    /* --rate-burst N, default: rate_limit rounded up */
    /* --allowed-origins A,B: origins whose pages may connect ("*": any);
     * "" (the default): any (origin.h) */
    char allowed_origins[4096];
    /* --trusted-proxies CIDR,...: peers whose X-Forwarded-For or
     * Forwarded names the client (netaddr.h); "": none */
    char trusted_proxies[4096];
    /* --api-key-file FILE: the HTTP API's key ("": $LUAHUB_API_KEY, or
     * the API is off); --metrics on|off|key: GET /metrics open to anyone
     * who reaches the port (default), off (404), or behind the API key. */
    char api_key_file[1024];
    int metrics;
    long max_conns;        /* --max-conns N: connections at once; 0: none */
    long max_conns_per_ip; /* --max-conns-per-ip N, per client; 0: none */
    /* Which of --lua, --scripts, --static were given (config_locate looks
     * for the others). */
    int lua_given, scripts_given, static_given;
} config_t;

enum { CONFIG_METRICS_ON = 0, CONFIG_METRICS_OFF = 1, CONFIG_METRICS_KEY = 2 };

typedef enum config_action {
    CONFIG_RUN = 0,     /* start the server */
    CONFIG_HELP = 1,    /* --help / -h: usage printed, exit 0 */
    CONFIG_VERSION = 2, /* --version / -V: version printed, exit 0 */
    CONFIG_CHECK = 3,   /* --check DIR: check the scripts and exit */
    CONFIG_ERROR = -1,  /* bad flag or value: message printed, exit 2 */
} config_action;

/* Fills cfg with the defaults. */
void config_defaults(config_t *cfg);

/* Parses argv (both "--flag value" and "--flag=value"). Prints --help and
 * --version text to out and error messages (one line naming the flag and
 * what is wrong, then "try 'luahub --help'") to err. Values are checked:
 * port 0..65535, seconds > 0 (fractions allowed, e.g. 0.5), byte counts
 * positive integers with an optional k/m suffix (1024-based), ping
 * interval <= idle timeout is not required. Returns what to do. */
config_action config_parse(config_t *cfg, int argc, char **argv, FILE *out,
                           FILE *err);

/* Finds the directories whose flag was not given: the default relative
 * path in the working directory, else beside the binary exe (the build
 * tree's <bindir>/../lua), else where an install puts it
 * (<bindir>/../share/luahub/lua). The first candidate that has the
 * runtime (runtime.lua), is a directory (scripts), or has index.html
 * (static) wins and is stored as an absolute path; with none, the default
 * is kept. exe may be NULL (only the working directory is tried). Returns
 * 0, or -1 with a message on err naming the paths tried and the flag to
 * use, when the runtime is found nowhere (or not in a given --lua DIR),
 * or no scripts directory is found (not when checking: --check names its
 * own). A missing static directory is left to the server's warning. */
int config_locate(config_t *cfg, const char *exe, FILE *err);

#endif
