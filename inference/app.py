"""Wiring of one gateway: engines, deployments, router, weights watcher, publisher, metrics, FastAPI app.

Everything with a lifetime starts and stops in one lifespan context manager, in dependency order (publisher
first, engines last; the reverse on the way down so buffered events are flushed after the last request).
Engines start in the background: /health answers at once, /ready says 503 with the reason until they are
loaded, an engine behind an upstream (openai) gets an answer from it, Kafka is reachable and the weights topic
is replayed (or `watch_wait_s` passed: requests route to the baselines until weights arrive).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import time
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from llmwatch.errors import ConfigError
from llmwatch.pricing import ModelPrice
from llmwatch.settings import Settings

from . import ingest_routes, routes
from .engine_base import Engine
from .engines import EngineSpec, build_engine
from .gateway_metrics import GatewayMetrics
from .ingest import Ingest
from .router import Router, WeightsWatcher
from .security import Guard
from .serving import Deployment, EngineSlot, Serving

log = logging.getLogger(__name__)


# --- configuration -----------------------------------------------------------------------------


class DeploymentSpec(BaseModel):
    """`[[deployments]]`: a name clients put in `model`, its baseline, and the versions it may route to."""

    name: str = Field(min_length=1)
    baseline: str | None = Field(None, description="Default: 'baseline' if served, else the first version.")
    versions: list[str] = Field(default_factory=list, description="Default: every version the engines serve.")


class GatewayConfig(BaseModel):
    """What `llmwatch serve --config FILE` reads (TOML, or JSON with the same shape). For example:

    [[engines]]
    kind = "vllm"
    model = "/models/chat-v1"
    versions = ["v1"]

    [[engines]]
    kind = "openai"
    upstream = "http://10.0.0.7:8000/v1"
    versions = ["chat-v2"]          # upstream model ids; default: its /v1/models

    [[deployments]]
    name = "chat"                   # what clients send as `model`
    baseline = "v1"
    versions = ["v1", "chat-v2"]    # the controller's weights may route among these

    [prices."chat-v2"]              # USD per million tokens: events of chat-v2 get a cost_usd
    input = 0.5
    output = 1.5
    cached_input = 0.25
    """

    engines: list[EngineSpec] = Field(min_length=1)
    deployments: list[DeploymentSpec] = Field(default_factory=list)
    prices: dict[str, ModelPrice] = Field(
        default_factory=dict,
        description='USD per million tokens by model version ([prices."v1"] input = 0.5, output = 1.5, '
        "cached_input = 0.25), on top of LLMWATCH_PRICES.",
    )


def load_config(path: Path) -> GatewayConfig:
    try:
        raw = path.read_bytes()
        data = json.loads(raw) if path.suffix == ".json" else tomllib.loads(raw.decode())
        return GatewayConfig.model_validate(data)
    except (OSError, ValueError, ValidationError) as e:
        raise ConfigError(f"gateway config {path}: {e}") from e


def config_from_settings(settings: Settings) -> GatewayConfig:
    """The one-engine config that `llmwatch serve --engine … [--model …] [--upstream …]` means."""
    gw = settings.gateway
    if gw.config is not None:
        return load_config(gw.config)
    options: dict[str, Any] = {}
    if gw.engine == "openai" and gw.upstream_api_key is not None:
        options["api_key"] = gw.upstream_api_key
    try:
        spec = EngineSpec(kind=gw.engine, model=gw.model, upstream=gw.upstream, options=options)
    except ValidationError as e:
        raise ConfigError(f"engine {gw.engine}: {e.errors()[0]['msg']}") from e
    return GatewayConfig(engines=[spec], deployments=[DeploymentSpec(name=gw.deployment)])


def resolve_deployments(specs: list[DeploymentSpec], served: list[str]) -> dict[str, Deployment]:
    """Fill defaults and check every named version is served by some engine."""
    if not served:
        raise ConfigError("the engines serve no model version")
    out: dict[str, Deployment] = {}
    for spec in specs or [DeploymentSpec(name="demo")]:
        versions = spec.versions or list(served)
        baseline = spec.baseline or ("baseline" if "baseline" in versions else versions[0])
        missing = [v for v in {*versions, baseline} if v not in served]
        if missing:
            raise ConfigError(f"deployment {spec.name!r} names versions no engine serves: {sorted(missing)}")
        if baseline not in versions:
            versions.append(baseline)
        out[spec.name] = Deployment(name=spec.name, baseline=baseline, versions=tuple(versions))
    return out


# --- the running gateway -----------------------------------------------------------------------


class Readiness(BaseModel):
    ready: bool
    engines: dict[str, str]
    kafka: str
    #: disabled | replaying | replayed | defaults (not replayed in time: baselines until weights arrive)
    weights: str = "disabled"
    reasons: list[str]


@dataclass
class Gateway:
    """Everything one gateway process runs. `serving` exists once the lifespan has resolved engine versions."""

    settings: Settings
    config: GatewayConfig
    engines: list[Engine]
    publisher: Any = None
    watch_weights: bool = True
    watch_wait_s: float = 5.0
    #: False when the caller started the engines and will stop them (one vLLM engine shared by many gateways)
    owns_engines: bool = True
    metrics: GatewayMetrics = field(init=False)
    #: API keys and rate limits of /v1 (None when neither is configured: nothing is checked)
    guard: Guard | None = field(init=False)
    #: the ingest routes' logic (settings.gateway.ingest), once the publisher runs
    ingest: Ingest | None = None
    router: Router | None = None
    slots: dict[str, EngineSlot] = field(default_factory=dict)
    serving: Serving | None = None
    _watcher: WeightsWatcher | None = None
    _watch_until: float = 0.0
    _starting: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.metrics = GatewayMetrics(publisher=lambda: self.publisher)
        self.guard = Guard.from_settings(self.settings.gateway, self.metrics)

    def readiness(self, upstream_errors: dict[int, str] | None = None) -> Readiness:
        """What /ready says; `upstream_errors` (engine id: why, from `check_ready`) marks upstreams that failed."""
        upstream_errors = upstream_errors or {}
        engines: dict[str, str] = {}
        reasons: list[str] = []
        for v, s in sorted(self.slots.items()):
            error = upstream_errors.get(id(s.engine)) if s.state == "ready" else None
            engines[f"{s.engine.name}:{v}"] = "unreachable" if error else s.state
            if error:
                reasons.append(f"engine {s.engine.name} ({v}): {error}")
            elif s.state != "ready":
                reasons.append(f"engine {s.engine.name} ({v}) is {s.state}" + (f": {s.error}" if s.error else ""))
        if not self.slots:
            reasons.append("engines are not set up yet")
        if self.publisher is None:
            kafka = "disabled"
        elif self.publisher.connected:
            kafka = "connected"
        else:
            kafka = "unreachable"
            error = getattr(self.publisher, "last_error", None)
            reasons.append(f"Kafka at {self.settings.kafka} is not reachable" + (f" ({error})" if error else ""))
        weights = self._weights_state()
        if weights == "replaying":
            reasons.append(f"weights topic {self.settings.topics.weights} is being replayed")
        return Readiness(ready=not reasons, engines=engines, kafka=kafka, weights=weights, reasons=reasons)

    def _weights_state(self) -> str:
        # Requests never wait for the replay (they route to the baselines meanwhile); /ready does, for at most
        # `watch_wait_s`, so a balancer sends traffic once the rollout's split (and A/B arms) apply.
        if self._watcher is None:
            return "disabled"
        if self._watcher.caught_up:
            return "replayed"
        return "replaying" if time.monotonic() < self._watch_until else "defaults"

    async def check_ready(self) -> Readiness:
        """`readiness` after asking the engines that sit behind an upstream whether it answers (cached by them)."""
        checks: dict[int, Callable[[], Awaitable[str | None]]] = {}
        for slot in self.slots.values():
            check = getattr(slot.engine, "check", None)
            if slot.state == "ready" and check is not None:
                checks[id(slot.engine)] = check
        errors: dict[int, str] = {}
        if checks:
            results = await asyncio.gather(*(check() for check in checks.values()), return_exceptions=True)
            for key, result in zip(checks, results, strict=True):
                if isinstance(result, BaseException):
                    errors[key] = f"upstream check failed: {type(result).__name__}: {result}"
                elif result:
                    errors[key] = result
        return self.readiness(errors)

    def render_metrics(self) -> bytes:
        from prometheus_client import REGISTRY

        # vLLM (when in use) registers its own request metrics in the default registry: expose them too.
        return self.metrics.render(REGISTRY)

    async def wait_ready(self, timeout_s: float) -> Readiness:
        """Poll readiness until ready or `timeout_s`; returns the last report."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            report = await self.check_ready()
            if report.ready or asyncio.get_running_loop().time() >= deadline:
                return report
            if any(s.state == "failed" for s in self.slots.values()):
                return report
            await asyncio.sleep(0.05)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Gateway]:
        async with AsyncExitStack() as stack:
            if self.publisher is not None:
                await self.publisher.start()
                stack.push_async_callback(self.publisher.stop)
            await self._resolve_versions()
            deployments = resolve_deployments(self.config.deployments, sorted(self.slots))
            self.router = Router({d.name: d.baseline for d in deployments.values()})
            if self.watch_weights:
                self._watcher = WeightsWatcher(self.settings, self.router)
                await self._watcher.start(wait_s=0)  # serve at once: /ready waits for the replay, requests don't
                self._watch_until = time.monotonic() + self.watch_wait_s
                stack.push_async_callback(self._watcher.stop)
            if self.settings.gateway.ingest and self.publisher is not None:
                self.ingest = Ingest(self.settings.gateway, self.publisher.publish, self.publisher.room, self.metrics)
            self.serving = Serving(
                deployments=deployments,
                slots=self.slots,
                router=self.router,
                settings=self.settings.gateway,
                publish=self.publisher.publish if self.publisher is not None else None,
                metrics=self.metrics,
            )
            self._starting = asyncio.create_task(self._start_engines(), name="llmwatch-engines-start")
            stack.push_async_callback(self._stop_engines)
            # What exists now lives as long as the process: keep it out of the collector's full passes, which
            # otherwise scan it all and show up as multi-millisecond pauses in the tail latency.
            gc.freeze()
            yield self

    async def _resolve_versions(self) -> None:
        """Versions of each engine; an engine that learns them from its upstream starts here, in the foreground."""
        for engine in self.engines:
            ready = not self.owns_engines and bool(getattr(engine, "loaded", True))
            if not engine.versions() and self.owns_engines:
                await engine.start()
                ready = True
            for version in engine.versions():
                if version in self.slots:
                    raise ConfigError(f"model version {version!r} is served by two engines")
                self.slots[version] = EngineSlot(engine=engine, state="ready" if ready else "starting")

    async def _start_engines(self) -> None:
        for engine in self.engines:
            slots = [s for s in self.slots.values() if s.engine is engine]
            if all(s.state == "ready" for s in slots):
                continue
            try:
                await engine.start()
            except Exception as e:
                log.error("engine %s failed to start: %s", engine.name, e)
                for s in slots:
                    s.state, s.error = "failed", str(e) or type(e).__name__
                continue
            for s in slots:
                s.state = "ready"

    async def _stop_engines(self) -> None:
        if self._starting is not None:
            self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._starting
        for engine in self.engines if self.owns_engines else []:
            try:
                await engine.stop()
            except Exception as e:
                log.warning("engine %s did not stop cleanly: %s", engine.name, e)
        for slot in self.slots.values():
            slot.state = "stopped"


def build_gateway(
    settings: Settings,
    config: GatewayConfig | None = None,
    *,
    engines: list[Engine] | None = None,
    owns_engines: bool = True,
    publish: bool = True,
    watch_weights: bool = True,
    publisher_factory: Callable[[Settings, int], Any] | None = None,
) -> Gateway:
    """A gateway for `config` (default: from settings); pass `engines` to reuse started ones (tests, benches)."""
    config = config or config_from_settings(settings)
    publisher = None
    if publish:
        if publisher_factory is None:
            from .publisher import EventPublisher

            prices = settings.price_table.merged(config.prices)
            publisher = EventPublisher(settings, max_buffer=settings.gateway.publish_buffer, prices=prices)
        else:
            publisher = publisher_factory(settings, settings.gateway.publish_buffer)
    return Gateway(
        settings=settings,
        config=config,
        engines=engines if engines is not None else [build_engine(spec) for spec in config.engines],
        publisher=publisher,
        watch_weights=watch_weights,
        owns_engines=owns_engines,
    )


def create_app(gateway: Gateway) -> FastAPI:
    """The ASGI app; its lifespan runs `gateway.running()`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with gateway.running():
            yield

    app = FastAPI(title="llmwatch gateway", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.gateway = gateway
    app.include_router(routes.router)
    if gateway.settings.gateway.ingest:
        if gateway.publisher is None:
            raise ConfigError("the ingest routes need the event publisher (the gateway runs without one)")
        app.state.ingest_host = gateway
        app.include_router(ingest_routes.router)
    app.add_exception_handler(RequestValidationError, routes.validation_error)
    app.add_exception_handler(StarletteHTTPException, routes.http_error)
    return app


@asynccontextmanager
async def serve_http(app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Run `app` under uvicorn on this event loop (tests, benches); yields its base URL (port 0: a free one)."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
    task = asyncio.create_task(server.serve(), name="llmwatch-gateway-http")
    while not server.started:
        if task.done():
            task.result()  # raises what stopped it (port in use, failed lifespan)
            raise RuntimeError("uvicorn exited before it started")
        await asyncio.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        await task
