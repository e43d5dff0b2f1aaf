# lib.sh -- shell helpers shared by the benchmark scripts (sourced).

# wait_port PORT [TRIES]: until something accepts on 127.0.0.1:PORT
# (TRIES x 50 ms, default 100), or fail.
wait_port() {
  for _ in $(seq "${2:-100}"); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "bench: nothing listening on $1" >&2
  return 1
}

# stop_pid PID [SECONDS]: SIGTERM, then wait up to SECONDS (default 10)
# for it to be gone (it need not be a child of this shell), then SIGKILL
# (and STOP_KILLED=1).
stop_pid() {
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq $((${2:-10} * 20))); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.05
  done
  kill -9 "$1" 2>/dev/null || true
  # shellcheck disable=SC2034 # read by the caller
  STOP_KILLED=1
}

# free_port FROM: the first port from FROM on which nothing accepts on
# 127.0.0.1.
free_port() {
  local p=$1
  while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
  echo "$p"
}

# wait_ready PORT [TRIES]: until luahub on 127.0.0.1:PORT answers GET
# /readyz with 200 (TRIES x 50 ms, default 100), or fail.
wait_ready() {
  for _ in $(seq "${2:-100}"); do
    if { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null; then
      printf 'GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
      local status
      read -r _ status _ <&3 || status=
      exec 3<&-
      [ "$status" = 200 ] && return 0
    fi
    sleep 0.05
  done
  echo "bench: 127.0.0.1:$1 not ready" >&2
  return 1
}

# cpu_ticks PID...: utime + stime of the processes, in clock ticks
# (/proc/PID/stat fields 14 and 15, as luahub-bench --pid reads them).
cpu_ticks() {
  local t=0 p
  for p in "$@"; do
    t=$((t + $(awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$p/stat")))
  done
  echo "$t"
}

# start_server NAME PORT -> pid: luahub, limit or uws (needs $BUN, from
# tests/bench/uws.sh), pinned to CPU 0, from $BUILD; or before: the luahub
# of another checkout ($BENCH_BASELINE, built in its build/), with its own
# Lua runtime and scripts.
start_server() {
  case $1 in
  luahub) taskset -c 0 "$BUILD/luahub" --port "$2" --log-level error \
    --send-queue 16m >/tmp/luahub-bench-server.log 2>&1 & ;;
  before) taskset -c 0 "$BENCH_BASELINE/build/luahub" --port "$2" \
    --log-level error --send-queue 16m --lua "$BENCH_BASELINE/lua" \
    --scripts "$BENCH_BASELINE/scripts" \
    --static "$BENCH_BASELINE/examples/chat" >/dev/null 2>&1 & ;;
  limit) taskset -c 0 "$BUILD/limit-server" "$2" >/dev/null 2>&1 & ;;
  uws) taskset -c 0 "$BUN" tests/bench/uws_server.js "$2" >/dev/null 2>&1 & ;;
  *) echo "bench: no server named $1" >&2; return 1 ;;
  esac
  echo $!
}

# fanout_onoff NAME RATE PORT OUT: the fan-out of compression.sh and
# tls.sh, with a feature off and on: 1 publisher, 1 room of 1,000
# subscribers, 1 KB chats at RATE messages/s, luahub pinned to CPU 0
# (with "${ON_SERVER[@]}" when on) and luahub-bench to CPU 1 (with
# "${ON_LOAD[@]}" when on), $BENCH_REPS runs of each (default 3),
# alternated, $BENCH_DURATION seconds (default 5); rows appended to OUT
# as JSON with "NAME":"off"|"on", then a table of the medians: server CPU
# per delivery and per message, and the rest.
fanout_onoff() {
  local name=$1 rate=$2 port=$3 out=$4 state
  : >"$out"
  for _ in $(seq "${BENCH_REPS:-3}"); do
    for state in off on; do
      local flags=() load=()
      [ "$state" = on ] && flags=("${ON_SERVER[@]}") && load=("${ON_LOAD[@]}")
      taskset -c 0 "$BUILD/luahub" --port "$port" --log-level error \
        --send-queue 16m "${flags[@]}" >/tmp/luahub-bench-server.log 2>&1 &
      local pid=$!
      wait_port "$port"
      taskset -c 1 "$BUILD/luahub-bench" --port "$port" --mode fanout \
        --conns 1000 --rate "$rate" --window 1000 --size 1000 \
        --duration "${BENCH_DURATION:-5}" --pid "$pid" --json "${load[@]}" |
        sed "s/^{/{\"$name\":\"$state\",/" >>"$out"
      stop_pid "$pid"
      port=$((port + 1))
    done
  done
  node -e '
const [file, name] = process.argv.slice(1);
const rows = require("fs").readFileSync(file, "utf8").trim().split("\n").map(JSON.parse);
const med = (a) => { a = [...a].sort((x, y) => x - y); return a[Math.floor(a.length / 2)]; };
console.log(`| ${name} | server CPU per delivery (us) | per message to 1,000 (us) | % of a core | deliveries/s | lost | compressed deliveries | p99 (ms) |`);
console.log("|---|---|---|---|---|---|---|---|");
for (const c of ["off", "on"]) {
  const r = rows.filter((o) => o[name] === c);
  const cpu = med(r.map((o) => o.server_cpu_s));
  const per = med(r.map((o) => o.server_cpu_per_m_deliveries_s));
  const secs = med(r.map((o) => o.seconds));
  console.log(`| ${c} | ${per.toFixed(3)} | ${(per * 1000).toFixed(0)} | ${(100 * cpu / secs).toFixed(1)} | ${med(r.map((o) => o.deliveries_per_s)).toFixed(0)} | ${Math.max(...r.map((o) => o.lost))} | ${med(r.map((o) => o.inflated))} | ${med(r.map((o) => o.latency_ms.p99)).toFixed(1)} |`);
}' "$out" "$name"
}

# scratch_dir NAME: DIR, a fresh temp directory, and PIDS, an empty list;
# at exit every process in PIDS is killed (-9) and DIR removed.
scratch_dir() {
  DIR=$(mktemp -d "${TMPDIR:-/tmp}/luahub-bench-$1-XXXXXX")
  PIDS=()
  trap 'for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$DIR"' EXIT
  trap 'exit 130' INT TERM
}
