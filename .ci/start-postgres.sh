#!/usr/bin/env bash
# Start a throw-away PostgreSQL server for the registry tests and print the URL to export.
#
#   eval "$(.ci/start-postgres.sh)"      # sets MODELTRACE_TEST_PG_URL
#   .ci/start-postgres.sh stop           # stops it
#
# Uses the Debian packages' binaries (apt-get install postgresql). The cluster lives in
# $MODELTRACE_PG_DIR (default /tmp/modeltrace-pg), listens on 127.0.0.1 only, port $MODELTRACE_PG_PORT
# (default 54329), and runs as the `postgres` user when started by root (initdb refuses root).
set -euo pipefail
DATA_DIR="${MODELTRACE_PG_DIR:-/tmp/modeltrace-pg}"
PORT="${MODELTRACE_PG_PORT:-54329}"
BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
if [[ -z "$BIN" || ! -x "$BIN/initdb" ]]; then
    echo "PostgreSQL server binaries not found; install them with: apt-get install -y postgresql" >&2
    exit 1
fi
as_owner() {
    if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}
if [[ "${1:-start}" == "stop" ]]; then
    as_owner "$BIN/pg_ctl" -D "$DATA_DIR/data" -m fast stop >&2 || true
    exit 0
fi
if [[ "$(id -u)" == 0 ]]; then
    mkdir -p "$DATA_DIR" && chown postgres:postgres "$DATA_DIR"
else
    mkdir -p "$DATA_DIR"
fi
if [[ ! -f "$DATA_DIR/data/PG_VERSION" ]]; then
    as_owner "$BIN/initdb" -D "$DATA_DIR/data" -U postgres --auth=trust --encoding=UTF8 --no-locale >&2
fi
if ! as_owner "$BIN/pg_ctl" -D "$DATA_DIR/data" status >/dev/null 2>&1; then
    as_owner "$BIN/pg_ctl" -D "$DATA_DIR/data" -l "$DATA_DIR/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DATA_DIR -c fsync=on" start >&2
fi
psql_run() { as_owner "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -v ON_ERROR_STOP=1 -qtA "$@"; }
if [[ -z "$(psql_run -c "SELECT 1 FROM pg_roles WHERE rolname='modeltrace'")" ]]; then
    psql_run -c "CREATE ROLE modeltrace LOGIN PASSWORD 'modeltrace' CREATEDB" >&2
fi
if [[ -z "$(psql_run -c "SELECT 1 FROM pg_database WHERE datname='modeltrace_test'")" ]]; then
    psql_run -c "CREATE DATABASE modeltrace_test OWNER modeltrace" >&2
fi
echo "export MODELTRACE_TEST_PG_URL=postgresql://modeltrace:modeltrace@127.0.0.1:$PORT/modeltrace_test"
