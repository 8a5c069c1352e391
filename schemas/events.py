"""What inference workers (ours or anyone's) publish: one InferenceEvent per request, and Feedback.

Field names follow the OpenTelemetry GenAI semantic conventions where one exists; each field's JSON Schema
names its attribute in a `$comment` (`otel: gen_ai.usage.input_tokens`; an annotation every JSON Schema validator
accepts, ajv's strict mode included), and `otel_attributes()` returns the same mapping (see docs/schemas.md).
Latencies are milliseconds.

Schema 1.1 added the conventions' structured fields beside the flat ones, additively: structured messages,
system instructions, tool definitions, finish reasons as a list, request parameters, response model and id,
provider and operation names, the error's type, cached and reasoning token counts, and the trace context. A
producer may send either form: the flat fields that evaluators and SQL read (`prompt`, `response`,
`finish_reason`, `error`) are derived from the structured ones when it leaves them out.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .base import Payload, UTCDateTime, utcnow
from .genai import (
    ChatMessage,
    MessagePart,
    OutputMessage,
    RequestParams,
    ToolCall,
    flatten,
    map_messages,
    map_text,
    message_text,
    tool_calls,
)

#: prefix of the `$comment` that names a field's OpenTelemetry attribute
OTEL_COMMENT = "otel: "


def _otel(attr: str) -> dict[str, str]:
    return {"$comment": OTEL_COMMENT + attr}


def otel_attributes(model: type[BaseModel]) -> dict[str, str]:
    """field name → the OpenTelemetry attribute it carries (from the fields' `$comment`)."""
    out = {}
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra
        comment = extra.get("$comment") if isinstance(extra, dict) else None
        if isinstance(comment, str) and comment.startswith(OTEL_COMMENT):
            out[name] = comment[len(OTEL_COMMENT) :]
    return out


Status = Literal["ok", "error", "cancelled"]

#: Token counts are stored as UInt32: a larger count must be refused here (and dead-lettered), not by the
#: database, where it would fail the insert of its whole batch again and again.
MAX_TOKENS = 2**32 - 1

_TRACE_ID = r"^[0-9a-f]{32}$"
_SPAN_ID = r"^[0-9a-f]{16}$"

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
        description="Stable id; every table dedups on it (the gateway's `x-request-id`).",
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
        description="Model name the caller asked for.",
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
        description="Prompt text: system instructions and input messages flattened as `role: text` lines "
        "(derived from them when empty).",
    )
    response: str = Field("", description="Response text (derived from the output messages' text when empty).")
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
    error: str | None = Field(
        None, max_length=2000, description="Error message (the type is `error_type`; derived from it when empty)."
    )
    finish_reason: str | None = Field(
        None,
        max_length=50,
        description="stop, length, tool_calls, error, cancelled… (the first of `finish_reasons` when empty).",
    )
    engine: str = Field(
        "unknown",
        max_length=50,
        description="What served the request: vllm, openai, transformers, simulated, otlp, external…",
    )
    simulated: bool = Field(False, description="True when a simulator produced the response.")
    source: str = Field("unknown", max_length=200, description="Service that emitted the event.")
    cost_usd: float | None = Field(None, ge=0, allow_inf_nan=False)
    attributes: dict[str, str] = Field(default_factory=dict, description="Free-form string labels.")
    # --- schema 1.1: the GenAI conventions' structured fields (all optional)
    operation_name: str | None = Field(
        None,
        max_length=100,
        description="chat, text_completion, embeddings…",
        json_schema_extra=_otel("gen_ai.operation.name"),
    )
    provider_name: str | None = Field(
        None, max_length=100, description="openai, vllm, aws.bedrock…", json_schema_extra=_otel("gen_ai.provider.name")
    )
    response_model: str | None = Field(
        None, max_length=200, description="Model that answered.", json_schema_extra=_otel("gen_ai.response.model")
    )
    response_id: str | None = Field(
        None, max_length=200, description="Id of the completion.", json_schema_extra=_otel("gen_ai.response.id")
    )
    system_instructions: list[MessagePart] | None = Field(
        None,
        description="Instructions given apart from the messages.",
        json_schema_extra=_otel("gen_ai.system_instructions"),
    )
    input_messages: list[ChatMessage] | None = Field(
        None, description="The conversation sent to the model.", json_schema_extra=_otel("gen_ai.input.messages")
    )
    output_messages: list[OutputMessage] | None = Field(
        None,
        description="The model's answer, one message per choice.",
        json_schema_extra=_otel("gen_ai.output.messages"),
    )
    tool_definitions: list[dict[str, Any]] | None = Field(
        None,
        description="Tools offered to the model (as the caller declared them).",
        json_schema_extra=_otel("gen_ai.tool.definitions"),
    )
    finish_reasons: list[str] = Field(
        default_factory=list,
        description="Why each choice ended ([finish_reason] when empty).",
        json_schema_extra=_otel("gen_ai.response.finish_reasons"),
    )
    request_params: RequestParams | None = Field(None, description="Sampling parameters of the request.")
    error_type: str | None = Field(
        None,
        max_length=200,
        description="Class of the error: an exception type or an HTTP status.",
        json_schema_extra=_otel("error.type"),
    )
    cached_input_tokens: int = Field(
        0,
        ge=0,
        le=MAX_TOKENS,
        description="Input tokens served from a prompt cache.",
        json_schema_extra=_otel("gen_ai.usage.cache_read.input_tokens"),
    )
    reasoning_tokens: int = Field(
        0,
        ge=0,
        le=MAX_TOKENS,
        description="Output tokens spent on reasoning.",
        json_schema_extra=_otel("gen_ai.usage.reasoning.output_tokens"),
    )
    trace_id: str | None = Field(
        None,
        pattern=_TRACE_ID,
        description="W3C trace id (32 lowercase hex digits).",
        json_schema_extra=_otel("trace_id (span context)"),
    )
    span_id: str | None = Field(
        None,
        pattern=_SPAN_ID,
        description="Span id of the LLM call (16 hex digits).",
        json_schema_extra=_otel("span_id (span context)"),
    )
    parent_span_id: str | None = Field(
        None, pattern=_SPAN_ID, description="Span id of the caller's span.", json_schema_extra=_otel("parent_span_id")
    )
    redacted_at_source: PiiFindings | None = Field(
        None,
        description="Set by a producer that redacted the event's texts before publishing (LLMWATCH_REDACT_AT_SOURCE): "
        "the PII found in the raw texts. Unset: the texts are as the service saw them.",
    )

    @field_validator("context", mode="before")
    @classmethod
    def _one_passage(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v

    @field_validator("trace_id", "span_id", "parent_span_id", mode="before")
    @classmethod
    def _lower_hex(cls, v: object) -> object:
        return v.lower() if isinstance(v, str) else v

    @model_validator(mode="after")
    def _derive_flat_fields(self) -> InferenceEvent:
        # The flat fields are what evaluators, windows and SQL read: a producer that sent only the structured form
        # gets them filled here, so both kinds of event are scored the same way.
        given = self.model_fields_set  # a flat text the producer sent, even empty, is its own
        if "prompt" not in given and (self.input_messages or self.system_instructions):
            system = [ChatMessage(role="system", parts=self.system_instructions)] if self.system_instructions else []
            self.prompt = flatten([*system, *(self.input_messages or ())])
            if system:
                self.attributes.setdefault(SYSTEM_CHARS_ATTR, str(len(flatten(system))))
        if "response" not in given and self.output_messages:
            self.response = message_text(self.output_messages[0])
        if not self.finish_reasons:
            reasons = [m.finish_reason for m in self.output_messages or () if m.finish_reason]
            self.finish_reasons = reasons or ([self.finish_reason] if self.finish_reason else [])
        if self.finish_reason is None and self.finish_reasons:
            self.finish_reason = self.finish_reasons[0][:50]
        if self.error is None and self.error_type is not None:
            self.error = self.error_type
        return self

    @model_validator(mode="after")
    def _latencies_consistent(self) -> InferenceEvent:
        if self.ttft_ms is not None and self.e2e_ms is not None and self.ttft_ms > self.e2e_ms + 1e-6:
            raise ValueError(f"ttft_ms ({self.ttft_ms}) exceeds e2e_ms ({self.e2e_ms})")
        return self

    def structured_text_mapped(self, fn: Callable[[str], str]) -> dict[str, Any]:
        """Updates (for `model_copy`) that pass every free text of the structured fields through `fn`: what a
        redactor applies besides `prompt` and `response`, so raw text never reaches storage by this way either."""
        return {
            "system_instructions": map_text(self.system_instructions, fn) if self.system_instructions else None,
            "input_messages": map_messages(self.input_messages, fn),
            "output_messages": map_messages(self.output_messages, fn),
        }

    @property
    def tool_calls(self) -> list[ToolCall]:
        """The tool calls the model asked for (from the output messages)."""
        return tool_calls(self.output_messages)

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
