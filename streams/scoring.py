"""From a batch of InferenceEvents to EvalScores: run the evaluator suite, redact, assemble.

Pure (no Faust, no Kafka): the score agent calls it in a worker thread, tests call it directly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from llmwatch.evaluators.base import SKIPPED, EvaluatorSuite
from llmwatch.schemas import EvalScores, InferenceEvent

Redactor = Callable[[str], str]

_SCORE_FIELDS = set(EvalScores.model_fields) - {"event", "evaluators", "schema_version"}
#: Stored event attribute set when the PII scan of its prompt or response was partial (over the phone budget).
PII_SCAN_ATTRIBUTE = "llmwatch.pii_scan"


class EventScorer:
    """Scores events and returns EvalScores that carry the (redacted) event for storage."""

    def __init__(self, suite: EvaluatorSuite, redactor: Redactor | None) -> None:
        self.suite = suite
        self.redactor = redactor
        self.names = suite.names

    def score(self, events: Sequence[InferenceEvent]) -> list[EvalScores]:
        results = self.suite.score_batch(events) if events else []
        return [self._assemble(ev, res) for ev, res in zip(events, results, strict=True)]

    def score_one_by_one(self, events: Sequence[InferenceEvent]) -> list[EvalScores | Exception]:
        """Fallback after a batch failed: isolate the event(s) that break an evaluator."""
        out: list[EvalScores | Exception] = []
        for ev in events:
            try:
                out.extend(self.score([ev]))
            except Exception as e:
                out.append(e)
        return out

    def _assemble(self, ev: InferenceEvent, result: dict[str, Any]) -> EvalScores:
        stored = self._redacted(ev, result)
        if result.get("pii_partial"):  # analysts must know detection there may have missed a phone number
            stored = stored.model_copy(update={"attributes": {**stored.attributes, PII_SCAN_ATTRIBUTE: "partial"}})
        fields = {k: v for k, v in result.items() if k in _SCORE_FIELDS}
        skipped = result.get(SKIPPED)  # outside the model sample: the row names only what scored it
        names = {k: v for k, v in self.names.items() if k not in skipped} if skipped else self.names
        return EvalScores(
            event_id=ev.event_id,
            ts=ev.ts,
            deployment=ev.deployment,
            model_version=ev.model_version,
            variant=ev.variant,
            experiment=ev.experiment,
            prompt_version=ev.prompt_version,
            status=ev.status,
            ttft_ms=ev.ttft_ms,
            tpot_ms=ev.tpot_ms,
            e2e_ms=ev.e2e_ms,
            input_tokens=ev.input_tokens,
            output_tokens=ev.output_tokens,
            cost_usd=ev.cost_usd,
            evaluators=names,
            event=stored,
            **fields,
        )

    def _redacted(self, ev: InferenceEvent, result: dict[str, Any]) -> InferenceEvent:
        """Every free-text field the event carries to storage, redacted: the texts, the RAG context, the error,
        the attributes, and the user/session ids (hashed by contract, but a producer may send an email; a hex hash
        holds no entity, so redaction leaves it as it is)."""
        if self.redactor is None:
            return ev
        redact = self.redactor
        prompt = result.get("redacted_prompt")
        response = result.get("redacted_response")
        update = {
            "prompt": prompt if prompt is not None else redact(ev.prompt),
            "response": response if response is not None else redact(ev.response),
            "context": [redact(c) for c in ev.context] if ev.context else ev.context,
            "error": redact(ev.error) if ev.error else ev.error,
            "user_id": redact(ev.user_id) if ev.user_id else ev.user_id,
            "session_id": redact(ev.session_id) if ev.session_id else ev.session_id,
            "attributes": {redact(k): redact(v) for k, v in ev.attributes.items()},
        }
        return ev.model_copy(update=update)
