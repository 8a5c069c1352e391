"""`eval.model_sample`: model-backed evaluators score a stable, uniform share of events; the rest say so."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from llmwatch.evaluators.base import EvalItem, Evaluator, EvaluatorSuite, in_model_sample
from llmwatch.evaluators.pii import PiiEvaluator, redact
from llmwatch.sim.events import scenario_events
from llmwatch.streams.scoring import EventScorer


class LengthModel(Evaluator):
    """Stands for an embedding model: scores the response length and records what it was asked to score."""

    id = "toxicity"
    outputs = ("toxicity_prompt", "toxicity_response")
    backend = "length-model"
    uses_model = True

    def __init__(self) -> None:
        self.seen: list[str] = []

    def score_batch(self, items: Sequence[Any]) -> list[dict[str, Any]]:
        self.seen.extend(getattr(it, "event_id", "") for it in items)
        return [{"toxicity_prompt": 0.0, "toxicity_response": min(1.0, len(it.response) / 1000)} for it in items]


def test_the_sample_is_uniform_and_stable() -> None:
    ids = [str(uuid.UUID(int=i * 7919 + 12345, version=4)) for i in range(10_000)]
    events = [type("E", (), {"event_id": i})() for i in ids]
    picked = [in_model_sample(e, 0.3) for e in events]
    assert 0.28 <= sum(picked) / len(picked) <= 0.32
    assert picked == [in_model_sample(e, 0.3) for e in events]  # a replay picks the same events
    assert all(in_model_sample(e, 1.0) for e in events)
    assert in_model_sample(EvalItem(prompt="p"), 0.01)  # offline items have no id: always scored


def test_unsampled_events_carry_null_model_scores_and_still_get_pii() -> None:
    model = LengthModel()
    scorer = EventScorer(EvaluatorSuite([model, PiiEvaluator()], model_sample=0.5), redact)
    events = list(scenario_events("pii-leak", 400, seed=5, rate=None))
    scores = scorer.score(events)
    sampled = [s for s in scores if "toxicity_response" in s.evaluators]
    skipped = [s for s in scores if "toxicity_response" not in s.evaluators]
    assert 150 <= len(sampled) <= 250 and len(sampled) + len(skipped) == 400
    assert sorted(model.seen) == sorted(s.event_id for s in sampled)  # the model never saw the others
    assert all(s.toxicity_response is not None for s in sampled)
    assert all(s.toxicity_response is None and s.toxicity_prompt is None for s in skipped)
    assert all("pii_leak" in s.evaluators and s.pii_leak is not None for s in scores)  # PII: every event
    assert any(s.pii_leak for s in skipped)


def test_light_evaluators_ignore_the_sample() -> None:
    suite = EvaluatorSuite([PiiEvaluator()], model_sample=0.1)
    events = list(scenario_events("steady", 50, seed=1, rate=None))
    assert all(r.get("pii_leak") is not None for r in suite.score_batch(events))


def test_a_suite_uses_a_model_when_any_evaluator_does() -> None:
    # the score agent runs model suites in a thread (the model releases the GIL) and light ones inline
    assert not EvaluatorSuite([PiiEvaluator()]).uses_model
    assert EvaluatorSuite([PiiEvaluator(), LengthModel()]).uses_model
