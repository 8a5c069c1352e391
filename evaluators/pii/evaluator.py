"""The `pii` evaluator: entity types in prompt and response, the leak flag, and the redacted texts to store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..base import Evaluator, Sample, register
from ..redaction import Redactor
from .detector import PiiDetector, detector_from
from .leak import entity_types, leaks


class PiiEvaluator(Evaluator):
    """Entity types in prompt and response, the leak flag, and redacted texts (when redaction is on).

    Its result also holds `pii_partial` (not a score: the scorer marks the stored event with it), True when a
    text had more phone-like digits than the scan budget."""

    id = "pii"
    version = 1
    outputs = ("pii_prompt", "pii_response", "pii_leak", "redacted_prompt", "redacted_response")

    def __init__(self, detector: PiiDetector | None = None, *, redact: bool = True) -> None:
        self.detector = detector or PiiDetector()
        self.redactor = Redactor() if redact else None
        self.backend = self.detector.backend

    def score_batch(self, items: Sequence[Sample]) -> list[dict[str, Any]]:
        return [self.score(item.prompt, item.response or "") for item in items]

    def score(self, prompt: str, response: str) -> dict[str, Any]:
        in_prompt, in_response = self.detector.scan(prompt), self.detector.scan(response)
        return {
            "pii_prompt": entity_types(in_prompt.entities),
            "pii_response": entity_types(in_response.entities),
            "pii_leak": leaks(prompt, in_prompt.entities, in_response.entities),
            "redacted_prompt": self.redactor.redact(prompt, in_prompt.spans()) if self.redactor else None,
            "redacted_response": self.redactor.redact(response, in_response.spans()) if self.redactor else None,
            "pii_partial": in_prompt.partial or in_response.partial,
        }


@register("pii")
def build(settings: Any) -> PiiEvaluator:
    return PiiEvaluator(detector_from(settings), redact=settings.eval.redact)
