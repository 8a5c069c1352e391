"""What the gateway does with one request: resolve the deployment, route, run the engine, account, publish.

Nothing here knows HTTP: every outcome comes back as a value (a response model, an `SSEStream`, or an
`ErrorResponse` with its status), so the routes stay a thin mapping and the logic is testable on its own.
Every request that reached an engine ends in exactly one InferenceEvent (ok, error or cancelled), built from
the same `Timing` for every engine, and published only after the engine is done (a non-blocking enqueue).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from llmwatch.schemas import SYSTEM_CHARS_ATTR, InferenceEvent
from llmwatch.schemas.base import utcnow
from llmwatch.settings import GatewaySettings

from .engine_base import (
    RESPONSE_FORMAT,
    TOOLS,
    ChatMessage,
    Engine,
    EngineError,
    GenerationRequest,
    Timing,
    TokenChunk,
    features_of,
    timed_stream,
)
from .gateway_metrics import GatewayMetrics
from .protocol import (
    ChatChoice,
    ChatChunkChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatDelta,
    ChatMessageIn,
    ChatMessageOut,
    CompletionChoice,
    CompletionRequest,
    CompletionResponse,
    ErrorResponse,
    FunctionCallOut,
    LlmwatchInfo,
    ModelCard,
    ModelList,
    NamedToolChoice,
    ToolCallDelta,
    ToolCallOut,
    Usage,
)
from .router import Route, Router, UnknownDeployment

log = logging.getLogger(__name__)

Endpoint = Literal["chat", "completions"]
EngineState = Literal["starting", "ready", "failed", "stopped"]
#: engine_metrics keys the event takes as its own latencies (the engine measured closer to the model)
PREFERRED_KEYS = ("ttft_ms", "tpot_ms")


@dataclass(frozen=True)
class TraceParent:
    """The W3C trace context a client sent (`traceparent: 00-<trace id>-<parent span id>-<flags>`)."""

    trace_id: str
    parent_span_id: str

    @classmethod
    def parse(cls, header: str | None) -> TraceParent | None:
        """None for an absent or malformed header (the W3C spec says to ignore it then, never to fail)."""
        if not header:
            return None
        parts = header.strip().lower().split("-")
        if len(parts) < 4 or len(parts[0]) != 2 or parts[0] == "ff":
            return None
        trace_id, span_id = parts[1], parts[2]
        if len(trace_id) != 32 or len(span_id) != 16 or not _is_hex(trace_id + span_id):
            return None
        if trace_id == "0" * 32 or span_id == "0" * 16:
            return None
        return cls(trace_id, span_id)


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


@dataclass
class _ToolCall:
    """A tool call being assembled from its streamed pieces."""

    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Deployment:
    """A logical endpoint clients name in `model`; the router picks one of its versions per request."""

    name: str
    baseline: str
    versions: tuple[str, ...]


@dataclass
class EngineSlot:
    """An engine and whether it can take requests (the app starts engines in the background)."""

    engine: Engine
    state: EngineState = "starting"
    error: str | None = None


@dataclass
class SSEStream:
    """A streaming answer: Server-Sent Events lines, and who serves them (for the response headers)."""

    events: AsyncIterator[str]
    info: LlmwatchInfo


@dataclass
class _Call:
    """One request on its way through an engine."""

    endpoint: Endpoint
    deployment: Deployment
    model_version: str
    variant: str
    experiment: str | None
    engine: Engine
    generation: GenerationRequest
    request: ChatCompletionRequest | CompletionRequest
    user_id: str | None
    session_id: str | None
    arrived: datetime
    timing: Timing
    fallback_from: str | None = None
    trace: TraceParent | None = None
    texts: list[str] = field(default_factory=list)
    tool_calls: dict[int, _ToolCall] = field(default_factory=dict)
    done: bool = False

    def add(self, chunk: TokenChunk) -> None:
        self.texts.append(chunk.text)
        for d in chunk.tool_calls:
            call = self.tool_calls.setdefault(d.index, _ToolCall())
            call.id = call.id or d.id or ""
            call.name = call.name or d.name or ""
            call.arguments.append(d.arguments)

    @property
    def event_id(self) -> str:
        return self.generation.request_id

    @property
    def info(self) -> LlmwatchInfo:
        return LlmwatchInfo(
            event_id=self.event_id,
            deployment=self.deployment.name,
            model_version=self.model_version,
            variant=self.variant,
            experiment=self.experiment,
        )

    @property
    def usage(self) -> Usage:
        t = self.timing
        return Usage(
            prompt_tokens=t.input_tokens,
            completion_tokens=t.output_tokens,
            total_tokens=t.input_tokens + t.output_tokens,
        )


def _sse(payload: str) -> str:
    return f"data: {payload}\n\n"


def error_of(e: BaseException) -> ErrorResponse:
    """An engine failure as the client sees it (our message, never a traceback)."""
    status = int(getattr(e, "status_code", 500))
    kind = {400: "invalid_request_error", 502: "upstream_error", 503: "service_unavailable"}.get(status)
    param = getattr(e, "param", None)  # EngineRequestError names the request field it refused
    return ErrorResponse.of(
        status, str(e) or type(e).__name__, type=kind, param=param if isinstance(param, str) else None
    )


class Serving:
    """The gateway's request logic over deployments, engines, a router, a publish callback and metrics."""

    def __init__(
        self,
        *,
        deployments: Mapping[str, Deployment],
        slots: Mapping[str, EngineSlot],
        router: Router,
        settings: GatewaySettings,
        publish: Callable[[InferenceEvent], bool] | None = None,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self.deployments = dict(deployments)
        self.slots = slots
        self._router = router
        self._settings = settings
        self._publish = publish
        self._metrics = metrics or GatewayMetrics()
        self._salt = settings.user_id_salt.get_secret_value().encode()[:64]
        self.publish_refused = 0
        self._warned: set[str] = set()

    # --- public ------------------------------------------------------------------------------

    def models(self) -> ModelList:
        return ModelList(data=[ModelCard(id=name) for name in sorted(self.deployments)])

    def model(self, name: str) -> ModelCard | ErrorResponse:
        """One deployment's card (`GET /v1/models/{id}`), or OpenAI's 404."""
        if name in self.deployments:
            return ModelCard(id=name)
        return ErrorResponse.of(404, f"The model '{name}' does not exist", param="model", code="model_not_found")

    async def chat(
        self, req: ChatCompletionRequest, trace: TraceParent | None = None
    ) -> ChatCompletionResponse | SSEStream | ErrorResponse:
        messages = tuple(_engine_message(m) for m in req.messages)
        return await self._serve("chat", req, prompt="", messages=messages, trace=trace)  # type: ignore[return-value]

    async def completion(
        self, req: CompletionRequest, trace: TraceParent | None = None
    ) -> CompletionResponse | SSEStream | ErrorResponse:
        return await self._serve(  # type: ignore[return-value]
            "completions", req, prompt=req.prompt_text, messages=(), trace=trace
        )

    def hash_id(self, value: str | None) -> str | None:
        """Keyed hash of a user or session id: stable per salt, never reversible to the raw id."""
        if not value:
            return None
        return hashlib.blake2b(value.encode(), key=self._salt, digest_size=16).hexdigest()

    # --- the request path --------------------------------------------------------------------

    async def _serve(
        self,
        endpoint: Endpoint,
        req: ChatCompletionRequest | CompletionRequest,
        *,
        prompt: str,
        messages: tuple[ChatMessage, ...],
        trace: TraceParent | None = None,
    ) -> ChatCompletionResponse | CompletionResponse | SSEStream | ErrorResponse:
        timing = Timing()
        arrived = utcnow()
        resolved = self._resolve(endpoint, req)
        if isinstance(resolved, ErrorResponse):
            return resolved
        deployment, max_tokens, user_id, route, fallback_from = resolved
        slot = self.slots.get(route.model_version)
        if slot is not None and isinstance(req, ChatCompletionRequest):
            refused = self._refuse_unsupported(req, slot.engine, route.model_version)
            if refused is not None:
                self._metrics.rejected(endpoint, "invalid", deployment.name)
                return refused
        generation = GenerationRequest(
            model_version=route.model_version,
            prompt=prompt,
            messages=messages,
            max_tokens=max_tokens,
            temperature=1.0 if req.temperature is None else req.temperature,
            top_p=1.0 if req.top_p is None else req.top_p,
            stop=req.stop_list,
            seed=req.seed,
            request_id=uuid.uuid4().hex,
            hints=dict(req.hints or {}),
            **(_tool_fields(req) if isinstance(req, ChatCompletionRequest) else {}),
        )
        call = _Call(
            endpoint=endpoint,
            deployment=deployment,
            model_version=route.model_version,
            variant=route.variant,
            experiment=route.experiment,
            engine=slot.engine if slot is not None else _NoEngine(),
            generation=generation,
            request=req,
            user_id=user_id,
            session_id=self.hash_id(req.session_id),
            arrived=arrived,
            timing=timing,
            fallback_from=fallback_from,
            trace=trace,
        )
        self._metrics.in_flight.inc()
        unavailable = self._unavailable(route.model_version, slot)
        if unavailable is not None:
            return self._fail(call, unavailable)
        if req.stream:
            return await self._open_stream(call)
        return await self._collect(call)

    def _resolve(
        self, endpoint: Endpoint, req: ChatCompletionRequest | CompletionRequest
    ) -> tuple[Deployment, int, str | None, Route, str | None] | ErrorResponse:
        """Deployment, max_tokens, hashed user, route and the version it fell back from, or why not."""
        deployment = self.deployments.get(req.model)
        if deployment is None:
            self._metrics.rejected(endpoint, "not_found")
            served = ", ".join(sorted(self.deployments)) or "none"
            return ErrorResponse.of(
                404,
                f"The model '{req.model}' does not exist (this gateway serves: {served})",
                param="model",
                code="model_not_found",
            )
        limit = self._settings.max_tokens_limit
        max_tokens = req.requested_max_tokens or min(self._settings.default_max_tokens, limit)
        if max_tokens > limit:
            self._metrics.rejected(endpoint, "invalid", deployment.name)
            return ErrorResponse.of(
                400, f"max_tokens is {max_tokens}, above this gateway's limit of {limit}", param="max_tokens"
            )
        user_id = self.hash_id(req.user)
        try:
            route = self._router.choose(deployment.name, user_id)
        except UnknownDeployment:
            self._metrics.rejected(endpoint, "not_found", deployment.name)
            return ErrorResponse.of(404, f"The model '{req.model}' has no route", param="model", code="model_not_found")
        fallback_from = None
        if route.model_version not in deployment.versions or route.model_version not in self.slots:
            # Weights that name a version this gateway does not serve: fail safe to the baseline, never a 5xx.
            fallback_from = route.model_version
            if fallback_from not in self._warned:
                self._warned.add(fallback_from)
                log.warning("%s: weights route to %r, not served here; using the baseline", req.model, fallback_from)
            route = Route(deployment.baseline, "baseline", None)
        return deployment, max_tokens, user_id, route, fallback_from

    @staticmethod
    def _refuse_unsupported(req: ChatCompletionRequest, engine: Engine, version: str) -> ErrorResponse | None:
        """A 400 naming the field when the request needs what its engine cannot do (never a silent drop)."""
        have = features_of(engine)
        for feature, used, param in (
            (TOOLS, req.uses_tools, "tools"),
            (RESPONSE_FORMAT, req.uses_response_format, "response_format"),
        ):
            if used and feature not in have:
                return ErrorResponse.of(
                    400,
                    f"'{param}' is not supported by engine '{engine.name}' serving model version '{version}' "
                    f"(engines that honour it: openai, vllm)",
                    param=param,
                    code="unsupported_parameter",
                )
        return None

    def _unavailable(self, version: str, slot: EngineSlot | None) -> ErrorResponse | None:
        if slot is None:
            return ErrorResponse.of(500, f"no engine serves model version {version!r}", code="no_engine")
        if slot.state != "ready":
            why = f": {slot.error}" if slot.error else ""
            return ErrorResponse.of(
                503, f"engine {slot.engine.name!r} is {slot.state}{why}", type="service_unavailable"
            )
        return None

    async def _collect(self, call: _Call) -> ChatCompletionResponse | CompletionResponse | ErrorResponse:
        try:
            async for chunk in timed_stream(call.engine, call.generation, call.timing):
                call.add(chunk)
        except asyncio.CancelledError:
            self._finish(call, "cancelled")
            raise
        except Exception as e:
            return self._fail(call, e)
        self._finish(call, "ok")
        return self._response(call)

    async def _open_stream(self, call: _Call) -> SSEStream | ErrorResponse:
        # The first chunk is awaited here, so an engine that fails before any token gets a real HTTP status.
        chunks = timed_stream(call.engine, call.generation, call.timing)
        try:
            first: TokenChunk | None = await anext(chunks)
        except StopAsyncIteration:
            first = None
        except asyncio.CancelledError:
            self._finish(call, "cancelled")
            raise
        except Exception as e:
            return self._fail(call, e)
        return SSEStream(events=self._events(call, first, chunks), info=call.info)

    async def _events(
        self, call: _Call, first: TokenChunk | None, chunks: AsyncIterator[TokenChunk]
    ) -> AsyncIterator[str]:
        status: Literal["ok", "error", "cancelled"] = "cancelled"
        error: ErrorResponse | None = None
        # Events that are ready together go out in one write: the role announcement with the first token, and
        # the closing chunk (it carries the finish reason) with the usage and [DONE].
        head = ""
        if call.endpoint == "chat":
            head = _sse(self._chat_chunk(call, ChatDelta(role="assistant", content=""), None))
        tail = ""
        try:
            chunk = first
            while chunk is not None:
                call.add(chunk)
                if tail:
                    yield head + tail
                    head = tail = ""
                event = _sse(self._chunk(call, chunk))
                if chunk.finish_reason is not None:
                    tail = event
                else:
                    yield head + event
                    head = ""
                chunk = await anext(chunks, None)
            status = "ok"
            if call.request.include_usage:
                tail += _sse(self._usage_chunk(call))
            yield head + tail + "data: [DONE]\n\n"
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as e:
            status = "error"
            error = self._fail(call, e)
            yield _sse(error.model_dump_json())
            yield "data: [DONE]\n\n"
        finally:
            await chunks.aclose()
            if error is None:
                self._finish(call, status)

    # --- formatting ----------------------------------------------------------------------------

    def _response(self, call: _Call) -> ChatCompletionResponse | CompletionResponse:
        text = "".join(call.texts)
        finish = call.timing.finish_reason or "stop"
        if call.endpoint == "chat":
            calls = [
                ToolCallOut(id=c.id, function=FunctionCallOut(name=c.name, arguments="".join(c.arguments)))
                for _, c in sorted(call.tool_calls.items())
            ]
            message = ChatMessageOut(content=text or (None if calls else ""), tool_calls=calls or None)
            return ChatCompletionResponse(
                id=f"chatcmpl-{call.event_id}",
                model=call.deployment.name,
                choices=[ChatChoice(message=message, finish_reason=finish)],
                usage=call.usage,
                llmwatch=call.info,
            )
        return CompletionResponse(
            id=f"cmpl-{call.event_id}",
            model=call.deployment.name,
            choices=[CompletionChoice(text=text, finish_reason=finish)],
            usage=call.usage,
            llmwatch=call.info,
        )

    def _chunk(self, call: _Call, chunk: TokenChunk) -> str:
        if call.endpoint == "chat":
            if chunk.tool_calls:
                deltas = [
                    ToolCallDelta(
                        index=d.index,
                        id=d.id,
                        type="function" if d.id else None,
                        function=FunctionCallOut(name=d.name, arguments=d.arguments),
                    )
                    for d in chunk.tool_calls
                ]
                delta = ChatDelta(content=chunk.text or None, tool_calls=deltas)
            else:
                delta = ChatDelta(content=chunk.text) if chunk.text or chunk.tokens else ChatDelta()
            return self._chat_chunk(call, delta, chunk.finish_reason)
        choice = CompletionChoice(text=chunk.text, finish_reason=chunk.finish_reason)
        return CompletionResponse(
            id=f"cmpl-{call.event_id}", model=call.deployment.name, choices=[choice]
        ).model_dump_json(exclude_none=True)

    def _chat_chunk(self, call: _Call, delta: ChatDelta, finish: str | None) -> str:
        return ChatCompletionChunk(
            id=f"chatcmpl-{call.event_id}",
            model=call.deployment.name,
            choices=[ChatChunkChoice(delta=delta, finish_reason=finish)],
        ).model_dump_json(exclude_none=True)

    def _usage_chunk(self, call: _Call) -> str:
        if call.endpoint == "chat":
            return ChatCompletionChunk(
                id=f"chatcmpl-{call.event_id}",
                model=call.deployment.name,
                choices=[],
                usage=call.usage,
                llmwatch=call.info,
            ).model_dump_json(exclude_none=True)
        return CompletionResponse(
            id=f"cmpl-{call.event_id}", model=call.deployment.name, choices=[], usage=call.usage, llmwatch=call.info
        ).model_dump_json(exclude_none=True)

    # --- accounting ----------------------------------------------------------------------------

    def _fail(self, call: _Call, e: BaseException | ErrorResponse) -> ErrorResponse:
        error = e if isinstance(e, ErrorResponse) else _as_engine_error(e)
        error.llmwatch = call.info
        self._finish(call, "error", error)
        return error

    def _finish(
        self, call: _Call, status: Literal["ok", "error", "cancelled"], error: ErrorResponse | None = None
    ) -> None:
        """Close the books on a request exactly once: metrics, then the event (enqueued, never awaited)."""
        if call.done:
            return
        call.done = True
        t = call.timing
        if t.e2e_ms is None:
            t.e2e_ms = (time.perf_counter() - t.started) * 1000
        self._metrics.in_flight.dec()
        ttft, tpot = _latencies(t)
        self._metrics.finished(
            endpoint=call.endpoint,
            deployment=call.deployment.name,
            model_version=call.model_version,
            variant=call.variant,
            status=status,
            stream=call.request.stream,
            e2e_ms=t.e2e_ms,
            ttft_ms=ttft,
            tpot_ms=tpot,
            input_tokens=t.input_tokens,
            output_tokens=t.output_tokens,
        )
        if self._publish is not None:
            self._publish_event(call, status, error, ttft, tpot)

    def _publish_event(
        self,
        call: _Call,
        status: Literal["ok", "error", "cancelled"],
        error: ErrorResponse | None,
        ttft: float | None,
        tpot: float | None,
    ) -> None:
        t = call.timing
        metrics = t.engine_metrics
        attributes = {"endpoint": call.endpoint, "stream": "true" if call.request.stream else "false"}
        if system_chars := call.generation.system_chars:
            attributes[SYSTEM_CHARS_ATTR] = str(system_chars)
        if call.fallback_from is not None:
            attributes["route_fallback_from"] = call.fallback_from
        attributes["ttft_source"] = "engine" if "ttft_ms" in metrics else "gateway"
        if t.ttft_ms is not None:
            attributes["gateway_ttft_ms"] = f"{t.ttft_ms:.3f}"
        for key, value in metrics.items():
            if key not in PREFERRED_KEYS:
                attributes[f"engine.{key}"] = f"{value:.6g}"
        cost = metrics.get("cost_usd", metrics.get("sim_cost_usd"))
        req = call.request
        text = "".join(call.texts)
        finish = {"ok": t.finish_reason or "stop", "error": "error", "cancelled": "cancelled"}[status]
        # plain dicts: the event validates them in one pass (cheaper than building the models one by one)
        output = [{"role": "assistant", "parts": _output_parts(text, call), "finish_reason": finish}]
        trace = call.trace
        try:
            event = InferenceEvent(
                event_id=call.event_id,
                ts=call.arrived,
                deployment=call.deployment.name,
                model=call.deployment.name,
                model_version=call.model_version,
                variant=call.variant,
                experiment=call.experiment,
                prompt_version=req.prompt_version or "default",
                user_id=call.user_id,
                session_id=call.session_id,
                prompt=call.generation.text,
                response=text,
                context=req.context,
                input_tokens=t.input_tokens,
                output_tokens=max(t.output_tokens, 0),
                ttft_ms=ttft,
                tpot_ms=tpot,
                e2e_ms=t.e2e_ms,
                status=status,
                error=error.error.message[:2000] if error is not None else None,
                finish_reason=finish,
                engine=call.engine.name,
                simulated=bool(getattr(call.engine, "simulated", False)),
                source=self._settings.source,
                cost_usd=cost if cost is not None and cost >= 0 else None,
                attributes=attributes,
                operation_name="chat" if call.endpoint == "chat" else "text_completion",
                provider_name=call.engine.name,
                response_model=call.model_version,
                response_id=f"{'chatcmpl' if call.endpoint == 'chat' else 'cmpl'}-{call.event_id}",
                input_messages=_input_messages(call),
                output_messages=output,
                tool_definitions=[d.model_dump(exclude_none=True) for d in req.tools]
                if isinstance(req, ChatCompletionRequest) and req.tools
                else None,
                finish_reasons=[finish],
                request_params=_request_params(call),
                error_type=error.error.type if error is not None else None,
                cached_input_tokens=t.cached_tokens,
                reasoning_tokens=t.reasoning_tokens,
                trace_id=trace.trace_id if trace is not None else None,
                span_id=call.event_id[:16] if trace is not None and _is_hex(call.event_id[:16]) else None,
                parent_span_id=trace.parent_span_id if trace is not None else None,
            )
        except ValueError as e:  # a bug in our accounting must not fail the client's request
            log.error("could not build the InferenceEvent of %s: %s", call.event_id, e)
            return
        try:
            accepted = self._publish(event)  # type: ignore[misc]
        except Exception:
            log.exception("publishing event %s failed", call.event_id)
            accepted = False
        if not accepted:
            self.publish_refused += 1


def _engine_message(m: ChatMessageIn) -> ChatMessage:
    calls = tuple(c.model_dump() for c in m.tool_calls or ())
    return ChatMessage(role=m.role, content=m.text, tool_calls=calls, tool_call_id=m.tool_call_id, name=m.name)


def _tool_fields(req: ChatCompletionRequest) -> dict[str, Any]:
    """The tool and format fields of a chat request, in OpenAI's JSON shape, for GenerationRequest."""
    choice = req.tool_choice
    return {
        "tools": tuple(t.model_dump(exclude_none=True) for t in req.tools or ()),
        "tool_choice": choice.model_dump() if isinstance(choice, NamedToolChoice) else choice,
        "parallel_tool_calls": req.parallel_tool_calls,
        "response_format": req.response_format.model_dump(by_alias=True, exclude_none=True)
        if req.response_format is not None
        else None,
    }


def _input_messages(call: _Call) -> list[dict[str, Any]]:
    """The request as `gen_ai.input.messages` (schemas.genai.ChatMessage's shape): text, earlier tool calls, results."""
    if not call.generation.messages:
        return [{"role": "user", "parts": [{"type": "text", "content": call.generation.prompt}]}]
    out = []
    for m in call.generation.messages:
        parts: list[dict[str, Any]] = []
        if m.role == "tool":
            parts.append({"type": "tool_call_response", "id": m.tool_call_id, "response": m.content})
        elif m.content:
            parts.append({"type": "text", "content": m.content})
        for c in m.tool_calls:
            function = c.get("function") or {}
            parts.append(
                {
                    "type": "tool_call",
                    "id": c.get("id"),
                    "name": function.get("name", ""),
                    "arguments": function.get("arguments", ""),
                }
            )
        out.append({"role": m.role, "parts": parts, "name": m.name})
    return out


def _output_parts(text: str, call: _Call) -> list[dict[str, Any]]:
    parts = [{"type": "text", "content": text}] if text or not call.tool_calls else []
    for _, c in sorted(call.tool_calls.items()):
        parts.append({"type": "tool_call", "id": c.id or None, "name": c.name, "arguments": "".join(c.arguments)})
    return parts


def _request_params(call: _Call) -> dict[str, Any]:
    req, gen = call.request, call.generation
    output_type = "text"
    choice: str | None = None
    if isinstance(req, ChatCompletionRequest):
        if req.uses_response_format:
            output_type = "json"
        tc = req.tool_choice
        choice = tc.function.name if isinstance(tc, NamedToolChoice) else tc
    return {
        "temperature": req.temperature,
        "top_p": req.top_p,
        "max_tokens": gen.max_tokens,
        "seed": req.seed,
        "stop_sequences": list(req.stop_list),
        "stream": req.stream,
        "output_type": output_type,
        "tool_choice": choice,
    }


def _latencies(t: Timing) -> tuple[float | None, float | None]:
    """TTFT and TPOT for the event: the engine's own when it reported them, else ours."""
    ttft = t.engine_metrics.get("ttft_ms", t.ttft_ms)
    tpot = t.engine_metrics.get("tpot_ms", t.tpot_ms)
    if ttft is not None and t.e2e_ms is not None:
        ttft = min(ttft, t.e2e_ms)
    return ttft, tpot


def _as_engine_error(e: BaseException) -> ErrorResponse:
    if not isinstance(e, EngineError):
        log.exception("engine raised an unexpected %s", type(e).__name__, exc_info=e)
        return ErrorResponse.of(500, f"engine failed: {type(e).__name__}: {e}")
    return error_of(e)


class _NoEngine:
    """Stands in where routing chose a version no engine serves (the request fails with a 500 and an event)."""

    name = "none"

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def versions(self) -> list[str]:
        return []

    async def stream(self, request: GenerationRequest) -> AsyncIterator[TokenChunk]:
        raise EngineError(f"no engine serves model version {request.model_version!r}")
        yield  # pragma: no cover
