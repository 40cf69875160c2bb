#!/usr/bin/env bash
# Weighs the mandated stack on its own (scripts/stack-floor/: Leptos CSR,
# gloo-net WebSocket + HTTP, serde_json, a keyed list), built exactly like
# the widget's bundle: the same versions (the root Cargo.lock), release
# profile, rebuilt std, wasm-bindgen and `wasm-opt -Oz`. Prints its size
# beside the widget's, so BENCHMARKS.md can say how much of the bundle is
# the stack and how much is the widget's features. Not run by CI.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.tools/node_modules/.bin:$PATH"
# shellcheck source=bundle.sh
source scripts/bundle.sh

work=target/stack-floor
mkdir -p "$work/out"
cp scripts/stack-floor/Cargo.toml scripts/stack-floor/lib.rs Cargo.lock "$work/"
rm -f "$work"/out/*
(cd "$work" && cargo build --offline --release --target wasm32-unknown-unknown)
wasm-bindgen --target web --out-dir "$work/out" \
  "$work/target/wasm32-unknown-unknown/release/stack_floor.wasm"
features="--enable-reference-types --enable-bulk-memory --enable-nontrapping-float-to-int \
  --enable-sign-ext --enable-mutable-globals --enable-multivalue"
# shellcheck disable=SC2086
wasm-opt -Oz $features "$work/out/stack_floor_bg.wasm" -o "$work/out/stack_floor_bg.wasm"
read -r raw gz < <(bundle_size "$work/out")
echo "stack floor (wasm + js): $((raw / 1024)) KB raw, $((gz / 1024)) KB gzip"
if [ -f dist/bundle-size.txt ]; then
  echo "widget, last scripts/build-web.sh: $(cat dist/bundle-size.txt)"
fi
