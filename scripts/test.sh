#!/usr/bin/env bash
# `make test`: install what is missing, then run every check. Stops at the
# first failure. Each step prints its name and how long it took.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=step.sh
source scripts/step.sh

core_is_pure() {
  # The core must stay free of browser, async-runtime and server crates.
  local bad
  bad=$(cargo tree -p optrail-core -e normal --prefix none --format '{p}' \
    | grep -E '^(web-sys|js-sys|wasm-bindgen|gloo[a-z-]*|tokio|axum|leptos|hyper|mio) ' | sort -u || true)
  if [ -n "$bad" ]; then
    echo "optrail-core depends on I/O crates it must not use:"; echo "$bad"; return 1
  fi
  echo "optrail-core depends on no browser, runtime or server crate"
}

no_debug_text() {
  # The release bundle prints `{:?}` as nothing (scripts/bundle.sh), so the
  # widget must never format text with it.
  if grep -rn ':?}' src/; then
    echo "src/ formats with {:?}, which the release bundle prints as nothing"; return 1
  fi
  echo "src/ formats no text with {:?}"
}

export CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver}

step setup scripts/setup.sh
step "cargo fmt" cargo fmt --all -- --check
step "core purity" core_is_pure
step "no {:?} in widget text" no_debug_text
step "clippy (host)" cargo clippy --workspace --all-targets --locked -- -D warnings
step "clippy (wasm32)" cargo clippy -p optrail --target wasm32-unknown-unknown --all-targets --locked -- -D warnings
step "widget build (trunk, release)" scripts/build-web.sh
step "server binary (for the end-to-end tests)" cargo build -p optrail-server --locked
step "native tests (core, server, end-to-end)" cargo test --workspace --locked
step "widget tests (wasm-bindgen-test, headless Chromium)" cargo test -p optrail --target wasm32-unknown-unknown --locked
