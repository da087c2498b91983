#!/usr/bin/env bash
# Starts or stops the Redis that Herald's tests use: loopback only, a port of its own (so it never
# meets a Redis already running on 6379), no persistence, data in a fresh temporary folder.
#
#   bash scripts/services/redis.sh start    # prints the URL to export as HERALD_TEST_REDIS_URL
#   bash scripts/services/redis.sh stop
#   bash scripts/services/redis.sh status
#
# Env: HERALD_REDIS_PORT (default 6390). Installs nothing: `.ci/run` installs redis-server
# (Debian: apt-get install -y redis-server) when it is missing.
set -euo pipefail

PORT="${HERALD_REDIS_PORT:-6390}"
STATE="${TMPDIR:-/tmp}/herald-redis.${PORT}"
PIDFILE="$STATE/redis.pid"
# seconds to wait for Redis to answer PING after start, or to exit after stop
WAIT_SECONDS=20

die() { echo "redis.sh: $*" >&2; exit 1; }

# PING over a plain TCP socket, so the check does not depend on redis-cli being installed.
ping_redis() {
  local reply
  { exec 3<>"/dev/tcp/127.0.0.1/$PORT"; } 2>/dev/null || return 1
  printf 'PING\r\n' >&3
  IFS= read -r -t 2 reply <&3 || reply=''
  exec 3<&- 3>&-
  [[ "$reply" == +PONG* ]]
}

our_pid() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid
  pid="$(cat "$PIDFILE")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

start() {
  command -v redis-server >/dev/null || die "redis-server not found (Debian: apt-get install -y redis-server)"
  if our_pid >/dev/null; then
    echo "redis://127.0.0.1:$PORT"
    return 0
  fi
  if ping_redis; then die "port $PORT already answers PING but is not ours; set HERALD_REDIS_PORT"; fi
  rm -rf "$STATE"
  mkdir -p "$STATE/data"
  # No RDB snapshots, no AOF: test data is thrown away with the folder.
  redis-server \
    --bind 127.0.0.1 --port "$PORT" --protected-mode yes \
    --dir "$STATE/data" --save '' --appendonly no \
    --daemonize yes --pidfile "$PIDFILE" --logfile "$STATE/redis.log" \
    || die "redis-server failed to start: $(tail -n 20 "$STATE/redis.log" 2>/dev/null)"
  local deadline=$((SECONDS + WAIT_SECONDS))
  until ping_redis; do
    if ((SECONDS > deadline)); then
      die "redis did not answer on 127.0.0.1:$PORT within ${WAIT_SECONDS}s: $(tail -n 20 "$STATE/redis.log" 2>/dev/null)"
    fi
    sleep 0.1
  done
  echo "redis://127.0.0.1:$PORT"
}

stop() {
  local pid
  if pid="$(our_pid)"; then
    kill -TERM "$pid"
    local deadline=$((SECONDS + WAIT_SECONDS))
    while kill -0 "$pid" 2>/dev/null; do
      if ((SECONDS > deadline)); then kill -KILL "$pid" 2>/dev/null || true; break; fi
      sleep 0.1
    done
  fi
  rm -rf "$STATE"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if our_pid >/dev/null && ping_redis; then echo "running: redis://127.0.0.1:$PORT"; else echo "stopped"; exit 1; fi ;;
  *) die "usage: $0 start|stop|status" ;;
esac
