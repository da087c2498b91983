#!/usr/bin/env bash
# Starts or stops the Redis Sentinel set that Herald's failover tests use: a primary, one replica
# and three sentinels watching master name `herald` (quorum 2), loopback only, ports of their own,
# no persistence, state in a fresh temporary folder. Stops only the processes it started.
#
#   bash scripts/services/redis-sentinel.sh start    # prints the URL to export as HERALD_TEST_REDIS_SENTINEL_URL
#   bash scripts/services/redis-sentinel.sh stop
#   bash scripts/services/redis-sentinel.sh status   # exit 0 when every process runs and the sentinels agree
#   bash scripts/services/redis-sentinel.sh primary  # "host port pid" of the current primary
#   bash scripts/services/redis-sentinel.sh replicas # "host port pid" of each running replica, one a line
#   bash scripts/services/redis-sentinel.sh restore  # restarts a killed data node as a replica of the
#                                                    # current primary and waits until the set is whole
#
# Env: HERALD_SENTINEL_DATA_PORTS (default "6392 6393": the first starts as primary),
#      HERALD_SENTINEL_PORTS (default "26390 26391 26392").
# Installs nothing: `.ci/run` installs redis-server (Debian: apt-get install -y redis-server),
# whose `redis-server --sentinel` is the sentinel (or `redis-sentinel` when present).
set -euo pipefail

read -r -a DATA_PORTS <<<"${HERALD_SENTINEL_DATA_PORTS:-6392 6393}"
read -r -a SENTINEL_PORTS <<<"${HERALD_SENTINEL_PORTS:-26390 26391 26392}"
MASTER=herald
QUORUM=2
# milliseconds without an answer before a sentinel calls the primary down: short, for tests
DOWN_AFTER_MS=1000
# milliseconds a failover may take before a sentinel tries again (it waits twice this before a retry)
FAILOVER_TIMEOUT_MS=3000
STATE="${TMPDIR:-/tmp}/herald-redis-sentinel.${SENTINEL_PORTS[0]}"
# seconds to wait for the set to be whole after start or restore, or for a process to exit after stop
WAIT_SECONDS=30

die() { echo "redis-sentinel.sh: $*" >&2; exit 1; }

sentinel_url() {
  local hosts=() p
  for p in "${SENTINEL_PORTS[@]}"; do hosts+=("127.0.0.1:$p"); done
  local IFS=,
  echo "redis+sentinel://${hosts[*]}/$MASTER"
}

# Sends one command (RESP inline) to 127.0.0.1:$1 over a plain TCP socket, so nothing depends on
# redis-cli, and prints every reply line that arrives within a short read timeout.
query() {
  local port="$1" line
  shift
  { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 1
  printf '%s\r\n' "$*" >&3
  IFS= read -r -t 2 line <&3 || { exec 3<&- 3>&-; return 1; }
  printf '%s\n' "${line%$'\r'}"
  while IFS= read -r -t 0.2 line <&3; do printf '%s\n' "${line%$'\r'}"; done
  exec 3<&- 3>&-
}

answers_ping() { [[ "$(query "$1" PING 2>/dev/null | head -n 1)" == +PONG* ]]; }

pidfile() { echo "$STATE/$1.pid"; }

# The pid of the process this script started on port $1, if it still runs.
our_pid() {
  local file pid
  file="$(pidfile "$1")"
  [[ -f "$file" ]] || return 1
  pid="$(cat "$file")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  # A pid file left by a killed process may name a pid the system has since given to another.
  if [[ -r "/proc/$pid/comm" ]]; then [[ "$(cat "/proc/$pid/comm")" == redis* ]] || return 1; fi
  echo "$pid"
}

# host and port of the current primary, as the first sentinel that answers says.
current_primary() {
  local p reply
  for p in "${SENTINEL_PORTS[@]}"; do
    # *2 / $len / host / $len / port
    if reply="$(query "$p" SENTINEL get-master-addr-by-name "$MASTER" 2>/dev/null)" && [[ "$reply" == '*2'* ]]; then
      sed -n '3p;5p' <<<"$reply" | paste -sd' '
      return 0
    fi
  done
  return 1
}

wait_for() {
  local what="$1" deadline=$((SECONDS + WAIT_SECONDS))
  shift
  until "$@"; do
    ((SECONDS > deadline)) && die "$what within ${WAIT_SECONDS}s (logs in $STATE)"
    sleep 0.2
  done
}

start_data_node() {
  local port="$1" replicaof=()
  shift
  (($# == 2)) && replicaof=(--replicaof "$1" "$2")
  mkdir -p "$STATE/$port"
  rm -f "$(pidfile "$port")"
  # No RDB snapshots, no AOF: test data is thrown away with the folder. A replica's full sync
  # starts at once instead of after Redis's default 5 s wait for more replicas to share it.
  redis-server \
    --bind 127.0.0.1 --port "$port" --protected-mode yes \
    --dir "$STATE/$port" --save '' --appendonly no --repl-diskless-sync-delay 0 \
    --daemonize yes --pidfile "$(pidfile "$port")" --logfile "$STATE/$port/redis.log" \
    "${replicaof[@]}" \
    || die "redis-server on port $port failed to start: $(tail -n 20 "$STATE/$port/redis.log" 2>/dev/null)"
  wait_for "redis-server did not answer on 127.0.0.1:$port" answers_ping "$port"
}

start_sentinel() {
  local port="$1" primary_port="$2" conf="$STATE/sentinel-$1.conf"
  mkdir -p "$STATE/$port"
  # A sentinel rewrites its own config file (what it learns of replicas and peers): one each.
  cat >"$conf" <<EOF
bind 127.0.0.1
port $port
daemonize yes
pidfile $(pidfile "$port")
logfile $STATE/$port/sentinel.log
dir $STATE/$port
sentinel monitor $MASTER 127.0.0.1 $primary_port $QUORUM
sentinel down-after-milliseconds $MASTER $DOWN_AFTER_MS
sentinel failover-timeout $MASTER $FAILOVER_TIMEOUT_MS
sentinel parallel-syncs $MASTER 1
EOF
  if command -v redis-sentinel >/dev/null; then
    redis-sentinel "$conf" || die "redis-sentinel on port $port failed to start"
  else
    redis-server "$conf" --sentinel || die "redis-server --sentinel on port $port failed to start"
  fi
  wait_for "the sentinel did not answer on 127.0.0.1:$port" answers_ping "$port"
}

# Each sentinel sees enough peers for quorum and the failover vote, and every replica, none down.
sentinels_agree() {
  local p replicas want=$((${#DATA_PORTS[@]} - 1))
  for p in "${SENTINEL_PORTS[@]}"; do
    [[ "$(query "$p" SENTINEL ckquorum "$MASTER" 2>/dev/null | head -n 1)" == +OK* ]] || return 1
    replicas="$(query "$p" SENTINEL replicas "$MASTER" 2>/dev/null)" || return 1
    [[ "$(head -n 1 <<<"$replicas")" == "*$want" ]] || return 1
    grep -qE 's_down|o_down|disconnected' <<<"$replicas" && return 1
  done
  return 0
}

# Every replica has finished its sync with the primary.
replicas_in_sync() {
  local primary port info
  primary="$(current_primary)" || return 1
  for port in "${DATA_PORTS[@]}"; do
    [[ "$port" == "${primary#* }" ]] && continue
    info="$(query "$port" INFO replication 2>/dev/null)" || return 1
    grep -q '^master_link_status:up' <<<"$info" || return 1
  done
}

whole() { sentinels_agree && replicas_in_sync; }

all_ours_running() {
  local p
  for p in "${DATA_PORTS[@]}" "${SENTINEL_PORTS[@]}"; do our_pid "$p" >/dev/null || return 1; done
}

start() {
  command -v redis-server >/dev/null || die "redis-server not found (Debian: apt-get install -y redis-server)"
  ((${#DATA_PORTS[@]} >= 2)) || die "HERALD_SENTINEL_DATA_PORTS needs a primary and at least one replica"
  if all_ours_running; then
    wait_for "the sentinel set is not whole" whole
    sentinel_url
    return 0
  fi
  local p
  for p in "${DATA_PORTS[@]}" "${SENTINEL_PORTS[@]}"; do
    if answers_ping "$p" && ! our_pid "$p" >/dev/null; then
      die "port $p already answers PING but is not ours; set HERALD_SENTINEL_DATA_PORTS / HERALD_SENTINEL_PORTS"
    fi
  done
  stop # whatever is left of an earlier, partial start
  mkdir -p "$STATE"
  local primary="${DATA_PORTS[0]}"
  start_data_node "$primary"
  for p in "${DATA_PORTS[@]:1}"; do start_data_node "$p" 127.0.0.1 "$primary"; done
  for p in "${SENTINEL_PORTS[@]}"; do start_sentinel "$p" "$primary"; done
  wait_for "the sentinels did not agree on the primary and its replicas" whole
  sentinel_url
}

# Makes every data node but the current primary a replica of it: one a test killed is restarted
# as one, and a demoted primary that still calls itself primary (the sentinels reconfigure it
# only after their next INFO, up to 10 s later) is told so. Then waits until the sentinels see
# the set whole again.
restore() {
  local p host port info
  for p in "${SENTINEL_PORTS[@]}"; do our_pid "$p" >/dev/null || die "sentinel $p is not running; run start"; done
  wait_for "no sentinel names a running primary" primary_is_up
  read -r host port <<<"$(current_primary)"
  for p in "${DATA_PORTS[@]}"; do
    [[ "$p" == "$port" ]] && continue
    if ! our_pid "$p" >/dev/null; then
      start_data_node "$p" "$host" "$port"
    elif info="$(query "$p" INFO replication)" && grep -q '^role:master' <<<"$info"; then
      query "$p" REPLICAOF "$host" "$port" >/dev/null
    fi
  done
  wait_for "the sentinel set is not whole again" whole
  sentinel_url
}

primary_is_up() {
  local primary
  primary="$(current_primary)" || return 1
  answers_ping "${primary#* }"
}

print_primary() {
  local primary pid
  primary="$(current_primary)" || die "no sentinel answers"
  pid="$(our_pid "${primary#* }")" || die "the primary ${primary} is not running"
  echo "$primary $pid"
}

print_replicas() {
  local primary p pid
  primary="$(current_primary)" || die "no sentinel answers"
  for p in "${DATA_PORTS[@]}"; do
    [[ "$p" == "${primary#* }" ]] && continue
    pid="$(our_pid "$p")" && echo "127.0.0.1 $p $pid"
  done
  return 0
}

stop() {
  local p pid deadline
  # Sentinels first, so that stopping the primary starts no failover.
  for p in "${SENTINEL_PORTS[@]}" "${DATA_PORTS[@]}"; do
    pid="$(our_pid "$p")" || continue
    kill -TERM "$pid"
    deadline=$((SECONDS + WAIT_SECONDS))
    while kill -0 "$pid" 2>/dev/null; do
      if ((SECONDS > deadline)); then kill -KILL "$pid" 2>/dev/null || true; break; fi
      sleep 0.1
    done
  done
  rm -rf "$STATE"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if all_ours_running && whole; then echo "running: $(sentinel_url) primary $(current_primary)"; else echo "stopped or not whole"; exit 1; fi ;;
  primary) print_primary ;;
  replicas) print_replicas ;;
  restore) restore ;;
  *) die "usage: $0 start|stop|status|primary|replicas|restore" ;;
esac
