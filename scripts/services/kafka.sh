#!/usr/bin/env bash
# Starts or stops the Apache Kafka broker that Herald's tests use: one KRaft node (broker and
# controller in one JVM), loopback only, a port of its own, data in a fresh folder.
#
#   bash scripts/services/kafka.sh start    # prints the bootstrap address for HERALD_TEST_KAFKA_BROKERS
#   bash scripts/services/kafka.sh stop
#   bash scripts/services/kafka.sh status
#
# Needs only Java (17 or newer) and Maven: the broker's jars come from Maven Central through
# `mvn dependency:copy-dependencies` on a small generated pom, into a git-ignored folder (and
# Maven's own ~/.m2 cache), so a second start on the same machine downloads nothing.
#
# Env: HERALD_KAFKA_PORT (default 19092; the controller listens on the next port),
#      HERALD_KAFKA_VERSION (default 4.1.1), HERALD_KAFKA_HEAP (default 512m).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PORT="${HERALD_KAFKA_PORT:-19092}"
CONTROLLER_PORT=$((PORT + 1))
VERSION="${HERALD_KAFKA_VERSION:-4.1.1}"
HEAP="${HERALD_KAFKA_HEAP:-512m}"
# log4j 2's binding for the slf4j 1.7 API the broker logs through (without it the broker is mute
# and "started" cannot be seen).
LOG4J_VERSION=2.24.3
LIBS="$ROOT/.ci/tmp/kafka-libs/$VERSION"
STATE="$ROOT/.ci/tmp/kafka.$PORT"
PIDFILE="$STATE/kafka.pid"
LOGFILE="$STATE/kafka.log"
# seconds to wait for the broker to report itself started (a cold JVM on 2 cores takes ~10 s)
START_WAIT_SECONDS=90
# seconds a clean shutdown may take before the broker is killed
STOP_WAIT_SECONDS=30

die() { echo "kafka.sh: $*" >&2; exit 1; }
say() { echo "kafka.sh: $*" >&2; }

our_pid() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid
  pid="$(cat "$PIDFILE")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

port_open() { { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null && exec 3<&- 3>&-; }

fetch_jars() {
  [[ -f "$LIBS/.complete" ]] && return 0
  command -v mvn >/dev/null || die "mvn not found (Debian: apt-get install -y maven)"
  command -v java >/dev/null || die "java not found (Debian: apt-get install -y openjdk-17-jre-headless)"
  say "fetching Apache Kafka $VERSION jars from Maven Central (once)"
  local work
  work="$(mktemp -d)"
  cat >"$work/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>herald.services</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
  rm -rf "$LIBS"
  mkdir -p "$LIBS"
  if ! mvn -B -q -f "$work/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$LIBS" >"$work/mvn.log" 2>&1; then
    tail -n 40 "$work/mvn.log" >&2
    rm -rf "$work"
    die "mvn could not fetch the Kafka jars"
  fi
  rm -rf "$work"
  touch "$LIBS/.complete"
}

write_config() {
  mkdir -p "$STATE/data"
  cat >"$STATE/server.properties" <<EOF
# One node that is both broker and controller (KRaft, no ZooKeeper), for tests only.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$STATE/data
num.partitions=1
# A single node cannot replicate: internal topics get one replica.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Tests join and leave groups often: do not wait 3 s for more members before the first rebalance.
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
num.network.threads=2
num.io.threads=4
log.retention.hours=1
EOF
  cat >"$STATE/log4j2.properties" <<EOF
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.out.ref = out
# The "Kafka Server started" line this script waits for.
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = info
EOF
}

# The jars as a wildcard classpath (expanded by java, not the shell); a small fixed heap keeps
# the broker light beside the tests on a 2-core machine.
JAVA=(java "-Xms$HEAP" "-Xmx$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
  "-Dlog4j2.configurationFile=$STATE/log4j2.properties" -cp "$LIBS/*")

start() {
  if our_pid >/dev/null; then
    echo "127.0.0.1:$PORT"
    return 0
  fi
  if port_open "$PORT" || port_open "$CONTROLLER_PORT"; then
    die "port $PORT or $CONTROLLER_PORT is in use by something else; set HERALD_KAFKA_PORT"
  fi
  fetch_jars
  rm -rf "$STATE"
  write_config
  local cluster_id
  cluster_id="$("${JAVA[@]}" kafka.tools.StorageTool random-uuid 2>>"$LOGFILE")" \
    || die "could not make a cluster id: $(tail -n 20 "$LOGFILE")"
  "${JAVA[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$STATE/server.properties" \
    >>"$LOGFILE" 2>&1 || die "formatting the KRaft storage failed: $(tail -n 20 "$LOGFILE")"
  # setsid: the broker outlives this script and is not hit by a Ctrl-C meant for the caller.
  setsid "${JAVA[@]}" kafka.Kafka "$STATE/server.properties" >>"$LOGFILE" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$PIDFILE"
  local deadline=$((SECONDS + START_WAIT_SECONDS))
  until grep -q 'Kafka Server started' "$LOGFILE" && port_open "$PORT"; do
    kill -0 "$pid" 2>/dev/null || die "the broker exited during start: $(tail -n 30 "$LOGFILE")"
    if ((SECONDS > deadline)); then
      kill -KILL "$pid" 2>/dev/null || true
      die "the broker did not start within ${START_WAIT_SECONDS}s: $(tail -n 30 "$LOGFILE")"
    fi
    sleep 0.2
  done
  echo "127.0.0.1:$PORT"
}

stop() {
  local pid
  if pid="$(our_pid)"; then
    # SIGTERM runs the broker's shutdown hook: a controlled shutdown that closes the logs cleanly.
    kill -TERM "$pid"
    local deadline=$((SECONDS + STOP_WAIT_SECONDS))
    while kill -0 "$pid" 2>/dev/null; do
      if ((SECONDS > deadline)); then
        say "the broker did not stop within ${STOP_WAIT_SECONDS}s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
        break
      fi
      sleep 0.2
    done
  fi
  rm -rf "$STATE"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status)
    if our_pid >/dev/null && port_open "$PORT"; then echo "running: 127.0.0.1:$PORT"; else echo "stopped"; exit 1; fi
    ;;
  *) die "usage: $0 start|stop|status" ;;
esac
