#!/usr/bin/env bash
# Builds the addon with AddressSanitizer + UBSan in a scratch copy of the native sources (so the
# normal build stays as it is) and runs the native test suite against it. Node itself is not
# instrumented, so libasan is preloaded and leak detection is off (Node's own allocations would
# drown any report); UBSan findings abort the run. Arguments: test files to run instead of
# test/native (e.g. 'test/xdp/**/*.test.ts': the AF_XDP suite's relay children inherit the
# preloaded, sanitized addon through the environment).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
scratch=$(mktemp -d /tmp/rtphub-asan.XXXXXX)
trap 'rm -rf "$scratch"' EXIT

cp -r binding.gyp package.json native "$scratch/"
ln -s "$root/node_modules" "$scratch/node_modules"
(cd "$scratch" && RTPHUB_SANITIZE=1 npx node-gyp rebuild -j 2 >"$scratch/build.log" 2>&1) || {
  cat "$scratch/build.log"
  exit 1
}
grep -E "warning|rtphub:" "$scratch/build.log" || true

libasan=$(gcc -print-file-name=libasan.so)
export LD_PRELOAD="$libasan"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export RTPHUB_ADDON="$scratch/build/Release/rtphub.node"
export RTPHUB_SANITIZED=1
if [[ $# -eq 0 ]]; then set -- 'test/native/**/*.test.ts'; fi
echo "running $* against the sanitized addon ($RTPHUB_ADDON)"
npx ava --concurrency 1 "$@"
