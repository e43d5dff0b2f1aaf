#!/usr/bin/env bash
# The standard benchmark set: each workload against luahub and against the
# limit server, the server pinned to CPU 0 and the load tool to CPU 1.
# Prints a table (and, with --json FILE, the raw figures). About 3 minutes.
#   tests/bench/run.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
BUILD=${1:-build}
BENCH=$BUILD/luahub-bench
DUR=${BENCH_DURATION:-5}
PORT_L=${BENCH_PORT:-9601}
PORT_X=$((PORT_L + 1))
ulimit -n "$(ulimit -Hn)"

cpus=$(nproc)
if [ "$cpus" -lt 2 ]; then
  echo "bench: needs 2 CPUs (server on one, load on the other)" >&2
  exit 1
fi

start_luahub() {
  taskset -c 0 "$BUILD/luahub" --port "$PORT_L" --log-level error \
    --send-queue 16m >/tmp/luahub-bench-server.log 2>&1 &
  echo $!
}
start_limit() {
  taskset -c 0 "$BUILD/limit-server" "$PORT_X" >/dev/null 2>&1 &
  echo $!
}
# run PORT PID ARGS... -> JSON line
run() {
  local port=$1 pid=$2
  shift 2
  taskset -c 1 "$BENCH" --port "$port" --pid "$pid" --json "$@"
}
field() { # field JSON KEY
  node -e 'const o=JSON.parse(process.argv[1]); const k=process.argv[2].split("."); let v=o; for (const p of k) v=v[p]; console.log(v)' "$1" "$2"
}

declare -a NAMES ARGS KEYS UNITS
add() { NAMES+=("$1"); ARGS+=("$2"); KEYS+=("$3"); UNITS+=("$4"); }
add "fanout 1->1000, 64 in flight"  "--mode fanout --conns 1000 --window 64 --duration $DUR" deliveries_per_s "deliveries/s"
add "fanout 1->1000 (CPU/M deliv.)"  "--mode fanout --conns 1000 --window 64 --duration $DUR" server_cpu_per_m_deliveries_s "server CPU s per M deliveries"
add "fanout 100 msg/s -> 1000 (CPU)" "--mode fanout --conns 1000 --rate 100 --window 1000 --duration $DUR" server_cpu_s "server CPU s"
add "fanout 100 msg/s -> 1000 (p99)" "--mode fanout --conns 1000 --rate 100 --window 1000 --duration $DUR" latency_ms.p99 "ms"
add "rooms 500 x 4, closed loop"     "--mode rooms --rooms 500 --members 4 --duration $DUR" messages_per_s "messages/s"
add "ping, 100 connections"          "--mode ping --conns 100 --duration $DUR" round_trips_per_s "round trips/s"
add "connect (50 at a time)"         "--mode connect --conns 50 --duration $DUR" handshakes_per_s "handshakes/s"
add "idle 15000 connections"         "--mode idle --conns 15000 --warmup 0 --duration 0" rss_per_conn_kb "KiB RSS/conn"

results=()
for i in "${!NAMES[@]}"; do
  L=$(start_luahub); wait_port "$PORT_L"
  # shellcheck disable=SC2086
  jl=$(run "$PORT_L" "$L" ${ARGS[$i]}) || jl='{}'
  kill "$L"; wait "$L" 2>/dev/null || true
  X=$(start_limit); wait_port "$PORT_X"
  # shellcheck disable=SC2086
  jx=$(run "$PORT_X" "$X" ${ARGS[$i]}) || jx='{}'
  kill "$X"; wait "$X" 2>/dev/null || true
  vl=$(field "$jl" "${KEYS[$i]}" 2>/dev/null || echo "?")
  vx=$(field "$jx" "${KEYS[$i]}" 2>/dev/null || echo "?")
  results+=("$i|$vl|$vx")
  echo "$jl" >> /tmp/luahub-bench-results.jsonl
done

printf '\n%-34s %14s %14s %7s  %s\n' "workload" "luahub" "limit" "ratio" "unit"
for r in "${results[@]}"; do
  IFS='|' read -r i vl vx <<<"$r"
  ratio=$(node -e 'const a=+process.argv[1], b=+process.argv[2]; console.log(b ? (a/b).toFixed(2) : "-")' "$vl" "$vx")
  printf '%-34s %14s %14s %7s  %s\n' "${NAMES[$i]}" "$vl" "$vx" "$ratio" "${UNITS[$i]}"
done
echo
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
