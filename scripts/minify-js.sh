#!/usr/bin/env bash
# Trunk post_build hook (Trunk.toml): minifies the JavaScript of a release
# build (wasm-bindgen's glue and the inline snippets) with terser, then
# updates the SRI hashes Trunk already wrote into index.html to match.
#
# Trunk's own minifier (minify-js) cannot parse today's wasm-bindgen output
# and silently ships it unminified; terser (npm, installed by
# scripts/setup.sh) can. Names and properties the wasm imports by are left
# alone: terser only renames locals. Sizes: BENCHMARKS.md, "Widget bundle".
set -euo pipefail
[ "${TRUNK_PROFILE:-}" = release ] || exit 0
root=${TRUNK_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
stage=${TRUNK_STAGING_DIR:?run by Trunk as a post_build hook}
terser="$root/.tools/node_modules/.bin/terser"
[ -x "$terser" ] || { echo "minify-js: no terser in .tools/: run scripts/setup.sh" >&2; exit 1; }

sri() {
  python3 -c 'import base64, hashlib, sys
print("sha384-" + base64.b64encode(hashlib.sha384(open(sys.argv[1], "rb").read()).digest()).decode())' "$1"
}

while IFS= read -r -d '' file; do
  before=$(sri "$file")
  "$terser" "$file" --module --compress --mangle --output "$file.min"
  mv "$file.min" "$file"
  after=$(sri "$file")
  # Base64 never contains '|'.
  sed -i "s|$before|$after|g" "$stage/index.html"
done < <(find "$stage" -name '*.js' -print0)
