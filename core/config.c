/* config.c -- see config.h. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"
#include "broker.h"
#include "buf.h"
#include "config_file.h"
#include "netaddr.h"
#include "origin.h"

/* ---- the settings
 * ------------------------------------------------------------
 *
 * Every flag that sets something, in --print-config's order. The parse of
 * each value is config_parse's chain below (one branch a flag); this table
 * says what else the flag is: a switch or a value, where its value lives
 * (for --print-config and a file's `false`) and what an empty value means.
 * A file's name for a setting is its flag without the "--", '_' for '-'. */
typedef enum setting_type {
    SET_SWITCH,  /* int, 0 or 1: no value on the command line */
    SET_STRING,  /* char[]: text */
    SET_LIST,    /* char[]: comma-separated; a list of strings in a file */
    SET_INT,     /* int */
    SET_LONG,    /* long */
    SET_DOUBLE,  /* double */
    SET_SIZE,    /* size_t */
    SET_LEVEL,   /* log_level */
    SET_FORMAT,  /* log_format */
    SET_METRICS, /* int, CONFIG_METRICS_* */
    SET_URING,   /* int, CONFIG_IO_URING_* */
    SET_COMMAND, /* the command line only, not a setting (--check) */
} setting_type;

typedef struct setting {
    const char *flag;
    setting_type type;
    size_t offset; /* of the value in config_t */
    /* What an empty string or a 0 means (printed as nil with this); NULL:
     * the value always means itself. */
    const char *unset;
} setting;

#define AT(field) offsetof(config_t, field)
static const setting settings[] = {
    {"--host", SET_STRING, AT(host), NULL},
    {"--port", SET_INT, AT(port), NULL},
    {"--scripts", SET_STRING, AT(scripts_dir), NULL},
    {"--lua", SET_STRING, AT(lua_dir), NULL},
    {"--static", SET_STRING, AT(static_dir), NULL},
    {"--ping-interval", SET_DOUBLE, AT(ping_interval), NULL},
    {"--idle-timeout", SET_DOUBLE, AT(idle_timeout), NULL},
    {"--handshake-timeout", SET_DOUBLE, AT(handshake_timeout), NULL},
    {"--max-message", SET_SIZE, AT(max_message), NULL},
    {"--send-queue", SET_SIZE, AT(send_queue), NULL},
    {"--log-level", SET_LEVEL, AT(level), NULL},
    {"--log-format", SET_FORMAT, AT(log_format), NULL},
    {"--unsafe-lua", SET_SWITCH, AT(unsafe_lua), NULL},
    {"--script-timeout", SET_DOUBLE, AT(script_timeout), NULL},
    {"--script-memory", SET_SIZE, AT(script_memory), NULL},
    {"--watch", SET_SWITCH, AT(watch), NULL},
    {"--rate-limit", SET_DOUBLE, AT(rate_limit), NULL},
    {"--rate-burst", SET_INT, AT(rate_burst), "the rate, at least 1"},
    {"--auth-secret-file", SET_STRING, AT(auth_secret_file),
     "none: any client may claim any user id"},
    {"--allowed-origins", SET_LIST, AT(allowed_origins), "any origin"},
    {"--max-conns", SET_LONG, AT(max_conns), NULL},
    {"--max-conns-per-ip", SET_LONG, AT(max_conns_per_ip), NULL},
    {"--trusted-proxies", SET_LIST, AT(trusted_proxies), "none"},
    {"--compression", SET_SWITCH, AT(compression), NULL},
    {"--tls-cert", SET_STRING, AT(tls_cert), "none: plain"},
    {"--tls-key", SET_STRING, AT(tls_key), "none: plain"},
    {"--redis", SET_STRING, AT(redis), "none: one node"},
    {"--node-id", SET_STRING, AT(node_id), "HOSTNAME-PID"},
    {"--presence-ttl", SET_DOUBLE, AT(presence_ttl), NULL},
    {"--reuse-port", SET_SWITCH, AT(reuse_port), NULL},
    {"--presence-grace", SET_DOUBLE, AT(presence_grace), NULL},
    {"--history-size", SET_LONG, AT(history_size), NULL},
    {"--history-ttl", SET_DOUBLE, AT(history_ttl), NULL},
    {"--max-listed-members", SET_LONG, AT(max_listed_members), NULL},
    {"--api-key-file", SET_STRING, AT(api_key_file),
     "none: $LUAHUB_API_KEY, or the API is off"},
    {"--metrics", SET_METRICS, AT(metrics), NULL},
    {"--io-uring", SET_URING, AT(io_uring), NULL},
    {"--check", SET_COMMAND, 0, NULL},
    {"--config", SET_COMMAND, 0, NULL},
};
#define N_SETTINGS (sizeof settings / sizeof *settings)
_Static_assert(N_SETTINGS <= CONFIG_MAX_SETTINGS,
               "config.h's CONFIG_MAX_SETTINGS is too small");

/* The row of flag (NULL: none). */
static const setting *find_setting(const char *flag) {
    for (size_t k = 0; k < N_SETTINGS; k++)
        if (!strcmp(settings[k].flag, flag)) return &settings[k];
    return NULL;
}

void config_defaults(config_t *cfg) {
    memset(cfg, 0, sizeof *cfg);
    strcpy(cfg->host, "127.0.0.1");
    cfg->port = 8080;
    strcpy(cfg->scripts_dir, "scripts");
    strcpy(cfg->lua_dir, "lua");
    strcpy(cfg->static_dir, "examples/chat");
    cfg->ping_interval = 25;
    cfg->idle_timeout = 60;
    cfg->handshake_timeout = 5;
    cfg->max_message = 65536;
    cfg->send_queue = 1048576;
    cfg->level = LOG_INFO;
    cfg->script_timeout = 100;
    cfg->script_memory = 256;
    cfg->presence_ttl = 30;
    cfg->history_size = 100;
    cfg->history_ttl = 300;
    cfg->max_listed_members = 1000;
    cfg->log_format = LOG_TEXT;
}

static void usage(FILE *out) {
    config_t d;
    config_defaults(&d);
    fprintf(out,
            "usage: luahub [options]\n"
            "\n"
            "A Lua-scriptable realtime WebSocket server. Clients connect to\n"
            "ws://HOST:PORT/ws?user=ID (or ?token=JWT); a frame "
            "{\"type\":\"T\",...} runs\n"
            "the handler SCRIPTS/T.lua. GET /healthz answers 200; other\n"
            "paths are files from the static directory. SIGHUP reloads the\n"
            "scripts; SIGINT and SIGTERM close every connection (1001) and\n"
            "exit.\n"
            "\n"
            "options:\n"
            "  --host H                 address to listen on, exactly: "
            "0.0.0.0 or :: for\n"
            "                           every interface (default: %s, "
            "loopback only)\n"
            "  --port N                 port, 0 for any free one "
            "(default: %d)\n"
            "  --scripts DIR            handlers, DIR/<type>.lua "
            "(default: %s)\n"
            "  --lua DIR                the Lua runtime (default: %s)\n"
            "  --static DIR             files served at / (default: %s)\n"
            "                           (unless given, these three are "
            "looked for in the\n"
            "                           working directory, then beside "
            "the binary,\n"
            "                           BIN/../DIR, then installed, "
            "BIN/../share/luahub/DIR)\n"
            "  --ping-interval SECONDS  how often each connection is "
            "pinged (default: %g)\n"
            "  --idle-timeout SECONDS   close a connection silent this "
            "long (default: %g)\n"
            "  --handshake-timeout SECONDS  answer 408 and close a "
            "connection whose\n"
            "                           request head has not arrived by "
            "then (default: %g)\n"
            "  --max-message BYTES      close (1009) on a larger client "
            "message (default: %zu)\n"
            "  --send-queue BYTES       close (4008) a client this far "
            "behind (default: %zu)\n"
            "  --log-level LEVEL        error, warn, info or debug "
            "(default: %s)\n"
            "  --log-format FORMAT      text, or json: one JSON object a "
            "line (time, level,\n"
            "                           module, msg and the line's "
            "key=value fields) for\n"
            "                           log shippers (default: %s)\n"
            "  --unsafe-lua             lift the scripts' sandbox (io, os, "
            "ffi, debug)\n"
            "                           (default: off)\n"
            "  --script-timeout MS      stop a handler, hook or timer that "
            "has run this\n"
            "                           much CPU time (handler_error \"timed "
            "out\"); 0: never\n"
            "                           (default: %g)\n"
            "  --script-memory MB       cap the scripts' Lua memory; a call "
            "that hits it\n"
            "                           is stopped (handler_error \"out of "
            "memory\"); 0: no\n"
            "                           cap but LuaJIT's own (default: %zu)\n"
            "  --watch                  reload when a file under the "
            "scripts directory\n"
            "                           changes, as SIGHUP does (default: "
            "off)\n"
            "  --rate-limit N           messages per second a connection "
            "may send; over it\n"
            "                           a frame is answered rate_limited, "
            "and a client that\n"
            "                           sends a burst's worth more is "
            "closed (4029); 0: no\n"
            "                           limit (default: %g)\n"
            "  --rate-burst N           messages a connection may send at "
            "once before the\n"
            "                           rate applies (default: the rate, "
            "at least 1)\n"
            "  --auth-secret-file FILE  require token=<JWT> (HS256, sub = "
            "user id) signed\n"
            "                           with the secret in FILE; "
            "LUAHUB_AUTH_SECRET in the\n"
            "                           environment does the same "
            "(default: none, any\n"
            "                           client may claim any user= id)\n"
            "  --allowed-origins A,B    origins whose pages may open a "
            "WebSocket here\n"
            "                           (https://chat.example.com; * for "
            "any); a browser\n"
            "                           upgrade from another is refused "
            "403. Clients that\n"
            "                           send no Origin, and the server's "
            "own pages, are\n"
            "                           always let in (default: any "
            "origin)\n"
            "  --max-conns N            refuse (503) connections past N at "
            "once; 0: no\n"
            "                           limit (default: %ld)\n"
            "  --max-conns-per-ip N     refuse (429) a client address's "
            "connections past N\n"
            "                           at once; 0: no limit (default: "
            "%ld)\n"
            "  --trusted-proxies CIDR,...  proxies (127.0.0.1/32,"
            "10.0.0.0/8,::1/128) whose\n"
            "                           X-Forwarded-For or Forwarded: "
            "for= names the client,\n"
            "                           for --max-conns-per-ip and the "
            "logs; from anyone\n"
            "                           else those headers are ignored "
            "(default: none)\n"
            "  --compression            accept clients' permessage-deflate "
            "(RFC 7692):\n"
            "                           messages are compressed once for "
            "all recipients;\n"
            "                           --max-message counts the inflated "
            "bytes (default: off)\n"
            "  --tls-cert FILE          the port speaks TLS only (wss://, "
            "https://) with the\n"
            "                           certificate chain in FILE (PEM); "
            "needs --tls-key.\n"
            "                           TLS 1.2 and 1.3, forward-secret "
            "AEAD suites only;\n"
            "                           SIGHUP loads both files again "
            "(default: plain)\n"
            "  --tls-key FILE           the certificate's private key (PEM)\n"
            "  --redis URL              join the nodes that share this Redis "
            "as one server:\n"
            "                           redis://[:password@]HOST[:PORT][/DB], "
            "or a unix\n"
            "                           socket: a path or unix://PATH; GET "
            "/readyz answers\n"
            "                           503 until the node is connected, "
            "subscribed and\n"
            "                           registered (default: one node, no "
            "Redis)\n"
            "  --node-id ID             this node's name among them, 1-64 of "
            "A-Za-z0-9_.-\n"
            "                           (default: HOSTNAME-PID)\n"
            "  --presence-ttl SECONDS   how long the users of a node that "
            "died without a\n"
            "                           goodbye stay online elsewhere, at "
            "least 2 (default: %g)\n"
            "  --history-size N         each room keeps its newest N chat "
            "messages for\n"
            "                           clients that reconnect (join_room "
            "with since) and\n"
            "                           the history request; 0 keeps none, "
            "at most 100000\n"
            "                           (default: %ld)\n"
            "  --history-ttl SECONDS    how long those messages are kept, "
            "and how long a room\n"
            "                           left empty keeps its seq and "
            "history (default: %g)\n"
            "  --max-listed-members N   a room of at most N members lists "
            "them in the\n"
            "                           join_room and room_info acks and "
            "announces\n"
            "                           user_joined and user_left; a larger "
            "one gives\n"
            "                           member_count only (room_members "
            "pages through\n"
            "                           any room), 0-10000000 (default: "
            "%ld)\n"
            "  --presence-grace SECONDS a user whose last connection closes "
            "stays online\n"
            "                           and in their rooms this long; a "
            "connection of\n"
            "                           theirs back by then (on any node) "
            "announces nothing,\n"
            "                           so a page reload does not flap "
            "presence (default:\n"
            "                           %g: offline at once)\n"
            "  --reuse-port             SO_REUSEPORT: several nodes may "
            "listen on one\n"
            "                           port (default: off)\n"
            "  --api-key-file FILE      turn on the HTTP API for backends "
            "(POST /api/publish,\n"
            "                           GET /api/rooms/ID, GET /api/users/ID) "
            "with the key in\n"
            "                           FILE (at least 16 bytes), sent as "
            "Authorization:\n"
            "                           Bearer KEY; LUAHUB_API_KEY in the "
            "environment does the\n"
            "                           same (default: off, /api/ answers "
            "404)\n"
            "  --metrics on|off|key     GET /metrics (Prometheus text): "
            "open to anyone who\n"
            "                           reaches the port, off (404), or "
            "only with the API\n"
            "                           key (default: on)\n"
            "  --io-uring auto|on|off   read and write plain WebSocket "
            "connections through\n"
            "                           an io_uring, a batch of sockets per "
            "system call: auto\n"
            "                           when the kernel allows it (the log "
            "says which at\n"
            "                           start), on: refuse to start "
            "without it, off: one\n"
            "                           recv() or send() per socket; TLS "
            "connections always\n"
            "                           use the latter (default: auto)\n"
            "  --config FILE            read settings from FILE, a Lua "
            "file returning a\n"
            "                           table named like the flags: "
            "{ port = 9000,\n"
            "                           rate_limit = 50, reuse_port = true "
            "}; flags given\n"
            "                           on the command line win (default: "
            "none)\n"
            "  --print-config           print every setting in force and "
            "where it came\n"
            "                           from (default, the file, the "
            "command line), as a\n"
            "                           file --config takes, and exit\n"
            "  --check DIR              load the scripts in DIR as the "
            "server would, report\n"
            "                           every error with file:line, exit "
            "non-zero on any\n"
            "  -h, --help               print this help and exit\n"
            "  -V, --version            print the version and exit\n"
            "\n"
            "SECONDS may have a fraction (0.5); BYTES may end in k or m "
            "(1024-based).\n",
            d.host, d.port, d.scripts_dir, d.lua_dir, d.static_dir,
            d.ping_interval, d.idle_timeout, d.handshake_timeout, d.max_message,
            d.send_queue, log_level_name(d.level),
            log_format_name(d.log_format), d.script_timeout, d.script_memory,
            d.rate_limit, d.max_conns, d.max_conns_per_ip, d.presence_ttl,
            d.history_size, d.history_ttl, d.max_listed_members,
            d.presence_grace);
}

/* The file whose settings are being applied, for the messages (NULL
 * while the command line is parsed): set only around apply_file's use of
 * the chain, which knows values by their flag. */
static const char *applying_file;

/* The start of a message about flag's value: "luahub: --flag: " from the
 * command line, "luahub: FILE: name: " from a file. */
static void say(FILE *err, const char *flag) {
    if (!applying_file) {
        fprintf(err, "luahub: %s: ", flag);
        return;
    }
    fprintf(err, "luahub: %s: ", applying_file);
    for (const char *p = flag + 2; *p; p++)
        fputc(*p == '-' ? '_' : *p, err);
    fputs(": ", err);
}

/* The end of such a message: where to look, for the command line. */
static void said(FILE *err) {
    if (!applying_file) fputs("try 'luahub --help'\n", err);
}

static int bad(FILE *err, const char *flag, const char *val, const char *what) {
    say(err, flag);
    fprintf(err, "'%s' is not %s\n", val, what);
    said(err);
    return -1;
}

static int parse_string(FILE *err, const char *flag, const char *val, char *dst,
                        size_t cap) {
    size_t n = strlen(val);
    if (n == 0) return bad(err, flag, val, "a value (it is empty)");
    if (n >= cap) return bad(err, flag, val, "short enough");
    memcpy(dst, val, n + 1);
    return 0;
}

/* A list value whose entry why names is wrong. */
static int list_error(FILE *err, const char *flag, const char *why) {
    say(err, flag);
    fprintf(err, "%s\n", why);
    said(err);
    return -1;
}

/* A count of connections: 0 (no limit) to 10,000,000. */
static int parse_count(FILE *err, const char *flag, const char *val,
                       long *dst) {
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (!*val || *end || errno || v < 0 || v > 10000000)
        return bad(err, flag, val,
                   "a number of connections, 0-10000000 (0: no limit)");
    *dst = v;
    return 0;
}

static int parse_port(FILE *err, const char *flag, const char *val, int *dst) {
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (!*val || *end || errno || v < 0 || v > 65535)
        return bad(err, flag, val, "a port (0-65535)");
    *dst = (int)v;
    return 0;
}

static int parse_seconds(FILE *err, const char *flag, const char *val,
                         double *dst) {
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (!*val || *end || errno || !isfinite(v) || v <= 0 || v > 86400 * 365)
        return bad(err, flag, val, "a positive number of seconds");
    *dst = v;
    return 0;
}

static int parse_bytes(FILE *err, const char *flag, const char *val,
                       size_t *dst) {
    char *end;
    errno = 0;
    if (!*val || *val == '-' || *val == '+')
        return bad(err, flag, val, "a positive number of bytes");
    unsigned long long v = strtoull(val, &end, 10);
    unsigned long long mul = 1;
    if (*end == 'k' || *end == 'K')
        mul = 1024, end++;
    else if (*end == 'm' || *end == 'M')
        mul = 1024ULL * 1024, end++;
    if (end == val || *end || errno || v == 0 || v > SIZE_MAX / mul)
        return bad(err, flag, val, "a positive number of bytes");
    *dst = (size_t)(v * mul);
    return 0;
}

/* Applies argv's flags to cfg, each setting's from[] set to src. */
static config_action parse_args(config_t *cfg, int argc, char **argv,
                                config_source src, FILE *out, FILE *err) {
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            usage(out);
            return CONFIG_HELP;
        }
        if (!strcmp(arg, "-V") || !strcmp(arg, "--version")) {
            fprintf(out, "luahub %s\n", LUAHUB_VERSION);
            return CONFIG_VERSION;
        }
        if (!strcmp(arg, "--print-config")) {
            cfg->print_config = 1;
            continue;
        }
        const setting *sw = find_setting(arg);
        if (sw && sw->type == SET_SWITCH) {
            *(int *)((char *)cfg + sw->offset) = 1;
            cfg->from[sw - settings] = (unsigned char)src;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(err,
                    "luahub: unexpected argument '%s'\n"
                    "try 'luahub --help'\n",
                    arg);
            return CONFIG_ERROR;
        }
        /* --flag=value or --flag value */
        char flag[64];
        const char *val = NULL;
        const char *eq = strchr(arg, '=');
        size_t fl = eq ? (size_t)(eq - arg) : strlen(arg);
        if (fl >= sizeof flag) fl = sizeof flag - 1;
        memcpy(flag, arg, fl);
        flag[fl] = '\0';
        const setting *set = find_setting(flag);
        if (!set || set->type == SET_SWITCH) {
            fprintf(err,
                    set ? "luahub: %s takes no value\ntry 'luahub --help'\n"
                        : "luahub: unknown option '%s'\ntry 'luahub "
                          "--help'\n",
                    flag);
            return CONFIG_ERROR;
        }
        if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            fprintf(err, "luahub: %s needs a value\ntry 'luahub --help'\n",
                    flag);
            return CONFIG_ERROR;
        }
        int rc = 0;
        if (!strcmp(flag, "--host"))
            rc = parse_string(err, flag, val, cfg->host, sizeof cfg->host);
        else if (!strcmp(flag, "--port"))
            rc = parse_port(err, flag, val, &cfg->port);
        else if (!strcmp(flag, "--scripts")) {
            rc = parse_string(err, flag, val, cfg->scripts_dir,
                              sizeof cfg->scripts_dir);
            cfg->scripts_given = 1;
        } else if (!strcmp(flag, "--lua")) {
            rc =
                parse_string(err, flag, val, cfg->lua_dir, sizeof cfg->lua_dir);
            cfg->lua_given = 1;
        } else if (!strcmp(flag, "--static")) {
            rc = parse_string(err, flag, val, cfg->static_dir,
                              sizeof cfg->static_dir);
            cfg->static_given = 1;
        } else if (!strcmp(flag, "--ping-interval"))
            rc = parse_seconds(err, flag, val, &cfg->ping_interval);
        else if (!strcmp(flag, "--idle-timeout"))
            rc = parse_seconds(err, flag, val, &cfg->idle_timeout);
        else if (!strcmp(flag, "--handshake-timeout"))
            rc = parse_seconds(err, flag, val, &cfg->handshake_timeout);
        else if (!strcmp(flag, "--max-message"))
            rc = parse_bytes(err, flag, val, &cfg->max_message);
        else if (!strcmp(flag, "--send-queue"))
            rc = parse_bytes(err, flag, val, &cfg->send_queue);
        else if (!strcmp(flag, "--script-timeout")) {
            char *end;
            double v = strtod(val, &end);
            if (!*val || *end || !(v >= 0 && v <= 3600000))
                rc = bad(err, flag, val, "a number of milliseconds (0: none)");
            else
                cfg->script_timeout = v;
        } else if (!strcmp(flag, "--script-memory")) {
            /* LuaJIT (x64, not GC64) cannot address more than 2 GB. */
            char *end;
            errno = 0;
            unsigned long v = strtoul(val, &end, 10);
            if (!*val || *val == '-' || *end || errno || v > 2048)
                rc = bad(err, flag, val, "a number of megabytes, 0-2048");
            else
                cfg->script_memory = (size_t)v;
        } else if (!strcmp(flag, "--rate-limit")) {
            char *end;
            double v = strtod(val, &end);
            if (!*val || *end || !(v >= 0 && v <= 1000000))
                rc = bad(err, flag, val,
                         "messages per second, 0-1000000 (0: no limit)");
            else
                cfg->rate_limit = v;
        } else if (!strcmp(flag, "--rate-burst")) {
            char *end;
            errno = 0;
            long v = strtol(val, &end, 10);
            if (!*val || *end || errno || v < 1 || v > RATE_BURST_MAX)
                rc = bad(err, flag, val, "a number of messages, 1-4000");
            else
                cfg->rate_burst = (int)v;
        } else if (!strcmp(flag, "--auth-secret-file"))
            rc = parse_string(err, flag, val, cfg->auth_secret_file,
                              sizeof cfg->auth_secret_file);
        else if (!strcmp(flag, "--tls-cert"))
            rc = parse_string(err, flag, val, cfg->tls_cert,
                              sizeof cfg->tls_cert);
        else if (!strcmp(flag, "--tls-key"))
            rc =
                parse_string(err, flag, val, cfg->tls_key, sizeof cfg->tls_key);
        else if (!strcmp(flag, "--redis")) {
            broker_url u;
            char why[256];
            rc = parse_string(err, flag, val, cfg->redis, sizeof cfg->redis);
            if (!rc && broker_parse_url(val, &u, why, sizeof why) < 0) {
                say(err, flag);
                fprintf(err, "'%s' is not a Redis address: %s\n", val, why);
                said(err);
                rc = -1;
            }
        } else if (!strcmp(flag, "--node-id")) {
            if (!broker_valid_node_id(val))
                rc = bad(err, flag, val, "1 to 64 of A-Za-z0-9_.-");
            else
                snprintf(cfg->node_id, sizeof cfg->node_id, "%s", val);
        } else if (!strcmp(flag, "--presence-grace")) {
            /* 0 is today's behaviour; anything else a positive time. */
            if (strcmp(val, "0") == 0)
                cfg->presence_grace = 0;
            else
                rc = parse_seconds(err, flag, val, &cfg->presence_grace);
            if (!rc && cfg->presence_grace > 86400)
                rc = bad(err, flag, val, "at most a day (86400 seconds)");
        } else if (!strcmp(flag, "--presence-ttl")) {
            rc = parse_seconds(err, flag, val, &cfg->presence_ttl);
            if (!rc && cfg->presence_ttl < 2)
                rc = bad(err, flag, val, "at least 2 seconds");
        } else if (!strcmp(flag, "--history-size")) {
            char *end;
            errno = 0;
            long v = strtol(val, &end, 10);
            if (!*val || *end || errno || v < 0 || v > 100000)
                rc = bad(err, flag, val, "a number of messages, 0-100000");
            else
                cfg->history_size = v;
        } else if (!strcmp(flag, "--max-listed-members")) {
            char *end;
            errno = 0;
            long v = strtol(val, &end, 10);
            if (!*val || *end || errno || v < 0 || v > 10000000)
                rc = bad(err, flag, val, "a number of members, 0-10000000");
            else
                cfg->max_listed_members = v;
        } else if (!strcmp(flag, "--history-ttl")) {
            rc = parse_seconds(err, flag, val, &cfg->history_ttl);
        } else if (!strcmp(flag, "--max-conns") ||
                   !strcmp(flag, "--max-conns-per-ip"))
            rc = parse_count(err, flag, val,
                             !strcmp(flag, "--max-conns")
                                 ? &cfg->max_conns
                                 : &cfg->max_conns_per_ip);
        else if (!strcmp(flag, "--allowed-origins")) {
            char why[256];
            rc = parse_string(err, flag, val, cfg->allowed_origins,
                              sizeof cfg->allowed_origins);
            if (!rc && origin_list_check(val, why, sizeof why) < 0)
                rc = list_error(err, flag, why);
        } else if (!strcmp(flag, "--trusted-proxies")) {
            char why[256];
            netaddr_list l = {NULL, 0};
            rc = parse_string(err, flag, val, cfg->trusted_proxies,
                              sizeof cfg->trusted_proxies);
            if (!rc && netaddr_list_parse(val, &l, why, sizeof why) < 0)
                rc = list_error(err, flag, why);
            netaddr_list_free(&l);
        } else if (!strcmp(flag, "--check"))
            rc = parse_string(err, flag, val, cfg->check_dir,
                              sizeof cfg->check_dir);
        else if (!strcmp(flag, "--api-key-file"))
            rc = parse_string(err, flag, val, cfg->api_key_file,
                              sizeof cfg->api_key_file);
        else if (!strcmp(flag, "--metrics")) {
            if (!strcmp(val, "on"))
                cfg->metrics = CONFIG_METRICS_ON;
            else if (!strcmp(val, "off"))
                cfg->metrics = CONFIG_METRICS_OFF;
            else if (!strcmp(val, "key"))
                cfg->metrics = CONFIG_METRICS_KEY;
            else
                rc = bad(err, flag, val, "on, off or key");
        } else if (!strcmp(flag, "--io-uring")) {
            if (!strcmp(val, "auto"))
                cfg->io_uring = CONFIG_IO_URING_AUTO;
            else if (!strcmp(val, "on"))
                cfg->io_uring = CONFIG_IO_URING_ON;
            else if (!strcmp(val, "off"))
                cfg->io_uring = CONFIG_IO_URING_OFF;
            else
                rc = bad(err, flag, val, "auto, on or off");
        } else if (!strcmp(flag, "--log-level")) {
            if (log_level_parse(val, &cfg->level) < 0)
                rc = bad(err, flag, val, "a level (error, warn, info, debug)");
        } else if (!strcmp(flag, "--log-format")) {
            if (log_format_parse(val, &cfg->log_format) < 0)
                rc = bad(err, flag, val, "a log format (text, json)");
        } else if (!strcmp(flag, "--config"))
            rc = parse_string(err, flag, val, cfg->config_file,
                              sizeof cfg->config_file);
        if (rc) return CONFIG_ERROR;
        cfg->from[set - settings] = (unsigned char)src;
    }
    return cfg->check_dir[0] ? CONFIG_CHECK : CONFIG_RUN;
}

/* One setting of the file: its name and the kind of its value checked
 * here, the value by the flag's own branch of the chain. */
static int apply_entry(config_t *cfg, const config_entry *e, FILE *out,
                       FILE *err) {
    const char *file = cfg->config_file;
    char flag[80];
    const setting *set = NULL;
    if (strlen(e->name) < sizeof flag - 3 && !strchr(e->name, '-')) {
        snprintf(flag, sizeof flag, "--%s", e->name);
        for (char *p = flag + 2; *p; p++)
            if (*p == '_') *p = '-';
        set = find_setting(flag);
    }
    if (!set || set->type == SET_COMMAND) {
        fprintf(err,
                "luahub: %s: %s: %s (a name is a flag without its --, "
                "with _ for -: rate_limit for --rate-limit)\n",
                file, e->name,
                set ? "not a setting a file can hold, only a flag"
                    : "no such setting");
        return -1;
    }
    if (set->type == SET_SWITCH) {
        if (e->kind != CONFIG_VALUE_BOOLEAN) {
            fprintf(err,
                    "luahub: %s: %s: %s%s%s is not true or false (it "
                    "is a switch, as %s)\n",
                    file, e->name, e->kind == CONFIG_VALUE_STRING ? "'" : "",
                    e->text, e->kind == CONFIG_VALUE_STRING ? "'" : "", flag);
            return -1;
        }
        *(int *)((char *)cfg + set->offset) = !strcmp(e->text, "true");
        cfg->from[set - settings] = CONFIG_FROM_FILE;
        return 0;
    }
    if (e->kind == CONFIG_VALUE_BOOLEAN || e->kind == CONFIG_VALUE_OTHER ||
        (e->kind == CONFIG_VALUE_LIST && set->type != SET_LIST)) {
        fprintf(err, "luahub: %s: %s: %s is not a value for %s (give a %s)\n",
                file, e->name,
                e->kind == CONFIG_VALUE_LIST ? "a list" : e->text, flag,
                set->type == SET_LIST ? "string or a list of strings"
                                      : "number or a string");
        return -1;
    }
    size_t n = strlen(flag) + strlen(e->text) + 2;
    char *arg = xmalloc(n);
    snprintf(arg, n, "%s=%s", flag, e->text);
    char *argv[] = {"luahub", arg, NULL};
    applying_file = file;
    config_action a = parse_args(cfg, 2, argv, CONFIG_FROM_FILE, out, err);
    applying_file = NULL;
    free(arg);
    return a == CONFIG_ERROR ? -1 : 0;
}

static int apply_file(config_t *cfg, FILE *out, FILE *err) {
    config_entries e;
    char why[2048];
    if (config_file_read(cfg->config_file, &e, why, sizeof why) < 0) {
        fprintf(err, "luahub: %s\n", why);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < e.n && !rc; i++)
        rc = apply_entry(cfg, &e.v[i], out, err);
    config_file_free(&e);
    return rc;
}

config_action config_parse(config_t *cfg, int argc, char **argv, FILE *out,
                           FILE *err) {
    /* The command line alone first: --help, --version and a bad flag need
     * no file, and it names the file. Then, with a file: the file, and the
     * command line again on top of it, so that a flag wins. */
    config_t cli = *cfg;
    config_action a =
        parse_args(&cli, argc, argv, CONFIG_FROM_COMMAND_LINE, out, err);
    if (a == CONFIG_HELP || a == CONFIG_VERSION || a == CONFIG_ERROR) return a;
    if (cli.config_file[0]) {
        memcpy(cfg->config_file, cli.config_file, sizeof cfg->config_file);
        if (apply_file(cfg, out, err) < 0) return CONFIG_ERROR;
        parse_args(cfg, argc, argv, CONFIG_FROM_COMMAND_LINE, out, err);
    } else {
        *cfg = cli;
    }
    if (!cfg->tls_cert[0] != !cfg->tls_key[0]) {
        fprintf(err,
                "luahub: %s needs %s too (the certificate and its key)\n"
                "try 'luahub --help'\n",
                cfg->tls_cert[0] ? "--tls-cert" : "--tls-key",
                cfg->tls_cert[0] ? "--tls-key" : "--tls-cert");
        return CONFIG_ERROR;
    }
    if (cfg->print_config) return CONFIG_PRINT;
    return cfg->check_dir[0] ? CONFIG_CHECK : CONFIG_RUN;
}

/* s as a Lua string literal. */
static void lua_quote(buf_t *b, const char *s) {
    buf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            buf_printf(b, "\\%c", *p);
        else if (*p == '\n')
            buf_puts(b, "\\n");
        else if (*p < 0x20 || *p == 0x7f)
            buf_printf(b, "\\%03u", *p);
        else
            buf_putc(b, (char)*p);
    }
    buf_putc(b, '"');
}

/* A double that reads back the same, as short as it goes. */
static void put_number(buf_t *b, double v) {
    char s[64];
    snprintf(s, sizeof s, "%.15g", v);
    if (strtod(s, NULL) != v) snprintf(s, sizeof s, "%.17g", v);
    buf_puts(b, s);
}

void config_print(const config_t *cfg, FILE *out) {
    fprintf(out,
            "-- luahub %s: the settings in force (luahub --print-config).\n"
            "-- A file for --config: each name is a flag without its --, "
            "with _ for -.\n"
            "return {\n",
            LUAHUB_VERSION);
    buf_t b;
    buf_init(&b, 0);
    for (size_t k = 0; k < N_SETTINGS; k++) {
        const setting *set = &settings[k];
        const char *at = (const char *)cfg + set->offset;
        if (set->type == SET_COMMAND) continue;
        buf_reset(&b);
        buf_puts(&b, "  ");
        for (const char *p = set->flag + 2; *p; p++)
            buf_putc(&b, *p == '-' ? '_' : *p);
        buf_puts(&b, " = ");
        /* The value, read by its type from where the row says. */
        union {
            int i;
            long l;
            double d;
            size_t z;
            log_level lv;
            log_format lf;
        } v;
        static const size_t size[] = {
            [SET_SWITCH] = sizeof v.i,  [SET_INT] = sizeof v.i,
            [SET_LONG] = sizeof v.l,    [SET_DOUBLE] = sizeof v.d,
            [SET_SIZE] = sizeof v.z,    [SET_LEVEL] = sizeof v.lv,
            [SET_FORMAT] = sizeof v.lf, [SET_METRICS] = sizeof v.i,
            [SET_URING] = sizeof v.i};
        memset(&v, 0, sizeof v);
        if (size[set->type]) memcpy(&v, at, size[set->type]);
        int unset = 0;
        switch (set->type) {
        case SET_SWITCH:
            buf_puts(&b, v.i ? "true" : "false");
            break;
        case SET_STRING:
        case SET_LIST:
            unset = set->unset && !*at;
            if (unset)
                buf_puts(&b, "nil");
            else
                lua_quote(&b, at);
            break;
        case SET_INT:
            unset = set->unset && !v.i;
            if (unset)
                buf_puts(&b, "nil");
            else
                buf_printf(&b, "%d", v.i);
            break;
        case SET_LONG:
            buf_printf(&b, "%ld", v.l);
            break;
        case SET_DOUBLE:
            put_number(&b, v.d);
            break;
        case SET_SIZE:
            buf_printf(&b, "%zu", v.z);
            break;
        case SET_LEVEL:
            lua_quote(&b, log_level_name(v.lv));
            break;
        case SET_FORMAT:
            lua_quote(&b, log_format_name(v.lf));
            break;
        case SET_METRICS:
            lua_quote(&b, v.i == CONFIG_METRICS_OFF   ? "off"
                          : v.i == CONFIG_METRICS_KEY ? "key"
                                                      : "on");
            break;
        case SET_URING:
            lua_quote(&b, v.i == CONFIG_IO_URING_ON    ? "on"
                          : v.i == CONFIG_IO_URING_OFF ? "off"
                                                       : "auto");
            break;
        case SET_COMMAND:
            break;
        }
        buf_putc(&b, ',');
        while (b.len < 40)
            buf_putc(&b, ' ');
        buf_puts(&b, " -- from: ");
        switch ((config_source)cfg->from[k]) {
        case CONFIG_FROM_DEFAULT:
            buf_puts(&b, "default");
            break;
        case CONFIG_FROM_FILE:
            buf_puts(&b, cfg->config_file);
            break;
        case CONFIG_FROM_COMMAND_LINE:
            buf_puts(&b, "command line");
            break;
        }
        if (unset) buf_printf(&b, " (%s)", set->unset);
        buf_putc(&b, '\n');
        fwrite(buf_content(&b), 1, b.len, out);
    }
    buf_close(&b);
    fputs("}\n", out);
    const char *secret = getenv("LUAHUB_AUTH_SECRET");
    if (secret && *secret)
        fputs("-- LUAHUB_AUTH_SECRET is set in the environment: clients "
              "must present tokens\n",
              out);
}

/* 1 when dir is a directory and, if marker is given, holds that file. */
static int has(const char *dir, const char *marker) {
    char path[2100];
    struct stat st;
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) return 0;
    if (!marker) return 1;
    snprintf(path, sizeof path, "%s/%s", dir, marker);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Looks for the default dir (cap bytes, holding the relative default) in
 * the working directory, then beside and above the binary. Returns 1 and
 * rewrites dir when found; 0 with the paths tried in tried otherwise. */
static int locate(char *dir, size_t cap, const char *marker, const char *exe,
                  char *tried, size_t triedlen) {
    char bindir[1024] = "";
    if (exe && strlen(exe) < sizeof bindir) {
        strcpy(bindir, exe);
        char *slash = strrchr(bindir, '/');
        if (slash)
            *slash = '\0';
        else
            bindir[0] = '\0';
    }
    char cand[3][2100];
    int n = 0;
    snprintf(cand[n++], sizeof cand[0], "%s", dir);
    if (bindir[0]) {
        snprintf(cand[n++], sizeof cand[0], "%s/../%s", bindir, dir);
        snprintf(cand[n++], sizeof cand[0], "%s/../share/luahub/%s", bindir,
                 dir);
    }
    size_t used = 0;
    tried[0] = '\0';
    for (int i = 0; i < n; i++) {
        char real[PATH_MAX];
        if (has(cand[i], marker) && realpath(cand[i], real) &&
            strlen(real) < cap) {
            strcpy(dir, real);
            return 1;
        }
        int w = snprintf(tried + used, triedlen - used, "%s%s", i ? ", " : "",
                         cand[i]);
        if (w > 0 && (size_t)w < triedlen - used) used += (size_t)w;
    }
    return 0;
}

int config_locate(config_t *cfg, const char *exe, FILE *err) {
    char tried[8192];
    if (cfg->lua_given) {
        if (!has(cfg->lua_dir, "runtime.lua")) {
            fprintf(err,
                    "luahub: --lua %s: no runtime.lua there (give the "
                    "directory that holds runtime.lua)\n",
                    cfg->lua_dir);
            return -1;
        }
    } else if (!locate(cfg->lua_dir, sizeof cfg->lua_dir, "runtime.lua", exe,
                       tried, sizeof tried)) {
        fprintf(err,
                "luahub: cannot find the Lua runtime (runtime.lua) in "
                "%s; give its directory with --lua DIR\n",
                tried);
        return -1;
    }
    if (cfg->check_dir[0]) return 0;
    if (!cfg->scripts_given &&
        !locate(cfg->scripts_dir, sizeof cfg->scripts_dir, NULL, exe, tried,
                sizeof tried)) {
        fprintf(err,
                "luahub: cannot find a scripts directory in %s; give "
                "one with --scripts DIR\n",
                tried);
        return -1;
    }
    if (!cfg->static_given)
        locate(cfg->static_dir, sizeof cfg->static_dir, "index.html", exe,
               tried, sizeof tried);
    return 0;
}
