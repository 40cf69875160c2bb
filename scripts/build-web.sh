#!/usr/bin/env bash
# Builds the widget with Trunk (release, wasm-opt) into dist/ and measures
# the bundle a browser downloads: wasm + JS, raw and gzipped.
set -euo pipefail
cd "$(dirname "$0")/.."

# wasm-opt comes from .tools/ (scripts/setup.sh).
export PATH="$PWD/.tools/node_modules/.bin:$PATH"
# The goal is 150 KB gzip (issue 5); the build fails only above this
# ceiling, which is set just over today's measured size to catch growth
# (170 KB, 2026-12-01, after issue 21's resilience work: BENCHMARKS.md).
GOAL_GZIP_KB=150
LIMIT_GZIP_KB=${OPTRAIL_BUNDLE_LIMIT_KB:-172}

# shellcheck source=bundle.sh
source scripts/bundle.sh

# Trunk's own summary of a failed build hides the compiler's error: keep the
# whole log, show its tail when all is well and all of it when not.
mkdir -p target
log=target/build-web.log
if ! trunk build --release --offline >"$log" 2>&1; then
  cat "$log" >&2
  echo "build-web: the widget build failed (full log above, also in $log)" >&2
  exit 1
fi
grep -vE '^\s*$' "$log" | tail -n 5

read -r raw gz < <(bundle_size dist)
[ "$gz" -gt 0 ] || { echo "build-web: no wasm/js in dist/" >&2; exit 1; }
report=$(printf 'bundle (wasm + js): %d KB raw, %d KB gzip (goal %d KB, ceiling %d KB)' \
  $((raw / 1024)) $((gz / 1024)) "$GOAL_GZIP_KB" "$LIMIT_GZIP_KB")
echo "$report"
echo "$report" > dist/bundle-size.txt
if [ $((gz / 1024)) -gt "$LIMIT_GZIP_KB" ]; then
  echo "build-web: the bundle grew past its ceiling" >&2
  exit 1
fi
