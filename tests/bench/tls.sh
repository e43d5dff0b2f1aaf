#!/usr/bin/env bash
# Fan-out with TLS off and on: 1 publisher, 1 room of 1,000 subscribers,
# 1 KB chats at 50 messages/s, the server pinned to CPU 0 and the load
# tool to CPU 1. Prints server CPU per delivery (and per message) for
# each, medians of BENCH_REPS runs (default 3), alternated. With TLS on
# the server runs with --tls-cert/--tls-key (a self-signed RSA 2048
# certificate made here) and every client speaks TLS (luahub-bench --tls).
# 50 messages/s: the load tool, decrypting 50,000 deliveries a second on
# its one core, stays below it (at 100 it is the bottleneck).
#   tests/bench/tls.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
BUILD=${1:-build}
ulimit -n "$(ulimit -Hn)"
CERTS=$(mktemp -d)
trap 'rm -rf "$CERTS"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1 \
  -keyout "$CERTS/key.pem" -out "$CERTS/cert.pem" 2>/dev/null
ON_SERVER=(--tls-cert "$CERTS/cert.pem" --tls-key "$CERTS/key.pem")
ON_LOAD=(--tls)
fanout_onoff tls "${BENCH_RATE:-50}" "${BENCH_PORT:-9631}" \
  /tmp/luahub-bench-tls.jsonl
