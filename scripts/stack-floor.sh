#!/usr/bin/env bash
# Weighs the mandated stack on its own (scripts/stack-floor/: Leptos CSR,
# gloo-net WebSocket + HTTP, serde_json, a keyed list), then the same with
# optrail-core's session driven by the thinnest adapter, each built exactly
# like the widget's bundle: the same versions (the root Cargo.lock), release
# profile, rebuilt std, wasm-bindgen and `wasm-opt -Oz`. Prints both beside
# the widget's size, so BENCHMARKS.md can say how much of the bundle is the
# stack, how much the core, and how much the widget's own features. Not run
# by CI.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.tools/node_modules/.bin:$PATH"
# shellcheck source=bundle.sh
source scripts/bundle.sh

work=target/stack-floor
mkdir -p "$work"
cp scripts/stack-floor/*.rs scripts/stack-floor/Cargo.toml Cargo.lock "$work/"
features="--enable-reference-types --enable-bulk-memory --enable-nontrapping-float-to-int \
  --enable-sign-ext --enable-mutable-globals --enable-multivalue"

# weigh LABEL [CARGO_FEATURES]: builds the floor and prints its size.
weigh() {
  local label=$1 out="$work/out${2:+-$2}"
  rm -rf "$out" && mkdir -p "$out"
  (cd "$work" && cargo build --offline --release --target wasm32-unknown-unknown ${2:+--features "$2"})
  wasm-bindgen --target web --out-dir "$out" \
    "$work/target/wasm32-unknown-unknown/release/stack_floor.wasm"
  # shellcheck disable=SC2086
  wasm-opt -Oz $features "$out/stack_floor_bg.wasm" -o "$out/stack_floor_bg.wasm"
  read -r raw gz < <(bundle_size "$out")
  echo "$label (wasm + js): $((raw / 1024)) KB raw, $((gz / 1024)) KB gzip"
}

weigh "stack floor"
weigh "stack floor + optrail-core session" core
if [ -f dist/bundle-size.txt ]; then
  echo "widget, last scripts/build-web.sh: $(cat dist/bundle-size.txt)"
fi
