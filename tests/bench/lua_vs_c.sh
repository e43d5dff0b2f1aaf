#!/usr/bin/env bash
# What running a message through Lua costs: the shipped ping and chat
# handlers against the same handlers written in C (tests/bench/natives.c).
#   1. in process (luahub-handler-bench): the hub path without sockets;
#   2. end to end: luahub and luahub-native (the same server with the C
#      handlers) under luahub-bench, server pinned to CPU 0 and the load
#      to CPU 1, alternated REPS times; the medians are compared.
#   tests/bench/lua_vs_c.sh [BUILD_DIR]     (REPS=3, BENCH_DURATION=4)
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
BUILD=${1:-build}
REPS=${REPS:-3}
DUR=${BENCH_DURATION:-4}
PORT=${BENCH_PORT:-9611}
ulimit -n "$(ulimit -Hn)"

echo "== in process (no sockets) =="
taskset -c 1 "$BUILD/luahub-handler-bench"
echo

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# The figure per second of server CPU: on a shared VM, time stolen from
# the server's core shows in wall-clock rates but not in its CPU time.
field() {
  node -e 'const o=JSON.parse(process.argv[1]);
    const v = o[process.argv[2]] ?? 0, cpu = o.server_cpu_s, s = o.seconds;
    console.log(cpu ? Math.round(v * s / cpu) : 0)' "$1" "$2"
}
# one BIN KEY ARGS... -> the figure
one() {
  local bin=$1 key=$2
  shift 2
  taskset -c 0 "$BUILD/$bin" --port "$PORT" --log-level error --send-queue 16m \
    >/dev/null 2>&1 &
  local pid=$!
  wait_port "$PORT"
  local out
  out=$(taskset -c 1 "$BUILD/luahub-bench" --port "$PORT" --pid "$pid" --json "$@" \
    2>/dev/null) || out='{}'
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  field "$out" "$key"
}

echo "== end to end, per second of server CPU (median of $REPS alternated runs of ${DUR}s) =="
printf '%-30s %12s %12s %7s\n' "workload" "Lua" "C" "Lua/C"
run() {
  local name=$1 key=$2
  shift 2
  local lua=() c=()
  for _ in $(seq "$REPS"); do
    lua+=("$(one luahub "$key" "$@")")
    c+=("$(one luahub-native "$key" "$@")")
  done
  local ml mc
  ml=$(printf '%s\n' "${lua[@]}" | median)
  mc=$(printf '%s\n' "${c[@]}" | median)
  printf '%-30s %12.0f %12.0f %7.2f   (Lua: %s; C: %s)\n' "$name" "$ml" "$mc" \
    "$(node -e 'console.log(+process.argv[2] ? process.argv[1] / process.argv[2] : 0)' "$ml" "$mc")" \
    "${lua[*]}" "${c[*]}"
}
run "ping, 100 conns (trips/s)" round_trips_per_s --mode ping --conns 100 --duration "$DUR"
run "chat 500 rooms x 4 (msgs/s)" messages_per_s --mode rooms --rooms 500 --members 4 --duration "$DUR"
