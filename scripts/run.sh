#!/usr/bin/env bash
# `make run`: install what is missing, build the widget, and serve it with the
# reference server on http://127.0.0.1:8080 (events in ./data/optrail.db).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build-web.sh
cargo build --release -p optrail-server --bin optrail-server
# --demo: anonymous visitors see and cancel the "demo" owner's operations and
# may start simulated ones; the server says so when it starts. Publishers can
# feed it too when OPTRAIL_PUBLISHER_KEY is set (see README.md).
exec target/release/optrail-server --demo --listen "${OPTRAIL_LISTEN:-127.0.0.1:8080}" \
  --database "${OPTRAIL_DATABASE:-data/optrail.db}" --static-dir dist "$@"
