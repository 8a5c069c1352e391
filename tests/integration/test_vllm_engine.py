"""vLLM's CPU build for real: the tiny model (head_dim 32) on AsyncLLM, streamed through the gateway to Kafka.

One engine for the whole session (it starts a process and takes 15-60 s); every test here shares it.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from llmwatch.harness.tiny_model import build_tiny_model
from llmwatch.inference.app import DeploymentSpec, GatewayConfig, build_gateway, create_app, serve_http
from llmwatch.inference.engine_vllm import VllmEngine
from llmwatch.inference.engines import EngineSpec
from llmwatch.settings import Settings

from .test_gateway_transformers import events_on

pytestmark = [pytest.mark.integration, pytest.mark.slow]
session_loop = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.getbasetemp() / "tiny-model")


@pytest.fixture(scope="session")
async def vllm_engine(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[VllmEngine]:
    from vllm.config.structured_outputs import StructuredOutputsConfig

    # no free whitespace in structured outputs: the random tiny model would pad JSON with it until max_tokens
    structured = StructuredOutputsConfig(backend="xgrammar", disable_any_whitespace=True)
    engine = VllmEngine(
        tiny_model,
        version="tiny-vllm",
        cache_root=tmp_path_factory.mktemp("vllm-cache"),
        engine_args={"structured_outputs_config": structured},
    )
    await engine.start()
    yield engine
    await engine.stop()


@pytest.fixture
async def gateway_url(vllm_engine: VllmEngine, isolated_topics: Settings) -> AsyncIterator[str]:
    config = GatewayConfig(
        engines=[EngineSpec(kind="vllm", model=vllm_engine.model_dir, versions=[vllm_engine.version])],
        deployments=[DeploymentSpec(name="chat")],
    )
    gw = build_gateway(isolated_topics, config, engines=[vllm_engine], owns_engines=False, watch_weights=False)
    async with serve_http(create_app(gw)) as url:
        report = await gw.wait_ready(30)
        assert report.ready, report.reasons
        yield url


def _ttft_sum(metrics: str) -> tuple[float, float]:
    """(count, sum) of vLLM's own TTFT histogram, as the gateway's /metrics exposes it."""
    count = re.search(r"^vllm:time_to_first_token_seconds_count\{[^}]*\} (\S+)$", metrics, re.M)
    total = re.search(r"^vllm:time_to_first_token_seconds_sum\{[^}]*\} (\S+)$", metrics, re.M)
    assert count and total, "vLLM's TTFT histogram is missing from /metrics"
    return float(count.group(1)), float(total.group(1))


@session_loop
async def test_streamed_request_carries_vllms_own_first_token_timing(
    gateway_url: str, isolated_topics: Settings
) -> None:
    body = {
        "model": "chat",
        "messages": [{"role": "user", "content": "hello there"}],
        "max_tokens": 32,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    async with httpx.AsyncClient(base_url=gateway_url, timeout=60) as client:
        count0, sum0 = _ttft_sum((await client.get("/metrics")).text)
        async with client.stream("POST", "/v1/chat/completions", json=body) as resp:
            assert resp.status_code == 200
            event_id = resp.headers["x-llmwatch-event-id"]
            data = [line[6:] async for line in resp.aiter_lines() if line.startswith("data: ")]
        count1, sum1 = _ttft_sum((await client.get("/metrics")).text)

    assert data[-1] == "[DONE]"
    usage = json.loads(data[-2])["usage"]
    token_chunks = [json.loads(d) for d in data[1:-2]]
    assert len(token_chunks) >= 2  # really streamed, not one blob
    event = (await events_on(isolated_topics, {event_id}))[event_id]
    assert (event.engine, event.model_version, event.status) == ("vllm", "tiny-vllm", "ok")
    # vLLM's first_token_latency: the one request observed by its own histogram is the event's TTFT
    assert count1 == count0 + 1
    assert event.ttft_ms == pytest.approx((sum1 - sum0) * 1000, rel=1e-6, abs=1e-3)
    assert event.attributes["ttft_source"] == "engine"
    assert float(event.attributes["gateway_ttft_ms"]) >= event.ttft_ms - 1.0  # ours includes the hop to vLLM
    assert event.ttft_ms is not None and event.e2e_ms is not None and 0 < event.ttft_ms < event.e2e_ms
    assert event.tpot_ms is not None and event.tpot_ms > 0
    # token ids, as vLLM counted them
    assert event.output_tokens == usage["completion_tokens"] == int(float(event.attributes["engine.generation_tokens"]))
    assert event.input_tokens == usage["prompt_tokens"] > 0


@session_loop
async def test_plain_request_and_a_cancelled_stream(gateway_url: str, isolated_topics: Settings) -> None:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=60) as client:
        plain = await client.post(
            "/v1/completions", json={"model": "chat", "prompt": "hello there", "max_tokens": 16, "temperature": 0}
        )
        assert plain.status_code == 200, plain.text
        long = {"model": "chat", "prompt": "hello there", "max_tokens": 1000, "temperature": 0, "stream": True}
        async with client.stream("POST", "/v1/completions", json=long) as resp:
            cancelled_id = resp.headers["x-llmwatch-event-id"]
            seen = 0
            async for line in resp.aiter_lines():
                seen += line.startswith("data: ")
                if seen == 3:
                    break
    plain_id = plain.json()["llmwatch"]["event_id"]
    events = await events_on(isolated_topics, {plain_id, cancelled_id})
    assert events[plain_id].output_tokens == plain.json()["usage"]["completion_tokens"] == 16
    assert events[plain_id].finish_reason == "length"
    assert (events[cancelled_id].status, events[cancelled_id].finish_reason) == ("cancelled", "cancelled")
    assert events[cancelled_id].output_tokens < 1000


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"enum": ["Oslo", "Paris", "Lima"]}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
ANSWER = {
    "type": "object",
    "properties": {"answer": {"enum": ["yes", "no"]}, "confident": {"type": "boolean"}},
    "required": ["answer", "confident"],
    "additionalProperties": False,
}


@session_loop
@pytest.mark.timeout(1800)  # the first test of the module starts the shared engine (minutes on a busy machine)
async def test_structured_outputs_in_process(gateway_url: str, isolated_topics: Settings) -> None:
    """In-process vLLM honours response_format and forced tool calls with structured-output decoding, and refuses
    tool_choice 'auto' (no tool-call parser in process) with a 400 naming it."""
    import jsonschema

    messages = [{"role": "user", "content": "weather in Oslo?"}]
    forced = {"type": "function", "function": {"name": "get_weather"}}
    async with httpx.AsyncClient(base_url=gateway_url, timeout=120) as client:
        fmt = {"type": "json_schema", "json_schema": {"name": "answer", "schema": ANSWER}}
        answer = await client.post(
            "/v1/chat/completions",
            json={"model": "chat", "messages": messages, "response_format": fmt, "max_tokens": 60, "temperature": 0},
        )
        assert answer.status_code == 200, answer.text
        jsonschema.validate(json.loads(answer.json()["choices"][0]["message"]["content"]), ANSWER)
        call = await client.post(
            "/v1/chat/completions",
            json={"model": "chat", "messages": messages, "tools": [WEATHER], "tool_choice": forced,
                  "max_tokens": 60, "temperature": 0},
        )  # fmt: skip
        assert call.status_code == 200, call.text
        choice = call.json()["choices"][0]
        assert choice["finish_reason"] == "tool_calls"
        (tool_call,) = choice["message"]["tool_calls"]
        assert tool_call["function"]["name"] == "get_weather"
        jsonschema.validate(json.loads(tool_call["function"]["arguments"]), WEATHER["function"]["parameters"])
        auto = await client.post(
            "/v1/chat/completions", json={"model": "chat", "messages": messages, "tools": [WEATHER], "max_tokens": 8}
        )
        assert auto.status_code == 400 and auto.json()["error"]["param"] == "tool_choice"
    event_id = call.json()["llmwatch"]["event_id"]
    event = (await events_on(isolated_topics, {event_id}))[event_id]
    assert [c.name for c in event.tool_calls] == ["get_weather"] and event.finish_reasons == ["tool_calls"]
