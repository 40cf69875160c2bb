#!/usr/bin/env bash
# Installs what optrail needs beyond the Rust toolchain, Node and Python:
# the wasm32 target and std's source, Trunk, wasm-bindgen-cli (the exact
# version in Cargo.lock), wasm-opt (npm's binaryen), terser, axe-core and
# socket.io (all from npm, into .tools/), Chromium + ChromeDriver and
# PostgreSQL (Debian; the server's Postgres tests start throw-away clusters
# with scripts/pg.sh), and every crate any build or test needs (so later
# `--offline` builds work on a new machine).
# Idempotent: each piece is checked first and skipped when present at the
# right version, so a second run takes a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

TRUNK_VERSION=0.21.14 # 0.22 needs rustc >= 1.96.1
# Debian's binaryen (108) cannot parse the reference-types opcodes that
# rustc + wasm-bindgen emit today; npm's build of binaryen can.
BINARYEN_VERSION=132
# Minifies the release JavaScript (scripts/minify-js.sh).
TERSER_VERSION=5.51.4
# Checks the widget's accessibility in the end-to-end suite.
AXE_VERSION=4.14.1
# The load benchmark's peer (server/benches/peer/socketio.js).
SOCKET_IO_VERSION=4.8.1
APT_PACKAGES=(chromium chromium-driver postgresql)

say() { printf '\033[1msetup:\033[0m %s\n' "$*"; }
die() { printf '\033[1;31msetup: %s\033[0m\n' "$*" >&2; exit 1; }

# The wasm-bindgen version the widget links against; the CLI must match it
# exactly or the generated JS glue and the wasm disagree at run time.
lock_version() {
  awk -v name="$1" '$0 == "name = \"" name "\"" { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock
}
[ -f Cargo.lock ] || cargo generate-lockfile
WASM_BINDGEN_VERSION=$(lock_version wasm-bindgen)
[ -n "$WASM_BINDGEN_VERSION" ] || die "no wasm-bindgen in Cargo.lock"
trunk_pin=$(sed -n 's/^wasm_bindgen *= *"\(.*\)"/\1/p' Trunk.toml)
[ "$trunk_pin" = "$WASM_BINDGEN_VERSION" ] || die "Trunk.toml pins wasm_bindgen $trunk_pin but Cargo.lock has $WASM_BINDGEN_VERSION: make them equal (and keep the =version in Cargo.toml)."

# rust-toolchain.toml pins the toolchain and names the target and components;
# rustup installs them on first use. These checks make that explicit, and
# cover a rustup too old to read the file's lists.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# The release bundle rebuilds std for size (scripts/bundle.sh).
if ! rustup component list --installed | grep -q '^rust-src'; then
  say "adding the rust-src component"
  rustup component add rust-src
fi

if [ "$(trunk --version 2>/dev/null)" != "trunk $TRUNK_VERSION" ]; then
  say "installing trunk $TRUNK_VERSION from crates.io (about 8 minutes on 2 cores)"
  cargo install trunk --version "=$TRUNK_VERSION" --locked
fi

if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 3 minutes)"
  # --locked fails here: one of its locked dependencies is gone from the registry.
  cargo install wasm-bindgen-cli --version "=$WASM_BINDGEN_VERSION" --force
fi

if [ "$(.tools/node_modules/.bin/wasm-opt --version 2>/dev/null)" != "wasm-opt version $BINARYEN_VERSION (version_$BINARYEN_VERSION)" ]; then
  say "installing wasm-opt (binaryen $BINARYEN_VERSION) from npm into .tools/"
  npm install --silent --no-audit --no-fund --prefix .tools "binaryen@$BINARYEN_VERSION.0.0" >/dev/null
fi
if [ "$(.tools/node_modules/.bin/terser --version 2>/dev/null)" != "terser $TERSER_VERSION" ]; then
  say "installing terser $TERSER_VERSION from npm into .tools/"
  npm install --silent --no-audit --no-fund --prefix .tools "terser@$TERSER_VERSION" >/dev/null
fi
if [ "$(node -p "require('./.tools/node_modules/axe-core/package.json').version" 2>/dev/null)" != "$AXE_VERSION" ]; then
  say "installing axe-core $AXE_VERSION from npm into .tools/"
  npm install --silent --no-audit --no-fund --prefix .tools "axe-core@$AXE_VERSION" >/dev/null
fi
if [ "$(node -p "require('./.tools/node_modules/socket.io/package.json').version" 2>/dev/null)" != "$SOCKET_IO_VERSION" ]; then
  say "installing socket.io $SOCKET_IO_VERSION from npm into .tools/ (the load benchmark's peer)"
  npm install --silent --no-audit --no-fund --prefix .tools "socket.io@$SOCKET_IO_VERSION" >/dev/null
fi
wasm_opt_pin=$(sed -n 's/^wasm_opt *= *"\(.*\)"/\1/p' Trunk.toml)
[ "$wasm_opt_pin" = "version_$BINARYEN_VERSION" ] || die "Trunk.toml pins wasm_opt $wasm_opt_pin but setup installs version_$BINARYEN_VERSION"

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    die "missing Debian packages: ${missing[*]}. Installing them needs root: run 'sudo apt-get update && sudo apt-get install -y ${missing[*]}', then run this again."
  fi
  say "installing ${missing[*]} with apt-get (about a minute)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v chromedriver >/dev/null || die "chromedriver is not on PATH after installing chromium-driver"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || die "no initdb under /usr/lib/postgresql after installing postgresql"

# Every crate a build or test needs, fetched now so that the `--offline`
# builds after this (Trunk builds offline) find them on a new machine:
# the workspace for every target, and std's own dependencies for the bundle,
# which rebuilds std (scripts/bundle.sh) and so needs crates such as
# `dlmalloc` that no cache has until something fetches them. A warm cache
# makes both near-instant.
say "fetching the crates builds and tests need"
cargo fetch --locked --quiet
(
  # shellcheck source=bundle.sh
  source scripts/bundle.sh
  cargo fetch --locked --quiet --target wasm32-unknown-unknown
)
