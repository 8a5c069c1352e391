"""The openai engine against a real OpenAI-compatible upstream: our own gateway, over loopback HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from llmwatch.inference.app import DeploymentSpec, GatewayConfig, build_gateway, create_app, serve_http
from llmwatch.inference.engine_base import EngineUnavailable
from llmwatch.inference.engine_openai import OpenAIEngine
from llmwatch.inference.engines import EngineSpec
from llmwatch.settings import Settings
from llmwatch.sim.engine import SimulatedEngine
from llmwatch.sim.profiles import LogNormal, VersionProfile

from .test_gateway_transformers import events_on

pytestmark = pytest.mark.integration
session_loop = pytest.mark.asyncio(loop_scope="session")

GOOD = VersionProfile(
    ttft_ms=LogNormal(median=5.0),
    tpot_ms=LogNormal(median=1.0),
    output_tokens=LogNormal(median=20.0),
    error_rate=0.0,
    toxic_rate=0.0,
    pii_rate=0.0,
)
BAD = GOOD.model_copy(update={"error_rate": 1.0})


@pytest.fixture
async def upstream_url() -> AsyncIterator[str]:
    """An llmwatch gateway on the simulator serving `demo` (healthy) and `broken` (always fails); no Kafka."""
    config = GatewayConfig(
        engines=[EngineSpec(kind="simulated")],
        deployments=[
            DeploymentSpec(name="demo", baseline="good", versions=["good"]),
            DeploymentSpec(name="broken", baseline="bad", versions=["bad"]),
        ],
    )
    engine = SimulatedEngine({"good": GOOD, "bad": BAD}, seed=3)
    gw = build_gateway(Settings(), config, engines=[engine], publish=False, watch_weights=False)
    async with serve_http(create_app(gw)) as url:
        yield url


@pytest.fixture
async def gateway_url(upstream_url: str, isolated_topics: Settings) -> AsyncIterator[str]:
    """The gateway under test: the openai engine learns the upstream's models from its /v1/models."""
    config = GatewayConfig(
        engines=[EngineSpec(kind="openai", upstream=f"{upstream_url}/v1")],
        deployments=[
            DeploymentSpec(name="chat", baseline="demo", versions=["demo"]),
            DeploymentSpec(name="chat-broken", baseline="broken", versions=["broken"]),
        ],
    )
    gw = build_gateway(isolated_topics, config, watch_weights=False)
    async with serve_http(create_app(gw)) as url:
        report = await gw.wait_ready(30)
        assert report.ready, report.reasons
        yield url


@session_loop
async def test_streams_and_plain_answers_come_through_with_upstream_usage(
    gateway_url: str, isolated_topics: Settings
) -> None:
    body = {"model": "chat", "messages": [{"role": "user", "content": "What is a canary release?"}], "seed": 11}
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as client:
        plain = await client.post("/v1/chat/completions", json=body)
        assert plain.status_code == 200, plain.text
        async with client.stream(
            "POST", "/v1/completions", json={"model": "chat", "prompt": "hello", "max_tokens": 7, "stream": True}
        ) as resp:
            assert resp.status_code == 200
            streamed_id = resp.headers["x-llmwatch-event-id"]
            data = [line[6:] async for line in resp.aiter_lines() if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    streamed_text = "".join(c["text"] for d in data[:-1] for c in json.loads(d)["choices"])

    plain_id = plain.json()["llmwatch"]["event_id"]
    events = await events_on(isolated_topics, {plain_id, streamed_id})
    p, s = events[plain_id], events[streamed_id]
    assert (p.engine, p.model_version, p.deployment) == ("openai", "demo", "chat")
    assert p.output_tokens == plain.json()["usage"]["completion_tokens"] > 1
    assert p.input_tokens == plain.json()["usage"]["prompt_tokens"] > 0
    assert p.response == plain.json()["choices"][0]["message"]["content"]
    assert (s.output_tokens, s.finish_reason, s.response) == (7, "length", streamed_text)
    for event in (p, s):
        assert event.ttft_ms is not None and event.e2e_ms is not None and 0 < event.ttft_ms < event.e2e_ms
        assert event.tpot_ms is not None and event.tpot_ms > 0
        assert event.ttft_ms >= 5.0 * 0.5  # the upstream's simulated TTFT is felt here, not hidden


@session_loop
async def test_an_upstream_failure_is_a_502_and_an_error_event(gateway_url: str, isolated_topics: Settings) -> None:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as client:
        answer = await client.post("/v1/completions", json={"model": "chat-broken", "prompt": "x"})
    assert answer.status_code == 502
    assert "overloaded" in answer.json()["error"]["message"]
    event_id = answer.json()["llmwatch"]["event_id"]
    assert answer.headers["x-llmwatch-event-id"] == event_id
    event = (await events_on(isolated_topics, {event_id}))[event_id]
    assert (event.status, event.finish_reason, event.engine, event.deployment) == (
        "error",
        "error",
        "openai",
        "chat-broken",
    )
    assert event.error is not None and "upstream 500" in event.error


@session_loop
async def test_an_unreachable_upstream_is_named_when_the_engine_starts() -> None:
    engine = OpenAIEngine("http://127.0.0.1:9", connect_timeout_s=1)
    with pytest.raises(EngineUnavailable, match=r"cannot list models of upstream http://127\.0\.0\.1:9"):
        await engine.start()
