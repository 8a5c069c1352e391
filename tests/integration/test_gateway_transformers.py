"""The tiny model on the transformers engine behind a real uvicorn, events read back from the real Kafka topic."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from llmwatch.harness.tiny_model import build_tiny_model
from llmwatch.inference.app import DeploymentSpec, Gateway, GatewayConfig, build_gateway, create_app, serve_http
from llmwatch.inference.engine_base import ChatMessage, GenerationRequest, render_prompt
from llmwatch.inference.engines import EngineSpec
from llmwatch.schemas import InferenceEvent
from llmwatch.settings import Settings

pytestmark = pytest.mark.integration
session_loop = pytest.mark.asyncio(loop_scope="session")

PROMPT = "hello there"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.getbasetemp() / "tiny-model")


@pytest.fixture
async def gateway(isolated_topics: Settings, tiny_model: Path) -> AsyncIterator[tuple[str, Gateway]]:
    config = GatewayConfig(
        engines=[EngineSpec(kind="transformers", model=tiny_model, versions=["tiny-v1"])],
        deployments=[DeploymentSpec(name="chat")],
    )
    gw = build_gateway(isolated_topics, config, watch_weights=False)  # routing is tested in test_gateway_cli
    async with serve_http(create_app(gw)) as url:
        report = await gw.wait_ready(60)
        assert report.ready, report.reasons
        yield url, gw


async def events_on(settings: Settings, event_ids: set[str], timeout_s: float = 30.0) -> dict[str, InferenceEvent]:
    """Read the events topic from the start until every id in `event_ids` has been seen."""
    consumer = AIOKafkaConsumer(
        settings.topics.events,
        **settings.kafka_client_kwargs(),
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: dict[str, InferenceEvent] = {}
    try:
        async with asyncio.timeout(timeout_s):
            while not event_ids <= found.keys():
                for records in (await consumer.getmany(timeout_ms=300)).values():
                    for record in records:
                        event = InferenceEvent.decode(record.value)
                        found[event.event_id] = event
    finally:
        await consumer.stop()
    return found


def _greedy_counts(model_dir: Path, max_tokens: int) -> tuple[int, int]:
    """(prompt tokens, generated tokens) of the chat prompt, straight from transformers."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    text, _ = render_prompt(tok, GenerationRequest(model_version="x", messages=(ChatMessage("user", PROMPT),)))
    ids = tok(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        out = model.generate(input_ids=ids, max_new_tokens=max_tokens, do_sample=False)
    return ids.shape[1], out.shape[1] - ids.shape[1]


@session_loop
async def test_streamed_and_plain_requests_publish_true_latencies_and_counts(
    gateway: tuple[str, Gateway], isolated_topics: Settings, tiny_model: Path
) -> None:
    url, gw = gateway
    body = {
        "model": "chat",
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": 24,
        "temperature": 0,
        "user": "user-42",
    }
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        plain = await client.post("/v1/chat/completions", json=body)
        assert plain.status_code == 200, plain.text
        async with client.stream(
            "POST", "/v1/chat/completions", json={**body, "stream": True, "stream_options": {"include_usage": True}}
        ) as resp:
            assert resp.status_code == 200
            streamed_id = resp.headers["x-llmwatch-event-id"]
            data = [line[6:] async for line in resp.aiter_lines() if line.startswith("data: ")]
        assert data[-1] == "[DONE]"
        usage = json.loads(data[-2])["usage"]
        ready = await client.get("/ready")
        assert ready.json()["kafka"] == "connected"

    plain_id = plain.json()["llmwatch"]["event_id"]
    events = await events_on(isolated_topics, {plain_id, streamed_id})
    n_prompt, n_generated = _greedy_counts(tiny_model, 24)
    assert plain.json()["usage"]["completion_tokens"] == usage["completion_tokens"] == n_generated
    for event_id in (plain_id, streamed_id):
        event = events[event_id]
        assert (event.deployment, event.model_version, event.variant) == ("chat", "tiny-v1", "baseline")
        assert (event.engine, event.status, event.simulated) == ("transformers", "ok", False)
        assert event.output_tokens == n_generated and event.input_tokens == n_prompt
        assert event.ttft_ms is not None and event.e2e_ms is not None and event.tpot_ms is not None
        assert 0 < event.ttft_ms < event.e2e_ms
        assert event.tpot_ms > 0
        assert event.tpot_ms == pytest.approx((event.e2e_ms - event.ttft_ms) / (n_generated - 1))
        assert event.user_id is not None and event.user_id != "user-42"
        assert event.attributes["ttft_source"] == "gateway"
    assert events[streamed_id].attributes["stream"] == "true"
    assert gw.publisher.stats.sent >= 2 and gw.publisher.stats.dropped == 0


@session_loop
async def test_a_client_that_hangs_up_mid_stream_yields_a_cancelled_event(
    gateway: tuple[str, Gateway], isolated_topics: Settings
) -> None:
    url, _gw = gateway
    # greedy decoding of this prompt runs to max_tokens (about a second on the tiny model): no early EOS
    body = {"model": "chat", "prompt": PROMPT, "max_tokens": 1000, "temperature": 0, "stream": True}
    async with (
        httpx.AsyncClient(base_url=url, timeout=30) as client,
        client.stream("POST", "/v1/completions", json=body) as resp,
    ):
        event_id = resp.headers["x-llmwatch-event-id"]
        seen = 0
        async for line in resp.aiter_lines():
            seen += line.startswith("data: ")
            if seen == 3:
                break
    # leaving the block closed the connection with the generation still running
    event = (await events_on(isolated_topics, {event_id}))[event_id]
    assert (event.status, event.finish_reason) == ("cancelled", "cancelled")
    assert 3 <= event.output_tokens < 1000
    assert event.ttft_ms is not None and event.e2e_ms is not None and event.ttft_ms < event.e2e_ms
