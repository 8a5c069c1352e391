# syntax=docker/dockerfile:1.7
# One image for every llmwatch role: `llmwatch serve` (gateway), `llmwatch worker`, `llmwatch controller`,
# `llmwatch db migrate`, `llmwatch loadgen`. The entry point is the `llmwatch` command; the container's
# command is the subcommand and its options.
#
#   docker build -t llmwatch/llmwatch:0.1.0 .                                    # CPU (default)
#   docker build -t llmwatch/llmwatch:0.1.0-gpu --build-arg VARIANT=gpu .        # + vLLM (CUDA) in-process
#
# CPU: torch from PyTorch's CPU wheel index (a much smaller image); the gateway reaches models through an
# OpenAI-compatible upstream (`--engine openai`, e.g. the vLLM server) or runs the simulated engine.
# GPU: PyPI's torch (a CUDA build that carries its CUDA libraries) and the regular `vllm`, for
# `llmwatch serve --engine vllm --model DIR` on an NVIDIA GPU (the host needs the NVIDIA container toolkit).
# Nothing downloads model weights at run time: HF_HUB_OFFLINE is set; evaluator models ship in PyPI packages.

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm
FROM ${PYTHON_IMAGE}

ARG VARIANT=cpu
ARG EXTRAS=gateway,worker,evaluators
ARG VLLM_VERSION=0.32.0
ARG UV_VERSION=0.13.9
ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    DO_NOT_TRACK=1 \
    VLLM_NO_USAGE_STATS=1 \
    TOKENIZERS_PARALLELISM=false \
    TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS="" \
    LLMWATCH_DATA_DIR=/var/lib/llmwatch \
    LLMWATCH_CACHE_DIR=/var/cache/llmwatch \
    HOME=/home/llmwatch

RUN test "$VARIANT" = cpu || test "$VARIANT" = gpu || { echo "VARIANT must be cpu or gpu" >&2; exit 1; } \
 && python -m pip install --no-cache-dir "uv==${UV_VERSION}"

WORKDIR /opt/llmwatch
# Only what the package is built from (no .git, tests or local state in the image).
COPY pyproject.toml README.md ./
COPY llmwatch ./llmwatch
COPY schemas ./schemas
COPY inference ./inference
COPY evaluators ./evaluators
COPY streams ./streams
COPY sql ./sql
COPY deploy ./deploy

# deploy/python/overrides.txt pins torch to the release vLLM 0.32 pins (the CPU index serves it as 2.13.0+cpu);
# excludes.txt keeps torchvision/torchaudio/torchcodec out: vLLM declares them, but next to this torch they break
# `import transformers` / `import vllm`, and nothing here needs them.
RUN --mount=type=cache,target=/root/.cache/uv \
    set -eux; \
    if [ "$VARIANT" = gpu ]; then \
        uv pip install --system ".[${EXTRAS}]" "vllm==${VLLM_VERSION}" \
            --overrides deploy/python/overrides.txt --excludes deploy/python/excludes.txt; \
    else \
        uv pip install --system ".[${EXTRAS}]" \
            --overrides deploy/python/overrides.txt --excludes deploy/python/excludes.txt \
            --extra-index-url "${TORCH_CPU_INDEX}" --index-strategy unsafe-best-match; \
    fi; \
    llmwatch --version

RUN useradd --system --uid 10001 --create-home --home-dir /home/llmwatch llmwatch \
 && mkdir -p /var/lib/llmwatch /var/cache/llmwatch \
 && chown -R llmwatch:llmwatch /var/lib/llmwatch /var/cache/llmwatch
USER 10001
VOLUME ["/var/lib/llmwatch", "/var/cache/llmwatch"]

# 8000: gateway HTTP (/v1/*, /health, /ready, /metrics); 6066: worker/controller /metrics.
EXPOSE 8000 6066
ENTRYPOINT ["llmwatch"]
CMD ["--help"]
