#!/usr/bin/env bash
# Recovery (issue 12): the time from a client's join_room with since to
# its ack carrying the N messages it missed (N = 1,000, --history-size
# 1000), measured by tests/bench/recover.mjs in three setups:
#   one       one luahub, no Redis (history in the node's memory);
#   same      two nodes over a redis-server, the messages published and
#             recovered on one node (history read from Redis);
#   across    the same, published on node A and recovered on node B.
# The nodes and Redis on CPU 0, the client on CPU 1. Prints one line per
# setup: min, median, p90 and max of REPS recoveries (ms).
#   tests/bench/recover.sh [BUILD_DIR]
# BENCH_N=1000 (messages), BENCH_REPS=30 (recoveries per setup).
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
BUILD=${1:-build}
N=${BENCH_N:-1000}
REPS=${BENCH_REPS:-30}

command -v redis-server >/dev/null || {
  echo "bench: no redis-server (tools/install-deps --cluster)" >&2
  exit 1
}
[ -d tests/integration/node_modules/ws ] || {
  echo "bench: no ws (cd tests/integration && npm ci)" >&2
  exit 1
}

scratch_dir recover

start_node() { # start_node NAME PORT [luahub options...] -> pid
  local name=$1 port=$2
  shift 2
  taskset -c 0 "$BUILD/luahub" --port "$port" --log-level warn \
    --history-size "$N" --send-queue 16m "$@" >>"$DIR/$name.log" 2>&1 &
  echo $!
}

measure() { # measure SETUP PUB_PORT PORT
  printf '%-7s ' "$1"
  taskset -c 1 node tests/bench/recover.mjs --pub-port "$2" --port "$3" \
    --n "$N" --reps "$REPS" | node -e '
let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
  const r = JSON.parse(s), f = (x) => x.toFixed(2);
  console.log(`${r.n} messages (ack ${(r.ack_bytes / 1024).toFixed(0)} KiB), ${r.reps} recoveries: ` +
    `min ${f(r.min)} ms, median ${f(r.median)} ms, p90 ${f(r.p90)} ms, max ${f(r.max)} ms`);
});'
}

echo "bench: nodes and redis-server on CPU 0, the client on CPU 1" >&2
one=$(free_port 9751)
P=$(start_node one "$one")
PIDS=("$P")
wait_port "$one"
measure one "$one" "$one"
stop_pid "$P" 2

rport=$(free_port 16520)
taskset -c 0 redis-server --port "$rport" --bind 127.0.0.1 --dir "$DIR" \
  --save '' --appendonly no --loglevel warning >>"$DIR/redis.log" 2>&1 &
PIDS=("$!")
wait_port "$rport"
a=$(free_port 9761)
PIDS+=("$(start_node a "$a" --redis "redis://127.0.0.1:$rport" --node-id a)")
wait_port "$a"
b=$(free_port $((a + 1)))
PIDS+=("$(start_node b "$b" --redis "redis://127.0.0.1:$rport" --node-id b)")
wait_ready "$a"
wait_ready "$b"
measure same "$b" "$b"
measure across "$a" "$b"
for p in "${PIDS[@]}"; do stop_pid "$p" 2; done
PIDS=()
