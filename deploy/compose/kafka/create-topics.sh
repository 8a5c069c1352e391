#!/bin/sh
# Creates llmwatch's topics on a cluster (brokers run with auto.create.topics.enable=false); re-running is a
# no-op. Mirrors schemas/registry.py (name, partitions, cleanup policy, retention, 8 MiB records):
# tests/unit/test_deploy.py keeps the two in step. Settings come from the same env as every llmwatch role:
#   LLMWATCH_KAFKA (bootstrap), LLMWATCH_PARTITIONS, LLMWATCH_REPLICATION_FACTOR;
#   KAFKA_COMMAND_CONFIG: a client properties file for SASL/SSL clusters (optional).
# Default topic names only: with LLMWATCH_TOPICS__* overrides, create those names instead.
set -eu
BOOTSTRAP="${LLMWATCH_KAFKA:-kafka:9092}"
PARTITIONS="${LLMWATCH_PARTITIONS:-4}"
REPLICATION="${LLMWATCH_REPLICATION_FACTOR:-1}"
KT=/opt/kafka/bin/kafka-topics.sh

kt() {
  if [ -n "${KAFKA_COMMAND_CONFIG:-}" ]; then
    "$KT" --bootstrap-server "$BOOTSTRAP" --command-config "$KAFKA_COMMAND_CONFIG" "$@"
  else
    "$KT" --bootstrap-server "$BOOTSTRAP" "$@"
  fi
}

tries=0
until kt --list >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -ge 90 ]; then echo "Kafka at $BOOTSTRAP did not answer in 3 minutes" >&2; exit 1; fi
  echo "waiting for Kafka at $BOOTSTRAP"
  sleep 2
done

# topic NAME PARTITIONS CLEANUP_POLICY RETENTION_MS ("-": broker default, kept forever when compacted)
topic() {
  if [ "$4" = "-" ]; then
    kt --create --if-not-exists --topic "$1" --partitions "$2" --replication-factor "$REPLICATION" \
      --config cleanup.policy="$3" --config max.message.bytes=8388608
  else
    kt --create --if-not-exists --topic "$1" --partitions "$2" --replication-factor "$REPLICATION" \
      --config cleanup.policy="$3" --config max.message.bytes=8388608 --config retention.ms="$4"
  fi
}

topic llm.inference.events "$PARTITIONS" delete 604800000
topic llm.eval.scores "$PARTITIONS" delete 604800000
topic llm.window.metrics "$PARTITIONS" delete 604800000
topic llm.canary.verdicts "$PARTITIONS" delete 604800000
topic llm.traffic.weights 1 compact -
topic llm.alerts "$PARTITIONS" delete 604800000
topic llm.feedback "$PARTITIONS" delete 604800000
topic llm.control.commands 1 delete 604800000
topic llm.dlq "$PARTITIONS" delete 2419200000
kt --list
