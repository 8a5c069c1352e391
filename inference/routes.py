"""HTTP routes of the gateway: a thin mapping of serving's values to JSON, SSE or an OpenAI error body."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from .protocol import ChatCompletionRequest, CompletionRequest, ErrorResponse, LlmwatchInfo
from .serving import Serving, SSEStream, TraceParent

router = APIRouter()
RequestT = TypeVar("RequestT", ChatCompletionRequest, CompletionRequest)
ResultT = TypeVar("ResultT")

_JSON = "application/json"


class SSEResponse(Response):
    """Server-Sent Events, stopped as soon as the client hangs up.

    Starlette's StreamingResponse does the same with an anyio task group per request, which costs about as
    much as the rest of a streamed request; two plain asyncio tasks do it for a fraction.
    """

    media_type = "text/event-stream"

    def __init__(self, events: AsyncIterator[str], headers: Mapping[str, str]) -> None:
        self.events = events
        self.status_code = 200
        self.background = None
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def stream() -> None:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            async for event in self.events:
                await send({"type": "http.response.body", "body": event.encode(), "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        async def hang_up() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        streaming, watching = asyncio.create_task(stream()), asyncio.create_task(hang_up())
        try:
            await asyncio.wait((streaming, watching), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (streaming, watching):
                task.cancel()  # a hang-up cancels the stream, and with it the engine's generation
            await asyncio.gather(streaming, watching, return_exceptions=True)
        if not streaming.cancelled() and streaming.exception() is not None and not watching.done():
            raise streaming.exception()  # type: ignore[misc]


def _serving(request: Request) -> Serving:
    return request.app.state.gateway.serving


def _headers(info: LlmwatchInfo | None) -> dict[str, str]:
    if info is None:
        return {}
    return {
        "x-request-id": info.event_id,
        "x-llmwatch-event-id": info.event_id,
        "x-llmwatch-model-version": info.model_version,
        "x-llmwatch-variant": info.variant,
    }


def reply(result: Any) -> Response:
    """A serving result as an HTTP response."""
    if isinstance(result, Response):
        return result
    if isinstance(result, ErrorResponse):
        body = result.model_dump_json()
        return Response(body, status_code=result.status_code, media_type=_JSON, headers=_headers(result.llmwatch))
    if isinstance(result, SSEStream):
        headers = {**_headers(result.info), "cache-control": "no-cache", "x-accel-buffering": "no"}
        return SSEResponse(result.events, headers=headers)
    headers = _headers(getattr(result, "llmwatch", None))
    return Response(result.model_dump_json(exclude_none=True), media_type=_JSON, headers=headers)


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = {"content": {_JSON: {"schema": model.model_json_schema()}}, "required": True}
    return {"requestBody": schema}


def _denied(request: Request) -> Response | None:
    """The guard's 401/429 when API keys or a rate limit are configured (checked before the body is read)."""
    guard = request.app.state.gateway.guard
    return None if guard is None else guard.check(request.scope)


async def _body(request: Request, limit: int) -> bytes | None:
    """The request body, or None when it is larger than `limit` bytes (then no more than that is read)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit():
        if int(declared) > limit:
            return None
        body = await request.body()
        return body if len(body) <= limit else None
    parts: list[bytes] = []
    size = 0
    async for part in request.stream():  # chunked: count as it arrives
        size += len(part)
        if size > limit:
            return None
        parts.append(part)
    return b"".join(parts)


async def _parse(request: Request, model: type[RequestT], endpoint: str) -> RequestT | ErrorResponse:
    # Validated here with pydantic-core straight from bytes: FastAPI's body machinery costs more per request
    # than the rest of the gateway together (see `llmwatch bench gateway`).
    gateway = request.app.state.gateway
    limit = gateway.settings.gateway.max_body_bytes
    body = await _body(request, limit)
    if body is None:
        gateway.metrics.rejected(endpoint, "invalid")
        return ErrorResponse.of(
            413, f"The request body is too large: this gateway accepts at most {limit} bytes.", code="too_large"
        )
    try:
        return model.model_validate_json(body)
    except ValidationError as e:
        gateway.metrics.rejected(endpoint, "invalid")
        errors = e.errors()
        error = invalid_request(errors)
        if errors and errors[0]["type"] == "json_invalid":  # say so when the cause is the encoding, not the syntax
            try:
                body.decode()
            except UnicodeDecodeError as u:
                error.error.message = f"The request body is not valid JSON: not UTF-8 (byte {u.start})"
        return error


async def _unless_gone(request: Request, work: Awaitable[ResultT]) -> ResultT | Response:
    """`work` (the engine's whole answer, or a stream's first token), cancelled if the client hangs up first.

    Nothing else notices a hang-up before the response starts, and the engine would generate on for no one. The
    cancellation runs serving's own path for it (a "cancelled" event); the 499 returned then reaches no one.
    """
    handler = asyncio.current_task()
    assert handler is not None
    gone = False

    async def hang_up() -> None:
        nonlocal gone
        while (await request.receive())["type"] != "http.disconnect":
            pass
        gone = True
        handler.cancel()

    watching = asyncio.create_task(hang_up())
    try:
        return await work
    except asyncio.CancelledError:
        if gone and handler.uncancel() == 0:  # ours alone (a server shutdown still propagates)
            return Response(status_code=499)
        raise
    finally:
        watching.cancel()


@router.post("/v1/chat/completions", openapi_extra=_schema(ChatCompletionRequest))
async def chat_completions(request: Request) -> Response:
    denied = _denied(request)
    if denied is not None:
        return denied
    req = await _parse(request, ChatCompletionRequest, "chat")
    if isinstance(req, ErrorResponse):
        return reply(req)
    trace = TraceParent.parse(request.headers.get("traceparent"))
    return reply(await _unless_gone(request, _serving(request).chat(req, trace)))


@router.post("/v1/completions", openapi_extra=_schema(CompletionRequest))
async def completions(request: Request) -> Response:
    denied = _denied(request)
    if denied is not None:
        return denied
    req = await _parse(request, CompletionRequest, "completions")
    if isinstance(req, ErrorResponse):
        return reply(req)
    trace = TraceParent.parse(request.headers.get("traceparent"))
    return reply(await _unless_gone(request, _serving(request).completion(req, trace)))


@router.get("/v1/models")
async def models(request: Request) -> Response:
    denied = _denied(request)
    return denied if denied is not None else reply(_serving(request).models())


@router.get("/v1/models/{model_id:path}")
async def model(request: Request, model_id: str) -> Response:
    denied = _denied(request)
    return denied if denied is not None else reply(_serving(request).model(model_id))


@router.get("/health")
async def health() -> Response:
    return Response(b'{"status":"ok"}', media_type=_JSON)


@router.get("/ready")
async def ready(request: Request) -> Response:
    report = await request.app.state.gateway.check_ready()
    return Response(report.model_dump_json(), status_code=200 if report.ready else 503, media_type=_JSON)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    # Open like /health and /ready (Prometheus scrapes it without a key): restrict it at the network level.
    body = request.app.state.gateway.render_metrics()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


# --- errors in OpenAI's shape ------------------------------------------------------------------


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or "body"


def invalid_request(errors: Sequence[Any]) -> ErrorResponse:
    """Pydantic's errors as OpenAI's 400, naming the first offending field."""
    first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
    param: str | None = _field(tuple(first.get("loc", ())))
    if first.get("type") == "json_invalid":
        reason = first.get("ctx", {}).get("error", "decode error")
        message, param = f"The request body is not valid JSON: {reason}", None
    elif first.get("type") == "missing":
        message = f"Missing required parameter: '{param}'"
    else:
        message = f"Invalid value for '{param}': {first.get('msg')}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return ErrorResponse.of(400, message, param=param)


async def validation_error(request: Request, exc: Exception) -> Response:
    """FastAPI's 422 (for any route that declares a body model) becomes OpenAI's 400."""
    assert isinstance(exc, RequestValidationError)
    return reply(invalid_request(exc.errors()))


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
    return reply(ErrorResponse.of(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}", code=code))
