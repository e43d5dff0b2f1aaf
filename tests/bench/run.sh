#!/usr/bin/env bash
# The standard benchmark set: each workload against luahub, the limit
# server and, where Bun can be had from npm, the uWebSockets yardstick
# (tests/bench/uws_server.js), the server pinned to CPU 0 and the load tool
# to CPU 1. Prints a table; the raw JSON of every run is appended to
# /tmp/luahub-bench-results.jsonl. About 4.5 minutes.
#   tests/bench/run.sh [BUILD_DIR]
# BENCH_DURATION=5 (seconds measured); BENCH_UWS=0 leaves uWS out;
# BENCH_REPS=N runs each workload N times, the servers alternated, and
# prints medians (this VM drifts: use 3 or more to compare servers);
# BENCH_RUNS="2 1" runs only those workloads (numbered from 0 as in RUNS);
# BENCH_BASELINE=DIR adds the luahub of another checkout as a column.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
BUILD=${1:-build}
BENCH=$BUILD/luahub-bench
DUR=${BENCH_DURATION:-5}
REPS=${BENCH_REPS:-1}
BASE=${BENCH_PORT:-9601}
ulimit -n "$(ulimit -Hn)"

if [ "$(nproc)" -lt 2 ]; then
  echo "bench: needs 2 CPUs (server on one, load on the other)" >&2
  exit 1
fi

SERVERS=(luahub limit)
BUN=
if [ "${BENCH_UWS:-1}" != 0 ] && BUN=$(tests/bench/uws.sh "$BUILD"); then
  SERVERS+=(uws)
else
  echo "bench: no uWebSockets column (Bun could not be had; BENCH_UWS=0 skips it)" >&2
fi

# BENCH_BASELINE=DIR adds a column: the luahub of another checkout (built
# in DIR/build), alternated with the others, to measure a change.
if [ -n "${BENCH_BASELINE:-}" ]; then
  [ -x "$BENCH_BASELINE/build/luahub" ] || {
    echo "bench: no $BENCH_BASELINE/build/luahub" >&2
    exit 1
  }
  SERVERS+=(before)
fi

# Each server has its own port: a port just closed may linger in TIME_WAIT.
port_of() { case $1 in luahub) echo "$BASE" ;; limit) echo $((BASE + 1)) ;;
  uws) echo $((BASE + 2)) ;; before) echo $((BASE + 3)) ;; esac; }
# Each run is one luahub-bench invocation per server; rows read figures
# out of a run's JSON.
RUNS=(
  "--mode fanout --conns 1000 --window 64 --duration $DUR"
  "--mode fanout --conns 1000 --rate 100 --window 1000 --duration $DUR"
  "--mode rooms --rooms 500 --members 4 --duration $DUR"
  "--mode ping --conns 100 --duration $DUR"
  "--mode connect --conns 50 --duration $DUR"
  "--mode idle --conns 15000 --warmup 0 --duration 0"
  "--mode fanout --conns 10000 --rate 2 --window 1000 --duration $DUR"
  "--mode fanout --conns 10000 --rate 20 --window 1000 --duration $DUR"
)
# name | run | JavaScript expression over the run's JSON object o | unit
ROWS=(
  "fanout 1->1000, 64 in flight|0|o.deliveries_per_s|deliveries/s"
  "  server CPU per M deliveries|0|o.server_cpu_per_m_deliveries_s|s"
  "fanout 100 msg/s -> 1000, CPU|1|100*o.server_cpu_s/o.seconds|% of a core"
  "  p99 latency|1|o.latency_ms.p99|ms"
  "rooms 500 x 4, closed loop|2|o.messages_per_s|messages/s"
  "  server CPU per message|2|1e6*o.server_cpu_s/(o.messages_per_s*o.seconds)|us"
  "ping, 100 connections|3|o.round_trips_per_s|round trips/s"
  "connect, 50 at a time|4|o.handshakes_per_s|handshakes/s"
  "idle, 15000 connections|5|o.rss_per_conn_kb|KiB RSS/conn"
  "fanout 2 msg/s -> 10000, p50|6|o.latency_ms.p50|ms"
  "  p99 latency|6|o.latency_ms.p99|ms"
  "  CPU|6|100*o.server_cpu_s/o.seconds|% of a core"
  "fanout 20 msg/s -> 10000, p50|7|o.latency_ms.p50|ms"
  "  p99 latency|7|o.latency_ms.p99|ms"
  "  CPU|7|100*o.server_cpu_s/o.seconds|% of a core"
)

declare -A OUT # OUT[server,run] = one JSON object per line, one per rep
for r in ${BENCH_RUNS:-"${!RUNS[@]}"}; do
  for _ in $(seq "$REPS"); do
    for s in "${SERVERS[@]}"; do
      port=$(port_of "$s")
      pid=$(start_server "$s" "$port")
      json='{}'
      if wait_port "$port"; then
        # shellcheck disable=SC2086
        json=$(taskset -c 1 "$BENCH" --port "$port" --pid "$pid" --json \
          ${RUNS[$r]}) || json='{}'
      fi
      stop_pid "$pid"
      OUT[$s,$r]+="$json"$'\n'
      echo "{\"server\":\"$s\",\"run\":$json}" >>/tmp/luahub-bench-results.jsonl
    done
  done
done

figure() { # figure JSON-LINES EXPR -> the median over the lines, or ?
  node -e 'const vs = process.argv[1].split("\n").filter(Boolean).map(l => {
      try { const o = JSON.parse(l); return eval(process.argv[2]) } catch { return NaN } })
      .filter(Number.isFinite).sort((a, b) => a - b);
    console.log(vs.length ? +vs[(vs.length - 1) >> 1].toPrecision(4) : "?")' "$1" "$2"
}
ratio() { node -e 'const a = +process.argv[1], b = +process.argv[2];
  console.log(a && b ? (a / b).toFixed(2) : "-")' "$1" "$2"; }

bl=
[ -n "${BENCH_BASELINE:-}" ] && bl=1
printf '\n%-32s %11s %11s %11s %7s %7s' "workload" "luahub" "limit" "uWS" \
  "/limit" "/uWS"
[ -n "$bl" ] && printf ' %11s %7s' "before" "/before"
printf '  %s\n' "unit"
for row in "${ROWS[@]}"; do
  IFS='|' read -r name r expr unit <<<"$row"
  [ -n "${OUT[luahub,$r]+set}" ] || continue
  vl=$(figure "${OUT[luahub,$r]}" "$expr")
  vx=$(figure "${OUT[limit,$r]}" "$expr")
  vu=-
  [ -n "$BUN" ] && vu=$(figure "${OUT[uws,$r]}" "$expr")
  printf '%-32s %11s %11s %11s %7s %7s' "$name" "$vl" "$vx" "$vu" \
    "$(ratio "$vl" "$vx")" "$(ratio "$vl" "$vu")"
  if [ -n "$bl" ]; then
    vb=$(figure "${OUT[before,$r]}" "$expr")
    printf ' %11s %7s' "$vb" "$(ratio "$vl" "$vb")"
  fi
  printf '  %s\n' "$unit"
done
echo
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
[ -n "$BUN" ] && echo "uWS: Bun $("$BUN" --version) (uWebSockets' pub/sub) running tests/bench/uws_server.js"
[ -n "$bl" ] && echo "before: $BENCH_BASELINE ($(git -C "$BENCH_BASELINE" log -1 --format='%h %s' 2>/dev/null | cut -c1-60))"
[ "$REPS" -gt 1 ] && echo "Each figure is the median of $REPS alternated runs."
echo "Lower is better for CPU, latency and RSS rows; higher for the rest."
