# Sourced by the scripts that build a wasm bundle and weigh it (build-web.sh,
# stack-floor.sh), so both measure with the same compiler settings and the
# same arithmetic.
#
# Rebuild std for the bundle with panics as plain traps. With
# `panic = "abort"` a panic already ends the app, and its message goes to
# stderr, which wasm32-unknown-unknown does not have, so nobody ever saw it;
# but the prebuilt std still carries the code that formats those messages.
# Rebuilding std with `-Cpanic=immediate-abort` (and std's own
# `optimize_for_size`) drops it, with behaviour unchanged (the end-to-end
# suite runs against this build).
#
# For the same reason `{:?}` output and source locations have no reader in
# the bundle: `-Zfmt-debug=none` makes every Debug impl print nothing and
# `-Zlocation-detail=none` drops file/line strings. No text a person sees
# may therefore use `{:?}`: the widget quotes values by hand, and
# scripts/test.sh fails if `:?}` appears in src/. Sizes in BENCHMARKS.md,
# "Widget bundle".
#
# All of these are unstable, so the stable toolchain is told to accept them
# for these builds only (RUSTC_BOOTSTRAP=1); native builds, clippy and the
# wasm tests use the normal std and flags. Needs the rust-src component
# (scripts/setup.sh).
export RUSTC_BOOTSTRAP=1
export CARGO_UNSTABLE_BUILD_STD=std,panic_abort
export CARGO_UNSTABLE_BUILD_STD_FEATURES=optimize_for_size
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zfmt-debug=none -Zlocation-detail=none"

# Prints "RAW GZIP" in bytes for the .wasm and .js files under directory $1
# (wasm-bindgen's inline snippets included): what a browser downloads,
# before and after gzip -9.
bundle_size() {
  local raw=0 gz=0 f
  while IFS= read -r -d '' f; do
    raw=$((raw + $(stat -c %s "$f")))
    gz=$((gz + $(gzip -9 -c "$f" | wc -c)))
  done < <(find "$1" -type f \( -name '*.wasm' -o -name '*.js' \) -print0)
  echo "$raw $gz"
}
