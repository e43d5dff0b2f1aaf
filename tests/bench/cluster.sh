#!/usr/bin/env bash
# Several nodes over one Redis (issue 11): one publisher and N subscribers
# in one room, in three setups:
#   1 node    one luahub, no Redis (what make bench measures);
#   same      two nodes over a redis-server, publisher and subscribers all
#             on node B (what Redis costs, nothing crossing nodes);
#   across    the same two nodes, the publisher on node A, the subscribers
#             on node B (luahub-bench --pub-port).
# Loads: 100 msg/s to 1,000 and to 100 subscribers, and a closed loop of 64
# in flight to 1,000. Figures: deliveries/s and latency from luahub-bench;
# node B's (the subscribers' node's) CPU per delivery as luahub-bench --pid
# reads it (/proc/PID/stat over its measured run); and over a window inside
# that run (from 1 s after the first publication, seen in the room's seq in
# Redis, for BENCH_DURATION - 0.5 s) each node's CPU from /proc/PID/stat and
# Redis's from INFO cpu (finer than /proc's 10 ms ticks), less what each
# spends idle (read over 2 s before the run), per delivery and, for Redis,
# per message published in the window (the seq's advance). Both nodes and
# Redis (fresh for each setup and load) are pinned to CPU 0, the load tool
# to CPU 1: on a 2-core machine the nodes and Redis share one core. Prints
# a table; the raw figures of every run are appended to
# /tmp/luahub-bench-cluster.jsonl. About 1.5 minutes a rep.
#   tests/bench/cluster.sh [BUILD_DIR]
# BENCH_DURATION=5 (seconds measured); BENCH_REPS=N runs everything N
# times, the setups alternated, and prints medians.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
BUILD=${1:-build}
BENCH=$BUILD/luahub-bench
DUR=${BENCH_DURATION:-5}
REPS=${BENCH_REPS:-1}
RAW=/tmp/luahub-bench-cluster.jsonl
ulimit -n "$(ulimit -Hn)"

if [ "$(nproc)" -lt 2 ]; then
  echo "bench: needs 2 CPUs (servers on one, load on the other)" >&2
  exit 1
fi
command -v redis-server >/dev/null || {
  echo "bench: no redis-server (.ci/install-deps --cluster)" >&2
  exit 1
}

scratch_dir cluster

SETUPS=(one same across)
# name | luahub-bench options
LOADS=(
  "fanout 100 msg/s -> 1000|--conns 1000 --rate 100 --window 1000"
  "fanout 100 msg/s -> 100|--conns 100 --rate 100 --window 1000"
  "fanout 1->1000, 64 in flight|--conns 1000 --window 64"
)

start_node() { # start_node NAME PORT [luahub options...] -> pid
  local name=$1 port=$2
  shift 2
  taskset -c 0 "$BUILD/luahub" --port "$port" --log-level warn \
    --send-queue 16m "$@" >>"$DIR/$name.log" 2>&1 &
  echo $!
}

# redis_sample PORT -> "US SEQ": the redis-server's own CPU time so far in
# microseconds (INFO cpu), and the seq of luahub-bench's room (bench-0).
redis_sample() {
  printf 'INFO cpu\nHGET luahub:{bench-0}:info seq\n' | redis-cli -p "$1" |
    tr -d '\r' | awk -F: '
      $1 == "used_cpu_sys" || $1 == "used_cpu_user" { t += $2 }
      /^[0-9]+$/ { seq = $1 }
      END { printf "%.0f %d\n", t * 1e6, seq }'
}

# settle PID...: until the processes have used no CPU for 300 ms (at most
# 5 s): what a run set going (closes, leaves, Redis's work) is over.
settle() {
  local last now quiet=0
  last=$(cpu_ticks "$@")
  for _ in $(seq 50); do
    sleep 0.1
    now=$(cpu_ticks "$@")
    if [ "$now" = "$last" ]; then
      quiet=$((quiet + 1))
      [ "$quiet" -ge 3 ] && return 0
    else
      quiet=0
    fi
    last=$now
  done
}

KILLED=0
stop_all() { # stop_all PID...: SIGTERM, SIGKILL after 2 s (counted)
  local p
  for p in "$@"; do
    STOP_KILLED=0
    stop_pid "$p" 2
    KILLED=$((KILLED + STOP_KILLED))
  done
  PIDS=()
}

# run SETUP LOAD REP: one setup under one load; appends one JSON line.
run() {
  local setup=$1 l=$2 rep=$3 name args a b rport='' rpid='' pub
  IFS='|' read -r name args <<<"${LOADS[$l]}"
  if [ "$setup" = one ]; then
    b=$(free_port 9651)
    NB=$(start_node one "$b")
    NA=$NB
    PIDS=("$NB")
    wait_port "$b"
    pub=$b
  else
    rport=$(free_port 16420)
    taskset -c 0 redis-server --port "$rport" --bind 127.0.0.1 --dir "$DIR" \
      --save '' --appendonly no --loglevel warning >>"$DIR/redis.log" 2>&1 &
    rpid=$!
    PIDS=("$rpid")
    wait_port "$rport"
    a=$(free_port 9651)
    NA=$(start_node a "$a" --redis "redis://127.0.0.1:$rport" --node-id a)
    PIDS+=("$NA")
    wait_port "$a"
    b=$(free_port $((a + 1)))
    NB=$(start_node b "$b" --redis "redis://127.0.0.1:$rport" --node-id b)
    PIDS+=("$NB")
    wait_ready "$a"
    wait_ready "$b"
    pub=$a
    [ "$setup" = same ] && pub=$b
  fi
  local procs=("$NA")
  [ "$NB" != "$NA" ] && procs+=("$NB")
  [ -n "$rpid" ] && procs+=("$rpid")

  # sample -> "ticks of A, ticks of B, Redis's CPU us, the room's seq, ns"
  # (Redis's figures 0 without Redis)
  sample() {
    local r='0 0'
    [ -n "$rport" ] && r=$(redis_sample "$rport")
    echo "$(cpu_ticks "$NA") $(cpu_ticks "$NB") $r $(date +%s%N)"
  }
  local i0 i1 w0='' w1='' long
  echo "== $setup, $name, rep $rep" >>"$DIR/bench.err"
  # What each process spends idle (Redis's cron, the nodes' heartbeats
  # and reaps), to take out of the window in proportion to its length.
  settle "${procs[@]}"
  i0=$(sample)
  sleep 2
  i1=$(sample)
  # shellcheck disable=SC2086
  taskset -c 1 "$BENCH" --port "$b" --pub-port "$pub" --pid "$NB" --json \
    $args --warmup 1 --duration "$DUR" >"$DIR/long.json" 2>>"$DIR/bench.err" &
  local bpid=$!
  if [ -n "$rport" ]; then
    # The window: from 1 s after the first publication (every subscriber
    # has joined by then) to 0.5 s before luahub-bench stops measuring.
    for _ in $(seq 1200); do
      [ "$(sample | cut -d' ' -f4)" -gt 0 ] && break
      kill -0 "$bpid" 2>/dev/null || break
      sleep 0.05
    done
    sleep 1
    w0=$(sample)
    sleep "$(awk -v d="$DUR" 'BEGIN { print d - 0.5 }')"
    w1=$(sample)
  fi
  wait "$bpid" || echo '{}' >"$DIR/long.json"
  long=$(cat "$DIR/long.json")
  stop_all "${procs[@]}"
  node -e '
const [setup, load, rep, long, i0, i1, w0, w1, tck] = process.argv.slice(1);
const n = (s) => (s ? s.split(" ").map(Number) : null);
console.log(JSON.stringify({ setup, load: +load, rep: +rep, clk_tck: +tck,
  idle: [n(i0), n(i1)], window: [n(w0), n(w1)], long: JSON.parse(long || "{}") }));' \
    "$setup" "$l" "$rep" "$long" "$i0" "$i1" "$w0" "$w1" "$(getconf CLK_TCK)" |
    tee -a "$RAW" >>"$DIR/results.jsonl"
}

echo "bench: nodes and redis-server on CPU 0, luahub-bench on CPU 1;" \
  "$REPS rep(s) of ${#LOADS[@]} loads x ${#SETUPS[@]} setups" >&2
for rep in $(seq "$REPS"); do
  for l in "${!LOADS[@]}"; do
    for setup in "${SETUPS[@]}"; do
      run "$setup" "$l" "$rep"
    done
  done
done

names=()
for l in "${!LOADS[@]}"; do names+=("${LOADS[$l]%%|*}"); done
node - "$DIR/results.jsonl" "${names[@]}" <<'EOF'
const [file, ...loads] = process.argv.slice(2);
const runs = require('fs').readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const med = (vs) => {
  vs = vs.filter(Number.isFinite).sort((a, b) => a - b);
  return vs.length ? vs[(vs.length - 1) >> 1] : NaN;
};
// Per delivery: each node's CPU over the window (less its idle rate)
// over the deliveries of the window (luahub-bench's rate); node B's also
// as luahub-bench --pid reads it over its whole measured run. Per
// message: Redis's CPU over the window (less its idle rate) over the
// publications of the window (the room's seq).
const figures = (r) => {
  const { long: g, idle: [i0, i1], window: [w0, w1], clk_tck: tck } = r;
  const one = r.setup === 'one';
  const us = (i, x) => (i < 2 ? (1e6 * x) / tck : x);
  const rate = (i, a, b) => us(i, b[i] - a[i]) / ((b[4] - a[4]) / 1e9); // us/s
  let a = NaN, b = NaN, redis = NaN, all = NaN;
  if (!one && w0 && w1) {
    const secs = (w1[4] - w0[4]) / 1e9;
    const net = (i) => (rate(i, w0, w1) - rate(i, i0, i1)) * secs;
    const deliveries = g.deliveries_per_s * secs;
    a = net(0) / deliveries;
    b = net(1) / deliveries;
    redis = net(2) / (w1[3] - w0[3]);
    all = (net(0) + net(1) + net(2)) / deliveries;
  }
  const pid = g.server_cpu_per_m_deliveries_s; // s per M = us per delivery
  return {
    deliveries_per_s: g.deliveries_per_s,
    p50: g.latency_ms?.p50,
    p99: g.latency_ms?.p99,
    pid,
    b, a, all: one ? pid : all, redis,
    trouble: (g.gaps + g.reorders + g.lost + g.errors) +
      (g.delivered_total === g.expected_deliveries ? 0 : 1),
  };
};
const setups = ['one', 'same', 'across'];
const cell = (load, setup, key) => med(runs.filter((r) => r.load === load && r.setup === setup)
  .map((r) => figures(r)[key]));
const fmt = (v) => (Number.isFinite(v) ? String(+v.toPrecision(3)) : '-');
const ROWS = [
  ['deliveries_per_s', 'deliveries/s', 'deliveries/s'],
  ['p50', '  p50 latency', 'ms'],
  ['p99', '  p99 latency', 'ms'],
  ['pid', '  node B CPU per delivery', 'us'],
  ['b', '    in the window', 'us'],
  ['a', '  node A CPU per delivery', 'us'],
  ['all', '  nodes+Redis per delivery', 'us'],
  ['redis', '  Redis CPU per message', 'us'],
];
console.log(`\n${'workload'.padEnd(34)} ${'1 node'.padStart(9)} ${'same'.padStart(9)} ${'across'.padStart(9)} ${'across-1'.padStart(9)}  unit`);
loads.forEach((name, l) => {
  console.log(name);
  for (const [key, label, unit] of ROWS) {
    const v = setups.map((s) => cell(l, s, key));
    const diff = key === 'p99' || key === 'p50' ? fmt(v[2] - v[0]) : '';
    console.log(`${label.padEnd(34)} ${v.map((x) => fmt(x).padStart(9)).join(' ')} ${diff.padStart(9)}  ${unit}`);
  }
});
const bad = runs.filter((r) => figures(r).trouble !== 0);
console.log(`\nruns with gaps, reorders, lost connections, errors or missing deliveries: ${bad.length} of ${runs.length}`);
for (const { setup, load, rep, long: g } of bad) {
  console.log(`  ${setup}, ${loads[load]}, rep ${rep}: delivered ${g.delivered_total} of ${g.expected_deliveries}` +
    ` (3 s after the last publication), gaps ${g.gaps}, reorders ${g.reorders}, lost ${g.lost}, errors ${g.errors}`);
}
EOF
echo
echo "setups: 1 node = one luahub, no Redis; same = two nodes over Redis, publisher and"
echo "subscribers on node B; across = publisher on node A, subscribers on node B."
echo "node B is the subscribers' node (the only node of '1 node'): its CPU per delivery"
echo "over luahub-bench's measured run (--pid), and in the window; the rest in the window,"
echo "less each process's idle rate."
echo "pinning: both nodes and redis-server on CPU 0, luahub-bench on CPU 1."
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(redis-server --version | cut -d' ' -f1-3)"
[ "$REPS" -gt 1 ] && echo "Each figure is the median of $REPS runs."
if grep -v '^== ' "$DIR/bench.err" | grep -q .; then
  echo "luahub-bench said:"
  grep -v '^== ' "$DIR/bench.err" | sort | uniq -c | sort -rn | head -10
fi
# (less the warning of every start without an auth secret)
logged() { cat "$DIR"/{one,a,b}.log 2>/dev/null | grep -v 'no auth secret' | cut -c26-; }
if logged | grep -q .; then
  echo "the nodes logged (warnings and errors):"
  logged | sort | uniq -c | sort -rn | head -10
fi
[ "$KILLED" -gt 0 ] &&
  echo "note: $KILLED server process(es) did not exit within 2 s of SIGTERM and were killed"
exit 0
