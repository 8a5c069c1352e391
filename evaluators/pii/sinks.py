"""Redaction for what the sinks and logs store outside the score agent: free text (`redact`), dead letters and
feedback records, through one process-wide detector built from the settings."""

from __future__ import annotations

import base64
import logging
from functools import lru_cache

from llmwatch.schemas import DeadLetter, Feedback
from llmwatch.settings import get_settings

from ..redaction import Redactor, excerpt
from .detector import PiiDetector, detector_from

log = logging.getLogger(__name__)

#: How much of a dead letter's raw value its copy in ClickHouse keeps (redacted; raw_size keeps the true size):
#: enough to see what was wrong, and a bound on the redaction time an adversarial record costs (~0.7 s at worst).
DEAD_LETTER_KEEP_CHARS = 8 * 1024


@lru_cache(maxsize=1)
def _default() -> tuple[PiiDetector, Redactor]:
    return detector_from(get_settings()), Redactor()


def redact(text: str) -> str:
    """`text` with every entity the process-wide detector finds replaced by `<ENTITY_TYPE>` (for sinks, logs), and
    digit runs past the phone scan budget by `<UNSCANNED>`."""
    detector, redactor = _default()
    return redactor.redact(text, detector.scan(text).spans())


def redact_dead_letter(record: DeadLetter, keep_chars: int = DEAD_LETTER_KEEP_CHARS) -> DeadLetter:
    """The copy of a dead letter that the analysts' `dead_letters` table stores: its value and key as UTF-8 text
    (undecodable bytes replaced), cut to `keep_chars`, redacted, and its reason redacted (a validator may echo
    the input there).

    The llm.dlq topic keeps the raw bytes, for replay: it is access-controlled infrastructure like the events
    topic; the tables are not. Never raises: a record that cannot be redacted is stored without its value.
    """
    try:
        raw = excerpt(record.raw().decode("utf-8", "replace"), keep_chars)
        key = record.key_b64 and excerpt(base64.b64decode(record.key_b64).decode("utf-8", "replace"), keep_chars)
        return record.model_copy(
            update={
                "raw_b64": base64.b64encode(redact(raw).encode()).decode(),
                "key_b64": base64.b64encode(redact(key).encode()).decode() if key else record.key_b64,
                "reason": redact(record.reason),
            }
        )
    except Exception as e:  # the sink must go on; the DLQ topic still has the record
        log.warning(
            "dead letter %s@%s: redaction failed (%s); stored without its value",
            record.partition,
            record.offset,
            type(e).__name__,
        )
        return record.model_copy(
            update={"raw_b64": "", "key_b64": None, "reason": f"(reason not redactable) {record.error_type}"}
        )


def redact_feedback(record: Feedback) -> Feedback:
    """The copy of a feedback record that the `feedback` table stores: its comment (free text a user typed) and
    user_id (hashed by contract, but a producer may send an email) redacted; the llm.feedback topic keeps the
    original. Never raises: a record that cannot be redacted is stored without those two fields."""
    try:
        return record.model_copy(
            update={
                "comment": redact(record.comment) if record.comment else record.comment,
                "user_id": redact(record.user_id) if record.user_id else record.user_id,
            }
        )
    except Exception as e:  # the sink must go on; the topic still has the record
        log.warning(
            "feedback %s: redaction failed (%s); stored without comment and user", record.feedback_id, type(e).__name__
        )
        return record.model_copy(update={"comment": None, "user_id": None})
