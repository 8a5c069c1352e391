"""What a gateway notices around its requests: an upstream that went away (/ready), a client that hung up (the
engine stops). Real uvicorn servers on loopback ports: httpx's ASGI transport can neither drop a connection nor
stop an upstream. No broker: events are captured from the publisher."""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from llmwatch.inference.app import DeploymentSpec, Gateway, GatewayConfig, build_gateway, create_app, serve_http
from llmwatch.inference.engines import EngineSpec
from llmwatch.inference.publisher import PublisherStats
from llmwatch.schemas import InferenceEvent
from llmwatch.settings import Settings
from llmwatch.sim.engine import SimulatedEngine
from llmwatch.sim.profiles import LogNormal, VersionProfile

session_loop = pytest.mark.asyncio(loop_scope="session")

QUICK = VersionProfile(
    ttft_ms=LogNormal(median=2.0),
    tpot_ms=LogNormal(median=0.5),
    output_tokens=LogNormal(median=8.0),
    error_rate=0.0,
    toxic_rate=0.0,
    pii_rate=0.0,
)
#: ~2 s per answer, tokens flowing from 0.2 s on
SLOW_TOKENS = QUICK.model_copy(
    update={
        "ttft_ms": LogNormal(median=200.0),
        "tpot_ms": LogNormal(median=60.0),
        "output_tokens": LogNormal(median=30.0),
    }
)
#: ~2 s before the first token
SLOW_FIRST = QUICK.model_copy(update={"ttft_ms": LogNormal(median=2000.0)})


class CapturePublisher:
    """Stands in for EventPublisher: always connected, keeps what it is given."""

    connected = True
    last_error = None

    def __init__(self, settings: Settings, max_buffer: int) -> None:
        self.events: list[InferenceEvent] = []
        self.stats = PublisherStats()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def publish(self, event: InferenceEvent) -> bool:
        self.events.append(event)
        return True


def _counting(app: Any, hits: Counter[str]) -> Any:
    """`app` as an ASGI app that counts the HTTP requests it gets per path."""

    async def counted(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            hits[scope["path"]] += 1
        await app(scope, receive, send)

    return counted


def _simulated_gateway(profile: VersionProfile, **kwargs: Any) -> Gateway:
    config = GatewayConfig(engines=[EngineSpec(kind="simulated")], deployments=[DeploymentSpec(name="demo")])
    engine = SimulatedEngine({"baseline": profile}, seed=5)
    return build_gateway(Settings(), config, engines=[engine], watch_weights=False, **kwargs)


# --- /ready asks the upstream of an openai engine --------------------------------------------------


@session_loop
async def test_ready_follows_the_openai_upstream_and_spares_it_from_polling() -> None:
    hits: Counter[str] = Counter()
    async with AsyncExitStack() as upstream:
        upstream_url = await upstream.enter_async_context(
            serve_http(_counting(create_app(_simulated_gateway(QUICK, publish=False)), hits))
        )
        config = GatewayConfig(
            engines=[EngineSpec(kind="openai", upstream=f"{upstream_url}/v1", options={"ready_ttl_s": 0.5})],
            deployments=[DeploymentSpec(name="chat", baseline="demo")],
        )
        gateway = build_gateway(Settings(), config, publish=False, watch_weights=False)
        app = create_app(gateway)
        async with gateway.running():
            assert (await gateway.wait_ready(10)).ready
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
                before = hits["/v1/models"]
                polls = [await client.get("/ready") for _ in range(20)]
                assert {r.status_code for r in polls} == {200}
                assert hits["/v1/models"] - before <= 1  # cached: 20 polls, at most one look at the upstream

                await upstream.aclose()  # the upstream goes away
                deadline = time.monotonic() + 5
                while (ready := await client.get("/ready")).status_code == 200:
                    assert time.monotonic() < deadline, "/ready still 200 with the upstream gone"
                    await asyncio.sleep(0.05)
    assert ready.status_code == 503
    body = ready.json()
    assert body["ready"] is False and body["engines"] == {"openai:demo": "unreachable"}
    [reason] = body["reasons"]
    assert "openai" in reason and upstream_url in reason and "ConnectError" in reason


@session_loop
async def test_ready_gives_up_on_an_upstream_that_never_answers() -> None:
    silent = socket.socket()  # accepts connections (the backlog), never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    url = f"http://127.0.0.1:{silent.getsockname()[1]}"
    config = GatewayConfig(
        engines=[EngineSpec(kind="openai", upstream=url, versions=["m"], options={"ready_timeout_s": 0.3})],
        deployments=[DeploymentSpec(name="chat")],
    )
    gateway = build_gateway(Settings(), config, publish=False, watch_weights=False)
    try:
        async with gateway.running():
            while gateway.slots["m"].state == "starting":  # models given: it starts without asking the upstream
                await asyncio.sleep(0.01)
            started = time.monotonic()
            report = await gateway.check_ready()
            assert time.monotonic() - started < 2
    finally:
        silent.close()
    assert not report.ready and report.engines == {"openai:m": "unreachable"}
    assert "Timeout" in report.reasons[0] and url in report.reasons[0]


# --- a client that hangs up stops the generation ----------------------------------------------------


@session_loop
@pytest.mark.parametrize(
    ("profile", "stream"),
    [(SLOW_TOKENS, False), (SLOW_FIRST, False), (SLOW_FIRST, True)],
    ids=["plain-mid-answer", "plain-before-first-token", "stream-before-first-token"],
)
async def test_client_gone_cancels_the_generation(profile: VersionProfile, stream: bool) -> None:
    gateway = _simulated_gateway(profile, publisher_factory=CapturePublisher)
    body = {"model": "demo", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 64, "stream": stream}
    async with serve_http(create_app(gateway)) as url:
        assert (await gateway.wait_ready(10)).ready
        publisher = gateway.publisher
        assert isinstance(publisher, CapturePublisher)
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            sent = time.monotonic()
            with pytest.raises(TimeoutError):  # cancelling the request closes its connection
                await asyncio.wait_for(client.post("/v1/chat/completions", json=body), 0.3)
            while not publisher.events:
                assert time.monotonic() - sent < 1.5, "no event: the gateway did not notice the client left"
                await asyncio.sleep(0.01)
        [event] = publisher.events
        assert (event.status, event.finish_reason) == ("cancelled", "cancelled")
        assert event.e2e_ms is not None and event.e2e_ms < 1000  # a full answer takes ~2 s
        assert gateway.metrics.in_flight._value.get() == 0
        assert b"llmwatch_gateway_requests_in_flight 0.0" in gateway.render_metrics()
