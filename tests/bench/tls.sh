#!/usr/bin/env bash
# Fan-out with TLS off and on: 1 publisher, 1 room of 1,000 subscribers,
# 1 KB chats at 50 messages/s, the server pinned to CPU 0 and the load
# tool to CPU 1. Prints server CPU per delivery (and per message) for
# each, medians of BENCH_REPS runs (default 3), alternated. With TLS on
# the server runs with --tls-cert/--tls-key (a self-signed RSA 2048
# certificate made here) and every client speaks TLS (luahub-bench --tls).
#   tests/bench/tls.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
BUILD=${1:-build}
DUR=${BENCH_DURATION:-5}
REPS=${BENCH_REPS:-3}
PORT=${BENCH_PORT:-9631}
# 50 messages/s: the load tool, decrypting 50,000 deliveries a second
# on its one core, stays below it (at 100 it is the bottleneck).
RATE=${BENCH_RATE:-50}
ulimit -n "$(ulimit -Hn)"
OUT=/tmp/luahub-bench-tls.jsonl
: >"$OUT"
CERTS=$(mktemp -d)
trap 'rm -rf "$CERTS"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1 \
  -keyout "$CERTS/key.pem" -out "$CERTS/cert.pem" 2>/dev/null

run() { # off|on
  local flags=() load=()
  [ "$1" = on ] && flags=(--tls-cert "$CERTS/cert.pem" --tls-key "$CERTS/key.pem") &&
    load=(--tls)
  taskset -c 0 "$BUILD/luahub" --port "$PORT" --log-level error \
    --send-queue 16m "${flags[@]}" >/tmp/luahub-bench-server.log 2>&1 &
  local pid=$!
  wait_port "$PORT"
  taskset -c 1 "$BUILD/luahub-bench" --port "$PORT" --mode fanout \
    --conns 1000 --rate "$RATE" --window 1000 --size 1000 --duration "$DUR" \
    --pid "$pid" --json "${load[@]}" | sed "s/^{/{\"tls\":\"$1\",/" >>"$OUT"
  stop_pid "$pid"
  PORT=$((PORT + 1))
}

for _ in $(seq "$REPS"); do run off; run on; done
node -e '
const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
const med = (a) => { a = [...a].sort((x, y) => x - y); return a[Math.floor(a.length / 2)]; };
console.log("| TLS | server CPU per delivery (us) | per message to 1,000 (us) | % of a core | deliveries/s | lost | p99 (ms) |");
console.log("|---|---|---|---|---|---|---|");
for (const c of ["off", "on"]) {
  const r = rows.filter((o) => o.tls === c);
  const cpu = med(r.map((o) => o.server_cpu_s));
  const per = med(r.map((o) => o.server_cpu_per_m_deliveries_s));
  const secs = med(r.map((o) => o.seconds));
  console.log(`| ${c} | ${per.toFixed(3)} | ${(per * 1000).toFixed(0)} | ${(100 * cpu / secs).toFixed(1)} | ${med(r.map((o) => o.deliveries_per_s)).toFixed(0)} | ${Math.max(...r.map((o) => o.lost))} | ${med(r.map((o) => o.latency_ms.p99)).toFixed(1)} |`);
}' "$OUT"
