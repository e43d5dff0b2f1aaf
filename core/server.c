/* server.c -- see server.h.
 *
 * The transport (transport.c) owns the client sockets; libwebsockets is
 * kept for plain HTTP only (static files, /healthz), on a vhost that does
 * not listen: the transport hands it each request it should serve, with a
 * head rebuilt to fit it (lws_adopt_socket_vhost_readbuf). lws 4.1's own
 * front door could not be used: its header parser drops a connection
 * without a word when a head overflows it, its handshake header buffers
 * are a fixed pool that silent sockets fill, and its frame parser reports
 * a frame's length only when payload arrives. */
#include "server.h"
#include "clock.h"
#include "codes.h"

#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#include "alloc.h"
#include "api.h"
#include "auth.h"
#include "buf.h"
#include "client_js.h"
#include "conn.h"
#include "hub.h"
#include "json.h"
#include "log.h"
#include "tls.h"
#include "transport.h"

struct server {
    const config_t *cfg;
    uv_loop_t loop;
    struct lws_context *ctx;
    struct lws_vhost *vhost;
    auth_t *auth;
    tls_t *tls; /* --tls-cert, or NULL */
    transport_t *transport;
    hub_t *hub;
    api_t *api; /* /metrics and /api/ */
    hub_transport ops;
    uv_timer_t shutdown_timer;
    uv_timer_t sweep_timer; /* hub_sweep, once a second */
    int stopping;
    int ctx_destroying;
    int64_t stop_started;
    struct lws_protocols protocols[2];
    struct lws_http_mount mount_static, mount_healthz, mount_readyz,
        mount_client_js;
};

/* An HTTP request's own state (lws allocates it): how much of a long
 * answer of ours (the JavaScript client) is written. */
typedef struct {
    int client_js; /* this request is GET /luahub.js */
    size_t sent;
} http_pss;

static server_t *server_of(struct lws *wsi) {
    return lws_context_user(lws_get_context(wsi));
}

/* ---- plain HTTP (libwebsockets) ---------------------------------------- */

/* Every HTTP connection ends after one response (the transport asks lws
 * for that: Connection: close in the head it hands over), and the response
 * must say so, or a client keeping connections alive sends its next
 * request down one that is closing. lws 4.1 says it only for responses
 * without a length, so the header is added here: to files through
 * ADD_HEADERS, to our own answers in reply(). */
static int add_close(struct lws *wsi, unsigned char **p, unsigned char *end) {
    return lws_add_http_header_by_token(
        wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close", 5, p, end);
}

/* One whole response of ours: status, type and body. */
static int reply(struct lws *wsi, unsigned status, const char *type,
                 const char *body, size_t blen) {
    unsigned char buf[LWS_PRE + 512], *start = buf + LWS_PRE, *p = start,
                                      *end = buf + sizeof buf - 1;
    if (blen > 256) return 1;
    if (lws_add_http_common_headers(wsi, status, type, (lws_filepos_t)blen, &p,
                                    end) ||
        add_close(wsi, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return 1;
    memcpy(buf + LWS_PRE, body, blen);
    if (lws_write(wsi, buf + LWS_PRE, blen, LWS_WRITE_HTTP_FINAL) != (int)blen)
        return 1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int serve_healthz(server_t *s, struct lws *wsi) {
    char body[128];
    int blen =
        snprintf(body, sizeof body, "{\"status\":\"ok\",\"connections\":%zu}\n",
                 conns_count(hub_conns(s->hub)));
    return reply(wsi, HTTP_STATUS_OK, "application/json", body, (size_t)blen);
}

/* Readiness, for load balancers: 200 while the node can serve (with
 * --redis: Redis reachable and subscribed), 503 with the reason
 * otherwise. */
static int serve_readyz(server_t *s, struct lws *wsi) {
    char why[160];
    if (hub_ready(s->hub, why, sizeof why)) {
        static const char ok[] = "{\"ready\":true}\n";
        return reply(wsi, HTTP_STATUS_OK, "application/json", ok,
                     sizeof ok - 1);
    }
    buf_t b;
    buf_init(&b, 0);
    buf_puts(&b, "{\"ready\":false,\"reason\":");
    json_write_string(&b, why, strlen(why));
    buf_puts(&b, "}\n");
    int rc = reply(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, "application/json",
                   buf_content(&b), b.len);
    buf_close(&b);
    return rc;
}

/* GET /luahub.js: the JavaScript client, from the binary. It is longer
 * than one write takes, so the head goes now and the body a piece at a
 * time, each time lws says the socket takes more (send_client_js). */
static int serve_client_js(struct lws *wsi, http_pss *pss) {
    unsigned char buf[LWS_PRE + 512], *start = buf + LWS_PRE, *p = start,
                                      *end = buf + sizeof buf - 1;
    static const char nocache[] = "no-cache";
    if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK,
                                    "text/javascript; charset=utf-8",
                                    (lws_filepos_t)client_js_len, &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                     (const unsigned char *)nocache,
                                     (int)sizeof nocache - 1, &p, end) ||
        add_close(wsi, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return 1;
    pss->client_js = 1;
    pss->sent = 0;
    lws_callback_on_writable(wsi);
    return 0;
}

static int send_client_js(struct lws *wsi, http_pss *pss) {
    enum { CHUNK = 4096 };
    unsigned char buf[LWS_PRE + CHUNK];
    size_t n = client_js_len - pss->sent;
    if (n > CHUNK) n = CHUNK;
    int last = pss->sent + n == client_js_len;
    memcpy(buf + LWS_PRE, client_js + pss->sent, n);
    if (lws_write(wsi, buf + LWS_PRE, n,
                  last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)n)
        return 1;
    pss->sent += n;
    if (!last) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason,
                    void *user, void *in, size_t len) {
    if (reason == LWS_CALLBACK_HTTP_WRITEABLE && user &&
        ((http_pss *)user)->client_js)
        return send_client_js(wsi, user);
    if (reason == LWS_CALLBACK_HTTP) {
        /* The /healthz and /readyz mounts route here, and so does a static
         * file lws could not find. */
        char uri[16];
        int n = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI);
        if ((n == 8 || n == 7) &&
            lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) > 0) {
            if (strcmp(uri, "/healthz") == 0)
                return serve_healthz(server_of(wsi), wsi);
            if (strcmp(uri, "/readyz") == 0)
                return serve_readyz(server_of(wsi), wsi);
        }
        if (n == 10 &&
            lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) > 0 &&
            strcmp(uri, "/luahub.js") == 0 && user)
            return serve_client_js(wsi, user);
        static const char nf[] = "not found\n";
        return reply(wsi, HTTP_STATUS_NOT_FOUND, "text/plain; charset=utf-8",
                     nf, sizeof nf - 1);
    }
    if (reason == LWS_CALLBACK_ADD_HEADERS) {
        struct lws_process_html_args *args = in;
        unsigned char *p = (unsigned char *)args->p;
        if (add_close(wsi, &p, p + args->max_len)) return 1;
        args->max_len -= (int)(p - (unsigned char *)args->p);
        args->p = (char *)p;
        return 0;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* The transport hands over a plain HTTP request. lws serves it at once
 * (the whole head is there) and returns NULL both when that closed the
 * connection and when adopting failed (it closes fd then): nothing to
 * tell apart. */
static void serve_http(void *ud, int fd, const char *head, size_t len) {
    server_t *s = ud;
    (void)lws_adopt_socket_vhost_readbuf(s->vhost, fd, head, len);
}

/* ---- stopping ------------------------------------------------------------ */

static void close_handle(uv_handle_t *h) {
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void finish_stop(server_t *s) {
    uv_timer_stop(&s->shutdown_timer);
    transport_close_all(s->transport);
    if (s->hub) hub_shutdown(s->hub);
    /* On a foreign loop, destruction finishes while the loop runs; lws
     * clears s->ctx (info.pcontext) when it is complete. */
    if (s->ctx && !s->ctx_destroying) {
        s->ctx_destroying = 1;
        lws_context_destroy(s->ctx);
    }
    close_handle((uv_handle_t *)&s->shutdown_timer);
    close_handle((uv_handle_t *)&s->sweep_timer);
}

static void on_sweep(uv_timer_t *t) {
    server_t *s = t->data;
    hub_sweep(s->hub);
}

static void on_shutdown_tick(uv_timer_t *t) {
    server_t *s = t->data;
    size_t left = conns_count(hub_conns(s->hub));
    if (left == 0 || clock_now_ms() - s->stop_started > 2000) {
        log_info("server", "stopped (%zu connections left to drop)", left);
        finish_stop(s);
    }
}

void server_stop(server_t *s, const char *why) {
    if (s->stopping) return;
    s->stopping = 1;
    s->stop_started = clock_now_ms();
    log_info("server", "%s: closing %zu connections", why,
             conns_count(hub_conns(s->hub)));
    transport_shutdown(s->transport, CLOSE_GOING_AWAY, "server shutting down");
    uv_timer_start(&s->shutdown_timer, on_shutdown_tick, 20, 20);
}

/* ---- lws logs ---------------------------------------------------------- */

static void lws_log(int level, const char *line) {
    log_level lv = level & LLL_ERR    ? LOG_ERROR
                   : level & LLL_WARN ? LOG_WARN
                                      : LOG_DEBUG;
    /* lws 4.1 reports every adoption with a read buffer at error level
     * ("adopt_socket_readbuf: calling service"): routine here. */
    if (strncmp(line, "adopt_socket_readbuf", 20) == 0) lv = LOG_DEBUG;
    if (!log_enabled(lv)) return;
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    log_write(lv, "lws", "%.*s", (int)n, line);
}

/* ---- lifecycle --------------------------------------------------------- */

server_t *server_create(const config_t *cfg) {
    server_t *s = xcalloc(1, sizeof *s);
    s->cfg = cfg;
    char err[1024];
    s->auth = auth_create(cfg->auth_secret_file, err, sizeof err);
    if (!s->auth) {
        log_error("server", "%s", err);
        free(s);
        return NULL;
    }
    lws_set_log_level(LLL_ERR | LLL_WARN |
                          (log_enabled(LOG_DEBUG) ? LLL_NOTICE : 0),
                      lws_log);
    /* Every handle server_destroy closes exists from here on, so that any
     * failure below can end with it. */
    uv_loop_init(&s->loop);
    uv_timer_init(&s->loop, &s->shutdown_timer);
    s->shutdown_timer.data = s;
    uv_timer_init(&s->loop, &s->sweep_timer);
    s->sweep_timer.data = s;
    /* Housekeeping: it must not keep the loop alive on its own. */
    uv_unref((uv_handle_t *)&s->sweep_timer);
    s->transport = transport_create(&s->loop, cfg, s->auth, serve_http, s);
    if (cfg->tls_cert[0]) {
        s->tls = tls_create(cfg->tls_cert, cfg->tls_key, err, sizeof err);
        if (!s->tls) {
            log_error("server", "%s", err);
            server_destroy(s);
            return NULL;
        }
        transport_set_tls(s->transport, s->tls);
    }

    /* Bound first: a port in use or a host that is not ours stops the
     * start with one line, before anything claims to be listening. */
    if (transport_listen(s->transport, err, sizeof err) < 0) {
        log_error("server", "%s", err);
        server_destroy(s);
        return NULL;
    }
    s->ops = transport_hub_ops(s->transport);
    s->hub = hub_create(cfg, &s->ops, err, sizeof err);
    if (!s->hub) {
        log_error("script", "cannot load the scripts: %s", err);
        server_destroy(s);
        return NULL;
    }
    transport_set_hub(s->transport, s->hub);
    s->api = api_create(s->hub, cfg, err, sizeof err);
    if (!s->api) {
        log_error("server", "%s", err);
        server_destroy(s);
        return NULL;
    }
    transport_set_api(s->transport, s->api);
    uv_timer_start(&s->sweep_timer, on_sweep, 1000, 1000);

    s->protocols[0] = (struct lws_protocols){
        .name = "http",
        .callback = callback,
        .per_session_data_size = sizeof(http_pss),
    };
    s->mount_client_js = (struct lws_http_mount){
        .mountpoint = "/luahub.js",
        .mountpoint_len = 10,
        .origin = "http",
        .origin_protocol = LWSMPRO_CALLBACK,
    };
    s->mount_readyz = (struct lws_http_mount){
        .mount_next = &s->mount_client_js,
        .mountpoint = "/readyz",
        .mountpoint_len = 7,
        .origin = "http",
        .origin_protocol = LWSMPRO_CALLBACK,
    };
    s->mount_healthz = (struct lws_http_mount){
        .mount_next = &s->mount_readyz,
        .mountpoint = "/healthz",
        .mountpoint_len = 8,
        .origin = "http",
        .origin_protocol = LWSMPRO_CALLBACK,
    };
    s->mount_static = (struct lws_http_mount){
        .mount_next = &s->mount_healthz,
        .mountpoint = "/",
        .mountpoint_len = 1,
        .origin = cfg->static_dir,
        .def = "index.html",
        .origin_protocol = LWSMPRO_FILE,
        /* for LWS_CALLBACK_ADD_HEADERS (Connection: close) */
        .protocol = "http",
    };
    struct stat st;
    if (stat(cfg->static_dir, &st) < 0 || !S_ISDIR(st.st_mode))
        log_warn("server",
                 "static directory %s not found: / will answer 404 "
                 "(give one with --static DIR)",
                 cfg->static_dir);

    void *loops[1] = {&s->loop};
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    /* The transport listens; lws serves the requests it is handed. */
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    info.protocols = s->protocols;
    info.mounts = &s->mount_static;
    info.options =
        LWS_SERVER_OPTION_LIBUV |
        LWS_SERVER_OPTION_HTTP_HEADERS_SECURITY_BEST_PRACTICES_ENFORCE;
    info.foreign_loops = loops;
    info.user = s;
    info.pcontext = &s->ctx;
    info.timeout_secs = 10;
    s->ctx = lws_create_context(&info);
    s->vhost = s->ctx ? lws_get_vhost_by_name(s->ctx, "default") : NULL;
    if (!s->vhost) {
        log_error("server", "cannot start the HTTP server (libwebsockets)");
        server_destroy(s);
        return NULL;
    }

    int port = transport_port(s->transport);
    log_info("server",
             "listening host=%s port=%d ws=%s://%s:%d/ws static=%s on=%s%s",
             cfg->host, port, s->tls ? "wss" : "ws", cfg->host, port,
             cfg->static_dir, transport_addresses(s->transport),
             s->tls ? " tls=on" : "");
    if (api_enabled(s->api))
        log_info("server", "HTTP API on: POST /api/publish, GET /api/rooms/ID, "
                           "GET /api/users/ID (Authorization: Bearer)");
    if (auth_has_secret(s->auth))
        log_info("server", "auth: clients must present token=<JWT> "
                           "(HS256, sub = user id)");
    else
        log_warn("server", "no auth secret: development mode, any client "
                           "may claim any user id (insecure)");
    return s;
}

int server_run(server_t *s) {
    uv_run(&s->loop, UV_RUN_DEFAULT);
    return 0;
}

void server_destroy(server_t *s) {
    if (!s) return;
    finish_stop(s);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    /* The second call completes what the loop could not (libuv: the
     * context's own handles are closed by now). */
    if (s->ctx) lws_context_destroy(s->ctx);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    if (s->hub) hub_destroy(s->hub);
    s->hub = NULL;
    /* What the hub closed finishes closing. */
    uv_run(&s->loop, UV_RUN_DEFAULT);
    transport_destroy(s->transport);
    s->transport = NULL;
    api_destroy(s->api);
    tls_destroy(s->tls);
    if (uv_loop_close(&s->loop) != 0)
        log_debug("server", "loop closed with handles still open");
    auth_destroy(s->auth);
    free(s);
}

void server_reload_tls(server_t *s) {
    if (!s->tls) return;
    char err[1024];
    if (tls_reload(s->tls, err, sizeof err) < 0)
        log_error("server",
                  "TLS reload failed, the certificate loaded before is "
                  "served on: %s",
                  err);
    else
        log_info("server", "TLS: certificate and key reloaded from %s, %s",
                 s->cfg->tls_cert, s->cfg->tls_key);
}

hub_t *server_hub(server_t *s) {
    return s->hub;
}

uv_loop_t *server_loop(server_t *s) {
    return &s->loop;
}
