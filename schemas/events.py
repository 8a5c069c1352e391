"""What inference workers (ours or anyone's) publish: one InferenceEvent per request, and Feedback.

Field names follow the OpenTelemetry GenAI semantic conventions where one exists; each field's
JSON Schema carries the attribute in `otel` (see docs/schemas.md). Latencies are milliseconds.
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .base import Payload, UTCDateTime, utcnow


def _otel(attr: str) -> dict[str, str]:
    return {"otel": attr}


Status = Literal["ok", "error", "cancelled"]

#: Token counts are stored as UInt32: a larger count must be refused here (and dead-lettered), not by the
#: database, where it would fail the insert of its whole batch again and again.
MAX_TOKENS = 2**32 - 1

#: attribute: the prompt's first N characters are the operator's system/developer messages (trusted text).
#: Injection scoring reads only what follows; a producer that does not set it has its whole prompt scanned.
SYSTEM_CHARS_ATTR = "llmwatch.system_chars"


class PiiFindings(BaseModel):
    """What a producer that redacts at source (LLMWATCH_REDACT_AT_SOURCE) found in the raw texts before it replaced
    each value by its type's placeholder: the score agent takes these for the event's PII scores, since a leak
    (a value in the response the prompt did not hold) cannot be told from placeholders."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    prompt: dict[str, int] = Field(default_factory=dict, description="Entity type → values found in the prompt.")
    response: dict[str, int] = Field(default_factory=dict, description="Entity type → values found in the response.")
    leak: bool | None = Field(
        False, description="The response held a value (normalised) that the prompt did not; None: not known."
    )
    partial: bool = Field(False, description="A text had more phone-like digits than the scan budget.")
    failed: bool = Field(False, description="The scan failed: the texts were withheld, the PII scores are unknown.")
    scanner: str = Field("", max_length=100, description="Evaluator id@version that scanned, e.g. 'pii@1'.")


class InferenceEvent(Payload):
    """One prompt/response with its latencies, as seen by the service that called the model."""

    schema_name = "InferenceEvent"

    event_id: str = Field(
        default_factory=lambda: uuid.uuid4().hex,
        min_length=1,
        max_length=128,
        description="Stable id; every table dedups on it.",
        json_schema_extra=_otel("gen_ai.response.id"),
    )
    ts: UTCDateTime = Field(
        default_factory=utcnow,
        description="When the request arrived (UTC).",
        json_schema_extra=_otel("(span start time)"),
    )
    deployment: str = Field(
        min_length=1,
        max_length=200,
        description="Logical endpoint that clients call; canaries live inside it.",
    )
    model: str = Field(
        min_length=1,
        max_length=200,
        description="Model name as served.",
        json_schema_extra=_otel("gen_ai.request.model"),
    )
    model_version: str = Field(
        "unknown", min_length=1, max_length=200, description="Version of the model behind the deployment."
    )
    variant: str = Field("baseline", min_length=1, max_length=100, description="baseline, canary or an A/B arm name.")
    experiment: str | None = Field(None, max_length=200, description="A/B experiment name, if assigned.")
    prompt_version: str = Field("default", max_length=200, description="Version of the prompt template.")
    user_id: str | None = Field(
        None, max_length=200, description="Hashed user id (never raw).", json_schema_extra=_otel("user.id")
    )
    session_id: str | None = Field(
        None,
        max_length=200,
        description="Hashed session id.",
        json_schema_extra=_otel("gen_ai.conversation.id"),
    )
    prompt: str = Field(
        "",
        description="Prompt text (system+user messages flattened).",
        json_schema_extra=_otel("gen_ai.input.messages"),
    )
    response: str = Field("", description="Response text.", json_schema_extra=_otel("gen_ai.output.messages"))
    context: list[str] | None = Field(
        None,
        description="Retrieved passages for RAG (a single string is accepted as one passage).",
        json_schema_extra=_otel("gen_ai.retrieval.documents"),
    )
    input_tokens: int = Field(0, ge=0, le=MAX_TOKENS, json_schema_extra=_otel("gen_ai.usage.input_tokens"))
    output_tokens: int = Field(0, ge=0, le=MAX_TOKENS, json_schema_extra=_otel("gen_ai.usage.output_tokens"))
    ttft_ms: float | None = Field(
        None,
        ge=0,
        allow_inf_nan=False,
        description="Time to first token.",
        json_schema_extra=_otel("gen_ai.server.time_to_first_token"),
    )
    tpot_ms: float | None = Field(
        None,
        ge=0,
        allow_inf_nan=False,
        description="Time per output token after the first: (e2e-ttft)/(n-1).",
        json_schema_extra=_otel("gen_ai.server.time_per_output_token"),
    )
    e2e_ms: float | None = Field(
        None,
        ge=0,
        allow_inf_nan=False,
        description="End-to-end request duration.",
        json_schema_extra=_otel("gen_ai.server.request.duration"),
    )
    status: Status = Field("ok", description="ok, error or cancelled.")
    error: str | None = Field(None, max_length=2000, json_schema_extra=_otel("error.type"))
    finish_reason: str | None = Field(
        None,
        max_length=50,
        description="stop, length, error, cancelled…",
        json_schema_extra=_otel("gen_ai.response.finish_reasons"),
    )
    engine: str = Field(
        "unknown",
        max_length=50,
        description="vllm, openai, transformers, simulated, external…",
        json_schema_extra=_otel("gen_ai.provider.name"),
    )
    simulated: bool = Field(False, description="True when a simulator produced the response.")
    source: str = Field("unknown", max_length=200, description="Service that emitted the event.")
    cost_usd: float | None = Field(None, ge=0, allow_inf_nan=False)
    attributes: dict[str, str] = Field(default_factory=dict, description="Free-form string labels.")
    redacted_at_source: PiiFindings | None = Field(
        None,
        description="Set by a producer that redacted the event's texts before publishing (LLMWATCH_REDACT_AT_SOURCE): "
        "the PII found in the raw texts. Unset: the texts are as the service saw them.",
    )

    @field_validator("context", mode="before")
    @classmethod
    def _one_passage(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _latencies_consistent(self) -> InferenceEvent:
        if self.ttft_ms is not None and self.e2e_ms is not None and self.ttft_ms > self.e2e_ms + 1e-6:
            raise ValueError(f"ttft_ms ({self.ttft_ms}) exceeds e2e_ms ({self.e2e_ms})")
        return self

    @property
    def window_key(self) -> str:
        """Key of the windowed streams: deployment/model_version."""
        return f"{self.deployment}/{self.model_version}"


class Feedback(Payload):
    """A user's verdict on one response (thumbs and/or a score), linked by event_id."""

    schema_name = "Feedback"

    feedback_id: str = Field(default_factory=lambda: uuid.uuid4().hex, min_length=1, max_length=128)
    event_id: str = Field(min_length=1, max_length=128)
    ts: UTCDateTime = Field(default_factory=utcnow)
    deployment: str = Field(min_length=1, max_length=200)
    model_version: str | None = None
    variant: str | None = None
    experiment: str | None = None
    user_id: str | None = None
    thumbs: Literal[-1, 1] | None = Field(None, description="+1 up, -1 down.")
    score: float | None = Field(None, ge=0, le=1, allow_inf_nan=False, description="Normalised rating in [0,1].")
    comment: str | None = Field(None, max_length=4000)

    @model_validator(mode="after")
    def _has_signal(self) -> Feedback:
        if self.thumbs is None and self.score is None:
            raise ValueError("feedback needs thumbs or score")
        return self
