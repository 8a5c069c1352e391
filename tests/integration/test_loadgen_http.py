"""Loadgen → real gateway (uvicorn) → simulated engine → publisher → real Kafka: the scenario survives the trip."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer

from llmwatch.inference.app import Gateway, build_gateway, create_app, serve_http
from llmwatch.schemas import InferenceEvent, TrafficWeights
from llmwatch.settings import Settings
from llmwatch.sim.corpus import load_corpus
from llmwatch.sim.loadgen import LoadgenConfig, run_loadgen

pytestmark = pytest.mark.integration
session_loop = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
async def sim_gateway(isolated_topics: Settings) -> AsyncIterator[tuple[str, Gateway]]:
    gw = build_gateway(isolated_topics, watch_weights=False)  # the default: simulated engine, deployment demo
    async with serve_http(create_app(gw)) as url:
        report = await gw.wait_ready(30)
        assert report.ready, report.reasons
        assert gw.router is not None
        gw.router.apply(
            TrafficWeights(
                deployment="demo",
                weights={"baseline": 0.5, "canary": 0.5},
                baseline_version="baseline",
                canary_version="canary",
                seq=1,
            )
        )
        yield url, gw


async def _events(settings: Settings, n: int, timeout_s: float = 30.0) -> list[InferenceEvent]:
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
            while len(found) < n:
                for records in (await consumer.getmany(timeout_ms=300)).values():
                    found.update((e.event_id, e) for e in map(InferenceEvent.decode, (r.value for r in records)))
    finally:
        await consumer.stop()
    return list(found.values())


@session_loop
async def test_toxicity_regression_through_the_gateway(
    sim_gateway: tuple[str, Gateway], isolated_topics: Settings
) -> None:
    url, _ = sim_gateway
    config = LoadgenConfig(scenario="toxicity-regression", target=url, rate=80, count=240, seed=5)
    result = await run_loadgen(config, isolated_topics)

    assert result.sent == 240
    assert result.ok + result.error_kinds.get("http 500", 0) == 240  # 500s: the profile's simulated error rate
    assert result.errors <= 6
    assert set(result.variants) == {"baseline", "canary"}
    assert result.achieved_rate == pytest.approx(80, rel=0.15)
    assert result.latency_ms["p50"] > 100  # the engine's time to first token alone is ~120 ms

    events = await _events(isolated_topics, 240)
    assert len(events) == 240
    assert all(e.simulated and e.engine == "simulated" and e.deployment == "demo" for e in events)
    toxic = set(load_corpus().toxic)

    def toxic_share(variant: str) -> float:
        side = [e for e in events if e.variant == variant and e.status == "ok"]
        return sum(e.response in toxic for e in side) / len(side)

    assert toxic_share("canary") >= 0.08  # the hint reached the engine: 20% configured
    assert toxic_share("baseline") <= 0.04
    assert any(e.context for e in events)  # RAG requests carried their passages into the event
    print(f"\nloadgen via gateway: {result.model_dump(include={'achieved_rate', 'latency_ms', 'late_sends'})}")
