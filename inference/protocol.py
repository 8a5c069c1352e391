"""The OpenAI wire format the gateway speaks: pydantic models only, no logic.

Fields follow the order of OpenAI's API reference so a reader can diff against it. Fields that are ours
(not OpenAI's) sit at the end of each model under `# --- llmwatch extras`; OpenAI clients ignore them.
Unknown request fields are ignored, as OpenAI-compatible servers do; known fields we cannot honour are
refused with a 400 that names them rather than silently dropped.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# --- requests ------------------------------------------------------------------------------------


#: Strict types: `"temperature": true` or `"stream": "yes"` is a client bug to report (a 400 naming the field),
#: not something to coerce; NaN and ±Infinity (which JSON parsers accept) are refused as not finite.
_STRICT = ConfigDict(strict=True, allow_inf_nan=False)


def _not_served(value: bool | None, message: str) -> bool | None:
    # A strict bool, then refused when true (Literal[False] would let a JSON 0 through as False).
    if value:
        raise ValueError(message)
    return value


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", **_STRICT)


class StreamOptions(BaseModel):
    model_config = _STRICT

    include_usage: bool = False


class TextContentPart(BaseModel):
    model_config = _STRICT

    type: Literal["text"]
    text: str


class FunctionCall(BaseModel):
    model_config = _STRICT

    name: str = Field(min_length=1, max_length=200)
    arguments: str = Field("", description="JSON text, as the model wrote it.")


class ToolCallIn(BaseModel):
    """A tool call of an earlier assistant turn, sent back with the conversation."""

    model_config = _STRICT

    id: str = Field(max_length=200)
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessageIn(BaseModel):
    model_config = _STRICT

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCallIn] | None = Field(None, description="assistant: the calls it made.")
    tool_call_id: str | None = Field(None, max_length=200, description="tool: the call this message answers.")

    @property
    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content)


class _SamplingFields(_Request):
    """Shared tail of both request kinds (OpenAI orders these alphabetically after the core fields)."""

    n: int = Field(1, ge=1, le=1, description="Only one choice per request is served.")
    seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1, description="A 64-bit integer.")
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    user: str | None = Field(None, max_length=256, description="End-user id; hashed before it is stored.")
    # --- llmwatch extras
    session_id: str | None = Field(None, max_length=256, description="llmwatch: conversation id (hashed).")
    prompt_version: str | None = Field(None, max_length=200, description="llmwatch: prompt template version.")
    context: list[str] | None = Field(None, description="llmwatch: retrieved passages (RAG), scored for grounding.")
    hints: dict[str, Any] | None = Field(None, description="llmwatch: hints for the simulated engine.")

    @field_validator("stop")
    @classmethod
    def _at_most_four(cls, v: str | list[str] | None) -> str | list[str] | None:
        if isinstance(v, list) and len(v) > 4:
            raise ValueError("at most 4 stop sequences")
        return v

    @field_validator("context", mode="before")
    @classmethod
    def _one_passage(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v

    @property
    def stop_list(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class FunctionDefinition(BaseModel):
    model_config = _STRICT

    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")
    description: str | None = None
    parameters: dict[str, Any] | None = Field(None, description="JSON Schema of the arguments.")
    strict: bool | None = None


class ToolDefinition(BaseModel):
    model_config = _STRICT

    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(BaseModel):
    model_config = _STRICT

    name: str = Field(min_length=1)


class NamedToolChoice(BaseModel):
    model_config = _STRICT

    type: Literal["function"]
    function: NamedFunction


class JsonSchemaFormat(BaseModel):
    model_config = ConfigDict(strict=True, allow_inf_nan=False, populate_by_name=True)

    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema", description="The JSON Schema the answer follows.")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    model_config = _STRICT

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("type 'json_schema' needs a json_schema object")
        return self


class ChatCompletionRequest(_SamplingFields):
    messages: list[ChatMessageIn] = Field(min_length=1)
    model: str = Field(min_length=1)
    logprobs: bool | None = Field(None, description="Log-probabilities are not served.")
    max_completion_tokens: int | None = Field(None, ge=1)
    max_tokens: int | None = Field(None, ge=1, description="Deprecated by OpenAI; max_completion_tokens wins.")
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    tools: list[ToolDefinition] | None = None

    @model_validator(mode="after")
    def _tool_choice_names_a_tool(self) -> ChatCompletionRequest:
        if isinstance(self.tool_choice, NamedToolChoice):
            names = {t.function.name for t in self.tools or ()}
            if self.tool_choice.function.name not in names:
                raise ValueError(f"tool_choice names '{self.tool_choice.function.name}', which is not in tools")
        elif self.tool_choice in ("auto", "required") and not self.tools:
            raise ValueError(f"tool_choice '{self.tool_choice}' needs tools")
        return self

    @property
    def uses_tools(self) -> bool:
        """The request asks the engine to offer tools (tool_choice 'none' with tools offers none)."""
        return bool(self.tools) and self.tool_choice != "none"

    @property
    def uses_response_format(self) -> bool:
        return self.response_format is not None and self.response_format.type != "text"

    @field_validator("logprobs")
    @classmethod
    def _no_logprobs(cls, v: bool | None) -> bool | None:
        return _not_served(v, "log-probabilities are not served")

    @property
    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class CompletionRequest(_SamplingFields):
    model: str = Field(min_length=1)
    prompt: str | list[str] = Field(description="One prompt (a list must hold exactly one string).")
    echo: bool | None = Field(None, description="Echoing the prompt is not served.")
    logprobs: None = Field(None, description="Log-probabilities are not served.")
    max_tokens: int | None = Field(None, ge=1)

    @field_validator("echo")
    @classmethod
    def _no_echo(cls, v: bool | None) -> bool | None:
        return _not_served(v, "echoing the prompt is not served")

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, v: str | list[str]) -> str | list[str]:
        if isinstance(v, list) and len(v) != 1:
            raise ValueError("exactly one prompt per request is served")
        return v

    @property
    def prompt_text(self) -> str:
        return self.prompt if isinstance(self.prompt, str) else self.prompt[0]

    @property
    def requested_max_tokens(self) -> int | None:
        return self.max_tokens


# --- responses -----------------------------------------------------------------------------------


def _now() -> int:
    return int(time.time())


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class LlmwatchInfo(BaseModel):
    """llmwatch extra on every response: which event describes it and which version served it."""

    event_id: str
    deployment: str
    model_version: str
    variant: str
    experiment: str | None = None


class FunctionCallOut(BaseModel):
    name: str | None = None
    arguments: str = ""


class ToolCallOut(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCallOut


class ToolCallDelta(BaseModel):
    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: FunctionCallOut | None = None


class ChatMessageOut(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    tool_calls: list[ToolCallOut] | None = None


class ChatChoice(BaseModel):
    index: int = 0
    message: ChatMessageOut
    logprobs: None = None
    finish_reason: str | None = None


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=_now)
    model: str
    choices: list[ChatChoice]
    usage: Usage
    # --- llmwatch extras
    llmwatch: LlmwatchInfo | None = None


class ChatDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None


class ChatChunkChoice(BaseModel):
    index: int = 0
    delta: ChatDelta
    logprobs: None = None
    finish_reason: str | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int = Field(default_factory=_now)
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None
    # --- llmwatch extras
    llmwatch: LlmwatchInfo | None = None


class CompletionChoice(BaseModel):
    index: int = 0
    text: str
    logprobs: None = None
    finish_reason: str | None = None


class CompletionResponse(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int = Field(default_factory=_now)
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    # --- llmwatch extras
    llmwatch: LlmwatchInfo | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(default_factory=_now)
    owned_by: str = "llmwatch"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorBody(BaseModel):
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """OpenAI's error envelope; `status_code` is ours and stays out of the body."""

    error: ErrorBody
    status_code: int = Field(400, exclude=True)
    # --- llmwatch extras (set once a request was routed, so even failures name their event)
    llmwatch: LlmwatchInfo | None = Field(None, exclude_if=lambda v: v is None)

    @classmethod
    def of(
        cls,
        status_code: int,
        message: str,
        *,
        type: str | None = None,
        param: str | None = None,
        code: str | None = None,
    ) -> ErrorResponse:
        kind = type or ("invalid_request_error" if status_code < 500 else "server_error")
        return cls(error=ErrorBody(message=message, type=kind, param=param, code=code), status_code=status_code)
