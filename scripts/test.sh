#!/usr/bin/env bash
# Runs the whole test suite (unit + integration) against a real local Kafka broker and chDB.
# Starts the broker if none is running and stops it afterwards (only if this script started it).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 DO_NOT_TRACK=1 TOKENIZERS_PARALLELISM=false
llmwatch() { python3 -m llmwatch "$@"; }

started=0
if ! llmwatch kafka status >/dev/null 2>&1; then
  llmwatch kafka up || { echo "could not start the local Kafka broker" >&2; exit 1; }
  started=1
fi
stop_broker() { if [[ $started == 1 ]]; then llmwatch kafka down || true; fi; }
trap stop_broker EXIT INT TERM

ruff check . || exit 1
# promtool, amtool and alertmanager, built from their Go modules the first time (promtool ~12 min on 2 cores) and
# cached under ~/.cache/llmwatch/go-tools: the alerting tests run the real tools (tests/integration/test_alert*.py).
echo "Prometheus tools for the alerting tests (built once from their Go modules, then cached):" >&2
python3 -m llmwatch.harness.gotools promtool amtool alertmanager >&2 || exit 1
python3 -m pytest "$@"
rc=$?
if [[ $rc == 5 ]]; then echo "pytest collected no tests: that is a failure here" >&2; rc=1; fi
exit $rc
