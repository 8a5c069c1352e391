"""From raw event records to encoded EvalScores: decode, run the evaluator suite, redact, assemble, encode.

Pure (no Faust, no Kafka): the score agent runs it in its scoring process (streams/score_process.py) or in
the worker itself, tests call it directly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from llmwatch.evaluators.base import SKIPPED, EvaluatorSuite
from llmwatch.pricing import PriceTable
from llmwatch.schemas import EvalScores, InferenceEvent

from .decode import Decoded, Rejected, decode

log = logging.getLogger(__name__)

Redactor = Callable[[str], str]

_SCORE_FIELDS = set(EvalScores.model_fields) - {"event", "evaluators", "schema_version"}
#: Stored event attribute set when the PII scan of its prompt or response was partial (over the phone budget).
PII_SCAN_ATTRIBUTE = "llmwatch.pii_scan"
#: Stored event attribute set when the producer redacted the texts before publishing (LLMWATCH_REDACT_AT_SOURCE).
REDACTION_ATTRIBUTE = "llmwatch.redaction"


@dataclass(frozen=True)
class Record:
    """A consumed record as scoring needs it: small and picklable, so it can cross to the scoring process."""

    value: bytes | None
    partition: int
    offset: int


#: An event's row for inference_events and its scores' row for eval_scores (`llmwatch.db.tables` order).
StoredRows = tuple[tuple[Any, ...], tuple[Any, ...]]


@dataclass(frozen=True)
class Scored:
    key: bytes
    value: bytes
    rows: StoredRows | None = None  # when the score agent stores what it scored (worker.sink_scores_locally)


@dataclass(frozen=True)
class Failed:
    """A valid event an evaluator could not score: dead-lettered as a processing error."""

    reason: str


Outcome = Scored | Rejected | Failed


def score_records(
    scorer: EventScorer, records: Sequence[Record], *, max_bytes: int, rows: bool = False
) -> list[Outcome]:
    """One outcome per record, in order; never raises for the content of a record. Bad payloads come back
    Rejected (the DLQ reason), the rest are scored as one batch; if the batch fails, one by one, so only the
    event that breaks an evaluator fails. With `rows`, each Scored also carries its table rows, mapped here
    (in the scoring process) rather than decoded again from the scores topic by the worker's sink."""
    outcomes: list[Outcome | None] = [None] * len(records)
    good: list[int] = []
    events: list[InferenceEvent] = []
    for i, record in enumerate(records):
        result = decode(InferenceEvent, record.value, max_bytes=max_bytes)
        if isinstance(result, Decoded):
            good.append(i)
            events.append(result.payload)
        else:
            outcomes[i] = result
    if events:
        scored: list[EvalScores | Exception]
        try:
            scored = list(scorer.score(events))
        except Exception as e:
            log.warning("scoring a batch of %d failed (%s); scoring one by one", len(events), e)
            scored = scorer.score_one_by_one(events)
        for i, s in zip(good, scored, strict=True):
            if isinstance(s, Exception):
                outcomes[i] = Failed(f"evaluator failed: {type(s).__name__}: {s}"[:2000])
                continue
            s.source_partition, s.source_offset = records[i].partition, records[i].offset
            outcomes[i] = Scored(s.window_key.encode(), s.encode(), stored_rows(s) if rows else None)
    assert all(o is not None for o in outcomes)  # every record is either rejected or scored above
    return outcomes  # type: ignore[return-value]


def stored_rows(s: EvalScores) -> StoredRows:
    from llmwatch.db.tables import spec_for

    assert s.event is not None  # EventScorer always embeds the (redacted) event
    return spec_for(InferenceEvent).row_of(s.event), spec_for(EvalScores).row_of(s)


class EventScorer:
    """Scores events and returns EvalScores that carry the (redacted) event for storage."""

    def __init__(self, suite: EvaluatorSuite, redactor: Redactor | None, prices: PriceTable | None = None) -> None:
        self.suite = suite
        self.redactor = redactor
        self.names = suite.names
        self.prices = prices or PriceTable()  # costs events that came with tokens and no cost, whoever wrote them

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
        ev = self.prices.apply(ev)
        if ev.redacted_at_source is not None:  # the producer scanned the raw texts: its findings are the scores
            result = _with_source_findings(ev, result)
        stored = self._redacted(ev, result)
        if ev.redacted_at_source is not None:
            stored = stored.model_copy(update={"attributes": {**stored.attributes, REDACTION_ATTRIBUTE: "source"}})
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
        """Every free-text field the event carries to storage, redacted (evaluators/redaction.py lists them)."""
        if self.redactor is None:
            return ev
        from llmwatch.evaluators.redaction import redact_event_texts

        return redact_event_texts(
            ev, self.redactor, prompt=result.get("redacted_prompt"), response=result.get("redacted_response")
        )


def _with_source_findings(ev: InferenceEvent, result: dict[str, Any]) -> dict[str, Any]:
    """The PII scores of an event redacted at source: the producer's findings on the raw texts, not a scan of the
    placeholders (which keep the types but not the values a leak is decided on). Only where the PII evaluator
    runs here, so the row's evaluators map stays true; its texts are stored as they came (already redacted)."""
    if "pii_prompt" not in result or ev.redacted_at_source is None:
        return result
    from llmwatch.evaluators.source_redaction import source_pii_scores

    return {
        **result,
        **source_pii_scores(ev.redacted_at_source),
        "redacted_prompt": ev.prompt,
        "redacted_response": ev.response,
    }
