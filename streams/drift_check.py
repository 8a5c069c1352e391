"""Drift of each closing window's prompts against a reference window of the same deployment.

The reference is the first window of the deployment's baseline variant that has enough prompts (a fixed
baseline period, chosen once per worker process); every later window, of any version, is compared with it.
Only a reservoir sample of each window's prompts is embedded (WindowConfig.drift_sample, 128 by default):
MMD² on a sample estimates the same distance, and embedding every prompt would cost the stream its throughput.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from llmwatch.settings import Settings

from .windowing import Closing

log = logging.getLogger(__name__)

#: fewer prompts than this in a window: no drift score (too noisy to say anything)
MIN_PROMPTS = 20

DriftFn = Callable[[Closing], tuple[float | None, float | None]]


def make_drift_fn(settings: Settings) -> DriftFn:
    from llmwatch.evaluators.drift import DriftDetector
    from llmwatch.evaluators.embeddings import get_embedder

    embedder = get_embedder(settings)
    embedder.encode(["drift warm-up: the model's first run is slow"], use_cache=False)
    references: dict[str, DriftDetector] = {}
    lock = threading.Lock()

    def drift(c: Closing) -> tuple[float | None, float | None]:
        prompts = c.stats.prompts
        if len(prompts) < MIN_PROMPTS:
            return None, None
        vectors = embedder.encode(prompts)
        with lock:
            ref = references.get(c.key.deployment)
            if ref is None:
                if c.key.variant != "baseline":
                    return None, None
                references[c.key.deployment] = DriftDetector(vectors, prompts, permutations=100)
                log.info("drift reference for %s: window %s (%d prompts)", c.key.deployment, c.start, len(prompts))
                return 0.0, 1.0
        result = ref.compare(vectors, prompts)
        return result.score, result.p_value

    return drift
