/* process.c -- see process.h. */
#include "process.h"

#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <uv.h>

#include "hub.h"
#include "log.h"

typedef struct process {
    server_t *server;
    const config_t *cfg;
    uv_signal_t sig_int, sig_term, sig_hup;
    /* --watch: scripts/, scripts/lib, scripts/hooks (inotify is not
     * recursive), and a short timer that gathers a burst of changes (an
     * editor's save, a cp -r) into one reload. */
    uv_fs_event_t watchers[3];
    int nwatchers, watching;
    uv_timer_t watch_timer;
} process_t;

void process_setup(void) {
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void on_signal(uv_signal_t *h, int signum) {
    process_t *p = h->data;
    if (signum == SIGHUP) {
        /* Each on its own: a certificate that fails to load does not stop
         * the scripts' reload, nor the other way round. */
        log_info("server", "SIGHUP: reloading scripts%s",
                 p->cfg->tls_cert[0] ? " and the TLS certificate" : "");
        hub_reload(server_hub(p->server));
        server_reload_tls(p->server);
        return;
    }
    server_stop(p->server, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

static void on_watch_settled(uv_timer_t *t) {
    process_t *p = t->data;
    log_info("server", "scripts changed: reloading");
    hub_reload(server_hub(p->server));
}

static void on_watch_event(uv_fs_event_t *h, const char *file, int events,
                           int status) {
    process_t *p = h->data;
    uv_timer_start(&p->watch_timer, on_watch_settled, 100, 0);
}

static void start_watch(process_t *p, uv_loop_t *loop) {
    static const char *const subdirs[] = {"", "/lib", "/hooks"};
    uv_timer_init(loop, &p->watch_timer);
    p->watch_timer.data = p;
    uv_unref((uv_handle_t *)&p->watch_timer);
    p->watching = 1;
    for (int i = 0; i < 3; i++) {
        char path[1100];
        snprintf(path, sizeof path, "%s%s", p->cfg->scripts_dir, subdirs[i]);
        struct stat st;
        if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) continue;
        uv_fs_event_t *w = &p->watchers[p->nwatchers];
        uv_fs_event_init(loop, w);
        w->data = p;
        if (uv_fs_event_start(w, on_watch_event, path, 0) == 0) {
            uv_unref((uv_handle_t *)w);
            p->nwatchers++;
            log_info("server", "watching %s", path);
        } else {
            uv_close((uv_handle_t *)w, NULL);
        }
    }
}

int process_run(server_t *s, const config_t *cfg) {
    process_t p = {.server = s, .cfg = cfg};
    uv_loop_t *loop = server_loop(s);
    /* Unreferenced: they do not keep the loop running once the server has
     * stopped. */
    uv_signal_t *sigs[] = {&p.sig_int, &p.sig_term, &p.sig_hup};
    int signums[] = {SIGINT, SIGTERM, SIGHUP};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(loop, sigs[i]);
        sigs[i]->data = &p;
        uv_signal_start(sigs[i], on_signal, signums[i]);
        uv_unref((uv_handle_t *)sigs[i]);
    }
    if (cfg->watch) start_watch(&p, loop);
    int rc = server_run(s);
    for (int i = 0; i < 3; i++)
        uv_close((uv_handle_t *)sigs[i], NULL);
    for (int i = 0; i < p.nwatchers; i++)
        uv_close((uv_handle_t *)&p.watchers[i], NULL);
    if (p.watching) uv_close((uv_handle_t *)&p.watch_timer, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return rc;
}
