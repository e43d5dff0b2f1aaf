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
ulimit -n "$(ulimit -Hn)"
ON_SERVER=(--compression)
ON_LOAD=(--deflate)
fanout_onoff compression 100 "${BENCH_PORT:-9611}" \
  /tmp/luahub-bench-compression.jsonl
