#!/usr/bin/env bash
# Apache Kafka itself, for checking our promises against the system they are about: Kafka's own
# command-line tools and Java client against our broker, and our services against a real KRaft
# cluster. One script, used the same way by a developer, the tests and CI.
#
#   scripts/apache-kafka.sh fetch
#       Kafka's jars (the pinned version below, with their dependencies) into
#       target/apache-kafka/<version>/libs through Maven. Idempotent; offline once cached.
#   scripts/apache-kafka.sh classpath
#       Prints the classpath (for `java -cp ... Program.java` clients).
#   scripts/apache-kafka.sh tool NAME [ARGS...]
#       Runs one of Kafka's command-line tools by its bin/ name, e.g.
#       `tool kafka-topics.sh --bootstrap-server 127.0.0.1:9092 --list`, with a small heap.
#   scripts/apache-kafka.sh start --nodes N --dir DIR
#       A KRaft cluster of N combined (broker + controller) nodes on free loopback ports; prints
#       the bootstrap list (also written to DIR/bootstrap) once every node serves.
#   scripts/apache-kafka.sh stop --dir DIR        SIGTERM every node, wait for them to exit.
#   scripts/apache-kafka.sh kill NODE --dir DIR   SIGKILL one node (1-based), for failover tests.
#   scripts/apache-kafka.sh restart NODE --dir DIR  start a killed or stopped node again.
#   scripts/apache-kafka.sh leader TOPIC PARTITION --dir DIR   the node id leading a partition.
#
# Environment: KAFKA_VERSION (default below), KAFKA_CACHE (default target/apache-kafka),
# KAFKA_TOOL_HEAP (default 256m), KAFKA_NODE_HEAP (default 512m).
set -euo pipefail

KAFKA_VERSION="${KAFKA_VERSION:-4.1.1}"
# log4j's SLF4J 1.7 binding: Kafka's jars log through SLF4J 1.7 and ship no binding of their own
# (the distribution's libs/ has it); without it the servers would log nothing.
LOG4J_VERSION="2.24.3"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${KAFKA_CACHE:-$ROOT/target/apache-kafka}/$KAFKA_VERSION"
LIBS="$CACHE/libs"

die() {
  echo "apache-kafka.sh: $*" >&2
  exit 2
}

fetch() {
  if [ -f "$LIBS/.complete" ]; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn (Maven) is needed to fetch Apache Kafka's jars"
  command -v java >/dev/null || die "java (17+) is needed to run Apache Kafka"
  mkdir -p "$CACHE"
  cat >"$CACHE/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>seckill-mq</groupId>
  <artifactId>apache-kafka-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
  </dependencies>
</project>
EOF
  rm -rf "$LIBS.partial"
  echo "apache-kafka.sh: fetching Apache Kafka $KAFKA_VERSION's jars through Maven" >&2
  mvn -B -q -f "$CACHE/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$LIBS.partial" >&2 \
    || die "Maven could not fetch Apache Kafka $KAFKA_VERSION"
  # Quiet by default: a tool's own output is what the caller reads; the servers log to files.
  cat >"$LIBS.partial/log4j2.properties" <<'EOF'
status = error
appender.out.type = Console
appender.out.name = STDERR
appender.out.target = SYSTEM_ERR
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = ${sys:kafka.log.level:-WARN}
rootLogger.appenderRef.out.ref = STDERR
EOF
  touch "$LIBS.partial/.complete"
  rm -rf "$LIBS"
  mv "$LIBS.partial" "$LIBS"
}

classpath() {
  fetch
  echo "$LIBS/*"
}

# Each tool's main class, as its bin/ script names it in Kafka 4.1.
main_class() {
  case "$1" in
  kafka-topics.sh) echo org.apache.kafka.tools.TopicCommand ;;
  kafka-console-producer.sh) echo org.apache.kafka.tools.ConsoleProducer ;;
  kafka-console-consumer.sh) echo org.apache.kafka.tools.consumer.ConsoleConsumer ;;
  kafka-consumer-groups.sh) echo org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
  kafka-configs.sh) echo kafka.admin.ConfigCommand ;;
  kafka-producer-perf-test.sh) echo org.apache.kafka.tools.ProducerPerformance ;;
  kafka-consumer-perf-test.sh) echo org.apache.kafka.tools.ConsumerPerformance ;;
  kafka-verifiable-producer.sh) echo org.apache.kafka.tools.VerifiableProducer ;;
  kafka-verifiable-consumer.sh) echo org.apache.kafka.tools.VerifiableConsumer ;;
  kafka-storage.sh) echo kafka.tools.StorageTool ;;
  kafka-get-offsets.sh) echo org.apache.kafka.tools.GetOffsetShell ;;
  kafka-delete-records.sh) echo org.apache.kafka.tools.DeleteRecordsCommand ;;
  kafka-acls.sh) echo org.apache.kafka.tools.AclCommand ;;
  kafka-broker-api-versions.sh) echo org.apache.kafka.tools.BrokerApiVersionsCommand ;;
  kafka-leader-election.sh) echo org.apache.kafka.tools.LeaderElectionCommand ;;
  kafka-log-dirs.sh) echo org.apache.kafka.tools.LogDirsCommand ;;
  kafka-cluster.sh) echo org.apache.kafka.tools.ClusterTool ;;
  kafka-metadata-quorum.sh) echo org.apache.kafka.tools.MetadataQuorumCommand ;;
  kafka-server-start.sh) echo kafka.Kafka ;;
  *) die "unknown tool '$1' (see main_class in $0 for the list)" ;;
  esac
}

tool() {
  [ $# -ge 1 ] || die "usage: tool NAME [ARGS...]"
  local name="$1"
  shift
  local class
  class="$(main_class "$name")"
  fetch
  # Short-lived JVMs on 2 cores: the C1 compiler alone and the serial collector start fastest.
  exec java -Xmx"${KAFKA_TOOL_HEAP:-256m}" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dlog4j2.configurationFile="$LIBS/log4j2.properties" \
    -cp "$LIBS/*" "$class" "$@"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

node_dir() { echo "$DIR/node-$1"; }

# Starts node $1 from its formatted directory, in the background, logging to node-N/server.log.
launch_node() {
  local n="$1" nd
  nd="$(node_dir "$n")"
  [ -f "$nd/server.properties" ] || die "node $n has no server.properties under $DIR"
  (
    cd "$nd"
    # setsid: the node outlives the shell that started it; its pid is its process group.
    setsid java -Xms128m -Xmx"${KAFKA_NODE_HEAP:-512m}" -XX:+UseSerialGC \
      -Dlog4j2.configurationFile="$LIBS/log4j2.properties" -Dkafka.log.level=INFO \
      -cp "$LIBS/*" kafka.Kafka server.properties >server.log 2>&1 </dev/null &
    echo $! >pid
  )
}

wait_started() {
  local n="$1" nd deadline
  nd="$(node_dir "$n")"
  deadline=$((SECONDS + ${KAFKA_START_TIMEOUT:-120}))
  until grep -q "Kafka Server started" "$nd/server.log" 2>/dev/null; do
    if ! kill -0 "$(cat "$nd/pid")" 2>/dev/null; then
      tail -30 "$nd/server.log" >&2
      die "node $n exited while starting (log: $nd/server.log)"
    fi
    [ $SECONDS -lt $deadline ] || die "node $n did not start in time (log: $nd/server.log)"
    sleep 0.3
  done
}

start() {
  local nodes=1
  while [ $# -gt 0 ]; do
    case "$1" in
    --nodes) nodes="$2"; shift 2 ;;
    --dir) DIR="$2"; shift 2 ;;
    *) die "start: unknown argument $1" ;;
    esac
  done
  [ -n "${DIR:-}" ] || die "start needs --dir DIR"
  [[ "$nodes" =~ ^[1-9]$ ]] || die "--nodes must be 1..9"
  fetch
  mkdir -p "$DIR"
  DIR="$(cd "$DIR" && pwd)"
  # Replication as a production cluster of this size would have it: three copies where there
  # are three nodes, and acks=all needing two of them, so one node may die without losing an
  # acknowledged write or refusing new ones.
  local rf=$((nodes < 3 ? nodes : 3))
  local min_isr=$((rf >= 3 ? 2 : 1))
  local voters="" bootstrap="" n
  declare -A bport cport
  for n in $(seq 1 "$nodes"); do
    bport[$n]=$(free_port)
    cport[$n]=$(free_port)
    voters+="${voters:+,}$n@127.0.0.1:${cport[$n]}"
    bootstrap+="${bootstrap:+,}127.0.0.1:${bport[$n]}"
  done
  local cluster_id
  cluster_id="$(java -cp "$LIBS/*" -Dlog4j2.configurationFile="$LIBS/log4j2.properties" \
    kafka.tools.StorageTool random-uuid)"
  for n in $(seq 1 "$nodes"); do
    local nd
    nd="$(node_dir "$n")"
    mkdir -p "$nd"
    cat >"$nd/server.properties" <<EOF
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:${bport[$n]},CONTROLLER://127.0.0.1:${cport[$n]}
advertised.listeners=PLAINTEXT://127.0.0.1:${bport[$n]}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$nd/data
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$min_isr
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$min_isr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$min_isr
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
EOF
    java -cp "$LIBS/*" -Dlog4j2.configurationFile="$LIBS/log4j2.properties" \
      kafka.tools.StorageTool format -t "$cluster_id" -c "$nd/server.properties" \
      --ignore-formatted >"$nd/format.log" 2>&1 \
      || { cat "$nd/format.log" >&2; die "kafka-storage format failed for node $n"; }
  done
  for n in $(seq 1 "$nodes"); do launch_node "$n"; done
  for n in $(seq 1 "$nodes"); do wait_started "$n"; done
  echo "$bootstrap" >"$DIR/bootstrap"
  echo "$nodes" >"$DIR/nodes"
  echo "$bootstrap"
}

signal_node() {
  local sig="$1" n="$2" nd pid
  nd="$(node_dir "$n")"
  [ -f "$nd/pid" ] || die "no node $n under $DIR"
  pid="$(cat "$nd/pid")"
  kill -"$sig" "$pid" 2>/dev/null || true
}

stop() {
  [ -n "${DIR:-}" ] || die "stop needs --dir DIR"
  local n pid
  for n in $(seq 1 "$(cat "$DIR/nodes" 2>/dev/null || echo 0)"); do signal_node TERM "$n"; done
  for n in $(seq 1 "$(cat "$DIR/nodes" 2>/dev/null || echo 0)"); do
    pid="$(cat "$(node_dir "$n")/pid" 2>/dev/null || echo)"
    [ -n "$pid" ] || continue
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
}

leader() {
  local topic="$1" partition="$2"
  local out
  out="$(KAFKA_TOOL_HEAP=128m tool kafka-topics.sh --bootstrap-server "$(cat "$DIR/bootstrap")" \
    --describe --topic "$topic" 2>/dev/null)" || die "cannot describe $topic"
  awk -v p="$partition" '$3 == "Partition:" && $4 == p { for (i = 1; i < NF; i++) if ($i == "Leader:") print $(i + 1) }' \
    <<<"$out"
}

cmd="${1:-}"
[ -n "$cmd" ] || die "usage: $0 fetch|classpath|tool|start|stop|kill|restart|leader ..."
shift
# --dir may come anywhere after the sub-command; the rest keep their order.
args=()
DIR="${KAFKA_CLUSTER_DIR:-}"
if [ "$cmd" != tool ]; then
  while [ $# -gt 0 ]; do
    if [ "$1" = --dir ]; then
      DIR="$2"
      shift 2
    else
      args+=("$1")
      shift
    fi
  done
  set -- "${args[@]+"${args[@]}"}"
fi
case "$cmd" in
fetch) fetch ;;
classpath) classpath ;;
tool) tool "$@" ;;
start) start "$@" ;;
stop) stop ;;
kill) [ $# -eq 1 ] || die "usage: kill NODE --dir DIR"; signal_node KILL "$1" ;;
restart)
  [ $# -eq 1 ] || die "usage: restart NODE --dir DIR"
  fetch
  DIR="$(cd "$DIR" && pwd)"
  : >"$(node_dir "$1")/server.log"
  launch_node "$1"
  wait_started "$1"
  ;;
leader) [ $# -eq 2 ] || die "usage: leader TOPIC PARTITION --dir DIR"; leader "$@" ;;
*) die "unknown command $cmd" ;;
esac
