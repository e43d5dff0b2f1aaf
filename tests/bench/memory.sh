#!/usr/bin/env bash
# Memory: the server's RSS (VmRSS in /proc/PID/status) through a day in
# its life, as a table. One luahub, fresh; then, one after the other:
#   idle at start      the process with no client;
#   N idle             MEM_IDLE connections (default 10,000) held open: the
#                      bytes per connection are (RSS - start) / N;
#   after they leave   the same, a second after they closed;
#   burst of 3,000     MEM_BURST clients (default 3,000) in one room and a
#                      publisher fanning out with MEM_WINDOW messages in
#                      flight (default 1,000, so every queue holds up to
#                      that many) for MEM_BURST_S seconds (default 2); read
#                      once all of it has arrived (all still connected),
#                      and its peak (VmHWM);
#   after they leave   a second after the 3,000 closed, and again
#                      MEM_SETTLE_S seconds later (default 5): what stays;
#   10,000 come and go MEM_CHURN connections (default 10,000) opened,
#                      held, closed; a second after, and MEM_SETTLE_S
#                      later.
# Memory figures hardly depend on what else the CPUs do, so this runs on a
# shared machine; about 40 seconds.
#   tests/bench/memory.sh [BUILD_DIR]
# MEM_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 (or libmimalloc)
# runs the server under another allocator, for comparison; MEM_ARGS adds
# server flags; MEM_JSON=FILE appends the figures as one JSON line.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
BUILD=${1:-build}
BENCH=$BUILD/luahub-bench
IDLE=${MEM_IDLE:-10000}
BURST=${MEM_BURST:-3000}
CHURN=${MEM_CHURN:-10000}
BURST_S=${MEM_BURST_S:-2}
SETTLE=${MEM_SETTLE_S:-5}
ulimit -n "$(ulimit -Hn)"
need=$((CHURN + 100))
if [ "$(ulimit -n)" -lt "$need" ]; then
  echo "memory: needs $need descriptors (ulimit -n is $(ulimit -n))" >&2
  exit 1
fi

port=$(free_port "${BENCH_PORT:-9681}")
log=$(mktemp /tmp/luahub-memory.XXXXXX)
# shellcheck disable=SC2086 # MEM_ARGS is a list of flags
env ${MEM_PRELOAD:+LD_PRELOAD=$MEM_PRELOAD} "$BUILD/luahub" --port "$port" \
  --log-level error ${MEM_ARGS:-} >"$log" 2>&1 &
pid=$!
trap 'stop_pid $pid; rm -f "$log"' EXIT
wait_ready "$port" 200

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"; }
hwm() { awk '/^VmHWM:/ {print $2}' "/proc/$pid/status"; }
anon() { awk '/^RssAnon:/ {print $2}' "/proc/$pid/status"; }
# Each row: RSS (from luahub-bench's reading where it has one) and, read
# here, RssAnon: the process's own memory, without the pages of shared
# libraries it touched (libcrypto's code for the handshakes, ~2 MB).
NAMES=() VALUES=() ANON=()
row() { NAMES+=("$1"); VALUES+=("$2"); ANON+=("${3:-$(anon)}"); }
bench() { "$BENCH" --port "$port" --pid "$pid" --json "$@"; }
field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }

sleep 0.5
start=$(rss)
row "idle at start" "$start"

out=$(bench --mode idle --conns "$IDLE" --warmup 0 --duration 0)
held=$(echo "$out" | field server_rss_kb)
row "$IDLE idle connections" "$held"
sleep 1
row "  after they leave" "$(rss)"

out=$(bench --mode fanout --conns "$BURST" --window "${MEM_WINDOW:-1000}" --warmup 0 \
  --duration "$BURST_S")
row "$BURST in one room, burst of $(echo "$out" | field published) messages" \
  "$(echo "$out" | field server_rss_kb)"
row "  peak (VmHWM)" "$(hwm)" "-"
sleep 1
row "  after they leave" "$(rss)"
sleep "$SETTLE"
row "  ${SETTLE} s later" "$(rss)"

bench --mode idle --conns "$CHURN" --warmup 0 --duration 0 >/dev/null
sleep 1
row "$CHURN connect and go" "$(rss)"
sleep "$SETTLE"
row "  ${SETTLE} s later" "$(rss)"

per_conn=$(awk -v a="$held" -v b="$start" -v n="$IDLE" \
  'BEGIN {printf "%.2f", (a - b) * 1024 / n / 1024}')
printf '\nluahub memory (%s%s)\n\n' "${MEM_PRELOAD:-glibc malloc}" \
  "${MEM_ARGS:+, $MEM_ARGS}"
printf '| %-52s | %9s | %9s |\n' "state" "RSS (MB)" "anon (MB)"
printf '|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..54})" \
  "$(printf -- '-%.0s' {1..11})" "$(printf -- '-%.0s' {1..11})"
mb() { awk -v k="$1" 'BEGIN {if (k == "-") print "-"; else printf "%.1f", k / 1024}'; }
for i in "${!NAMES[@]}"; do
  printf '| %-52s | %9s | %9s |\n' "${NAMES[$i]}" "$(mb "${VALUES[$i]}")" \
    "$(mb "${ANON[$i]}")"
done
printf '\nidle: %s KiB per connection (%d connections)\n' "$per_conn" "$IDLE"
if [ -n "${MEM_JSON:-}" ]; then
  {
    printf '{"allocator":"%s","idle_kib_per_conn":%s' \
      "${MEM_PRELOAD:-glibc}" "$per_conn"
    for i in "${!NAMES[@]}"; do
      read -r name <<<"${NAMES[$i]}" # without the leading spaces
      # An indented row is a step of the one above it.
      if [ "$name" = "${NAMES[$i]}" ]; then section=$name; else
        name="$section: $name"; fi
      printf ',"%s":%s' "$name" "${VALUES[$i]}"
    done
    printf '}\n'
  } >>"$MEM_JSON"
fi
