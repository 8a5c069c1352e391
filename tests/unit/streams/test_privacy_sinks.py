"""What the worker writes where privacy or replay is at stake: dead letters that fit the DLQ topic (whole when they
can be, marked truncated when not), feedback stored with its free text redacted, and events whose PII scan was
partial marked as such."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from llmwatch.schemas import DeadLetter, EvalScores, Feedback, InferenceEvent
from llmwatch.schemas.dlq import DLQ_KEEP_BYTES
from llmwatch.schemas.registry import MAX_MESSAGE_BYTES
from llmwatch.settings import Settings
from llmwatch.streams.context import WorkerContext
from llmwatch.streams.scoring import PII_SCAN_ATTRIBUTE, EventScorer
from llmwatch.streams.sink_agent import _redacted_feedback

EMAIL, CARD = "dmitri.ng1@example.com", "4111 1111 1111 1111"


class _Topic:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def send(self, *, key: bytes, value: bytes) -> None:
        self.sent.append(value)


def _dead_letter_sent(raw: bytes) -> tuple[DeadLetter, int]:
    """What WorkerContext.dead_letter puts on the DLQ topic for a record of value `raw`: the record and its size."""
    dlq = _Topic()
    ctx = WorkerContext(settings=Settings(eval={"redact": False}), app=None, topics={"dlq": dlq})  # type: ignore[arg-type]
    message = SimpleNamespace(value=raw, key=b"k", topic="llm.inference.events", partition=0, offset=9)
    asyncio.run(
        ctx.dead_letter(SimpleNamespace(message=message), reason="too big", error_type="oversized", stage="score")
    )
    [value] = dlq.sent
    return DeadLetter.decode(value), len(value)


def test_dead_letter_keeps_a_big_record_whole_for_replay() -> None:
    raw = b"x" * 2_500_000  # over the old 1,000,000-byte cut, well inside what the DLQ topic can hold
    record, size = _dead_letter_sent(raw)
    assert record.raw() == raw and record.raw_size == len(raw) and not record.truncated
    assert size <= MAX_MESSAGE_BYTES


def test_dead_letter_of_a_record_over_the_topic_limit_fits_and_says_it_was_cut() -> None:
    raw = bytes(range(256)) * (MAX_MESSAGE_BYTES // 256 + 1024)  # bigger than any topic accepts, base64 or not
    record, size = _dead_letter_sent(raw)
    assert size <= MAX_MESSAGE_BYTES - 16 * 1024  # room left for Kafka's own record overhead
    assert record.truncated and record.raw_size == len(raw) and record.raw() == raw[:DLQ_KEEP_BYTES]


def test_feedback_free_text_is_redacted_for_the_table() -> None:
    fb = Feedback(
        event_id="e1", deployment="d", thumbs=-1, user_id=EMAIL, comment=f"wrong card {CARD}, write to {EMAIL}"
    )
    [stored] = _redacted_feedback([fb])
    assert isinstance(stored, Feedback)
    assert stored.comment == "wrong card <CREDIT_CARD>, write to <EMAIL_ADDRESS>"
    assert stored.user_id == "<EMAIL_ADDRESS>"
    assert (stored.feedback_id, stored.thumbs) == (fb.feedback_id, -1) and EMAIL in (fb.comment or "")  # a copy
    [plain] = _redacted_feedback([Feedback(event_id="e2", deployment="d", score=0.5)])
    assert plain.comment is None and plain.user_id is None


class _Suite:
    def __init__(self, partial: bool) -> None:
        self.names = {"pii_prompt": "pii@1/test"}
        self.partial = partial

    def score_batch(self, items: Any) -> list[dict[str, Any]]:
        return [{"pii_prompt": [], "redacted_prompt": "<UNSCANNED>", "pii_partial": self.partial} for _ in items]


def test_partial_pii_scan_marks_the_stored_event() -> None:
    event = InferenceEvent(deployment="d", model="m", model_version="v1", prompt="1 2 3", attributes={"tier": "gold"})
    [partial] = EventScorer(_Suite(True), lambda text: text).score([event])  # type: ignore[arg-type]
    [full] = EventScorer(_Suite(False), lambda text: text).score([event])  # type: ignore[arg-type]
    assert isinstance(partial, EvalScores) and partial.event is not None and full.event is not None
    assert partial.event.attributes == {"tier": "gold", PII_SCAN_ATTRIBUTE: "partial"}
    assert partial.event.prompt == "<UNSCANNED>" and full.event.attributes == {"tier": "gold"}
