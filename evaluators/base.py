"""The one interface every evaluator implements, and the suite that runs several.

An evaluator is constructed once (it loads its model then) and scores batches:
`score_batch(items) -> list[dict]`, one dict per item whose keys are EvalScores field names
(`toxicity_response`, `pii_leak`, …). It never downloads anything and never imports Kafka or
ClickHouse, so the same object serves the stream, `llmwatch score` and offline re-scoring.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable


@runtime_checkable
class Sample(Protocol):
    """What evaluators read; InferenceEvent and EvalItem both fit."""

    @property
    def prompt(self) -> str: ...
    @property
    def response(self) -> str: ...
    @property
    def context(self) -> list[str] | None: ...


@dataclass(frozen=True)
class EvalItem:
    """A prompt/response pair for offline scoring (`llmwatch score`, tests, benchmarks)."""

    prompt: str
    response: str = ""
    context: list[str] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


class Evaluator:
    """Base class: subclasses set `id`, `version`, `outputs`, and `backend` (per instance)."""

    #: Stable id, stored with every score as "id@version/backend".
    id: ClassVar[str]
    version: ClassVar[int] = 1
    #: EvalScores field names this evaluator fills.
    outputs: ClassVar[tuple[str, ...]]

    backend: str = "unknown"

    @property
    def name(self) -> str:
        return f"{self.id}@{self.version}/{self.backend}"

    def score_batch(self, items: Sequence[Sample]) -> list[dict[str, Any]]:
        raise NotImplementedError


#: id → factory(settings) building the evaluator; filled by each evaluator module's `register`.
REGISTRY: dict[str, Callable[..., Evaluator]] = {}


def register(evaluator_id: str) -> Callable[[Callable[..., Evaluator]], Callable[..., Evaluator]]:
    def deco(factory: Callable[..., Evaluator]) -> Callable[..., Evaluator]:
        REGISTRY[evaluator_id] = factory
        return factory

    return deco


#: evaluator id → module whose import registers it (imported lazily: models load only when asked for)
MODULES: dict[str, str] = {
    "toxicity": "llmwatch.evaluators.toxicity",
    "pii": "llmwatch.evaluators.pii",
    "injection": "llmwatch.evaluators.injection",
    "hallucination": "llmwatch.evaluators.hallucination",
}


def build_evaluator(evaluator_id: str, settings: Any) -> Evaluator:
    """Import the evaluator's module and build it from settings (`settings.eval`)."""
    import importlib

    if evaluator_id not in MODULES:
        raise ValueError(f"unknown evaluator {evaluator_id!r}; known: {', '.join(sorted(MODULES))}")
    importlib.import_module(MODULES[evaluator_id])
    return REGISTRY[evaluator_id](settings)


def load_suite(settings: Any, ids: Sequence[str] | None = None) -> EvaluatorSuite:
    """The evaluators named in `ids` (default: settings.eval.enabled), built once."""
    return EvaluatorSuite([build_evaluator(i, settings) for i in (ids or settings.eval.enabled)])


class EvaluatorSuite:
    """Runs several evaluators over one batch and merges their outputs per item."""

    def __init__(self, evaluators: Sequence[Evaluator]) -> None:
        self.evaluators = list(evaluators)

    @property
    def names(self) -> dict[str, str]:
        """score field → "id@version/backend" of the evaluator that fills it."""
        return {out: ev.name for ev in self.evaluators for out in ev.outputs}

    def score_batch(self, items: Sequence[Sample]) -> list[dict[str, Any]]:
        merged: list[dict[str, Any]] = [{} for _ in items]
        for ev in self.evaluators:
            results = ev.score_batch(items)
            if len(results) != len(items):
                raise RuntimeError(f"{ev.name} returned {len(results)} results for {len(items)} items")
            for row, result in zip(merged, results, strict=True):
                row.update(result)
        return merged
