#!/usr/bin/env bash
# Builds the widget with Trunk (release, wasm-opt) into dist/ and measures
# the bundle a browser downloads: wasm + JS, raw and gzipped.
set -euo pipefail
cd "$(dirname "$0")/.."

# wasm-opt comes from .tools/ (scripts/setup.sh).
export PATH="$PWD/.tools/node_modules/.bin:$PATH"
# The goal is 150 KB gzip (issue 5); the build fails only above this
# ceiling, which is set just over today's measured size to catch growth.
GOAL_GZIP_KB=150
LIMIT_GZIP_KB=${OPTRAIL_BUNDLE_LIMIT_KB:-190}

# Size: rebuild std for the bundle with panics as plain traps. With
# `panic = "abort"` a panic already ends the app, and its message goes to
# stderr, which wasm32-unknown-unknown does not have, so nobody ever saw it;
# but the prebuilt std still carries the code that formats those messages.
# Rebuilding std with `-Cpanic=immediate-abort` (and std's own
# `optimize_for_size`) drops it, with behaviour unchanged (the end-to-end
# suite runs against this build); sizes in BENCHMARKS.md, "Widget bundle". Both are unstable, so the stable
# toolchain is told to accept them for this one build (RUSTC_BOOTSTRAP=1);
# native builds, clippy and the wasm tests use the normal std. Needs the
# rust-src component (scripts/setup.sh).
export RUSTC_BOOTSTRAP=1
export CARGO_UNSTABLE_BUILD_STD=std,panic_abort
export CARGO_UNSTABLE_BUILD_STD_FEATURES=optimize_for_size
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort"

trunk build --release --offline 2>&1 | grep -vE '^\s*$' | tail -n 5

raw=0 gz=0
for f in dist/*.wasm dist/*.js; do
  [ -f "$f" ] || continue
  raw=$((raw + $(stat -c %s "$f")))
  gz=$((gz + $(gzip -9 -c "$f" | wc -c)))
done
[ "$gz" -gt 0 ] || { echo "build-web: no wasm/js in dist/" >&2; exit 1; }
report=$(printf 'bundle (wasm + js): %d KB raw, %d KB gzip (goal %d KB, ceiling %d KB)' \
  $((raw / 1024)) $((gz / 1024)) "$GOAL_GZIP_KB" "$LIMIT_GZIP_KB")
echo "$report"
echo "$report" > dist/bundle-size.txt
if [ $((gz / 1024)) -gt "$LIMIT_GZIP_KB" ]; then
  echo "build-web: the bundle grew past its ceiling" >&2
  exit 1
fi
