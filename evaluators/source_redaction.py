"""Redaction at source (LLMWATCH_REDACT_AT_SOURCE): producers redact events before they publish them.

With it on, no raw PII reaches Kafka: the publisher (inference/publisher.py, shared by the gateway, the SDK and any
ingest service) passes each InferenceEvent and Feedback through `SourceRedactor` first. The PII scan the score
agent would run on the raw texts runs here instead, and its findings travel with the event
(`InferenceEvent.redacted_at_source`: entity types with counts, the leak flag, whether the phone scan was partial).
The placeholders in the redacted text (`<EMAIL_ADDRESS>`) keep the types, but not the values, and a leak is a
value in the response that the prompt did not hold: only the raw texts can tell, so it is decided here. The score
agent takes the findings as the event's PII scores; windows, the judge and alerts count them as ever.

Same detector, same redaction, same fields as the sink's redaction (evaluators/pii.py, evaluators/redaction.py):
a text redacted here is what the table would have stored.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

from llmwatch.schemas import Feedback, InferenceEvent, PiiFindings

from .pii import PiiEvaluator
from .pii.detector import Entity, detector_from
from .pii.leak import leaks
from .pii.sinks import redact_feedback
from .redaction import redact_event_texts

log = logging.getLogger(__name__)

#: The text that replaces a field that could not be redacted: never the raw text.
UNREDACTABLE = "<REDACTION_FAILED>"


def _counts(entities: Sequence[Entity]) -> dict[str, int]:
    return dict(sorted(Counter(e.type for e in entities).items()))


class SourceRedactor:
    """Redacts events and feedback the way the sink would, and keeps the PII findings of the raw texts."""

    def __init__(self, evaluator: PiiEvaluator) -> None:
        if evaluator.redactor is None:
            raise ValueError("redaction at source needs a PiiEvaluator that redacts")
        self.evaluator = evaluator
        self.scanner = f"{PiiEvaluator.id}@{PiiEvaluator.version}"

    @classmethod
    def from_settings(cls, settings: Any) -> SourceRedactor:
        return cls(PiiEvaluator(detector_from(settings), redact=True))  # the worker's detector, same settings

    def _redact(self, text: str) -> str:
        assert self.evaluator.redactor is not None
        return self.evaluator.redactor.redact(text, self.evaluator.detector.scan(text).spans())

    def event(self, ev: InferenceEvent) -> InferenceEvent:
        """The event as it may be published. Already redacted ones pass unchanged; one that cannot be redacted
        (a bug in a recognizer) is published with every free-text field replaced by UNREDACTABLE."""
        if ev.redacted_at_source is not None:
            return ev
        try:
            detector, redactor = self.evaluator.detector, self.evaluator.redactor
            assert redactor is not None
            in_prompt, in_response = detector.scan(ev.prompt), detector.scan(ev.response)
            findings = PiiFindings(
                prompt=_counts(in_prompt.entities),
                response=_counts(in_response.entities),
                leak=leaks(ev.prompt, in_prompt.entities, in_response.entities),
                partial=in_prompt.partial or in_response.partial,
                scanner=self.scanner,
            )
            out = redact_event_texts(
                ev,
                self._redact,
                prompt=redactor.redact(ev.prompt, in_prompt.spans()),
                response=redactor.redact(ev.response, in_response.spans()),
            )
        except Exception as e:  # never publish what could not be redacted
            log.warning(
                "event %s: redaction at source failed (%s); its texts are withheld", ev.event_id, type(e).__name__
            )
            return self.withheld(ev)  # type: ignore[return-value]
        return out.model_copy(update={"redacted_at_source": findings})

    def feedback(self, fb: Feedback) -> Feedback:
        """Feedback with its free text (comment, user id) redacted, as the `feedback` table stores it."""
        return redact_feedback(fb)

    def withheld(self, payload: InferenceEvent | Feedback) -> InferenceEvent | Feedback:
        """The payload with every free-text field withheld: what is published when redaction failed."""
        if isinstance(payload, Feedback):
            return payload.model_copy(update={"comment": None, "user_id": None})
        findings = PiiFindings(leak=None, scanner=self.scanner, failed=True)
        return redact_event_texts(payload, lambda _: UNREDACTABLE).model_copy(update={"redacted_at_source": findings})


def source_pii_scores(findings: PiiFindings) -> dict[str, Any]:
    """The PII evaluator's outputs for an event redacted at source, from the producer's findings."""
    return {
        "pii_prompt": sorted(findings.prompt),
        "pii_response": sorted(findings.response),
        "pii_leak": None if findings.failed else findings.leak,
        "pii_partial": findings.partial,
    }
