"""Gateway logic with real engines and the real router, no broker: events are collected from the publish hook.

The HTTP layer is exercised through httpx's ASGI transport on the real app (routes, error handlers, lifespan).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from llmwatch.harness.tiny_model import build_tiny_model
from llmwatch.inference.app import GatewayConfig, build_gateway, create_app
from llmwatch.inference.engines import EngineSpec
from llmwatch.inference.protocol import ChatCompletionChunk, ChatCompletionRequest, CompletionRequest, ErrorResponse
from llmwatch.inference.router import Router
from llmwatch.inference.serving import Deployment, EngineSlot, Serving, SSEStream
from llmwatch.schemas import InferenceEvent, TrafficWeights
from llmwatch.settings import GatewaySettings, Settings
from llmwatch.sim.engine import SimulatedEngine
from llmwatch.sim.profiles import LogNormal, VersionProfile

session_loop = pytest.mark.asyncio(loop_scope="session")

FAST = VersionProfile(
    ttft_ms=LogNormal(median=2.0),
    tpot_ms=LogNormal(median=0.2),
    output_tokens=LogNormal(median=12.0),
    error_rate=0.0,
    toxic_rate=0.0,
    pii_rate=0.0,
)
FAILING = FAST.model_copy(update={"error_rate": 1.0})


class Harness:
    """A Serving over simulated versions; `events` is what it published."""

    def __init__(self, profiles: dict[str, VersionProfile], state: str = "ready") -> None:
        self.engine = SimulatedEngine(profiles, seed=1)
        self.router = Router({"demo": "baseline"})
        self.events: list[InferenceEvent] = []
        self.slots = {v: EngineSlot(engine=self.engine, state=state) for v in profiles}  # type: ignore[arg-type]
        self.serving = Serving(
            deployments={"demo": Deployment("demo", "baseline", tuple(profiles))},
            slots=self.slots,
            router=self.router,
            settings=GatewaySettings(max_tokens_limit=64),
            publish=self._publish,
        )

    def _publish(self, event: InferenceEvent) -> bool:
        self.events.append(event)
        return True


def _chat(**extra: object) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "demo", "messages": [{"role": "user", "content": "hi there"}], "max_tokens": 16, **extra}
    )


async def _sse(stream: SSEStream) -> list[str]:
    """The SSE events of a stream, one per item (a write may carry several)."""
    writes = [w async for w in stream.events]
    assert all(w.endswith("\n\n") for w in writes)
    return [f"{event}\n\n" for w in writes for event in w.split("\n\n") if event]


def _payloads(lines: list[str]) -> list[dict]:
    out = []
    for line in lines:
        assert line.startswith("data: ") and line.endswith("\n\n")
        data = line[len("data: ") : -2]
        if data != "[DONE]":
            out.append(json.loads(data))
    return out


@session_loop
async def test_unknown_deployment_is_a_404_value_and_publishes_nothing() -> None:
    h = Harness({"baseline": FAST})
    result = await h.serving.chat(_chat(model="nope"))
    assert isinstance(result, ErrorResponse)
    assert (result.status_code, result.error.param, result.error.code) == (404, "model", "model_not_found")
    assert "demo" in result.error.message
    assert h.events == []


@session_loop
async def test_max_tokens_above_the_limit_is_a_400() -> None:
    h = Harness({"baseline": FAST})
    result = await h.serving.chat(_chat(max_tokens=65))
    assert isinstance(result, ErrorResponse) and result.status_code == 400 and result.error.param == "max_tokens"


@session_loop
async def test_chat_publishes_one_event_that_matches_the_response() -> None:
    h = Harness({"baseline": FAST})
    result = await h.serving.chat(_chat(user="alice", session_id="s-1", context=["doc"], prompt_version="p2"))
    assert not isinstance(result, ErrorResponse | SSEStream)
    [event] = h.events
    assert result.llmwatch is not None and event.event_id == result.llmwatch.event_id
    assert (event.deployment, event.model_version, event.variant) == ("demo", "baseline", "baseline")
    assert event.user_id == h.serving.hash_id("alice") and "alice" not in event.model_dump_json()
    assert event.session_id == h.serving.hash_id("s-1") != h.serving.hash_id("alice")
    assert event.response == result.choices[0].message.content
    assert event.prompt == "user: hi there"
    assert (event.context, event.prompt_version) == (["doc"], "p2")
    assert event.output_tokens == result.usage.completion_tokens > 1
    assert event.input_tokens == result.usage.prompt_tokens > 0
    assert event.ttft_ms is not None and event.e2e_ms is not None and 0 < event.ttft_ms < event.e2e_ms
    assert event.tpot_ms is not None and event.tpot_ms > 0
    assert (event.status, event.engine, event.simulated) == ("ok", "simulated", True)
    assert event.finish_reason == result.choices[0].finish_reason


@session_loop
async def test_stream_sends_role_tokens_usage_and_done() -> None:
    h = Harness({"baseline": FAST})
    result = await h.serving.chat(_chat(stream=True, stream_options={"include_usage": True}))
    assert isinstance(result, SSEStream)
    lines = await _sse(result)
    assert lines[-1] == "data: [DONE]\n\n"
    chunks = _payloads(lines)
    for chunk in chunks:  # every event is a valid OpenAI chunk
        ChatCompletionChunk.model_validate(chunk)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    usage = chunks[-1]["usage"]
    [event] = h.events
    assert text == event.response
    assert usage["completion_tokens"] == event.output_tokens and usage["prompt_tokens"] == event.input_tokens
    assert chunks[-1]["llmwatch"]["event_id"] == event.event_id == result.info.event_id
    assert event.attributes["stream"] == "true"


@session_loop
async def test_completions_stream_without_usage_has_no_usage_chunk() -> None:
    h = Harness({"baseline": FAST})
    req = CompletionRequest.model_validate({"model": "demo", "prompt": "hello", "max_tokens": 5, "stream": True})
    result = await h.serving.completion(req)
    assert isinstance(result, SSEStream)
    chunks = _payloads(await _sse(result))
    assert all("usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == h.events[0].finish_reason == "length"
    assert h.events[0].output_tokens == 5


@pytest.mark.parametrize("stream", [False, True])
@session_loop
async def test_engine_failure_is_a_5xx_value_and_an_error_event(stream: bool) -> None:
    h = Harness({"baseline": FAILING})
    result = await h.serving.chat(_chat(stream=stream))
    assert isinstance(result, ErrorResponse) and result.status_code == 500
    [event] = h.events
    assert (event.status, event.finish_reason, event.output_tokens) == ("error", "error", 0)
    assert event.error is not None and "overloaded" in event.error
    assert event.e2e_ms is not None and event.e2e_ms > 0


@session_loop
async def test_client_gone_mid_stream_is_a_cancelled_event() -> None:
    slow = FAST.model_copy(update={"tpot_ms": LogNormal(median=20.0), "output_tokens": LogNormal(median=60.0)})
    h = Harness({"baseline": slow})
    result = await h.serving.chat(_chat(stream=True, max_tokens=60))
    assert isinstance(result, SSEStream)
    seen = 0
    async for _write in result.events:
        seen += 1
        if seen == 3:
            break
    await result.events.aclose()  # what the server does when the client disconnects
    [event] = h.events
    assert (event.status, event.finish_reason) == ("cancelled", "cancelled")
    assert 1 <= event.output_tokens < 60
    assert event.ttft_ms is not None and event.e2e_ms is not None and event.ttft_ms <= event.e2e_ms


@session_loop
async def test_weights_send_traffic_to_the_canary_and_the_event_says_so() -> None:
    h = Harness({"baseline": FAST, "canary": FAST})
    h.router.apply(
        TrafficWeights(
            deployment="demo",
            weights={"baseline": 0.0, "canary": 1.0},
            baseline_version="baseline",
            canary_version="canary",
            seq=1,
        )
    )
    await h.serving.chat(_chat())
    assert (h.events[0].model_version, h.events[0].variant) == ("canary", "canary")


@session_loop
async def test_weights_naming_a_version_not_served_here_fall_back_to_the_baseline() -> None:
    h = Harness({"baseline": FAST})
    h.router.apply(
        TrafficWeights(
            deployment="demo",
            weights={"baseline": 0.0, "v9": 1.0},
            baseline_version="baseline",
            canary_version="v9",
            seq=1,
        )
    )
    result = await h.serving.chat(_chat())
    assert not isinstance(result, ErrorResponse)
    [event] = h.events
    assert (event.model_version, event.variant, event.status) == ("baseline", "baseline", "ok")
    assert event.attributes["route_fallback_from"] == "v9"


@session_loop
async def test_an_engine_that_is_not_ready_gives_503_and_an_error_event() -> None:
    h = Harness({"baseline": FAST}, state="starting")
    result = await h.serving.chat(_chat())
    assert isinstance(result, ErrorResponse) and result.status_code == 503
    assert "starting" in result.error.message
    assert h.events[0].status == "error"


# --- through HTTP (ASGI transport, real app and lifespan) ------------------------------------------


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.getbasetemp() / "tiny-model")


async def _client(gateway_config: GatewayConfig, engines: list | None = None) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(gateway=GatewaySettings(max_tokens_limit=64))
    gateway = build_gateway(settings, gateway_config, engines=engines, publish=False, watch_weights=False)
    app = create_app(gateway)
    async with gateway.running():
        await gateway.wait_ready(60)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
            yield client


@pytest.fixture(scope="session")
async def tiny_client(tiny_model: Path) -> AsyncIterator[httpx.AsyncClient]:
    config = GatewayConfig(engines=[EngineSpec(kind="transformers", model=tiny_model, versions=["tiny"])])
    async for client in _client(config):
        yield client


@session_loop
async def test_http_chat_on_the_tiny_model_streamed_and_not(tiny_client: httpx.AsyncClient) -> None:
    body = {"model": "demo", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 12, "temperature": 0}
    plain = await tiny_client.post("/v1/chat/completions", json=body)
    assert plain.status_code == 200, plain.text
    usage = plain.json()["usage"]
    assert plain.headers["x-llmwatch-model-version"] == "tiny"
    streamed = await tiny_client.post(
        "/v1/chat/completions", json={**body, "stream": True, "stream_options": {"include_usage": True}}
    )
    assert streamed.headers["content-type"].startswith("text/event-stream")
    lines = [f"{line}\n\n" for line in streamed.text.split("\n\n") if line]
    chunks = _payloads(lines)
    assert streamed.text.endswith("data: [DONE]\n\n")
    assert chunks[-1]["usage"] == usage  # greedy: the same tokens either way
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == plain.json()["choices"][0]["message"]["content"]
    metrics = (await tiny_client.get("/metrics")).text
    assert 'llmwatch_gateway_time_to_first_token_seconds_count{deployment="demo",model_version="tiny"} 2.0' in metrics
    assert 'llmwatch_gateway_tokens_total{deployment="demo",kind="output",model_version="tiny"}' in metrics


@session_loop
async def test_http_errors_are_openai_shaped(tiny_client: httpx.AsyncClient) -> None:
    missing = await tiny_client.post("/v1/chat/completions", json={"model": "demo"})
    assert missing.status_code == 400
    assert missing.json()["error"]["param"] == "messages"
    assert "Missing required parameter" in missing.json()["error"]["message"]
    broken = await tiny_client.post(
        "/v1/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400 and "not valid JSON" in broken.json()["error"]["message"]
    unknown = await tiny_client.post("/v1/completions", json={"model": "gpt-9", "prompt": "x"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
    assert (await tiny_client.get("/v1/nothing")).json()["error"]["code"] == "not_found"
    assert (await tiny_client.get("/health")).json() == {"status": "ok"}
    ready = await tiny_client.get("/ready")
    assert ready.status_code == 200 and ready.json()["kafka"] == "disabled"
    models = (await tiny_client.get("/v1/models")).json()
    assert [m["id"] for m in models["data"]] == ["demo"]


@session_loop
async def test_ready_is_503_with_the_reason_when_the_engine_failed(tmp_path: Path) -> None:
    config = GatewayConfig(engines=[EngineSpec(kind="transformers", model=tmp_path / "absent", versions=["v"])])
    async for client in _client(config):
        ready = await client.get("/ready")
        assert ready.status_code == 503
        assert any("does not exist" in r for r in ready.json()["reasons"])
        answer = await client.post("/v1/completions", json={"model": "demo", "prompt": "x"})
        assert answer.status_code == 503 and "failed" in answer.json()["error"]["message"]
