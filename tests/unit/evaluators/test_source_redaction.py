"""Redaction at source: what a producer publishes holds no raw PII, and its findings give the score agent the same
PII scores the raw texts would have (a leak cannot be told from placeholders)."""

from __future__ import annotations

import pytest

from llmwatch.evaluators.base import EvaluatorSuite
from llmwatch.evaluators.pii import PiiEvaluator
from llmwatch.evaluators.source_redaction import UNREDACTABLE, SourceRedactor
from llmwatch.schemas import Feedback, InferenceEvent, PiiFindings
from llmwatch.settings import Settings
from llmwatch.streams.scoring import REDACTION_ATTRIBUTE, EventScorer

EMAIL, OTHER, PHONE, CARD = "jane.smith@gmail.com", "bob.jones@yahoo.com", "+1 212-555-0147", "4111 1111 1111 1111"


@pytest.fixture(scope="module")
def redactor() -> SourceRedactor:
    return SourceRedactor.from_settings(Settings())


def event(**kw: object) -> InferenceEvent:
    fields: dict[str, object] = {
        "deployment": "d",
        "model": "m",
        "prompt": f"Mail me at {EMAIL} or call {PHONE}.",
        "response": f"I will write to {OTHER} and to {EMAIL}.",
        "context": [f"card {CARD}"],
        "error": f"declined for {EMAIL}",
        "user_id": EMAIL,
        "attributes": {"customer": OTHER, "tier": "gold"},
    }
    return InferenceEvent(**(fields | kw))  # type: ignore[arg-type]


def test_every_free_text_field_is_redacted_and_the_findings_kept(redactor: SourceRedactor) -> None:
    raw = event()
    out = redactor.event(raw)
    text = out.model_dump_json()
    for value in (EMAIL, OTHER, PHONE, CARD, CARD.replace(" ", "")):
        assert value not in text
    assert out.prompt == "Mail me at <EMAIL_ADDRESS> or call <PHONE_NUMBER>."
    assert out.response == "I will write to <EMAIL_ADDRESS> and to <EMAIL_ADDRESS>."
    assert out.context == ["card <CREDIT_CARD>"] and out.error == "declined for <EMAIL_ADDRESS>"
    assert out.user_id == "<EMAIL_ADDRESS>" and out.attributes == {"customer": "<EMAIL_ADDRESS>", "tier": "gold"}
    assert out.redacted_at_source == PiiFindings(
        prompt={"EMAIL_ADDRESS": 1, "PHONE_NUMBER": 1},
        response={"EMAIL_ADDRESS": 2},
        leak=True,  # bob's address is in the response, not in the prompt
        scanner="pii@1",
    )
    assert (out.event_id, out.ttft_ms, out.deployment) == (raw.event_id, raw.ttft_ms, raw.deployment)
    assert redactor.event(out) is out  # already redacted: unchanged


def test_no_leak_when_the_response_repeats_the_prompt(redactor: SourceRedactor) -> None:
    out = redactor.event(event(response=f"Noted: {EMAIL}, {PHONE.replace('-', ' ')}."))
    assert out.redacted_at_source is not None and out.redacted_at_source.leak is False


def test_a_failure_withholds_the_texts_never_publishes_them(redactor: SourceRedactor) -> None:
    broken = SourceRedactor(redactor.evaluator)
    broken.evaluator = PiiEvaluator(redactor.evaluator.detector, redact=True)
    broken.evaluator.detector = None  # type: ignore[assignment]  # scan() raises AttributeError
    out = broken.event(event())
    assert EMAIL not in out.model_dump_json() and out.prompt == out.response == UNREDACTABLE
    assert out.redacted_at_source is not None and out.redacted_at_source.failed
    fb = redactor.withheld(Feedback(event_id="e", deployment="d", thumbs=1, comment=EMAIL, user_id=EMAIL))
    assert isinstance(fb, Feedback) and fb.comment is None and fb.user_id is None


def test_feedback_is_redacted(redactor: SourceRedactor) -> None:
    out = redactor.feedback(Feedback(event_id="e", deployment="d", thumbs=-1, comment=f"call {PHONE}", user_id=EMAIL))
    assert out.comment == "call <PHONE_NUMBER>" and out.user_id == "<EMAIL_ADDRESS>"


def test_the_score_agent_counts_the_raw_texts_pii_from_the_findings(redactor: SourceRedactor) -> None:
    """The same scores whether the event came raw (redacted at the sink) or redacted at source; scanning the
    placeholders alone would have missed the leak."""
    suite = EvaluatorSuite([PiiEvaluator(redactor.evaluator.detector, redact=True)])
    raw = event()
    [at_sink] = EventScorer(suite, lambda t: t).score([raw])
    [at_source] = EventScorer(suite, lambda t: t).score([redactor.event(raw)])
    fields = ("pii_prompt", "pii_response", "pii_leak")
    assert [getattr(at_source, f) for f in fields] == [getattr(at_sink, f) for f in fields]
    assert at_source.pii_leak is True and at_source.pii_response == ["EMAIL_ADDRESS"]
    assert at_source.event is not None and at_source.event.attributes[REDACTION_ATTRIBUTE] == "source"
    assert at_source.event.response == "I will write to <EMAIL_ADDRESS> and to <EMAIL_ADDRESS>."
    placeholders_only = redactor.event(raw).model_copy(update={"redacted_at_source": None})
    [blind] = EventScorer(suite, lambda t: t).score([placeholders_only])
    assert blind.pii_leak is False  # why the findings travel with the event
