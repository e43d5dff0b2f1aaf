/* broker_lua.c -- the scripts Redis runs for the broker (see broker_int.h).
 *
 * Each is one atomic step on the shared state. Key and channel names are
 * built here from the ids, under "luahub:", with a room's keys and channel
 * tagged {room} (so that a Redis Cluster would keep them in one slot; see
 * docs/scaling.md). A message on a channel is a header line, then its
 * body: "F\t<except conn>\t<except user>[\te]\n<frame JSON>" (a frame;
 * "\te" when it is ephemeral, broker_int.h),
 * "J\t<user>\n" / "L\t<user>\n" on a room's channel and "J\t\n<room>" /
 * "L\t\n<room>" on a user's (a membership), "S\t<status>\n" on a user's
 * presence channel, "C\t<conn>[\te]\n<frame JSON>" and "P\t<n>\n" on a
 * node's.
 * The Lua is Redis's own (5.1, with cjson); it never sees a node's
 * memory. */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "broker_int.h"

/* Names, and what leaving for good means, shared by the scripts: gone()
 * is a user's last connection anywhere (out of every room, user_left to
 * the rest where the room had at most `listed` members, the user
 * included (--max-listed-members), offline, the user's store scope dropped; no
 * membership marker: no node holds the user any more, and one that was taken
 * for dead but lives keeps its users' rooms and registers them again);
 * conn_gone() one connection closed (or its node died), 1 when it was
 * the user's last one (gone() then, or once --presence-grace is over:
 * grace_due());
 * conn_new() one opened, 1 when the user was online nowhere. */
#define PRELUDE                                                                \
    "local P = 'luahub:'\n"                                                    \
    "local function rk(room, what) return P .. '{' .. room .. '}:' .. what "   \
    "end\n"                                                                    \
    "local function rch(room) return P .. 'room:{' .. room .. '}' end\n"       \
    "local function uk(uid, what) return P .. 'user:' .. uid .. ':' .. what "  \
    "end\n"                                                                    \
    "local function room_gone(room, ttl)\n"                                    \
    "  redis.call('PEXPIRE', rk(room, 'info'), ttl)\n"                         \
    "  redis.call('PEXPIRE', rk(room, 'history'), ttl)\n"                      \
    "  redis.call('DEL', P .. 'store:room:{' .. room .. '}')\n"                \
    "end\n"                                                                    \
    "local function set_epoch(room, epoch)\n"                                  \
    "  redis.call('HSET', rk(room, 'info'), 'epoch', epoch)\n"                 \
    "  redis.call('DEL', rk(room, 'history'))\n"                               \
    "end\n" /* A new epoch: the stream of the one before is gone with it,      \
             * so that stream ids (<seq>-0) start again with the seq. */       \
    "local function gone(uid, now, ttl, listed)\n"                             \
    "  for _, room in ipairs(redis.call('SMEMBERS', uk(uid, 'rooms'))) do\n"   \
    "    local mk = rk(room, 'roster')\n"                                      \
    "    redis.call('ZREM', mk, uid)\n"                                        \
    "    local left = redis.call('ZCARD', mk)\n"                               \
    "    if left == 0 then room_gone(room, ttl)\n"                             \
    "    elseif left < tonumber(listed) then\n"                                \
    "      redis.call('PUBLISH', rch(room), 'F\\t\\t\\n' ..\n"                 \
    "        '{\"type\":\"user_left\",\"room_id\":' .. cjson.encode(room) "    \
    "..\n"                                                                     \
    "        ',\"from\":\"' .. uid .. '\",\"timestamp\":' .. now .. '}')\n"    \
    "    end\n"                                                                \
    "  end\n"                                                                  \
    "  redis.call('DEL', uk(uid, 'rooms'), uk(uid, 'conns'), P .. "            \
    "'store:user:' .. uid)\n"                                                  \
    "  redis.call('SREM', P .. 'online', uid)\n"                               \
    "  redis.call('HDEL', P .. 'presence', uid)\n"                             \
    "  redis.call('PUBLISH', P .. 'presence:' .. uid, 'S\\toffline\\n')\n"     \
    "end\n" /* One connection of the user closed (or its node died): 1 when it \
             * was the user's last one anywhere. With a grace (ms, > 0) the    \
             * user is gone only if no connection of theirs is back by then:   \
             * the deadline waits in luahub:gone for a reap (grace_due). */    \
    "local function conn_gone(cid, uid, node, now, grace, ttl, listed)\n"      \
    "  redis.call('SREM', P .. 'node:' .. node .. ':conns', cid .. '\\t' .. "  \
    "uid)\n"                                                                   \
    "  if redis.call('HDEL', uk(uid, 'conns'), cid) == 0 then return 0 end\n"  \
    "  if redis.call('HLEN', uk(uid, 'conns')) > 0 then return 0 end\n"        \
    "  if grace and tonumber(grace) > 0 then\n"                                \
    "    redis.call('ZADD', P .. 'gone', tonumber(now) + tonumber(grace), "    \
    "uid)\n"                                                                   \
    "  else gone(uid, now, ttl, listed) end\n"                                 \
    "  return 1\n"                                                             \
    "end\n" /* The users whose grace is over, still without a connection:      \
             * gone now (a bounded batch per call). */                         \
    "local function grace_due(now, ttl, listed)\n"                             \
    "  local due = redis.call('ZRANGEBYSCORE', P .. 'gone', '-inf', now, "     \
    "'LIMIT', 0, 1000)\n"                                                      \
    "  for _, uid in ipairs(due) do\n"                                         \
    "    redis.call('ZREM', P .. 'gone', uid)\n"                               \
    "    if redis.call('HLEN', uk(uid, 'conns')) == 0 then gone(uid, now, "    \
    "ttl, listed) end\n"                                                       \
    "  end\n"                                                                  \
    "end\n" /* A connection opened: a grace under way ends (nothing is         \
             * announced: the user is still online). */                        \
    "local function conn_new(cid, uid, node)\n"                                \
    "  redis.call('ZREM', P .. 'gone', uid)\n"                                 \
    "  redis.call('HSET', uk(uid, 'conns'), cid, node)\n"                      \
    "  redis.call('SADD', P .. 'node:' .. node .. ':conns', cid .. '\\t' .. "  \
    "uid)\n"                                                                   \
    "  if redis.call('SADD', P .. 'online', uid) == 0 then return 0 end\n"     \
    "  redis.call('HSET', P .. 'presence', uid, 'online')\n"                   \
    "  redis.call('PUBLISH', P .. 'presence:' .. uid, 'S\\tonline\\n')\n"      \
    "  return 1\n"                                                             \
    "end\n"

static const char *const sources[BS_COUNT] = {
    /* ARGV: room, member ('' none), head, tail, new epoch, now, history
     * size, history ttl (ms). The frame is head .. seq .. tail: kept in
     * the room's stream as it goes out (entry id <seq>-0, fields f: the
     * frame, t: when), and published with its seq in the header. */
    [BS_PUBLISH] = PRELUDE
    "local room, member = ARGV[1], ARGV[2]\n"
    "local mk, ik, hk = rk(room, 'roster'), rk(room, 'info'), rk(room, "
    "'history')\n"
    "if member ~= '' then\n"
    "  if not redis.call('ZSCORE', mk, member) then return {-1, ''} end\n"
    "elseif redis.call('EXISTS', mk) == 0 and redis.call('EXISTS', ik) == 0 "
    "then\n"
    "  return {-2, ''}\n"
    "end\n"
    "local seq = redis.call('HINCRBY', ik, 'seq', 1)\n"
    "local epoch = redis.call('HGET', ik, 'epoch')\n"
    "if not epoch then\n"
    "  epoch = ARGV[5]\n"
    "  set_epoch(room, epoch)\n"
    "  redis.call('HSETNX', ik, 'created_at', ARGV[6])\n"
    "end\n"
    "redis.call('HINCRBY', ik, 'message_count', 1)\n"
    "local frame = ARGV[3] .. seq .. ARGV[4]\n"
    "local size, ttl = tonumber(ARGV[7]), tonumber(ARGV[8])\n"
    "if size > 0 and ttl > 0 then\n"
    "  local id = string.format('%.0f-0', seq)\n"
    "  local add = {'XADD', hk, 'MAXLEN', size, id, 'f', frame, 't', ARGV[6]}\n"
    "  local ok = redis.pcall(unpack(add))\n"
    /* The stream is past this seq: the info hash lost writes that the
     * stream kept. The seqs are not the ones of the stream's epoch. */
    "  if type(ok) == 'table' and ok.err then\n"
    "    epoch = ARGV[5]\n"
    "    set_epoch(room, epoch)\n"
    "    redis.call(unpack(add))\n"
    "  end\n"
    "  redis.call('PEXPIRE', hk, ttl)\n"
    "end\n"
    "redis.call('PUBLISH', rch(room), 'F\\t\\t\\t\\t' .. seq .. '\\n' .. "
    "frame)\n"
    "return {seq, epoch}\n",

    /* ARGV: room, user, now, new epoch. */
    [BS_JOIN] = PRELUDE
    "local room, uid = ARGV[1], ARGV[2]\n"
    "local mk, ik = rk(room, 'roster'), rk(room, 'info')\n"
    "local added = redis.call('ZADD', mk, 0, uid)\n"
    "redis.call('PERSIST', ik)\n"
    "if added == 1 then\n"
    "  redis.call('SADD', uk(uid, 'rooms'), room)\n"
    "  redis.call('HSETNX', ik, 'created_at', ARGV[3])\n"
    "  if redis.call('HEXISTS', ik, 'epoch') == 0 then set_epoch(room, "
    "ARGV[4]) end\n"
    "  redis.call('PUBLISH', rch(room), 'J\\t' .. uid .. '\\n')\n"
    "  redis.call('PUBLISH', P .. 'user:' .. uid, 'J\\t\\n' .. room)\n"
    "end\n"
    "local i = redis.call('HMGET', ik, 'seq', 'created_at', 'epoch')\n"
    "return {added, tonumber(i[1]) or 0, redis.call('ZCARD', mk),\n"
    "        tonumber(i[2]) or 0, i[3] or ''}\n",

    /* ARGV: room, user, history ttl (ms). {left, members after}. */
    [BS_LEAVE] = PRELUDE
    "local room, uid = ARGV[1], ARGV[2]\n"
    "local mk = rk(room, 'roster')\n"
    "if redis.call('ZREM', mk, uid) == 0 then\n"
    "  return {0, redis.call('ZCARD', mk)}\n"
    "end\n"
    "redis.call('SREM', uk(uid, 'rooms'), room)\n"
    "redis.call('PUBLISH', rch(room), 'L\\t' .. uid .. '\\n')\n"
    "redis.call('PUBLISH', P .. 'user:' .. uid, 'L\\t\\n' .. room)\n"
    "local left = redis.call('ZCARD', mk)\n"
    "if left == 0 then room_gone(room, ARGV[3]) end\n"
    "return {1, left}\n",

    /* ARGV: except conn, its user, except user, the class field ('' or
     * '\te'), frame, users... */
    [BS_SEND_USERS] = PRELUDE
    "local total = 0\n"
    "local msg = 'F\\t' .. ARGV[1] .. '\\t' .. ARGV[3] .. ARGV[4] .. '\\n' .. "
    "ARGV[5]\n"
    "for i = 6, #ARGV do\n"
    "  local uid = ARGV[i]\n"
    "  local n = uid == ARGV[3] and 0 or redis.call('HLEN', uk(uid, "
    "'conns'))\n"
    "  if n > 0 then\n"
    "    if uid == ARGV[2] then n = n - 1 end\n"
    "    total = total + n\n"
    "    redis.call('PUBLISH', P .. 'user:' .. uid, msg)\n"
    "  end\n"
    "end\n"
    "return total\n",

    /* ARGV: user, status. */
    [BS_PRESENCE_SET] = PRELUDE
    "local uid, st = ARGV[1], ARGV[2]\n"
    "if redis.call('SISMEMBER', P .. 'online', uid) == 0 then return -1 end\n"
    "if redis.call('HGET', P .. 'presence', uid) == st then return 0 end\n"
    "redis.call('HSET', P .. 'presence', uid, st)\n"
    "redis.call('PUBLISH', P .. 'presence:' .. uid, 'S\\t' .. st .. '\\n')\n"
    "return 1\n",

    /* ARGV: kind (0 global, 1 room, 2 user), scope, key, JSON, most keys
     * in a scope. */
    [BS_STORE_SET] = PRELUDE
    "local kind, scope, key = ARGV[1], ARGV[2], ARGV[3]\n"
    "local hk = P .. 'store:global'\n"
    "if kind == '1' then\n"
    "  if redis.call('EXISTS', rk(scope, 'roster')) == 0 then return -1 "
    "end\n"
    "  hk = P .. 'store:room:{' .. scope .. '}'\n"
    "elseif kind == '2' then\n"
    "  if redis.call('SISMEMBER', P .. 'online', scope) == 0 then return -1 "
    "end\n"
    "  hk = P .. 'store:user:' .. scope\n"
    "end\n"
    "if redis.call('HEXISTS', hk, key) == 0 and\n"
    "   redis.call('HLEN', hk) >= tonumber(ARGV[5]) then return -2 end\n"
    "redis.call('HSET', hk, key, ARGV[4])\n"
    "return 0\n",

    /* ARGV: conn, user, node. */
    [BS_CONN_OPEN] = PRELUDE
    "local first = conn_new(ARGV[1], ARGV[2], ARGV[3])\n"
    "return {first, redis.call('SMEMBERS', uk(ARGV[2], 'rooms'))}\n",

    /* ARGV: conn, user, node, now, grace (ms; 0: none), history ttl (ms),
     * --max-listed-members. */
    [BS_CONN_CLOSE] =
        PRELUDE "return conn_gone(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], "
                "ARGV[6], ARGV[7])\n",

    /* ARGV: now, history ttl (ms), --max-listed-members. Every node whose
     * heartbeat has expired: its connections closed as if each said goodbye
     * (without a grace:
     * --presence-ttl was theirs), then it is forgotten; and the users whose
     * --presence-grace is over are gone. */
    [BS_REAP] = PRELUDE
    "local dead = 0\n"
    "for _, node in ipairs(redis.call('SMEMBERS', P .. 'nodes')) do\n"
    "  if redis.call('EXISTS', P .. 'node:' .. node) == 0 then\n"
    "    local ck = P .. 'node:' .. node .. ':conns'\n"
    "    for _, e in ipairs(redis.call('SMEMBERS', ck)) do\n"
    "      local t = string.find(e, '\\t', 1, true)\n"
    "      conn_gone(string.sub(e, 1, t - 1), string.sub(e, t + 1), node, "
    "ARGV[1], 0, ARGV[2], ARGV[3])\n"
    "    end\n"
    "    redis.call('DEL', ck)\n"
    "    redis.call('SREM', P .. 'nodes', node)\n"
    "    dead = dead + 1\n"
    "  end\n"
    "end\n"
    "grace_due(ARGV[1], ARGV[2], ARGV[3])\n"
    "return dead\n",

    /* ARGV: node, now, heartbeat ms, history ttl (ms), a new epoch,
     * --max-listed-members, then n
     * and n (conn, user) pairs, m and m (user, room) pairs, k and k (user,
     * status) pairs: what the node holds. Connections Redis has for the
     * node but the node does not are closed; the rest is (re)registered,
     * so a Redis that lost its data gets it back (a room whose info is
     * gone gets a new epoch: the new epoch and the room's index). */
    [BS_SYNC] = PRELUDE
    "local node, now = ARGV[1], ARGV[2]\n"
    "redis.call('SET', P .. 'node:' .. node, '1', 'PX', ARGV[3])\n"
    "redis.call('SADD', P .. 'nodes', node)\n"
    "local ttl, listed = ARGV[4], ARGV[6]\n"
    "local i = 7\n"
    "local n = tonumber(ARGV[i]); i = i + 1\n"
    "local have = {}\n"
    "for k = 1, n do\n"
    "  have[ARGV[i] .. '\\t' .. ARGV[i + 1]] = true\n"
    "  conn_new(ARGV[i], ARGV[i + 1], node)\n"
    "  i = i + 2\n"
    "end\n"
    "local ck = P .. 'node:' .. node .. ':conns'\n"
    "for _, e in ipairs(redis.call('SMEMBERS', ck)) do\n"
    "  if not have[e] then\n"
    "    local t = string.find(e, '\\t', 1, true)\n"
    "    conn_gone(string.sub(e, 1, t - 1), string.sub(e, t + 1), node, now, "
    "0, ttl, listed)\n"
    "  end\n"
    "end\n"
    "n = tonumber(ARGV[i]); i = i + 1\n"
    "for k = 1, n do\n"
    "  local uid, room = ARGV[i], ARGV[i + 1]\n"
    "  if redis.call('ZADD', rk(room, 'roster'), 0, uid) == 1 then\n"
    "    local ik = rk(room, 'info')\n"
    "    redis.call('SADD', uk(uid, 'rooms'), room)\n"
    "    redis.call('PERSIST', ik)\n"
    "    redis.call('HSETNX', ik, 'created_at', now)\n"
    "    if redis.call('HEXISTS', ik, 'epoch') == 0 then\n"
    "      set_epoch(room, ARGV[5] .. '.' .. k)\n"
    "    end\n"
    "  end\n"
    "  i = i + 2\n"
    "end\n"
    "n = tonumber(ARGV[i]); i = i + 1\n"
    "for k = 1, n do\n"
    "  if redis.call('SISMEMBER', P .. 'online', ARGV[i]) == 1 then\n"
    "    redis.call('HSET', P .. 'presence', ARGV[i], ARGV[i + 1])\n"
    "  end\n"
    "  i = i + 2\n"
    "end\n"
    "return 1\n",

    /* ARGV: room, --max-listed-members. {exists, created_at,
     * message_count, seq, member count, epoch, members}: the members only
     * while there are at most that many (a big room's are not read). A
     * room left empty is there while its info is (--history-ttl). */
    [BS_ROOM_INFO] = PRELUDE
    "local mk, ik = rk(ARGV[1], 'roster'), rk(ARGV[1], 'info')\n"
    "local n = redis.call('ZCARD', mk)\n"
    "if n == 0 and redis.call('EXISTS', ik) == 0 then\n"
    "  return {0, 0, 0, 0, 0, '', {}}\n"
    "end\n"
    "local m = {}\n"
    "if n <= tonumber(ARGV[2]) then m = redis.call('ZRANGE', mk, 0, -1) end\n"
    "local i = redis.call('HMGET', ik, 'created_at', 'message_count', 'seq', "
    "'epoch')\n"
    "return {1, tonumber(i[1]) or 0, tonumber(i[2]) or 0, tonumber(i[3]) or "
    "0, n, i[4] or '', m}\n",

    /* ARGV: room, member ('' none), after ('' from the first), limit (-1
     * all). {rc (0, -1 not a member, -2 no such room), ids}: a page of
     * the room's members in byte order (ZRANGEBYLEX on the roster, whose
     * scores are all 0): O(log n + limit). */
    [BS_MEMBERS] = PRELUDE
    "local room, member, after = ARGV[1], ARGV[2], ARGV[3]\n"
    "local mk = rk(room, 'roster')\n"
    "if member ~= '' then\n"
    "  if not redis.call('ZSCORE', mk, member) then return {-1, {}} end\n"
    "elseif redis.call('EXISTS', mk) == 0 and\n"
    "       redis.call('EXISTS', rk(room, 'info')) == 0 then\n"
    "  return {-2, {}}\n"
    "end\n"
    "local from = after == '' and '-' or '(' .. after\n"
    "return {0, redis.call('ZRANGEBYLEX', mk, from, '+', 'LIMIT', 0, "
    "tonumber(ARGV[4]))}\n",

    /* ARGV: room, member ('' none), since (-1: the newest), limit, now,
     * history ttl (ms), a new epoch, the caller's epoch ('' none).
     * {rc (0, -1 not a member, -2 no such room), seq, epoch, frames}: the
     * first `limit` frames kept after since, or the newest `limit`, not
     * older than the ttl, oldest first. A caller's since past the seq of
     * its own epoch proves that Redis lost writes (older data came back):
     * the room gets a new epoch, so that the seqs given again are never
     * taken for the old ones. */
    [BS_HISTORY] = PRELUDE
    "local room, member = ARGV[1], ARGV[2]\n"
    "local since, limit = tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "local cut = tonumber(ARGV[5]) - tonumber(ARGV[6])\n"
    "local mk, ik, hk = rk(room, 'roster'), rk(room, 'info'), rk(room, "
    "'history')\n"
    "if member ~= '' then\n"
    "  if not redis.call('ZSCORE', mk, member) then return {-1} end\n"
    "elseif redis.call('EXISTS', mk) == 0 and redis.call('EXISTS', ik) == 0 "
    "then\n"
    "  return {-2}\n"
    "end\n"
    "local i = redis.call('HMGET', ik, 'seq', 'epoch')\n"
    "local seq, epoch = tonumber(i[1]) or 0, i[2]\n"
    "if not epoch or (ARGV[8] == epoch and since > seq) then\n"
    "  epoch = ARGV[7]\n"
    "  if i[2] then redis.call('HSET', ik, 'epoch', epoch)\n"
    "  else set_epoch(room, epoch) end\n"
    "  redis.call('HSETNX', ik, 'created_at', ARGV[5])\n"
    "end\n"
    "local out = {}\n"
    "local function keep(e)\n"
    "  if tonumber(e[2][4]) > cut then out[#out + 1] = e[2][2] end\n"
    "end\n"
    "if limit > 0 and since >= 0 then\n"
    "  local from = string.format('%.0f-0', since + 1)\n"
    "  while #out < limit do\n"
    "    local want = limit - #out\n"
    "    local got = redis.call('XRANGE', hk, from, '+', 'COUNT', want)\n"
    "    for _, e in ipairs(got) do keep(e) end\n"
    "    if #got < want then break end\n"
    "    from = string.format('%.0f-0', tonumber(string.match(got[#got][1], "
    "'^%d+')) + 1)\n"
    "  end\n"
    "elseif limit > 0 then\n"
    "  local got = redis.call('XREVRANGE', hk, '+', '-', 'COUNT', limit)\n"
    "  for k = #got, 1, -1 do keep(got[k]) end\n"
    "end\n"
    "return {0, seq, epoch, out}\n",

    /* ARGV: users... Their statuses: offline unless online somewhere. */
    [BS_PRESENCE_GET] = PRELUDE
    "local out = {}\n"
    "for i = 1, #ARGV do\n"
    "  local st = false\n"
    "  if redis.call('SISMEMBER', P .. 'online', ARGV[i]) == 1 then\n"
    "    st = redis.call('HGET', P .. 'presence', ARGV[i])\n"
    "  end\n"
    "  out[i] = st or 'offline'\n"
    "end\n"
    "return out\n",
};

static char shas[BS_COUNT][41];

const char *broker__lua(broker_script s) {
    return sources[s];
}

const char *broker__sha(broker_script s) {
    if (!shas[s][0]) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        EVP_Digest(sources[s], strlen(sources[s]), md, &n, EVP_sha1(), NULL);
        for (size_t i = 0; i < n && i < 20; i++)
            snprintf(shas[s] + 2 * i, 3, "%02x", md[i]);
    }
    return shas[s];
}
