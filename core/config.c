/* config.c -- see config.h. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "broker.h"
#include "netaddr.h"
#include "origin.h"

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
            "  --unsafe-lua             lift the scripts' sandbox (io, os, "
            "ffi, debug)\n"
            "                           (default: off)\n"
            "  --script-timeout MS      stop a handler, hook or timer "
            "running longer\n"
            "                           (handler_error \"timed out\"); 0: "
            "never (default: %g)\n"
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
            d.send_queue, log_level_name(d.level), d.script_timeout,
            d.script_memory, d.rate_limit, d.max_conns, d.max_conns_per_ip,
            d.presence_ttl, d.history_size, d.history_ttl, d.presence_grace);
}

static int bad(FILE *err, const char *flag, const char *val, const char *what) {
    fprintf(err, "luahub: %s: '%s' is not %s\ntry 'luahub --help'\n", flag, val,
            what);
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
    fprintf(err, "luahub: %s: %s\ntry 'luahub --help'\n", flag, why);
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

config_action config_parse(config_t *cfg, int argc, char **argv, FILE *out,
                           FILE *err) {
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
        if (!strcmp(arg, "--unsafe-lua")) {
            cfg->unsafe_lua = 1;
            continue;
        }
        if (!strcmp(arg, "--watch")) {
            cfg->watch = 1;
            continue;
        }
        if (!strcmp(arg, "--compression")) {
            cfg->compression = 1;
            continue;
        }
        if (!strcmp(arg, "--reuse-port")) {
            cfg->reuse_port = 1;
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
        static const char *const known[] = {"--host",
                                            "--port",
                                            "--scripts",
                                            "--lua",
                                            "--static",
                                            "--ping-interval",
                                            "--idle-timeout",
                                            "--max-message",
                                            "--send-queue",
                                            "--log-level",
                                            "--check",
                                            "--script-timeout",
                                            "--script-memory",
                                            "--auth-secret-file",
                                            "--rate-limit",
                                            "--rate-burst",
                                            "--handshake-timeout",
                                            "--allowed-origins",
                                            "--max-conns",
                                            "--max-conns-per-ip",
                                            "--trusted-proxies",
                                            "--tls-cert",
                                            "--tls-key",
                                            "--redis",
                                            "--node-id",
                                            "--presence-ttl",
                                            "--history-size",
                                            "--history-ttl",
                                            "--presence-grace",
                                            "--api-key-file",
                                            "--metrics",
                                            NULL};
        int k = 0;
        while (known[k] && strcmp(known[k], flag) != 0)
            k++;
        if (!known[k]) {
            fprintf(err, "luahub: unknown option '%s'\ntry 'luahub --help'\n",
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
                fprintf(err,
                        "luahub: %s: '%s' is not a Redis address: %s\n"
                        "try 'luahub --help'\n",
                        flag, val, why);
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
        } else if (!strcmp(flag, "--log-level")) {
            if (log_level_parse(val, &cfg->level) < 0)
                rc = bad(err, flag, val, "a level (error, warn, info, debug)");
        }
        if (rc) return CONFIG_ERROR;
    }
    if (!cfg->tls_cert[0] != !cfg->tls_key[0]) {
        fprintf(err,
                "luahub: %s needs %s too (the certificate and its key)\n"
                "try 'luahub --help'\n",
                cfg->tls_cert[0] ? "--tls-cert" : "--tls-key",
                cfg->tls_cert[0] ? "--tls-key" : "--tls-cert");
        return CONFIG_ERROR;
    }
    return cfg->check_dir[0] ? CONFIG_CHECK : CONFIG_RUN;
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
