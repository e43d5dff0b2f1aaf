/* test_script.c -- unit tests for core/script.c, the C<->Lua bridge.
 *
 * The bridge reaches the core only through the script_host table, so these
 * tests give it a recording host instead of the real hub: what a handler
 * sends, and the reply the client would get, are checked as JSON text.
 * Handlers are written into a temporary scripts directory per test; the
 * runtime is the project's own lua/. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "frame.h"
#include "script.h"

/* ---- a recording host ---------------------------------------------------- */

#define MAX_SENT 16

typedef struct sent {
    script_target_kind kind;
    char id[64];
    char except_user[64];
    char json[1024];
} sent_t;

typedef struct host_state {
    sent_t sent[MAX_SENT];
    int nsent;
    uint64_t seq;
    int room_exists;
    int not_member; /* the user publishing is not a member */
    /* A host of a cluster, played by the test: with defer set, every call
     * that may wait and is given a record waits (the record is kept in
     * waits[], by the name of what waits in what[], for the test to wake)
     * and one given none answers -EDEADLK; with unavailable set, it
     * answers -EAGAIN at once. */
    int defer, unavailable;
    script_wait *waits[8];
    const char *what[8];
    int nwaits;
} host_state_t;

/* What a call that may wait answers when the test plays a cluster; 1 when
 * it answers at once as below. */
static int cluster(host_state_t *h, script_wait *w, const char *what, int *rc) {
    if (h->unavailable) {
        *rc = -EAGAIN;
        return 0;
    }
    if (!h->defer) return 1;
    if (!w) {
        *rc = -EDEADLK;
        return 0;
    }
    assert_true(h->nwaits < 8);
    h->what[h->nwaits] = what;
    h->waits[h->nwaits++] = w;
    *rc = -EINPROGRESS;
    return 0;
}

static int record(host_state_t *h, const script_target *t, frame_t *f) {
    if (h->nsent == MAX_SENT) return 0;
    sent_t *s = &h->sent[h->nsent++];
    size_t len;
    const char *p = frame_payload(f, &len);
    s->kind = t->kind;
    snprintf(s->id, sizeof s->id, "%s", t->nids ? t->ids[0] : "");
    snprintf(s->except_user, sizeof s->except_user, "%s",
             t->except_user ? t->except_user : "");
    snprintf(s->json, sizeof s->json, "%.*s", (int)len, p);
    return 1;
}

static int h_send(void *ud, const script_target *t, frame_t *f,
                  script_wait *w) {
    host_state_t *h = ud;
    int rc;
    /* The answer (w NULL, to the frame's own connection) never waits. */
    if (w && !cluster(h, w, "send", &rc)) return rc;
    return record(h, t, f);
}

static int h_publish(void *ud, const char *room, const char *member,
                     script_stamp_fn stamp, void *ctx, const char *head,
                     size_t headlen, uint64_t *seq, script_wait *w) {
    host_state_t *h = ud;
    int rc;
    if (!cluster(h, w, "publish", &rc)) return rc;
    if (member && (h->not_member || !h->room_exists)) return -EPERM;
    if (!h->room_exists) return -ENOENT;
    *seq = ++h->seq;
    frame_t *f = stamp(ctx, *seq);
    script_target t = {SCRIPT_TO_ROOM, &room, 1, NULL, NULL};
    record(h, &t, f);
    frame_unref(f);
    return 0;
}

static int h_join(void *ud, const char *room, const char *uid, size_t *members,
                  script_wait *w) {
    int rc;
    *members = 1;
    return cluster(ud, w, "join", &rc) ? 1 : rc;
}
static int h_leave(void *ud, const char *room, const char *uid, size_t *members,
                   script_wait *w) {
    int rc;
    *members = 0;
    return cluster(ud, w, "leave", &rc) ? 1 : rc;
}
static int h_is_member(void *ud, const char *room, const char *uid,
                       script_wait *w) {
    int rc;
    return cluster(ud, w, "is_member", &rc) ? 1 : rc;
}
static int h_room_info(void *ud, const char *room, script_room_info *out,
                       script_wait *w) {
    int rc;
    return cluster(ud, w, "room_info", &rc) ? -ENOENT : rc;
}
static int h_room_members(void *ud, const char *room, const script_page *page,
                          script_each_fn each, void *ctx, script_wait *w) {
    int rc;
    if (!cluster(ud, w, "room_members", &rc)) return rc;
    each(ctx, "carol");
    each(ctx, "alice");
    each(ctx, "bob");
    return 0;
}
static int h_user_rooms(void *ud, const char *uid, script_each_fn each,
                        void *ctx, script_wait *w) {
    int rc;
    return cluster(ud, w, "user_rooms", &rc) ? 0 : rc;
}
static int h_online_users(void *ud, script_each_fn each, void *ctx,
                          script_wait *w) {
    int rc;
    return cluster(ud, w, "online_users", &rc) ? 0 : rc;
}
static int h_user_connections(void *ud, const char *uid, script_each_fn each,
                              void *ctx, script_wait *w) {
    int rc;
    return cluster(ud, w, "user_connections", &rc) ? -ENOENT : rc;
}
static int h_presence_get(void *ud, const char *uid, script_wait *w) {
    int rc;
    return cluster(ud, w, "presence_get", &rc) ? 0 : rc;
}
static int h_presence_set(void *ud, const char *uid, int st, script_wait *w) {
    int rc;
    return cluster(ud, w, "presence_set", &rc) ? 1 : rc;
}
static int h_presence_subscribe(void *ud, const char *cid,
                                const char *const *uids, size_t n,
                                int *statuses, script_wait *w) {
    int rc;
    if (!cluster(ud, w, "presence_subscribe", &rc)) return rc;
    for (size_t i = 0; i < n; i++)
        statuses[i] = 0;
    return 0;
}
static int h_conn_info(void *ud, const char *cid, script_conn_info *out) {
    return -ENOENT;
}
static int h_store_get(void *ud, int kind, const char *scope, const char *key,
                       const char **json, size_t *len, script_wait *w) {
    int rc;
    *json = NULL;
    return cluster(ud, w, "store_get", &rc) ? 0 : rc;
}
static int h_store_set(void *ud, int kind, const char *scope, const char *key,
                       const char *json, size_t len, script_wait *w) {
    int rc;
    return cluster(ud, w, "store_set", &rc) ? 0 : rc;
}
static int h_store_delete(void *ud, int kind, const char *scope,
                          const char *key, script_wait *w) {
    int rc;
    return cluster(ud, w, "store_delete", &rc) ? 0 : rc;
}

typedef struct fixture {
    host_state_t st;
    script_host host;
    char dir[64];
    script_t *s;
} fixture_t;

static int setup(void **state) {
    fixture_t *fx = calloc(1, sizeof *fx);
    fx->host = (script_host){
        .ud = &fx->st,
        .send = h_send,
        .publish = h_publish,
        .join = h_join,
        .leave = h_leave,
        .is_member = h_is_member,
        .room_info = h_room_info,
        .room_members = h_room_members,
        .user_rooms = h_user_rooms,
        .online_users = h_online_users,
        .user_connections = h_user_connections,
        .presence_get = h_presence_get,
        .presence_set = h_presence_set,
        .presence_subscribe = h_presence_subscribe,
        .conn_info = h_conn_info,
        .store_get = h_store_get,
        .store_set = h_store_set,
        .store_delete = h_store_delete,
    };
    strcpy(fx->dir, "/tmp/luahub-test-script-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    fixture_t *fx = *state;
    script_destroy(fx->s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", fx->dir);
    assert_int_equal(system(cmd), 0);
    free(fx);
    return 0;
}

static void write_script(fixture_t *fx, const char *name, const char *src) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", fx->dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(src, f);
    fclose(f);
}

static int unsafe_lua;
static size_t memory_mb;
static double timeout_ms;
static void *timer_loop;

static script_t *load(fixture_t *fx, char *err, size_t errlen) {
    script_options opt = {"lua",      fx->dir,   unsafe_lua, timer_loop,
                          timeout_ms, memory_mb, 1000};
    return script_create(&opt, &fx->host, err, errlen);
}

static void load_ok(fixture_t *fx) {
    char err[512] = "";
    fx->s = load(fx, err, sizeof err);
    if (!fx->s) fail_msg("load failed: %s", err);
}

static void dispatch(fixture_t *fx, const char *type, const char *json) {
    envelope_t env;
    int rc =
        script_dispatch(fx->s, "7", "alice", json, strlen(json), NULL, 0, &env);
    assert_int_equal(rc, 0);
    assert_string_equal(env.type, type);
    envelope_clear(&env);
}

/* The last frame sent, as JSON text. */
static const char *last(fixture_t *fx) {
    assert_true(fx->st.nsent > 0);
    return fx->st.sent[fx->st.nsent - 1].json;
}

/* ---- tests --------------------------------------------------------------- */

static void test_returned_table_is_merged_into_ack(void **state) {
    fixture_t *fx = *state;
    write_script(fx, "hello.lua",
                 "return function(conn, msg)\n"
                 "  return { greeting = 'hi ' .. conn.user, id = 'ignored' }\n"
                 "end\n");
    load_ok(fx);
    dispatch(fx, "hello", "{\"type\":\"hello\",\"id\":42}");
    assert_int_equal(fx->st.nsent, 1);
    assert_int_equal(fx->st.sent[0].kind, SCRIPT_TO_CONN);
    assert_string_equal(fx->st.sent[0].id, "7");
    assert_non_null(strstr(last(fx), "\"greeting\":\"hi alice\""));
    assert_non_null(strstr(last(fx), "\"type\":\"ack\""));
    assert_non_null(strstr(last(fx), "\"id\":42"));
}

static void test_no_ack_without_id(void **state) {
    fixture_t *fx = *state;
    write_script(fx, "quiet.lua", "return function() return { x = 1 } end\n");
    load_ok(fx);
    dispatch(fx, "quiet", "{\"type\":\"quiet\"}");
    assert_int_equal(fx->st.nsent, 0);
}

static void test_runtime_error_is_handler_error_without_position(void **state) {
    fixture_t *fx = *state;
    write_script(fx, "boom.lua", "return function() error('boom') end\n");
    load_ok(fx);
    dispatch(fx, "boom", "{\"type\":\"boom\",\"id\":\"x\"}");
    assert_non_null(strstr(last(fx), "\"code\":\"handler_error\""));
    assert_non_null(strstr(last(fx), "\"message\":\"boom\""));
    assert_non_null(strstr(last(fx), "\"id\":\"x\""));
    assert_null(strstr(last(fx), "boom.lua"));
}

static void test_fail_raises_protocol_code(void **state) {
    fixture_t *fx = *state;
    write_script(fx, "deny.lua",
                 "local hub = require 'hub'\n"
                 "return function() hub.fail('forbidden', 'no way') end\n");
    load_ok(fx);
    dispatch(fx, "deny", "{\"type\":\"deny\",\"id\":1}");
    assert_non_null(strstr(last(fx), "\"code\":\"forbidden\""));
    assert_non_null(strstr(last(fx), "\"message\":\"no way\""));
}

/* A type no handler has is not answered by the scripts: the envelope
 * says unknown_type, with the id as written, for the caller to answer in
 * the one place it answers a type that cannot name a handler. */
static void test_unknown_type_left_to_the_caller(void **state) {
    fixture_t *fx = *state;
    write_script(fx, "a.lua", "return function() end\n");
    load_ok(fx);
    const char *f = "{\"type\":\"b\",\"id\":1.50}";
    envelope_t env;
    int rc = script_dispatch(fx->s, "7", "alice", f, strlen(f), NULL, 0, &env);
    assert_int_equal(rc, -EINVAL);
    assert_int_equal(fx->st.nsent, 0);
    assert_int_equal(env.status, ENVELOPE_UNKNOWN_TYPE);
    assert_string_equal(env.message, "no handler for type 'b'");
    assert_string_equal(env.id_json, "1.50");
    envelope_clear(&env);
}

/* The same when the on_message hook renames the frame to a type no handler
 * has, however long. */
static void test_unknown_type_after_a_hook_renamed_it(void **state) {
    fixture_t *fx = *state;
    char dir[128];
    snprintf(dir, sizeof dir, "%s/hooks", fx->dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    write_script(fx, "hooks/on_message.lua",
                 "return function(conn, msg)\n"
                 "  return { type = msg.payload.to }\n"
                 "end\n");
    write_script(fx, "a.lua", "return function() end\n");
    load_ok(fx);
    char name[201], f[300], want[300];
    memset(name, 'g', 200);
    name[200] = '\0';
    const char *names[] = {"ghost", name};
    for (size_t i = 0; i < 2; i++) {
        snprintf(f, sizeof f,
                 "{\"type\":\"a\",\"id\":2,\"payload\":{\"to\":\"%s\"}}",
                 names[i]);
        snprintf(want, sizeof want, "no handler for type '%s'", names[i]);
        envelope_t env;
        int rc =
            script_dispatch(fx->s, "7", "alice", f, strlen(f), NULL, 0, &env);
        assert_int_equal(rc, -EINVAL);
        assert_int_equal(fx->st.nsent, 0);
        assert_int_equal(env.status, ENVELOPE_UNKNOWN_TYPE);
        assert_string_equal(env.message, want);
        envelope_clear(&env);
    }
}

static void test_junk_return_is_handler_error(void **state) {
    fixture_t *fx = *state;
    write_script(fx, "junk.lua", "return function() return 42 end\n");
    write_script(fx, "fn.lua",
                 "return function() return { f = function() end } end\n");
    load_ok(fx);
    dispatch(fx, "junk", "{\"type\":\"junk\",\"id\":1}");
    assert_non_null(strstr(last(fx), "\"code\":\"handler_error\""));
    dispatch(fx, "fn", "{\"type\":\"fn\",\"id\":2}");
    assert_non_null(strstr(last(fx), "\"code\":\"handler_error\""));
}

static void test_empty_array_encodes_as_array(void **state) {
    fixture_t *fx = *state;
    write_script(fx, "arr.lua",
                 "local hub = require 'hub'\n"
                 "return function(conn, msg)\n"
                 "  return { empty = hub.array(), obj = {}, echo = msg.list,\n"
                 "           null = msg.n }\n"
                 "end\n");
    load_ok(fx);
    dispatch(fx, "arr", "{\"type\":\"arr\",\"id\":1,\"list\":[],\"n\":null}");
    assert_non_null(strstr(last(fx), "\"empty\":[]"));
    assert_non_null(strstr(last(fx), "\"obj\":{}"));
    /* A decoded empty array stays an array on the way out. */
    assert_non_null(strstr(last(fx), "\"echo\":[]"));
}

static void test_publish_stamps_seq_and_room(void **state) {
    fixture_t *fx = *state;
    fx->st.room_exists = 1;
    write_script(fx, "say.lua",
                 "local hub = require 'hub'\n"
                 "return function(conn, msg)\n"
                 "  return { seq = hub.publish('r', { type = 'chat' }) }\n"
                 "end\n");
    load_ok(fx);
    dispatch(fx, "say", "{\"type\":\"say\",\"id\":1}");
    dispatch(fx, "say", "{\"type\":\"say\",\"id\":2}");
    assert_int_equal(fx->st.nsent, 4);
    assert_int_equal(fx->st.sent[0].kind, SCRIPT_TO_ROOM);
    assert_string_equal(fx->st.sent[0].id, "r");
    assert_non_null(strstr(fx->st.sent[0].json, "\"seq\":1"));
    assert_non_null(strstr(fx->st.sent[0].json, "\"room_id\":\"r\""));
    assert_non_null(strstr(fx->st.sent[2].json, "\"seq\":2"));
    assert_non_null(strstr(fx->st.sent[3].json, "\"seq\":2"));
}

static void test_publish_leaves_msg_alone_and_stamps_once(void **state) {
    fixture_t *fx = *state;
    fx->st.room_exists = 1;
    write_script(
        fx, "say.lua",
        "local hub = require 'hub'\n"
        "return function(conn, msg)\n"
        "  local m = { seq = 'mine', room_id = 'elsewhere', x = 1 }\n"
        "  hub.publish('r', m)\n"
        "  hub.publish('r', {})\n"
        "  return { kept = m.seq .. m.room_id, type = 'no', id = 'no' }\n"
        "end\n");
    load_ok(fx);
    dispatch(fx, "say", "{\"type\":\"say\",\"id\":7}");
    assert_int_equal(fx->st.nsent, 3);
    const char *one = fx->st.sent[0].json, *two = fx->st.sent[1].json;
    assert_non_null(strstr(one, "\"x\":1"));
    assert_non_null(strstr(one, "\"seq\":1,\"room_id\":\"r\"}"));
    assert_null(strstr(one, "mine"));
    assert_null(strstr(one, "elsewhere"));
    assert_string_equal(two, "{\"seq\":2,\"room_id\":\"r\"}");
    /* The ack: its own type and id, the handler's other fields. */
    assert_non_null(strstr(last(fx), "{\"type\":\"ack\",\"id\":7,"));
    assert_non_null(strstr(last(fx), "\"kept\":\"mineelsewhere\""));
    assert_null(strstr(last(fx), "\"no\""));
}

/* A message that cannot be encoded never takes a seq: the room's next
 * message gets the next number, with no gap. */
static void test_publish_that_cannot_be_encoded_takes_no_seq(void **state) {
    fixture_t *fx = *state;
    fx->st.room_exists = 1;
    write_script(fx, "say.lua",
                 "local hub = require 'hub'\n"
                 "return function(conn, msg)\n"
                 "  local body = { n = 1 }\n"
                 "  local what = msg.payload.what\n"
                 "  if what == 'nan' then body = { n = 0 / 0 } end\n"
                 "  if what == 'inf' then body = { n = math.huge } end\n"
                 "  if what == 'fn' then body = { f = print } end\n"
                 "  if what == 'cycle' then body = {}; body.me = body end\n"
                 "  return { seq = hub.publish('r', { type = 'chat', payload = "
                 "body }) }\n"
                 "end\n");
    load_ok(fx);
    const char *bad[] = {"nan", "inf", "fn", "cycle"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char f[96];
        snprintf(f, sizeof f,
                 "{\"type\":\"say\",\"id\":1,\"payload\":{\"what\":\"%s\"}}",
                 bad[i]);
        fx->st.nsent = 0;
        dispatch(fx, "say", f);
        assert_int_equal(fx->st.nsent, 1);
        assert_int_equal(fx->st.sent[0].kind, SCRIPT_TO_CONN);
        assert_non_null(strstr(last(fx), "\"code\":\"handler_error\""));
    }
    fx->st.nsent = 0;
    dispatch(fx, "say", "{\"type\":\"say\",\"id\":2,\"payload\":{}}");
    assert_int_equal(fx->st.nsent, 2);
    assert_non_null(strstr(fx->st.sent[0].json, "\"seq\":1,"));
    assert_string_equal(last(fx), "{\"type\":\"ack\",\"id\":2,\"seq\":1}");
}

/* Every answer the runtime sends (ack, error, a handler's own reply)
 * carries the id exactly as the client wrote it. */
static void test_answers_echo_the_id_as_written(void **state) {
    fixture_t *fx = *state;
    write_script(fx, "hello.lua", "return function() return { x = 1 } end\n");
    write_script(fx, "boom.lua", "return function() error('boom') end\n");
    write_script(fx, "pingish.lua",
                 "local hub = require 'hub'\n"
                 "return function() return hub.reply('pong', { t = 1 }) end\n");
    load_ok(fx);
    const char *ids[] = {"-0", "1.50", "1e2", "12345678901234567890",
                         "\"a\\u0041\\/\""};
    const char *types[] = {"hello", "boom", "pingish"};
    const char *answers[] = {"ack", "error", "pong"};
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
        for (size_t k = 0; k < 3; k++) {
            char f[128], want[128];
            snprintf(f, sizeof f, "{\"type\":\"%s\",\"id\":%s}", types[k],
                     ids[i]);
            snprintf(want, sizeof want, "{\"type\":\"%s\",\"id\":%s,",
                     answers[k], ids[i]);
            fx->st.nsent = 0;
            dispatch(fx, types[k], f);
            assert_int_equal(fx->st.nsent, 1);
            if (strncmp(last(fx), want, strlen(want)) != 0)
                fail_msg("%s answered %s", f, last(fx));
        }
    }
    /* A reply of its own goes out without an id too. */
    fx->st.nsent = 0;
    dispatch(fx, "pingish", "{\"type\":\"pingish\"}");
    assert_string_equal(last(fx), "{\"type\":\"pong\",\"t\":1}");
}

/* An on_message hook that replaces a message answers the client's frame
 * with the client's id; one that drops a message with an id acks it. */
static void test_hook_rewrite_keeps_id_and_drop_is_acked(void **state) {
    fixture_t *fx = *state;
    char dir[128];
    snprintf(dir, sizeof dir, "%s/hooks", fx->dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    write_script(
        fx, "hooks/on_message.lua",
        "return function(conn, msg)\n"
        "  if msg.type == 'old' then return { type = 'new', id = 'hook' } end\n"
        "  if msg.type == 'drop' then return false end\n"
        "end\n");
    write_script(fx, "new.lua",
                 "return function(conn, msg) return { saw = msg.id } end\n");
    write_script(fx, "drop.lua", "return function() error('ran') end\n");
    load_ok(fx);
    dispatch(fx, "old", "{\"type\":\"old\",\"id\":1.50}");
    assert_string_equal(last(fx), "{\"type\":\"ack\",\"id\":1.50,\"saw\":1.5}");
    fx->st.nsent = 0;
    dispatch(fx, "old", "{\"type\":\"old\"}");
    assert_int_equal(fx->st.nsent, 0);
    dispatch(fx, "drop", "{\"type\":\"drop\",\"id\":\"d\"}");
    assert_int_equal(fx->st.nsent, 1);
    assert_string_equal(last(fx), "{\"type\":\"ack\",\"id\":\"d\"}");
    dispatch(fx, "drop", "{\"type\":\"drop\"}");
    assert_int_equal(fx->st.nsent, 1);
}

static void test_publish_to_missing_room_is_not_found(void **state) {
    fixture_t *fx = *state;
    write_script(fx, "say.lua",
                 "local hub = require 'hub'\n"
                 "return function() hub.publish('r', { type = 'chat' }) end\n");
    load_ok(fx);
    dispatch(fx, "say", "{\"type\":\"say\",\"id\":1}");
    assert_non_null(strstr(last(fx), "\"code\":\"not_found\""));
}

/* publish with a member: the user's membership is checked in the
 * same call that takes the seq; a non-member gets not_in_room and the room
 * no seq. */
static void test_publish_as_member(void **state) {
    fixture_t *fx = *state;
    fx->st.room_exists = 1;
    write_script(fx, "say.lua",
                 "local hub = require 'hub'\n"
                 "return function(conn)\n"
                 "  return { seq = hub.publish('r', { x = 1 }, conn.user) }\n"
                 "end\n");
    load_ok(fx);
    fx->st.not_member = 1;
    dispatch(fx, "say", "{\"type\":\"say\",\"id\":1}");
    assert_int_equal(fx->st.nsent, 1);
    assert_non_null(strstr(last(fx), "\"code\":\"not_in_room\""));
    assert_non_null(
        strstr(last(fx), "\"message\":\"you are not in room 'r'\""));
    fx->st.not_member = 0;
    fx->st.nsent = 0;
    dispatch(fx, "say", "{\"type\":\"say\",\"id\":2}");
    assert_int_equal(fx->st.nsent, 2);
    assert_string_equal(fx->st.sent[0].json,
                        "{\"x\":1,\"seq\":1,\"room_id\":\"r\"}");
    assert_string_equal(last(fx), "{\"type\":\"ack\",\"id\":2,\"seq\":1}");
}

static void test_send_room_passes_except_user(void **state) {
    fixture_t *fx = *state;
    write_script(fx, "t.lua",
                 "local hub = require 'hub'\n"
                 "return function(conn)\n"
                 "  hub.send_room('r', '{\"type\":\"t\"}', "
                 "{ except_user = conn.user })\n"
                 "end\n");
    load_ok(fx);
    dispatch(fx, "t", "{\"type\":\"t\"}");
    assert_int_equal(fx->st.nsent, 1);
    assert_string_equal(fx->st.sent[0].except_user, "alice");
    assert_string_equal(fx->st.sent[0].json, "{\"type\":\"t\"}");
}

static void test_sending_a_string_that_is_not_json_fails(void **state) {
    fixture_t *fx = *state;
    write_script(fx, "bad.lua",
                 "local hub = require 'hub'\n"
                 "return function(conn) hub.send(conn.id, 'nope') end\n");
    load_ok(fx);
    dispatch(fx, "bad", "{\"type\":\"bad\",\"id\":1}");
    assert_int_equal(fx->st.nsent, 1);
    assert_non_null(strstr(last(fx), "\"code\":\"handler_error\""));
}

static void test_members_come_back_sorted(void **state) {
    fixture_t *fx = *state;
    write_script(
        fx, "m.lua",
        "local hub = require 'hub'\n"
        "return function() return { m = hub.room_members('r') } end\n");
    load_ok(fx);
    dispatch(fx, "m", "{\"type\":\"m\",\"id\":1}");
    assert_non_null(strstr(last(fx), "\"m\":[\"alice\",\"bob\",\"carol\"]"));
}

static void test_syntax_error_fails_load_with_file_and_line(void **state) {
    fixture_t *fx = *state;
    write_script(fx, "good.lua", "return function() end\n");
    write_script(fx, "broken.lua", "return function()\n  if then\nend\n");
    char err[512] = "";
    fx->s = load(fx, err, sizeof err);
    assert_null(fx->s);
    assert_non_null(strstr(err, "broken.lua:2"));
}

static void test_script_must_return_a_function(void **state) {
    fixture_t *fx = *state;
    write_script(fx, "notfn.lua", "return 42\n");
    char err[512] = "";
    fx->s = load(fx, err, sizeof err);
    assert_null(fx->s);
    assert_non_null(strstr(err, "notfn.lua"));
}

static void test_bytecode_is_refused(void **state) {
    fixture_t *fx = *state;
    char cmd[256];
    write_script(fx, "src.lua.txt", "return function() end\n");
    snprintf(cmd, sizeof cmd, "luajit -b %s/src.lua.txt %s/bc.lua", fx->dir,
             fx->dir);
    if (system(cmd) != 0) skip();
    char err[512] = "";
    fx->s = load(fx, err, sizeof err);
    assert_null(fx->s);
    assert_non_null(strstr(err, "bc.lua"));
}

static void test_types_listed_sorted(void **state) {
    fixture_t *fx = *state;
    write_script(fx, "zeta.lua", "return function() end\n");
    write_script(fx, "alpha.lua", "return function() end\n");
    write_script(fx, "bad-name.lua", "return function() end\n");
    load_ok(fx);
    assert_int_equal(script_count(fx->s), 2);
    assert_string_equal(script_types(fx->s), "alpha,zeta");
}

/* ---- the sandbox -----------------------------------------------------------
 */

/* Runs src as a handler body and returns the reply's JSON. */
static const char *run_body(fixture_t *fx, const char *body) {
    char src[2048];
    snprintf(src, sizeof src,
             "local hub = require 'hub'\nreturn function(conn, msg)\n%s\nend\n",
             body);
    write_script(fx, "probe.lua", src);
    load_ok(fx);
    dispatch(fx, "probe", "{\"type\":\"probe\",\"id\":1}");
    return last(fx);
}

static void test_sandbox_has_no_io_os_execute_ffi_or_debug(void **state) {
    fixture_t *fx = *state;
    const char *r = run_body(
        fx,
        "return { io = type(io), exec = type(os.execute), debug = type(debug),"
        " package = type(package), dofile = type(dofile),"
        " loadfile = type(loadfile), time = type(os.time),"
        " ffi = (pcall(require, 'ffi')), jit = type(jit) }");
    assert_non_null(strstr(r, "\"io\":\"nil\""));
    assert_non_null(strstr(r, "\"exec\":\"nil\""));
    assert_non_null(strstr(r, "\"debug\":\"nil\""));
    assert_non_null(strstr(r, "\"package\":\"nil\""));
    assert_non_null(strstr(r, "\"dofile\":\"nil\""));
    assert_non_null(strstr(r, "\"loadfile\":\"nil\""));
    assert_non_null(strstr(r, "\"jit\":\"nil\""));
    assert_non_null(strstr(r, "\"ffi\":false"));
    assert_non_null(strstr(r, "\"time\":\"function\""));
}

static void test_sandbox_refuses_bytecode_at_run_time(void **state) {
    fixture_t *fx = *state;
    const char *r =
        run_body(fx, "local f, err = load(string.char(27) .. 'LJ')\n"
                     "return { f = type(f), err = err }");
    assert_non_null(strstr(r, "\"f\":\"nil\""));
    assert_non_null(strstr(r, "bytecode"));
}

static void
test_writing_an_undeclared_global_is_an_error_naming_it(void **state) {
    fixture_t *fx = *state;
    const char *r = run_body(fx, "counter = 1");
    assert_non_null(strstr(r, "\"code\":\"handler_error\""));
    assert_non_null(strstr(r, "undeclared global 'counter'"));
}

static void test_scripts_cannot_change_each_others_libraries(void **state) {
    fixture_t *fx = *state;
    write_script(fx, "evil.lua",
                 "return function() string.upper = nil;"
                 " getmetatable('').__index = nil end\n");
    write_script(fx, "good.lua",
                 "return function() return { s = ('ab'):upper() } end\n");
    load_ok(fx);
    dispatch(fx, "evil", "{\"type\":\"evil\",\"id\":1}");
    dispatch(fx, "good", "{\"type\":\"good\",\"id\":2}");
    assert_non_null(strstr(last(fx), "\"s\":\"AB\""));
}

static void test_hub_is_read_only_and_others_keep_their_view(void **state) {
    fixture_t *fx = *state;
    fx->st.room_exists = 1;
    write_script(fx, "evil.lua",
                 "local hub = require 'hub'\n"
                 "return function()\n"
                 "  pcall(function() rawset(hub, 'publish', print) end)\n"
                 "  pcall(function() table.insert(hub.store, 1) end)\n"
                 "  hub.publish = function() return 4242 end\n"
                 "end\n");
    write_script(fx, "good.lua",
                 "local hub = require 'hub'\n"
                 "return function()\n"
                 "  local n = 0\n"
                 "  for k, v in pairs(hub) do n = n + 1 end\n"
                 "  return { seq = hub.publish('r', {}), n = n,\n"
                 "           raw = type(rawget(hub, 'now')) }\n"
                 "end\n");
    load_ok(fx);
    dispatch(fx, "evil", "{\"type\":\"evil\",\"id\":1}");
    assert_non_null(strstr(last(fx), "\"code\":\"handler_error\""));
    assert_non_null(
        strstr(last(fx), "attempt to write hub.publish: hub is read-only"));
    dispatch(fx, "good", "{\"type\":\"good\",\"id\":2}");
    assert_non_null(strstr(last(fx), "\"seq\":1"));
    /* pairs and rawget see hub's fields (more than 20 of them). */
    assert_null(strstr(last(fx), "\"n\":0"));
    assert_non_null(strstr(last(fx), "\"raw\":\"function\""));
}

static void test_each_script_has_its_own_modules(void **state) {
    fixture_t *fx = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "mkdir -p %s/lib", fx->dir);
    assert_int_equal(system(cmd), 0);
    write_script(fx, "lib/shared.lua",
                 "local M = { list = { 'first' } }\n"
                 "function M.who() return 'shared' end\n"
                 "return M\n");
    write_script(fx, "evil.lua",
                 "local m = require 'shared'\n"
                 "local cjson = require 'cjson'\n"
                 "return function()\n"
                 "  m.who = function() return 'evil' end\n"
                 "  m.list[1] = 'evil'\n"
                 "  rawset(m, 'extra', 1)\n"
                 "  cjson.encode_max_depth(1)\n"
                 "end\n");
    write_script(fx, "good.lua",
                 "local m = require 'shared'\n"
                 "local cjson = require 'cjson'\n"
                 "return function()\n"
                 "  return { who = m.who(), first = m.list[1],\n"
                 "           extra = m.extra == nil,\n"
                 "           json = cjson.encode({ a = { b = 1 } }) }\n"
                 "end\n");
    load_ok(fx);
    dispatch(fx, "evil", "{\"type\":\"evil\",\"id\":1}");
    dispatch(fx, "good", "{\"type\":\"good\",\"id\":2}");
    assert_non_null(strstr(last(fx), "\"who\":\"shared\""));
    assert_non_null(strstr(last(fx), "\"first\":\"first\""));
    assert_non_null(strstr(last(fx), "\"extra\":true"));
    assert_non_null(strstr(last(fx), "{\\\"a\\\":{\\\"b\\\":1}}"));
}

static void test_string_rep_past_2_31_is_out_of_memory(void **state) {
    fixture_t *fx = *state;
    write_script(
        fx, "rep.lua",
        "return function(conn, msg)\n"
        "  local tries = {\n"
        "    function() return string.rep('x', 2^31) end,\n"
        "    function() return ('ab'):rep(2^32 + 1) end,\n"
        "    function() return string.rep('x', 2^31, ',') end,\n"
        "    function() return string.rep('', 2^31, ',') end,\n"
        "  }\n"
        "  local r = {}\n"
        "  for i, f in ipairs(tries) do\n"
        "    local ok, v = pcall(f)\n"
        "    r[#r + 1] = ok and ('length ' .. #v) or v\n"
        "  end\n"
        "  r[#r + 1] = 'empty ' .. #string.rep('', 2^31)\n"
        "  if msg.direct then return { n = #string.rep('x', 2^31) } end\n"
        "  return { r = table.concat(r, ';') }\n"
        "end\n");
    load_ok(fx);
    dispatch(fx, "rep", "{\"type\":\"rep\",\"id\":1}");
    assert_non_null(strstr(last(fx),
                           "\"r\":\"not enough memory;not enough memory;"
                           "not enough memory;not enough memory;empty 0\""));
    dispatch(fx, "rep", "{\"type\":\"rep\",\"id\":2,\"direct\":true}");
    assert_non_null(strstr(last(fx), "\"code\":\"handler_error\""));
    assert_non_null(strstr(last(fx), "\"message\":\"out of memory\""));
}

static void test_require_finds_scripts_lib_and_cjson_safe(void **state) {
    fixture_t *fx = *state;
    char path[128];
    snprintf(path, sizeof path, "mkdir -p %s/lib", fx->dir);
    assert_int_equal(system(path), 0);
    write_script(fx, "lib/twice.lua", "return function(x) return x * 2 end\n");
    const char *r = run_body(
        fx, "local twice = require 'twice'\n"
            "local cjson = require 'cjson'\n"
            "local v, err = cjson.decode('{bad')\n"
            "return { n = twice(21), v = v == nil, err = err ~= nil }");
    assert_non_null(strstr(r, "\"n\":42"));
    assert_non_null(strstr(r, "\"v\":true"));
    assert_non_null(strstr(r, "\"err\":true"));
}

static void test_unsafe_lua_lifts_the_sandbox(void **state) {
    fixture_t *fx = *state;
    unsafe_lua = 1;
    const char *r =
        run_body(fx, "return { io = type(io), ffi = (pcall(require, 'ffi')) }");
    unsafe_lua = 0;
    assert_non_null(strstr(r, "\"io\":\"table\""));
    assert_non_null(strstr(r, "\"ffi\":true"));
}

static void test_every_load_error_is_reported(void **state) {
    fixture_t *fx = *state;
    write_script(fx, "a.lua", "return function(\n");
    write_script(fx, "b.lua", "x = 1\nreturn function() end\n");
    char err[1024] = "";
    fx->s = load(fx, err, sizeof err);
    assert_null(fx->s);
    assert_non_null(strstr(err, "a.lua:"));
    assert_non_null(
        strstr(err, "b.lua:1: assignment to undeclared global 'x'"));
}

static void test_memory_cap_stops_a_call_and_the_state_goes_on(void **state) {
    fixture_t *fx = *state;
    write_script(fx, "hog.lua",
                 "return function()\n"
                 "  local t = {}\n"
                 "  while true do t[#t + 1] = string.rep('x', 512) .. #t end\n"
                 "end\n");
    write_script(fx, "ok.lua", "return function() return { fine = 1 } end\n");
    memory_mb = 8;
    load_ok(fx);
    memory_mb = 0;
    dispatch(fx, "hog", "{\"type\":\"hog\",\"id\":1}");
    assert_non_null(strstr(last(fx), "\"code\":\"handler_error\""));
    assert_non_null(strstr(last(fx), "\"message\":\"out of memory\""));
    /* The garbage was collected: the state is healthy and answers. */
    assert_null(script_unhealthy(fx->s));
    assert_true(script_memory(fx->s) < 2 * 1024 * 1024);
    dispatch(fx, "ok", "{\"type\":\"ok\",\"id\":2}");
    assert_non_null(strstr(last(fx), "\"fine\":1"));
}

static void test_memory_a_script_keeps_makes_the_state_unhealthy(void **state) {
    fixture_t *fx = *state;
    write_script(
        fx, "leak.lua",
        "local keep = {}\n"
        "return function()\n"
        "  while true do keep[#keep + 1] = string.rep('y', 512) .. #keep end\n"
        "end\n");
    memory_mb = 8;
    load_ok(fx);
    memory_mb = 0;
    dispatch(fx, "leak", "{\"type\":\"leak\",\"id\":1}");
    assert_non_null(strstr(last(fx), "\"message\":\"out of memory\""));
    assert_non_null(script_unhealthy(fx->s));
    assert_true(script_memory(fx->s) > 6 * 1024 * 1024);
}

/* ---- the API's surface ------------------------------------------------------
 */

/* hub holds the documented API (docs/scripting.md) and nothing else: the
 * runtime's internals (answer, log, the store, set_fail, set_array_mt,
 * set_timer_runner) are in no table a script can reach, and there is no
 * hub.core to require. */
static const char api_names[] =
    "NO_ACK,after,array,array_mt,broadcast,cancel,conn_info,decode,encode,"
    "every,fail,history,is_member,join,leave,limits,log,now,null,online_users,"
    "presence_get,presence_set,presence_subscribe,publish,reply,room_info,"
    "room_members,send,send_room,send_user,send_users,store,"
    "user_connections,user_rooms,valid_user_id";

static const char *api_probe(fixture_t *fx) {
    return run_body(
        fx,
        "local names = {}\n"
        "for k in pairs(hub) do names[#names + 1] = k end\n"
        "table.sort(names)\n"
        "local reach = 'none'\n"
        "if package then\n"
        "  for name, m in pairs(package.loaded) do\n"
        "    if type(m) == 'table' and (rawget(m, 'set_fail')\n"
        "        or rawget(m, 'store_get') or rawget(m, 'set_timer_runner'))"
        " then\n"
        "      reach = name\n"
        "    end\n"
        "  end\n"
        "end\n"
        "return { names = table.concat(names, ','), reach = reach,\n"
        "         core = (pcall(require, 'hub.core')) }");
}

static void test_hub_holds_the_api_and_nothing_else(void **state) {
    fixture_t *fx = *state;
    const char *r = api_probe(fx);
    char want[1024];
    snprintf(want, sizeof want, "\"names\":\"%s\"", api_names);
    if (!strstr(r, want)) fail_msg("hub holds %s", r);
    assert_non_null(strstr(r, "\"core\":false"));
}

static void test_hub_holds_the_api_and_nothing_else_unsafe(void **state) {
    fixture_t *fx = *state;
    unsafe_lua = 1;
    const char *r = api_probe(fx);
    unsafe_lua = 0;
    char want[1024];
    snprintf(want, sizeof want, "\"names\":\"%s\"", api_names);
    if (!strstr(r, want)) fail_msg("hub holds %s", r);
    if (!strstr(r, "\"reach\":\"none\"")) fail_msg("reached: %s", r);
    assert_non_null(strstr(r, "\"core\":false"));
}

/* hub.limits and hub.valid_user_id are the core's (room.h, conn.h,
 * script_int.h), and the test kit's one copy (lua/fakecore.lua) agrees. */
static void test_limits_are_the_cores_and_the_fakes(void **state) {
    fixture_t *fx = *state;
    unsafe_lua = 1;
    const char *r = run_body(
        fx,
        "-- The kit's JSON library is not on the server's path, and not\n"
        "-- what this checks.\n"
        "package.preload.dkjson = function() return {} end\n"
        "local fake = require('fakecore')\n"
        "local bad = {}\n"
        "for k, v in pairs(hub.limits) do\n"
        "  if fake.limits[k] ~= v then bad[#bad + 1] = k end\n"
        "end\n"
        "for k in pairs(fake.limits) do\n"
        "  if hub.limits[k] == nil then bad[#bad + 1] = k end\n"
        "end\n"
        "local samples = { 'a', 'A-z_0.9@x', '', ('u'):rep(64),\n"
        "  ('u'):rep(65), 'a b', '\\195\\169', 'a/b', 'a+b', 42 }\n"
        "local valid = 0\n"
        "for _, v in ipairs(samples) do\n"
        "  if hub.valid_user_id(v) then valid = valid + 1 end\n"
        "  if hub.valid_user_id(v) ~= fake.valid_user_id(v) then\n"
        "    bad[#bad + 1] = tostring(v)\n"
        "  end\n"
        "end\n"
        "return { bad = table.concat(bad, ','), valid = valid,\n"
        "  room = hub.limits.room_id_max, user = hub.limits.user_id_max,\n"
        "  chars = hub.limits.user_id_chars, timers = hub.limits.timers_max }");
    unsafe_lua = 0;
    assert_non_null(strstr(r, "\"bad\":\"\""));
    assert_non_null(strstr(r, "\"valid\":3"));
    assert_non_null(strstr(r, "\"room\":128"));
    assert_non_null(strstr(r, "\"user\":64"));
    assert_non_null(strstr(r, "\"chars\":\"A-Z a-z 0-9 _ . @ -\""));
    assert_non_null(strstr(r, "\"timers\":10000"));
}

static void test_a_load_that_needs_more_than_the_cap_fails(void **state) {
    fixture_t *fx = *state;
    write_script(fx, "big.lua",
                 "local t = {}\n"
                 "for i = 1, 1e6 do t[i] = tostring(i) end\n"
                 "return function() return {} end\n");
    memory_mb = 4;
    char err[512] = "";
    fx->s = load(fx, err, sizeof err);
    memory_mb = 0;
    assert_null(fx->s);
    assert_non_null(strstr(err, "memory"));
}

/* ---- calls that wait on the host (a cluster) ---------------------------- */

/* Writes scripts/<type>.lua: a handler with hub required, body its
 * statements. */
static void write_handler(fixture_t *fx, const char *type, const char *body) {
    char name[64], src[2048];
    snprintf(name, sizeof name, "%s.lua", type);
    snprintf(src, sizeof src,
             "local hub = require 'hub'\nreturn function(conn, msg)\n%send\n",
             body);
    write_script(fx, name, src);
}

/* Sleeps ms, signals or not (the watchdog's interrupt a plain usleep). */
static void sleep_ms(int ms) {
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        usleep(1000);
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((t.tv_sec - t0.tv_sec) * 1000 +
                 (t.tv_nsec - t0.tv_nsec) / 1000000 <
             ms);
}

/* Dispatches json on connection "7" and expects it to wait. */
static void dispatch_waits(fixture_t *fx, const char *json) {
    envelope_t env;
    int rc =
        script_dispatch(fx->s, "7", "alice", json, strlen(json), NULL, 0, &env);
    envelope_clear(&env);
    assert_int_equal(rc, -EINPROGRESS);
}

/* The oldest call the host holds, which must be waiting on what. */
static script_wait *held(fixture_t *fx, const char *what) {
    host_state_t *h = &fx->st;
    assert_true(h->nwaits > 0);
    assert_string_equal(h->what[0], what);
    script_wait *w = h->waits[0];
    h->nwaits--;
    memmove(h->waits, h->waits + 1, h->nwaits * sizeof *h->waits);
    memmove(h->what, h->what + 1, h->nwaits * sizeof *h->what);
    return w;
}

static void test_waiting_handler_is_answered_after_the_wake(void **state) {
    fixture_t *fx = *state;
    write_handler(
        fx, "chat",
        "  return { seq = hub.publish('r', { text = 'x' }, conn.user) }\n");
    load_ok(fx);
    fx->st.defer = 1;
    dispatch_waits(fx, "{\"type\":\"chat\",\"id\":12345678901234567890}");
    /* Nothing answered yet: the call waits, the loop goes on. */
    assert_int_equal(fx->st.nsent, 0);
    assert_int_equal(script_waiting(fx->s), 1);
    script_wait *w = held(fx, "publish");
    assert_string_equal(script_wait_conn(w), "7");
    script_reply r = {.rc = 0, .seq = 42};
    assert_int_equal(script_wake(w, &r), 1);
    assert_int_equal(fx->st.nsent, 1);
    assert_string_equal(fx->st.sent[0].id, "7");
    assert_string_equal(last(fx),
                        "{\"type\":\"ack\",\"id\":12345678901234567890,"
                        "\"seq\":42}");
    assert_int_equal(script_waiting(fx->s), 0);
}

static void test_a_handler_waits_twice(void **state) {
    fixture_t *fx = *state;
    write_handler(
        fx, "enter",
        "  local joined = hub.join('r', conn.user)\n"
        "  return { joined = joined, members = hub.room_members('r') }\n");
    load_ok(fx);
    fx->st.defer = 1;
    dispatch_waits(fx, "{\"type\":\"enter\",\"id\":\"a\"}");
    script_reply joined = {.rc = 1};
    assert_int_equal(script_wake(held(fx, "join"), &joined), 0);
    assert_int_equal(fx->st.nsent, 0);
    assert_int_equal(script_waiting(fx->s), 1);
    const char *ids[] = {"zed", "amy"};
    script_reply members = {.rc = 0, .ids = ids, .nids = 2};
    assert_int_equal(script_wake(held(fx, "room_members"), &members), 1);
    assert_non_null(strstr(last(fx), "{\"type\":\"ack\",\"id\":\"a\","));
    assert_non_null(strstr(last(fx), "\"joined\":true"));
    assert_non_null(strstr(last(fx), "\"members\":[\"amy\",\"zed\"]"));
    assert_int_equal(script_waiting(fx->s), 0);
}

static void test_a_reply_raises_what_an_answer_at_once_raises(void **state) {
    fixture_t *fx = *state;
    write_handler(
        fx, "chat",
        "  return { seq = hub.publish('r', { text = 'x' }, conn.user) }\n");
    load_ok(fx);
    /* At once... */
    fx->st.room_exists = 1;
    fx->st.not_member = 1;
    dispatch(fx, "chat", "{\"type\":\"chat\",\"id\":1}");
    char at_once[1024];
    snprintf(at_once, sizeof at_once, "%s", last(fx));
    assert_non_null(strstr(at_once, "\"code\":\"not_in_room\""));
    /* ...and after a wake. */
    fx->st.defer = 1;
    dispatch_waits(fx, "{\"type\":\"chat\",\"id\":1}");
    script_reply r = {.rc = -EPERM};
    assert_int_equal(script_wake(held(fx, "publish"), &r), 1);
    assert_string_equal(last(fx), at_once);
}

static void test_unavailable_cluster_is_a_protocol_error(void **state) {
    fixture_t *fx = *state;
    static const char want[] =
        "\"message\":\"the cluster is unavailable; retry later (nothing was "
        "delivered)\"";
    write_handler(fx, "look", "  return { v = hub.store.get('k') }\n");
    load_ok(fx);
    /* At once: the host knows the cluster is gone. */
    fx->st.unavailable = 1;
    dispatch(fx, "look", "{\"type\":\"look\",\"id\":1}");
    assert_non_null(strstr(last(fx), want));
    /* In a reply: it went while the call waited. */
    fx->st.unavailable = 0;
    fx->st.defer = 1;
    dispatch_waits(fx, "{\"type\":\"look\",\"id\":1}");
    script_reply r = {.rc = -EAGAIN};
    assert_int_equal(script_wake(held(fx, "store_get"), &r), 1);
    assert_non_null(strstr(last(fx), want));
    assert_non_null(strstr(last(fx), "\"code\":\"unavailable\""));
}

/* Every kind of reply is pushed as the answer at once would be. */
static void test_replies_of_every_shape(void **state) {
    fixture_t *fx = *state;
    write_handler(
        fx, "all",
        "  local info = hub.room_info('r')\n"
        "  local st = hub.presence_subscribe(conn.id, { 'bo', 'cy' })\n"
        "  return { info = info, st = st, v = hub.store.get('k'),\n"
        "           n = hub.send_room('r', { type = 'x' }) }\n");
    load_ok(fx);
    fx->st.defer = 1;
    dispatch_waits(fx, "{\"type\":\"all\",\"id\":1}");
    const char *ids[] = {"bo"};
    script_reply info = {
        .rc = 0,
        .room = {.created_at = 5, .message_count = 6, .seq = 7, .members = 1},
        .ids = ids,
        .nids = 1};
    assert_int_equal(script_wake(held(fx, "room_info"), &info), 0);
    const int statuses[] = {1, 3};
    script_reply st = {.rc = 0, .statuses = statuses};
    assert_int_equal(script_wake(held(fx, "presence_subscribe"), &st), 0);
    script_reply v = {.rc = 0, .json = "{\"a\":[1]}", .len = 9};
    assert_int_equal(script_wake(held(fx, "store_get"), &v), 0);
    script_reply n = {.rc = 3};
    assert_int_equal(script_wake(held(fx, "send"), &n), 1);
    const char *r = last(fx);
    assert_non_null(strstr(r, "\"info\":{"));
    assert_non_null(strstr(r, "\"members\":[\"bo\"]"));
    assert_non_null(strstr(r, "\"seq\":7"));
    assert_non_null(strstr(r, "\"message_count\":6"));
    assert_non_null(strstr(r, "\"room_id\":\"r\""));
    assert_non_null(strstr(r, "\"st\":{"));
    assert_non_null(strstr(r, "\"bo\":\"online\""));
    assert_non_null(strstr(r, "\"cy\":\"busy\""));
    assert_non_null(strstr(r, "\"v\":{\"a\":[1]}"));
    assert_non_null(strstr(r, "\"n\":3"));
}

static void test_time_limit_counts_only_the_time_lua_runs(void **state) {
    fixture_t *fx = *state;
    write_handler(
        fx, "slow",
        "  local in_room = hub.is_member('r', conn.user)\n"
        "  -- A third of the limit, after the wait (the watchdog ticks at\n"
        "  -- least every 50 ms, so it looks at least once).\n"
        "  local t = hub.now()\n"
        "  while hub.now() - t < 70 do end\n"
        "  return { in_room = in_room }\n");
    timeout_ms = 200;
    load_ok(fx);
    timeout_ms = 0;
    fx->st.defer = 1;
    dispatch_waits(fx, "{\"type\":\"slow\",\"id\":1}");
    /* Twice the limit on the host: the handler itself runs a third of
     * it. */
    sleep_ms(400);
    script_reply r = {.rc = 1};
    assert_int_equal(script_wake(held(fx, "is_member"), &r), 1);
    assert_string_equal(last(fx),
                        "{\"type\":\"ack\",\"id\":1,\"in_room\":true}");
    assert_null(script_unhealthy(fx->s));
}

static void test_a_poisoned_states_waiting_call_is_answered_in_c(void **state) {
    fixture_t *fx = *state;
    write_handler(fx, "wait",
                  "  return { in_room = hub.is_member('r', conn.user) }\n");
    /* Compiled code ignores the hook: the call is abandoned, the state
     * poisoned. */
    write_script(fx, "spin.lua",
                 "return function()\n"
                 "  local x = 0\n"
                 "  while true do x = x + 1 end\n"
                 "end\n");
    timeout_ms = 30;
    load_ok(fx);
    timeout_ms = 0;
    fx->st.defer = 1;
    dispatch_waits(fx, "{\"type\":\"wait\",\"id\":7}");
    envelope_t env;
    static const char spin[] = "{\"type\":\"spin\",\"id\":8}";
    assert_int_equal(
        script_dispatch(fx->s, "8", "bob", spin, strlen(spin), NULL, 0, &env),
        -ETIMEDOUT);
    envelope_clear(&env);
    assert_non_null(script_unhealthy(fx->s));
    script_reply r = {.rc = 1};
    assert_int_equal(script_wake(held(fx, "is_member"), &r), 1);
    assert_string_equal(last(fx), "{\"type\":\"error\",\"id\":7,\"code\":"
                                  "\"handler_error\",\"message\":\"scripts "
                                  "unavailable until they load again\"}");
    assert_int_equal(script_waiting(fx->s), 0);
}

static void test_a_replaced_state_completes_its_waiting_calls(void **state) {
    fixture_t *fx = *state;
    write_handler(fx, "wait",
                  "  return { v = hub.presence_get('bo'), gen = 'old' }\n");
    load_ok(fx);
    fx->st.defer = 1;
    dispatch_waits(fx, "{\"type\":\"wait\",\"id\":1}");
    /* A reload: the new state takes over, the old one stays for its call. */
    script_t *old = fx->s;
    write_script(fx, "wait.lua",
                 "return function() return { gen = 'new' } end\n");
    load_ok(fx);
    dispatch(fx, "wait", "{\"type\":\"wait\",\"id\":2}");
    assert_non_null(strstr(last(fx), "\"gen\":\"new\""));
    script_reply r = {.rc = 2};
    assert_int_equal(script_wake(held(fx, "presence_get"), &r), 1);
    assert_non_null(strstr(last(fx), "{\"type\":\"ack\",\"id\":1,"));
    assert_non_null(strstr(last(fx), "\"v\":\"away\""));
    assert_non_null(strstr(last(fx), "\"gen\":\"old\""));
    assert_int_equal(script_waiting(old), 0);
    script_destroy(old);
}

static void test_a_timer_callback_can_wait(void **state) {
    fixture_t *fx = *state;
    write_handler(fx, "later",
                  "  hub.after(1, function()\n"
                  "    local n = hub.send_room('r', { type = 'tick' })\n"
                  "    hub.send(conn.id, { type = 'done', n = n })\n"
                  "  end)\n");
    timer_loop = uv_default_loop();
    load_ok(fx);
    timer_loop = NULL;
    dispatch(fx, "later", "{\"type\":\"later\"}");
    fx->st.defer = 1;
    for (int i = 0; i < 100 && !fx->st.nwaits; i++)
        uv_run(uv_default_loop(), UV_RUN_ONCE);
    assert_int_equal(fx->st.nwaits, 1);
    script_wait *w = held(fx, "send");
    assert_string_equal(script_wait_conn(w), "");
    assert_int_equal(fx->st.nsent, 0);
    fx->st.defer = 0;
    script_reply r = {.rc = 3};
    assert_int_equal(script_wake(w, &r), 1);
    assert_non_null(strstr(last(fx), "\"type\":\"done\""));
    assert_non_null(strstr(last(fx), "\"n\":3"));
    assert_int_equal(script_waiting(fx->s), 0);
}

static void test_where_a_call_cannot_wait_it_says_so(void **state) {
    fixture_t *fx = *state;
    char hooks[128];
    snprintf(hooks, sizeof hooks, "%s/hooks", fx->dir);
    assert_int_equal(mkdir(hooks, 0700), 0);
    write_script(fx, "hooks/on_connect.lua",
                 "local hub = require 'hub'\n"
                 "return function(conn)\n"
                 "  local ok, err = pcall(hub.publish, 'r', {}, conn.user)\n"
                 "  return false, err\n"
                 "end\n");
    write_handler(fx, "sorted",
                  "  local t = { 'b', 'a', 'c' }\n"
                  "  table.sort(t, function(a, b)\n"
                  "    hub.is_member('r', a)\n"
                  "    return a < b\n"
                  "  end)\n");
    write_handler(fx, "own",
                  "  local ok, err = coroutine.wrap(function()\n"
                  "    return pcall(hub.store.set, 'k', 1)\n"
                  "  end)()\n"
                  "  hub.fail('x', err)\n");
    load_ok(fx);
    fx->st.defer = 1;
    buf_t meta;
    buf_init(&meta, 0);
    char reason[256];
    assert_int_equal(
        script_on_connect(fx->s, "9", "alice", &meta, reason, sizeof reason),
        0);
    buf_close(&meta);
    assert_non_null(strstr(
        reason, "hub.publish cannot wait for the cluster in on_connect"));
    dispatch(fx, "sorted", "{\"type\":\"sorted\",\"id\":1}");
    assert_non_null(strstr(last(fx), "\"message\":\"hub.is_member cannot wait "
                                     "for the cluster inside a function that "
                                     "cannot yield"));
    dispatch(fx, "own", "{\"type\":\"own\",\"id\":1}");
    assert_non_null(strstr(last(fx), "hub.store.set cannot wait for the "
                                     "cluster inside a coroutine of the "
                                     "script's own\""));
    assert_int_equal(fx->st.nwaits, 0);
}

/* A script that resumes a waiting call's coroutine itself does not wake
 * it: only the host's reply does, and the frame is answered once. */
static void test_a_scripts_own_resume_does_not_wake_a_call(void **state) {
    fixture_t *fx = *state;
    write_script(fx, "poke.lua",
                 "local hub = require 'hub'\n"
                 "local saved\n"
                 "return function(conn, msg)\n"
                 "  if msg.poke then\n"
                 "    local ok, what = coroutine.resume(saved)\n"
                 "    return { ok = ok, what = type(what) }\n"
                 "  end\n"
                 "  saved = coroutine.running()\n"
                 "  return { v = hub.presence_get('bo') }\n"
                 "end\n");
    load_ok(fx);
    fx->st.defer = 1;
    dispatch_waits(fx, "{\"type\":\"poke\",\"id\":1}");
    fx->st.defer = 0;
    dispatch(fx, "poke", "{\"type\":\"poke\",\"id\":2,\"poke\":true}");
    assert_int_equal(fx->st.nsent, 1);
    assert_non_null(strstr(last(fx), "\"id\":2"));
    assert_non_null(strstr(last(fx), "\"ok\":true"));
    assert_int_equal(script_waiting(fx->s), 1);
    script_reply r = {.rc = 1};
    assert_int_equal(script_wake(held(fx, "presence_get"), &r), 1);
    assert_int_equal(fx->st.nsent, 2);
    assert_non_null(strstr(last(fx), "\"id\":1"));
    assert_non_null(strstr(last(fx), "\"v\":\"online\""));
}

/* A host that wakes a call from inside another call's host function. */
static int wake_rc;
static int h_is_member_wakes(void *ud, const char *room, const char *uid,
                             script_wait *w) {
    host_state_t *h = ud;
    script_reply r = {.rc = 1};
    wake_rc = script_wake(h->waits[0], &r);
    return 1;
}

static void test_a_wake_inside_a_script_call_is_refused(void **state) {
    fixture_t *fx = *state;
    write_handler(fx, "wait", "  return { v = hub.presence_get('bo') }\n");
    write_handler(fx, "check", "  return { m = hub.is_member('r', 'bo') }\n");
    load_ok(fx);
    fx->st.defer = 1;
    dispatch_waits(fx, "{\"type\":\"wait\",\"id\":1}");
    fx->st.defer = 0;
    fx->host.is_member = h_is_member_wakes;
    dispatch(fx, "check", "{\"type\":\"check\",\"id\":2}");
    assert_int_equal(wake_rc, -EBUSY);
    /* The record is still the host's, and wakes from the loop. */
    assert_int_equal(script_waiting(fx->s), 1);
    script_reply r = {.rc = 0};
    assert_int_equal(script_wake(held(fx, "presence_get"), &r), 1);
    assert_string_equal(last(fx),
                        "{\"type\":\"ack\",\"id\":1,\"v\":\"offline\"}");
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_waiting_handler_is_answered_after_the_wake),
        T(test_a_handler_waits_twice),
        T(test_a_reply_raises_what_an_answer_at_once_raises),
        T(test_unavailable_cluster_is_a_protocol_error),
        T(test_replies_of_every_shape),
        T(test_time_limit_counts_only_the_time_lua_runs),
        T(test_a_poisoned_states_waiting_call_is_answered_in_c),
        T(test_a_replaced_state_completes_its_waiting_calls),
        T(test_a_timer_callback_can_wait),
        T(test_where_a_call_cannot_wait_it_says_so),
        T(test_a_wake_inside_a_script_call_is_refused),
        T(test_a_scripts_own_resume_does_not_wake_a_call),
        T(test_returned_table_is_merged_into_ack),
        T(test_no_ack_without_id),
        T(test_runtime_error_is_handler_error_without_position),
        T(test_fail_raises_protocol_code),
        T(test_unknown_type_left_to_the_caller),
        T(test_unknown_type_after_a_hook_renamed_it),
        T(test_publish_as_member),
        T(test_hub_holds_the_api_and_nothing_else),
        T(test_hub_holds_the_api_and_nothing_else_unsafe),
        T(test_limits_are_the_cores_and_the_fakes),
        T(test_junk_return_is_handler_error),
        T(test_empty_array_encodes_as_array),
        T(test_publish_stamps_seq_and_room),
        T(test_publish_to_missing_room_is_not_found),
        T(test_publish_that_cannot_be_encoded_takes_no_seq),
        T(test_answers_echo_the_id_as_written),
        T(test_hook_rewrite_keeps_id_and_drop_is_acked),
        T(test_publish_leaves_msg_alone_and_stamps_once),
        T(test_send_room_passes_except_user),
        T(test_sending_a_string_that_is_not_json_fails),
        T(test_members_come_back_sorted),
        T(test_syntax_error_fails_load_with_file_and_line),
        T(test_script_must_return_a_function),
        T(test_bytecode_is_refused),
        T(test_types_listed_sorted),
        T(test_sandbox_has_no_io_os_execute_ffi_or_debug),
        T(test_sandbox_refuses_bytecode_at_run_time),
        T(test_writing_an_undeclared_global_is_an_error_naming_it),
        T(test_scripts_cannot_change_each_others_libraries),
        T(test_hub_is_read_only_and_others_keep_their_view),
        T(test_each_script_has_its_own_modules),
        T(test_string_rep_past_2_31_is_out_of_memory),
        T(test_require_finds_scripts_lib_and_cjson_safe),
        T(test_unsafe_lua_lifts_the_sandbox),
        T(test_every_load_error_is_reported),
        T(test_memory_cap_stops_a_call_and_the_state_goes_on),
        T(test_memory_a_script_keeps_makes_the_state_unhealthy),
        T(test_a_load_that_needs_more_than_the_cap_fails),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
