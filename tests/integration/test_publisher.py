"""EventPublisher on the real broker: payloads land on their topics keyed by event_id; the counters are exact."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from llmwatch.inference.publisher import EventPublisher
from llmwatch.local.kafka_config import free_port
from llmwatch.schemas import Feedback, InferenceEvent, TrafficWeights
from llmwatch.settings import Settings
from llmwatch.sim.events import scenario_events

pytestmark = pytest.mark.integration


async def _read(settings: Settings, topic: str, expected: int, timeout_s: float = 20.0) -> list:
    consumer = AIOKafkaConsumer(
        topic, **settings.kafka_client_kwargs(), group_id=None, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    records: list = []
    try:
        async with asyncio.timeout(timeout_s):
            while len(records) < expected:
                for batch in (await consumer.getmany(timeout_ms=300)).values():
                    records.extend(batch)
    finally:
        await consumer.stop()
    return records


@pytest.fixture
def pub_settings(kafka_settings: Settings, topic_factory) -> Settings:  # type: ignore[no-untyped-def]
    topics = kafka_settings.topics.model_copy(
        update={"events": topic_factory("events"), "feedback": topic_factory("feedback")}
    )
    return kafka_settings.model_copy(update={"topics": topics})


async def test_events_and_feedback_land_on_their_topics_keyed_by_event_id(pub_settings: Settings) -> None:
    events = list(scenario_events("pii-leak", 2_000, seed=3))
    feedback = [Feedback(event_id=e.event_id, deployment=e.deployment, thumbs=-1) for e in events[:10]]
    async with EventPublisher(pub_settings, max_buffer=5_000) as publisher:
        started = time.perf_counter()
        assert all(publisher.publish(e) for e in [*events, *feedback])
        enqueue_us = (time.perf_counter() - started) / len(events) * 1e6
        assert await publisher.flush(30)
        rate = len(events) / (time.perf_counter() - started)
        assert publisher.connected
    stats = publisher.stats
    assert (stats.accepted, stats.sent, stats.failed, stats.dropped, stats.queued) == (2_010, 2_010, 0, 0, 0)

    records = await _read(pub_settings, pub_settings.topics.events, expected=2_000)
    assert len(records) == 2_000
    by_id = {e.event_id: e for e in events}
    decoded = [InferenceEvent.decode(r.value) for r in records]
    assert all(r.key == e.event_id.encode() and by_id[e.event_id] == e for r, e in zip(records, decoded, strict=True))
    fb = await _read(pub_settings, pub_settings.topics.feedback, expected=10)
    assert sorted(Feedback.decode(r.value).event_id for r in fb) == sorted(e.event_id for e in events[:10])
    print(f"\npublisher: enqueue {enqueue_us:.1f} us/event; {rate:.0f} events/s acknowledged (acks=all, zstd)")


async def test_without_kafka_it_buffers_to_the_bound_and_counts_every_loss(tmp_path: Path) -> None:
    settings = Settings(kafka=f"127.0.0.1:{free_port('127.0.0.1')}", data_dir=tmp_path)  # nothing listens there
    events = list(scenario_events("steady", 15, seed=1))
    publisher = EventPublisher(settings, max_buffer=10)
    await publisher.start()
    results = [publisher.publish(e) for e in events]
    assert results == [True] * 10 + [False] * 5
    await asyncio.sleep(0.3)
    assert not publisher.connected
    assert (publisher.stats.queued, publisher.stats.dropped, publisher.stats.sent) == (10, 5, 0)
    await publisher.stop(drain_timeout=0.5)
    assert not publisher.publish(events[0])  # closed: refused and counted
    stats = publisher.stats
    assert (stats.accepted, stats.sent, stats.failed, stats.dropped, stats.queued) == (10, 0, 10, 6, 0)


async def test_only_event_payloads_are_published(tmp_path: Path) -> None:
    publisher = EventPublisher(Settings(data_dir=tmp_path))
    weights = TrafficWeights(deployment="d", weights={"a": 1.0}, baseline_version="a")
    with pytest.raises(TypeError, match="InferenceEvent or Feedback"):
        publisher.publish(weights)  # type: ignore[arg-type]


def test_sync_sdk_client_emits_from_many_threads(pub_settings: Settings) -> None:
    from llmwatch.inference.sdk import LlmwatchClient, hash_id

    def work(k: int) -> None:
        for i in range(250):
            event = InferenceEvent(deployment="svc", model="m", user_id=hash_id(f"{k}-{i}"), prompt="q", response="a")
            assert client.emit(event)

    with LlmwatchClient(pub_settings) as client:
        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert client.flush(30)
    assert (client.stats.accepted, client.stats.sent, client.stats.queued) == (1_000, 1_000, 0)
    records = asyncio.run(_read(pub_settings, pub_settings.topics.events, expected=1_000))
    assert len({r.key for r in records}) == 1_000
