"""The one reader of the weights topic on the real broker: replay, tombstones, fencing, sync, a missing topic."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from llmwatch.schemas import TrafficWeights
from llmwatch.settings import Settings
from llmwatch.weights_topic import WeightsChange, WeightsReader, read_weights

pytestmark = pytest.mark.integration


@pytest.fixture
def weights_settings(kafka_settings: Settings, topic_factory) -> Settings:  # type: ignore[no-untyped-def]
    topic = topic_factory("weights")
    return kafka_settings.model_copy(update={"topics": kafka_settings.topics.model_copy(update={"weights": topic})})


def _w(deployment: str, seq: int, epoch: int = 0) -> TrafficWeights:
    return TrafficWeights(
        deployment=deployment,
        weights={"v1": 0.9, "v2": 0.1},
        baseline_version="v1",
        canary_version="v2",
        state="progressing",
        seq=seq,
        epoch=epoch,
    )


async def _send(settings: Settings, *records: tuple[str, TrafficWeights | None]) -> None:
    producer = AIOKafkaProducer(**settings.kafka_client_kwargs(), acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(
                settings.topics.weights, None if value is None else value.encode(), key=key.encode()
            )
    finally:
        await producer.stop()


async def test_replay_follow_tombstone_and_fencing(weights_settings: Settings) -> None:
    s = weights_settings
    await _send(s, ("a", _w("a", 1)), ("b", _w("b", 1)), ("b", None), ("a", _w("a", 2, epoch=1)))
    changes: list[WeightsChange] = []
    reader = WeightsReader(s, changes.append)
    reader.start()
    try:
        assert await reader.wait_caught_up(15)
        assert set(reader.view.latest) == {"a"} and reader.view.epoch == 1
        assert [c.weights is None for c in changes if c.deployment == "b"] == [False, True]
        await _send(s, ("a", _w("a", 3, epoch=0)), ("c", _w("c", 1, epoch=1)))  # a fenced controller, then a live one
        await reader.sync(15)
        assert reader.view.latest["a"].seq == 2 and reader.view.latest["c"].seq == 1
        assert reader.view.rejected == 1
        # the one-shot read sees the same
        view = await read_weights(s)
        assert {d: (x.epoch, x.seq) for d, x in view.latest.items()} == {"a": (1, 2), "c": (1, 1)}
    finally:
        await reader.stop()


async def test_a_missing_topic_holds_nothing(kafka_settings: Settings) -> None:
    s = kafka_settings.model_copy(
        update={"topics": kafka_settings.topics.model_copy(update={"weights": f"test.missing.{uuid.uuid4().hex}"})}
    )
    view = await asyncio.wait_for(read_weights(s, timeout_s=10), 15)
    assert view.latest == {} and not view.topic_exists
