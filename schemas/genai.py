"""Structured GenAI content of an InferenceEvent, shaped like the OpenTelemetry GenAI semantic conventions.

`gen_ai.input.messages`, `gen_ai.output.messages` and `gen_ai.system_instructions` are lists of messages made of
typed parts (`text`, `tool_call`, `tool_call_response`, `reasoning`, …); these models follow that JSON shape, so
an OTLP span's attribute value validates as is and an event's field exports back to the same attribute. Parts
keep fields they do not name (a `uri` or `mime_type` of a media part) instead of dropping them.

`flatten` turns messages into the plain text the evaluators read (`prompt`, `response`): one `role: text` line per
message, the same layout the gateway has always used.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field


class MessagePart(BaseModel):
    """One part of a message: `type` says which of the other fields it uses."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(
        min_length=1, max_length=100, description="text, tool_call, tool_call_response, reasoning, uri, blob…"
    )
    content: str | None = Field(None, description="text and reasoning parts: the text.")
    id: str | None = Field(None, max_length=200, description="tool_call and tool_call_response: the call's id.")
    name: str | None = Field(None, max_length=200, description="tool_call: the tool's name.")
    arguments: Any = Field(None, description="tool_call: the arguments (an object, or the JSON text as sent).")
    response: Any = Field(None, description="tool_call_response: what the tool returned.")


class ChatMessage(BaseModel):
    """A message of `gen_ai.input.messages`."""

    model_config = ConfigDict(extra="allow")

    role: str = Field(min_length=1, max_length=50, description="system, user, assistant, tool…")
    parts: list[MessagePart] = Field(default_factory=list)
    name: str | None = Field(None, max_length=200, description="Participant name, when the caller set one.")


class OutputMessage(ChatMessage):
    """A message of `gen_ai.output.messages` (one per choice)."""

    finish_reason: str | None = Field(None, max_length=50, description="Why this choice ended.")


ChatMessageT = TypeVar("ChatMessageT", bound=ChatMessage)


class RequestParams(BaseModel):
    """The sampling parameters the caller asked for (`gen_ai.request.*`); None where the caller gave none."""

    model_config = ConfigDict(extra="ignore")

    temperature: float | None = Field(
        None, allow_inf_nan=False, json_schema_extra={"$comment": "otel: gen_ai.request.temperature"}
    )
    top_p: float | None = Field(None, allow_inf_nan=False, json_schema_extra={"$comment": "otel: gen_ai.request.top_p"})
    top_k: float | None = Field(None, allow_inf_nan=False, json_schema_extra={"$comment": "otel: gen_ai.request.top_k"})
    max_tokens: int | None = Field(
        None, ge=0, le=2**32 - 1, json_schema_extra={"$comment": "otel: gen_ai.request.max_tokens"}
    )
    seed: int | None = Field(
        None, ge=-(2**63), le=2**63 - 1, json_schema_extra={"$comment": "otel: gen_ai.request.seed"}
    )
    stop_sequences: list[str] = Field(
        default_factory=list, json_schema_extra={"$comment": "otel: gen_ai.request.stop_sequences"}
    )
    frequency_penalty: float | None = Field(
        None, allow_inf_nan=False, json_schema_extra={"$comment": "otel: gen_ai.request.frequency_penalty"}
    )
    presence_penalty: float | None = Field(
        None, allow_inf_nan=False, json_schema_extra={"$comment": "otel: gen_ai.request.presence_penalty"}
    )
    stream: bool | None = Field(None, json_schema_extra={"$comment": "otel: gen_ai.request.stream"})
    output_type: str | None = Field(
        None, max_length=50, description="text, json…", json_schema_extra={"$comment": "otel: gen_ai.output.type"}
    )
    tool_choice: str | None = Field(
        None, max_length=200, description="auto, none, required, or the name of the forced tool."
    )


class ToolCall(BaseModel):
    """A tool call the model asked for (a `tool_call` part of an output message), as a row-friendly record."""

    id: str | None = None
    name: str
    arguments: str = Field("", description="The arguments as JSON text.")


def text_part(text: str) -> MessagePart:
    return MessagePart(type="text", content=text)


def tool_call_part(call_id: str | None, name: str, arguments: Any) -> MessagePart:
    return MessagePart(type="tool_call", id=call_id, name=name, arguments=arguments)


def arguments_text(arguments: Any) -> str:
    """Tool-call arguments as the JSON text a model produced (strings are kept as sent, objects are encoded)."""
    if arguments is None:
        return ""
    if isinstance(arguments, str):
        return arguments
    return json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))


def message_text(message: ChatMessage) -> str:
    """The text parts of a message, joined (tool calls, media and reasoning are not text the user reads)."""
    return "".join(p.content or "" for p in message.parts if p.type == "text")


def flatten(messages: Iterable[ChatMessage]) -> str:
    """`role: text` lines, the layout of `InferenceEvent.prompt`."""
    return "\n".join(f"{m.role}: {message_text(m)}" for m in messages)


def tool_calls(messages: Sequence[ChatMessage] | None) -> list[ToolCall]:
    """Every tool call requested in `messages`, in order."""
    out = []
    for m in messages or ():
        for p in m.parts:
            if p.type == "tool_call" and p.name:
                out.append(ToolCall(id=p.id, name=p.name, arguments=arguments_text(p.arguments)))
    return out


def map_text(parts: Sequence[MessagePart], fn: Callable[[str], str]) -> list[MessagePart]:
    """`parts` with every free text passed through `fn` (text, tool arguments and results; ids and names kept)."""
    out = []
    for p in parts:
        update: dict[str, Any] = {}
        if p.content:
            update["content"] = fn(p.content)
        if p.arguments is not None:
            update["arguments"] = fn(arguments_text(p.arguments))
        if p.response is not None:
            update["response"] = fn(arguments_text(p.response))
        out.append(p.model_copy(update=update) if update else p)
    return out


def map_messages(messages: Sequence[ChatMessageT] | None, fn: Callable[[str], str]) -> list[ChatMessageT] | None:
    """`messages` with every free text of their parts passed through `fn` (redaction before storage)."""
    if messages is None:
        return None
    return [m.model_copy(update={"parts": map_text(m.parts, fn)}) for m in messages]
