#!/usr/bin/env bash
# `make check`: the fast inner loop beside the full gate (`make test`):
# formatting, host clippy, and the core's and server's tests. No browser, no
# wasm build, no setup; a few minutes warm. `make test` stays the one gate
# that CI and the README use.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=step.sh
source scripts/step.sh
step "cargo fmt" cargo fmt --all -- --check
step "clippy (host)" cargo clippy --workspace --all-targets --locked -- -D warnings
step "core and server tests" cargo test -p optrail-core -p optrail-server --locked
