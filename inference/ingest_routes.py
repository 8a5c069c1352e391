"""HTTP routes of the ingest service (`llmwatch ingest`, and the gateway with `LLMWATCH_GATEWAY__INGEST=true`).

OTLP/HTTP at /v1/traces and /v1/logs (protobuf or JSON, gzip allowed), llmwatch's own JSON at /v1/events and
/v1/feedback. The same API keys, rate limits and body limit as the gateway's /v1 routes, checked before the body is
read. `request.app.state.ingest_host` is whatever hosts the routes: it has `guard`, `settings`, `metrics`, `ingest`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .ingest import Ingest, Reply
from .protocol import ErrorResponse
from .routes import _body, reply

router = APIRouter()


def _host(request: Request):  # type: ignore[no-untyped-def]
    return request.app.state.ingest_host


async def _read(request: Request, signal: str) -> bytes | Response:
    host = _host(request)
    guard = host.guard
    denied = None if guard is None else guard.check(request.scope)
    if denied is not None:
        return denied
    limit = host.settings.gateway.max_body_bytes
    body = await _body(request, limit)
    if body is None:
        host.metrics.ingested(signal, "invalid", 1)
        return reply(
            ErrorResponse.of(
                413, f"The request body is too large: this service accepts at most {limit} bytes.", code="too_large"
            )
        )
    return body


def _answer(result: Reply | ErrorResponse) -> Response:
    if isinstance(result, Reply):
        return Response(result.body, media_type=result.media_type)
    response = reply(result)
    if result.status_code == 503:
        response.headers["retry-after"] = "1"
    return response


def _ingest(request: Request) -> Ingest:
    ingest: Ingest | None = _host(request).ingest
    assert ingest is not None, "ingest routes served before the ingest service started"
    return ingest


@router.post("/v1/traces")
async def traces(request: Request) -> Response:
    body = await _read(request, "traces")
    if isinstance(body, Response):
        return body
    h = request.headers
    return _answer(_ingest(request).traces(body, h.get("content-type"), h.get("content-encoding")))


@router.post("/v1/logs")
async def logs(request: Request) -> Response:
    body = await _read(request, "logs")
    if isinstance(body, Response):
        return body
    h = request.headers
    return _answer(_ingest(request).logs(body, h.get("content-type"), h.get("content-encoding")))


@router.post("/v1/events")
async def events(request: Request) -> Response:
    body = await _read(request, "events")
    if isinstance(body, Response):
        return body
    return _answer(_ingest(request).events(body))


@router.post("/v1/feedback")
async def feedback(request: Request) -> Response:
    body = await _read(request, "feedback")
    if isinstance(body, Response):
        return body
    return _answer(_ingest(request).feedback(body))
