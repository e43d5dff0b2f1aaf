#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for
# FUZZ_SECONDS (default 60), from the seeds in tests/fuzz/seeds/TARGET.
# A crash stops with the input saved as build-fuzz/crash-*; exit 1.
#   tests/fuzz/run.sh            (make fuzz)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=build-fuzz
SECS=${FUZZ_SECONDS:-60}
CC=${FUZZ_CC:-clang}
command -v "$CC" >/dev/null || { echo "fuzz: needs clang (apt-get install clang)" >&2; exit 1; }
mkdir -p "$OUT"
CORE="core/auth.c core/json.c core/json_write.c core/envelope.c core/buf.c core/alloc.c core/http.c
  core/conn.c core/dict.c core/frame.c"
FLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Icore"
for t in frames token; do
  # shellcheck disable=SC2086
  "$CC" $FLAGS "tests/fuzz/fuzz_$t.c" $CORE -lcrypto -o "$OUT/fuzz_$t"
  mkdir -p "$OUT/corpus_$t"
  echo "== fuzz_$t, ${SECS}s"
  (cd "$OUT" && "./fuzz_$t" -max_total_time="$SECS" -max_len=4096 \
    "corpus_$t" "../tests/fuzz/seeds/$t" 2>&1 | tail -n 3)
done
