#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for the test suite, on a free loopback port.
#
#   eval "$(scripts/pg_test_cluster.sh start)"   # exports MEDSCAN_TEST_POSTGRES_URL, PG_TEST_DIR
#   ...run the tests...
#   scripts/pg_test_cluster.sh stop "$PG_TEST_DIR"
#
# Needs Debian's `postgresql` package (initdb/pg_ctl under /usr/lib/postgresql/*/bin). As root,
# the cluster runs as the unprivileged `postgres` system user (PostgreSQL refuses to run as
# root); otherwise as the calling user. Trust authentication, loopback only, data in a temporary
# folder that `stop` removes. Prints only shell `export` lines on stdout; progress goes to stderr.
set -euo pipefail

cmd=${1:-}
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)

as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

case "$cmd" in
start)
  if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
    echo "pg_test_cluster: PostgreSQL is not installed (apt-get install postgresql)" >&2
    exit 1
  fi
  dir=$(mktemp -d /tmp/medscan-pg.XXXXXX)
  chmod 0755 "$dir"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  as_owner "$bindir/initdb" -D "$dir/data" -A trust -U medscan --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >&2 \
    || { cat "$dir/server.log" >&2; exit 1; }
  as_owner "$bindir/createdb" -h 127.0.0.1 -p "$port" -U medscan medscan
  echo "pg_test_cluster: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($dir)" >&2
  echo "export MEDSCAN_TEST_POSTGRES_URL=postgresql+psycopg://medscan@127.0.0.1:$port/medscan"
  echo "export PG_TEST_DIR=$dir"
  ;;
stop)
  dir=${2:?usage: pg_test_cluster.sh stop DIR}
  if [ -d "$dir/data" ]; then
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  ;;
*)
  echo "usage: pg_test_cluster.sh start | stop DIR" >&2
  exit 2
  ;;
esac
