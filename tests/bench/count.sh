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
#   tests/bench/count.sh rooms [BIN]     instructions per message of the
#                                        server under the closed-loop rooms
#                                        load (100 rooms of 4); the longer
#                                        run's profile is left in
#                                        /tmp/luahub-rooms.callgrind for
#                                        callgrind_annotate
#   tests/bench/count.sh ping [BIN]      instructions per round trip of
#                                        the server under the ping load
#                                        (100 connections, closed loop);
#                                        the longer run's profile is left
#                                        in /tmp/luahub-ping.callgrind
#   tests/bench/count.sh syscalls SERVER every system call per message
#                                        (rooms 500 x 4) and per round
#                                        trip (ping, 100 connections) for
#                                        luahub, limit or uws; needs perf
#   tests/bench/count.sh connect [BIN]   instructions per handshake of the
#                                        server under the connect load (50
#                                        clients: connect, welcome, close);
#                                        the longer run's profile is left in
#                                        /tmp/luahub-connect.callgrind
#   tests/bench/count.sh sends SERVER    send() calls per message (rooms
#                                        500 x 4) and per delivery (100
#                                        msg/s to 1,000) for luahub, limit
#                                        or uws; needs perf
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

# server_run BIN SECONDS KEY OUT LOAD... -> "instructions N": the server
# under callgrind (profile in OUT) while luahub-bench runs LOAD for
# SECONDS; N is the field KEY of the load's JSON.
server_run() {
  local bin=$1 dur=$2 key=$3 cg=$4 pid
  shift 4
  valgrind --tool=callgrind --callgrind-out-file="$cg" "$bin" \
    --port "$PORT" --log-level error --send-queue 16m 2>/tmp/count.$$.log &
  pid=$!
  wait_port "$PORT" 600
  local out
  out=$("$BUILD/luahub-bench" --port "$PORT" --json "$@" --warmup 0.5 \
    --duration "$dur" 2>/dev/null)
  kill -INT "$pid"
  wait "$pid" || true
  echo "$(collected /tmp/count.$$.log) $(node -e \
    'console.log(JSON.parse(process.argv[1])[process.argv[2]])' "$out" "$key")"
  rm -f /tmp/count.$$.log
}

# per_unit NAME UNIT KEY OUT LOAD...: the difference of a 2 s and a 5 s run.
per_unit() {
  local bin=$1 unit=$2 key=$3 cg=$4 ia da ib db
  shift 4
  read -r ia da <<<"$(server_run "$bin" 2 "$key" /dev/null "$@")"
  read -r ib db <<<"$(server_run "$bin" 5 "$key" "$cg" "$@")"
  echo "$bin: $(((ib - ia) / (db - da))) instructions per $unit ($((db - da)) apart)"
}

fanout() {
  per_unit "${1:-$BUILD/luahub}" delivery delivered_total /dev/null \
    --mode fanout --conns 200 --rate 50 --window 100
}

rooms() {
  per_unit "${1:-$BUILD/luahub}" message published /tmp/luahub-rooms.callgrind \
    --mode rooms --rooms 100 --members 4
}

ping() {
  per_unit "${1:-$BUILD/luahub}" "round trip" round_trips /tmp/luahub-ping.callgrind \
    --mode ping --conns 100
}

connect() {
  per_unit "${1:-$BUILD/luahub}" handshake handshakes \
    /tmp/luahub-connect.callgrind --mode connect --conns 50
}

# traced SERVER PORT EVENTS LOAD-ARGS -> the load's JSON: the server
# started on PORT, perf counting EVENTS on it for 3 s inside the measured
# part of the load (after the connections and joins) into
# /tmp/count.$$.perf.
traced() {
  local name=$1 port=$2 events=$3 args=$4 pid out
  pid=$(start_server "$name" "$port")
  wait_port "$port"
  (sleep 2.5 && perf stat -x, -o /tmp/count.$$.perf -p "$pid" -e "$events" \
    -- sleep 3) &
  # shellcheck disable=SC2086
  out=$(taskset -c 1 "$BUILD/luahub-bench" --port "$port" --json $args \
    --warmup 2 --duration 4 2>/dev/null)
  wait $!
  stop_pid "$pid"
  echo "$out"
}

# sends SERVER: perf counts the server's write calls for 3 s inside the
# measured part of each load (after the connections and joins), against
# the load's own rate over that part.
sends() {
  local name=$1 port=$((PORT + 1)) out
  if [ "$name" = uws ]; then BUN=$(tests/bench/uws.sh "$BUILD"); fi
  for load in "rooms 500 x 4|messages_per_s|message|--mode rooms --rooms 500 --members 4" \
    "fanout 100 msg/s to 1000|deliveries_per_s|delivery|--mode fanout --conns 1000 --rate 100 --window 1000"; do
    IFS='|' read -r what key unit args <<<"$load"
    out=$(traced "$name" "$port" \
      syscalls:sys_enter_sendto,syscalls:sys_enter_sendmsg,syscalls:sys_enter_writev,syscalls:sys_enter_write \
      "$args")
    node -e 'const fs = require("fs"), [out, key, what, unit, name, file] = process.argv.slice(1);
      const calls = fs.readFileSync(file, "utf8").split("\n").filter((l) => /^\d/.test(l))
        .reduce((s, l) => s + Number(l.split(",")[0]), 0);
      const n = JSON.parse(out)[key] * 3;
      console.log(`${name}, ${what}: ${calls} write calls in 3 s, ${(calls / n).toFixed(2)} per ${unit}`)' \
      "$out" "$key" "$what" "$unit" "$name" /tmp/count.$$.perf
    rm -f /tmp/count.$$.perf
  done
}

# syscalls SERVER: as sends, every system call the server makes (perf's
# syscalls:sys_enter_* tracepoints), per unit of the load.
syscalls() {
  local name=$1 port=$((PORT + 2)) out
  if [ "$name" = uws ]; then BUN=$(tests/bench/uws.sh "$BUILD"); fi
  for load in "rooms 500 x 4|messages_per_s|message|--mode rooms --rooms 500 --members 4" \
    "ping, 100 connections|round_trips_per_s|round trip|--mode ping --conns 100"; do
    IFS='|' read -r what key unit args <<<"$load"
    out=$(traced "$name" "$port" 'syscalls:sys_enter_*' "$args")
    node -e 'const fs = require("fs"), [out, key, what, unit, name, file] = process.argv.slice(1);
      const n = JSON.parse(out)[key] * 3;
      const rows = fs.readFileSync(file, "utf8").split("\n").filter((l) => /^\d/.test(l))
        .map((l) => l.split(",")).filter((f) => Number(f[0]) > 0)
        .sort((a, b) => b[0] - a[0]);
      console.log(`${name}, ${what} (${(n / 3).toFixed(0)}/s), calls per ${unit}:`);
      for (const f of rows) console.log(`  ${f[2].replace("syscalls:sys_enter_", "")} ${(f[0] / n).toFixed(3)}`)' \
      "$out" "$key" "$what" "$unit" "$name" /tmp/count.$$.perf
    rm -f /tmp/count.$$.perf
  done
}

case "${1:-}" in
  handler) handler "${2:?which run: ping-lua, ping-c, chat-lua, chat-c}" ;;
  fanout) fanout "${2:-}" ;;
  rooms) rooms "${2:-}" ;;
  ping) ping "${2:-}" ;;
  connect) connect "${2:-}" ;;
  sends) sends "${2:?which server: luahub, limit, uws}" ;;
  syscalls) syscalls "${2:?which server: luahub, limit, uws}" ;;
  *) sed -n '2,37p' "$0" >&2; exit 2 ;;
esac
