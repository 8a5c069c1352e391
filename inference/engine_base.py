"""The one small async interface every engine implements, and the timing that is the same for all.

An engine streams TokenChunks for a GenerationRequest; `timed_stream` wraps any engine and measures
TTFT (first chunk that carries a token), e2e, and TPOT = (e2e − ttft) / (output_tokens − 1) the same way
for every engine. Engines that know better (vLLM's own request metrics) report them in `engine_metrics`
on the final chunk, and the gateway prefers those.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

#: features a request may need from its engine (an engine lists those it honours in `features`)
TOOLS = "tools"
RESPONSE_FORMAT = "response_format"


@dataclass(frozen=True)
class ChatMessage:
    role: str
    content: str
    #: assistant turns: the tool calls made, in OpenAI's JSON shape ({"id", "type", "function": {"name", "arguments"}})
    tool_calls: tuple[dict[str, Any], ...] = ()
    #: tool turns: the call answered
    tool_call_id: str | None = None
    name: str | None = None

    def openai(self) -> dict[str, Any]:
        """This message as OpenAI's chat API takes it."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = list(self.tool_calls)
            if not self.content:
                out["content"] = None
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            out["name"] = self.name
        return out


@dataclass(frozen=True)
class GenerationRequest:
    model_version: str
    prompt: str = ""
    messages: tuple[ChatMessage, ...] = ()
    max_tokens: int = 128
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    request_id: str = ""
    #: free-form hints for the simulated engine (scenario, behaviour); real engines ignore them
    hints: dict[str, Any] = field(default_factory=dict)
    #: tools offered (OpenAI's JSON shape), tool_choice ("auto", "required", "none" or {"type", "function"}),
    #: parallel_tool_calls and response_format ({"type": "json_schema", "json_schema": {...}}): an engine whose
    #: `features` lacks TOOLS or RESPONSE_FORMAT never sees a request that uses them (the gateway answers 400)
    tools: tuple[dict[str, Any], ...] = ()
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None

    @property
    def text(self) -> str:
        """The prompt as one string (chat messages flattened as `role: content` lines)."""
        if self.messages:
            return "\n".join(f"{m.role}: {m.content}" for m in self.messages)
        return self.prompt

    @property
    def system_chars(self) -> int:
        """Length of `text`'s leading system/developer lines: the operator's own words, not user input."""
        lead = []
        for m in self.messages:
            if m.role not in ("system", "developer"):
                break
            lead.append(f"{m.role}: {m.content}")
        return len("\n".join(lead)) if lead else 0


@dataclass(frozen=True)
class ToolCallDelta:
    """A piece of a tool call as it streams: `index` names the call; id and name come first, arguments in pieces."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass
class TokenChunk:
    text: str
    #: tokens this chunk carries (0 for a final bookkeeping chunk)
    tokens: int = 1
    #: set on the last chunk
    finish_reason: str | None = None
    input_tokens: int | None = None
    engine_metrics: dict[str, float] = field(default_factory=dict)
    tool_calls: tuple[ToolCallDelta, ...] = ()
    #: input tokens served from the engine's prefix cache, and output tokens spent on reasoning (when it says)
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None


class Engine(Protocol):
    """An LLM backend serving one or more model versions.

    An engine may also have `features`, a frozenset of TOOLS / RESPONSE_FORMAT it honours (none when absent).
    """

    name: str

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def versions(self) -> list[str]: ...
    def stream(self, request: GenerationRequest) -> AsyncIterator[TokenChunk]: ...


class EngineError(RuntimeError):
    """The engine failed the request (the gateway maps it to a 5xx and an error event)."""

    status_code = 500


class EngineRequestError(EngineError):
    """The engine refused the request as invalid (prompt too long, bad sampling values): a 400 naming `param`."""

    status_code = 400

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class EngineUnavailable(EngineError):
    """The engine is not loaded (yet) or was stopped: a 503, the client may retry."""

    status_code = 503


class UpstreamError(EngineError):
    """An OpenAI-compatible upstream failed; keeps its status for the log and the event."""

    status_code = 502

    def __init__(self, message: str, upstream_status: int | None = None) -> None:
        super().__init__(message)
        self.upstream_status = upstream_status


def features_of(engine: object) -> frozenset[str]:
    """What an engine honours beyond plain text generation (TOOLS, RESPONSE_FORMAT)."""
    return frozenset(getattr(engine, "features", ()))


def default_version(model: Path | str) -> str:
    """Version name of a local model when none is configured: its folder name."""
    return Path(model).resolve().name or "model"


def render_prompt(tokenizer: Any, request: GenerationRequest) -> tuple[str, bool]:
    """The prompt text, and whether it came from a chat template (then it already has its special tokens)."""
    if request.messages and getattr(tokenizer, "chat_template", None):
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        extra = {"tools": list(request.tools)} if request.tools else {}
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **extra)
        return str(text), True
    return request.text, False


@dataclass
class Timing:
    """What `timed_stream` measured for one request (milliseconds)."""

    started: float = field(default_factory=time.perf_counter)
    ttft_ms: float | None = None
    e2e_ms: float | None = None
    output_tokens: int = 0
    input_tokens: int = 0
    finish_reason: str | None = None
    engine_metrics: dict[str, float] = field(default_factory=dict)
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def tpot_ms(self) -> float | None:
        if self.ttft_ms is None or self.e2e_ms is None or self.output_tokens < 2:
            return None
        return (self.e2e_ms - self.ttft_ms) / (self.output_tokens - 1)


async def timed_stream(engine: Engine, request: GenerationRequest, timing: Timing) -> AsyncIterator[TokenChunk]:
    """Yield the engine's chunks, filling `timing` as they pass (also on error or cancellation)."""
    try:
        async for chunk in engine.stream(request):
            now = time.perf_counter()
            if chunk.tokens and timing.ttft_ms is None:
                timing.ttft_ms = (now - timing.started) * 1000
            timing.output_tokens += chunk.tokens
            if chunk.input_tokens is not None:
                timing.input_tokens = chunk.input_tokens
            if chunk.finish_reason is not None:
                timing.finish_reason = chunk.finish_reason
            if chunk.cached_tokens is not None:
                timing.cached_tokens = chunk.cached_tokens
            if chunk.reasoning_tokens is not None:
                timing.reasoning_tokens = chunk.reasoning_tokens
            timing.engine_metrics.update(chunk.engine_metrics)
            yield chunk
    finally:
        timing.e2e_ms = (time.perf_counter() - timing.started) * 1000
