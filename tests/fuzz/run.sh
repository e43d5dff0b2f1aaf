#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for
# FUZZ_SECONDS (default 60), or for FUZZ_RUNS inputs when that is set (CI:
# a fixed, short run), from the seeds in tests/fuzz/seeds/TARGET.
# A crash stops with the input saved as build-fuzz/crash-*; exit 1.
#   tests/fuzz/run.sh                  (make fuzz)
#   FUZZ_RUNS=20000 tests/fuzz/run.sh  (.ci/run)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=build-fuzz
SECS=${FUZZ_SECONDS:-60}
CC=${FUZZ_CC:-clang}
command -v "$CC" >/dev/null || { echo "fuzz: needs clang (apt-get install clang)" >&2; exit 1; }
mkdir -p "$OUT"
CORE="core/auth.c core/json.c core/json_write.c core/envelope.c core/buf.c core/alloc.c
  core/http.c core/conn.c core/dict.c core/frame.c core/netaddr.c core/origin.c
  core/pmd.c core/wsproto.c"
FLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Icore"
if [ -n "${FUZZ_RUNS:-}" ]; then LIMIT="-runs=$FUZZ_RUNS"; WHAT="$FUZZ_RUNS inputs"
else LIMIT="-max_total_time=$SECS"; WHAT="${SECS}s"; fi
for t in frames token handshake inflate; do
  # A request head may reach 8192 bytes before it is refused.
  MAXLEN=4096
  [ "$t" = handshake ] && MAXLEN=10000
  # shellcheck disable=SC2086
  "$CC" $FLAGS "tests/fuzz/fuzz_$t.c" $CORE -lcrypto -lz -o "$OUT/fuzz_$t"
  mkdir -p "$OUT/corpus_$t"
  echo "== fuzz_$t, $WHAT"
  (cd "$OUT" && "./fuzz_$t" "$LIMIT" -max_len="$MAXLEN" \
    "corpus_$t" "../tests/fuzz/seeds/$t" 2>&1 | tail -n 3)
done
