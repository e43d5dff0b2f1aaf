/* test_config.c -- unit tests for core/config.c: what `luahub --help`
 * promises, and a clear exit-2 error for every bad flag or value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

typedef struct run {
    config_t cfg;
    config_action action;
    char *out, *err;
} run_t;

/* Parses a NULL-terminated list of arguments, capturing both streams. */
static run_t parse(const char *first, ...) {
    char *argv[32] = {"luahub"};
    int argc = 1;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && argc < 31; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    run_t r;
    size_t on, en;
    FILE *out = open_memstream(&r.out, &on);
    FILE *err = open_memstream(&r.err, &en);
    config_defaults(&r.cfg);
    r.action = config_parse(&r.cfg, argc, argv, out, err);
    fclose(out);
    fclose(err);
    return r;
}

static void done(run_t *r) {
    free(r->out);
    free(r->err);
}

static void test_defaults_run_a_dev_server_on_8080(void **state) {
    run_t r = parse(NULL);
    assert_int_equal(r.action, CONFIG_RUN);
    assert_string_equal(r.cfg.host, "127.0.0.1");
    assert_int_equal(r.cfg.port, 8080);
    assert_string_equal(r.cfg.scripts_dir, "scripts");
    assert_string_equal(r.cfg.lua_dir, "lua");
    assert_string_equal(r.cfg.static_dir, "examples/chat");
    assert_true(r.cfg.ping_interval == 25);
    assert_true(r.cfg.idle_timeout == 60);
    assert_int_equal(r.cfg.max_message, 65536);
    assert_int_equal(r.cfg.send_queue, 1048576);
    assert_int_equal(r.cfg.level, LOG_INFO);
    done(&r);
}

static void test_flags_in_both_forms(void **state) {
    run_t r = parse("--host", "0.0.0.0", "--port=9000", "--scripts", "s",
                    "--lua=l", "--static", "st", "--ping-interval=0.5",
                    "--idle-timeout", "2.5", "--max-message", "4k",
                    "--send-queue=2m", "--log-level", "debug", NULL);
    assert_int_equal(r.action, CONFIG_RUN);
    assert_string_equal(r.cfg.host, "0.0.0.0");
    assert_int_equal(r.cfg.port, 9000);
    assert_string_equal(r.cfg.scripts_dir, "s");
    assert_string_equal(r.cfg.lua_dir, "l");
    assert_string_equal(r.cfg.static_dir, "st");
    assert_true(r.cfg.ping_interval == 0.5);
    assert_true(r.cfg.idle_timeout == 2.5);
    assert_int_equal(r.cfg.max_message, 4096);
    assert_int_equal(r.cfg.send_queue, 2 * 1024 * 1024);
    assert_int_equal(r.cfg.level, LOG_DEBUG);
    assert_string_equal(r.err, "");
    done(&r);
}

static void test_port_zero_picks_any(void **state) {
    run_t r = parse("--port", "0", NULL);
    assert_int_equal(r.action, CONFIG_RUN);
    assert_int_equal(r.cfg.port, 0);
    done(&r);
}

static void bad(const char *flag, const char *value) {
    run_t r = value ? parse(flag, value, NULL) : parse(flag, NULL);
    if (r.action != CONFIG_ERROR)
        fail_msg("%s %s was accepted", flag, value ? value : "");
    if (!strstr(r.err, flag))
        fail_msg("error for %s does not name it: %s", flag, r.err);
    assert_non_null(strstr(r.err, "luahub --help"));
    done(&r);
}

static void test_bad_values_are_errors_naming_the_flag(void **state) {
    bad("--port", "70000");
    bad("--port", "-1");
    bad("--port", "12x");
    bad("--port", "");
    bad("--ping-interval", "0");
    bad("--ping-interval", "-1");
    bad("--idle-timeout", "abc");
    bad("--idle-timeout", "nan");
    bad("--max-message", "0");
    bad("--max-message", "-5");
    bad("--max-message", "1x");
    bad("--send-queue", "99999999999999999999");
    bad("--send-queue", "17592186044416m"); /* 2^64 bytes */
    bad("--log-level", "loud");
    bad("--host", "");
    bad("--script-timeout", "-1");
    bad("--script-memory", "-1");
    bad("--script-memory", "4096");
    bad("--script-memory", "64m");
    bad("--script-memory", "");
    bad("--rate-limit", "-1");
    bad("--rate-limit", "2000000");
    bad("--rate-limit", "10/s");
    bad("--rate-burst", "0");
    bad("--rate-burst", "4001");
    bad("--auth-secret-file", "");
    bad("--max-conns", "-1");
    bad("--max-conns", "ten");
    bad("--max-conns-per-ip", "20000000");
    bad("--max-conns-per-ip", "");
    bad("--allowed-origins", "");
    bad("--allowed-origins", "https://chat.example.com/");
    bad("--allowed-origins", "chat.example.com");
    bad("--allowed-origins", "https://a.example,");
    bad("--trusted-proxies", "10.0.0.0/33");
    bad("--trusted-proxies", "localhost");
    bad("--trusted-proxies", "127.0.0.1,,::1");
}

static void test_edge_flags(void **state) {
    run_t r = parse(NULL);
    assert_int_equal(r.cfg.max_conns, 0);
    assert_int_equal(r.cfg.max_conns_per_ip, 0);
    assert_string_equal(r.cfg.allowed_origins, "");
    assert_string_equal(r.cfg.trusted_proxies, "");
    assert_int_equal(r.cfg.compression, 0);
    done(&r);
    r = parse("--compression", NULL);
    assert_int_equal(r.action, CONFIG_RUN);
    assert_int_equal(r.cfg.compression, 1);
    done(&r);
    r = parse("--max-conns", "10000", "--max-conns-per-ip=20",
              "--allowed-origins", "https://chat.example.com,*",
              "--trusted-proxies", "127.0.0.1/32, 10.0.0.0/8,::1/128", NULL);
    assert_int_equal(r.action, CONFIG_RUN);
    assert_int_equal(r.cfg.max_conns, 10000);
    assert_int_equal(r.cfg.max_conns_per_ip, 20);
    assert_string_equal(r.cfg.allowed_origins, "https://chat.example.com,*");
    assert_string_equal(r.cfg.trusted_proxies,
                        "127.0.0.1/32, 10.0.0.0/8,::1/128");
    done(&r);
    r = parse("--trusted-proxies", "10.0.0.0/33", NULL);
    assert_non_null(strstr(r.err, "--trusted-proxies: '10.0.0.0/33' is not"));
    done(&r);
    r = parse("--allowed-origins", "https://chat.example.com/", NULL);
    assert_non_null(strstr(r.err, "an origin has no path"));
    done(&r);
}

static void test_rate_limit_and_auth_secret(void **state) {
    run_t r = parse(NULL);
    assert_true(r.cfg.rate_limit == 0);
    assert_int_equal(r.cfg.rate_burst, 0);
    assert_string_equal(r.cfg.auth_secret_file, "");
    done(&r);
    r = parse("--rate-limit", "12.5", "--rate-burst=40", "--auth-secret-file",
              "/etc/luahub/secret", NULL);
    assert_int_equal(r.action, CONFIG_RUN);
    assert_true(r.cfg.rate_limit == 12.5);
    assert_int_equal(r.cfg.rate_burst, 40);
    assert_string_equal(r.cfg.auth_secret_file, "/etc/luahub/secret");
    done(&r);
}

static void test_script_limits(void **state) {
    run_t r = parse(NULL);
    assert_true(r.cfg.script_timeout == 100);
    assert_int_equal(r.cfg.script_memory, 256);
    done(&r);
    r = parse("--script-timeout", "20", "--script-memory=16", NULL);
    assert_int_equal(r.action, CONFIG_RUN);
    assert_true(r.cfg.script_timeout == 20);
    assert_int_equal(r.cfg.script_memory, 16);
    done(&r);
    r = parse("--script-memory", "0", NULL);
    assert_int_equal(r.action, CONFIG_RUN);
    assert_int_equal(r.cfg.script_memory, 0);
    done(&r);
}

static void test_history_flags(void **state) {
    run_t r = parse(NULL);
    assert_int_equal(r.cfg.history_size, 100);
    assert_true(r.cfg.history_ttl == 300);
    done(&r);
    r = parse("--history-size", "0", "--history-ttl=0.5", NULL);
    assert_int_equal(r.action, CONFIG_RUN);
    assert_int_equal(r.cfg.history_size, 0);
    assert_true(r.cfg.history_ttl == 0.5);
    done(&r);
    static const char *const bad[][2] = {
        {"--history-size", "-1"},     {"--history-size", "100001"},
        {"--history-size", "ten"},    {"--history-ttl", "0"},
        {"--history-ttl", "forever"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        r = parse(bad[i][0], bad[i][1], NULL);
        assert_int_equal(r.action, CONFIG_ERROR);
        assert_non_null(strstr(r.err, bad[i][0]));
        done(&r);
    }
}

static void test_unknown_flag_missing_value_and_positional(void **state) {
    bad("--nope", "1");
    bad("--port", NULL); /* missing value */
    run_t r = parse("stray", NULL);
    assert_int_equal(r.action, CONFIG_ERROR);
    assert_non_null(strstr(r.err, "stray"));
    done(&r);
}

static void test_help_lists_every_flag_and_default(void **state) {
    static const char *const words[] = {
        "--host",
        "--port",
        "--scripts",
        "--lua",
        "--static",
        "--ping-interval",
        "--idle-timeout",
        "--max-message",
        "--send-queue",
        "--log-level",
        "--help",
        "--version",
        "127.0.0.1",
        "8080",
        "(default: scripts)",
        "(default: lua)",
        "examples/chat",
        "(default: 25)",
        "(default: 60)",
        "65536",
        "1048576",
        "(default: info)",
        "/healthz",
        "--unsafe-lua",
        "--check",
        "--watch",
        "--compression",
        "--script-timeout",
        "--script-memory",
        "(default: 256)",
        "--rate-limit",
        "--rate-burst",
        "--auth-secret-file",
        "LUAHUB_AUTH_SECRET",
        "--allowed-origins",
        "--max-conns ",
        "--max-conns-per-ip",
        "--trusted-proxies",
        "X-Forwarded-For",
        "--history-size",
        "--history-ttl",
        "(default: 100)",
        "(default: 300)",
    };
    run_t r = parse("--help", NULL);
    assert_int_equal(r.action, CONFIG_HELP);
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (!strstr(r.out, words[i])) fail_msg("--help lacks %s", words[i]);
    done(&r);
    r = parse("-h", NULL);
    assert_int_equal(r.action, CONFIG_HELP);
    done(&r);
}

static void test_version(void **state) {
    run_t r = parse("--version", NULL);
    assert_int_equal(r.action, CONFIG_VERSION);
    assert_string_equal(r.out, "luahub " LUAHUB_VERSION "\n");
    done(&r);
}

static void test_check_and_unsafe_lua(void **state) {
    run_t r = parse("--check", "scripts", "--unsafe-lua", NULL);
    assert_int_equal(r.action, CONFIG_CHECK);
    assert_string_equal(r.cfg.check_dir, "scripts");
    assert_int_equal(r.cfg.unsafe_lua, 1);
    done(&r);
    r = parse(NULL);
    assert_int_equal(r.cfg.unsafe_lua, 0);
    done(&r);
}

static void test_level_names_round_trip(void **state) {
    for (int i = LOG_ERROR; i <= LOG_DEBUG; i++) {
        log_level lv;
        assert_int_equal(log_level_parse(log_level_name(i), &lv), 0);
        assert_int_equal(lv, i);
    }
}

/* ---- config_locate: the default directories from another directory ---- */

static char root[256];

static void make(const char *rel, int file) {
    char path[512], cmd[600];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    snprintf(cmd, sizeof cmd,
             file ? "mkdir -p \"$(dirname '%s')\" && touch '%s'"
                  : "mkdir -p '%s'%s",
             path, file ? path : "");
    assert_int_equal(system(cmd), 0);
}

static char *at(const char *rel) {
    static char buf[4][512];
    static int i;
    char *b = buf[i++ % 4];
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s/%s", root, rel);
    assert_non_null(realpath(tmp, b));
    return b;
}

/* A fresh tree under /tmp, with the working directory at root/elsewhere. */
static int tree_setup(void **state) {
    strcpy(root, "/tmp/luahub-locate-XXXXXX");
    if (!mkdtemp(root)) return -1;
    make("elsewhere", 0);
    return chdir(at("elsewhere"));
}

static int tree_teardown(void **state) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (chdir("/") < 0) return -1;
    return system(cmd);
}

static int locate_with(config_t *cfg, const char *exe_rel, char **err) {
    char exe[512];
    size_t n;
    snprintf(exe, sizeof exe, "%s/%s", root, exe_rel);
    make(exe_rel, 1); /* the binary's directory exists, as it would */
    FILE *f = open_memstream(err, &n);
    int rc = config_locate(cfg, exe, f);
    fclose(f);
    return rc;
}

static void test_locate_finds_the_build_tree_beside_the_binary(void **state) {
    make("tree/lua/runtime.lua", 1);
    make("tree/scripts", 0);
    make("tree/examples/chat/index.html", 1);
    run_t r = parse(NULL);
    char *err;
    assert_int_equal(locate_with(&r.cfg, "tree/build/luahub", &err), 0);
    assert_string_equal(r.cfg.lua_dir, at("tree/lua"));
    assert_string_equal(r.cfg.scripts_dir, at("tree/scripts"));
    assert_string_equal(r.cfg.static_dir, at("tree/examples/chat"));
    free(err);
    done(&r);
}

static void
test_locate_finds_an_install_and_prefers_the_working_dir(void **state) {
    make("usr/share/luahub/lua/runtime.lua", 1);
    make("usr/share/luahub/scripts", 0);
    run_t r = parse(NULL);
    char *err;
    assert_int_equal(locate_with(&r.cfg, "usr/bin/luahub", &err), 0);
    assert_string_equal(r.cfg.lua_dir, at("usr/share/luahub/lua"));
    assert_string_equal(r.cfg.scripts_dir, at("usr/share/luahub/scripts"));
    /* No static files anywhere: the default stays, the server warns. */
    assert_string_equal(r.cfg.static_dir, "examples/chat");
    free(err);
    done(&r);
    /* ./lua and ./scripts in the working directory come first; a given
     * flag is never second-guessed. */
    make("elsewhere/lua/runtime.lua", 1);
    make("elsewhere/scripts", 0);
    r = parse("--scripts", "mine", NULL);
    assert_int_equal(locate_with(&r.cfg, "usr/bin/luahub", &err), 0);
    assert_string_equal(r.cfg.lua_dir, at("elsewhere/lua"));
    assert_string_equal(r.cfg.scripts_dir, "mine");
    free(err);
    done(&r);
}

static void
test_locate_failure_names_the_paths_tried_and_the_flag(void **state) {
    run_t r = parse(NULL);
    char *err;
    assert_int_equal(locate_with(&r.cfg, "nowhere/bin/luahub", &err), -1);
    assert_non_null(strstr(err, "runtime.lua"));
    assert_non_null(strstr(err, "nowhere/bin/../lua"));
    assert_non_null(strstr(err, "nowhere/bin/../share/luahub/lua"));
    assert_non_null(strstr(err, "--lua DIR"));
    free(err);
    done(&r);
    /* The runtime found, but no scripts directory: name --scripts. */
    make("rt/lua/runtime.lua", 1);
    r = parse(NULL);
    assert_int_equal(locate_with(&r.cfg, "rt/bin/luahub", &err), -1);
    assert_non_null(strstr(err, "--scripts DIR"));
    free(err);
    done(&r);
    /* --check needs no scripts directory of the default. */
    r = parse("--check", "x", NULL);
    assert_int_equal(locate_with(&r.cfg, "rt/bin/luahub", &err), 0);
    free(err);
    done(&r);
    /* A given --lua without a runtime is named. */
    r = parse("--lua", "/nonexistent", NULL);
    assert_int_equal(locate_with(&r.cfg, "rt/bin/luahub", &err), -1);
    assert_non_null(strstr(err, "--lua /nonexistent: no runtime.lua"));
    free(err);
    done(&r);
}

static void test_presence_grace(void **state) {
    run_t r = parse(NULL);
    assert_true(r.cfg.presence_grace == 0); /* offline at once, as before */
    done(&r);
    r = parse("--presence-grace", "2.5", NULL);
    assert_int_equal(r.action, CONFIG_RUN);
    assert_true(r.cfg.presence_grace == 2.5);
    done(&r);
    r = parse("--presence-grace", "0", NULL);
    assert_int_equal(r.action, CONFIG_RUN);
    assert_true(r.cfg.presence_grace == 0);
    done(&r);
    bad("--presence-grace", "-1");
    bad("--presence-grace", "soon");
    bad("--presence-grace", "86401");
    r = parse("--help", NULL);
    assert_non_null(strstr(r.out, "--presence-grace SECONDS"));
    done(&r);
}

/* A --config file with text, in a fresh temporary directory; its path is
 * written to path (freed by the caller with unlink). */
static void write_file(char *path, size_t cap, const char *text) {
    snprintf(path, cap, "/tmp/luahub-test-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void test_config_file_sets_values_and_flags_win(void **state) {
    char path[64];
    write_file(path, sizeof path,
               "return { port = 9001, rate_limit = 50, reuse_port = true,\n"
               "  max_message = '4k', idle_timeout = 2.5,\n"
               "  allowed_origins = { 'https://a.example', "
               "'https://b.example' } }\n");
    run_t r = parse("--config", path, "--port", "9002", NULL);
    unlink(path);
    assert_int_equal(r.action, CONFIG_RUN);
    assert_string_equal(r.err, "");
    assert_int_equal(r.cfg.port, 9002);
    assert_true(r.cfg.rate_limit == 50);
    assert_int_equal(r.cfg.reuse_port, 1);
    assert_int_equal(r.cfg.max_message, 4096);
    assert_true(r.cfg.idle_timeout == 2.5);
    assert_string_equal(r.cfg.allowed_origins,
                        "https://a.example,https://b.example");
    done(&r);
}

/* A file with text stops the parse with one line that holds want. */
static void file_error(const char *text, const char *want) {
    char path[64];
    write_file(path, sizeof path, text);
    run_t r = parse("--config", path, NULL);
    unlink(path);
    if (r.action != CONFIG_ERROR) fail_msg("accepted: %s", text);
    if (!strstr(r.err, want) || !strstr(r.err, path))
        fail_msg("for %s: %s", text, r.err);
    int lines = 0;
    for (const char *p = r.err; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 1);
    done(&r);
}

static void
test_config_file_errors_name_the_file_and_the_setting(void **state) {
    file_error("return { rate_limt = 5 }", "rate_limt: no such setting");
    file_error("return { rate_limit = 'fast' }",
               "rate_limit: 'fast' is not messages per second");
    file_error("return { watch = 1 }", "watch: 1 is not true or false");
    file_error("return { port = false }", "port: false is not a value");
    file_error("return { config = 'x.lua' }", "config: not a setting");
    file_error("return { port = ", "unexpected symbol");
    file_error("return io.open('/etc/passwd')", "attempt to index global 'io'");
    file_error("return { [1] = 'x' }", "a key that is not a name");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_presence_grace),
        cmocka_unit_test(test_defaults_run_a_dev_server_on_8080),
        cmocka_unit_test(test_flags_in_both_forms),
        cmocka_unit_test(test_port_zero_picks_any),
        cmocka_unit_test(test_bad_values_are_errors_naming_the_flag),
        cmocka_unit_test(test_unknown_flag_missing_value_and_positional),
        cmocka_unit_test(test_help_lists_every_flag_and_default),
        cmocka_unit_test(test_history_flags),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_script_limits),
        cmocka_unit_test(test_rate_limit_and_auth_secret),
        cmocka_unit_test(test_edge_flags),
        cmocka_unit_test(test_check_and_unsafe_lua),
        cmocka_unit_test(test_level_names_round_trip),
        cmocka_unit_test(test_config_file_sets_values_and_flags_win),
        cmocka_unit_test(test_config_file_errors_name_the_file_and_the_setting),
        cmocka_unit_test_setup_teardown(
            test_locate_finds_the_build_tree_beside_the_binary, tree_setup,
            tree_teardown),
        cmocka_unit_test_setup_teardown(
            test_locate_finds_an_install_and_prefers_the_working_dir,
            tree_setup, tree_teardown),
        cmocka_unit_test_setup_teardown(
            test_locate_failure_names_the_paths_tried_and_the_flag, tree_setup,
            tree_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
