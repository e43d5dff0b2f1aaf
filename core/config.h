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

/* Room for the settings config.c's table lists (checked there). */
#define CONFIG_MAX_SETTINGS 64

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
    /* --max-listed-members N (default 1000): a room of more members lists
     * none in the join_room and room_info acks (member_count only) and
     * announces no user_joined or user_left; room_members pages through
     * any room. */
    long max_listed_members;
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
    /* --io-uring auto|on|off: how the transport reads and writes plain
     * WebSocket connections (ioring.h): through an io_uring when one can
     * be set up (auto, the default), or refuse to start without one (on),
     * or one system call per socket (off). CONFIG_IO_URING_*. */
    int io_uring;
    long max_conns;        /* --max-conns N: connections at once; 0: none */
    long max_conns_per_ip; /* --max-conns-per-ip N, per client; 0: none */
    log_format log_format; /* --log-format text|json, default text */
    /* Which of --lua, --scripts, --static were given (config_locate looks
     * for the others). */
    int lua_given, scripts_given, static_given;
    char config_file[1024]; /* --config FILE: settings read from it ("") */
    int print_config;       /* --print-config: print them all and exit */
    /* Where each setting's value came from, for --print-config: a
     * config_source per row of config.c's table of settings. */
    unsigned char from[CONFIG_MAX_SETTINGS];
} config_t;

enum { CONFIG_METRICS_ON = 0, CONFIG_METRICS_OFF = 1, CONFIG_METRICS_KEY = 2 };
enum {
    CONFIG_IO_URING_AUTO = 0,
    CONFIG_IO_URING_ON = 1,
    CONFIG_IO_URING_OFF = 2
};
typedef enum config_source {
    CONFIG_FROM_DEFAULT = 0,
    CONFIG_FROM_FILE = 1,
    CONFIG_FROM_COMMAND_LINE = 2,
} config_source;

typedef enum config_action {
    CONFIG_RUN = 0,     /* start the server */
    CONFIG_HELP = 1,    /* --help / -h: usage printed, exit 0 */
    CONFIG_VERSION = 2, /* --version / -V: version printed, exit 0 */
    CONFIG_CHECK = 3,   /* --check DIR: check the scripts and exit */
    CONFIG_PRINT = 4,   /* --print-config: config_print, exit 0 */
    CONFIG_ERROR = -1,  /* bad flag or value: message printed, exit 2 */
} config_action;

/* Fills cfg with the defaults. */
void config_defaults(config_t *cfg);

/* Parses argv (both "--flag value" and "--flag=value"). Prints --help and
 * --version text to out and error messages (one line naming the flag and
 * what is wrong, then "try 'luahub --help'") to err. Values are checked:
 * port 0..65535, seconds > 0 (fractions allowed, e.g. 0.5), byte counts
 * positive integers with an optional k/m suffix (1024-based), ping
 * interval <= idle timeout is not required.
 *
 * With --config FILE, the file's settings (config_file.h) are applied
 * first and the command line's on top: a flag given wins over the file.
 * Each name is a flag without its "--" and with '_' for '-' (rate_limit
 * for --rate-limit), its value a number or a string as the flag would take
 * it, true or false for a switch (--watch), a list of strings for a
 * comma-separated list (--allowed-origins). A file that does not load, an
 * unknown name or a bad value is one line on err naming the file and the
 * setting ("luahub: FILE: rate_limit: 'fast' is not ..."), and
 * CONFIG_ERROR. Returns what to do. */
config_action config_parse(config_t *cfg, int argc, char **argv, FILE *out,
                           FILE *err);

/* Prints every setting in force as a config file would hold it (a Lua
 * table, so that the output can be given back to --config), each with a
 * comment saying where its value came from: the default, the file or the
 * command line. */
void config_print(const config_t *cfg, FILE *out);

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
