"""WeightsWatcher on the real compacted weights topic: replay at start, live changes within a second."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from llmwatch.inference.app import DeploymentSpec, Gateway, GatewayConfig, build_gateway
from llmwatch.inference.engines import EngineSpec
from llmwatch.inference.router import Router, WeightsWatcher
from llmwatch.kafka_topics import delete_topics, ensure_topics
from llmwatch.schemas import ExperimentSpec, TrafficWeights, topic_registry
from llmwatch.settings import Settings
from llmwatch.sim.engine import SimulatedEngine
from llmwatch.sim.profiles import VersionProfile

pytestmark = pytest.mark.integration


@pytest.fixture
def weights_settings(kafka_settings: Settings, topic_factory) -> Settings:  # type: ignore[no-untyped-def]
    topic = topic_factory("weights")
    return kafka_settings.model_copy(update={"topics": kafka_settings.topics.model_copy(update={"weights": topic})})


def _weights(seq: int, canary: float) -> TrafficWeights:
    return TrafficWeights(
        deployment="demo",
        weights={"baseline": 1.0 - canary, "canary": canary},
        baseline_version="baseline",
        canary_version="canary",
        state="progressing",
        seq=seq,
    )


async def _send(settings: Settings, *messages: TrafficWeights | bytes) -> None:
    producer = AIOKafkaProducer(**settings.kafka_client_kwargs(), acks="all")
    await producer.start()
    try:
        for m in messages:
            value = m if isinstance(m, bytes) else m.encode()
            await producer.send_and_wait(settings.topics.weights, value, key=b"demo")
    finally:
        await producer.stop()


def _canary_share(router: Router, n: int = 10_000) -> float:
    return Counter(router.choose("demo").variant for _ in range(n))["canary"] / n


async def test_replays_the_topic_then_follows_it_within_a_second(weights_settings: Settings) -> None:
    # Already on the topic before the gateway starts: an old split, a bad message, the current split.
    await _send(weights_settings, _weights(1, 0.5), b"{not json", _weights(2, 0.05))
    router = Router({"demo": "baseline"})
    watcher = WeightsWatcher(weights_settings, router)
    await watcher.start(wait_s=15)
    try:
        assert watcher.caught_up
        assert router.weights_seq("demo") == 2 and watcher.rejected == 1
        assert 0.035 <= _canary_share(router) <= 0.065

        sent = time.monotonic()
        await _send(weights_settings, _weights(3, 0.5))
        while router.weights_seq("demo") != 3:
            assert time.monotonic() - sent < 1.0, "the new split must apply within 1 s"
            await asyncio.sleep(0.01)
        applied_after = time.monotonic() - sent
        assert _canary_share(router) == pytest.approx(0.5, abs=0.03)

        await _send(weights_settings, _weights(2, 0.0))  # a stale controller: ignored
        await asyncio.sleep(0.5)
        assert router.weights_seq("demo") == 3
        print(f"\nweights change applied {applied_after * 1000:.0f} ms after the send was acknowledged")
    finally:
        await watcher.stop()


async def test_experiment_on_the_topic_pins_users_to_arms(weights_settings: Settings) -> None:
    experiment = ExperimentSpec(name="ab1", salt="salt-1", arms={"baseline": 0.5, "canary": 0.5})
    message = _weights(1, 0.0).model_copy(update={"experiment": experiment})
    await _send(weights_settings, message)
    router = Router({"demo": "baseline"})
    watcher = WeightsWatcher(weights_settings, router)
    await watcher.start(wait_s=15)
    try:
        first = {f"user-{i}": router.choose("demo", f"user-{i}") for i in range(200)}
        assert {r.experiment for r in first.values()} == {"ab1"}
        assert {r.model_version for r in first.values()} == {"baseline", "canary"}
        for _ in range(5):
            assert all(router.choose("demo", u) == r for u, r in first.items())
    finally:
        await watcher.stop()


async def test_without_a_broker_routing_stays_on_the_baseline(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from llmwatch.local.kafka_config import free_port

    settings = Settings(kafka=f"127.0.0.1:{free_port('127.0.0.1')}", data_dir=tmp_path)
    router = Router({"demo": "baseline"})
    watcher = WeightsWatcher(settings, router)
    started = time.monotonic()
    await watcher.start(wait_s=1.0)
    try:
        assert time.monotonic() - started < 3 and not watcher.caught_up
        assert {router.choose("demo").model_version for _ in range(100)} == {"baseline"}
    finally:
        await watcher.stop()


# --- the gateway: serves at once, /ready once the split is known --------------------------------------


def _gateway(settings: Settings) -> Gateway:
    config = GatewayConfig(
        engines=[EngineSpec(kind="simulated")],
        deployments=[DeploymentSpec(name="demo", baseline="baseline", versions=["baseline", "canary"])],
    )
    engine = SimulatedEngine({"baseline": VersionProfile(), "canary": VersionProfile()})
    return build_gateway(settings, config, engines=[engine], publish=False)


async def test_a_gateway_starts_at_once_on_a_weights_topic_that_does_not_exist_yet(kafka_settings: Settings) -> None:
    topic = f"test.absent.{uuid.uuid4().hex[:8]}.weights"
    settings = kafka_settings.model_copy(update={"topics": kafka_settings.topics.model_copy(update={"weights": topic})})
    gateway = _gateway(settings)
    started = time.monotonic()
    try:
        async with gateway.running():
            serving_after = time.monotonic() - started
            report = await gateway.wait_ready(3)
            ready_after = time.monotonic() - started
            assert serving_after < 1.0, f"startup blocked {serving_after:.2f} s on the absent weights topic"
            assert report.ready and report.weights == "replayed", report
            assert ready_after < 1.5
            assert gateway.router is not None
            assert {gateway.router.choose("demo").model_version for _ in range(100)} == {"baseline"}

            # Whoever creates the topic later (the controller): its first weights apply within a second.
            await ensure_topics(settings, [dataclasses.replace(topic_registry(settings)["weights"], name=topic)])
            await _send(settings, _weights(1, 1.0))
            sent = time.monotonic()
            while gateway.router.weights_seq("demo") != 1:
                assert time.monotonic() - sent < 1.0, "weights on a new topic must apply within 1 s"
                await asyncio.sleep(0.01)
            assert gateway.router.choose("demo").model_version == "canary"
    finally:
        await delete_topics(settings, [topic])
    print(f"\nserving after {serving_after:.2f} s, ready after {ready_after:.2f} s; weights applied")


async def test_ready_waits_for_the_replay_not_the_requests(weights_settings: Settings) -> None:
    await _send(weights_settings, _weights(1, 0.5), _weights(2, 1.0))
    gateway = _gateway(weights_settings)
    async with gateway.running():
        report = await gateway.wait_ready(5)
        assert report.ready and report.weights == "replayed"
        assert gateway.router is not None and gateway.router.weights_seq("demo") == 2  # ready: the split applies


async def test_without_a_broker_the_gateway_serves_at_once_and_is_ready_after_the_grace(tmp_path: Path) -> None:
    from llmwatch.local.kafka_config import free_port

    settings = Settings(kafka=f"127.0.0.1:{free_port('127.0.0.1')}", data_dir=tmp_path)
    gateway = _gateway(settings)
    gateway.watch_wait_s = 1.0
    started = time.monotonic()
    async with gateway.running():
        assert time.monotonic() - started < 1.0
        assert gateway.readiness().weights == "replaying"
        report = await gateway.wait_ready(3)
        assert report.ready and report.weights == "defaults"
        assert gateway.router is not None and gateway.router.choose("demo").model_version == "baseline"
