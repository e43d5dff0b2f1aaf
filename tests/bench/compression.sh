#!/usr/bin/env bash
# Fan-out with permessage-deflate off and on: 1 publisher, 1 room of 1,000
# subscribers, 1 KB chats at 100 messages/s, the server pinned to CPU 0
# and the load tool to CPU 1. Prints server CPU per delivery (and per
# message) for each, medians of BENCH_REPS runs (default 3), alternated.
# With compression on, every subscriber offers permessage-deflate and
# inflates what it gets (luahub-bench --deflate).
#   tests/bench/compression.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
BUILD=${1:-build}
DUR=${BENCH_DURATION:-5}
REPS=${BENCH_REPS:-3}
PORT=${BENCH_PORT:-9611}
ulimit -n "$(ulimit -Hn)"
OUT=/tmp/luahub-bench-compression.jsonl
: >"$OUT"

run() { # off|on
  local flags=() load=()
  [ "$1" = on ] && flags=(--compression) && load=(--deflate)
  taskset -c 0 "$BUILD/luahub" --port "$PORT" --log-level error \
    --send-queue 16m "${flags[@]}" >/tmp/luahub-bench-server.log 2>&1 &
  local pid=$!
  wait_port "$PORT"
  taskset -c 1 "$BUILD/luahub-bench" --port "$PORT" --mode fanout \
    --conns 1000 --rate 100 --window 1000 --size 1000 --duration "$DUR" \
    --pid "$pid" --json "${load[@]}" | sed "s/^{/{\"compression\":\"$1\",/" >>"$OUT"
  stop_pid "$pid"
  PORT=$((PORT + 1))
}

for _ in $(seq "$REPS"); do run off; run on; done
node -e '
const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
const med = (a) => { a = [...a].sort((x, y) => x - y); return a[Math.floor(a.length / 2)]; };
console.log("| compression | server CPU per delivery (us) | per message to 1,000 (us) | % of a core | deliveries/s | compressed deliveries | p99 (ms) |");
console.log("|---|---|---|---|---|---|---|");
for (const c of ["off", "on"]) {
  const r = rows.filter((o) => o.compression === c);
  const cpu = med(r.map((o) => o.server_cpu_s));
  const per = med(r.map((o) => o.server_cpu_per_m_deliveries_s));
  const secs = med(r.map((o) => o.seconds));
  const inf = med(r.map((o) => o.inflated));
  console.log(`| ${c} | ${per.toFixed(3)} | ${(per * 1000).toFixed(0)} | ${(100 * cpu / secs).toFixed(1)} | ${med(r.map((o) => o.deliveries_per_s)).toFixed(0)} | ${inf} | ${med(r.map((o) => o.latency_ms.p99)).toFixed(1)} |`);
}' "$OUT"
