#!/usr/bin/env bash
# /buy on this project's broker beside the same API on Apache Kafka, in one run on one machine.
#
# Both brokers run as processes of their own on loopback, and the same `order-bench ingest`
# (the real API, acks=all, idempotent producer, 6 partitions) queues its buys on each in turn:
#   ours    the broker binary, flush fsync (an ack means on disk)
#   kafka   a one-node Apache Kafka 4.1.1 (scripts/apache-kafka.sh), its default flush (an ack
#           means in the page cache: Kafka leaves syncing to the OS and to replication)
#   kafka+  the same node with the topic's flush.messages=1 (Kafka syncs every message before
#           its ack: the durability ours gives)
# For each: /buy req/s, p99 and the share of the bare handler (order-bench prints the bare
# handler from the same run), and the broker process's CPU per accepted buy and resident memory.
#
#   loadtest/kafka-side-by-side.sh                 # 100,000 buys per run, 50 connections, 2 rounds
#   REQUESTS=50000 ROUNDS=3 loadtest/kafka-side-by-side.sh
#
# Needs PostgreSQL as order-bench does (DATABASE_ADMIN_URL) and Java + Maven for Kafka.
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS="${REQUESTS:-100000}"
CONNECTIONS="${CONNECTIONS:-50}"
ROUNDS="${ROUNDS:-2}"

cargo build --release -q -p loadtest --bin order-bench -p broker --bin broker
bench=target/release/order-bench

dir="$(mktemp -d)"
ours_pid=""
cleanup() {
  [ -n "$ours_pid" ] && kill "$ours_pid" 2>/dev/null && wait "$ours_pid" 2>/dev/null
  bash scripts/apache-kafka.sh stop --dir "$dir/kafka" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
port="$(free_port)"
target/release/broker --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$(free_port)" \
  --data-dir "$dir/ours" --flush fsync >"$dir/ours.log" 2>&1 &
ours_pid=$!
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
ours="127.0.0.1:$port"
kafka="$(bash scripts/apache-kafka.sh start --nodes 1 --dir "$dir/kafka")"
kafka_pid="$(cat "$dir/kafka/node-1/pid")"

# CPU seconds (user + system) a process has used, from /proc/PID/stat (USER_HZ is 100).
cpu() { awk '{ sub(/^.*\) /, ""); printf "%.2f\n", ($12 + $13) / 100 }' "/proc/$1/stat"; }
rss_mib() { awk '/^VmRSS/ { printf "%.0f\n", $2 / 1024 }' "/proc/$1/status"; }

run() {
  local label="$1" pid="$2"
  shift 2
  local before after out
  before="$(cpu "$pid")"
  out="$("$bench" ingest --requests "$REQUESTS" --connections "$CONNECTIONS" "$@" 2>&1)" || {
    echo "$out" >&2
    return 1
  }
  after="$(cpu "$pid")"
  local line
  line="$(grep 'POST /buy' <<<"$out")"
  local accepted=$((REQUESTS - $(sed -E 's/.*errors ([0-9]+).*/\1/' <<<"$line")))
  printf '%-7s %s\n' "$label" "$(grep 'bare axum' <<<"$out" | sed 's/^/        /' | sed 's/^ *//')"
  printf '%-7s %s\n' "" "$line"
  printf '%-7s broker CPU %.1f us per accepted buy, broker RSS %s MiB\n' "" \
    "$(awk -v a="$after" -v b="$before" -v n="$accepted" 'BEGIN { print (a - b) * 1e6 / n }')" \
    "$(rss_mib "$pid")"
}

echo "kafka-side-by-side: $REQUESTS buys per run, $CONNECTIONS connections, $ROUNDS rounds"
echo "ours: $ours (flush fsync); kafka: $kafka (Apache Kafka 4.1.1, one node)"
for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round"
  run ours "$ours_pid" --bootstrap "$ours"
  run kafka "$kafka_pid" --bootstrap "$kafka"
  run kafka+ "$kafka_pid" --bootstrap "$kafka" --topic-config flush.messages=1
done
