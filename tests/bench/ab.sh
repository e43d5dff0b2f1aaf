#!/usr/bin/env bash
# ab.sh -- two luahub builds compared under one load, in alternated runs
# (A, B, A, B, ...), since this VM's speed drifts by 10-30% from one
# minute to the next and only runs side by side compare. The figures of
# docs/benchmarks.md's levers ("Fan-out in join order", "One frame, one
# send()", "Edge-triggered reads") come from it.
#
#   tests/bench/ab.sh DIR_A DIR_B [LOAD ARGS...]
#
# DIR_A, DIR_B: checkouts, each with its build/luahub, lua/ and scripts/;
# or the word uws or limit, for the yardsticks of run.sh (uWS through
# Bun, fetched by tests/bench/uws.sh; the limit server of this build).
# LOAD ARGS: luahub-bench's (default: --mode fanout --conns 10000 --rate 2
# --window 1000). Each run starts the server on CPU 0, the load on CPU 1,
# for BENCH_DURATION seconds (default 5), and prints server CPU (% of a
# core), CPU per delivery, message, round trip or handshake (us), p50 and
# p99 (ms), the rate, and the load tool's own CPU (near 100%, the load,
# not the server, sets the rate).
#
# AB_A_FLAGS, AB_B_FLAGS: more flags for A's or B's luahub (e.g.
# AB_B_FLAGS="--io-uring off" with the same checkout as A and B).
# AB_REPS=N pairs (default 5). AB_PERF=REGEX also records the server with
# perf (cpu-clock, the middle of the run) and prints the share of samples
# whose symbol matches REGEX, self time: e.g.
#   AB_PERF='sys_sendmsg|import_iovec|copy_msghdr|copy_iovec|_copy_from_user|libc_sendmsg|sys_sendto|__send$'
#   AB_PERF='sock_poll|ep_item_poll|tcp_poll|ep_send_events'
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
[ $# -ge 2 ] || { sed -n '7,21p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
A=$1 B=$2
shift 2
LOAD=("$@")
[ ${#LOAD[@]} -gt 0 ] || LOAD=(--mode fanout --conns 10000 --rate 2 --window 1000)
BENCH=${BUILD_DIR:-build}/luahub-bench
DUR=${BENCH_DURATION:-5}
BUILD=${BUILD_DIR:-build}
for d in "$A" "$B"; do
  case $d in
  uws) BUN=$(tests/bench/uws.sh "$BUILD") || { echo "ab: no Bun for uws" >&2; exit 2; } ;;
  limit) [ -x "$BUILD/limit-server" ] || { echo "ab: no $BUILD/limit-server (make build)" >&2; exit 2; } ;;
  *) [ -x "$d/build/luahub" ] || { echo "ab: no $d/build/luahub" >&2; exit 2; } ;;
  esac
done
[ -x "$BENCH" ] || { echo "ab: no $BENCH (make build)" >&2; exit 2; }
if [ -n "${AB_PERF:-}" ] && ! command -v perf >/dev/null; then
  echo "ab: AB_PERF needs perf (linux-perf)" >&2
  exit 2
fi
ulimit -n "$(ulimit -Hn)"
PORT=$(free_port "${BENCH_PORT:-9641}")

one() {
  local dir=$1 pid out perfpid= share=
  local -a flags
  read -r -a flags <<<"$2"
  case $dir in
  uws | limit) pid=$(start_server "$dir" "$PORT") ;;
  *)
    taskset -c 0 "$dir/build/luahub" --port "$PORT" --log-level error \
      --lua "$dir/lua" --scripts "$dir/scripts" --send-queue 16m "${flags[@]}" 2>/dev/null &
    pid=$!
    ;;
  esac
  wait_port "$PORT"
  if [ -n "${AB_PERF:-}" ]; then
    # From the middle of the run, for a third of it, once the connections
    # are set up.
    (sleep "$(awk -v d="$DUR" 'BEGIN { print d / 2 }')"; exec perf record -q -e cpu-clock \
      -p "$pid" -o "/tmp/ab.$$.perf" -- sleep "$(awk -v d="$DUR" 'BEGIN { print d / 3 }')") \
      >/dev/null 2>&1 &
    perfpid=$!
  fi
  out=$(taskset -c 1 "$BENCH" --port "$PORT" --pid "$pid" --json \
    --duration "$DUR" "${LOAD[@]}" 2>/dev/null) || out=
  [ -z "$perfpid" ] || wait "$perfpid" || true
  stop_pid "$pid"
  if [ -n "$perfpid" ] && [ -f "/tmp/ab.$$.perf" ]; then
    share=$(perf report -i "/tmp/ab.$$.perf" --no-children --sort sym \
      --stdio 2>/dev/null | awk -v re="$AB_PERF" \
      '/^ +[0-9]/ { sym = $NF; if (sym ~ re) s += $1 } END { printf "%.2f%%", s }')
    rm -f "/tmp/ab.$$.perf"
  fi
  [ -n "$out" ] || { echo "(no result)"; return; }
  node -e '
    const o = JSON.parse(process.argv[1]), share = process.argv[2];
    // What the load counts: a delivery (fanout), a message (rooms), a
    // round trip (ping), a handshake (connect).
    const per = { fanout: ["deliveries_per_s", "delivery"], rooms: ["messages_per_s", "message"],
      ping: ["round_trips_per_s", "round trip"], connect: ["handshakes_per_s", "handshake"] }[o.mode];
    const n = per ? o[per[0]] * o.seconds : 0;
    const f = [`cpu ${(100 * o.server_cpu_s / o.seconds).toFixed(1)}%`];
    if (n) f.push(`${(1e6 * o.server_cpu_s / n).toFixed(2)} us per ${per[1]}`);
    if (o.latency_ms) f.push(`p50 ${o.latency_ms.p50} p99 ${o.latency_ms.p99} ms`);
    if (n) f.push(`${Math.round(n / o.seconds)}/s, load ${Math.round(100 * o.client_cpu)}%`);
    if (share) f.push(`perf ${share}`);
    console.log(f.join(", "));' "$out" "$share"
}

echo "A: $A ${AB_A_FLAGS:-} B: $B ${AB_B_FLAGS:-} load: ${LOAD[*]}, ${DUR} s a run"
for r in $(seq "${AB_REPS:-5}"); do
  echo "pair $r  A: $(one "$A" "${AB_A_FLAGS:-}")"
  echo "        B: $(one "$B" "${AB_B_FLAGS:-}")"
done
