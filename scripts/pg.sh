#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for tests and benchmarks: initdb in a
# directory of your choosing, listening on a free port of 127.0.0.1 only
# (and a Unix socket in that directory), no system service. PostgreSQL
# refuses to run as root, so as root the cluster runs as the `postgres`
# user that Debian's package creates (scripts/setup.sh installs it).
#
#   scripts/pg.sh start DIR   # prints the database URL: postgres://optrail@127.0.0.1:PORT/postgres
#   scripts/pg.sh stop DIR    # stops it (immediately); then remove DIR yourself
#
# Extra server settings go in PG_SETTINGS, e.g. PG_SETTINGS='-c fsync=off'.
set -euo pipefail

die() { printf 'pg.sh: %s\n' "$*" >&2; exit 1; }

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
[ -n "$bin" ] && [ -x "$bin/initdb" ] ||
  die "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): run scripts/setup.sh"

# Runs a command as the cluster's owner.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    su postgres -s /bin/bash -c "$*"
  else
    bash -c "$*"
  fi
}

[ $# -eq 2 ] || die "usage: pg.sh start|stop DIR"
dir=$(realpath -m "$2")

case "$1" in
  start)
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then chown postgres "$dir"; fi
    as_owner "test -w '$dir'" ||
      die "the postgres user cannot write $dir: every directory above it must be searchable (chmod o+x)"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_owner "'$bin/initdb' -D '$dir/data' -A trust -U optrail -E UTF8 --no-sync" >"$dir/initdb.log" 2>&1 ||
      die "initdb failed: see $dir/initdb.log"
    as_owner "'$bin/pg_ctl' -D '$dir/data' -w -t 30 -l '$dir/log' \
      -o \"-p $port -k '$dir' -c listen_addresses=127.0.0.1 ${PG_SETTINGS:-}\" start" >/dev/null ||
      die "the cluster did not start: see $dir/log"
    echo "postgres://optrail@127.0.0.1:$port/postgres"
    ;;
  stop)
    [ -d "$dir/data" ] || exit 0
    as_owner "'$bin/pg_ctl' -D '$dir/data' -m immediate -w stop" >/dev/null 2>&1 || true
    ;;
  *) die "usage: pg.sh start|stop DIR" ;;
esac
