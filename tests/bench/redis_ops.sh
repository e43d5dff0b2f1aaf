#!/usr/bin/env bash
# redis_ops.sh -- what one Redis core does per operation of the cluster
# design (docs/scaling.md): a local redis-server pinned to CPU 0,
# redis-benchmark (and any subscribers) on CPU 1; for each operation its
# rate and Redis's own CPU per operation (utime+stime of redis-server from
# /proc, over the run and the subscribers' drain).
#
#   tests/bench/redis_ops.sh [N]     N operations per row (default 200000)
#
# Rows: PUBLISH and SPUBLISH of a 200-byte chat frame to a channel with 0,
# 1, 16 and 64 subscribed connections (a subscribed connection stands for a
# node with members of the room), pipelined from 50 clients and one at a
# time from one; EVALSHA of scripts shaped like issue 11's atomic steps:
# publish (membership check, seq, count, build the frame, PUBLISH) and join
# (SADD x2, SCARD, PUBLISH); SSUBSCRIBE. Then bytes of Redis memory per
# set member, hash field, user, room and subscription. The subscribers are
# redis-cli processes, slower than Redis, so their output buffers are left
# unbounded here. Bounded in time: about a minute in all.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

N=${1:-200000}
PORT=${REDIS_PORT:-16399}
CLI=(redis-cli -p "$PORT")

taskset -c 0 redis-server --port "$PORT" --bind 127.0.0.1 --save '' \
  --appendonly no --client-output-buffer-limit 'pubsub 0 0 0' \
  >/tmp/luahub-redis-ops.log 2>&1 &
RPID=$!
SUBS=()
cleanup() {
  for p in "${SUBS[@]}"; do kill "$p" 2>/dev/null || true; done
  stop_pid "$RPID"
}
trap cleanup EXIT
wait_port "$PORT"

TICK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$RPID/stat"; }

# The chat frame a node would publish (about 200 bytes).
FRAME='{"type":"chat","room_id":"r","from":"alice","seq":1,"timestamp":1700000000000,"payload":{"text":"hello, this is a chat message of about the size a chat page sends; padded to make the frame two hundred bytes"}}'

PUBLISH_LUA='
if redis.call("SISMEMBER", KEYS[2], ARGV[1]) == 0 then
  return redis.error_reply("not_member")
end
local epoch = redis.call("HGET", KEYS[1], "epoch")
if not epoch then
  epoch = ARGV[3]
  redis.call("HSET", KEYS[1], "epoch", epoch, "created_at", ARGV[4])
end
local seq = redis.call("HINCRBY", KEYS[1], "seq", 1)
redis.call("HINCRBY", KEYS[1], "message_count", 1)
local frame = "{\"type\":\"chat\",\"room_id\":\"r\",\"from\":\"" .. ARGV[1] ..
  "\",\"seq\":" .. seq .. ",\"payload\":" .. ARGV[2] .. "}"
redis.call("PUBLISH", "luahub:room:{r}", "chat\n" .. frame)
return {seq, epoch}'

JOIN_LUA='
local added = redis.call("SADD", KEYS[1], ARGV[1])
redis.call("SADD", "luahub:user:" .. ARGV[1] .. ":rooms", ARGV[2])
local n = redis.call("SCARD", KEYS[1])
redis.call("PUBLISH", "luahub:room:{" .. ARGV[2] .. "}",
  "join\n{\"type\":\"user_joined\",\"room_id\":\"" .. ARGV[2] ..
  "\",\"from\":\"" .. ARGV[1] .. "\"}")
return {added, n}'

PSHA=$("${CLI[@]}" SCRIPT LOAD "$PUBLISH_LUA")
JSHA=$("${CLI[@]}" SCRIPT LOAD "$JOIN_LUA")
"${CLI[@]}" SADD 'luahub:{r}:members' alice >/dev/null

# row NAME COMMAND...: run OPS (default N) of COMMAND from CLIENTS (50) clients, each
# with PIPE (default 16) commands in flight, as a node's one command
# connection carries many; print the rate and Redis's CPU per operation
# (waiting for the subscribers to drain first).
row() {
  local name=$1 ops=${OPS:-$N}
  shift
  local t0 t1 rate
  t0=$(cpu_ticks)
  rate=$(taskset -c 1 redis-benchmark -p "$PORT" -c "${CLIENTS:-50}" -n "$ops" \
    -P "${PIPE:-16}" -r 1000000 -q "$@" | tr '\r' '\n' |
    sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' | tail -1)
  # Subscribers may still be reading: wait until Redis's CPU stops moving.
  local prev=-1 now
  while now=$(cpu_ticks) && [ "$now" != "$prev" ]; do
    prev=$now
    sleep 0.5
  done
  t1=$now
  awk -v n="$name" -v r="$rate" -v t="$((t1 - t0))" -v hz="$TICK" \
    -v ops="$ops" 'BEGIN { printf "| %s | %.0f | %.2f |\n", n, r,
      t / hz * 1e6 / ops }'
}

# subscribe K CHANNEL-COMMAND CHANNEL: K more subscribed connections.
subscribe() {
  for _ in $(seq "$1"); do
    taskset -c 1 "${CLI[@]}" "$2" "$3" >/dev/null &
    SUBS+=($!)
  done
  sleep 0.5
}

echo "redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'),"\
  "up to $N operations per row, 50 clients, 16 in flight each," \
  "Redis on CPU 0"
echo
echo "| operation | ops/s | Redis CPU us per op |"
echo "|---|---|---|"
PIPE=1 row "PING, 1 in flight per client" PING
row "PING" PING
subs=0
for k in 0 1 16 64; do
  # Fewer operations where each is delivered to many subscribers.
  OPS=$((N * 4 / (k + 4)))
  subscribe $((k - subs)) SUBSCRIBE 'luahub:room:{r}'
  subscribe $((k - subs)) SSUBSCRIBE 'luahub:sroom:{r}'
  subs=$k
  row "PUBLISH 200 B, $k subscribers" PUBLISH 'luahub:room:{r}' "$FRAME"
  row "SPUBLISH 200 B, $k subscribers" SPUBLISH 'luahub:sroom:{r}' "$FRAME"
  # One publisher, one command at a time: nothing shares a loop pass or a
  # write, as when a shard is far from busy.
  [ "$k" = 0 ] || [ "$k" = 16 ] && CLIENTS=1 PIPE=1 OPS=5000 \
    row "PUBLISH 200 B, $k subscribers, 1 client, 1 in flight" \
    PUBLISH 'luahub:room:{r}' "$FRAME"
  [ "$k" = 0 ] || [ "$k" = 16 ] || continue
  row "EVALSHA publish, $k subscribers" EVALSHA "$PSHA" 2 'luahub:{r}:info' \
    'luahub:{r}:members' alice '{"text":"hello, this is a chat message of about the size a chat page sends; padded"}' 7 1700000000000
  row "EVALSHA join, $k subscribers" EVALSHA "$JSHA" 1 'luahub:{r}:members' \
    'user:__rand_int__' r
done
PIPE=16 OPS=$N row "SSUBSCRIBE to a new channel" SSUBSCRIBE 'luahub:x:{__rand_int__}'

# Memory: used_memory before and after creating many of one thing.
used() { "${CLI[@]}" INFO memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p'; }
# per NAME COUNT LUA: bytes per item when LUA (a loop over i = 1..COUNT,
# run inside Redis) creates COUNT items.
per() {
  local m0 m1
  m0=$(used)
  "${CLI[@]}" EVAL "for i = 1, tonumber(ARGV[1]) do $3 end" 0 "$2" >/dev/null
  m1=$(used)
  echo "| $1 | $(((m1 - m0) / $2)) |"
}
# subscribe_many K: one more connection subscribes to K channels.
subscribe_many() {
  local m0 m1 fd
  m0=$(used)
  exec {fd}<>"/dev/tcp/127.0.0.1/$PORT"
  cat <&"$fd" >/dev/null &
  SUBS+=($!)
  for b in $(seq 0 $(($1 / 1000 - 1))); do
    printf 'SSUBSCRIBE'
    for i in $(seq 1 1000); do printf ' luahub:room:{m%d}' $((b * 1000 + i)); done
    printf '\r\n'
  done >&"$fd"
  sleep 2
  m1=$(used)
  echo $(((m1 - m0) / $1))
}
echo
echo "| Redis memory | bytes |"
echo "|---|---|"
per "a member of a large set (luahub:online)" 1000000 \
  "redis.call('SADD', 'luahub:online', 'user' .. i)"
per "a field of a large hash (luahub:presence)" 1000000 \
  "redis.call('HSET', 'luahub:presence', 'user' .. i, 'online')"
per "a user: rooms set of 2, conns hash, node users field" 200000 \
  "local u = 'luahub:user:user' .. i
   redis.call('SADD', u .. ':rooms', 'room' .. i % 1000, 'room' .. i % 777)
   redis.call('HSET', u .. ':conns', 'node-17', 1)
   redis.call('HSET', 'luahub:node:n' .. i % 100 .. ':users', 'user' .. i, 1)"
per "a room of 5: info hash and members set" 200000 \
  "local r = 'luahub:{room' .. i .. '}'
   redis.call('HSET', r .. ':info', 'seq', 12345, 'epoch', 7,
              'created_at', 1700000000000, 'message_count', 12345)
   for j = 1, 5 do redis.call('SADD', r .. ':members', 'user' .. i * 5 + j) end"
echo "| a channel's first subscriber (SSUBSCRIBE) | $(subscribe_many 100000) |"
echo "| each further subscriber of that channel | $(subscribe_many 100000) |"
