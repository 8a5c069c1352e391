"""Training of the evaluators' learned parts (offline, by hand: `llmwatch eval train`; never at scoring time).

Each trainer reads its third-party set (`evaluators.datasets`), fits on `train`, calibrates and picks its default
threshold on `validation`, and writes the weights file the evaluator loads. `test` is never read here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: evaluator id → module path of its trainer (a `train(embedder, out=None) -> dict` function)
TRAINERS: dict[str, str] = {
    "injection": "llmwatch.evaluators.training.injection",
    "toxicity": "llmwatch.evaluators.training.toxicity",
}

#: the false-positive rate on benign validation rows that default thresholds are chosen for
TARGET_FPR = 0.02
#: injection also keeps each kind of benign text (a validation slice of at least MIN_SLICE_ROWS rows) at or under this
SLICE_TARGET_FPR = 0.05
MIN_SLICE_ROWS = 20


def trainer(evaluator_id: str) -> Callable[..., dict[str, Any]]:
    import importlib

    if evaluator_id not in TRAINERS:
        raise ValueError(f"no trainer for {evaluator_id!r}; trainable: {', '.join(sorted(TRAINERS))}")
    return importlib.import_module(TRAINERS[evaluator_id]).train
