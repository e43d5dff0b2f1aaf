#!/usr/bin/env bash
# Prints the path of a Bun binary for the uWebSockets yardstick
# (tests/bench/uws_server.js), installing Bun from the npm registry into
# BUILD_DIR/bun on first use. Bun embeds uWebSockets: its Bun.serve
# WebSocket pub/sub is uWS's own, the fastest server we know. Fails (exit 1,
# nothing printed) when Bun can't be had; run.sh then leaves its column out.
#   tests/bench/uws.sh [BUILD_DIR]            (UWS_BUN_VERSION=1.4.5)
set -euo pipefail
cd "$(dirname "$0")/../.."
DIR=${1:-build}/bun
case $(uname -m) in
  x86_64) ARCH=x64 ;;
  aarch64) ARCH=aarch64 ;;
  *) echo "uws: no Bun build for $(uname -m)" >&2; exit 1 ;;
esac
# The platform package's binary itself: the "bun" package's bin is a
# placeholder that its install script (skipped here) would replace.
BUN=$DIR/node_modules/@oven/bun-linux-$ARCH/bin/bun
if ! [ -x "$BUN" ] || ! "$BUN" --version >/dev/null 2>&1; then
  mkdir -p "$DIR"
  npm install --prefix "$DIR" --no-save --no-audit --no-fund --ignore-scripts \
    "bun@${UWS_BUN_VERSION:-1.4.5}" >"$DIR/install.log" 2>&1 || {
    echo "uws: could not install Bun from npm (see $DIR/install.log)" >&2
    exit 1
  }
  "$BUN" --version >/dev/null 2>&1 || {
    echo "uws: Bun installed but does not run here" >&2
    exit 1
  }
fi
echo "$BUN"
