"""Redaction: entity spans replaced by typed placeholders (`<EMAIL_ADDRESS>`) before texts are stored.

Irreversible on purpose: the placeholder keeps the type (what analysts need to count and read the text)
and nothing maps it back to the value, so a stored row cannot be un-redacted. Reversible modes
(presidio's encrypt operator with a managed key) are not offered: no part of llmwatch needs one.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Protocol

from . import presidio_import  # noqa: F401  (first: presidio without transformers and torch)

# isort: split
from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

from llmwatch.schemas import InferenceEvent


class Span(Protocol):
    """What redaction needs of a detected entity (pii.Entity fits)."""

    @property
    def type(self) -> str: ...
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...
    @property
    def score(self) -> float: ...


#: Characters a PII value is written with (emails, phone, card and id numbers): a cut inside a run of them may
#: have split a value.
_VALUE_CHARS = frozenset(string.ascii_letters + string.digits + " @._%+-()/")
#: Longer than any value: a cut never strips more than this back.
_LONGEST_VALUE = 128


def excerpt(text: str, keep_chars: int) -> str:
    """The first `keep_chars` characters of `text`, ending before a value the cut may have split (a card cut
    after twelve digits is no longer found by redaction, yet it is still most of a card number)."""
    if len(text) <= keep_chars:
        return text
    end, floor = keep_chars, max(0, keep_chars - _LONGEST_VALUE)
    while end > floor and text[end - 1] in _VALUE_CHARS:
        end -= 1
    return text[:end] + "…"


def placeholder(entity_type: str) -> str:
    """The text that replaces an entity of this type (presidio's replace operator without a value)."""
    return f"<{entity_type}>"


class Redactor:
    """presidio-anonymizer's replace operator over spans found elsewhere; overlaps resolve by score there.

    Disjoint spans (what PiiDetector gives) take a one-pass path with the same output: presidio rebuilds the whole
    text once per span, quadratic on a long text with many values (~10 s for 1 MB holding 50k)."""

    def __init__(self) -> None:
        self._engine = AnonymizerEngine()
        self._operators = {"DEFAULT": OperatorConfig("replace")}

    def redact(self, text: str, spans: Sequence[Span]) -> str:
        if not spans:
            return text
        ordered = sorted(spans, key=lambda s: (s.start, s.end))
        if all(a.end <= b.start for a, b in pairwise(ordered)):
            return _replace_disjoint(text, ordered)
        results = [RecognizerResult(s.type, s.start, s.end, s.score) for s in spans]
        return self._engine.anonymize(text=text, analyzer_results=results, operators=self._operators).text


def _replace_disjoint(text: str, spans: Sequence[Span]) -> str:
    """Sorted, disjoint spans replaced by their placeholders as presidio does it, in one pass; like presidio, values
    of one type with only spaces between them become one placeholder."""
    parts: list[str] = []
    at, last_type = 0, None
    for span in spans:
        gap = text[at : span.start]
        if span.type != last_type or not gap or gap.strip(" "):
            parts += [gap, placeholder(span.type)]
        at, last_type = span.end, span.type
    parts.append(text[at:])
    return "".join(parts)


def redact_event_texts(
    ev: InferenceEvent, redact: Callable[[str], str], *, prompt: str | None = None, response: str | None = None
) -> InferenceEvent:
    """`ev` with every free-text field it carries redacted: the texts (`prompt`/`response` when the caller already
    redacted them), the RAG context, the error, the attributes (keys too), and the user/session ids (hashed by
    contract, but a producer may send an email; a hex hash holds no entity, so redaction leaves it as it is), and the
    GenAI structured fields (messages, system instructions, tool arguments and results).
    One list of those fields for the sink (streams/scoring.py) and for producers that redact at source."""
    return ev.model_copy(
        update={
            "prompt": prompt if prompt is not None else redact(ev.prompt),
            "response": response if response is not None else redact(ev.response),
            "context": [redact(c) for c in ev.context] if ev.context else ev.context,
            "error": redact(ev.error) if ev.error else ev.error,
            "user_id": redact(ev.user_id) if ev.user_id else ev.user_id,
            "session_id": redact(ev.session_id) if ev.session_id else ev.session_id,
            "attributes": {redact(k): redact(v) for k, v in ev.attributes.items()},
            **ev.structured_text_mapped(redact),  # messages, system instructions, tool arguments and results
        }
    )
