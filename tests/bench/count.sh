#!/usr/bin/env bash
# Instruction counts (valgrind's callgrind), the measure docs/benchmarks.md
# uses for changes, since this VM's wall-clock rates drift too much to
# show a change under ~30%. Each figure is the difference of two runs of
# different length, divided by the work in between, so start-up cancels.
#
#   tests/bench/count.sh handler RUN     instructions per message through
#                                        luahub-handler-bench --only RUN
#                                        (ping-lua, ping-c, chat-lua, chat-c)
#   tests/bench/count.sh fanout [BIN]    instructions per delivery of the
#                                        server (default build/luahub) under
#                                        a fixed-rate fan-out: 200
#                                        subscribers, 50 messages/s
# BUILD_DIR picks the build (default build). Needs valgrind.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
BUILD=${BUILD_DIR:-build}
PORT=${BENCH_PORT:-9631}

collected() { sed -n 's/.*Collected : //p' "$1"; }

handler() {
  local run=$1 a b
  valgrind --tool=callgrind --callgrind-out-file=/dev/null \
    "$BUILD/luahub-handler-bench" --messages 10000 --only "$run" >/dev/null 2>/tmp/count.$$.a
  valgrind --tool=callgrind --callgrind-out-file=/dev/null \
    "$BUILD/luahub-handler-bench" --messages 30000 --only "$run" >/dev/null 2>/tmp/count.$$.b
  a=$(collected /tmp/count.$$.a)
  b=$(collected /tmp/count.$$.b)
  rm -f /tmp/count.$$.*
  # Each run adds a tenth for warm-up: 33,000 - 11,000 messages apart.
  echo "$run: $(((b - a) / 22000)) instructions per message"
}

# server_run BIN SECONDS -> "instructions deliveries"
server_run() {
  local bin=$1 dur=$2 pid
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" \
    --port "$PORT" --log-level error --send-queue 16m 2>/tmp/count.$$.log &
  pid=$!
  wait_port "$PORT" 600
  local out
  out=$("$BUILD/luahub-bench" --port "$PORT" --json --mode fanout --conns 200 \
    --rate 50 --window 100 --warmup 0.5 --duration "$dur" 2>/dev/null)
  kill -INT "$pid"
  wait "$pid" || true
  echo "$(collected /tmp/count.$$.log) $(node -e \
    'console.log(JSON.parse(process.argv[1]).delivered_total)' "$out")"
  rm -f /tmp/count.$$.log
}

fanout() {
  local bin=${1:-$BUILD/luahub} ia da ib db
  read -r ia da <<<"$(server_run "$bin" 2)"
  read -r ib db <<<"$(server_run "$bin" 5)"
  echo "$bin: $(((ib - ia) / (db - da))) instructions per delivery ($((db - da)) deliveries apart)"
}

case "${1:-}" in
  handler) handler "${2:?which run: ping-lua, ping-c, chat-lua, chat-c}" ;;
  fanout) fanout "${2:-}" ;;
  *) sed -n '2,15p' "$0" >&2; exit 2 ;;
esac
