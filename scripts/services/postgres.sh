#!/usr/bin/env bash
# Starts or stops the PostgreSQL that Herald's tests use: a throwaway cluster (initdb, pg_ctl),
# loopback only, a port of its own, data in a fresh temporary folder, run as an unprivileged user.
#
#   bash scripts/services/postgres.sh start    # prints the URL to export as HERALD_TEST_POSTGRES_URL
#   bash scripts/services/postgres.sh stop
#   bash scripts/services/postgres.sh status
#
# Env: HERALD_POSTGRES_PORT (default 55432). Installs nothing: `.ci/run` installs Debian's
# `postgresql` when it is missing. Run as root, the cluster belongs to the `postgres` user (the
# server refuses to run as root); run as anyone else, to that user.
set -euo pipefail

PORT="${HERALD_POSTGRES_PORT:-55432}"
STATE="${TMPDIR:-/tmp}/herald-postgres.${PORT}"
DATA="$STATE/data"
LOGFILE="$STATE/postgres.log"
# seconds to wait for the server to accept connections after start, or to stop
WAIT_SECONDS=30
# The user tests connect as; trust authentication on loopback only (a throwaway test cluster).
DB_USER=herald

die() { echo "postgres.sh: $*" >&2; exit 1; }

bin_dir() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [[ -x "$d/pg_ctl" ]] && { echo "$d"; return 0; }
  done
  command -v pg_ctl >/dev/null && { dirname "$(command -v pg_ctl)"; return 0; }
  return 1
}

# Runs a command as the cluster's owner: `postgres` when we are root, ourselves otherwise.
as_owner() {
  if [[ "$(id -u)" == 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

ready() {
  as_owner "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"
}

running() {
  [[ -f "$DATA/postmaster.pid" ]] && as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

url() {
  echo "postgres://$DB_USER@127.0.0.1:$PORT/postgres"
}

start() {
  BIN="$(bin_dir)" || die "pg_ctl not found (Debian: apt-get install -y postgresql)"
  if running; then
    url
    return 0
  fi
  if ready; then die "port $PORT already accepts connections but is not ours; set HERALD_POSTGRES_PORT"; fi
  rm -rf "$STATE"
  mkdir -p "$STATE"
  [[ "$(id -u)" == 0 ]] && chown postgres "$STATE"
  as_owner "$BIN/initdb" -D "$DATA" -U "$DB_USER" --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$STATE/initdb.log" 2>&1 \
    || die "initdb failed: $(tail -n 20 "$STATE/initdb.log")"
  # Loopback only; fsync on (tests check durability); enough connections for several nodes.
  as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOGFILE" -w -t "$WAIT_SECONDS" \
    -o "-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=$STATE -c max_connections=200" start >/dev/null \
    || die "postgres did not start: $(tail -n 20 "$LOGFILE" 2>/dev/null)"
  local deadline=$((SECONDS + WAIT_SECONDS))
  until ready; do
    ((SECONDS > deadline)) && die "postgres did not accept connections on 127.0.0.1:$PORT within ${WAIT_SECONDS}s"
    sleep 0.2
  done
  url
}

stop() {
  BIN="$(bin_dir)" || { rm -rf "$STATE"; return 0; }
  if running; then
    as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w -t "$WAIT_SECONDS" stop >/dev/null || true
  fi
  rm -rf "$STATE"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status)
    BIN="$(bin_dir)" || { echo "stopped"; exit 1; }
    if running && ready; then echo "running: $(url)"; else echo "stopped"; exit 1; fi
    ;;
  *) die "usage: $0 start|stop|status" ;;
esac
