#!/usr/bin/env bash
# Runs the end-to-end demo on the embedded defaults (local Kafka, chDB), then leaves a report.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 DO_NOT_TRACK=1 TOKENIZERS_PARALLELISM=false
# The alerter pages through a real Alertmanager when one is built (from its Go module, once, ~2 min; cached in
# ~/.cache/llmwatch/go-tools). Without Go the demo runs without it and its report says so.
if command -v go >/dev/null 2>&1 || [[ -x /usr/local/go/bin/go ]]; then
  python3 -m llmwatch.harness.gotools alertmanager >/dev/null || echo "no Alertmanager for the demo (build failed)" >&2
fi
exec python3 -m llmwatch demo "$@"
