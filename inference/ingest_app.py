"""Wiring of `llmwatch ingest`: the ingest routes, the event publisher, keys and metrics, without engines.

A service that already has OpenTelemetry (or speaks HTTP but not Kafka) points its exporter here. The publisher
starts first and stops last, so what was accepted is flushed after the last request. /health answers at once;
/ready says 503 until Kafka is reachable.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from llmwatch.settings import Settings

from . import ingest_routes, routes
from .gateway_metrics import GatewayMetrics
from .ingest import Ingest
from .security import Guard

_JSON = "application/json"


@dataclass
class IngestServer:
    """What one ingest process runs; `ingest` exists while `running()` is entered."""

    settings: Settings
    publisher: Any
    metrics: GatewayMetrics = field(init=False)
    guard: Guard | None = field(init=False)
    ingest: Ingest | None = None

    def __post_init__(self) -> None:
        self.metrics = GatewayMetrics(publisher=lambda: self.publisher)
        self.guard = Guard.from_settings(self.settings.gateway, self.metrics)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[IngestServer]:
        await self.publisher.start()
        try:
            self.ingest = Ingest(self.settings.gateway, self.publisher.publish, self.publisher.room, self.metrics)
            yield self
        finally:
            self.ingest = None
            await self.publisher.stop()

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        connected = bool(self.publisher.connected)
        report: dict[str, Any] = {"ready": connected, "kafka": "connected" if connected else "unreachable"}
        if not connected:
            report["reasons"] = [f"Kafka at {self.settings.kafka} is not reachable"]
        return connected, report


def build_ingest(settings: Settings, publisher_factory: Callable[[Settings, int], Any] | None = None) -> IngestServer:
    """An ingest server publishing to `settings.kafka` (the price table of settings applies to its events)."""
    if publisher_factory is None:
        from .publisher import EventPublisher

        publisher = EventPublisher(settings, max_buffer=settings.gateway.publish_buffer, client_id="llmwatch-ingest")
    else:
        publisher = publisher_factory(settings, settings.gateway.publish_buffer)
    return IngestServer(settings=settings, publisher=publisher)


def create_ingest_app(server: IngestServer) -> FastAPI:
    """The ASGI app of `llmwatch ingest`; its lifespan runs `server.running()`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with server.running():
            yield

    app = FastAPI(title="llmwatch ingest", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.ingest_host = server
    app.include_router(ingest_routes.router)

    @app.get("/health")
    async def health() -> Response:
        return Response(b'{"status":"ok"}', media_type=_JSON)

    @app.get("/ready")
    async def ready() -> Response:
        ok, report = server.readiness()
        return Response(json.dumps(report), status_code=200 if ok else 503, media_type=_JSON)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(server.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    app.add_exception_handler(RequestValidationError, routes.validation_error)
    app.add_exception_handler(StarletteHTTPException, routes.http_error)
    return app
