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

# stop_pid PID: SIGTERM, then wait up to 10 s for it to be gone (it need not
# be a child of this shell), then SIGKILL.
stop_pid() {
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 200); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.05
  done
  kill -9 "$1" 2>/dev/null || true
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
