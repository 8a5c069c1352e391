#!/usr/bin/env bash
# Runs the end-to-end demo on the embedded defaults (local Kafka, chDB), then leaves a report.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 DO_NOT_TRACK=1 TOKENIZERS_PARALLELISM=false
exec python3 -m llmwatch demo "$@"
