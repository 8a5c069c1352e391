"""The one interface every evaluator implements, and the suite that runs several.

An evaluator is constructed once (it loads its model then) and scores batches:
`score_batch(items) -> list[dict]`, one dict per item whose keys are EvalScores field names
(`toxicity_response`, `pii_leak`, …). It never downloads anything and never imports Kafka or
ClickHouse, so the same object serves the stream, `llmwatch score` and offline re-scoring.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
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
    #: runs a model (embeddings, NLI, detoxify): `eval.model_sample` may score it on a sample of events only
    uses_model: bool = False

    @property
    def name(self) -> str:
        return f"{self.id}@{self.version}/{self.backend}"

    def score_batch(self, items: Sequence[Sample]) -> list[dict[str, Any]]:
        raise NotImplementedError


def weights_digest(*paths: Path) -> str:
    """First 8 hex digits of the sha256 over the files' bytes: the part of an evaluator's name that changes with
    a retrain, so scores stored before and after one (same `id@version`) can be told apart in ClickHouse."""
    h = hashlib.sha256()
    for path in paths:
        h.update(path.read_bytes())
    return h.hexdigest()[:8]


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
    evaluators = [build_evaluator(i, settings) for i in (ids or settings.eval.enabled)]
    return EvaluatorSuite(evaluators, model_sample=settings.eval.model_sample)


class EvaluatorSuite:
    """Runs several evaluators over one batch and merges their outputs per item.

    With `model_sample` < 1, evaluators that run a model score only the items `in_model_sample` picks; the
    others get None for those outputs and list them under SKIPPED. A uniform sample keeps every rate unbiased
    (windows and the canary judge count n per rate, and None is "did not apply"); what it costs is variance.
    """

    def __init__(self, evaluators: Sequence[Evaluator], model_sample: float = 1.0) -> None:
        self.evaluators = list(evaluators)
        self.model_sample = model_sample

    @property
    def names(self) -> dict[str, str]:
        """score field → "id@version/backend" of the evaluator that fills it."""
        return {out: ev.name for ev in self.evaluators for out in ev.outputs}

    @property
    def uses_model(self) -> bool:
        return any(ev.uses_model for ev in self.evaluators)

    def score_batch(self, items: Sequence[Sample]) -> list[dict[str, Any]]:
        merged: list[dict[str, Any]] = [{} for _ in items]
        picked = [in_model_sample(it, self.model_sample) for it in items]
        for ev in self.evaluators:
            rows = [i for i in range(len(items)) if picked[i] or not ev.uses_model]
            results = ev.score_batch([items[i] for i in rows]) if rows else []
            if len(results) != len(rows):
                raise RuntimeError(f"{ev.name} returned {len(results)} results for {len(rows)} items")
            for i, result in zip(rows, results, strict=True):
                merged[i].update(result)
            for i in (i for i in range(len(items)) if ev.uses_model and not picked[i]):
                merged[i].update(dict.fromkeys(ev.outputs))
                merged[i].setdefault(SKIPPED, []).extend(ev.outputs)
        return merged


#: result key listing the outputs an item was not scored for (outside the model sample)
SKIPPED = "_skipped"


def in_model_sample(item: Sample, share: float) -> bool:
    """Is the item in the model sample: a hash of its event_id below `share` (items without an id: always)."""
    if share >= 1.0:
        return True
    event_id = getattr(item, "event_id", None)
    if not event_id:
        return True
    digest = hashlib.blake2b(str(event_id).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < share * 2**64
