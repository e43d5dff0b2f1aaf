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
#   tests/bench/count.sh misses [BIN]    instructions, D1 and LL data misses
#                                        (callgrind's cache simulator, LL
#                                        taken as 1 MiB: what misses a
#                                        core's own caches) per delivery of
#                                        the server under a fan-out to
#                                        10,000 subscribers at 2 messages/s,
#                                        in a window of the steady state;
#                                        takes minutes (10,000 handshakes
#                                        under valgrind)
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

# misses [BIN]: the server under callgrind's cache simulator while 10,000
# subscribers get 2 messages/s; once they are all in and a few messages
# are out, the counters are zeroed, and dumped 8 s later, so that the
# profile holds the steady state only (the joins before, and the
# user_left frames of the teardown after, cost more than the window
# itself and vary from run to run). Per delivery: the enqueue (host_publish
# with what it calls, over the deliveries it queued) and the flush
# (transport__on_flush_check, over its transport__flush calls: one frame
# each at this rate). The profile is left in /tmp/luahub-misses.callgrind.
misses() {
  local bin=${1:-$BUILD/luahub} cg=/tmp/luahub-misses.callgrind pid bpid
  rm -f "$cg" "$cg".*
  taskset -c 0 valgrind --tool=callgrind --cache-sim=yes --LL=1048576,16,64 \
    --callgrind-out-file="$cg" "$bin" --port "$PORT" --log-level error \
    --send-queue 16m --handshake-timeout 600 --idle-timeout 900 2>/dev/null &
  pid=$!
  wait_port "$PORT" 600
  taskset -c 1 "$BUILD/luahub-bench" --port "$PORT" --json --mode fanout \
    --conns 10000 --rate 2 --window 1000 --ready-timeout 600 --paced \
    --warmup 0.5 --duration 600 >/dev/null 2>&1 &
  bpid=$!
  until [ "$(ss -tnH state established "( sport = :$PORT )" | wc -l)" -ge 10001 ]; do
    sleep 1
  done
  sleep 4
  callgrind_control -z "$pid" >/dev/null
  sleep 8
  callgrind_control -d "$pid" >/dev/null
  sleep 1
  kill "$bpid"
  kill -9 "$pid"
  wait "$pid" 2>/dev/null || true
  mv "$cg".1 "$cg"
  local ev=Ir,D1mr,D1mw,DLmr,DLmw inc tree n f
  inc=$(callgrind_annotate --inclusive=yes --auto=no --threshold=100 --show=$ev "$cg")
  tree=$(callgrind_annotate --tree=caller --auto=no --threshold=100 --show=Ir "$cg")
  # Calls of fanout_user from fanout_room, of transport__flush from the check.
  n=$(echo "$tree" | awk '/< .*fanout.c:fanout_room \(/ { gsub(/[^0-9]/, "", $(NF - 1)); print $(NF - 1); exit }')
  f=$(echo "$tree" | awk '/< .*transport__on_flush_check \(/ { gsub(/[^0-9]/, "", $(NF - 1)); print $(NF - 1); exit }')
  row() {
    awk -v n="$3" -v name="$1" '{ m = 0
      for (i = 1; i < NF; i++) if ($i ~ /^[0-9,]+$/ && $(i + 1) ~ /^\(/) { gsub(",", "", $i); v[m++] = $i }
      printf "  %-10s %7.1f instructions, D1 misses %5.2f read %5.2f write, LL misses %5.2f read %5.2f write\n",
        name, v[0] / n, v[1] / n, v[2] / n, v[3] / n, v[4] / n }' <<<"$2"
  }
  echo "$bin: per delivery ($n queued, $f written in 8 s)"
  row enqueue "$(grep -m1 'hub_host.c:host_publish ' <<<"$inc")" "$n"
  row flush "$(grep -m1 'wsconn.c:transport__on_flush_check ' <<<"$inc")" "$f"
  row server "$(grep 'PROGRAM TOTALS' <<<"$inc")" "$n"
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
  misses) misses "${2:-}" ;;
  rooms) rooms "${2:-}" ;;
  ping) ping "${2:-}" ;;
  connect) connect "${2:-}" ;;
  sends) sends "${2:?which server: luahub, limit, uws}" ;;
  syscalls) syscalls "${2:?which server: luahub, limit, uws}" ;;
  *) sed -n '2,46p' "$0" >&2; exit 2 ;;
esac
